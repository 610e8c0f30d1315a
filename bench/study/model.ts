// The analytic model the study's measurements are held against.
//
// Synchronous copying (and the cascade, whose host sees only the synchronous leg): a write costs the service
// time S of the systems and lines plus the round trip of the link, so with QD writes outstanding
//     IOPS ≈ min(QD / (S + round trip), C, link bandwidth / block size),  round trip = 2 × 5 µs/km × distance,
// where, per runtime, scheme and block size,
//   S = the smallest (QD 1 mean latency − round trip) over the distances measured: the systems' own time per
//       write. (On threads a 0 km hop also pays a thread wake-up, 40–70 µs here, that a frame due later does not:
//       its receiver spins for it. So the smallest, not the 0 km, value is the systems' service time.)
//   C = the highest IOPS measured at that queue depth over the distances: what the emulated systems can do at all.
// Asynchronous copying: host latency does not depend on distance (the journal acknowledges at once) until the
// journal is full, so the model of every distance is the median over the distances of that queue depth.

import { isAsyncOnly, LINK_BANDWIDTH_MBPS, PROPAGATION_US_PER_KM, type CellResult } from './cells.ts';

export const roundTripUs = (distanceKm: number): number => 2 * PROPAGATION_US_PER_KM * distanceKm;

export interface ModelPoint {
  iops: number;
  latencyUs: number;
  /** Which term decides: the round trip, the systems' capacity (CPU), the link's bandwidth; asynchronous: none. */
  bound: 'round trip' | 'capacity' | 'bandwidth' | 'distance-independent';
}

export interface ModelComparison {
  model: ModelPoint;
  /** (measured − model) / model, for IOPS. */
  iopsError: number;
  /** Why a cell is off by more than the tolerance, or empty. */
  why: string;
  /** What else the physics says of the cell (an asynchronous link past its bandwidth), or empty. */
  note: string;
}

/** Tolerance the issue asks for above 0 km on the threads runtime. */
export const TOLERANCE = 0.05;

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

export function modelFor(cell: CellResult, all: CellResult[]): ModelPoint | null {
  const same = (c: CellResult) => c.runtime === cell.runtime && c.scheme === cell.scheme && c.blockBytes === cell.blockBytes;
  const atQd = all.filter((c) => same(c) && c.queueDepth === cell.queueDepth);
  const qd1 = all.filter((c) => same(c) && c.queueDepth === 1);
  if (atQd.length === 0) return null;
  if (isAsyncOnly(cell.scheme)) {
    const iops = median(atQd.map((c) => c.iops));
    return { iops, latencyUs: (cell.queueDepth * 1e6) / iops, bound: 'distance-independent' };
  }
  if (qd1.length === 0) return null;
  const serviceUs = Math.max(1, Math.min(...qd1.map((c) => c.latencyUs.mean - roundTripUs(c.distanceKm))));
  const rtt = roundTripUs(cell.distanceKm);
  const candidates: ModelPoint[] = [
    { iops: (cell.queueDepth * 1e6) / (serviceUs + rtt), latencyUs: serviceUs + rtt, bound: 'round trip' },
    { iops: Math.max(...atQd.map((c) => c.iops)), latencyUs: (cell.queueDepth * 1e6) / Math.max(...atQd.map((c) => c.iops)), bound: 'capacity' },
    { iops: (LINK_BANDWIDTH_MBPS * 1e6) / cell.blockBytes, latencyUs: (cell.queueDepth * cell.blockBytes) / LINK_BANDWIDTH_MBPS, bound: 'bandwidth' },
  ];
  return candidates.reduce((a, b) => (b.iops < a.iops ? b : a));
}

export function compare(cell: CellResult, all: CellResult[]): ModelComparison | null {
  const model = modelFor(cell, all);
  if (!model) return null;
  const iopsError = (cell.iops - model.iops) / model.iops;
  return { model, iopsError, why: Math.abs(iopsError) <= TOLERANCE ? '' : explain(cell, model, iopsError), note: linkNote(cell) };
}

/** An asynchronous link offered more than its bandwidth: the journal grows, so the recovery point does too. */
function linkNote(cell: CellResult): string {
  // (Snapshot mode ships each written track once per snapshot, however often it was written: not the offered load.)
  if (cell.scheme === 'sync' || cell.scheme === 'snapshot' || cell.mbPerS <= LINK_BANDWIDTH_MBPS) return '';
  return `offered ${Math.round(cell.mbPerS)} MB/s > link ${LINK_BANDWIDTH_MBPS} MB/s: the journal grows by ${Math.round(cell.mbPerS - LINK_BANDWIDTH_MBPS)} MB/s, and so does the RPO, until the journal is full and the pair suspends`;
}

/** A reason for a cell outside the tolerance, from what the cell itself shows. */
function explain(cell: CellResult, model: ModelPoint, err: number): string {
  const reasons: string[] = [];
  if (cell.writes < 1000) reasons.push(`only ${cell.writes} writes in the window`);
  if (model.bound === 'capacity') reasons.push('CPU-bound: the emulator itself limits this cell (2 cores for the host and every storage system\'s thread), so it varies with the machine\'s load');
  if (cell.runtime === 'threads' && cell.distanceKm === 0 && err < 0) {
    reasons.push('0 km: every hop pays a thread wake-up (40–70 µs on this machine), which a frame due later does not (its receiver spins for it)');
  }
  if (cell.runtime === 'threads' && cell.latencyUs.p99 > 3 * cell.latencyUs.p50) {
    reasons.push(`scheduling noise: p99 ${Math.round(cell.latencyUs.p99)} µs is over 3× p50 ${Math.round(cell.latencyUs.p50)} µs (threads waiting for a core)`);
  }
  if (isAsyncOnly(cell.scheme) && cell.journal && cell.journal.usagePercentMax > 90) reasons.push('the journal filled: the pair went to failure suspend (journal full) and host writes went to the bitmap');
  return reasons.join('; ') || (err < 0 ? 'slower than the model: the systems\' CPUs were busier than in the cells the model was fitted on' : 'faster than the model');
}

