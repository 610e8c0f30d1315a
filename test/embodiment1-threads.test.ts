// Embodiment 1 on the threads runtime — one worker thread per storage system, latency really waited for —
// and the two runtimes agreeing: the full cycle ends with the same volume digests on both.

import { describe, expect, it } from 'vitest';
import { runScenario } from '../harness/scenarios.ts';
import { expectThreadsCycleMatchesSim } from './scenario-runs.ts';

describe('embodiment 1 on the threads runtime', () => {
  it('embodiment1-cycle: S250 and S540 no data loss, all checks pass, and the same digests as on sim', async () => {
    await expectThreadsCycleMatchesSim('embodiment1-cycle', ['S250 false', 'S540 false']);
  });

  it('embodiment1-double-failure: S220 data loss and R prefix-consistent', async () => {
    const r = await runScenario('embodiment1-double-failure', { runtime: 'threads', seed: 2 });
    expect(r.failures).toEqual([]);
    expect(r.reports.map((x) => `${x.step} ${x.dataLoss}`)).toEqual(['S220 true']);
  });

  const others: Record<string, string[]> = {
    'embodiment1-failover-drain-fails': ['S220 true'],
    'embodiment1-failback-variant': ['S250 false', 'S540 false'],
    'embodiment1-failback-data-loss': ['S250 false', 'S570 true'],
    'embodiment1-rolling-disaster': ['S220 true'],
    'embodiment1-rolling-disaster-fenced': ['S250 false'],
  };
  for (const [name, reports] of Object.entries(others)) {
    it(`${name}: ${reports.join(', ')} on real threads, every check passing`, async () => {
      const r = await runScenario(name, { runtime: 'threads', seed: 3 });
      expect(r.failures).toEqual([]);
      expect(r.reports.map((x) => `${x.step} ${x.dataLoss}`)).toEqual(reports);
      expect(r.ok).toBe(true);
    });
  }
});
