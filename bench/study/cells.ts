// One cell of the benchmark study: a world on either runtime with one copy scheme over links of one length, a
// host keeping `queueDepth` writes of one block size outstanding, measured at a steady state after a warm-up:
// IOPS, MB/s, host latency percentiles (HdrHistogram) and, for asynchronous pairs, the journal backlog and the
// recovery point (how far the destination lags, in writes and in time).
//
// The harness drives the firmware only through the management interface (pair creation) and host I/O; the
// journal backlog is read straight from control memory (World.journals), which does not disturb the firmware.

import { availableParallelism } from 'node:os';
import * as hdr from 'hdr-histogram-js';
import { BLOCK_SIZE_BYTES, JOURNAL_HIGH_WATER_PERCENT } from '../../firmware/constants.ts';
import type { PairDefinitionInput } from '../../firmware/commands.ts';
import { PairState, pairStateName } from '../../firmware/pair-state.ts';
import { isConsistentDestination } from '../../firmware/definition-info.ts';
import type { ThreadCpuStats } from '../../hardware/thread-cpu.ts';
import { createWorld } from '../../harness/runtimes.ts';
import { ThreadsWorld } from '../../harness/runtime-threads.ts';
import { withinWallMs } from '../../harness/within-wall-ms.ts';
import { DATA_LVOL, JOURNAL_LVOL, type LinkSpec, type StorageSystemSpec, type Topology } from '../../harness/topology.ts';
import type { RuntimeName, World } from '../../harness/world.ts';

/** Copy schemes of the study. */
export const SCHEMES = ['sync', 'async', 'snapshot', 'cascade'] as const;
export type Scheme = (typeof SCHEMES)[number];
export const SCHEME_LABEL: Record<Scheme, string> = {
  sync: 'synchronous P→I only',
  async: 'asynchronous I→R only (journal)',
  snapshot: 'asynchronous I→R only (difference snapshots)',
  cascade: 'cascade P →sync I →async R (embodiment 1)',
};
/** Schemes with a journal-mode pair I→R: the study runs it with inflow control (formPairs). */
export const hasJournalPair = (scheme: Scheme): boolean => scheme === 'async' || scheme === 'cascade';
/** Schemes whose only pair is the asynchronous one, I→R, written by a host on I. */
export const isAsyncOnly = (scheme: Scheme): boolean => scheme === 'async' || scheme === 'snapshot';

/** One way, per km of fibre: the model's and the link model's propagation delay. */
export const PROPAGATION_US_PER_KM = 5;
/** The model's round trip over a link: 2 × 5 µs/km × distance. */
export const roundTripUs = (distanceKm: number): number => 2 * PROPAGATION_US_PER_KM * distanceKm;
/**
 * A window spans at least this many round trips: an asynchronous pair held to its ship window moves in bursts of one
 * window per round trip, and a window of a few of them measures a whole number of bursts over a fraction more time.
 */
export const MIN_WINDOW_ROUND_TRIPS = 50;
/** The host's own line (S3/S4), one way. */
export const HOST_LINE_US = 20;
export const LINK_BANDWIDTH_MBPS = 1000;
const DATA_VOLUME_BYTES = 64 * 1024 * 1024;
const JOURNAL_VOLUME_BYTES = 64 * 1024 * 1024;
/**
 * Difference-snapshot mode: a snapshot of every track of the 64 MiB data volume (64 KiB writes cover it every few
 * snapshots) is 64 MiB of tracks plus their descriptors, more than a 64 MiB difference volume holds, and the pair
 * went to failure suspend (journal full) in every such cell. Twice the data volume holds one whole snapshot in flight.
 */
export const SNAPSHOT_JOURNAL_VOLUME_BYTES = 2 * DATA_VOLUME_BYTES;
const ID = { P: 0, I: 1, R: 3 } as const;

export interface LinkOptions {
  distanceKm: number;
  bandwidthMBps?: number;
  /** Frames lost on every link, 0 ≤ lossRate < 1 (the link sweep). */
  lossRate?: number;
  journalVolumeBytes?: number;
}

/** The systems, links and host a scheme needs; every link has the same length, one path, no jitter. */
export function studyTopology(scheme: Scheme, o: LinkOptions): Topology {
  const system = (name: keyof typeof ID): StorageSystemSpec => ({
    name, id: ID[name], cacheSlots: 256,
    lvols: [
      { name: `231${name}`, kind: 'data', sizeBytes: DATA_VOLUME_BYTES },
      { name: `232${name}`, kind: 'journal', sizeBytes: o.journalVolumeBytes ?? (scheme === 'snapshot' ? SNAPSHOT_JOURNAL_VOLUME_BYTES : JOURNAL_VOLUME_BYTES) },
    ],
  });
  const link = (name: string, a: string, b: string): LinkSpec => ({
    name, a, b, distanceKm: o.distanceKm, bandwidthMBps: o.bandwidthMBps ?? LINK_BANDWIDTH_MBPS, jitterUs: 0, paths: [{ extraDelayUs: 0 }],
    ...(o.lossRate ? { lossRate: o.lossRate } : {}),
  });
  const asyncOnly = isAsyncOnly(scheme);
  const systems = scheme === 'sync' ? [system('P'), system('I')] : asyncOnly ? [system('I'), system('R')] : [system('P'), system('I'), system('R')];
  const links = scheme === 'sync' ? [link('S1', 'P', 'I')] : asyncOnly ? [link('S2', 'I', 'R')] : [link('S1', 'P', 'I'), link('S2', 'I', 'R')];
  const host = asyncOnly ? { name: '100I', storage: 'I', port: 0 } : { name: '100P', storage: 'P', port: 0 };
  return { name: `study ${scheme} ${o.distanceKm} km`, systems, links, hosts: [host], hostLinkUs: HOST_LINE_US };
}

export const hostOf = (scheme: Scheme): string => (isAsyncOnly(scheme) ? '100I' : '100P');

/**
 * Defines the scheme's pairs with no initial copy (both volumes start zeroed, hence identical) and waits for duplex.
 * `inflowControl`: the asynchronous journal-mode pair (async and cascade schemes) paces the host when its journal
 * passes the high-water mark (in the cascade by holding I's acknowledgements to P), so a load its link or destination
 * cannot drain settles at their rate instead of filling the journal.
 */
export async function formPairs(world: World, scheme: Scheme, o: { inflowControl?: boolean } = {}): Promise<void> {
  const create = async (system: string, pair: PairDefinitionInput) => {
    const r = await world.command(system, { op: 'create', initialCopy: 'none', step: 'S100', pair });
    if (!r.ok) throw new Error(`study: creating pair ${pair.pairId} on ${system} failed: ${r.error}`);
  };
  if (!isAsyncOnly(scheme)) {
    await create('P', { pairId: 1, localLvol: DATA_LVOL, remoteStorageId: ID.I, remoteLvol: DATA_LVOL, copyType: 'sync', fence: 'data' });
  }
  if (scheme !== 'sync') {
    await create('I', { pairId: 2, localLvol: DATA_LVOL, remoteStorageId: ID.R, remoteLvol: DATA_LVOL, copyType: 'async', fence: 'never',
      journalLvol: JOURNAL_LVOL, remoteJournalLvol: JOURNAL_LVOL, ...(scheme === 'snapshot' ? { asyncMode: 'snapshot' as const } : {}),
      ...(hasJournalPair(scheme) && o.inflowControl ? { inflowControl: true } : {}) });
  }
  const want = world.topology.systems.length === 3 ? 4 : 2; // pair records in duplex (each pair has two sides)
  const deadline = world.nowUs() + 5_000_000;
  for (;;) {
    const duplex = world.topology.systems.flatMap((s) => world.definitionInformation(s.name)).filter((p) => p.state === PairState.Duplex).length;
    if (duplex >= want) return;
    if (world.nowUs() > deadline) throw new Error(`study: the ${scheme} pairs did not reach duplex within 5 s`);
    await world.sleep(1_000);
  }
}

export interface CellSpec {
  runtime: RuntimeName;
  scheme: Scheme;
  distanceKm: number;
  queueDepth: number;
  blockBytes: number;
  /** Every link's bandwidth (MB/s) when not the study's LINK_BANDWIDTH_MBPS (`bench --link-mbps`). */
  linkMBps?: number;
}

/** A cell's link bandwidth (MB/s): its own, or the study's. */
export const linkMBpsOf = (s: CellSpec): number => s.linkMBps ?? LINK_BANDWIDTH_MBPS;

/** A cell as the progress display and the reports name it: "threads async 1000 km QD 32 4 KiB". */
export const cellName = (s: CellSpec): string => `${s.runtime} ${s.scheme} ${s.distanceKm} km QD ${s.queueDepth} ${s.blockBytes / 1024} KiB${s.linkMBps === undefined ? '' : ` ${s.linkMBps} MB/s`}`;

export interface Window {
  /** Warm-up before measuring (µs of the world's clock: real on threads, virtual on sim). */
  warmupUs: number;
  /** Measure for this long … */
  measureUs: number;
  /** … or until this many writes completed in the window (sim: virtual time is cheap, events are not). */
  maxWrites?: number;
  /** … but at least this many (sim: a long round trip at QD 1 needs time to collect them). */
  minWrites?: number;
}

export interface Percentiles { p50: number; p99: number; p999: number; max: number; mean: number }

export interface CellResult extends CellSpec {
  writes: number;
  measuredUs: number;
  iops: number;
  mbPerS: number;
  latencyUs: Percentiles;
  /**
   * Asynchronous pair: the source journal's backlog and the recovery point, sampled every ms over the window; the
   * share of the window the pair was in duplex and its journal at or over the high-water mark (with inflow control:
   * the host paced); when the pair first left duplex, in ms from the window's start (negative: in the warm-up).
   */
  journal?: { entriesP50: number; entriesMax: number; bytesMax: number; rpoWritesP50: number; rpoWritesMax: number; rpoMsP50: number; rpoMsMax: number; usagePercentMax: number;
    duplexPercent: number; overMarkPercent: number; leftDuplexAtMs: number | null; leftDuplexCause?: string };
  /** The journal-mode pair (async and cascade schemes) paced the host with inflow control (see formPairs). */
  inflowControl?: boolean;
  /** Writes refused (should be none) by status. */
  refused: Record<string, number>;
  firmwareEvents: number;
  wallMs: number;
  /**
   * Threads runtime: CPU time of the whole process (host, every storage system's thread, V8's helpers) per write
   * over the window — what limits a cell when the machine's cores are all busy, and much less load-dependent than
   * the rate itself.
   */
  cpuUsPerWrite?: number;
  /** Threads runtime: the machine's cores, which cpuUsPerWrite × IOPS is held against (2e6 µs a second on 2 cores). */
  cores?: number;
  /**
   * Threads runtime: per storage system, the latest its CPU dispatched any event (frame, timer, host I/O) over the
   * cell, in µs. Longer than the firmware's partner timeout, the emulator's thread stalled: a pair that then failed
   * with 'partner lost' says more about the emulator than about the emulated link.
   */
  cpuLateMaxUs?: Record<string, number>;
  /**
   * Threads runtime: per storage system, how late its CPU dispatched frames and host I/Os over the window, on
   * average (µs after the time each was due). What a CPU sends is stamped from the due time (maxDueCreditUs), so
   * only the lateness no flight absorbs reaches the host (see hostPickupLateUs and the model's late last hop).
   */
  dispatchLateUs?: Record<string, { frame: number; host: number }>;
  /**
   * Threads runtime: how long after becoming visible the host (the main thread) took each completion over the window,
   * on average (µs): its wake-up (ThreadsWorld.hostPickup). In results with hostTimes, the host issued its next write
   * at the completion's time, so this is in neither the latency nor the next write's; before, it was in both.
   */
  hostPickupLateUs?: number;
  /**
   * The host issued each write when it meant to (the lane's previous completion, or an open loop's due time) and its
   * latency runs from then to the completion as the host saw it (HostIoRequest.issuedAtUs, HostIoResult.completedAtUs).
   * Absent in results from before: there the host's own lateness in resuming its loop was part of every write.
   */
  hostTimes?: true;
  /** Threads runtime, when not 0: how many times over the cell the host path's watchdog had to wake the host (ThreadsWorld.pumpRescueCount). */
  hostPumpRescues?: number;
}

export function percentiles(h: hdr.Histogram): Percentiles {
  return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue, mean: h.mean };
}

export const newHistogram = (): hdr.Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export interface RpoSample {
  timeUs: number;
  /** Source journal backlog: entries and bytes not yet acknowledged by the destination. */
  entries: number;
  bytes: number;
  usagePercent: number;
  /** Recovery point: host writes acknowledged but not in the destination's consistent image, and how old the oldest is. */
  rpoWrites: number;
  rpoMs: number;
  /** The source side's pair state (PairState), and why it failed (FailureCause; 'none' when it did not). */
  state: number;
  cause: string;
}

/**
 * Samples an asynchronous pair every `periodUs` from control memory (no command, so the firmware is undisturbed):
 * the source journal's backlog, and the recovery point — what a failover now would lose.
 * - In duplex, the destination's image holds entries through its applied sequence number; the writes after it are
 *   lost, and the oldest of them was journaled when the source's newest sequence number first passed it (known to
 *   within a period from the sampled history).
 * - In snapshot mode (SPEC §5) the destination's image is the data volume as it was when the snapshot it last
 *   applied was taken: every host write since is lost. That moment is when the source's snapshot end sequence
 *   number first reached the destination's applied one (known to within a period, as above).
 * - Out of duplex (journal full, suspended, resynchronising) the destination is frozen or inconsistent: everything
 *   the host wrote since the pair left duplex is lost as well.
 */
export class RpoSampler {
  readonly samples: RpoSample[] = [];
  /** The destination's applied sequence number at each sample (deliveredMBps). */
  private readonly applied: Array<{ timeUs: number; seq: number }> = [];
  private readonly newest: Array<{ timeUs: number; seq: number }> = [];
  /** Snapshot mode: when each snapshot end sequence number was first seen, and the host writes completed by then. */
  private readonly snapshotsTaken: Array<{ timeUs: number; seq: number; completed: number }> = [];
  private leftDuplex: { timeUs: number; completed: number; unappliedWrites: number; rpoMs: number } | null = null;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(private readonly world: World, private readonly source: string, private readonly destination: string,
    private readonly completedTotal: () => number, private readonly periodUs = 1_000, private readonly pairId = 2) {
    this.done = this.run();
  }

  stop(): void { this.stopped = true; }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.sample();
      await this.world.sleep(this.periodUs);
    }
  }

  private firstSeenUs(seq: number): number {
    let lo = 0, hi = this.newest.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.newest[mid]!.seq >= seq) hi = mid; else lo = mid + 1; }
    return this.newest[lo]?.timeUs ?? this.world.nowUs();
  }

  sample(): void {
    const w = this.world, t = w.nowUs();
    const j = w.journals(this.source).find((x) => x.pairId === this.pairId);
    const src = w.definitionInformation(this.source).find((p) => p.pairId === this.pairId);
    const dst = w.definitionInformation(this.destination).find((p) => p.pairId === this.pairId);
    if (!j || !src || !dst) return;
    const last = this.newest[this.newest.length - 1];
    if (!last || j.newestSeq > last.seq) this.newest.push({ timeUs: t, seq: j.newestSeq });
    this.applied.push({ timeUs: t, seq: dst.appliedSeq });
    const unapplied = Math.max(0, j.newestSeq - dst.appliedSeq);
    let rpoWrites = unapplied;
    let rpoMs = unapplied > 0 ? (t - this.firstSeenUs(dst.appliedSeq + 1)) / 1000 : 0;
    if (src.asyncMode === 'snapshot') {
      const taken = this.snapshotsTaken[this.snapshotsTaken.length - 1];
      if (!taken || src.snapshotEndSeq > taken.seq) this.snapshotsTaken.push({ timeUs: t, seq: src.snapshotEndSeq, completed: this.completedTotal() });
      const image = this.snapshotsTaken.find((x) => x.seq >= dst.appliedSeq) ?? this.snapshotsTaken[0]!;
      rpoWrites = this.completedTotal() - image.completed;
      rpoMs = (t - image.timeUs) / 1000;
    }
    const duplex = src.state === PairState.Duplex && isConsistentDestination(dst) && dst.state === PairState.Duplex;
    if (!duplex) {
      // The image froze when the pair left duplex, already `rpoMs` behind: from then on it only falls further behind.
      this.leftDuplex ??= { timeUs: t, completed: this.completedTotal(), unappliedWrites: unapplied, rpoMs };
      rpoWrites = this.leftDuplex.unappliedWrites + (this.completedTotal() - this.leftDuplex.completed);
      rpoMs = Math.max(rpoMs, this.leftDuplex.rpoMs + (t - this.leftDuplex.timeUs) / 1000);
    } else {
      this.leftDuplex = null;
    }
    this.samples.push({ timeUs: t, entries: j.entries, bytes: j.usedBytes, usagePercent: (100 * j.usedBytes) / j.capacityBytes, rpoWrites, rpoMs, state: src.state, cause: src.failureCause });
  }

  /**
   * Extends a warm-up while the journal is still filling: a load the link or R cannot drain grows the journal until
   * inflow control paces it at the high-water mark (or, without it, the pair suspends), and only then is the cell at
   * a steady state. Returns once usage rose less than a percentage point over `periodUs`, reached the mark, or the
   * pair left duplex — or after `maxUs`.
   */
  async untilJournalSteady(periodUs: number, maxUs: number): Promise<void> {
    const usage = () => this.samples.at(-1)?.usagePercent ?? 0;
    const end = this.world.nowUs() + maxUs;
    for (;;) {
      const before = usage();
      await this.world.sleep(periodUs);
      const last = this.samples.at(-1);
      if (!last || last.state !== PairState.Duplex || last.usagePercent >= JOURNAL_HIGH_WATER_PERCENT || usage() - before < 1 || this.world.nowUs() >= end) return;
    }
  }

  /**
   * The destination's apply rate over [fromUs, toUs], MB/s: the least-squares slope of its applied sequence number
   * against time. Not the difference of the two ends: a gap being filled at either end (a lost batch holds back a
   * window of entries the destination already has) would move that by up to a window's worth.
   */
  deliveredMBps(fromUs: number, toUs: number, blockBytes: number): number {
    const s = this.applied.filter((x) => x.timeUs >= fromUs && x.timeUs <= toUs);
    if (s.length < 2) return 0;
    const mt = s.reduce((a, x) => a + x.timeUs, 0) / s.length, ms = s.reduce((a, x) => a + x.seq, 0) / s.length;
    const cov = s.reduce((a, x) => a + (x.timeUs - mt) * (x.seq - ms), 0), vt = s.reduce((a, x) => a + (x.timeUs - mt) ** 2, 0);
    return vt === 0 ? 0 : (cov / vt) * blockBytes; // entries per µs × bytes = MB/s
  }

  summary(fromUs: number, toUs: number): NonNullable<CellResult['journal']> {
    const s = this.samples.filter((x) => x.timeUs >= fromUs && x.timeUs <= toUs);
    const share = (f: (x: RpoSample) => boolean) => (s.length ? (100 * s.filter(f).length) / s.length : 0);
    const left = this.samples.find((x) => x.timeUs <= toUs && x.state !== PairState.Duplex);
    const sorted = (f: (x: RpoSample) => number) => s.map(f).sort((a, b) => a - b);
    const entries = sorted((x) => x.entries), writes = sorted((x) => x.rpoWrites), ms = sorted((x) => x.rpoMs);
    return {
      entriesP50: quantile(entries, 0.5), entriesMax: entries[entries.length - 1] ?? 0,
      bytesMax: Math.max(0, ...s.map((x) => x.bytes)),
      rpoWritesP50: quantile(writes, 0.5), rpoWritesMax: writes[writes.length - 1] ?? 0,
      rpoMsP50: quantile(ms, 0.5), rpoMsMax: ms[ms.length - 1] ?? 0,
      usagePercentMax: Math.max(0, ...s.map((x) => x.usagePercent)),
      duplexPercent: share((x) => x.state === PairState.Duplex), overMarkPercent: share((x) => x.usagePercent >= JOURNAL_HIGH_WATER_PERCENT),
      leftDuplexAtMs: left ? (left.timeUs - fromUs) / 1000 : null,
      ...(left ? { leftDuplexCause: this.samples.find((x) => x.timeUs >= left.timeUs && x.cause !== 'none')?.cause ?? 'none' } : {}),
    };
  }
}

/**
 * A host keeping `queueDepth` writes outstanding (closed loop), or issuing at `ratePerS` (open loop, at most
 * `queueDepth` at once). Lane q writes blocks q, q + QD, … so no two writes in flight touch the same block.
 */
export class HostLoad {
  private stopped = false;
  readonly done: Promise<void>;
  readonly histogram = newHistogram();
  /** Completions inside [fromUs, toUs), and all completions. */
  completed = 0;
  completedTotal = 0;
  refused: Record<string, number> = {};
  fromUs = Infinity;
  toUs = Infinity;
  private issued = 0;

  constructor(world: World, host: string, readonly queueDepth: number, readonly blockBytes: number,
    private readonly ratePerS?: number) {
    const data = new Uint8Array(blockBytes).fill(0x5a);
    const blocks = blockBytes / BLOCK_SIZE_BYTES;
    const slots = Math.floor(DATA_VOLUME_BYTES / blockBytes);
    const start = world.nowUs();
    this.done = Promise.all(Array.from({ length: queueDepth }, async (_, lane) => {
      // The host issues each write when it means to (HostIoRequest.issuedAtUs): closed loop, when the lane's previous
      // write completed; open loop, when the write is due. The emulator's lateness in resuming this loop is not the host's.
      let issueAtUs: number | undefined;
      for (let k = lane; !this.stopped; k += queueDepth) {
        if (this.ratePerS) {
          // Open loop: the n-th write is due at start + n / rate.
          const dueUs = start + (this.issued++ * 1e6) / this.ratePerS;
          const waitUs = dueUs - world.nowUs();
          if (waitUs > 0) await world.sleep(waitUs);
          if (this.stopped) break;
          issueAtUs = Math.min(dueUs, world.nowUs());
        }
        const t0 = issueAtUs ?? world.nowUs();
        const r = await world.hostIo(host, { op: 'write', lvol: DATA_LVOL, lba: (k % slots) * blocks, blocks, data, issuedAtUs: t0 });
        const t1 = r.completedAtUs;
        issueAtUs = t1;
        if (r.status !== 'ok') { this.refused[r.status] = (this.refused[r.status] ?? 0) + 1; await world.sleep(1_000); issueAtUs = undefined; continue; }
        this.completedTotal++;
        if (t0 >= this.fromUs && t1 < this.toUs) {
          this.completed++;
          this.histogram.recordValue(Math.max(1, Math.round(t1 - t0)));
        }
      }
    })).then(() => undefined);
  }

  stop(): void { this.stopped = true; }
}

const cpuStats = (world: ThreadsWorld): Map<string, ThreadCpuStats> => new Map(world.topology.systems.map((x) => [x.name, world.stats(x.name)]));

/** Mean lateness of the frames and host I/Os each CPU dispatched between two readings of its counters. */
function dispatchLateness(from: Map<string, ThreadCpuStats>, to: Map<string, ThreadCpuStats>): Record<string, { frame: number; host: number }> {
  const mean = (sum: number, n: number) => (n > 0 ? sum / n : 0);
  return Object.fromEntries([...to].map(([name, b]) => {
    const a = from.get(name)!;
    return [name, { frame: mean(b.frameLateUsSum - a.frameLateUsSum, b.framesIn - a.framesIn), host: mean(b.hostLateUsSum - a.hostLateUsSum, b.hostIos - a.hostIos) }];
  }));
}

/**
 * What a cell whose host writes never completed left behind, for its error: each system's pairs (state, applied
 * sequence number, failure cause) and journals (entries, sequence numbers, fill), and on threads each CPU's worst
 * lateness, frames lost, ring-full retries, and host I/Os taken and answered.
 */
export function hungCellState(world: World): string {
  const systems = world.topology.systems.map((sys) => {
    const pairs = world.definitionInformation(sys.name).map((p) => `pair ${p.pairId} ${p.role} ${pairStateName(p.state)}${p.failureCause !== 'none' ? ` (${p.failureCause})` : ''} applied ${p.appliedSeq}`);
    const journals = world.journals(sys.name).map((j) => `journal ${j.journalLvol}: ${j.entries} entries${j.entries > 0 ? ` (${j.oldestSeq}–${j.newestSeq})` : ''}, `
      + `${Math.round((100 * j.usedBytes) / j.capacityBytes)} % full`);
    const st = world instanceof ThreadsWorld ? world.stats(sys.name) : null;
    const cpu = st ? [`CPU late max ${Math.round(st.lateUsMax / 1000)} ms, ${st.framesLost} frames lost, ${st.ringFullRetries} ring-full retries, `
      + `host I/Os ${st.hostIos} taken ${st.hostCompletions} answered`] : [];
    return `${sys.name}: ${[...pairs, ...journals, ...cpu].join(', ') || 'no pair'}`;
  });
  return systems.join('; ') + (world instanceof ThreadsWorld ? `; hosts: ${world.hostPathState()}` : '');
}

/** Runs one cell from a new world to a closed one. */
export async function runCell(spec: CellSpec, window: Window, seed = 1): Promise<CellResult> {
  const wall0 = performance.now();
  const world = await createWorld(spec.runtime, studyTopology(spec.scheme, { distanceKm: spec.distanceKm, bandwidthMBps: linkMBpsOf(spec) }), seed, { maxVirtualUs: 3_600_000_000, prefaultMemory: true });
  try {
    await formPairs(world, spec.scheme, { inflowControl: true });
    const load = new HostLoad(world, hostOf(spec.scheme), spec.queueDepth, spec.blockBytes);
    const sampler = spec.scheme === 'sync' ? null
      : new RpoSampler(world, 'I', 'R', () => load.completedTotal, spec.runtime === 'sim' ? 100 : 1_000);
    await world.sleep(window.warmupUs);
    if (sampler) await sampler.untilJournalSteady(window.warmupUs / 2, 20 * window.warmupUs);
    const fromUs = world.nowUs();
    load.fromUs = fromUs;
    const events0 = world.eventCount();
    let endUs = fromUs + window.measureUs;
    let cpu0: { cpu: NodeJS.CpuUsage; writes: number } | null = null;
    let dispatch0: Map<string, ThreadCpuStats> | null = null;
    let pickup0: { completions: number; lateUsSum: number } | null = null;
    for (;;) {
      await world.sleep(Math.min(50_000, Math.max(1_000, window.measureUs / 20)));
      const now = world.nowUs();
      if (now < fromUs) continue;
      cpu0 ??= { cpu: process.cpuUsage(), writes: load.completedTotal };
      if (world instanceof ThreadsWorld) { dispatch0 ??= cpuStats(world); pickup0 ??= world.hostPickup(); }
      const enough = window.maxWrites !== undefined && load.completed >= window.maxWrites && now - fromUs >= MIN_WINDOW_ROUND_TRIPS * roundTripUs(spec.distanceKm);
      const tooFew = window.minWrites !== undefined && load.completed < window.minWrites && now - fromUs < 100 * window.measureUs;
      if (enough || (now >= endUs && !tooFew)) { endUs = now; break; }
    }
    load.toUs = endUs;
    const pickup = world instanceof ThreadsWorld && pickup0 ? world.hostPickup() : null;
    const cpu = cpu0 && process.cpuUsage(cpu0.cpu), cpuWrites = cpu0 ? load.completedTotal - cpu0.writes : 0;
    load.stop();
    sampler?.stop();
    await withinWallMs(load.done, 60_000, () => `study: cell ${cellName(spec)}: host writes still outstanding 60 s after the load stopped; ${hungCellState(world)}`);
    await sampler?.done;
    const measuredUs = endUs - fromUs;
    const iops = (load.completed * 1e6) / measuredUs;
    const end = world instanceof ThreadsWorld ? cpuStats(world) : null;
    const cpuLateMaxUs = end ? Object.fromEntries([...end].map(([name, st]) => [name, st.lateUsMax])) : undefined;
    const dispatchLateUs = end && dispatch0 ? dispatchLateness(dispatch0, end) : undefined;
    return {
      ...spec, writes: load.completed, measuredUs, iops, mbPerS: (iops * spec.blockBytes) / 1e6,
      latencyUs: percentiles(load.histogram),
      journal: sampler ? sampler.summary(fromUs, endUs) : undefined,
      refused: load.refused, firmwareEvents: world.eventCount() - events0, wallMs: performance.now() - wall0,
      ...(hasJournalPair(spec.scheme) ? { inflowControl: true } : {}),
      hostTimes: true,
      ...(spec.runtime === 'threads' && cpu && cpuWrites > 0 ? { cpuUsPerWrite: (cpu.user + cpu.system) / cpuWrites, cores: availableParallelism() } : {}),
      ...(cpuLateMaxUs ? { cpuLateMaxUs } : {}),
      ...(dispatchLateUs ? { dispatchLateUs } : {}),
      ...(pickup && pickup0 && pickup.completions > pickup0.completions
        ? { hostPickupLateUs: (pickup.lateUsSum - pickup0.lateUsSum) / (pickup.completions - pickup0.completions) } : {}),
      ...(world instanceof ThreadsWorld && world.pumpRescueCount() > 0 ? { hostPumpRescues: world.pumpRescueCount() } : {}),
    };
  } finally {
    await world.close();
  }
}
