// Embodiment 1 end to end on the sim runtime: every scenario (every routine, every branch) over several
// seeds, and determinism — the same seed gives the same run, event for event.

import { describe, expect, it } from 'vitest';
import { runScenario, SCENARIOS as ALL_SCENARIOS } from '../harness/scenarios.ts';

// Embodiment 2's scenarios have their own file (test/embodiment2.test.ts).
const SCENARIOS = ALL_SCENARIOS.filter((s) => s.name.startsWith('embodiment1-'));

const EXPECTED_REPORTS: Record<string, string[]> = {
  'embodiment1-cycle': ['S250 no data loss', 'S540 no data loss'],
  'embodiment1-double-failure': ['S220 data loss'],
  'embodiment1-failover-drain-fails': ['S220 data loss'],
  'embodiment1-failback-variant': ['S250 no data loss', 'S540 no data loss'],
  'embodiment1-failback-data-loss': ['S250 no data loss', 'S570 data loss'],
  'embodiment1-rolling-disaster': ['S220 data loss'],
  'embodiment1-rolling-disaster-fenced': ['S250 no data loss'],
};

describe('embodiment 1 scenarios on the sim runtime', () => {
  it('every scenario has its expected reports listed here', () => {
    expect(SCENARIOS.map((s) => s.name).sort()).toEqual(Object.keys(EXPECTED_REPORTS).sort());
  });
  for (const s of SCENARIOS) {
    for (const seed of [1, 2, 3]) {
      it(`${s.name} (seed ${seed}): ${EXPECTED_REPORTS[s.name]!.join(', ')}; every check passes`, async () => {
        const r = await runScenario(s.name, { runtime: 'sim', seed });
        expect(r.failures).toEqual([]);
        expect(r.reports.map((x) => `${x.step} ${x.dataLoss ? 'data loss' : 'no data loss'}`)).toEqual(EXPECTED_REPORTS[s.name]);
        expect(r.checks.length).toBeGreaterThan(2);
        expect(r.checks.every((c) => c.ok)).toBe(true);
        expect(r.ok).toBe(true);
      });
    }
  }

  it('the same seed gives the same trace hash and digests; another seed a different trace', async () => {
    const a = await runScenario('embodiment1-double-failure', { runtime: 'sim', seed: 42 });
    const b = await runScenario('embodiment1-double-failure', { runtime: 'sim', seed: 42 });
    const c = await runScenario('embodiment1-double-failure', { runtime: 'sim', seed: 43 });
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.firmwareEvents).toBe(a.firmwareEvents);
    expect(b.volumes).toEqual(a.volumes);
    expect(c.traceHash).not.toBe(a.traceHash);
  });

  it('S100–S110 and S200–S270 … S500–S540 all appear, with their step numbers, in the cycle', async () => {
    const steps: string[] = [];
    await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 5, timeline: (e) => { if (e.kind === 'step' || e.kind === 'report') steps.push(e.step); } });
    for (const s of ['S100', 'S110', 'S200', 'S210', 'S230', 'S240', 'S250', 'S260', 'S270', 'S300', 'S310', 'S320', 'S330', 'S340',
      'S400', 'S410', 'S420', 'S430', 'S440', 'S500', 'S510', 'S520', 'S530', 'S540']) expect(steps).toContain(s);
  });
});
