// The threads runtime's CPU (runs INSIDE one worker thread per storage system): it attaches the system's
// shared memory, implements `Hardware` for the firmware, and is the loop that feeds the `Controller` one
// event at a time — inter-controller frames from shared-memory rings (each stamped with the time it may be
// delivered), host I/O from the host port's submission ring, and timers. Latency is really waited for:
// the loop blocks on its doorbell (Atomics.wait, in bounded slices) until shortly before the next deadline and
// spins synchronously for the rest; it yields to its event loop (management messages) only when needed.
// Semantics mirror hardware/sim-machine.ts + harness/runtime-sim.ts.
//
// Flight recorder: every event handed to the firmware is remembered (as numbers, in a preallocated ring) and
// described only when a firmware assertion stops the controller; the dump travels with the error report.
// Pause: the harness can hold this CPU between two events (as a debugger breakpoint would): the thread blocks,
// frames and host I/O keep arriving in its rings stamped with their due times, and are dispatched late on resume.
//
// Ring records (all little-endian, read and written through one DataView per ring's SharedArrayBuffer):
//   link ring (one per direction of a link; the sender produces):
//     0 f64 deliverAtUs   8 i32 link epoch   12 i32 this direction's epoch   16 i32 receiver's power epoch
//     20 routing header of a circuit over the common line (hardware/switching-device.ts; pad otherwise)   28.. frame bytes
//   host submission ring (main thread → this CPU):
//     0 f64 notBeforeUs (submitted + hostLinkUs)   8 u32 tag   12 u8 op (bit0 write, bit7 has data)
//     16 f64 lvol   24 f64 lba   32 f64 blocks   40 (pad)   44.. write data
//     (lvol/lba/blocks as f64 so whatever number the host passed reaches the firmware's checks unchanged, as on sim)
//   host completion ring (this CPU → main thread):
//     0 f64 visibleAtUs (completed + hostLinkUs)   8 u32 tag   12 u8 status code   16 (pad)   20.. read data
//   Header sizes are 4 mod 8: a ring payload starts 4 bytes into an 8-byte-aligned record, so the bulk bytes after
//   the header (frame, write data, read data) land 8-byte aligned. Copies to or from shared memory go through V8's
//   relaxed memmove, which copies word by word only when source and destination are equally aligned and byte by
//   byte otherwise: 3.3 µs instead of 0.6 µs per 4 KiB, several times per replicated write.

import { Controller } from '../firmware/controller.ts';
import { FRAME_HEADER_BYTES, MAX_FRAME_BODY_BYTES } from '../firmware/frames.ts';
import type { Command, CommandReply } from '../firmware/commands.ts';
import { DEFAULT_FIRMWARE_TIMING, type FirmwareTiming } from '../firmware/constants.ts';
import type { FirmwareEvent, Hardware, HostIo, IoStatus, TimerKind } from '../firmware/hardware-interface.ts';
import { Prng } from '../harness/prng.ts';
import type { CacheMemory } from './cache-memory.ts';
import type { DiskArray } from './disk-array.ts';
import { Doorbell } from './doorbell.ts';
import { LinkModel, type LinkConditions, type LinkConfig } from './link-model.ts';
import { CopyDevice, isCopyFrame, type CopyDeviceConfig, type CopyDeviceStats } from './copy-device.ts';
import { SpscRing } from './spsc-ring.ts';
import { CommonLine, type CommonLineSpec } from './common-line.ts';
import { ROUTING_HEADER_BYTES, writeRoutingHeader } from './switching-device.ts';
import { StorageSystemMemory, type StorageSystemMemoryState } from './storage-system.ts';
import { DueCredit } from './due-credit.ts';

// ───────────────────────────── shared layouts (used by the main thread too) ─────────────────────────────

// Each record header is a multiple of 8 bytes, so that the data behind it (a frame, a host write, a read's data)
// stays 8-byte aligned after the ring's own 8-byte record header: a 4 KiB copy to or from shared memory is word
// by word only when both sides are equally aligned.
//   frame record:  0 f64 due time  8 i32 link epoch  12 i32 direction epoch  16 i32 power epoch
//                  20 routing header (common line)  28 reserved  32 frame
//   submission:    0 f64 not before  8 u32 tag  12 u8 op  16 f64 lvol  24 f64 lba  32 f64 blocks  40 reserved  48 data
//   completion:    0 f64 visible at  8 u32 tag  12 u8 status  16 f64 pushed at (world µs)  24 data
export const FRAME_RECORD_HEADER_BYTES = 32;
/** Where a link ring record carries the routing header of a frame on the common line. */
const RECORD_ROUTING_HEADER_OFFSET = 20;
export const SUBMISSION_HEADER_BYTES = 48;
export const COMPLETION_HEADER_BYTES = 24;
export const SUB_OP_WRITE = 0x01;
export const SUB_HAS_DATA = 0x80;

/** Status codes on the completion ring. */
export const IO_STATUS_CODES: readonly IoStatus[] = [
  'ok', 'out-of-range', 'unknown-lvol', 'write-protected', 'fenced', 'busy', 'medium-error', 'not-ready',
];
const STATUS_CODE = new Map<IoStatus, number>(IO_STATUS_CODES.map((s, i) => [s, i]));

/**
 * World-wide Int32 words per storage system i, at i × SYSTEM_WORDS_PER_SYSTEM (a 64-byte line each, so threads
 * don't false-share): +0 power epoch, +1 1 while a controller runs, +2 1 while its CPU sleeps on its doorbell,
 * +3 pause (PAUSE_RUNNING, PAUSE_REQUESTED by the main thread, PAUSE_HELD once the CPU holds between events),
 * +4 the time its CPU's timed sleep ends (SW_WAKE_AT: see wakeAtWord), 0 while it is awake.
 * After the last system's words, the main thread's own "asleep" word (the main doorbell's consumer).
 */
export const SYSTEM_WORDS_PER_SYSTEM = 16;
export const SW_POWER_EPOCH = 0, SW_UP = 1, SW_ASLEEP = 2, SW_PAUSE = 3, SW_WAKE_AT = 4;
export const PAUSE_RUNNING = 0, PAUSE_REQUESTED = 1, PAUSE_HELD = 2;
export const systemWordsLength = (systems: number): number => (systems + 1) * SYSTEM_WORDS_PER_SYSTEM;
export const mainAsleepIndex = (systems: number): number => systems * SYSTEM_WORDS_PER_SYSTEM + SW_ASLEEP;

/**
 * Doorbell suppression (as virtio's event index, or an NVMe host that does not need an interrupt per completion): a
 * CPU about to sleep (its final, short sleep towards a deadline) until world time `wakeAtUs` publishes it in its SW_WAKE_AT word, and a peer that pushes frames
 * due no earlier than that does not ring (see ThreadCpu.ringPeers): the sleeper drains its rings when it wakes anyway,
 * before any of them is due. At 100 km every frame otherwise woke its receiver twice, once when it was pushed and
 * once when it was due. The word holds whole WAKE_AT_UNIT_US, rounded up (an Int32 then lasts 9.5 hours of world time;
 * beyond, or for a time not finite, it holds 0: ring me).
 */
export const WAKE_AT_UNIT_US = 16;
export function wakeAtWord(wakeAtUs: number): number {
  const w = Math.ceil(wakeAtUs / WAKE_AT_UNIT_US);
  return w > 0 && w <= 0x7fffffff ? w : 0;
}
/**
 * World-wide Int32 words per link l, at l × LINK_WORDS_PER_LINK: +0 1 while up (both fibres: a cut both ways is
 * loss of light that both ports notice), +1 its epoch (bumped at every cut and heal: frames stamped with an older
 * one are lost), then per direction d (0: a→b, 1: b→a) +2+2d 1 while that fibre is up, +3+2d its epoch.
 */
export const LINK_WORDS_PER_LINK = 8;
export const LW_UP = 0, LW_EPOCH = 1;
export const lwDirUp = (dir: 0 | 1): number => 2 + 2 * dir;
export const lwDirEpoch = (dir: 0 | 1): number => 3 + 2 * dir;

/** A change to the latency model of one direction of a link, made in the sending worker that owns it. */
export type LinkModelChange =
  | { kind: 'path'; path: number; up: boolean }
  | { kind: 'conditions'; conditions: LinkConditions | 'reset' };

/** Per-CPU counters in a shared Float64Array, readable by the main thread at any time without asking. */
export const STAT = {
  eventsDispatched: 0, framesIn: 1, framesOut: 2, framesLost: 3, hostIos: 4, hostCompletions: 5,
  timersFired: 6, commands: 7, loopTurns: 8, waits: 9, ringFullRetries: 10,
  /** Sum and maximum of (dispatch time − due time) of frames, timers and host I/Os: how late the CPU was. */
  frameLateUsSum: 11, frameLateUsMax: 12, timerLateUsSum: 13, hostLateUsSum: 14, lateUsMax: 15,
  /** Pauses held (debugger-style, see ThreadsWorld.pauseSystem) and the time spent held. */
  pauses: 16, pausedUs: 17,
  /** The copy device (¶0168), when the system has one: see CopyDeviceStats (hardware/copy-device.ts). */
  copyFrames: 18, copyBytes: 19, copyQueueFullWaits: 20, copyBusyUs: 21, copyMaxQueue: 22, copyQueued: 23, copyFramesLost: 24,
  /** Frame buffers allocated fresh, because the pool kept no free one of the size (see FrameBufferPool). */
  frameBuffersAllocated: 25,
  /** Loop turns whose drain of the inbound rings stopped at maxDrainBytesPerTurn with records left. */
  drainCuts: 26,
  /** Sum of the lateness credited to dispatched events, whose effects were stamped from their due time (maxDueCreditUs). */
  dueCreditUsSum: 27,
  /** Doorbells not rung, because the peer was asleep until after the frames pushed were due (see wakeAtWord). */
  doorbellsSkipped: 28,
} as const;
export const STAT_WORDS = 29;

/** The copy device's counters from a CPU's stats words (whether the system has a device is the topology's to say). */
export function readCopyDeviceStats(stats: Float64Array): CopyDeviceStats {
  return { frames: stats[STAT.copyFrames]!, bytes: stats[STAT.copyBytes]!, queueFullWaits: stats[STAT.copyQueueFullWaits]!,
    busyUs: stats[STAT.copyBusyUs]!, maxQueue: stats[STAT.copyMaxQueue]!, queued: stats[STAT.copyQueued]!, framesLost: stats[STAT.copyFramesLost]! };
}
export type ThreadCpuStats = { -readonly [K in keyof typeof STAT]: number };

export function readStats(stats: Float64Array): ThreadCpuStats {
  const out = {} as ThreadCpuStats;
  for (const [k, i] of Object.entries(STAT)) out[k as keyof typeof STAT] = stats[i]!;
  return out;
}

/**
 * The world clock: microseconds since `originNs` on CLOCK_MONOTONIC (process.hrtime), which every thread
 * of the process shares. (performance.now() is as cheap, ~90 ns, but drifts from hrtime by ~15 ppm.)
 */
export function worldClock(originNs: bigint): () => number {
  return () => Number(process.hrtime.bigint() - originNs) / 1000;
}


/**
 * A doorbell with its consumer's "asleep" word. Producers ring after publishing records (once per batch: see
 * ThreadCpu.ringPeers and ThreadsWorld.ringSystems): that is an Atomics.add, plus an Atomics.notify (a futex wake
 * or a task posted to the sleeping isolate: 10–50 µs) only when the consumer has said it is going to sleep — and
 * then only by the one producer that flips the word back (compare-exchange 1 → 0), so a sleep costs one notify
 * however many records arrive. The consumer sets the word before waiting on the value it saw before its last look
 * at the rings: a record published after that look either changes the value (the wait returns at once) or finds
 * the word set (and notifies).
 */
export class WakeLine {
  private readonly bell: Int32Array;

  constructor(readonly doorbell: Doorbell, private readonly words: Int32Array, private readonly asleepIndex: number) {
    this.bell = new Int32Array(doorbell.sab, 0, 1);
  }

  value(): number {
    return Atomics.load(this.bell, 0);
  }

  /** Producer side: call after publishing records. */
  ring(): void {
    Atomics.add(this.bell, 0, 1);
    if (Atomics.load(this.words, this.asleepIndex) === 1 && Atomics.compareExchange(this.words, this.asleepIndex, 1, 0) === 1) {
      Atomics.notify(this.bell, 0);
    }
  }

  /** Consumer side: sleeps (without blocking the event loop) until rung or timeoutMs. */
  async sleepAsync(seen: number, timeoutMs: number): Promise<void> {
    Atomics.store(this.words, this.asleepIndex, 1);
    try {
      await this.doorbell.waitAsync(seen, timeoutMs);
    } finally {
      Atomics.store(this.words, this.asleepIndex, 0);
    }
  }

  /** Consumer side, worker threads only: blocks the thread until rung or timeoutMs; false when it timed out. */
  sleepSync(seen: number, timeoutMs: number): boolean {
    Atomics.store(this.words, this.asleepIndex, 1);
    const rung = this.doorbell.waitSync(seen, timeoutMs);
    Atomics.store(this.words, this.asleepIndex, 0);
    return rung;
  }
}

/**
 * A producer's handle on an SpscRing with a DataView over its whole buffer (ring payload views carry their
 * absolute byteOffset, so record headers are read and written without allocating).
 */
export class RingPort {
  readonly ring: SpscRing;
  readonly dv: DataView;

  constructor(sab: SharedArrayBuffer) {
    this.ring = SpscRing.attach(sab);
    this.dv = new DataView(sab);
  }

  /** header ++ body as one record; false when the ring is full. */
  push(header: Uint8Array, body: Uint8Array | undefined): boolean {
    return this.ring.tryPushParts(header, body);
  }
}

// ───────────────────────────── configuration (posted from the main thread) ─────────────────────────────

export interface ThreadTuning {
  /**
   * Longest oversleep allowed for. A blocking Atomics.wait with a timeout wakes late (timer slack and the wake-up of
   * an idle vCPU: 70–150 µs on a 2-vCPU VM), so the loop asks to wake (learned oversleep + spinMarginUs) before a
   * deadline and spins (watching the doorbell and the clock) for the rest. The oversleep it allows for is a high
   * quantile (oversleepQuantile) of the recent final sleeps' lateness, capped at spinUs: one slow wake-up (a
   * preempted vCPU) must not make every later approach spin for milliseconds. With due credit on (maxDueCreditUs),
   * only a CPU holding host I/O spins.
   */
  spinUs: number;
  /** Spin kept on top of the learned oversleep, so a deadline is rarely passed asleep. */
  spinMarginUs: number;
  /** Which quantile of the recent final sleeps' lateness the loop allows for (0.9: one approach in ten wakes late). */
  oversleepQuantile: number;
  /**
   * A sleep longer than this ends this long early, and the rest is slept again: a long timed wait oversleeps more, and
   * less predictably (p90 200–500 µs for 5–10 ms here), than the short final one whose lateness the loop learns.
   */
  approachUs: number;
  /** Farther deadlines are slept for in slices of at most this long (the event loop gets a turn after each). */
  maxSleepSliceMs: number;
  /**
   * After a turn that did work, keep spinning this long before sleeping (saves the ~10 µs futex wake when traffic is
   * steady, but steals a core when threads outnumber them: off by default, and measured slower on 2 cores).
   */
  idleSpinUs: number;
  /** While busy, give the event loop (management messages) a turn at least this often. */
  yieldEveryUs: number;
  /**
   * No event-loop turn is taken in the last spin before a deadline (a cold event loop takes 10–60 µs, which made the
   * dispatch late), unless none was taken for this long: management messages still get through under steady traffic.
   */
  maxYieldDelayUs: number;
  /** Work done per loop turn before doorbells are rung and management messages get a chance. */
  maxTurnEvents: number;
  maxTurnUs: number;
  /**
   * A record pushed this long ago in a turn still running gets its doorbell rung without waiting for the turn's end;
   * frames the firmware holds for a bundle (Controller.beginBurst) are sent after at most this long too.
   */
  maxRingDelayUs: number;
  /** Frames held in the local delivery heap; beyond this the inbound rings back-pressure the sender. */
  maxQueuedFrames: number;
  /**
   * Bytes of frames moved from the inbound rings per loop turn; the rest waits for the next turn, after the due
   * events are dispatched. Copying into buffers not used before costs 3–8 ms per MiB on this VM (FrameBufferPool): a
   * receiver that drained a journal's window of 16 MiB at once fell silent for up to 260 ms.
   */
  maxDrainBytesPerTurn: number;
  /**
   * Free frame buffers kept for reuse (FrameBufferPool): large ones (frames over 256 KiB, 2 MiB each), and bytes of
   * smaller ones. 24 large buffers hold a journal's ship window in flight (16 MiB of write data, in batches of up to
   * 1 MiB) with room to spare.
   */
  frameBuffersLargeKept: number;
  frameBufferSmallBytesKept: number;
  /**
   * Interrupt coalescing: each loop turn is one burst for the firmware (Controller.beginBurst), so the synchronous
   * copies and acknowledgements it makes leave as one bundle per partner. Saves about 10 % of the CPU per replicated
   * write at 0 km, but a write then waits for the rest of its bundle at each hop (+10–15 % latency at 100 km): off by
   * default, since the study measures latency.
   */
  coalesceFrames: boolean;
  /**
   * Effects are timed from when their cause was due: a frame (or host completion) the firmware sends while handling
   * an event that this CPU dispatched late while it had nothing else to do (asleep, waking, or the host OS running
   * another thread) leaves at the event's due time plus the CPU time the firmware spent, not at the late wall-clock
   * time. So a thread's wake-up lateness is not passed on along a chain of hops (host → P → I → P → host): only a
   * hop with no flight left to absorb it shows. Not credited: lateness behind the CPU's own earlier events (queueing,
   * which a busy controller has too), a debugger's pause, and any beyond this cap (a stall); 0 turns it off.
   * Timers stay on the wall clock, so a timeout is never shortened by it. With it on, only a CPU holding host I/O
   * spins for a deadline (spinUs): the others sleep up to it, and their lateness is absorbed in flight. That saved a
   * third of I's and R's CPU per write in the cascade at 100 km, QD 1, and measured 4–6 % more writes/s at QD 8–32.
   */
  maxDueCreditUs: number;
  /**
   * Before its final timed sleep towards a deadline the CPU publishes when it will wake (wakeAtWord), and a peer pushing
   * frames due after that does not ring its doorbell: it drains them on waking, before they are due. Saves a wake-up
   * per frame (or batch) wherever frames are due later than they are sent, which is every link longer than 0 km.
   */
  skipDoorbells: boolean;
}

export const DEFAULT_THREAD_TUNING: ThreadTuning = {
  spinUs: 200,
  spinMarginUs: 15,
  oversleepQuantile: 0.9,
  approachUs: 1000,
  maxSleepSliceMs: 10,
  idleSpinUs: 0,
  yieldEveryUs: 1000,
  maxYieldDelayUs: 10_000,
  maxTurnEvents: 512,
  maxTurnUs: 1000,
  maxRingDelayUs: 50,
  maxQueuedFrames: 65536,
  maxDrainBytesPerTurn: 4 * 1024 * 1024,
  frameBuffersLargeKept: 24,
  frameBufferSmallBytesKept: 16 * 1024 * 1024,
  coalesceFrames: false,
  maxDueCreditUs: 10_000,
  skipDoorbells: true,
};

/**
 * How late a timed sleep wakes: a quantile of the last `capacity` samples (a sliding window, so the estimate follows
 * the machine's load), at most `capUs`; `initialUs` until the first sample.
 */
export class OversleepEstimate {
  private readonly samples: Float64Array;
  private readonly scratch: Float64Array;
  private count = 0;
  private next = 0;
  private estimateUs: number;

  constructor(private readonly quantile: number, private readonly capUs: number, initialUs: number, readonly capacity = 32) {
    if (!(quantile >= 0 && quantile <= 1)) throw new Error(`oversleep quantile must be in [0, 1], got ${quantile}`);
    this.samples = new Float64Array(capacity);
    this.scratch = new Float64Array(capacity);
    this.estimateUs = Math.min(initialUs, capUs);
  }

  /** The lateness allowed for now (µs). */
  get us(): number { return this.estimateUs; }

  add(lateUs: number): void {
    this.samples[this.next] = Math.max(0, lateUs);
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    const s = this.scratch.subarray(0, this.count);
    s.set(this.samples.subarray(0, this.count));
    s.sort();
    this.estimateUs = Math.min(this.capUs, s[Math.min(this.count - 1, Math.floor(this.quantile * this.count))]!);
  }
}

export interface OutboundLinkConfig {
  peerStorageId: number;
  peerName: string;
  /** World index of the peer (its words in systemWords). */
  peerIndex: number;
  linkIndex: number;
  /** 0: the topology's a→b, 1: b→a. */
  dir: 0 | 1;
  ring: SharedArrayBuffer;
  peerDoorbell: SharedArrayBuffer;
  link: LinkConfig;
  /** Seed of this direction's PRNG (jitter, loss, duplication draws). */
  seed: number;
}

export interface InboundLinkConfig {
  peerStorageId: number;
  peerName: string;
  linkIndex: number;
  dir: 0 | 1;
  ring: SharedArrayBuffer;
  /** A circuit over the common line: its records carry a routing header the receiving port checks. */
  overLine?: boolean;
}

export interface HostPortConfig {
  host: string;
  port: number;
  submission: SharedArrayBuffer;
  completion: SharedArrayBuffer;
}

export interface ThreadCpuConfig {
  name: string;
  /** This system's world index (its words in systemWords). */
  index: number;
  /** Number of storage systems in the world (the main thread's words follow theirs in systemWords). */
  systems: number;
  memory: StorageSystemMemoryState;
  timing?: Partial<FirmwareTiming>;
  originNs: bigint;
  hostLinkUs: number;
  doorbell: SharedArrayBuffer;
  mainDoorbell: SharedArrayBuffer;
  systemWords: SharedArrayBuffer;
  linkWords: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  outbound: OutboundLinkConfig[];
  inbound: InboundLinkConfig[];
  hosts: HostPortConfig[];
  tuning?: Partial<ThreadTuning>;
  /** This system's copy device (¶0168): copy-data frames wait in it, in real time, before they enter their link. */
  copyDevice?: CopyDeviceConfig;
  /** Commit the disk array's pages before the controller starts (DiskArray.prefault): for benchmarks. */
  prefaultMemory?: boolean;
  /** The common line (embodiment 3): its shape, the world's systems in index order, and its counters in shared memory. */
  line?: { spec: CommonLineSpec; systems: Array<{ name: string; id: number }>; counters: SharedArrayBuffer };
}

/** What the CPU reports to the main thread (batched per loop turn over the management plane). */
export type CpuReport =
  | { timeUs: number; event: FirmwareEvent }
  /** The controller stopped; `recentEvents`: the flight recorder's dump (the events that led there). */
  | { timeUs: number; error: string; recentEvents?: string };

// ───────────────────────────── local due-time heap ─────────────────────────────

/**
 * Min-heap on (timeUs, insertion order) over preallocated slots: each entry carries a number lane (a), three
 * int32 lanes (b, c, d) and one reference, so pushing a frame or a timer allocates nothing (arrays grow by doubling when full).
 */
export class DueHeap<R> {
  private time: Float64Array;
  private order: Float64Array;
  private a: Float64Array;
  private b: Int32Array;
  private c: Int32Array;
  private d: Int32Array;
  private refs: Array<R | undefined>;
  private heap: Int32Array;
  private free: Int32Array;
  private freeTop: number;
  private seq = 0;
  size = 0;
  // The entry pop() removed (valid until the next push).
  outTimeUs = 0; outA = 0; outB = 0; outC = 0; outD = 0;
  outRef: R | undefined = undefined;

  constructor(private capacity = 256) {
    this.time = new Float64Array(capacity);
    this.order = new Float64Array(capacity);
    this.a = new Float64Array(capacity);
    this.b = new Int32Array(capacity);
    this.c = new Int32Array(capacity);
    this.d = new Int32Array(capacity);
    this.refs = new Array<R | undefined>(capacity).fill(undefined);
    this.heap = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.freeTop = capacity;
  }

  topTimeUs(): number {
    return this.size === 0 ? Infinity : this.time[this.heap[0]!]!;
  }

  push(timeUs: number, a: number, b: number, c: number, d: number, ref: R | undefined): void {
    if (this.freeTop === 0) this.grow();
    const s = this.free[--this.freeTop]!;
    this.time[s] = timeUs;
    this.order[s] = this.seq++;
    this.a[s] = a; this.b[s] = b; this.c[s] = c; this.d[s] = d;
    this.refs[s] = ref;
    const h = this.heap;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(s, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = s;
  }

  /** Removes the earliest entry into out*; false when empty. */
  pop(): boolean {
    if (this.size === 0) return false;
    const h = this.heap;
    const top = h[0]!;
    this.outTimeUs = this.time[top]!;
    this.outA = this.a[top]!; this.outB = this.b[top]!; this.outC = this.c[top]!; this.outD = this.d[top]!;
    this.outRef = this.refs[top];
    this.refs[top] = undefined;
    this.free[this.freeTop++] = top;
    const last = h[--this.size]!;
    if (this.size > 0) {
      let i = 0;
      const n = this.size;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && this.less(h[r]!, h[l]!) ? r : l;
        if (!this.less(h[m]!, last)) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return true;
  }

  clear(): void {
    while (this.pop()) { /* releases slots and references */ }
    this.outRef = undefined;
  }

  private less(x: number, y: number): boolean {
    const tx = this.time[x]!, ty = this.time[y]!;
    return tx < ty || (tx === ty && this.order[x]! < this.order[y]!);
  }

  private grow(): void {
    const old = this.capacity, cap = old * 2;
    const g = <T extends Float64Array | Int32Array>(src: T, make: (n: number) => T): T => { const d = make(cap); d.set(src); return d; };
    this.time = g(this.time, (n) => new Float64Array(n));
    this.order = g(this.order, (n) => new Float64Array(n));
    this.a = g(this.a, (n) => new Float64Array(n));
    this.b = g(this.b, (n) => new Int32Array(n));
    this.c = g(this.c, (n) => new Int32Array(n));
    this.d = g(this.d, (n) => new Int32Array(n));
    this.heap = g(this.heap, (n) => new Int32Array(n));
    this.refs.length = cap;
    this.refs.fill(undefined, old);
    const free = new Int32Array(cap);
    free.set(this.free.subarray(0, this.freeTop));
    for (let s = cap - 1; s >= old; s--) free[this.freeTop++] = s;
    this.free = free;
    this.capacity = cap;
  }
}

// ───────────────────────────── flight recorder ─────────────────────────────

/** Events each CPU remembers, oldest dropped first (as many as the sim runtime's recorder, hardware/recent-events.ts). */
export const FLIGHT_RECORDER_CAPACITY = 256;

/** What a flight-recorder entry is; its number lanes (a, b, c, d) and reference mean what `describe` says. */
export const REC_HOST_IO = 1, REC_FRAME = 2, REC_TIMER = 3, REC_COMMAND = 4, REC_LINK = 5, REC_POWER_ON = 6, REC_POWER_OFF = 7,
  REC_PAUSE = 8, REC_RESUME = 9;

export interface RecordedEvent {
  timeUs: number;
  what: string;
}

/**
 * A CPU's flight recorder: the last `capacity` events it handed to the firmware, kept as numbers in preallocated
 * typed arrays plus one reference to a string that exists anyway (a timer kind, a command's op), so recording
 * allocates nothing and formats nothing; `dump` describes them only when they are needed, in the format of the
 * sim runtime's recorder (RecentEvents.dump in hardware/recent-events.ts).
 */
export class FlightRecorder {
  private readonly time: Float64Array;
  private readonly kind: Uint8Array;
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly c: Float64Array;
  private readonly d: Float64Array;
  private readonly refs: Array<string | undefined>;
  private next = 0;
  private count = 0;

  constructor(readonly capacity = FLIGHT_RECORDER_CAPACITY) {
    this.time = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.a = new Float64Array(capacity);
    this.b = new Float64Array(capacity);
    this.c = new Float64Array(capacity);
    this.d = new Float64Array(capacity);
    this.refs = new Array<string | undefined>(capacity).fill(undefined);
  }

  get size(): number { return this.count; }

  record(kind: number, timeUs: number, a: number, b: number, c: number, d: number, ref: string | undefined): void {
    const i = this.next;
    this.time[i] = timeUs;
    this.kind[i] = kind;
    this.a[i] = a; this.b[i] = b; this.c[i] = c; this.d[i] = d;
    this.refs[i] = ref;
    this.next = i + 1 === this.capacity ? 0 : i + 1;
    if (this.count < this.capacity) this.count++;
  }

  /** The entries, oldest first, described by `describe(kind, a, b, c, d, ref)`. */
  events(describe: (kind: number, a: number, b: number, c: number, d: number, ref: string | undefined) => string): RecordedEvent[] {
    const out: RecordedEvent[] = [];
    const first = (this.next - this.count + this.capacity) % this.capacity;
    for (let n = 0; n < this.count; n++) {
      const i = (first + n) % this.capacity;
      out.push({ timeUs: this.time[i]!, what: describe(this.kind[i]!, this.a[i]!, this.b[i]!, this.c[i]!, this.d[i]!, this.refs[i]) });
    }
    return out;
  }

  /** The dump sent with an assertion: one line per event, oldest first (the sim runtime's format). */
  dump(system: string, describe: Parameters<FlightRecorder['events']>[0]): string {
    const events = this.events(describe);
    return [`last ${events.length} event(s) of storage system ${system}, oldest first:`,
      ...events.map((e) => `  ${(e.timeUs / 1000).toFixed(3).padStart(12)} ms  ${e.what}`)].join('\n');
  }
}

// ───────────────────────────── frame buffers ─────────────────────────────

/**
 * Recycles the buffers frames are copied into while they wait: inbound frames until their delivery time, outbound
 * ones in a sender's backlog while the link ring is full. A fresh ArrayBuffer is expensive here, and more so the
 * larger it is: 3–6 µs for 4 KiB, but 3–8 ms for 1 MiB, since this VM takes 12–30 µs to commit each 4 KiB page on
 * its first write (see DiskArray.prefault), against 0.05 ms to copy 1 MiB into a buffer used before. A receiver
 * that took a burst of 35 batches of 1 MiB from its ring in one turn stalled for 260 ms, near the 300 ms partner
 * timeout (the study's pairs lost in warm-up at 64 KiB). So:
 * - frames up to SMALL_MAX_BYTES take a buffer of their power-of-two class (from 256 bytes), and free ones are kept
 *   up to maxSmallBytes for those classes together;
 * - every larger frame takes a buffer of the large class, sized for the largest frame there is, so that any large
 *   buffer serves any large frame; up to maxLarge free ones are kept;
 * - the first burst still allocates: ThreadTuning.maxDrainBytesPerTurn spreads it over loop turns. (Allocating the
 *   large buffers up front, 50 MiB a worker, made V8 collect its old generation twice as often, and each collection
 *   gave back young-generation pages that then faulted in again: 5–10 % more CPU per replicated write.)
 * A buffer goes back once the firmware's onFrame has returned: the firmware copies whatever it keeps of a frame
 * (cache slots, journal volume, `.slice()`), as it must on every runtime.
 */
export class FrameBufferPool {
  static readonly MIN_CLASS = 8;
  static readonly SMALL_MAX_BYTES = 256 * 1024;
  /** The large class: room for the largest frame (header and body), in whole pages. */
  static readonly LARGE_BYTES = Math.ceil((FRAME_HEADER_BYTES + MAX_FRAME_BODY_BYTES) / 4096) * 4096;
  private readonly small: ArrayBuffer[][] = Array.from({ length: 32 }, () => []);
  private readonly large: ArrayBuffer[] = [];
  private smallBytes = 0;
  /** Buffers allocated because no free one of the class was kept (a steady state allocates none). */
  allocated = 0;

  constructor(readonly maxLarge: number, readonly maxSmallBytes: number) {}

  /** A view of `length` bytes over a recycled (or new) buffer. */
  take(length: number): Uint8Array {
    if (length > FrameBufferPool.SMALL_MAX_BYTES) {
      // Larger than any frame the firmware encodes: not pooled (the firmware refuses it by name, as malformed).
      if (length > FrameBufferPool.LARGE_BYTES) { this.allocated++; return new Uint8Array(length); }
      let buf = this.large.pop();
      if (!buf) { buf = new ArrayBuffer(FrameBufferPool.LARGE_BYTES); this.allocated++; }
      return new Uint8Array(buf, 0, length);
    }
    const k = Math.max(FrameBufferPool.MIN_CLASS, 32 - Math.clz32(Math.max(1, length) - 1));
    let buf = this.small[k]!.pop();
    if (buf) this.smallBytes -= buf.byteLength;
    else { buf = new ArrayBuffer(2 ** k); this.allocated++; }
    return new Uint8Array(buf, 0, length);
  }

  /** A recycled copy of `bytes` (give it back when done). */
  copyOf(bytes: Uint8Array): Uint8Array {
    const v = this.take(bytes.length);
    v.set(bytes);
    return v;
  }

  /** Returns the buffer of a view `take` gave out (anything else is left to the garbage collector). */
  give(view: Uint8Array): void {
    const buf = view.buffer;
    if (!(buf instanceof ArrayBuffer)) return;
    const size = buf.byteLength;
    if (size === FrameBufferPool.LARGE_BYTES) {
      if (this.large.length < this.maxLarge) this.large.push(buf);
      return;
    }
    const k = 31 - Math.clz32(size);
    if (size !== 2 ** k || k < FrameBufferPool.MIN_CLASS || size > FrameBufferPool.SMALL_MAX_BYTES) return;
    if (this.smallBytes + size > this.maxSmallBytes) return;
    this.small[k]!.push(buf);
    this.smallBytes += size;
  }

  /** Free buffers kept: large ones, and bytes of small ones. */
  kept(): { large: number; smallBytes: number } {
    return { large: this.large.length, smallBytes: this.smallBytes };
  }
}

// ───────────────────────────── the CPU ─────────────────────────────

interface Outbound {
  peerStorageId: number;
  peerIndex: number;
  linkName: string;
  /** Indexes into linkWords: the link's words, this direction's up flag and epoch. */
  lw: number;
  dirUp: number;
  dirEpoch: number;
  port: RingPort;
  peerWake: WakeLine;
  /** The earliest due time of the records pushed since the peer's doorbell was last rung, Infinity when none (see ringPeers). */
  unrungDueUs: number;
  model: LinkModel;
  /** A circuit over the common line: each frame goes through CommonLine.carry and carries a routing header. */
  overLine: boolean;
  header: Uint8Array;
  headerView: DataView;
  /** Frames the ring had no room for, oldest first (they are on the wire: never dropped silently). */
  backlog: Array<{ atUs: number; linkEpoch: number; dirEpoch: number; peerPower: number; frame: Uint8Array }>;
  backlogHead: number;
}

interface Inbound {
  peerStorageId: number;
  peerName: string;
  overLine: boolean;
  lw: number;
  dirUp: number;
  dirEpoch: number;
  ring: SpscRing;
  dv: DataView;
}

interface HostPort {
  host: string;
  port: number;
  submission: SpscRing;
  subDv: DataView;
  completion: RingPort;
  header: Uint8Array;
  headerView: DataView;
  /** The submission ring's oldest record, peeked but not yet due. */
  headView: Uint8Array | null;
  headTimeUs: number;
  backlog: Array<{ visibleAtUs: number; tag: number; code: number; data: Uint8Array | undefined }>;
  backlogHead: number;
}

const immediate = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/** Doorbell looks (an Atomics.load, ~6 ns) per clock read (~50 ns, and an allocation) in a spin. */
const SPIN_LOOKS_PER_CLOCK_READ = 16;

const SOURCE_NONE = 0, SOURCE_FRAME = 1, SOURCE_TIMER = 2, SOURCE_HOST = 3, SOURCE_COPY_DEVICE = 4;

export class ThreadCpu implements Hardware {
  readonly storageId: number;
  readonly name: string;
  readonly disk: DiskArray;
  readonly cache: CacheMemory;
  readonly controlMemory: Int32Array;
  readonly timing: FirmwareTiming;
  readonly nowUs: () => number;

  private controller: Controller | null = null;
  private powerEpoch = 0;
  private readonly index: number;
  private readonly hostLinkUs: number;
  private readonly tuning: ThreadTuning;
  private readonly wake: WakeLine;
  private readonly mainWake: WakeLine;
  private readonly systemWords: Int32Array;
  private readonly linkWords: Int32Array;
  private readonly stats: Float64Array;
  private readonly outbound: Outbound[];
  private readonly outboundByPeer = new Map<number, Outbound>();
  private readonly inbound: Inbound[];
  private readonly hosts: HostPort[];
  private readonly hostsByPort = new Map<number, HostPort>();
  private readonly frames = new DueHeap<Uint8Array>(1024);
  /** Buffers of the frames held in `frames` and in the senders' backlogs, recycled once delivered, sent or dropped. */
  private readonly frameBuffers: FrameBufferPool;
  private readonly timers = new DueHeap<TimerKind>(64);
  /** Host I/Os handed to the firmware and not yet completed (failed with 'not-ready' when the controller stops). */
  private readonly outstanding = new Map<number, HostIo>();
  private readonly pendingCommands = new Map<number, (r: CommandReply) => void>();
  private reports: CpuReport[] = [];
  private inboundFull = false;
  /** The last drain stopped at maxDrainBytesPerTurn with records left in a ring: the next turn comes at once. */
  private drainCut = false;
  private drainTurns = 0;
  private backlogged = 0;
  /** When the oldest record not yet announced by a doorbell ring was pushed (-1: none), and whether main is owed one. */
  private unrungSinceUs = -1;
  /** Lateness of the event being dispatched that is not the CPU's own queueing (ThreadTuning.maxDueCreditUs). */
  private readonly dueCredit: DueCredit;
  private mainUnrung = false;
  /** A command promise was settled during a turn: its reply is posted only once the loop yields to the event loop. */
  private commandReplied = false;
  private stopped = false;
  private loopDone: Promise<void> | null = null;
  /** Flight recorder: the events that led to an assertion, dumped with it. */
  private readonly recorder = new FlightRecorder();
  /** This system's SW_WAKE_AT word in systemWords (wakeAtWord). */
  private readonly wakeAtIndex: number;
  /** This system's pause word in systemWords (SW_PAUSE). */
  private readonly pauseIndex: number;
  /** The copy device, if the topology gives this system one (hardware/copy-device.ts). */
  private readonly copyDevice: CopyDevice<{ ob: Outbound; frame: Uint8Array }> | null;
  /** The common line, when this system is on one (its switching devices run here for the frames this system sends). */
  private readonly line: CommonLine | null;
  private readonly routeScratch = new DataView(new ArrayBuffer(ROUTING_HEADER_BYTES));

  constructor(config: ThreadCpuConfig, private readonly report: (batch: CpuReport[]) => void) {
    const memory = StorageSystemMemory.attach(config.memory);
    if (config.prefaultMemory) memory.disk.prefault(); // in this worker, so the systems of a world do it in parallel
    this.storageId = memory.storageId;
    this.name = config.name;
    this.disk = memory.disk;
    this.cache = memory.cache;
    this.controlMemory = memory.controlMemory;
    this.timing = { ...DEFAULT_FIRMWARE_TIMING, ...config.timing };
    this.nowUs = worldClock(config.originNs);
    this.index = config.index;
    this.hostLinkUs = config.hostLinkUs;
    this.tuning = { ...DEFAULT_THREAD_TUNING, ...config.tuning };
    this.frameBuffers = new FrameBufferPool(this.tuning.frameBuffersLargeKept, this.tuning.frameBufferSmallBytesKept);
    this.dueCredit = new DueCredit(this.tuning.maxDueCreditUs);
    this.systemWords = new Int32Array(config.systemWords);
    this.wake = new WakeLine(Doorbell.attach(config.doorbell), this.systemWords, this.index * SYSTEM_WORDS_PER_SYSTEM + SW_ASLEEP);
    this.mainWake = new WakeLine(Doorbell.attach(config.mainDoorbell), this.systemWords, mainAsleepIndex(config.systems));
    this.linkWords = new Int32Array(config.linkWords);
    this.stats = new Float64Array(config.stats);
    this.outbound = config.outbound.map((o) => {
      const prng = new Prng(o.seed);
      const header = new Uint8Array(FRAME_RECORD_HEADER_BYTES);
      const ob: Outbound = {
        peerStorageId: o.peerStorageId, peerIndex: o.peerIndex, linkName: o.link.name, port: new RingPort(o.ring),
        lw: o.linkIndex * LINK_WORDS_PER_LINK, dirUp: o.linkIndex * LINK_WORDS_PER_LINK + lwDirUp(o.dir),
        dirEpoch: o.linkIndex * LINK_WORDS_PER_LINK + lwDirEpoch(o.dir),
        peerWake: new WakeLine(Doorbell.attach(o.peerDoorbell), this.systemWords, o.peerIndex * SYSTEM_WORDS_PER_SYSTEM + SW_ASLEEP),
        model: new LinkModel(o.link, () => prng.next()), overLine: o.link.overLine === true, header, headerView: new DataView(header.buffer), backlog: [], backlogHead: 0, unrungDueUs: Infinity,
      };
      this.outboundByPeer.set(o.peerStorageId, ob);
      return ob;
    });
    this.inbound = config.inbound.map((i) => {
      const ring = SpscRing.attach(i.ring);
      const lw = i.linkIndex * LINK_WORDS_PER_LINK;
      return { peerStorageId: i.peerStorageId, peerName: i.peerName, overLine: i.overLine === true, lw, dirUp: lw + lwDirUp(i.dir), dirEpoch: lw + lwDirEpoch(i.dir), ring, dv: new DataView(i.ring) };
    });
    this.hosts = config.hosts.map((h) => {
      const header = new Uint8Array(COMPLETION_HEADER_BYTES);
      const hp: HostPort = {
        host: h.host, port: h.port, submission: SpscRing.attach(h.submission), subDv: new DataView(h.submission),
        completion: new RingPort(h.completion), header, headerView: new DataView(header.buffer),
        headView: null, headTimeUs: 0, backlog: [], backlogHead: 0,
      };
      this.hostsByPort.set(h.port, hp);
      return hp;
    });
    this.powerEpoch = Atomics.load(this.systemWords, this.index * SYSTEM_WORDS_PER_SYSTEM + SW_POWER_EPOCH);
    this.pauseIndex = this.index * SYSTEM_WORDS_PER_SYSTEM + SW_PAUSE;
    this.wakeAtIndex = this.index * SYSTEM_WORDS_PER_SYSTEM + SW_WAKE_AT;
    this.copyDevice = config.copyDevice ? new CopyDevice(config.copyDevice, `storage system ${config.name}: copyDevice`) : null;
    this.line = config.line ? new CommonLine(config.line.spec, config.line.systems, new Float64Array(config.line.counters)) : null;
  }

  get up(): boolean { return this.controller !== null; }

  // ───────────── Hardware (what the firmware calls) ─────────────

  setTimer(delayUs: number, kind: TimerKind, arg: number): void {
    this.timers.push(this.nowUs() + delayUs, arg, 0, 0, 0, kind);
  }

  send(destStorageId: number, frame: Uint8Array): boolean {
    const ob = this.outboundByPeer.get(destStorageId);
    if (!ob) return false;
    const lwords = this.linkWords;
    if (Atomics.load(lwords, ob.lw + LW_UP) !== 1) return false;
    this.stats[STAT.framesOut]!++;
    if (this.copyDevice && isCopyFrame(frame)) {
      // Copy data goes through the copy device first; the loop puts it on the link once the device is done with it.
      this.copyDevice.offer(this.effectNowUs(), frame.length, { ob, frame: frame.slice() }); // lent for the call only: it waits
      this.publishCopyDeviceStats();
      return true;
    }
    this.toLink(ob, frame, this.effectNowUs());
    return true;
  }

  /** Puts a frame on its link at `atUs` (a cut link or fibre loses it, as a frame in flight at a cut is lost). */
  private toLink(ob: Outbound, frame: Uint8Array, atUs: number): void {
    const lwords = this.linkWords;
    if (Atomics.load(lwords, ob.lw + LW_UP) !== 1) { this.stats[STAT.framesLost]!++; return; }
    if (Atomics.load(lwords, ob.dirUp) !== 1) return; // this fibre is cut: the sender cannot tell
    if (this.line && ob.overLine) {
      // Onto the common line: the switching devices on the way decide, per frame, where it leaves the line.
      writeRoutingHeader(this.routeScratch, 0, ob.peerStorageId, this.storageId, frame.length);
      const taken = this.outboundByPeer.get(this.line.carry(this.index, this.routeScratch, 0));
      if (!taken) { this.stats[STAT.framesLost]!++; return; } // no station took it (the line counts it)
      ob = taken;
    }
    const d = ob.model.schedule(atUs, frame.length);
    if (d.drop) return; // lost on the wire: only the sender's timeouts will tell
    const linkEpoch = Atomics.load(lwords, ob.lw + LW_EPOCH), dirEpoch = Atomics.load(lwords, ob.dirEpoch);
    const peerPower = Atomics.load(this.systemWords, ob.peerIndex * SYSTEM_WORDS_PER_SYSTEM + SW_POWER_EPOCH);
    this.enqueueFrame(ob, d.deliverAtUs, linkEpoch, dirEpoch, peerPower, frame);
    if (d.duplicateAtUs !== undefined) this.enqueueFrame(ob, d.duplicateAtUs, linkEpoch, dirEpoch, peerPower, frame);
  }

  /** Hands the copy device's oldest frame on to its link (entering it when the device finished it). */
  private copyDeviceDone(): void {
    const f = this.copyDevice!.takeDone(this.nowUs());
    if (f) this.toLink(f.item.ob, f.item.frame, f.doneUs);
    this.publishCopyDeviceStats();
  }

  private publishCopyDeviceStats(): void {
    const st = this.copyDevice!.stats, w = this.stats;
    w[STAT.copyFrames] = st.frames; w[STAT.copyBytes] = st.bytes; w[STAT.copyQueueFullWaits] = st.queueFullWaits; w[STAT.copyBusyUs] = st.busyUs;
    w[STAT.copyMaxQueue] = st.maxQueue; w[STAT.copyQueued] = st.queued; w[STAT.copyFramesLost] = st.framesLost;
  }

  completeHostIo(io: HostIo, status: IoStatus, data?: Uint8Array): void {
    if (!this.outstanding.delete(io.tag)) return; // already failed (controller stopped) or not ours
    const hp = this.hostsByPort.get(io.port);
    if (!hp) return;
    this.pushCompletion(hp, io.tag, STATUS_CODE.get(status) ?? STATUS_CODE.get('medium-error')!, data);
  }

  replyCommand(requestId: number, reply: CommandReply): void {
    const resolve = this.pendingCommands.get(requestId);
    if (!resolve) return;
    this.pendingCommands.delete(requestId);
    resolve(reply);
    this.commandReplied = true; // comlink posts the reply from a promise reaction: the loop must yield soon
  }

  emit(event: FirmwareEvent): void {
    this.reports.push({ timeUs: this.nowUs(), event });
  }

  // ───────────── management plane (called by thread-worker.ts) ─────────────

  start(): void {
    if (this.loopDone) return;
    this.loopDone = this.loop().catch((e: unknown) => {
      // A fault in this CPU loop itself (not the firmware's): stop the controller loudly, keep the
      // management plane alive so the harness can see it and close the world.
      const message = `CPU loop of storage system ${this.name} failed: ${(e as Error)?.stack ?? String(e)}`;
      const recentEvents = this.dumpRecent();
      if (this.controller) this.stopController(message);
      this.reports.push({ timeUs: this.nowUs(), error: message, recentEvents });
      this.flush();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake.ring();
    await this.loopDone;
    this.flush();
  }

  powerOn(): void {
    this.holdIfPaused();
    if (this.controller) throw new Error(`storage system ${this.name} is already powered on`);
    this.setPowerEpoch(this.powerEpoch + 1);
    this.recorder.record(REC_POWER_ON, this.nowUs(), this.powerEpoch, 0, 0, 0, undefined);
    try {
      this.controller = new Controller(this);
      Atomics.store(this.systemWords, this.index * SYSTEM_WORDS_PER_SYSTEM + SW_UP, 1);
      this.stats[STAT.eventsDispatched]!++;
      this.controller.boot();
    } catch (e) {
      this.fail('boot', e);
    }
    this.afterManagement();
  }

  /** Power loss: the controller stops; cache memory (volatile) is lost; disks and control memory survive. */
  powerOff(): void {
    if (this.controller) {
      this.recorder.record(REC_POWER_OFF, this.nowUs(), 0, 0, 0, 0, undefined);
      this.stopController(null);
    }
    this.afterManagement();
  }

  command(requestId: number, cmd: Command): Promise<CommandReply> {
    this.holdIfPaused();
    const c = this.controller;
    if (!c) return Promise.resolve({ ok: false, error: `storage system ${this.name} does not answer: it is powered off` });
    const p = new Promise<CommandReply>((resolve) => this.pendingCommands.set(requestId, resolve));
    this.stats[STAT.commands]!++;
    this.stats[STAT.eventsDispatched]!++;
    const op = (cmd as { op?: unknown })?.op;
    this.recorder.record(REC_COMMAND, this.nowUs(), requestId, 0, 0, 0, typeof op === 'string' ? op : undefined);
    try {
      c.onCommand(requestId, cmd);
    } catch (e) {
      this.fail(`command ${requestId} ${(cmd as { op?: string })?.op}`, e);
    }
    this.afterManagement();
    return p;
  }

  linkState(peerStorageId: number, up: boolean): void {
    this.holdIfPaused();
    const c = this.controller;
    if (c) {
      this.stats[STAT.eventsDispatched]!++;
      this.recorder.record(REC_LINK, this.nowUs(), peerStorageId, up ? 1 : 0, 0, 0, undefined);
      try {
        c.onLinkState(peerStorageId, up);
      } catch (e) {
        this.fail(`link ${up ? 'up' : 'down'}`, e);
      }
    }
    this.afterManagement();
  }

  /** Cuts/heals a path of, or sets conditions on, this CPU's outbound direction towards `peerStorageId`. */
  changeLinkModel(peerStorageId: number, change: LinkModelChange): void {
    const ob = this.outboundByPeer.get(peerStorageId);
    if (!ob) throw new Error(`storage system ${this.name} has no link to storage ${peerStorageId}`);
    if (change.kind === 'path') ob.model.setPathUp(change.path, change.up);
    else ob.model.setConditions(change.conditions);
  }

  snapshotStats(): ThreadCpuStats {
    return readStats(this.stats);
  }

  /** A management call may have set timers or changed the deadline: report, and wake our own loop to recompute it. */
  private afterManagement(): void {
    this.flush();
    this.wake.ring();
  }

  // ───────────── stopping the controller ─────────────

  private setPowerEpoch(e: number): void {
    this.powerEpoch = e;
    Atomics.store(this.systemWords, this.index * SYSTEM_WORDS_PER_SYSTEM + SW_POWER_EPOCH, e);
  }

  /** A firmware exception (a broken invariant …) stops this controller loudly, like a power loss. */
  private fail(what: string, e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    const recentEvents = this.dumpRecent();
    this.stopController(`${what}: ${err.message}`);
    this.reports.push({ timeUs: this.nowUs(), error: err.message, recentEvents });
  }

  // ───────────── flight recorder, pause ─────────────

  /** The flight recorder's dump (the sim runtime's format): what this CPU handed its firmware last. */
  dumpRecent(): string {
    return this.recorder.dump(this.name, this.describeRecorded);
  }

  private readonly describeRecorded = (kind: number, a: number, b: number, c: number, d: number, ref: string | undefined): string => {
    switch (kind) {
      case REC_HOST_IO: return `io ${a} ${ref} ${b}:${c}+${d}`;
      case REC_FRAME: return `frame t${b} from ${this.inbound[d]?.peerName ?? `storage ${a}`} ${c}B`;
      case REC_TIMER: return `timer ${ref} ${a}`;
      case REC_COMMAND: return `command ${a} ${ref ?? '(no op)'}`;
      case REC_LINK: return `link ${this.outboundByPeer.get(a)?.linkName ?? `to storage ${a}`} ${b ? 'up' : 'down'}`;
      case REC_POWER_ON: return `power on (boot, power epoch ${a})`;
      case REC_POWER_OFF: return 'power off';
      case REC_PAUSE: return 'paused by the harness (debugger-style): the CPU holds between events';
      case REC_RESUME: return `resumed after ${(a / 1000).toFixed(1)} ms paused`;
      default: return `event kind ${kind}`;
    }
  };

  /**
   * While the harness has this system paused (ThreadsWorld.pauseSystem), the thread blocks here, between two
   * firmware events, as at a debugger breakpoint: no event, timer or management call is dispatched; frames and
   * host I/O wait in the rings with their due times and are dispatched late once resumed.
   */
  private holdIfPaused(): void {
    const w = this.systemWords, i = this.pauseIndex;
    if (Atomics.load(w, i) === PAUSE_RUNNING) return;
    this.flush(); // the harness sees everything that happened before the pause
    if (Atomics.compareExchange(w, i, PAUSE_REQUESTED, PAUSE_HELD) !== PAUSE_REQUESTED) return; // resumed before we got here
    Atomics.notify(w, i); // pauseSystem() waits for this
    const t0 = this.nowUs();
    this.recorder.record(REC_PAUSE, t0, 0, 0, 0, 0, undefined);
    while (Atomics.load(w, i) === PAUSE_HELD) Atomics.wait(w, i, PAUSE_HELD, 1000);
    const t1 = this.nowUs();
    this.stats[STAT.pauses]!++;
    this.stats[STAT.pausedUs]! += t1 - t0;
    this.dueCredit.held(t0, t1); // what waited through the pause is dispatched late, and its effects leave late too
    this.recorder.record(REC_RESUME, t1, t1 - t0, 0, 0, 0, undefined);
  }

  private stopController(reason: string | null): void {
    this.controller = null;
    Atomics.store(this.systemWords, this.index * SYSTEM_WORDS_PER_SYSTEM + SW_UP, 0);
    this.setPowerEpoch(this.powerEpoch + 1);
    this.cache.clear();
    this.frames.clear();
    this.timers.clear();
    if (this.copyDevice) { this.copyDevice.clear(); this.publishCopyDeviceStats(); }
    // Requests the stopped controller will never answer fail, as a host's timeout would.
    for (const io of this.outstanding.values()) {
      const hp = this.hostsByPort.get(io.port);
      if (hp) this.pushCompletion(hp, io.tag, STATUS_CODE.get('not-ready')!, undefined);
    }
    this.outstanding.clear();
    const error = `storage system ${this.name} lost power before answering`;
    for (const resolve of this.pendingCommands.values()) resolve({ ok: false, error: reason ? `${error} (controller stopped: ${reason})` : error });
    if (this.pendingCommands.size > 0) this.commandReplied = true;
    this.pendingCommands.clear();
  }

  // ───────────── the loop ─────────────

  private async loop(): Promise<void> {
    const t = this.tuning;
    let lastWorkUs = -Infinity, lastYieldUs = this.nowUs();
    // How late a final timed Atomics.wait returns (a high quantile, µs), and so how early before a deadline to wake.
    const oversleep = new OversleepEstimate(t.oversleepQuantile, t.spinUs, t.spinUs);
    let rung = true, yieldOwed = false;
    while (!this.stopped) {
      if (Atomics.load(this.systemWords, this.pauseIndex) !== PAUSE_RUNNING) this.holdIfPaused();
      const seen = this.wake.value();
      this.stats[STAT.loopTurns]!++;
      const didWork = this.turn();
      let now = this.nowUs();
      if (didWork) lastWorkUs = now;
      // The event loop (comlink's management messages, the promise reactions that post a command's reply) runs only
      // while we yield to it. A setImmediate round costs 5–10 µs (10–60 µs when the thread was idle for a while, much
      // more when 4 threads share 2 cores), so we yield only when it is needed: woken by the doorbell with nothing to do
      // (the harness rings it after a management call), a command answered, and at least every yieldEveryUs (also
      // while idle, between sleep slices) — but not in the last spin before a deadline, where it would make us late.
      if ((rung && !didWork) || this.commandReplied) yieldOwed = true;
      let deadline = this.nextDeadlineUs(now);
      // Closer than this, the deadline is spun for: a sleep would risk waking after it.
      // Only a CPU holding host I/O spins for a deadline (with due credit on): any other event's lateness is credited
      // to the frames it sends, whose flight absorbs it, while a host completion has only the host line to absorb it.
      const spinUs = this.outstanding.size > 0 || t.maxDueCreditUs === 0 ? oversleep.us + t.spinMarginUs : 0;
      const approaching = deadline > now && deadline - now <= spinUs;
      if ((yieldOwed || now - lastYieldUs >= t.yieldEveryUs) && (!approaching || now - lastYieldUs >= t.maxYieldDelayUs)) {
        this.commandReplied = false;
        yieldOwed = false;
        await immediate();
        if (this.stopped) break;
        now = lastYieldUs = this.nowUs();
        deadline = this.nextDeadlineUs(now);
      }
      rung = true;
      const waitUs = deadline - now;
      if (waitUs <= 0) continue;
      const retrying = this.inboundFull || this.backlogged > 0;
      if (!retrying && (waitUs <= spinUs || now - lastWorkUs < t.idleSpinUs)) {
        // Spin synchronously on the doorbell and the clock (0.3 µs a look): a near deadline, or more traffic expected.
        const spinEnd = waitUs <= spinUs ? deadline : Math.min(deadline - spinUs, lastWorkUs + t.idleSpinUs);
        if (this.spinUntil(seen, spinEnd)) continue;
        now = this.nowUs();
        if (deadline - now <= spinUs) { rung = false; continue; }
      }
      // Block on the doorbell (a futex: a producer's ring wakes us in ~10 µs, against ~30 µs for Atomics.waitAsync
      // and its event-loop task) until spinUs before the deadline, in slices of at most maxSleepSliceMs so the event
      // loop still gets a turn now and then (the harness also rings the doorbell after each management call). A long
      // sleep ends approachUs early and the rest is slept again: only the final, short one is learned from and trusted.
      this.stats[STAT.waits]!++;
      let sleepUs = retrying ? waitUs : Math.min(deadline - now - spinUs, t.maxSleepSliceMs * 1000);
      const final = !retrying && (t.approachUs <= 0 || sleepUs <= 2 * t.approachUs);
      if (!retrying && !final) sleepUs -= t.approachUs;
      // Peers need not ring for frames due after this sleep ends (wakeAtWord); awake again, every frame rings. Only a
      // final sleep says so: a long one oversleeps by hundreds of µs, and a frame due just after it would be that late.
      Atomics.store(this.systemWords, this.wakeAtIndex, this.tuning.skipDoorbells && final ? wakeAtWord(now + sleepUs) : 0);
      rung = this.wake.sleepSync(seen, sleepUs / 1000);
      Atomics.store(this.systemWords, this.wakeAtIndex, 0);
      if (!rung && final) oversleep.add(this.nowUs() - now - sleepUs);
    }
  }

  /**
   * Spins until the doorbell moves off `seen` (true) or the clock reaches untilUs (false). The clock is read once
   * every SPIN_LOOKS_PER_CLOCK_READ looks at the doorbell (0.15 µs in all): each read allocates (a BigInt), and a
   * clock read per look allocated ~50 KB per write at 100 km, so a worker scavenged every 90 ms — a 0.3–3 ms pause that
   * made a frame or a completion that late.
   */
  private spinUntil(seen: number, untilUs: number): boolean {
    for (;;) {
      for (let i = 0; i < SPIN_LOOKS_PER_CLOCK_READ; i++) if (this.wake.value() !== seen) return true;
      if (this.stopped) return true;
      if (this.nowUs() >= untilUs) return this.wake.value() !== seen;
    }
  }

  private nextDeadlineUs(now: number): number {
    if (this.drainCut) return now;
    if (this.inboundFull || this.backlogged > 0) return now + 50; // retry soon
    let d = Math.min(this.frames.topTimeUs(), this.timers.topTimeUs(), this.copyDevice ? this.copyDevice.nextDoneUs() : Infinity);
    for (const hp of this.hosts) {
      const h = this.hostHeadTimeUs(hp);
      if (h < d) d = h;
    }
    return d;
  }

  /** One loop turn: move ring records in, dispatch what is due (earliest first), push backlogs, ring doorbells once. */
  private turn(): boolean {
    let work = this.drainInbound();
    if (this.backlogged > 0) this.retryBacklogs();
    // With coalescing, the turn's events are one burst for the firmware: the synchronous copies (and
    // acknowledgements) they make leave as one bundle per partner when it ends, before the doorbells are rung.
    const c = this.tuning.coalesceFrames ? this.controller : null;
    c?.beginBurst();
    try {
      if (this.dispatchDue(c)) work = true;
    } finally {
      if (c) this.endBurst(c);
    }
    this.stats[STAT.frameBuffersAllocated] = this.frameBuffers.allocated;
    this.flush();
    return work;
  }

  private endBurst(c: Controller): void {
    try {
      c.endBurst();
    } catch (e) {
      this.fail('end of burst', e);
    }
  }

  /** Dispatches due events (earliest first) until none is due, or the turn's budget of events or time is spent. */
  private dispatchDue(c: Controller | null): boolean {
    const t = this.tuning;
    const start = this.nowUs();
    let budget = t.maxTurnEvents, work = false, burstSinceUs = start;
    while (budget-- > 0) {
      const now = this.nowUs();
      if (now - start > t.maxTurnUs) break;
      let source = SOURCE_NONE, best = Infinity, host: HostPort | null = null;
      const ft = this.frames.topTimeUs();
      if (ft < best) { best = ft; source = SOURCE_FRAME; }
      const tt = this.timers.topTimeUs();
      if (tt < best) { best = tt; source = SOURCE_TIMER; }
      for (const hp of this.hosts) {
        const ht = this.hostHeadTimeUs(hp);
        if (ht < best) { best = ht; source = SOURCE_HOST; host = hp; }
      }
      const ct = this.copyDevice ? this.copyDevice.nextDoneUs() : Infinity;
      if (ct < best) { best = ct; source = SOURCE_COPY_DEVICE; }
      if (best > now) break;
      // A long turn sends what its burst held so far, as it rings doorbells: nothing waits more than maxRingDelayUs.
      if (c && now - burstSinceUs > t.maxRingDelayUs) { this.endBurst(c); c.beginBurst(); burstSinceUs = now; }
      if (this.unrungSinceUs >= 0 && now - this.unrungSinceUs > t.maxRingDelayUs) this.ringPeers();
      if (work) this.dueCredit.busyUntil(now); // the previous event of this turn ended here
      work = true;
      if (source === SOURCE_FRAME) this.deliverFrame();
      else if (source === SOURCE_TIMER) this.fireTimer();
      else if (source === SOURCE_COPY_DEVICE) this.copyDeviceDone();
      else this.takeHostIo(host!);
      this.dueCredit.clear();
      if (this.frames.size === 0 && (this.inboundFull || this.drainCut)) break; // go refill from the rings
    }
    if (work) this.dueCredit.busyUntil(this.nowUs());
    return work;
  }

  private drainInbound(): boolean {
    let moved = false;
    this.inboundFull = false;
    this.drainCut = false;
    const limit = this.tuning.maxQueuedFrames, n = this.inbound.length;
    let bytesLeft = this.tuning.maxDrainBytesPerTurn;
    // Each turn starts at the next ring, so a busy one does not hold the others behind the per-turn budget.
    const first = n > 0 ? this.drainTurns++ % n : 0;
    for (let k = 0; k < n; k++) {
      const ii = (first + k) % n;
      const ib = this.inbound[ii]!;
      for (;;) {
        if (this.frames.size >= limit) { this.inboundFull = true; break; }
        if (bytesLeft <= 0) { this.drainCut = true; this.stats[STAT.drainCuts]!++; break; }
        const v = ib.ring.peek();
        if (!v) break;
        moved = true;
        bytesLeft -= v.length;
        const off = v.byteOffset, dv = ib.dv;
        const atUs = dv.getFloat64(off, true);
        const linkEpoch = dv.getInt32(off + 8, true), dirEpoch = dv.getInt32(off + 12, true);
        const power = dv.getInt32(off + 16, true);
        if (this.controller && power === this.powerEpoch && this.linkCarries(ib, linkEpoch, dirEpoch)) {
          const frame = this.frameBuffers.take(v.length - FRAME_RECORD_HEADER_BYTES);
          frame.set(v.subarray(FRAME_RECORD_HEADER_BYTES));
          // A line frame's destination address rides in the sender's lane (storage ids fit 16 bits there), for the port check at delivery.
          const dest = ib.overLine ? dv.getUint16(off + RECORD_ROUTING_HEADER_OFFSET, true) : 0;
          this.frames.push(atUs, ib.peerStorageId + dest * 65536, linkEpoch, dirEpoch, ii, frame);
        } else {
          this.stats[STAT.framesLost]!++; // cut link, or sent to a powered-off controller
        }
        ib.ring.pop();
      }
    }
    return moved;
  }

  /** Accounts for how late an event is dispatched; returns the time now. */
  private late(sumIndex: number, dueUs: number): number {
    const now = this.nowUs();
    const late = now - dueUs;
    this.stats[sumIndex]! += late;
    if (late > this.stats[STAT.lateUsMax]!) this.stats[STAT.lateUsMax] = late;
    if (sumIndex === STAT.frameLateUsSum && late > this.stats[STAT.frameLateUsMax]!) this.stats[STAT.frameLateUsMax] = late;
    this.stats[STAT.dueCreditUsSum]! += this.dueCredit.dispatch(now, dueUs);
    return now;
  }

  /** The time an effect of the event being dispatched is stamped with: now, less the lateness credited to it. */
  private effectNowUs(): number {
    return this.dueCredit.stamp(this.nowUs());
  }

  /** True while the link and this direction's fibre are up and have not been cut since the frame was sent. */
  private linkCarries(ib: Inbound, linkEpoch: number, dirEpoch: number): boolean {
    const w = this.linkWords;
    return Atomics.load(w, ib.lw + LW_UP) === 1 && Atomics.load(w, ib.lw + LW_EPOCH) === linkEpoch
      && Atomics.load(w, ib.dirUp) === 1 && Atomics.load(w, ib.dirEpoch) === dirEpoch;
  }

  private deliverFrame(): void {
    const f = this.frames;
    f.pop();
    const now = this.late(STAT.frameLateUsSum, f.outTimeUs);
    const ib = this.inbound[f.outD]!, frame = f.outRef!;
    const dest = ib.overLine ? Math.floor(f.outA / 65536) : 0, from = f.outA - dest * 65536;
    f.outRef = undefined;
    // Frames in flight when the link (or their fibre) was cut are lost (as on sim).
    if (!this.linkCarries(ib, f.outB, f.outC)) {
      this.stats[STAT.framesLost]!++;
      this.frameBuffers.give(frame);
      return;
    }
    const c = this.controller;
    if (!c) { this.frameBuffers.give(frame); return; }
    // The receiving port of a line circuit hands the controller only frames addressed to it.
    if (ib.overLine && !this.line!.receive(this.index, this.storageId, dest, frame.length)) { this.frameBuffers.give(frame); return; }
    this.stats[STAT.framesIn]!++;
    this.stats[STAT.eventsDispatched]!++;
    this.recorder.record(REC_FRAME, now, from, frame[0]!, frame.length, f.outD, undefined);
    try {
      c.onFrame(from, frame);
    } catch (e) {
      this.fail('frame', e);
    }
    this.frameBuffers.give(frame); // the firmware is done with it (see FrameBufferPool)
  }

  private fireTimer(): void {
    const t = this.timers;
    t.pop();
    const now = this.late(STAT.timerLateUsSum, t.outTimeUs);
    const kind = t.outRef!, arg = t.outA;
    t.outRef = undefined;
    const c = this.controller;
    if (!c) return;
    this.stats[STAT.timersFired]!++;
    this.stats[STAT.eventsDispatched]!++;
    this.recorder.record(REC_TIMER, now, arg, 0, 0, 0, kind);
    try {
      c.onTimer(kind, arg);
    } catch (e) {
      this.fail(`timer ${kind} ${arg}`, e);
    }
  }

  /** Due time of the host port's oldest submission (Infinity when none); stays peeked until taken. */
  private hostHeadTimeUs(hp: HostPort): number {
    if (!hp.headView) {
      const v = hp.submission.peek();
      if (!v) return Infinity;
      hp.headView = v;
      hp.headTimeUs = hp.subDv.getFloat64(v.byteOffset, true);
    }
    // Powered off: answer at once ('not-ready' after the line latency, as on sim).
    return this.controller ? hp.headTimeUs : -Infinity;
  }

  private takeHostIo(hp: HostPort): void {
    const v = hp.headView!;
    hp.headView = null;
    const now = this.late(STAT.hostLateUsSum, hp.headTimeUs);
    const dv = hp.subDv, off = v.byteOffset;
    const tag = dv.getUint32(off + 8, true);
    const opBits = dv.getUint8(off + 12);
    const lvol = dv.getFloat64(off + 16, true), lba = dv.getFloat64(off + 24, true), blocks = dv.getFloat64(off + 32, true);
    this.stats[STAT.hostIos]!++;
    const c = this.controller;
    if (!c) {
      hp.submission.pop();
      this.pushCompletion(hp, tag, STATUS_CODE.get('not-ready')!, undefined);
      return;
    }
    // Write data is handed to the firmware in place, as a view of the submission record (no 4 KiB allocation per
    // write): the record is freed only after onHostIo returns, and the firmware copies what it keeps (disk, cache
    // slot, journal). The view is then taken back, so nothing can read the ring's reused bytes through it later.
    const data = opBits & SUB_HAS_DATA ? v.subarray(SUBMISSION_HEADER_BYTES) : undefined;
    const io: HostIo = { tag, op: opBits & SUB_OP_WRITE ? 'write' : 'read', lvol, lba, blocks, data, port: hp.port };
    this.outstanding.set(tag, io);
    this.stats[STAT.eventsDispatched]!++;
    this.recorder.record(REC_HOST_IO, now, tag, lvol, lba, blocks, io.op);
    try {
      c.onHostIo(io);
    } catch (e) {
      this.fail(`io ${tag} ${io.op} ${lvol}:${lba}+${blocks}`, e);
    } finally {
      io.data = undefined;
      hp.submission.pop();
    }
  }

  // ───────────── rings out ─────────────

  private enqueueFrame(ob: Outbound, atUs: number, linkEpoch: number, dirEpoch: number, peerPower: number, frame: Uint8Array): void {
    if (ob.backlog.length === ob.backlogHead && this.pushFrame(ob, atUs, linkEpoch, dirEpoch, peerPower, frame)) return;
    this.stats[STAT.ringFullRetries]!++;
    ob.backlog.push({ atUs, linkEpoch, dirEpoch, peerPower, frame: this.frameBuffers.copyOf(frame) }); // the firmware lent it for the send only
    this.backlogged++;
  }

  private pushFrame(ob: Outbound, atUs: number, linkEpoch: number, dirEpoch: number, peerPower: number, frame: Uint8Array): boolean {
    const h = ob.headerView;
    h.setFloat64(0, atUs, true);
    h.setInt32(8, linkEpoch, true);
    h.setInt32(12, dirEpoch, true);
    h.setInt32(16, peerPower, true);
    if (ob.overLine) writeRoutingHeader(h, RECORD_ROUTING_HEADER_OFFSET, ob.peerStorageId, this.storageId, frame.length);
    if (!ob.port.push(ob.header, frame)) return false;
    if (atUs < ob.unrungDueUs) ob.unrungDueUs = atUs;
    if (this.unrungSinceUs < 0) this.unrungSinceUs = this.nowUs();
    if (this.tuning.maxRingDelayUs <= 0) this.ringPeers();
    return true;
  }

  private pushCompletion(hp: HostPort, tag: number, code: number, data: Uint8Array | undefined): void {
    const visibleAtUs = this.effectNowUs() + this.hostLinkUs;
    this.stats[STAT.hostCompletions]!++;
    if (hp.backlog.length === hp.backlogHead && this.writeCompletion(hp, visibleAtUs, tag, code, data)) return;
    this.stats[STAT.ringFullRetries]!++;
    hp.backlog.push({ visibleAtUs, tag, code, data: data ? data.slice() : undefined }); // read data: a copy, the disk may change
    this.backlogged++;
  }

  private writeCompletion(hp: HostPort, visibleAtUs: number, tag: number, code: number, data: Uint8Array | undefined): boolean {
    const h = hp.headerView;
    h.setFloat64(0, visibleAtUs, true);
    h.setUint32(8, tag, true);
    h.setUint8(12, code);
    h.setFloat64(16, this.nowUs(), true); // when the host can first see it (HostIoResult.completedAtUs)
    if (!hp.completion.push(hp.header, data)) return false;
    this.mainUnrung = true;
    if (this.unrungSinceUs < 0) this.unrungSinceUs = this.nowUs();
    if (this.tuning.maxRingDelayUs <= 0) this.ringPeers();
    return true;
  }

  private retryBacklogs(): void {
    for (const ob of this.outbound) {
      while (ob.backlogHead < ob.backlog.length) {
        const e = ob.backlog[ob.backlogHead]!;
        if (!this.pushFrame(ob, e.atUs, e.linkEpoch, e.dirEpoch, e.peerPower, e.frame)) break;
        this.frameBuffers.give(e.frame);
        ob.backlog[ob.backlogHead++] = undefined as never;
        this.backlogged--;
      }
      if (ob.backlogHead === ob.backlog.length) { ob.backlog.length = 0; ob.backlogHead = 0; }
    }
    for (const hp of this.hosts) {
      while (hp.backlogHead < hp.backlog.length) {
        const e = hp.backlog[hp.backlogHead]!;
        if (!this.writeCompletion(hp, e.visibleAtUs, e.tag, e.code, e.data)) break;
        hp.backlog[hp.backlogHead++] = undefined as never;
        this.backlogged--;
      }
      if (hp.backlogHead === hp.backlog.length) { hp.backlog.length = 0; hp.backlogHead = 0; }
    }
  }

  /**
   * Rings, once each, the doorbells of the peers (and the main thread) we pushed records to since the last time.
   * Records are published at once (a consumer that is awake sees them), but a sleeping consumer is woken only at the
   * end of a turn (or maxRingDelayUs into a long one): it then takes the whole batch in one wake-up instead of being
   * woken by the first record — which, with more threads than cores, preempts us — and again for each later one.
   */
  private ringPeers(): void {
    if (this.unrungSinceUs < 0) return;
    this.unrungSinceUs = -1;
    for (const ob of this.outbound) {
      const dueUs = ob.unrungDueUs;
      if (dueUs === Infinity) continue;
      ob.unrungDueUs = Infinity;
      // Read after the records were published: a peer that published its wake-up time before that drains them when it
      // wakes; one that publishes it after has not yet read its bell, which the ring (if needed) has then changed.
      const wakeAt = Atomics.load(this.systemWords, ob.peerIndex * SYSTEM_WORDS_PER_SYSTEM + SW_WAKE_AT);
      if (wakeAt !== 0 && dueUs >= wakeAt * WAKE_AT_UNIT_US) { this.stats[STAT.doorbellsSkipped]!++; continue; }
      ob.peerWake.ring();
    }
    if (this.mainUnrung) { this.mainUnrung = false; this.mainWake.ring(); }
  }

  /** Rings the doorbells owed (ringPeers) and posts the reports gathered. */
  private flush(): void {
    this.ringPeers();
    if (this.reports.length > 0) {
      const batch = this.reports;
      this.reports = [];
      this.report(batch);
    }
  }
}

