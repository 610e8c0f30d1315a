// The study's synchronous-against-asynchronous section (bench/study/sync-vs-async.ts): the fitted latency per km,
// the reach within a latency budget and the IOPS share, on made-up cells (exact arithmetic) and on real sim cells,
// where the physics must come out: 10 µs per km of link (out and back at 5 µs/km).

import { describe, expect, it } from 'vitest';
import { runCell, roundTripUs, type CellResult, type CellSpec } from '../bench/study/cells.ts';
import { crossing, fitLine, PHYSICS_US_PER_KM, syncVsAsync, syncVsAsyncMarkdown, type ShareCell } from '../bench/study/sync-vs-async.ts';

const SIM_WINDOW = { warmupUs: 20_000, measureUs: 50_000, maxWrites: 600, minWrites: 200 };

/** A cell with only what the comparison reads. */
function cell(spec: Omit<CellSpec, 'runtime' | 'blockBytes'>, iops: number, p50Us: number): CellResult {
  return { runtime: 'sim', blockBytes: 4096, ...spec, iops, latencyUs: { p50: p50Us, p99: p50Us, p999: p50Us, max: p50Us, mean: p50Us },
    writes: 1000, measuredUs: 1, mbPerS: 0, refused: {}, firmwareEvents: 0, wallMs: 0 } as CellResult;
}

const share = (distanceKm: number, s: number): ShareCell => ({ distanceKm, syncIops: s * 100, asyncIops: 100, share: s, addedP50Us: 0 });

describe('synchronous against asynchronous (the study report\'s section)', () => {
  it('S100 fits the latency a synchronous write adds per km by least squares', () => {
    const f = fitLine([0, 10, 100, 1000].map((x) => ({ x, y: 120 + 10 * x })))!;
    expect(f.usPerKm).toBeCloseTo(10, 10);
    expect(f.serviceUs).toBeCloseTo(120, 8);
    expect(f.r2).toBeCloseTo(1, 12);
    const noisy = fitLine([{ x: 0, y: 100 }, { x: 100, y: 1150 }, { x: 200, y: 2100 }])!;
    expect(noisy.usPerKm).toBeCloseTo(10, 10); // (2100 − 100) / 200
    expect(noisy.serviceUs).toBeCloseTo(1116.6667 - 1000, 3); // through the means: ȳ − 10 × x̄ (x̄ = 100)
    expect(noisy.r2).toBeLessThan(1);
    expect(fitLine([{ x: 5, y: 1 }])).toBeNull();
    expect(fitLine([{ x: 5, y: 1 }, { x: 5, y: 2 }])).toBeNull(); // one distance: no slope
  });

  it('S100 the distance at which the share falls to a half: 1 / share interpolated between the distances that bracket it', () => {
    // 1 / share goes 1 → 4 between 0 and 300 km, so it is 2 at 100 km.
    expect(crossing([share(0, 1), share(300, 0.25)], 0.5)).toEqual({ km: 100 });
    expect(crossing([share(0, 0.9), share(10, 0.8), null, share(1000, 0.6)], 0.5)).toEqual({ above: 1000 });
    expect(crossing([share(0, 0.4), share(10, 0.2)], 0.5)).toEqual({ below: 0 });
    expect(crossing([null, null], 0.5)).toBeNull();
  });

  it('S100/S110 on made-up cells: shares, added latency, reach within each budget', () => {
    const cells: CellResult[] = [];
    for (const d of [0, 100, 1000]) {
      cells.push(cell({ scheme: 'sync', distanceKm: d, queueDepth: 1 }, 1e6 / (100 + 10 * d), 100 + 10 * d));
      cells.push(cell({ scheme: 'async', distanceKm: d, queueDepth: 1 }, 1e6 / 80, 80));
    }
    const x = syncVsAsync(cells, 'sim', 4096)!;
    expect(x.fit!.usPerKm).toBeCloseTo(10, 8);
    expect(x.fit!.serviceUs).toBeCloseTo(100, 6);
    const row = x.rows[0]!;
    expect(row.cells.map((c) => c!.share)).toEqual([0.8, 80 / 1100, 80 / 10100]);
    expect(row.cells.map((c) => c!.addedP50Us)).toEqual([20, 1020, 10020]);
    // 1 / share: 1.25 at 0 km, 13.75 at 100 km; 2 at 6 km.
    expect('km' in row.half! && row.half.km).toBeCloseTo(6, 10);
    // 0.5 ms: (500 − 100) / 10 = 40 km from the line; measured within it only 0 km. 5 ms: 490 km; measured 100 km.
    expect(x.reach.find((r) => r.budgetMs === 0.5)).toMatchObject({ fittedKm: expect.closeTo(40, 8), measuredKm: 0 });
    expect(x.reach.find((r) => r.budgetMs === 5)).toMatchObject({ fittedKm: expect.closeTo(490, 8), measuredKm: 100 });
    // A budget under the service time reaches nowhere.
    const slow = syncVsAsync(cells.map((c) => (c.scheme === 'sync' ? { ...c, latencyUs: { ...c.latencyUs, p50: c.latencyUs.p50 + 600 } } : c)), 'sim', 4096)!;
    expect(slow.reach.find((r) => r.budgetMs === 0.5)).toEqual({ budgetMs: 0.5, fittedKm: null, measuredKm: null });
    // No synchronous cells of that block size: no section.
    expect(syncVsAsync(cells, 'sim', 65536)).toBeNull();
    expect(syncVsAsyncMarkdown(cells.filter((c) => c.scheme === 'async'))).toEqual([]);
    const md = syncVsAsyncMarkdown(cells).join('\n');
    expect(md).toMatch(/\*\*sim\*\*: latency a synchronous pair adds per km .* 4 KiB \*\*10\.00 µs\/km\*\* \(\+0\.0 % on the physics\) \+ 100 µs/);
    expect(md).toMatch(/^\| 1 \| 0\.80 \(\+0\.02 ms\) \| 0\.07 \(\+1\.02 ms\) \| 0\.01 \(\+10\.0 ms\) \| ≈ 6 km \|$/m);
    expect(md).toMatch(/^\| 0\.5 ms \| 40 km \/ 0 km \|$/m);
  });

  it('S100/S110 on sim cells the physics comes out: 10 µs per km, and synchronous IOPS fall as 1 / (service + round trip)', async () => {
    const cells: CellResult[] = [];
    for (const scheme of ['sync', 'async'] as const) for (const distanceKm of [0, 100, 1000]) {
      cells.push(await runCell({ runtime: 'sim', scheme, distanceKm, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW));
    }
    const x = syncVsAsync(cells, 'sim', 4096)!;
    expect(Math.abs(x.fit!.usPerKm / PHYSICS_US_PER_KM - 1)).toBeLessThan(0.005);
    expect(x.fit!.r2).toBeGreaterThan(0.9999);
    const sync0 = cells.find((c) => c.scheme === 'sync' && c.distanceKm === 0)!.latencyUs.p50;
    expect(Math.abs(x.fit!.serviceUs - sync0)).toBeLessThan(10);
    // 5 ms: the line reaches (5000 − S) / 10 km; of the distances measured, 100 km is within it and 1000 km is not.
    const r5 = x.reach.find((r) => r.budgetMs === 5)!;
    expect(Math.abs(r5.fittedKm! - (5000 - x.fit!.serviceUs) / x.fit!.usPerKm)).toBeLessThan(1e-9);
    expect(r5.fittedKm!).toBeGreaterThan(480);
    expect(r5.measuredKm).toBe(100);
    // At QD 1 the share at 1000 km is the asynchronous write's time against the synchronous one's (S + round trip).
    const at1000 = x.rows[0]!.cells[2]!;
    const asyncUs = cells.find((c) => c.scheme === 'async' && c.distanceKm === 1000)!.latencyUs.mean;
    const syncUs = cells.find((c) => c.scheme === 'sync' && c.distanceKm === 1000)!.latencyUs.mean;
    expect(at1000.share).toBeCloseTo(asyncUs / syncUs, 2);
    expect(syncUs - roundTripUs(1000)).toBeLessThan(200);
    const h = x.rows[0]!.half!;
    expect('km' in h && h.km > 0 && h.km < 100).toBe(true);
  }, 60_000);
});
