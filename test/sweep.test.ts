// Seed sweeps find bugs on their own: a clean sweep of every scenario under the default fault profile has no
// violation, and each deliberately planted bug (test-only build flag) is found within a bounded number of seeds,
// with a shrunk schedule and a replay command that reproduces it.

import { describe, expect, it } from 'vitest';
import { runScenario } from '../harness/scenarios.ts';
import { allScenarioNames, sweep, type SweepOptions } from '../harness/sweep.ts';

const base: SweepOptions = { scenarios: allScenarioNames(), seeds: 14, from: 500, workers: 2, faults: 'default', scale: 0.25, progress: false };

describe('seed sweeps (sim runtime, piscina pool)', () => {
  it('14 seeds over every scenario with the default fault profile: faults injected, every check performed, no violation', async () => {
    const s = await sweep(base);
    expect(s.seedsRun).toBe(14);
    expect(s.failures.map((f) => `${f.scenario} ${f.seed}: ${f.failures[0]}`)).toEqual([]);
    expect(Object.values(s.faultsByKind).reduce((a, b) => a + b, 0)).toBeGreaterThan(10);
    for (const check of ['acknowledged-on-destination', 'prefix-consistent', 'report-true', 'interlock', 'liveness']) {
      expect(s.checksPerformed[check], check).toBeGreaterThan(0);
    }
  });

  it('planted bug sync-ack-before-copy (acknowledge before the destination stored it) is found within 3 seeds', async () => {
    const s = await sweep({ ...base, seeds: 3, from: 1, plantedBug: 'sync-ack-before-copy', stopOnFailure: true });
    expect(s.failures.length).toBeGreaterThan(0);
    expect(s.failures[0]!.failures.join(' ')).toMatch(/acknowledged-on-destination violated[^:]*: write \d+ .* acknowledged to 100P on duplex sync pair 1 but not on I/);
  });

  it('planted bug restore-out-of-order is found within 40 seeds, shrunk to a schedule that still fails when replayed', async () => {
    const s = await sweep({ ...base, seeds: 40, from: 1, plantedBug: 'restore-out-of-order', stopOnFailure: true });
    expect(s.failures.length).toBeGreaterThan(0);
    const f = s.failures[0]!;
    expect(f.failures.join(' ')).toMatch(/prefix-consistent|lacks write/);
    expect(f.shrunk!.schedule.length).toBeLessThanOrEqual(f.schedule.length);
    expect(f.shrunk!.replay).toContain('--planted-bug restore-out-of-order');
    // The shrunk schedule reproduces the violation exactly (same seed, same schedule).
    const replay = await runScenario(f.scenario, { runtime: 'sim', seed: f.seed, scale: 0.25, plantedBug: 'restore-out-of-order', schedule: f.shrunk!.schedule, sampleUs: 5000 });
    expect(replay.ok).toBe(false);
    expect(replay.failures.join(' ')).toMatch(/prefix-consistent|lacks write/);
    // Without the planted bug the same schedule breaks no check of truth: the checkers found the bug, not the faults.
    const clean = await runScenario(f.scenario, { runtime: 'sim', seed: f.seed, scale: 0.25, schedule: f.shrunk!.schedule, sampleUs: 5000 });
    expect(clean.failures.filter((x) => /violated|check failed/.test(x))).toEqual([]);
  });
});
