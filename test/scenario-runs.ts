// Shared by the embodiment test files: run a scenario while collecting the step numbers its routines logged, and
// hold the result against what the scenario should show (reports in order, steps present and absent, every check).

import { expect } from 'vitest';
import { runScenario, type ScenarioResult } from '../harness/scenarios.ts';

export interface ScenarioExpectation {
  /** Reports in order, as "S250 no data loss" / "S740 data loss". */
  reports: string[];
  steps: string[];
  absent: string[];
}

/** Step numbers of the routines' step log and reports (the firmware's own lines are not counted), and the lines. */
export async function runWithSteps(name: string, seed: number, o: { runtime?: 'sim' | 'threads'; faults?: 'default' } = {}):
  Promise<{ r: ScenarioResult; steps: string[]; lines: string[] }> {
  const steps: string[] = [], lines: string[] = [];
  // Scale 0.25 (as the sweeps and the claims coverage): the same routines and step numbers with shorter workloads.
  const r = await runScenario(name, { runtime: o.runtime ?? 'sim', seed, faults: o.faults, scale: 0.25, timeline: (e) => {
    if (e.kind === 'step' || e.kind === 'report') { steps.push(e.step); lines.push(`${e.step} ${e.routine}: ${e.message}`); }
  } });
  return { r, steps, lines };
}

/** The run behaved as its scenario says: no failure, the reports in order, the steps, at least `minChecks` checks, all passing. */
export function expectScenario(r: ScenarioResult, steps: string[], x: ScenarioExpectation, minChecks: number): void {
  expect(r.failures).toEqual([]);
  expect(r.reports.map((q) => `${q.step} ${q.dataLoss ? 'data loss' : 'no data loss'}`)).toEqual(x.reports);
  for (const s of x.steps) expect(steps, `step ${s}`).toContain(s);
  for (const s of x.absent) expect(steps, `step ${s}`).not.toContain(s);
  expect(r.checks.length).toBeGreaterThan(minChecks);
  expect(r.checks.every((c) => c.ok)).toBe(true);
  expect(r.ok).toBe(true);
}

/**
 * A -cycle scenario on the threads runtime behaves as designed and ends exactly as on sim: the same reports, the
 * same volume digests (every site identical), the same number of acknowledged writes.
 */
export async function expectThreadsCycleMatchesSim(name: string, reports: string[]): Promise<void> {
  const threads = await runScenario(name, { runtime: 'threads', seed: 1 });
  expect(threads.failures).toEqual([]);
  expect(threads.reports.map((q) => `${q.step} ${q.dataLoss}`)).toEqual(reports);
  const sim = await runScenario(name, { runtime: 'sim', seed: 1 });
  expect(sim.ok).toBe(true);
  expect(threads.volumes).toEqual(sim.volumes);
  expect(new Set(Object.values(threads.volumes).map((v) => Object.values(v)[0])).size).toBe(1); // every site identical
  expect(threads.acknowledgedWrites).toBe(sim.acknowledgedWrites);
}
