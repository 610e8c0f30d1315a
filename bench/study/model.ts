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
// Asynchronous copying: host latency does not depend on distance (the journal acknowledges at once) as long as the
// link and the destination drain what the host writes. The study's journal-mode pair has inflow control, so past
// that the host is paced to the drain rate instead of filling the journal:
//     IOPS ≈ min(A, link bandwidth / block size, W / round trip),
//   A = the median over the distances of that queue depth's cells not held to one of the other two terms: what the
//       systems do at all (distance-independent);
//   W = the source's ship window (JOURNAL_SHIP_WINDOW_ENTRIES entries, and JOURNAL_SHIP_WINDOW_BYTES of write data,
//       sent but not acknowledged: whichever is fewer writes): one window per round trip at most (plus one batch's
//       serialisation; 0 km: no bound).
// Snapshot mode ships each written track once per snapshot, not each write, so only A applies.

import {
  DEFAULT_FIRMWARE_TIMING, JOURNAL_BATCH_MAX_BYTES, JOURNAL_BATCH_MAX_ENTRIES, JOURNAL_SHIP_WINDOW_BYTES, JOURNAL_SHIP_WINDOW_ENTRIES,
} from '../../firmware/constants.ts';
import { HOST_LINE_US, isAsyncOnly, linkMBpsOf, roundTripUs, type CellResult } from './cells.ts';

export interface ModelPoint {
  iops: number;
  latencyUs: number;
  /** Which term decides: the round trip, the systems' capacity (CPU), the link's bandwidth; asynchronous: none. */
  bound: 'round trip' | 'capacity' | 'bandwidth' | 'ship window' | 'distance-independent';
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

export const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

/** The cells of one runtime, scheme and block size: a series, whose queue depths are its rows (over the distances). */
const sameSeries = (a: CellResult, b: CellResult): boolean => a.runtime === b.runtime && a.scheme === b.scheme && a.blockBytes === b.blockBytes;
const row = (cell: CellResult, all: CellResult[]): CellResult[] => all.filter((c) => sameSeries(c, cell) && c.queueDepth === cell.queueDepth);

export function modelFor(cell: CellResult, all: CellResult[]): ModelPoint | null {
  const same = (c: CellResult) => sameSeries(c, cell);
  const atQd = row(cell, all);
  const qd1 = all.filter((c) => same(c) && c.queueDepth === 1);
  if (atQd.length === 0) return null;
  if (isAsyncOnly(cell.scheme)) {
    const point = (iops: number, bound: ModelPoint['bound']): ModelPoint => ({ iops, latencyUs: (cell.queueDepth * 1e6) / iops, bound });
    if (cell.scheme === 'snapshot') return point(median(atQd.map((c) => c.iops)), 'distance-independent');
    const drain = (c: CellResult) => drainBounds(c).reduce((a, b) => (b.iops < a.iops ? b : a));
    const free = atQd.filter((c) => c.iops < 0.95 * drain(c).iops);
    // (Every cell held to the link or the window: nothing says the systems could not do more.)
    const systems = free.length ? median(free.map((c) => c.iops)) : Infinity;
    return [point(systems, 'distance-independent'), ...drainBounds(cell)].reduce((a, b) => (b.iops < a.iops ? b : a));
  }
  if (qd1.length === 0) return null;
  const serviceUs = Math.max(1, Math.min(...qd1.map((c) => c.latencyUs.mean - roundTripUs(c.distanceKm))));
  const rtt = roundTripUs(cell.distanceKm);
  const candidates: ModelPoint[] = [
    { iops: (cell.queueDepth * 1e6) / (serviceUs + rtt), latencyUs: serviceUs + rtt, bound: 'round trip' },
    { iops: Math.max(...atQd.map((c) => c.iops)), latencyUs: (cell.queueDepth * 1e6) / Math.max(...atQd.map((c) => c.iops)), bound: 'capacity' },
    { iops: (linkMBpsOf(cell) * 1e6) / cell.blockBytes, latencyUs: (cell.queueDepth * cell.blockBytes) / linkMBpsOf(cell), bound: 'bandwidth' },
  ];
  return candidates.reduce((a, b) => (b.iops < a.iops ? b : a));
}

/**
 * What an asynchronous journal pair can drain at most, in host writes per second: the link's bandwidth, and one ship
 * window per turn of it — one batch's serialisation and the round trip before its acknowledgement (a window held
 * full is refilled by each acknowledgement at once, without the ship delay).
 */
function drainBounds(cell: CellResult): ModelPoint[] {
  const linkMBps = linkMBpsOf(cell);
  const bw = (linkMBps * 1e6) / cell.blockBytes;
  const rtt = roundTripUs(cell.distanceKm);
  const batchBytes = Math.min(JOURNAL_BATCH_MAX_ENTRIES * cell.blockBytes, JOURNAL_BATCH_MAX_BYTES);
  const turnUs = batchBytes / linkMBps + rtt;
  const windowWrites = Math.min(JOURNAL_SHIP_WINDOW_ENTRIES, Math.floor(JOURNAL_SHIP_WINDOW_BYTES / cell.blockBytes));
  const window = rtt > 0 ? (windowWrites * 1e6) / turnUs : Infinity;
  return [
    { iops: bw, latencyUs: (cell.queueDepth * 1e6) / bw, bound: 'bandwidth' },
    { iops: window, latencyUs: (cell.queueDepth * 1e6) / window, bound: 'ship window' },
  ];
}

export function compare(cell: CellResult, all: CellResult[]): ModelComparison | null {
  const model = modelFor(cell, all);
  if (!model) return null;
  const iopsError = (cell.iops - model.iops) / model.iops;
  return { model, iopsError, why: Math.abs(iopsError) <= TOLERANCE ? '' : explain(cell, model, iopsError, all), note: cellNote(cell) };
}

/**
 * What else the cell shows, within the tolerance or not: a pair that left duplex (the cell measured a suspended pair),
 * inflow control pacing the host, an asynchronous link offered more than its bandwidth.
 */
function cellNote(cell: CellResult): string {
  const j = cell.journal;
  if (j && j.leftDuplexAtMs !== null && j.duplexPercent < 100) {
    const when = j.leftDuplexAtMs < 0 ? `${Math.round(-j.leftDuplexAtMs)} ms before the window (in the warm-up)` : `${Math.round(j.leftDuplexAtMs)} ms into the window`;
    const cause = j.leftDuplexCause && j.leftDuplexCause !== 'none' ? ` (failure suspend: ${j.leftDuplexCause})` : '';
    return `not a steady state of copying: the pair left duplex ${when}${cause} and was out of it for ${Math.round(100 - j.duplexPercent)} % of the window, while the host's writes only marked the bitmap`
      + (j.leftDuplexCause === 'partner lost' ? stalledCpu(cell) : '');
  }
  if (cell.inflowControl && j && j.overMarkPercent >= 10) {
    return `inflow control paced the host for ${Math.round(j.overMarkPercent)} % of the window (journal at its high-water mark): it wrote at the rate the link and R drained`;
  }
  // (Snapshot mode ships each written track once per snapshot, however often it was written: not the offered load.)
  const linkMBps = linkMBpsOf(cell);
  if (cell.scheme === 'sync' || cell.scheme === 'snapshot' || cell.mbPerS <= linkMBps) return '';
  return `offered ${Math.round(cell.mbPerS)} MB/s > link ${linkMBps} MB/s: the journal grows by ${Math.round(cell.mbPerS - linkMBps)} MB/s, and so does the RPO, until the journal is full and the pair suspends`;
}

/** Threads: which storage system's CPU stalled for longer than the partner timeout, if one did. */
function stalledCpu(cell: CellResult): string {
  const late = Object.entries(cell.cpuLateMaxUs ?? {}).sort((a, b) => b[1] - a[1])[0];
  const timeoutUs = DEFAULT_FIRMWARE_TIMING.partnerTimeoutUs;
  if (!late || late[1] <= timeoutUs) return '';
  return `; the emulator stalled: ${late[0]}'s CPU dispatched an event ${Math.round(late[1] / 1000)} ms late, longer than the `
    + `${timeoutUs / 1000} ms partner timeout, so its partner heard nothing from a thread that was not running`;
}

/**
 * Threads, a synchronous write (the synchronous and cascade schemes): the lateness no flight absorbs, when it accounts
 * for at least half of the time per write over the model's. A CPU stamps what it sends from the due time of the event
 * that made it (ThreadTuning.maxDueCreditUs), so the request's lateness at P and the copy's at I are absorbed by the
 * link's flight; the acknowledgement's at P has only the host line after it. The host's own pickup of the completion
 * counts only in results from before hostTimes, where the host issued its next write when it got round to it.
 */
function lateLastHop(cell: CellResult, model: ModelPoint): string {
  const p = cell.dispatchLateUs?.P, pickupUs = cell.hostPickupLateUs;
  if (!p || pickupUs === undefined || isAsyncOnly(cell.scheme)) return '';
  const ackUs = Math.max(0, p.frame - HOST_LINE_US);
  const lateUs = cell.hostTimes ? ackUs : ackUs + pickupUs;
  const excessUs = (cell.queueDepth * 1e6) / cell.iops - model.latencyUs; // time per write over the model's (Little's law)
  if (excessUs <= 0 || lateUs < excessUs / 2) return '';
  const pickup = cell.hostTimes ? '' : ` and the host took the completion ${Math.round(pickupUs)} µs after it was visible`;
  return `late last hop: the acknowledgement reached P's CPU ${Math.round(p.frame)} µs after it was due${pickup}, on average: `
    + `${Math.round(lateUs)} µs per write that no flight absorbs (the host line takes ${HOST_LINE_US}), against ${Math.round(excessUs)} µs per write over the model`;
}

/** Busier than this share of the machine's cores, a threads cell is limited by the emulator, whatever bound the model has. */
const CORES_FULL = 0.85;

/** Threads: how many of the machine's cores the process kept busy over the window (null without the figures). */
function busyCores(cell: CellResult): number | null {
  return cell.cpuUsPerWrite === undefined || cell.cores === undefined ? null : (cell.cpuUsPerWrite * cell.iops) / 1e6;
}

/**
 * Threads, an asynchronous cell whose cores were full: its writes per second follow the CPU each host write costs,
 * copying included, and the row's median (the model) came from cells that paid a different share. (Difference
 * snapshots of 64 KiB writes cost less of it over a long link, whose ship window spreads each snapshot's transfer.)
 */
function cpuShare(cell: CellResult, all: CellResult[], err: number): string {
  const measured = row(cell, all).filter((c) => c.cpuUsPerWrite !== undefined);
  if (cell.cpuUsPerWrite === undefined || measured.length < 2) return '';
  const medianUs = median(measured.map((c) => c.cpuUsPerWrite!));
  const ratio = cell.cpuUsPerWrite / medianUs;
  if (err > 0 ? ratio > 1 - TOLERANCE : ratio < 1 + TOLERANCE) return '';
  return `CPU per write: this cell spent ${Math.round(cell.cpuUsPerWrite)} CPU µs per host write against the median ${Math.round(medianUs)} of its row `
    + `(the distances at this queue depth), and with the cores full the same cores did ${err > 0 ? 'more' : 'fewer'} writes`;
}

/** A reason for a cell outside the tolerance, from what the cell itself shows. */
function explain(cell: CellResult, model: ModelPoint, err: number, all: CellResult[]): string {
  const reasons: string[] = [];
  if (cell.writes < 1000) reasons.push(`only ${cell.writes} writes in the window`);
  if (cell.hostPumpRescues) {
    reasons.push(`the host missed ${cell.hostPumpRescues} wake-up${cell.hostPumpRescues === 1 ? '' : 's'} of its completions' doorbell, each ended by its watchdog within about 0.6 s (ThreadsWorld.pumpRescueCount)`);
  }
  const busy = busyCores(cell);
  const figures = busy === null ? '' : ` (${busy.toFixed(1)} of ${cell.cores} cores busy, ${Math.round(cell.cpuUsPerWrite!)} CPU µs per write, every thread together)`;
  const coresFull = busy !== null && busy >= CORES_FULL * cell.cores!;
  if (model.bound === 'capacity') {
    reasons.push(`CPU-bound: the emulator itself limits this cell (the machine's cores for the host and every storage system's thread), so it varies with the machine's load${figures}`);
  } else if (err < 0 && coresFull) {
    reasons.push(`the cores were full${figures}: the emulator itself limited this cell`);
  }
  if (coresFull && model.bound === 'distance-independent') {
    const share = cpuShare(cell, all, err);
    if (share) reasons.push(share);
  }
  if (cell.runtime === 'threads' && cell.distanceKm === 0 && err < 0) {
    reasons.push('0 km: every hop pays a thread wake-up (40–70 µs on this machine), which a frame due later does not (its receiver spins for it)');
  }
  if (cell.runtime === 'threads' && cell.latencyUs.p99 > 3 * cell.latencyUs.p50) {
    reasons.push(`scheduling noise: p99 ${Math.round(cell.latencyUs.p99)} µs is over 3× p50 ${Math.round(cell.latencyUs.p50)} µs (threads waiting for a core)`);
  }
  const j = cell.journal;
  if (j && j.leftDuplexAtMs !== null && j.duplexPercent < 100) {
    reasons.push('the cell measured a suspended pair (see the note)');
  } else if (isAsyncOnly(cell.scheme) && j && j.usagePercentMax > 90) {
    reasons.push('the journal filled: the pair went to failure suspend (journal full) and host writes went to the bitmap');
  }
  if (cell.inflowControl && j && j.overMarkPercent >= 10 && model.bound === 'distance-independent' && err < 0) {
    reasons.push('R restored fewer writes per second than I took (its thread shares the 2 cores with I\'s and the host\'s), so inflow control held the host to that rate');
  }
  // With the cores full, frames wait for a busy CPU: their lateness is that queue, not the injection's error.
  if (err < 0 && model.bound !== 'capacity' && !coresFull) {
    const late = lateLastHop(cell, model);
    if (late) reasons.push(late);
  }
  return reasons.join('; ') || (err < 0 ? 'slower than the model: the systems\' CPUs were busier than in the cells the model was fitted on' : 'faster than the model');
}

