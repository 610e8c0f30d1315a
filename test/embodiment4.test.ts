// Embodiment 4 end to end: P →sync I →async J →async R and back, D1 failover (S1000–S1080), D2 reverse copying
// (S1100–S1110) and D3 failback (S1200–S1270) on the sim runtime over several seeds, every step number each
// scenario should show, the second journal volume of I and J, the liveness phase under faults, and the cycle on
// the threads runtime ending with the same volume digests as on sim.

import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../harness/scenarios.ts';
import { expectScenario, expectThreadsCycleMatchesSim, runWithSteps } from './scenario-runs.ts';
import { embodiment4Topology, DATA_LVOL } from '../harness/topology.ts';
import { createWorld } from '../harness/runtimes.ts';
import { Host } from '../harness/host.ts';
import { CopyControlProgram, OperationsLog } from '../harness/copy-control.ts';
import { WriteHistory } from '../harness/history.ts';
import { Workload } from '../harness/workload.ts';
import * as e4 from '../harness/routines/embodiment4.ts';

const D1 = ['S1000', 'S1010', 'S1020', 'S1030', 'S1040'];
const EXPECTED: Record<string, { reports: string[]; steps: string[]; absent: string[] }> = {
  'embodiment4-cycle': {
    reports: ['S1050 no data loss', 'S1240 no data loss'],
    steps: ['S100', 'S110', ...D1, 'S1050', 'S1060', 'S1070', 'S1100', 'S1110', 'S1200', 'S1210', 'S1220', 'S1230', 'S1240', 'S1250', 'S1260'],
    absent: ['S1080', 'S1270', 'S200', 'S300', 'S500', 'S600'], // no data loss; none of embodiment 1's or 2's routines
  },
  'embodiment4-failover-restart-early': {
    reports: ['S1050 no data loss'],
    steps: [...D1, 'S1050', 'S1060', 'S1070'],
    absent: ['S1080'],
  },
  'embodiment4-data-loss-s1020': {
    reports: ['S1080 data loss'],
    steps: ['S1000', 'S1010', 'S1020', 'S1080'],
    absent: ['S1030', 'S1040', 'S1050', 'S1060', 'S1070'], // S1020 found failure suspend: D1 ends at S1080
  },
  'embodiment4-data-loss-s1040': {
    reports: ['S1080 data loss'],
    steps: [...D1, 'S1080'],
    absent: ['S1050', 'S1060', 'S1070'],
  },
};

const run = runWithSteps; // step numbers collected from the routines

describe('embodiment 4 (P–I–J–R, the same scheme in both directions): D1 failover, D2 reverse copying, D3 failback', () => {
  it('the topology: P, I, J, R in series over S1 (100 km), S6 (1000 km), S7 (100 km); I and J have a second journal volume; every system the application\'s log volume last', () => {
    const t = embodiment4Topology();
    expect(t.systems.map((s) => `${s.name}:${s.id}`)).toEqual(['P:0', 'I:1', 'J:2', 'R:3']);
    expect(t.links.map((l) => `${l.name} ${l.a}–${l.b} ${l.distanceKm} km`)).toEqual(['S1 P–I 100 km', 'S6 I–J 1000 km', 'S7 J–R 100 km']);
    expect(Object.fromEntries(t.systems.map((s) => [s.name, s.lvols.map((l) => `${l.name} ${l.kind}`)]))).toEqual({
      P: ['231P data', '232P journal', '231P-log data'], I: ['231I data', '232I journal', '232I-2 journal', '231I-log data'],
      J: ['231J data', '232J journal', '232J-2 journal', '231J-log data'], R: ['231R data', '232R journal', '231R-log data'],
    });
    expect(t.hosts.map((h) => `${h.name}@${h.storage}`)).toEqual(['100P@P', '100R@R']);
  });

  it('every embodiment-4 scenario is listed here', () => {
    expect(SCENARIOS.map((s) => s.name).filter((n) => n.startsWith('embodiment4-')).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [name, x] of Object.entries(EXPECTED)) {
    for (const seed of [1, 2, 3]) {
      it(`${name} (seed ${seed}): ${x.reports.join(', ')}; steps ${x.steps.join(' ')}; every check passes`, async () => {
        const { r, steps } = await run(name, seed);
        expectScenario(r, steps, x, 4);
        // The checkers sampled the async destinations J and R (and I and P in reverse operation).
        expect(r.checksPerformed['prefix-consistent']).toBeGreaterThan(0);
        expect(r.ok).toBe(true);
      }, 60_000);
    }
  }

  it('the cycle: J journals onward in normal operation (232J-2), I in reverse operation (232I-2); S1070 needs no formation copy; back to normal P = I = J = R', async () => {
    const { r, lines } = await run('embodiment4-cycle', 4);
    expect(r.ok).toBe(true);
    expect(lines.some((l) => /^S110 A2 .*form async pair J→R \(pair 3\) with initial copying \(journal LVOL 2 at J, LVOL 1 at R\)/.test(l))).toBe(true);
    expect(lines.some((l) => /^S1030 D1 .*R's retrieval of all log information from 232J-2 ended: pair suspend/.test(l))).toBe(true);
    expect(lines.some((l) => /^S1060 D1 .*delete pair 3/.test(l))).toBe(true);
    expect(lines.some((l) => /^S1070 D1 .*form sync pair R→J \(pair 4\) without formation copy/.test(l))).toBe(true);
    expect(lines.some((l) => /^S1100 D2 .*J: reverse pair 2/.test(l))).toBe(true);
    expect(lines.some((l) => /^S1110 D2 .*form async pair I→P \(pair 5\) with initial copying \(journal LVOL 2 at I, LVOL 1 at P\)/.test(l))).toBe(true);
    // S1220: what host R wrote in reverse operation went R →sync J →async I →async P (the cascade through 232I-2).
    const m = lines.map((l) => /^S1220 D3 .*from 232I-2 ended: pair suspend, applied through sequence (\d+)/.exec(l)).find(Boolean);
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(lines.some((l) => /^S1250 D3 .*delete pair 5/.test(l))).toBe(true);
    expect(lines.some((l) => /^S110 A2 .*delete pair 4/.test(l))).toBe(true);
    // Normal operation again: pairs 1 (P→I sync), 2 (I→J async), 3 (J→R async) duplex, nothing else.
    const pairs = Object.entries(r.pairs).flatMap(([s, ps]) => ps.map((p) => `${s}:${p.pairId} ${p.role} ${p.copyType} ${p.stateName}`)).sort();
    expect(pairs).toEqual(['I:1 destination sync duplex', 'I:2 source async duplex', 'J:2 destination async duplex', 'J:3 source async duplex',
      'P:1 source sync duplex', 'R:3 destination async duplex']);
    expect(new Set(Object.values(r.volumes).map((v) => Object.values(v)[0])).size).toBe(1);
  }, 60_000);

  it('¶0150: work restarted before S1070, so S1070 forms R→J with a formation copy of the whole group (data and log volume)', async () => {
    const { r, lines } = await run('embodiment4-failover-restart-early', 5);
    expect(r.ok).toBe(true);
    expect(lines.some((l) => /^S1070 D1 .*host R has written since S1030 .*formation copy needed/.test(l))).toBe(true);
    expect(lines.some((l) => /^S1070 D1 .*pair 4 R→J duplex \(initial copying of 272 tracks\)/.test(l))).toBe(true);
  }, 60_000);

  it('under faults (default profile) every check of truth holds and the liveness phase brings all four sites back to P → I → J → R', async () => {
    for (const [name, seed] of [['embodiment4-cycle', 11], ['embodiment4-data-loss-s1040', 12]] as const) {
      const { r } = await run(name, seed, { faults: 'default' });
      expect(r.failures, `${name} seed ${seed}`).toEqual([]);
      expect(r.checksPerformed.liveness).toBe(1);
      expect(new Set(Object.values(r.volumes).map((v) => Object.values(v)[0])).size).toBe(1);
    }
  }, 120_000);

  it('embodiment4-cycle on the threads runtime: S1050 and S1240 no data loss, all checks pass, and the same digests as on sim', async () => {
    await expectThreadsCycleMatchesSim('embodiment4-cycle', ['S1050 false', 'S1240 false']);
  }, 90_000);

  it('D3 S1270: S6 cut during reverse operation while host R writes on → S1200 cannot retrieve, S1210 failure suspend → data loss, and it is real', async () => {
    const world = await createWorld('sim', embodiment4Topology({ dataVolumeBytes: 4 * 1024 * 1024 }), 7);
    try {
      const log = new OperationsLog(), history = new WriteHistory();
      const hostP = new Host(world, '100P'), hostR = new Host(world, '100R');
      await e4.initialCopying(new CopyControlProgram(world, hostP, log, 'A2'));
      // Reverse operation straight away (D2 forms R→J itself when no failover did): R →sync J →async I →async P.
      await e4.reverseCopying(new CopyControlProgram(world, hostR, log, 'D2'));
      const writesR = (writes: number) => new Workload(world, history, { host: '100R', lvol: DATA_LVOL, writes, queueDepth: 4, regionBlocks: 512 }).done;
      await writesR(200);
      await world.fault({ kind: 'cut-link', link: 'S6' });
      await writesR(200); // on R and J (sync), never on I or P
      const report = await e4.failback(new CopyControlProgram(world, hostP, log, 'D3'));
      const steps = log.steps.filter((x) => x.routine === 'D3').map((x) => `${x.step} ${x.message}`);
      expect(`${report.step} ${report.dataLoss}`).toBe('S1270 true');
      expect(steps.some((l) => /^S1210 async pair J→I at I: failure suspend/.test(l))).toBe(true);
      expect(steps.some((l) => /^S12[2-6]0/.test(l))).toBe(false); // no retrieval from I, no no-data-loss, no delete/resync
      // Data loss is real, P is a consistent older image, and writable (pair I→P split at S1270).
      expect(history.missingAcknowledged(world.volume('P', DATA_LVOL), 1_000_000).length).toBeGreaterThan(0);
      expect(history.prefixViolations(world.volume('P', DATA_LVOL))).toEqual([]);
      const ip = await world.command('P', { op: 'query', pairId: e4.PAIR_IP });
      expect(ip.ok && ip.pair?.state).toBe('suspend');
      await hostP.stop(); await hostR.stop();
    } finally {
      await world.close();
    }
  }, 60_000);
});

