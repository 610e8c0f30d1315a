// One task of a seed sweep, run in a piscina worker: a scenario on the sim runtime with the nemesis, reduced to
// what the sweep's summary needs.

import type { CopyControlConfig } from './copy-control.ts';
import type { PlantedBug } from '../firmware/constants.ts';
import type { FaultProfile, ScheduledFault } from './nemesis.ts';
import { runScenario } from './scenarios.ts';
import type { CopyDevicesOption } from './copy-devices.ts';

export interface SweepTask extends CopyControlConfig {
  scenario: string;
  seed: number;
  faults: FaultProfile;
  schedule?: ScheduledFault[];
  scale: number;
  plantedBug?: PlantedBug;
  copyDevices?: CopyDevicesOption;
}

export interface SweepTaskResult {
  scenario: string;
  seed: number;
  ok: boolean;
  failures: string[];
  schedule: ScheduledFault[];
  faultsByKind: Record<string, number>;
  checksPerformed: Record<string, number>;
  replay: string;
  wallMs: number;
}

export default async function runSweepTask(t: SweepTask): Promise<SweepTaskResult> {
  const r = await runScenario(t.scenario, { runtime: 'sim', seed: t.seed, faults: t.faults, schedule: t.schedule, scale: t.scale, plantedBug: t.plantedBug, copyDevices: t.copyDevices,
    asyncMode: t.asyncMode, snapshotIntervalUs: t.snapshotIntervalUs, sampleUs: 5000 });
  return {
    scenario: t.scenario, seed: t.seed, ok: r.ok, failures: r.failures.slice(0, 5), schedule: r.faults.schedule, faultsByKind: r.faults.byKind,
    checksPerformed: r.checksPerformed, replay: r.replay, wallMs: r.wallMs,
  };
}
