// Seed sweeps: many seeds of the sim runtime with the nemesis, in a piscina pool, with a progress bar and an end
// summary; a failing fault schedule is shrunk (delta debugging: drop faults, shorten them) to a minimal one that
// still fails, and reported with the exact command that replays it.

import type { CopyControlConfig } from './copy-control.ts';
import { cpus } from 'node:os';
import cliProgress from 'cli-progress';
import { Piscina } from 'piscina';
import type { PlantedBug } from '../firmware/constants.ts';
import type { FaultProfile, ScheduledFault } from './nemesis.ts';
import { describeFault } from './nemesis.ts';
import { asyncModeArgs, replayCommand, SCENARIOS } from './scenarios.ts';
import { copyDevicesArgs, type CopyDevicesOption } from './copy-devices.ts';
import runSweepTask, { type SweepTask, type SweepTaskResult } from './sweep-task.ts';

export interface SweepOptions extends CopyControlConfig {
  scenarios: string[];
  seeds: number;
  from: number;
  workers: number;
  faults: FaultProfile;
  scale: number;
  plantedBug?: PlantedBug;
  /** Copy devices on every storage system of every run (¶0168); in every replay command too. */
  copyDevices?: CopyDevicesOption;
  /** Stop scheduling new seeds after the first failure (the planted-bug test wants the first one fast). */
  stopOnFailure?: boolean;
  shrink?: boolean;
  progress?: boolean;
}

export interface SweepFailure extends SweepTaskResult {
  shrunk?: { schedule: ScheduledFault[]; failures: string[]; replay: string; runs: number };
}

export interface SweepSummary {
  seedsRun: number;
  seedsPerSecond: number;
  wallMs: number;
  faultsByKind: Record<string, number>;
  checksPerformed: Record<string, number>;
  failures: SweepFailure[];
}

/** Seed k runs scenario k mod n, so a sweep over all scenarios covers each evenly. */
export function taskFor(o: SweepOptions, seed: number): SweepTask {
  return { scenario: o.scenarios[seed % o.scenarios.length]!, seed, faults: o.faults, scale: o.scale, plantedBug: o.plantedBug, copyDevices: o.copyDevices,
    asyncMode: o.asyncMode, snapshotIntervalUs: o.snapshotIntervalUs };
}

export async function sweep(o: SweepOptions): Promise<SweepSummary> {
  const start = performance.now();
  const pool = new Piscina({ filename: new URL('./sweep-worker.mjs', import.meta.url).href, maxThreads: o.workers, minThreads: o.workers, idleTimeout: 1000 });
  const bar = o.progress ? new cliProgress.SingleBar({
    format: 'sweep [{bar}] {value}/{total} seeds | {rate} seeds/s | {failed} failed | ETA {eta_formatted}', hideCursor: true,
  }, cliProgress.Presets.shades_classic) : null;
  bar?.start(o.seeds, 0, { rate: '0.0', failed: 0 });
  const summary: SweepSummary = { seedsRun: 0, seedsPerSecond: 0, wallMs: 0, faultsByKind: {}, checksPerformed: {}, failures: [] };
  let next = o.from;
  const end = o.from + o.seeds;
  const add = (into: Record<string, number>, from: Record<string, number>) => { for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v; };
  const workerLoop = async () => {
    while (next < end && !(o.stopOnFailure && summary.failures.length > 0)) {
      const seed = next++;
      const task = taskFor(o, seed);
      const r = await (pool.run(task) as Promise<SweepTaskResult>).catch((e: Error): SweepTaskResult => ({
        scenario: task.scenario, seed, ok: false, failures: [`the run itself failed: ${e.stack ?? e.message}`], schedule: [], faultsByKind: {},
        checksPerformed: {}, replay: replayCommand(task.scenario, { ...task, runtime: 'sim' }, []), wallMs: 0 }));
      summary.seedsRun++;
      add(summary.faultsByKind, r.faultsByKind);
      add(summary.checksPerformed, r.checksPerformed);
      if (!r.ok) summary.failures.push(r);
      const secs = (performance.now() - start) / 1000;
      bar?.update(summary.seedsRun, { rate: (summary.seedsRun / secs).toFixed(1), failed: summary.failures.length });
    }
  };
  try {
    await Promise.all(Array.from({ length: o.workers * 2 }, workerLoop));
  } finally {
    bar?.stop();
    await pool.destroy();
  }
  summary.failures.sort((a, b) => a.seed - b.seed);
  if (o.shrink !== false) for (const f of summary.failures.slice(0, 3)) f.shrunk = await shrink(o, f);
  summary.wallMs = Math.round(performance.now() - start);
  summary.seedsPerSecond = Math.round((summary.seedsRun / (summary.wallMs / 1000)) * 10) / 10;
  return summary;
}

/**
 * Delta debugging of a failing schedule (same scenario and seed, exact schedule): drop faults one at a time
 * while the run still fails, then halve each remaining fault's duration while it still fails.
 */
export async function shrink(o: SweepOptions, failed: SweepTaskResult, maxRuns = 40): Promise<SweepFailure['shrunk']> {
  let schedule = failed.schedule.map((s) => ({ ...s }));
  let last: SweepTaskResult = failed;
  let runs = 0;
  const fails = async (candidate: ScheduledFault[]) => {
    runs++;
    const r = await runSweepTask({ ...taskFor(o, failed.seed), scenario: failed.scenario, schedule: candidate });
    if (!r.ok) last = r;
    return !r.ok;
  };
  for (let i = 0; i < schedule.length && runs < maxRuns;) {
    const without = schedule.filter((_, j) => j !== i);
    if (await fails(without)) schedule = without;
    else i++;
  }
  for (const s of schedule) {
    while (s.repairAfterUs > 10_000 && runs < maxRuns) {
      const shorter = schedule.map((x) => (x === s ? { ...x, repairAfterUs: Math.round(x.repairAfterUs / 2) } : x));
      if (!(await fails(shorter))) break;
      s.repairAfterUs = Math.round(s.repairAfterUs / 2);
    }
  }
  return { schedule, failures: last.failures, replay: last.replay, runs };
}

export function defaultWorkers(): number {
  return Math.max(1, cpus().length);
}

export function allScenarioNames(): string[] {
  return SCENARIOS.map((s) => s.name);
}

export function formatSummary(s: SweepSummary, o: SweepOptions): string {
  const lines = [
    '',
    `sweep: ${s.seedsRun} seeds (${o.from}..${o.from + s.seedsRun - 1}) of ${o.scenarios.length === SCENARIOS.length ? 'all scenarios' : o.scenarios.join(', ')}, fault profile ${o.faults}${o.plantedBug ? `, planted bug ${o.plantedBug}` : ''}${o.copyDevices ? `, copy devices (${copyDevicesArgs(o.copyDevices).trim()})` : ''}${asyncModeArgs(o) ? `, ${asyncModeArgs(o).trim()}` : ''}`,
    `  ${(s.wallMs / 1000).toFixed(1)} s, ${s.seedsPerSecond} seeds/s on ${o.workers} worker(s)`,
    `  faults injected: ${Object.entries(s.faultsByKind).sort().map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    `  checks performed: ${Object.entries(s.checksPerformed).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  violations: ${s.failures.length}`,
  ];
  for (const f of s.failures.slice(0, 10)) {
    lines.push(`  ✘ ${f.scenario} seed ${f.seed}: ${f.failures[0] ?? ''}`);
    lines.push(`    fault schedule: ${f.schedule.map((x) => `${x.atStep ?? `${Math.round((x.atUs ?? 0) / 1000)} ms`} ${describeFault(x.fault)} for ${Math.round(x.repairAfterUs / 1000)} ms`).join('; ') || 'none'}`);
    lines.push(`    replay: ${f.replay}`);
    if (f.shrunk) {
      lines.push(`    shrunk in ${f.shrunk.runs} runs to ${f.shrunk.schedule.length} fault(s): ${f.shrunk.schedule.map((x) => `${Math.round((x.atUs ?? 0) / 1000)} ms ${describeFault(x.fault)} for ${Math.round(x.repairAfterUs / 1000)} ms`).join('; ') || 'none (fails without faults)'}`);
      lines.push(`    replay (shrunk): ${f.shrunk.replay}`);
    }
  }
  return lines.join('\n');
}
