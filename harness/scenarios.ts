// Named scenarios: a world, hosts, workloads, faults and routines in a fixed order, ending in checks.
// `runScenario` is what `rclab run` and `npm start` call; the result is what `--json` prints.

import { readDefinitionInformation } from '../firmware/definition-info.ts';
import { OperationsLog, CopyControlProgram, RoutineError, RoutineInterrupted, type CopyControlConfig, type Report } from './copy-control.ts';
import type { AsyncMode } from '../firmware/definition-info.ts';
import { WriteHistory, sha256, type Violation } from './history.ts';
import { Host } from './host.ts';
import { failback, failover, initialCopying, reverseCopyControl, reverseCopying, PAIR_IR, PAIR_PI } from './routines/embodiment1.ts';
import * as e2 from './routines/embodiment2.ts';
import * as e3 from './routines/embodiment3.ts';
import * as e4 from './routines/embodiment4.ts';
import { createWorld } from './runtimes.ts';
import { embodiment1Topology, embodiment2Topology, embodiment3Topology, embodiment4Topology, lineCircuitLengths, DATA_LVOL, logLvol, type Topology } from './topology.ts';
import { DatabaseWorkload, Workload, type DatabaseResult, type WorkloadOptions, type WorkloadResult } from './workload.ts';
import type { RuntimeName, TimedEvent, World } from './world.ts';
import type { FenceLevel } from '../firmware/commands.ts';
import { applicationVolumes, Checkers, TransactionLog } from './checkers.ts';
import { describeFault, drawSchedule, Nemesis, type FaultProfile, type ScheduledFault } from './nemesis.ts';
import { isConsistentDestination } from '../firmware/definition-info.ts';
import { pairStateName } from '../firmware/pair-state.ts';
import { backlogOf, eventEntry } from './timeline.ts';
import type { PlantedBug } from '../firmware/constants.ts';
import { BLOCK_SIZE_BYTES, TRACK_SIZE_BYTES } from '../firmware/constants.ts';
import { armPause, type PauseSpec } from './pause.ts';
import { hostSpec, systemSpec } from './world.ts';
import { applyCopyDevices, copyDevicesArgs, type CopyDevicesOption } from './copy-devices.ts';
import type { CopyDeviceStats } from '../hardware/copy-device.ts';
import type { LinePortStats } from '../hardware/common-line.ts';
import type { SwitchingDeviceStats } from '../hardware/switching-device.ts';

/** (The copy control program's configuration — SPEC §5 asyncMode, snapshotIntervalUs — applies to every routine of the run.) */
export interface ScenarioOptions extends CopyControlConfig {
  runtime: RuntimeName;
  seed: number;
  /** Called with every timeline line as it happens. */
  timeline?: (line: TimelineEntry) => void;
  /** Scale of the workloads (1 = default). */
  scale?: number;
  /** Faults drawn from the seed by profile, or an exact schedule (replays, shrunk schedules). */
  faults?: FaultProfile;
  schedule?: ScheduledFault[];
  /** Period of the prefix-consistency sampler on the sim runtime (µs). */
  sampleUs?: number;
  /** Test-only: run firmware with a deliberately planted bug (sim runtime). */
  plantedBug?: PlantedBug;
  /** sim: a run still going at this virtual time is stopped and fails (default 600 s). */
  maxVirtualUs?: number;
  /** Called with the world right after it is built, before any event runs (debugger, trace). */
  onWorld?: (world: World) => void;
  /** threads: pause one storage system for a while when a step is first logged (`--pause I@S230:2000`, harness/pause.ts). */
  pause?: PauseSpec;
  /** Every link of the scenario's topology at this length instead (benchmarks: the cycle over 1000 km links); with a common line, every segment of it. */
  linkDistanceKm?: number;
  /** Every storage system gets a copy device (¶0168) that does its copying: true for the defaults, or its configuration. */
  copyDevices?: CopyDevicesOption;
}

export type TimelineEntry =
  | { kind: 'step'; timeUs: number; step: string; host: string; routine: string; message: string }
  | { kind: 'report'; timeUs: number; step: string; host: string; routine: string; dataLoss: boolean; message: string }
  | { kind: 'event'; timeUs: number; system: string; event: TimedEvent['event']; backlog?: string; pairLabel?: string }
  | { kind: 'note'; timeUs: number; message: string }
  /** A host routine (A2…A6, or an operator's) starts or ends; `outcome` says how it ended. */
  | { kind: 'routine'; timeUs: number; host: string; routine: string; phase: 'start' | 'end'; outcome?: string };

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  scenario: string;
  runtime: RuntimeName;
  seed: number;
  ok: boolean;
  failures: string[];
  traceHash: string;
  firmwareEvents: number;
  reports: Array<{ routine: string; step: string; dataLoss: boolean; host: string; message: string; timeUs: number }>;
  /** Each routine run, in order of its first step: the step numbers it went through and its data-loss verdict. */
  routines: Array<{ host: string; routine: string; steps: string[]; verdict?: { step: string; dataLoss: boolean } }>;
  checks: CheckResult[];
  notes: string[];
  /** SPEC §5: how the asynchronous pairs of this run copied. */
  asyncMode: AsyncMode;
  faults: { profile: FaultProfile; schedule: ScheduledFault[]; injected: Array<{ atUs: number; fault: string }>; byKind: Record<string, number> };
  checksPerformed: Record<string, number>;
  /** The exact command that replays this run. */
  replay: string;
  pairs: Record<string, Array<ReturnType<typeof readDefinitionInformation>[number] & { stateName: string; remoteStorage: string }>>;
  volumes: Record<string, Record<string, string>>;
  acknowledgedWrites: number;
  issuedWrites: number;
  virtualTimeUs: number;
  /** With `copyDevices`: each storage system's copy device counters at the end (hardware/copy-device.ts). */
  copyDevices?: Record<string, CopyDeviceStats>;
  /**
   * With a common line (embodiment 3): each switching device's counters (frames/bytes delivered to its intermediate,
   * passed on, put on the line by its intermediate) and each system's line port (frames in, refused, unclaimed).
   */
  switchingDevices?: Record<string, SwitchingDeviceStats>;
  linePorts?: Record<string, LinePortStats>;
  wallMs: number;
}

export interface ScenarioContext {
  world: World;
  log: OperationsLog;
  history: WriteHistory;
  hostP: Host;
  hostR: Host;
  checks: CheckResult[];
  scale: number;
  /** True when a nemesis injects faults: expectations are then not binding, truths still are. */
  faulty: boolean;
  note(message: string): void;
  program(host: Host, routine: string): CopyControlProgram;
  /** Runs a routine on a host; if it is interrupted half-way (host crash, nemesis) it is run again once the host is up. */
  routine<T>(host: Host, name: string, run: (p: CopyControlProgram) => Promise<T>): Promise<T>;
  /** A work application on a host (it stops issuing writes when its host crashes). */
  workload(o: WorkloadOptions): Workload;
  /**
   * The database on a host (workload.ts): `transactions` transactions (unbounded: until stopped), each a log write
   * and then a dependent data write, on the host's data and log volumes. Null when the topology has no log volume.
   */
  database(host: string, transactions?: number): DatabaseWorkload | null;
  /** A truth that must hold whatever faults happened (a violated one fails the run). */
  check(name: string, violations: Violation[] | boolean, detail?: string): void;
  /** What the scenario is designed to show; binding only without faults. */
  expect(name: string, ok: boolean, detail: string): void;
  /** `system`'s application volumes (data and log) are prefix-consistent together (if the firmware says it holds a consistent image). */
  checkConsistent(system: string, name: string): Promise<void>;
  expectReport(r: Report, step: string, dataLoss: boolean): void;
}

export interface Scenario {
  name: string;
  description: string;
  topology(): Topology;
  run(ctx: ScenarioContext): Promise<void>;
}

// ───────────────────────────── embodiment 1 ─────────────────────────────

/** What a scenario runs as a host's application: stopped, and waited for. */
interface Application {
  stop(): void;
  done: Promise<WorkloadResult>;
}

/**
 * A host's application: its block writes (a Workload) and its database's transactions — both at once (an
 * application running until stopped), or one after the other, so that a run's writes are the same in the same
 * order on either runtime (the -cycle scenarios compare the runtimes' volumes). Host P's database runs first, so
 * the block writes still end right before the disaster and leave the journal backlog the scenarios are built on.
 */
function application(ctx: ScenarioContext, wo: WorkloadOptions, transactions: number | undefined, order: 'concurrently' | 'database first' | 'database after'): Application {
  let stopped = false, blocks: Workload | null = null, db: DatabaseWorkload | null = null;
  const runBlocks = (): Promise<WorkloadResult | null> => (stopped ? Promise.resolve(null) : (blocks = ctx.workload(wo)).done);
  const runDb = (): Promise<DatabaseResult | undefined> => {
    db = stopped ? null : ctx.database(wo.host, transactions);
    return db ? db.done : Promise.resolve(undefined);
  };
  const done = (async (): Promise<WorkloadResult> => {
    let r: WorkloadResult | null, d: DatabaseResult | undefined;
    if (order === 'concurrently') [r, d] = await Promise.all([runBlocks(), runDb()]);
    else if (order === 'database first') { d = await runDb(); r = await runBlocks(); }
    else { r = await runBlocks(); d = await runDb(); }
    const base = r ?? { issued: 0, acknowledged: 0, refused: {}, latenciesUs: [], elapsedUs: 0 };
    return d ? { ...base, issued: base.issued + d.begun, acknowledged: base.acknowledged + d.committed } : base;
  })();
  return { stop: () => { stopped = true; blocks?.stop(); db?.stop(); }, done };
}

/** Site P is lost: host P and storage P fail together while the work application is writing. */
async function siteDisaster(ctx: ScenarioContext, workload: Application, alsoIntermediate: boolean): Promise<void> {
  ctx.note(`site P disaster${alsoIntermediate ? ' together with storage I' : ''}: host P and storage P fail`);
  ctx.hostP.crash();
  workload.stop();
  await ctx.world.fault({ kind: 'power-loss', system: 'P' });
  if (alsoIntermediate) await ctx.world.fault({ kind: 'power-loss', system: 'I' });
  await workload.done;
}

/** Host P's application until stopped: random block writes and database transactions at once. */
function workloadP(ctx: ScenarioContext): Application {
  return application(ctx, { host: '100P', lvol: DATA_LVOL, queueDepth: 8, regionBlocks: 2048 }, undefined, 'concurrently');
}

/** Host P's application in normal operation: database transactions, then a fixed sequence of block writes. */
function writesP(ctx: ScenarioContext, writes: number, queueDepth = 8): Application {
  return application(ctx, { host: '100P', lvol: DATA_LVOL, queueDepth, regionBlocks: 2048, writes: Math.round(writes * ctx.scale), pattern: 'stride' },
    Math.round((writes / 10) * ctx.scale), 'database first');
}

/** A2 and a fixed sequence of host P writes; the disaster strikes as the last one is acknowledged. */
async function normalOperationThenDisaster(ctx: ScenarioContext,
  o: { writes?: number; queueDepth?: number; afterInitialCopying?: () => Promise<void> } = {}): Promise<void> {
  const { world } = ctx;
  await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => initialCopying(p));
  await o.afterInitialCopying?.();
  // The same writes in the same order on both runtimes, so the final volumes do not depend on timing.
  const wP = writesP(ctx, o.writes ?? 3000, o.queueDepth);
  await wP.done;
  const backlog = world.journals('I').reduce((n, j) => n + j.entries, 0);
  ctx.note(`${ctx.history.acknowledged} writes acknowledged to host P; 232I holds ${backlog} entries not yet applied at R`);
  await siteDisaster(ctx, wP, false);
  await ctx.checkConsistent('R', 'R prefix-consistent after the disaster');
}

/** Host R's application: `n` block writes, then database transactions. */
function hostRWrites(ctx: ScenarioContext, n: number): Application {
  return application(ctx, { host: '100R', lvol: DATA_LVOL, queueDepth: 4, regionBlocks: 2048, thinkUs: 500, writes: Math.round(n * ctx.scale), pattern: 'stride' },
    Math.round((n / 10) * ctx.scale), 'database after');
}

/** A3 (no data loss expected), work on R, failures cleared, A4, and A5 with host R writing throughout. */
async function failoverAndReverseOperation(ctx: ScenarioContext): Promise<void> {
  const { world } = ctx;
  const report = await ctx.routine(ctx.hostR, 'A3 failover', (p) => failover(p));
  ctx.expectReport(report, 'S250', false);
  // Host R runs the work application; its writes go to 232R and ship to I.
  await hostRWrites(ctx, 800).done;
  ctx.note('failures cleared: storage P powered on, host P back');
  await world.fault({ kind: 'power-on', system: 'P' });
  ctx.hostP.recover();
  await ctx.routine(ctx.hostR, 'A4 reverse copying', (p) => reverseCopying(p));
  const wR = hostRWrites(ctx, 1500);
  const cycles = await ctx.routine(ctx.hostR, 'A5 reverse copy control', (p) => reverseCopyControl(p, { cycles: 3, intervalUs: 100_000 * ctx.scale }));
  ctx.note(`${cycles} reverse copy control cycles done; host R finishes its writes`);
  await wR.done;
}

/** A2 again after failback: P → I → R, and every site's data volume the same. */
async function backToNormal(ctx: ScenarioContext): Promise<void> {
  await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => initialCopying(p));
  await settleAsync(ctx);
  compareSites(ctx, ['P', 'I', 'R']);
}

const embodiment1Cycle: Scenario = {
  name: 'embodiment1-cycle',
  description: 'A2 initial copying → workload → site P disaster → A3 failover (no data loss) → work on R → failures cleared → A4 reverse copying → A5 reverse copy control cycles → A6 failback (no data loss) → A2 back to normal; all data volumes identical',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseOperation(ctx);
    ctx.note('host R stops its work application');
    const fb = await ctx.routine(ctx.hostP, 'A6 failback', (p) => failback(p));
    ctx.expectReport(fb, 'S540', false);
    await backToNormal(ctx);
  },
};

const embodiment1FailbackVariant: Scenario = {
  name: 'embodiment1-failback-variant',
  description: 'the administrator split R→I (suspend) and host R went on writing; A6 with the ¶0106 variant resynchronises first, so failback still reports no data loss (S540)',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseOperation(ctx);
    ctx.note('administrator suspends the async pair R→I; host R writes on (recorded in R\'s difference bitmap), then stops');
    await ctx.program(ctx.hostR, 'administrator').suspend('R', PAIR_IR, 'S500');
    await hostRWrites(ctx, 300).done;
    const fb = await ctx.routine(ctx.hostP, 'A6 failback', (p) => failback(p, { variant0106: true }));
    ctx.expectReport(fb, 'S540', false);
    await backToNormal(ctx);
  },
};

const embodiment1FailbackDataLoss: Scenario = {
  name: 'embodiment1-failback-data-loss',
  description: 'link S2 fails during reverse operation while host R keeps writing: A6 finds R→I in failure suspend (S500) and reports data loss (S570) after copying I\'s data to P',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    const { world } = ctx;
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseOperation(ctx);
    ctx.note('link S2 cut; host R writes on, then stops');
    await world.fault({ kind: 'cut-link', link: 'S2' });
    await hostRWrites(ctx, 300).done;
    const fb = await ctx.routine(ctx.hostP, 'A6 failback', (p) => failback(p));
    ctx.expectReport(fb, 'S570', true);
    const missing = ctx.history.missingAcknowledged(applicationVolumes(world, 'P'), 1_000_000, { includeLost: true });
    ctx.expect('S570 data loss is real: P lacks writes acknowledged at R after the cut', missing.length > 0, `${missing.length} block(s)`);
    ctx.expect('S550: P holds I\'s data', applicationDigest(world, 'P') === applicationDigest(world, 'I'), 'P and I data and log volumes compared');
    await ctx.checkConsistent('P', 'P prefix-consistent');
  },
};

const embodiment1FailoverDrainFails: Scenario = {
  name: 'embodiment1-failover-drain-fails',
  description: 'S2 slowed to 1 MB/s after A2, so 232I holds a backlog at the disaster; S2 fails while R retrieves it (S230): S240 finds failure suspend (link down) and reports data loss (S220); R stays prefix-consistent',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    const { world } = ctx;
    // Once the pairs are formed (at the link's full speed), S2 slows to 1 MB/s (2 paths): slower than host P writes
    // on either runtime, so the backlog outlasts heartbeat detection at every scale. At 3 MB/s, a threads run on a
    // loaded machine wrote so slowly that S2 had drained all but 122-1,691 entries by the disaster, and R retrieved
    // them before the cut, 3 runs in 8. And 2,400 writes in all (with the transactions' log records) are 60 % of the
    // 16 MiB journal, so it cannot fill however fast host P writes (4,800 filled it in fast runs, and the pair
    // suspended for that instead).
    const slowS2 = () => world.fault({ kind: 'link-conditions', link: 'S2', conditions: { bandwidthMBps: 1 } });
    await normalOperationThenDisaster(ctx, { writes: 2000, afterInitialCopying: slowS2 });
    // Cut S2 while R retrieves: timed from I, which starts suspending as the relayed drain arrives (R hears of it
    // only behind the backlog on the slow link, which may be too late at small scales).
    let failoverDone = false;
    const cutter = cutWhileRetrieving(ctx, 'I', PAIR_IR, 'S2', 'S230', () => failoverDone);
    const report = await ctx.routine(ctx.hostR, 'A3 failover', (p) => failover(p)).finally(() => { failoverDone = true; });
    await cutter;
    ctx.expectReport(report, 'S220', true);
    if (!ctx.faulty) {
      // The data loss is the cut's: R's pair went to failure suspend with the link down (not journal full, say).
      const cause = world.definitionInformation('R').find((p) => p.pairId === PAIR_IR)?.failureCause;
      ctx.expect('S240 found the pair failure suspend because S2 was cut while S230 retrieved', cause === 'link down', `R's pair ${PAIR_IR}: ${cause}`);
    }
    const missing = ctx.history.missingAcknowledged(applicationVolumes(world, 'R'), 1_000_000, { includeLost: true });
    ctx.expect('S220 data loss is real: R lacks acknowledged writes', missing.length > 0, `${missing.length} block(s)`);
    await ctx.checkConsistent('R', 'R holds a consistent older image (prefix-consistent)');
  },
};

const embodiment1DoubleFailure: Scenario = {
  name: 'embodiment1-double-failure',
  description: 'storage I fails together with site P: A3 failover must report data loss at S220; work resumes on R\'s consistent but older data',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    const { world } = ctx;
    await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => initialCopying(p));
    const wP = workloadP(ctx);
    await world.sleep(300_000 * ctx.scale);
    await siteDisaster(ctx, wP, true);
    const report = await ctx.routine(ctx.hostR, 'A3 failover', (p) => failover(p));
    ctx.expectReport(report, 'S220', true);
    const missing = ctx.history.missingAcknowledged(applicationVolumes(world, 'R'), 1_000_000, { includeLost: true });
    ctx.note(`R lacks ${missing.length} block(s) of acknowledged writes (the data loss S220 reported)`);
    await ctx.checkConsistent('R', 'R holds a consistent older image (prefix-consistent)');
    ctx.note('work resumes on R');
    const wR = ctx.workload({ host: '100R', lvol: DATA_LVOL, queueDepth: 4, writes: 500, regionBlocks: 2048 });
    const r = await wR.done;
    ctx.expect('host R can write to R after the data-loss failover', r.acknowledged === r.issued, `${r.acknowledged}/${r.issued} acknowledged`);
    ctx.check('R holds every write acknowledged since the data loss', ctx.history.missingAcknowledged(applicationVolumes(world, 'R')));
  },
};


function rollingDisaster(fence: FenceLevel): Scenario {
  return {
    name: fence === 'data' ? 'embodiment1-rolling-disaster-fenced' : 'embodiment1-rolling-disaster',
    description: `link S1 fails first while host P keeps writing (sync fence level ${fence}), then site P is lost: ` +
      (fence === 'data' ? 'P refuses writes it cannot copy, so failover truthfully reports no data loss'
        : 'P acknowledged writes that exist nowhere else, and failover must report data loss'),
    topology: () => embodiment1Topology(),
    async run(ctx) {
      const { world } = ctx;
      await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => initialCopying(p, { syncFence: fence }));
      const wP = workloadP(ctx);
      await world.sleep(150_000 * ctx.scale);
      ctx.note('link S1 cut (first stage of a rolling disaster)');
      await world.fault({ kind: 'cut-link', link: 'S1' });
      await world.sleep(150_000 * ctx.scale);
      await siteDisaster(ctx, wP, false);
      const report = await ctx.routine(ctx.hostR, 'A3 failover', (p) => failover(p));
      const missing = ctx.history.missingAcknowledged(applicationVolumes(world, 'R'), 20, { includeLost: true });
      if (fence === 'data') {
        ctx.expectReport(report, 'S250', false);
        ctx.expect('fence data: P refused writes after the cut', ctx.history.writes.some((w) => w.status === 'fenced'), 'some writes were refused with status fenced');
      } else {
        ctx.expectReport(report, 'S220', true);
        ctx.expect('fence never: writes acknowledged after the cut are really missing at R', missing.length > 0, `${missing.length} block(s) missing`);
      }
    },
  };
}

// ───────────────────────────── embodiment 2 ─────────────────────────────

/**
 * A3 (no data loss expected, S260–S270 kept), work on R, failures cleared, B1: reverse operation copies R→P
 * directly over S5. Host R's writes during reverse operation are the scenario's own.
 */
async function failoverAndReverseCopyingOverS5(ctx: ScenarioContext): Promise<void> {
  const { world } = ctx;
  const report = await ctx.routine(ctx.hostR, 'A3 failover', (p) => e2.failover(p));
  ctx.expectReport(report, 'S250', false);
  // Host R runs the work application; its writes go to 232R and ship to I (S260–S270).
  await hostRWrites(ctx, 800).done;
  ctx.note('failures cleared: storage P powered on, host P back');
  await world.fault({ kind: 'power-on', system: 'P' });
  ctx.hostP.recover();
  await ctx.routine(ctx.hostR, 'B1 reverse copying', (p) => e2.reverseCopying(p));
}

/** A2 again after B2: pair R→P deleted, P → I → R, and every site's data volume the same. */
async function backToNormalFromS5(ctx: ScenarioContext): Promise<void> {
  await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => e2.initialCopying(p));
  await settleAsync(ctx);
  compareSites(ctx, ['P', 'I', 'R']);
}

const embodiment2Cycle: Scenario = {
  name: 'embodiment2-cycle',
  description: 'A2 initial copying → workload → site P disaster → A3 failover (no data loss) → work on R → failures cleared → B1 reverse copying (S600 delete R–I, S610 async R→P over S5) → host R writes → B2 failback (S730 no data loss) → A2 back to normal; all data volumes identical',
  topology: () => embodiment2Topology(),
  async run(ctx) {
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseCopyingOverS5(ctx);
    ctx.note('reverse operation: host R writes, copied R→P asynchronously over S5');
    await hostRWrites(ctx, 1500).done;
    await ctx.checkConsistent('P', 'P prefix-consistent during reverse operation');
    ctx.note('host R stops its work application');
    const fb = await ctx.routine(ctx.hostP, 'B2 failback', (p) => e2.failback(p));
    ctx.expectReport(fb, 'S730', false);
    await backToNormalFromS5(ctx);
  },
};

const embodiment2FailbackVariant: Scenario = {
  name: 'embodiment2-failback-variant',
  description: 'the administrator split R→P (suspend) and host R went on writing; B2 with the ¶0120 variant resynchronises R→P first, so failback still reports no data loss (S730)',
  topology: () => embodiment2Topology(),
  async run(ctx) {
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseCopyingOverS5(ctx);
    await hostRWrites(ctx, 800).done;
    ctx.note('administrator suspends the async pair R→P; host R writes on (recorded in R\'s difference bitmap), then stops');
    await ctx.program(ctx.hostR, 'administrator').suspend('R', e2.PAIR_RP, 'S700');
    await hostRWrites(ctx, 300).done;
    const fb = await ctx.routine(ctx.hostP, 'B2 failback', (p) => e2.failback(p, { variant0120: true }));
    ctx.expectReport(fb, 'S730', false);
    await backToNormalFromS5(ctx);
  },
};

const embodiment2FailbackDataLoss: Scenario = {
  name: 'embodiment2-failback-data-loss',
  description: 'link S5 fails during reverse operation while host R keeps writing: B2 finds R→P in failure suspend (S700) and reports data loss (S740); P holds a consistent older image',
  topology: () => embodiment2Topology(),
  async run(ctx) {
    const { world } = ctx;
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseCopyingOverS5(ctx);
    await hostRWrites(ctx, 800).done;
    ctx.note('link S5 cut; host R writes on, then stops');
    await world.fault({ kind: 'cut-link', link: 'S5' });
    await hostRWrites(ctx, 300).done;
    const fb = await ctx.routine(ctx.hostP, 'B2 failback', (p) => e2.failback(p));
    ctx.expectReport(fb, 'S740', true);
    const missing = ctx.history.missingAcknowledged(applicationVolumes(world, 'P'), 1_000_000, { includeLost: true });
    ctx.expect('S740 data loss is real: P lacks writes acknowledged at R after the cut', missing.length > 0, `${missing.length} block(s)`);
    await ctx.checkConsistent('P', 'P prefix-consistent (a consistent older image)');
  },
};

// ───────────────────────────── embodiment 3 ─────────────────────────────

/** A2 (with the Fig. 18 variation: and async R→J) and a fixed sequence of host P writes; then the site P disaster. */
async function normalOperation3ThenDisaster(ctx: ScenarioContext, variation: boolean): Promise<void> {
  const { world } = ctx;
  await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => e3.initialCopying(p, { variation }));
  const wP = writesP(ctx, 3000);
  await wP.done;
  const backlog = (system: string, pairId: number) => world.journals(system).filter((j) => j.pairId === pairId).reduce((n, j) => n + j.entries, 0);
  ctx.note(`${ctx.history.acknowledged} writes acknowledged to host P; 232I holds ${backlog('I', PAIR_IR)} entries not yet applied at R` +
    (variation ? `, 232R-2 ${backlog('R', e3.PAIR_RJ_BACKUP)} not yet applied at J` : ''));
  await siteDisaster(ctx, wP, false);
  await ctx.checkConsistent('R', 'R prefix-consistent after the disaster');
  if (variation) await ctx.checkConsistent('J', 'J prefix-consistent after the disaster (variation: async R→J)');
}

/** Tracks of the application's group (data and log volume): what a full formation copy copies (embodiment3-cycle's S800). */
function dataVolumeTracks(ctx: ScenarioContext): number {
  return applicationVolumes(ctx.world, 'R').reduce((n, v) => n + Math.ceil(v.length / TRACK_SIZE_BYTES), 0);
}

/**
 * A3 (S260–S270 omitted, [0125]), work on R, failures cleared, C1: R →sync J →async P. Records the tracks S800's
 * formation copy R→J copied as a check, the measurement of the variation (claim 8).
 */
async function failoverAndReverseCopyingViaJ(ctx: ScenarioContext, variation: boolean): Promise<void> {
  const { world } = ctx;
  const report = await ctx.routine(ctx.hostR, 'A3 failover', (p) => e3.failover(p));
  ctx.expectReport(report, 'S250', false);
  await hostRWrites(ctx, 800).done; // host R's work application; with the variation, also copied R→J asynchronously
  ctx.note('failures cleared: storage P powered on, host P back');
  await world.fault({ kind: 'power-on', system: 'P' });
  ctx.hostP.recover();
  const c1 = await ctx.routine(ctx.hostR, 'C1 reverse copying', (p) => e3.reverseCopying(p, { variation }));
  const full = dataVolumeTracks(ctx);
  const detail = `S800 formation copy R→J: ${c1.s800TracksCopied} track(s)${variation ? ' with the variation' : ''}; ${full} without the variation (a full initial copy: embodiment3-cycle's S800 on any seed); S810 J→P: ${c1.s810TracksCopied} track(s)${variation ? `; S810 P→I (variation, [0139]): ${c1.s810BackupTracksCopied} track(s)` : ''}`;
  ctx.note(detail);
  if (variation) ctx.expect('variation (Fig. 18): S800 copied fewer tracks than without it', c1.s800TracksCopied < full, detail);
  else ctx.expect('S800 copied every track (no variation: J was idle)', c1.s800TracksCopied === full, detail);
  const missingAtJ = ctx.history.missingAcknowledged(applicationVolumes(world, 'J'), 3);
  ctx.expect('after S800 J holds every write acknowledged to host R', missingAtJ.length === 0, missingAtJ.map((v) => v.message).join('; ') || 'ok');
}

/** Reverse operation: host R writes (R →sync J →async P); J must hold all of them at once. */
async function reverseOperationViaJ(ctx: ScenarioContext, writes: number): Promise<void> {
  ctx.note('reverse operation: host R writes, copied R →sync J →async P');
  await hostRWrites(ctx, writes).done;
  const missingAtJ = ctx.history.missingAcknowledged(applicationVolumes(ctx.world, 'J'), 3);
  ctx.expect('J holds every write acknowledged to host R (sync pair R→J, [0130])', missingAtJ.length === 0, missingAtJ.map((v) => v.message).join('; ') || 'ok');
  await ctx.checkConsistent('P', 'P prefix-consistent during reverse operation');
}

/**
 * A2 again after C2 ([0136]): reverse operation's pairs deleted, P → I → R (→ J), every site's data volume the same.
 * Records the tracks S100's formation copy P→I copied, the measurement of the variation's reverse half ([0139]).
 */
async function backToNormalFromJ(ctx: ScenarioContext, variation: boolean): Promise<void> {
  const a2 = await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => e3.initialCopying(p, { variation }));
  const detail = `S100 formation copy P→I: ${a2.s100TracksCopied} track(s)${variation ? ' with the variation (async P→I in reverse operation, [0139])' : ' (differences: every track written into P since the disaster)'}`;
  ctx.note(detail);
  if (variation) ctx.expect('variation ([0139]): S100 copied no track, I being current', a2.s100TracksCopied === 0, detail);
  else ctx.expect('S100 resynchronised P→I by differences (no variation: I was not copied to in reverse operation)', a2.s100TracksCopied > 0, detail);
  await settleAsync(ctx);
  compareSites(ctx, ['P', 'I', 'J', 'R']);
}

function embodiment3Cycle(variation: boolean): Scenario {
  return {
    name: variation ? 'embodiment3-variation-cycle' : 'embodiment3-cycle',
    description: variation
      ? 'embodiment 3 with the Fig. 18 variation (claim 8): A2 (P →sync I →async R →async J) → workload → site P disaster → A3 failover (no data loss) → work on R (also copied to J) → C1 (S800 R ships 232R-2 to J, sync R→J without formation copy; S810 async J→P) → host R writes → C2 failback (S930) → A2; S800 copies fewer tracks than without the variation; all four data volumes identical'
      : 'embodiment 3: A2 (P →sync I →async R, J idle) → workload → site P disaster → A3 failover (no data loss; S260–S270 omitted) → work on R → failures cleared → C1 reverse copying (S800 sync R→J, S810 async J→P) → host R writes (R →sync J →async P) → C2 failback (S900–S930 no data loss) → A2 back to normal; all four data volumes identical',
    topology: () => embodiment3Topology({ variation }),
    async run(ctx) {
      await normalOperation3ThenDisaster(ctx, variation);
      await failoverAndReverseCopyingViaJ(ctx, variation);
      await reverseOperationViaJ(ctx, 1500);
      if (variation) await ctx.checkConsistent('I', 'I prefix-consistent during reverse operation (variation: async P→I, [0139])');
      ctx.note('host R stops its work application');
      const fb = await ctx.routine(ctx.hostP, 'C2 failback', (p) => e3.failback(p, { variation }));
      ctx.expectReport(fb, 'S930', false);
      await backToNormalFromJ(ctx, variation);
    },
  };
}

const embodiment3FailbackVariant: Scenario = {
  name: 'embodiment3-failback-variant',
  description: 'the administrator split J→P (suspend) and host R went on writing (kept at J by sync R→J); C2 with the ¶0135 variant resynchronises J→P first, so failback still reports no data loss (S930)',
  topology: () => embodiment3Topology(),
  async run(ctx) {
    await normalOperation3ThenDisaster(ctx, false);
    await failoverAndReverseCopyingViaJ(ctx, false);
    await reverseOperationViaJ(ctx, 800);
    ctx.note('administrator suspends the async pair J→P; host R writes on (in J\'s difference bitmap), then stops');
    await ctx.program(ctx.hostR, 'administrator').suspend('J', e3.PAIR_JP, 'S900');
    await hostRWrites(ctx, 300).done;
    const fb = await ctx.routine(ctx.hostP, 'C2 failback', (p) => e3.failback(p, { variant0135: true }));
    ctx.expectReport(fb, 'S930', false);
    await backToNormalFromJ(ctx, false);
  },
};

const embodiment3FailbackDataLoss: Scenario = {
  name: 'embodiment3-failback-data-loss',
  description: 'link S8 (J–P) fails during reverse operation while host R keeps writing: C2 finds J→P in failure suspend (S900) and reports data loss (S970); P holds a consistent older image, J every write of host R',
  topology: () => embodiment3Topology(),
  async run(ctx) {
    const { world } = ctx;
    await normalOperation3ThenDisaster(ctx, false);
    await failoverAndReverseCopyingViaJ(ctx, false);
    await reverseOperationViaJ(ctx, 800);
    ctx.note('link S8 (J–P) cut; host R writes on, then stops');
    await world.fault({ kind: 'cut-link', link: 'S8' });
    await hostRWrites(ctx, 300).done;
    const fb = await ctx.routine(ctx.hostP, 'C2 failback', (p) => e3.failback(p));
    ctx.expectReport(fb, 'S970', true);
    const missing = ctx.history.missingAcknowledged(applicationVolumes(world, 'P'), 1_000_000, { includeLost: true });
    ctx.expect('S970 data loss is real: P lacks writes acknowledged at R after the cut', missing.length > 0, `${missing.length} block(s)`);
    await ctx.checkConsistent('P', 'P prefix-consistent (a consistent older image)');
    const missingAtJ = ctx.history.missingAcknowledged(applicationVolumes(world, 'J'), 3);
    ctx.expect('J still holds every write acknowledged to host R ([0137])', missingAtJ.length === 0, missingAtJ.map((v) => v.message).join('; ') || 'ok');
  },
};

// ───────────────────────────── embodiment 4 ─────────────────────────────

/** A2 for the 4-site cascade and a fixed sequence of host P writes; the site P disaster strikes as the last is acknowledged. */
async function normalOperation4ThenDisaster(ctx: ScenarioContext, o: { writes?: number } = {}): Promise<void> {
  const { world } = ctx;
  await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => e4.initialCopying(p));
  const wP = writesP(ctx, o.writes ?? 3000);
  await wP.done;
  const backlog = (system: string, pairId: number) => world.journals(system).filter((j) => j.pairId === pairId).reduce((n, j) => n + j.entries, 0);
  ctx.note(`${ctx.history.acknowledged} writes acknowledged to host P; 232I holds ${backlog('I', e4.PAIR_IJ)} entries not yet applied at J, 232J-2 ${backlog('J', e4.PAIR_JR)} not yet applied at R`);
  await siteDisaster(ctx, wP, false);
  await ctx.checkConsistent('J', 'J prefix-consistent after the disaster');
  await ctx.checkConsistent('R', 'R prefix-consistent after the disaster');
}

/** Whether a routine logged `step` with a message matching `re`. */
function logged(ctx: ScenarioContext, step: string, re: RegExp): boolean {
  return ctx.log.steps.some((s) => s.step === step && re.test(s.message));
}

/** Cuts `link` `afterUs` after pair `pairId` at `system` starts suspending (a retrieval under way), unless `done()` first. */
function cutWhileRetrieving(ctx: ScenarioContext, system: string, pairId: number, link: string, step: string, done: () => boolean, afterUs = 20_000): Promise<void> {
  const { world } = ctx;
  return (async () => {
    while (!done() && world.definitionInformation(system).find((p) => p.pairId === pairId)?.state !== 3) await world.sleep(1000);
    if (done()) return; // (under faults the retrieval may never have started)
    await world.sleep(afterUs);
    ctx.note(`link ${link} cut while ${step} retrieves the log information`);
    await world.fault({ kind: 'cut-link', link });
  })();
}

const embodiment4Cycle: Scenario = {
  name: 'embodiment4-cycle',
  description: 'A2 initial copying (P →sync I →async J →async R) → workload → site P disaster → D1 failover (S1050 no data loss, S1070 sync R→J without formation copy) → work on R → failures cleared → D2 reverse copying (S1100 J→I, S1110 I→P) → host R writes (R →sync J →async I →async P) → D3 failback (S1240 no data loss) → A2 back to normal; all four data volumes identical',
  topology: () => embodiment4Topology(),
  async run(ctx) {
    const { world } = ctx;
    await normalOperation4ThenDisaster(ctx);
    const report = await ctx.routine(ctx.hostR, 'D1 failover', (p) => e4.failover(p));
    ctx.expectReport(report, 'S1050', false);
    ctx.expect('S1070 formed sync pair R→J without formation copy (¶0149)', logged(ctx, 'S1070', /without formation copy/), 'S1070 step log');
    await hostRWrites(ctx, 800).done;
    // (An expectation: under faults D1 may end at S1080 without the sync pair R→J; while it is duplex the checkers judge it anyway.)
    const missingAtJ = ctx.history.missingAcknowledged(applicationVolumes(world, 'J'), 3);
    ctx.expect('J holds every write acknowledged to host R (sync pair R→J)', missingAtJ.length === 0, missingAtJ.map((v) => v.message).join('; ') || 'ok');
    ctx.note('failures cleared: storage P powered on, host P back');
    await world.fault({ kind: 'power-on', system: 'P' });
    ctx.hostP.recover();
    await ctx.routine(ctx.hostR, 'D2 reverse copying', (p) => e4.reverseCopying(p));
    ctx.note('reverse operation: host R writes, copied R →sync J →async I →async P');
    await hostRWrites(ctx, 1500).done;
    await ctx.checkConsistent('I', 'I prefix-consistent during reverse operation');
    await ctx.checkConsistent('P', 'P prefix-consistent during reverse operation');
    ctx.note('host R stops its work application');
    const fb = await ctx.routine(ctx.hostP, 'D3 failback', (p) => e4.failback(p));
    ctx.expectReport(fb, 'S1240', false);
    await ctx.routine(ctx.hostP, 'A2 initial copying', (p) => e4.initialCopying(p));
    await settleAsync(ctx);
    compareSites(ctx, ['P', 'I', 'J', 'R']);
  },
};

const embodiment4FailoverRestartEarly: Scenario = {
  name: 'embodiment4-failover-restart-early',
  description: '¶0150: host R restarts its work application right after S1050 "no data loss", before S1070; S1070 must then form the sync pair R→J with a formation copy, and J ends holding every write acknowledged to host R',
  topology: () => embodiment4Topology(),
  async run(ctx) {
    const { world } = ctx;
    await normalOperation4ThenDisaster(ctx);
    let early: Application | undefined;
    ctx.log.on((e) => {
      if (e.kind !== 'report' || e.e.step !== 'S1050' || early) return;
      ctx.note('¶0150: host R restarts its work application after S1050, before S1070');
      early = hostRWrites(ctx, 800);
    });
    const report = await ctx.routine(ctx.hostR, 'D1 failover', (p) => e4.failover(p, { workRestarted: () => early !== undefined }));
    ctx.expectReport(report, 'S1050', false);
    ctx.expect('S1070 formed sync pair R→J with a formation copy (¶0150)', logged(ctx, 'S1070', /with initial copying/) && !logged(ctx, 'S1070', /without formation copy/), 'S1070 step log');
    await early?.done;
    await settleAsync(ctx);
    ctx.check('R holds every acknowledged write', ctx.history.missingAcknowledged(applicationVolumes(world, 'R')));
    const missingAtJ = ctx.history.missingAcknowledged(applicationVolumes(world, 'J'), 3);
    ctx.expect('J holds every acknowledged write (formation copy, then sync R→J)', missingAtJ.length === 0, missingAtJ.map((v) => v.message).join('; ') || 'ok');
    if (!ctx.faulty) compareSites(ctx, ['R', 'J']);
  },
};

function embodiment4DataLoss(step: 'S1020' | 'S1040'): Scenario {
  const link = step === 'S1020' ? 'S6' : 'S7';
  // The cut follows the retrieval at the pair's source (I or J), which starts suspending as the relayed drain arrives.
  const [system, pairId, retrieval] = step === 'S1020' ? ['I', e4.PAIR_IJ, 'S1010'] : ['J', e4.PAIR_JR, 'S1030'];
  return {
    name: `embodiment4-data-loss-${step.toLowerCase()}`,
    description: `link ${link} (${step === 'S1020' ? 'I–J' : 'J–R'}) is slow (1 MB/s), so ${step === 'S1020' ? '232I' : '232J-2'} holds a backlog at the disaster; ${link} fails while ${retrieval} retrieves it: ${step} finds failure suspend and D1 reports data loss (S1080); R holds a consistent older image and work resumes on it`,
    topology: () => {
      const t = embodiment4Topology();
      // Slower than host P writes on either runtime (the threads runtime writes more slowly than sim), so a backlog builds.
      t.links.find((l) => l.name === link)!.bandwidthMBps = 1;
      return t;
    },
    async run(ctx) {
      const { world } = ctx;
      await normalOperation4ThenDisaster(ctx);
      let failoverDone = false;
      const cutter = cutWhileRetrieving(ctx, system, pairId, link, retrieval, () => failoverDone);
      const report = await ctx.routine(ctx.hostR, 'D1 failover', (p) => e4.failover(p)).finally(() => { failoverDone = true; });
      await cutter;
      ctx.expectReport(report, 'S1080', true);
      ctx.expect(`${step} found failure suspend`, logged(ctx, step, /failure suspend/), `${step} step log`);
      const missing = ctx.history.missingAcknowledged(applicationVolumes(world, 'R'), 1_000_000, { includeLost: true });
      ctx.expect('S1080 data loss is real: R lacks acknowledged writes', missing.length > 0, `${missing.length} block(s)`);
      await ctx.checkConsistent('R', 'R holds a consistent older image (prefix-consistent)');
      ctx.note('work resumes on R');
      const r = await hostRWrites(ctx, 300).done;
      ctx.expect('host R can write to R after the data-loss failover', r.acknowledged === r.issued, `${r.acknowledged}/${r.issued} acknowledged`);
      ctx.check('R holds every write acknowledged since the data loss', ctx.history.missingAcknowledged(applicationVolumes(world, 'R')));
    },
  };
}

export const SCENARIOS: Scenario[] = [
  embodiment1Cycle, embodiment1DoubleFailure, embodiment1FailoverDrainFails, embodiment1FailbackVariant, embodiment1FailbackDataLoss,
  rollingDisaster('never'), rollingDisaster('data'),
  embodiment2Cycle, embodiment2FailbackVariant, embodiment2FailbackDataLoss,
  embodiment3Cycle(false), embodiment3FailbackVariant, embodiment3FailbackDataLoss, embodiment3Cycle(true),
  embodiment4Cycle, embodiment4FailoverRestartEarly, embodiment4DataLoss('S1020'), embodiment4DataLoss('S1040'),
];

export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown scenario '${name}' (known: ${SCENARIOS.map((x) => x.name).join(', ')})`);
  return s;
}

// ───────────────────────────── shared endings ─────────────────────────────

/** Waits until no asynchronous pair has journal entries left to apply, so volumes can be compared. */
export async function settleAsync(ctx: ScenarioContext, timeoutUs = 30_000_000): Promise<void> {
  const start = ctx.world.nowUs();
  for (;;) {
    let busy = false;
    for (const s of ctx.world.topology.systems) {
      if (!ctx.world.isUp(s.name)) continue;
      for (const p of ctx.world.definitionInformation(s.name)) {
        if (p.role === 'source' && (p.state === 1 || p.state === 6 || p.state === 3)) busy = true;
      }
      for (const j of ctx.world.journals(s.name)) {
        const pair = ctx.world.definitionInformation(s.name).find((p) => p.pairId === j.pairId);
        if (pair && pair.role === 'source' && pair.state === 2 && j.entries > 0) busy = true;
      }
      // A destination mirrors its source's state one link latency later.
      for (const p of ctx.world.definitionInformation(s.name)) {
        if (p.role !== 'source') continue;
        const dest = ctx.world.topology.systems.find((x) => x.id === p.remoteStorageId);
        const mirror = dest && ctx.world.isUp(dest.name) ? ctx.world.definitionInformation(dest.name).find((q) => q.pairId === p.pairId) : undefined;
        if (mirror && mirror.state !== p.state) busy = true;
      }
    }
    if (!busy) return;
    if (ctx.world.nowUs() - start > timeoutUs) throw new RoutineError('settle', 'S110', `copying did not settle within ${timeoutUs} µs`);
    await ctx.world.sleep(5_000);
  }
}

/** One digest of a site's application volumes (data and log), to compare sites. */
function applicationDigest(world: World, system: string): string {
  return sha256(Buffer.from(applicationVolumes(world, system).map((v) => sha256(v)).join('+')));
}

export function compareSites(ctx: ScenarioContext, systems: string[]): void {
  if (ctx.faulty) return; // under faults the liveness phase compares, after every fault is repaired
  const digests = systems.map((s) => applicationDigest(ctx.world, s));
  const same = digests.every((d) => d === digests[0]);
  ctx.check(`data and log volumes of ${systems.join(', ')} identical`, same, systems.map((s, i) => `${s} ${digests[i]!.slice(0, 12)}`).join(' '));
  ctx.check(`final volume holds every acknowledged write`, ctx.history.missingAcknowledged(applicationVolumes(ctx.world, systems[0]!)));
}

// ───────────────────────────── runner ─────────────────────────────

/** The routines of a run from its operations log: steps in the order first taken, and the report if one was made. */
function routineSummaries(log: OperationsLog): ScenarioResult['routines'] {
  const byRoutine = new Map<string, ScenarioResult['routines'][number]>();
  const of = (host: string, routine: string) => {
    const k = `${host}\u0000${routine}`;
    let r = byRoutine.get(k);
    if (!r) byRoutine.set(k, (r = { host, routine, steps: [] }));
    return r;
  };
  const entries = [...log.steps.map((e) => ({ e, dataLoss: undefined as boolean | undefined })), ...log.reports.map((e) => ({ e, dataLoss: e.dataLoss }))]
    .sort((a, b) => a.e.timeUs - b.e.timeUs); // stable: a report keeps its place after the steps of its instant
  for (const { e, dataLoss } of entries) {
    const r = of(e.host, e.routine);
    if (!r.steps.includes(e.step)) r.steps.push(e.step);
    if (dataLoss !== undefined) r.verdict = { step: e.step, dataLoss };
  }
  return [...byRoutine.values()];
}

export async function runScenario(name: string, o: ScenarioOptions): Promise<ScenarioResult> {
  const scenario = findScenario(name);
  if (o.pause) {
    // Refused before any world is built: a pause needs real threads, and a storage system this topology has.
    if (o.runtime !== 'threads') throw new Error(`--pause ${o.pause.system}@${o.pause.step}:${o.pause.forMs} needs the threads runtime (--runtime threads); on the sim runtime, use \`rclab debug\` to stop at a step or event instead`);
    systemSpec(scenario.topology(), o.pause.system);
  }
  const wallStart = performance.now();
  const topology = scenario.topology();
  if (o.linkDistanceKm !== undefined) {
    if (!(Number.isFinite(o.linkDistanceKm) && o.linkDistanceKm >= 0)) throw new Error(`linkDistanceKm must be a number of km ≥ 0, not ${o.linkDistanceKm}`);
    for (const l of topology.links) l.distanceKm = o.linkDistanceKm;
    for (const seg of topology.line?.segments ?? []) seg.distanceKm = o.linkDistanceKm;
    lineCircuitLengths(topology); // a circuit over the line is as long as the segments it crosses
  }
  applyCopyDevices(topology, o.copyDevices);
  const config: CopyControlConfig = { asyncMode: o.asyncMode, snapshotIntervalUs: o.snapshotIntervalUs };
  const world = await createWorld(o.runtime, topology, o.seed,
    { maxVirtualUs: o.maxVirtualUs ?? 600_000_000, firmwareOptions: o.plantedBug ? { plantedBug: o.plantedBug } : undefined });
  o.onWorld?.(world);
  const log = new OperationsLog();
  const history = new WriteHistory();
  const checks: CheckResult[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  const emit = o.timeline ?? (() => {});
  const profile = o.faults ?? 'none';
  const schedule = o.schedule ?? drawSchedule(world.topology, profile, o.seed);
  const faulty = schedule.length > 0;
  const transactions = new TransactionLog();
  const checkers = new Checkers(world, history, log, { sampleUs: o.sampleUs ?? 2000, transactions });
  world.onEvent((e) => emit(eventEntry(world, e)));
  log.on((x) => emit(x.kind === 'step' ? { kind: 'step', ...x.e } : { kind: 'report', ...x.e }));
  const hostP = new Host(world, '100P');
  const hostR = new Host(world, '100R');
  hostP.pairWith(hostR);
  hostR.pairWith(hostP);
  const note = (message: string) => { notes.push(message); emit({ kind: 'note', timeUs: world.nowUs(), message }); };
  if (o.pause) armPause(world, log, o.pause, note);
  const hostOf = (name: string) => (name === '100P' ? hostP : hostR);
  // The application runs where the scenario has a workload running: a journal-fill burst comes from there,
  // and from nowhere while none runs (a burst from another host, or after the scenario stopped the application
  // for a failback, would be a second application of our own making).
  const running: string[] = [];
  const burst = async (bytes: number) => {
    const host = running[running.length - 1];
    if (host === undefined || !hostOf(host).alive) return note('nemesis: journal-fill without a burst: no application is running');
    // 256 KiB writes at queue depth 4 anywhere on the data volume.
    return new Workload(world, history, { host, lvol: DATA_LVOL, queueDepth: 4, blocksPerWrite: 64,
      writes: Math.ceil(bytes / (64 * BLOCK_SIZE_BYTES)), alive: () => hostOf(host).alive && running.includes(host) }).done;
  };
  const nemesis = faulty ? new Nemesis(world, { '100P': hostP, '100R': hostR }, schedule, log, note, burst) : null;
  // Under faults the scenario's expectations (which report, which refusal) may legitimately change; only the
  // checks of truth stay binding, and a liveness phase follows.
  const expectation = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail: ok || !faulty ? detail : `${detail} (not binding under faults)` });
    if (!ok && !faulty) failures.push(`expectation failed: ${name}: ${detail}`);
  };
  const ctx: ScenarioContext = {
    world, log, history, hostP, hostR, checks, scale: o.scale ?? 1, faulty,
    note,
    program: (host, routine) => new CopyControlProgram(world, host, log, routine, config),
    async routine(host, name, run) {
      for (let attempt = 1; ; attempt++) {
        const routine = attempt === 1 ? name : `${name} (run ${attempt})`;
        emit({ kind: 'routine', timeUs: world.nowUs(), host: host.name, routine, phase: 'start' });
        try {
          const r = await run(new CopyControlProgram(world, host, log, routine, config));
          emit({ kind: 'routine', timeUs: world.nowUs(), host: host.name, routine, phase: 'end', outcome: 'completed' });
          return r;
        } catch (e) {
          emit({ kind: 'routine', timeUs: world.nowUs(), host: host.name, routine, phase: 'end', outcome: (e as Error).message });
          if (!(e instanceof RoutineInterrupted) || attempt >= 4) throw e;
          note(`${e.message}: ${name} will be run again`);
          while (!host.alive) await world.sleep(10_000);
        }
      }
    },
    workload: (wo) => {
      const w = new Workload(world, history, { ...wo, alive: () => hostOf(wo.host).alive });
      running.push(wo.host);
      void w.done.finally(() => running.splice(running.lastIndexOf(wo.host), 1));
      return w;
    },
    database: (host, n) => {
      const log = logLvol(world.topology, systemSpec(world.topology, hostSpec(world.topology, host).storage).name);
      if (log < 0) return null;
      // The table lives in data blocks 3072–4095, clear of the block workloads' region (blocks 0–2047).
      const db = new DatabaseWorkload(world, history, transactions, { host, dataLvol: DATA_LVOL, logLvol: log, transactions: n, dataBaseBlock: 3072, dataBlocks: 1024,
        alive: () => hostOf(host).alive });
      running.push(host); // the application runs: a journal-fill burst may come from here
      void db.done.finally(() => running.splice(running.lastIndexOf(host), 1));
      return db;
    },
    check(name, v, detail) {
      const ok = typeof v === 'boolean' ? v : v.length === 0;
      const d = typeof v === 'boolean' ? detail ?? '' : v.length === 0 ? detail ?? 'ok' : v.slice(0, 3).map((x) => x.message).join('; ');
      checks.push({ name, ok, detail: d });
      if (!ok) failures.push(`check failed: ${name}: ${d}`);
    },
    expect: expectation,
    async checkConsistent(system, name) {
      // Pair state and volume bytes of one instant (on threads the system's CPU would otherwise write mid-read).
      const { pair, volumes } = await world.betweenEvents(system, () => ({
        pair: world.definitionInformation(system).find((p) => p.role === 'destination' && p.copyType === 'async'),
        volumes: applicationVolumes(world, system).map((v) => v.slice()),
      }));
      if (pair && !isConsistentDestination(pair)) return expectation(name, false, `${system} holds no consistent image (a formation copy did not finish)`);
      ctx.check(name, history.prefixViolations(volumes));
    },
    expectReport(r, step, dataLoss) {
      expectation(`report ${step} (${dataLoss ? 'data loss' : 'no data loss'})`, r.step === step && r.dataLoss === dataLoss, `${r.step}: ${r.message}`);
    },
  };
  let virtualTimeUs = 0;
  try {
    await scenario.run(ctx);
  } catch (e) {
    if (!(e instanceof RoutineError)) failures.push(`scenario failed: ${(e as Error).stack ?? e}`);
    else if (!faulty || log.abortReason) failures.push(`routine failed: ${e.message}`);
    else note(`routine did not complete under faults: ${e.message}`);
  }
  if (nemesis && !log.abortReason) await liveness(ctx, nemesis, checkers);
  await checkers.checkDependentWritesEverywhere('end of run');
  await checkers.stop();
  await hostP.stop();
  await hostR.stop();
  virtualTimeUs = world.nowUs();
  for (const v of checkers.violations) failures.push(`${v.check} violated at ${Math.round(v.timeUs)} µs: ${v.message}`);
  checks.push({ name: 'checkers (acknowledged writes on destination, prefix consistency, true reports, interlock, dependent writes)', ok: checkers.violations.length === 0,
    detail: Object.entries(checkers.performed).map(([k, n]) => `${k} ×${n}`).join(', ') });
  if (checkers.dependentWriteChecks.length > 0) {
    checks.push({ name: `dependent writes (${transactions.begun} database transactions): no data write without its log write after each failover/failback and at the end`,
      ok: !checkers.violations.some((v) => v.check === 'dependent-writes'), detail: checkers.dependentWriteChecks.join('; ') });
  }
  for (const e of world.controllerErrors) failures.push(`controller ${e.system} stopped: ${e.message}`);
  const result: ScenarioResult = {
    scenario: name, runtime: o.runtime, seed: o.seed, ok: failures.length === 0, failures,
    faults: { profile, schedule, injected: nemesis ? nemesis.injected.map((i) => ({ atUs: Math.round(i.atUs), fault: describeFault(i.fault) })) : [],
      byKind: nemesis ? nemesis.countsByKind() : {} },
    checksPerformed: { ...checkers.performed },
    replay: replayCommand(name, o, schedule),
    traceHash: world.traceHash(), firmwareEvents: world.eventCount(),
    reports: log.reports.map((r) => ({ routine: r.routine, step: r.step, dataLoss: r.dataLoss, host: r.host, message: r.message, timeUs: r.timeUs })),
    routines: routineSummaries(log),
    checks,
    notes,
    pairs: Object.fromEntries(world.topology.systems.map((s) => [s.name, world.definitionInformation(s.name).map((p) => ({
      ...p, stateName: pairStateName(p.state), remoteStorage: world.topology.systems.find((x) => x.id === p.remoteStorageId)?.name ?? '?' }))])),
    volumes: Object.fromEntries(world.topology.systems.map((s) => [s.name,
      Object.fromEntries(s.lvols.map((l, i) => [l.name, l.kind === 'data' ? sha256(world.volume(s.name, i)) : undefined]).filter(([, v]) => v))])),
    acknowledgedWrites: history.acknowledged,
    issuedWrites: history.writes.length,
    asyncMode: o.asyncMode ?? 'journal',
    virtualTimeUs,
    ...(o.copyDevices ? { copyDevices: Object.fromEntries(world.topology.systems.map((s) => [s.name, world.copyDeviceStats(s.name)!])) } : {}),
    ...lineStatsOf(world),
    wallMs: 0,
  };
  await world.close();
  result.wallMs = Math.round(performance.now() - wallStart);
  return result;
}

/** The command-line options that give a run its asynchronous mode (none for the default, journal). */
export function asyncModeArgs(o: { asyncMode?: AsyncMode; snapshotIntervalUs?: number }): string {
  if (!o.asyncMode || o.asyncMode === 'journal') return '';
  return ` --async-mode ${o.asyncMode}${o.snapshotIntervalUs !== undefined ? ` --snapshot-interval-us ${o.snapshotIntervalUs}` : ''}`;
}

/** The common line's counters for the result, when the world has a line. */
function lineStatsOf(world: World): Pick<ScenarioResult, 'switchingDevices' | 'linePorts'> {
  const st = world.commonLineStats();
  return st ? { switchingDevices: st.switchingDevices, linePorts: st.ports } : {};
}

/** The command that reruns exactly this run (the sim runtime replays it event for event). */
export function replayCommand(name: string, o: ScenarioOptions, schedule: ScheduledFault[]): string {
  const base = `npx rclab run ${name} --runtime sim --seed ${o.seed}${o.scale && o.scale !== 1 ? ` --scale ${o.scale}` : ''}${o.plantedBug ? ` --planted-bug ${o.plantedBug}` : ''}${copyDevicesArgs(o.copyDevices)}${asyncModeArgs(o)}`;
  if (o.schedule) return `${base} --fault-schedule '${JSON.stringify(schedule)}'`;
  return o.faults && o.faults !== 'none' ? `${base} --faults ${o.faults}` : base;
}

/**
 * Check 5 (liveness, as TigerBeetle's liveness mode): stop the nemesis, repair everything, bring the system
 * back to normal operation with A2 from host P, and demand within a bound that every pair is duplex and
 * every data volume identical.
 */
/** Times the liveness phase runs its routines when a pair fails on the way (within the bound). */
const LIVENESS_ATTEMPTS = 3;

async function liveness(ctx: ScenarioContext, nemesis: Nemesis, checkers: Checkers, boundUs = 60_000_000): Promise<void> {
  const { world } = ctx;
  const start = world.nowUs();
  try {
    await nemesis.healAll();
    ctx.note('liveness: every fault repaired; A2 from host P must bring every pair to duplex');
    // As an operator would, the routines are run again when a pair fails on the way (frames queued on a link
    // while it was slow still drain after the repair); a violated check is never retried, and the bound holds.
    for (let attempt = 1; ; attempt++) {
      try {
        await world.sleep(1_000_000); // let partners hear each other again
        const program = ctx.program(ctx.hostP, 'liveness');
        if (world.topology.links.some((l) => l.name === 'S8')) { // embodiment 3 (J–P)
          await livenessEmbodiment3(ctx);
          break;
        }
        if (world.topology.systems.some((x) => x.name === 'J')) {
          await livenessEmbodiment4(ctx);
          break;
        }
        const rSide = world.definitionInformation('R').find((p) => p.pairId === PAIR_IR);
        // Embodiment 2 (link S5): reverse operation copies R→P. R holds the newest data while it is the source
        // of R→P, or after a failover whose B1 stopped between S600 and S610 (no pair at R, no failback since).
        const embodiment2 = world.topology.links.some((l) => l.name === 'S5');
        const rpSide = world.definitionInformation('R').find((p) => p.pairId === e2.PAIR_RP);
        const lastReport = ctx.log.reports[ctx.log.reports.length - 1];
        const afterFailover = lastReport !== undefined && (lastReport.step === 'S220' || lastReport.step === 'S250');
        if (embodiment2 && (rpSide?.role === 'source' || (afterFailover && rSide?.role !== 'source'))) {
          await e2.reverseCopying(ctx.program(ctx.hostR, 'liveness B1 reverse copying'));
          await e2.failback(ctx.program(ctx.hostP, 'liveness B2 failback'), { variant0120: true });
        } else if (rSide?.role === 'source') {
          // Reverse operation was under way: R holds the newest data. Bring it home before A2 (as an operator
          // would: a resynchronised R→I, then failback), or A2 would silently discard it.
          const v = await program.queryStable('R', PAIR_IR, 'S500');
          if (v.state !== 'duplex') await program.resyncToDuplex('R', PAIR_IR, 'S500');
          await failback(ctx.program(ctx.hostP, 'liveness A6 failback'), { variant0106: true });
        }
        await (embodiment2 ? e2.initialCopying : initialCopying)(ctx.program(ctx.hostP, 'liveness A2'));
        break;
      } catch (e) {
        if (!(e instanceof RoutineError) || ctx.log.abortReason || attempt >= LIVENESS_ATTEMPTS || world.nowUs() - start > boundUs) throw e;
        ctx.note(`liveness: attempt ${attempt} did not converge (${e.message}); running it again`);
      }
    }
    await settleAsync(ctx, boundUs);
  } catch (e) {
    return checkers.recordLiveness(false, `did not converge: ${(e as Error).message}`);
  }
  const states = world.topology.systems.flatMap((s) => world.definitionInformation(s.name).map((p) => `${s.name}:${p.pairId}=${pairStateName(p.state)}`));
  // Embodiment 3 without its variation leaves J idle in normal operation ([0125]): its volume is not compared.
  const compared = world.topology.systems.filter((s) => !idleInNormalOperation(world.topology).includes(s.name));
  const digests = compared.map((s) => applicationDigest(world, s.name));
  const allDuplex = world.topology.systems.every((s) => world.definitionInformation(s.name).every((p) => p.state === 2));
  const same = digests.every((d) => d === digests[0]);
  checkers.recordLiveness(allDuplex && same && world.nowUs() - start <= boundUs,
    `after repair: ${states.join(' ')}; volumes ${same ? `identical (${compared.map((s) => s.name).join(', ')})` : compared.map((s, i) => `${s.name} ${digests[i]!.slice(0, 12)}`).join(' ')}`);
}

/**
 * Liveness for embodiment 4: R holds the newest data after a failover (D1 reported S1050 or S1080) until a
 * failback reports (S1240 / S1270), or while it is the source of the sync pair R→J without a failback since.
 * Its data is then brought home as an operator would — D2 (forming R→J first if D1 stopped short of S1070),
 * D3 resynchronising suspended pairs first — and A2 returns to normal operation P → I → J → R.
 */
async function livenessEmbodiment4(ctx: ScenarioContext): Promise<void> {
  const { world } = ctx;
  const steps = ctx.log.reports.map((r) => r.step);
  const lastFailover = Math.max(steps.lastIndexOf('S1050'), steps.lastIndexOf('S1080'));
  const lastFailback = Math.max(steps.lastIndexOf('S1240'), steps.lastIndexOf('S1270'));
  const rj = world.definitionInformation('R').find((p) => p.pairId === e4.PAIR_RJ);
  const rNewest = lastFailover > lastFailback || (rj?.role === 'source' && lastFailback < 0);
  if (rNewest) {
    await e4.reverseCopying(ctx.program(ctx.hostR, 'liveness D2 reverse copying'));
    await e4.failback(ctx.program(ctx.hostP, 'liveness D3 failback'), { resyncFirst: true });
  }
  await e4.initialCopying(ctx.program(ctx.hostP, 'liveness A2'));
}

/** Embodiment 3 without the variation (no 232R-2): J takes part in reverse operation only ([0125]). */
function idleInNormalOperation(t: Topology): string[] {
  const embodiment3 = t.links.some((l) => l.name === 'S8');
  const variation = t.systems.find((s) => s.name === 'R')?.lvols.some((l) => l.name === '232R-2') ?? false;
  return embodiment3 && !variation ? ['J'] : [];
}

/**
 * Liveness for embodiment 3: R holds the newest data after a failover report (S250 / S220) with no failback report
 * (S930 / S970) since. It is then brought home as an operator would — C1 (safe to run again), C2 resynchronising a
 * suspended or failure-suspended J→P first (¶0135) — and A2 returns to normal operation (with the variation's R→J).
 */
async function livenessEmbodiment3(ctx: ScenarioContext): Promise<void> {
  const steps = ctx.log.reports.map((r) => r.step);
  const lastFailover = Math.max(steps.lastIndexOf('S250'), steps.lastIndexOf('S220'));
  const lastFailback = Math.max(steps.lastIndexOf('S930'), steps.lastIndexOf('S970'));
  const variation = idleInNormalOperation(ctx.world.topology).length === 0;
  if (lastFailover > lastFailback) {
    await e3.reverseCopying(ctx.program(ctx.hostR, 'liveness C1 reverse copying'), { variation });
    await e3.failback(ctx.program(ctx.hostP, 'liveness C2 failback'), { variant0135: true, resyncAfterFailure: true, variation });
  }
  await e3.initialCopying(ctx.program(ctx.hostP, 'liveness A2'), { variation });
}

/** "(sync P→I)" from the definition information of the system that reported the event. */
export { PAIR_IR, PAIR_PI };
