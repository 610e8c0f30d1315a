// Synchronous against asynchronous copying, read off the study's cells: the question the study is run for.
// - What a synchronous pair adds to a write per km of link: a least-squares line through its QD 1 p50 latency over
//   the distances, against the links' physics (out and back at 5 µs/km: 10 µs/km).
// - How far a synchronous pair reaches within a write-latency budget: from that line, and the longest distance
//   measured within it.
// - What it costs in IOPS: the synchronous cell's IOPS as a share of the asynchronous (journal) cell's at the same
//   distance, queue depth and block size, the p50 latency it adds, and the distance at which the share falls to
//   one half (interpolated between the measured distances along the model's shape: 1 / share grows linearly with
//   distance, since a synchronous write takes service time + round trip and an asynchronous one does not).

import { roundTripUs, type CellResult } from './cells.ts';
import type { RuntimeName } from '../../harness/world.ts';

/** Round trip per km of link: out and back at 5 µs/km. */
export const PHYSICS_US_PER_KM = roundTripUs(1);
/** Write-latency budgets (p50, ms) the reach is given for. */
export const LATENCY_BUDGETS_MS = [0.5, 1, 2, 5] as const;
/** The share of the asynchronous IOPS whose distance is given. */
export const HALF_SHARE = 0.5;

/** A least-squares line through (km, µs): latency ≈ serviceUs + usPerKm × km. */
export interface LatencyFit {
  points: number;
  serviceUs: number;
  usPerKm: number;
  /** Coefficient of determination (1: every point on the line). */
  r2: number;
}

export interface SyncReach {
  budgetMs: number;
  /** From the fitted line; null when its service time alone is over the budget. */
  fittedKm: number | null;
  /** The longest measured distance whose synchronous p50 was within the budget; null when none was. */
  measuredKm: number | null;
}

export interface ShareCell {
  distanceKm: number;
  syncIops: number;
  asyncIops: number;
  /** syncIops / asyncIops. */
  share: number;
  /** Synchronous p50 − asynchronous p50 (µs). */
  addedP50Us: number;
}

/** Where the share falls to HALF_SHARE: a distance, or that it is above it at every distance, or below at the nearest. */
export type HalfShare = { km: number } | { above: number } | { below: number } | null;

export interface SyncVsAsync {
  runtime: RuntimeName;
  blockBytes: number;
  distancesKm: number[];
  /** QD 1 synchronous p50 against distance; null with fewer than two distances. */
  fit: LatencyFit | null;
  reach: SyncReach[];
  rows: Array<{ queueDepth: number; cells: Array<ShareCell | null>; half: HalfShare }>;
}

/** Least squares through the points; null with fewer than two distinct x. */
export function fitLine(points: Array<{ x: number; y: number }>): LatencyFit | null {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((a, p) => a + p.x, 0) / n, my = points.reduce((a, p) => a + p.y, 0) / n;
  let sxx = 0, sxy = 0, syy = 0;
  for (const p of points) { sxx += (p.x - mx) ** 2; sxy += (p.x - mx) * (p.y - my); syy += (p.y - my) ** 2; }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  return { points: n, serviceUs: my - slope * mx, usPerKm: slope, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/**
 * The distance at which the share crosses `target`, between the first two neighbouring distances that bracket it.
 * Between them 1 / share is taken as linear in distance (the model's shape).
 */
export function crossing(cells: Array<ShareCell | null>, target: number): HalfShare {
  const known = cells.filter((c): c is ShareCell => c !== null && c.share > 0);
  if (known.length === 0) return null;
  if (known[0]!.share < target) return { below: known[0]!.distanceKm };
  for (let i = 0; i + 1 < known.length; i++) {
    const a = known[i]!, b = known[i + 1]!;
    if (b.share >= target) continue;
    const ia = 1 / a.share, ib = 1 / b.share;
    return { km: a.distanceKm + ((1 / target - ia) / (ib - ia)) * (b.distanceKm - a.distanceKm) };
  }
  return { above: known[known.length - 1]!.distanceKm };
}

/** The comparison for one runtime and block size, from whatever synchronous and journal cells the study has. */
export function syncVsAsync(cells: CellResult[], runtime: RuntimeName, blockBytes: number): SyncVsAsync | null {
  const mine = cells.filter((c) => c.runtime === runtime && c.blockBytes === blockBytes);
  const sync = mine.filter((c) => c.scheme === 'sync');
  if (sync.length === 0) return null;
  const distancesKm = [...new Set(sync.map((c) => c.distanceKm))].sort((a, b) => a - b);
  const qd1 = sync.filter((c) => c.queueDepth === 1).sort((a, b) => a.distanceKm - b.distanceKm);
  const fit = fitLine(qd1.map((c) => ({ x: c.distanceKm, y: c.latencyUs.p50 })));
  const reach = LATENCY_BUDGETS_MS.map((budgetMs) => {
    const budgetUs = budgetMs * 1000;
    const within = qd1.filter((c) => c.latencyUs.p50 <= budgetUs);
    return {
      budgetMs,
      fittedKm: fit && fit.usPerKm > 0 && fit.serviceUs < budgetUs ? (budgetUs - fit.serviceUs) / fit.usPerKm : null,
      measuredKm: within.length ? Math.max(...within.map((c) => c.distanceKm)) : null,
    };
  });
  const queueDepths = [...new Set(sync.map((c) => c.queueDepth))].sort((a, b) => a - b);
  const rows = queueDepths.map((queueDepth) => {
    const rowCells = distancesKm.map((distanceKm): ShareCell | null => {
      const s = sync.find((c) => c.queueDepth === queueDepth && c.distanceKm === distanceKm);
      const a = mine.find((c) => c.scheme === 'async' && c.queueDepth === queueDepth && c.distanceKm === distanceKm);
      if (!s || !a || a.iops <= 0) return null;
      return { distanceKm, syncIops: s.iops, asyncIops: a.iops, share: s.iops / a.iops, addedP50Us: s.latencyUs.p50 - a.latencyUs.p50 };
    });
    return { queueDepth, cells: rowCells, half: crossing(rowCells, HALF_SHARE) };
  });
  return { runtime, blockBytes, distancesKm, fit, reach, rows };
}

const km = (x: number) => (x >= 100 ? Math.round(x / 10) * 10 : Math.round(x)).toLocaleString('en');
const latency = (us: number) => `${us >= 0 ? '+' : '−'}${(Math.abs(us) / 1000).toFixed(Math.abs(us) < 10_000 ? 2 : 1)} ms`;
const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)} %`;
const half = (h: HalfShare) => (h === null ? '–' : 'km' in h ? `≈ ${km(h.km)} km` : 'above' in h ? `beyond ${km(h.above)} km` : `under half already at ${km(h.below)} km`);

/** The report's section: per runtime, the fitted line, the reach within budgets and the IOPS share tables. */
export function syncVsAsyncMarkdown(cells: CellResult[]): string[] {
  const out: string[] = [];
  const runtimes = [...new Set(cells.map((c) => c.runtime))];
  const blocks = [...new Set(cells.map((c) => c.blockBytes))].sort((a, b) => a - b);
  const all = runtimes.flatMap((rt) => blocks.map((bs) => syncVsAsync(cells, rt, bs))).filter((x): x is SyncVsAsync => x !== null);
  if (all.length === 0) return out;
  out.push('## Synchronous against asynchronous', '');
  out.push(`What a synchronous pair costs a host write, read off the cells below. The links' physics: a synchronous write waits for the round trip, ${PHYSICS_US_PER_KM} µs per km (out and back at 5 µs/km); an asynchronous one does not.`, '');
  for (const rt of runtimes) {
    const mine = all.filter((x) => x.runtime === rt);
    if (mine.length === 0) continue;
    out.push(`**${rt}**: latency a synchronous pair adds per km (QD 1 p50 over ${mine[0]!.distancesKm.join(', ')} km, least squares): `
      + mine.map((x) => (x.fit ? `${x.blockBytes / 1024} KiB **${x.fit.usPerKm.toFixed(2)} µs/km** (${pct(x.fit.usPerKm / PHYSICS_US_PER_KM - 1)} on the physics) + ${Math.round(x.fit.serviceUs)} µs (R² ${x.fit.r2.toFixed(4)})` : `${x.blockBytes / 1024} KiB –`)).join('; ') + '.', '');
    out.push(`How far a synchronous pair reaches within a write-latency budget (${rt}, QD 1, p50): from the line / the longest distance measured within it.`, '');
    out.push(`| budget | ${mine.map((x) => `${x.blockBytes / 1024} KiB`).join(' | ')} |`);
    out.push(`|--:|${mine.map(() => '---').join('|')}|`);
    for (let i = 0; i < LATENCY_BUDGETS_MS.length; i++) {
      out.push(`| ${LATENCY_BUDGETS_MS[i]} ms | ${mine.map((x) => { const r = x.reach[i]!; return `${r.fittedKm === null ? 'none' : `${km(r.fittedKm)} km`} / ${r.measuredKm === null ? 'none' : `${km(r.measuredKm)} km`}`; }).join(' | ')} |`);
    }
    out.push('');
    for (const x of mine) {
      out.push(`Synchronous IOPS as a share of asynchronous (journal) IOPS, and the p50 latency the synchronous pair adds (${rt}, ${x.blockBytes / 1024} KiB):`, '');
      out.push(`| QD | ${x.distancesKm.map((d) => `${d} km`).join(' | ')} | half the IOPS at |`);
      out.push(`|--:|${x.distancesKm.map(() => '--:').join('|')}|--:|`);
      for (const row of x.rows) {
        out.push(`| ${row.queueDepth} | ${row.cells.map((c) => (c ? `${c.share.toFixed(2)} (${latency(c.addedP50Us)})` : '–')).join(' | ')} | ${half(row.half)} |`);
      }
      out.push('');
    }
  }
  return out;
}
