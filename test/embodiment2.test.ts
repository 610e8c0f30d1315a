// Embodiment 2 end to end: link S5 (P–R), B1 reverse copying (S600–S610) and B2 failback (S700–S740) on the
// sim runtime over several seeds, every step number each scenario should show, and the cycle on the threads
// runtime ending with the same volume digests as on sim.

import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../harness/scenarios.ts';
import { expectScenario, expectThreadsCycleMatchesSim, runWithSteps } from './scenario-runs.ts';
import { embodiment2Topology } from '../harness/topology.ts';

const EXPECTED: Record<string, { reports: string[]; steps: string[]; absent: string[] }> = {
  'embodiment2-cycle': {
    reports: ['S250 no data loss', 'S730 no data loss'],
    steps: ['S100', 'S110', 'S200', 'S230', 'S250', 'S260', 'S270', 'S600', 'S610', 'S700', 'S710', 'S720', 'S730'],
    absent: ['S300', 'S400', 'S500', 'S740'], // no A4–A6 (reverse copy control does not exist here), no data loss
  },
  'embodiment2-failback-variant': {
    reports: ['S250 no data loss', 'S730 no data loss'],
    steps: ['S600', 'S610', 'S700', 'S710', 'S720', 'S730'],
    absent: ['S740'],
  },
  'embodiment2-failback-data-loss': {
    reports: ['S250 no data loss', 'S740 data loss'],
    steps: ['S600', 'S610', 'S700', 'S740'],
    absent: ['S710', 'S720', 'S730'], // S700 found failure suspend: nothing to retrieve
  },
};

const run = runWithSteps; // step numbers collected from the routines

describe('embodiment 2 (link S5 P–R): B1 reverse copying and B2 failback', () => {
  it('the topology adds S5 between P and R (1000 km, as S2); every system has its journal volume 232x and the application\'s log volume', () => {
    const t = embodiment2Topology();
    expect(t.links.map((l) => `${l.name} ${l.a}–${l.b} ${l.distanceKm} km`)).toEqual(['S1 P–I 100 km', 'S2 I–R 1000 km', 'S5 P–R 1000 km']);
    for (const s of t.systems) expect(s.lvols.map((l) => l.name)).toEqual([`231${s.name}`, `232${s.name}`, `231${s.name}-log`]);
  });

  it('every embodiment-2 scenario is listed here', () => {
    expect(SCENARIOS.map((s) => s.name).filter((n) => n.startsWith('embodiment2-')).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [name, x] of Object.entries(EXPECTED)) {
    for (const seed of [1, 2, 3]) {
      it(`${name} (seed ${seed}): ${x.reports.join(', ')}; steps ${x.steps.join(' ')}; every check passes`, async () => {
        const { r, steps } = await run(name, seed);
        expectScenario(r, steps, x, 2);
        expect(r.ok).toBe(true);
      });
    }
  }

  it('B1 and B2 copy R→P over S5: pair 3 formed at S610 by initial copying, retrieved at S710, deleted before A2; the cycle ends P = I = R', async () => {
    const { r, lines } = await run('embodiment2-cycle', 4);
    expect(r.ok).toBe(true);
    expect(lines.some((l) => /^S600 B1 .*delete pair 2/.test(l))).toBe(true);
    expect(lines.some((l) => /^S610 B1 .*pair 3 R→P duplex \(initial copying of \d+ tracks\)/.test(l))).toBe(true);
    expect(lines.some((l) => /^S710 B2 .*P retrieved all of 232R: pair suspend/.test(l))).toBe(true);
    expect(lines.some((l) => /^S100 A2 .*delete pair 3/.test(l))).toBe(true);
    // Normal operation again: pairs 1 (P→I) and 2 (I→R) duplex, no pair 3 anywhere.
    expect(Object.values(r.pairs).flat().map((p) => `${p.pairId} ${p.stateName}`).sort()).toEqual(['1 duplex', '1 duplex', '2 duplex', '2 duplex']);
    expect(new Set(Object.values(r.volumes).map((v) => Object.values(v)[0])).size).toBe(1);
  });

  it('¶0120: the variant resynchronises the suspended pair R→P by differences before S710', async () => {
    const { r, lines } = await run('embodiment2-failback-variant', 5);
    expect(r.ok).toBe(true);
    expect(lines.some((l) => /^S700 B2 .*async pair R→P at P: suspend/.test(l))).toBe(true);
    const m = lines.map((l) => /^S700 B2 .*duplex after differential formation copy of (\d+) track/.exec(l)).find(Boolean);
    expect(m, 'S700 differential resync line').toBeTruthy();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1])).toBeLessThan(256); // differences only, not the whole volume
  });

  it('embodiment2-cycle on the threads runtime: S250 and S730 no data loss, all checks pass, and the same digests as on sim', async () => {
    await expectThreadsCycleMatchesSim('embodiment2-cycle', ['S250 false', 'S730 false']);
  }, 60_000);
});
