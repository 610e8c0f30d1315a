// The analytic model the study's measurements are held against.
//
// Synchronous copying (and the cascade, whose host sees only the synchronous leg): a write costs the service
// time of the systems and lines plus the round trip of the link, so with QD writes outstanding
//     IOPS ≈ QD / (service time + round trip),  round trip = 2 × 5 µs/km × distance,
// capped by what the emulated systems can do at all (their capacity: the 0 km cell of the same queue depth and
// block size) and by the link's bandwidth. The service time is the 0 km, QD 1 latency of the same block size.
// Asynchronous copying: host latency does not depend on distance until the link's bandwidth is exhausted, so
// the model of any distance is the 0 km cell of the same queue depth and block size.

import { LINK_BANDWIDTH_MBPS, PROPAGATION_US_PER_KM, type CellResult, type Scheme } from './cells.ts';

export const roundTripUs = (distanceKm: number): number => 2 * PROPAGATION_US_PER_KM * distanceKm;

export interface ModelPoint {
  iops: number;
  latencyUs: number;
  /** Which term decides: the round trip, the systems' capacity (CPU), the link's bandwidth, or 0 km calibration. */
  bound: 'round trip' | 'capacity' | 'bandwidth' | 'calibration' | 'distance-independent';
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

const key = (c: Pick<CellResult, 'runtime' | 'scheme' | 'queueDepth' | 'blockBytes' | 'distanceKm'>) =>
  `${c.runtime}|${c.scheme}|${c.queueDepth}|${c.blockBytes}|${c.distanceKm}`;

export function modelFor(cell: CellResult, all: CellResult[]): ModelPoint | null {
  const byKey = new Map(all.map((c) => [key(c), c]));
  const at0 = byKey.get(key({ ...cell, distanceKm: 0 }));
  if (!at0) return null;
  if (cell.distanceKm === 0) return { iops: at0.iops, latencyUs: at0.latencyUs.mean, bound: 'calibration' };
  const bandwidthIops = (LINK_BANDWIDTH_MBPS * 1e6) / cell.blockBytes;
  // The journal acknowledges at once: beyond the link's bandwidth the host is not slowed, the journal grows
  // (and the pair suspends when it is full) — see `note`.
  if (cell.scheme === 'async') return { iops: at0.iops, latencyUs: at0.latencyUs.mean, bound: 'distance-independent' };
  const qd1 = byKey.get(key({ ...cell, distanceKm: 0, queueDepth: 1 }));
  const serviceUs = qd1 ? qd1.latencyUs.mean : at0.latencyUs.mean;
  const candidates: ModelPoint[] = [
    { iops: (cell.queueDepth * 1e6) / (serviceUs + roundTripUs(cell.distanceKm)), latencyUs: serviceUs + roundTripUs(cell.distanceKm), bound: 'round trip' },
    { iops: at0.iops, latencyUs: (cell.queueDepth * 1e6) / at0.iops, bound: 'capacity' },
    { iops: bandwidthIops, latencyUs: (cell.queueDepth * 1e6) / bandwidthIops, bound: 'bandwidth' },
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
  if (cell.scheme === 'sync' || cell.mbPerS <= LINK_BANDWIDTH_MBPS) return '';
  return `offered ${Math.round(cell.mbPerS)} MB/s > link ${LINK_BANDWIDTH_MBPS} MB/s: the journal grows by ${Math.round(cell.mbPerS - LINK_BANDWIDTH_MBPS)} MB/s, and so does the RPO, until the journal is full and the pair suspends`;
}

/** A reason for a cell outside the tolerance, from what the cell itself shows. */
function explain(cell: CellResult, model: ModelPoint, err: number): string {
  const reasons: string[] = [];
  if (model.bound === 'calibration') return '';
  if (cell.writes < 1000) reasons.push(`only ${cell.writes} writes in the window`);
  if (model.bound === 'capacity') reasons.push('CPU-bound: the emulator itself limits this cell (2 cores for the host and every storage system), so it varies with the machine\'s load');
  if (cell.runtime === 'threads' && cell.latencyUs.p99 > 3 * cell.latencyUs.p50) {
    reasons.push(`scheduling noise: p99 ${Math.round(cell.latencyUs.p99)} µs is over 3× p50 ${Math.round(cell.latencyUs.p50)} µs (threads waiting for a core)`);
  }
  if (err > 0 && model.bound === 'round trip' && cell.queueDepth > 1) {
    reasons.push('faster than the model: with several writes in flight the service time overlaps the round trip');
  }
  return reasons.join('; ') || (err < 0 ? 'slower than the model: the systems\' CPUs were busier than at 0 km' : 'faster than the model');
}

export const schemeHasJournal = (s: Scheme): boolean => s !== 'sync';
