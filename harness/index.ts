// remote-copy-lab's programmatic API: build a world from a topology on either runtime, run the copy control
// program's routines, drive workloads, query pairs, read volumes, inject faults, run scenarios. The rclab
// command line is a thin layer over exactly this.

export { createWorld, RUNTIMES } from './runtimes.ts';
export type { World, RuntimeName, Fault, TimedEvent, HostIoRequest, HostIoResult } from './world.ts';
export { SimWorld } from './runtime-sim.ts';
export { embodiment1Topology, embodiment4Topology, DATA_LVOL, JOURNAL_LVOL, SECOND_JOURNAL_LVOL } from './topology.ts';
export type { Topology, StorageSystemSpec, LinkSpec, HostSpec, Embodiment1Options as Embodiment1TopologyOptions } from './topology.ts';
export { Host, DEFAULT_HEARTBEAT } from './host.ts';
export type { HeartbeatOptions } from './host.ts';
export { CopyControlProgram, OperationsLog, RoutineError } from './copy-control.ts';
export type { Report, StepLog } from './copy-control.ts';
export * as embodiment1 from './routines/embodiment1.ts';
export * as embodiment4 from './routines/embodiment4.ts';
export { Workload, percentile } from './workload.ts';
export type { WorkloadOptions, WorkloadResult } from './workload.ts';
export { WriteHistory, writePattern, blockWriteId, sha256 } from './history.ts';
export type { WriteRecord, Violation } from './history.ts';
export { InterlockMonitor } from './interlock.ts';
export { runScenario, SCENARIOS, findScenario, settleAsync, compareSites } from './scenarios.ts';
export type { Scenario, ScenarioContext, ScenarioOptions, ScenarioResult, TimelineEntry, CheckResult } from './scenarios.ts';
export { timelineFormatter } from './timeline.ts';
export { applyCopyDevices } from './copy-devices.ts';
export type { CopyDevicesOption } from './copy-devices.ts';
export { DEFAULT_COPY_DEVICE } from '../hardware/copy-device.ts';
export type { CopyDeviceConfig, CopyDeviceStats } from '../hardware/copy-device.ts';

// Firmware-side vocabulary a script needs to talk to the management interface.
export type { Command, CommandReply, PairView, PairDefinitionInput, FenceLevel, InitialCopy } from '../firmware/commands.ts';
export { acceptance, PAIR_COMMAND_OPS } from '../firmware/commands.ts';
export { PairState, pairStateName, PAIR_STATE_NAMES, PRODUCT_STATE_NAMES } from '../firmware/pair-state.ts';
export { readDefinitionInformation, readJournalRecords } from '../firmware/definition-info.ts';
export type { PairRecord, JournalRecord } from '../firmware/definition-info.ts';
export { BLOCK_SIZE_BYTES, TRACK_SIZE_BYTES, DEFAULT_FIRMWARE_TIMING } from '../firmware/constants.ts';
