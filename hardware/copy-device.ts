// Copy device (¶0168, claim 13): a dedicated engine of a storage system that does its synchronous and
// asynchronous copying instead of the controller's CPU. The frames that carry copy data (synchronous copies,
// formation copies, journal batches) go through the device's bounded FIFO queue and are serialised at its
// throughput, plus a set-up time per frame, before they enter the link; control frames, keepalives and
// acknowledgements bypass it. The firmware does not know the device exists: it still calls `send`.
//
// Pure arithmetic on microseconds, no timers, no threads (like link-model.ts): the sim runtime schedules an event
// at the head frame's done time, the threads runtime's CPU loop waits for it in real time. One FIFO for every
// destination, so frames keep their order per destination. A full queue back-pressures as a full link ring does:
// the frame waits in a backlog (counted in `queueFullWaits`) and enters the queue, in order, when a slot frees.

import { FrameType } from '../firmware/frames.ts';

export interface CopyDeviceConfig {
  /** Serialisation rate of the device (1 MB/s = 1 byte/µs). */
  throughputMBps: number;
  /** Frames the device holds at once (in service and waiting); beyond it frames wait in the backlog. */
  queueDepth: number;
  /** Fixed time per frame (descriptor set-up, DMA start), before its bytes are serialised. */
  setupUs?: number;
}

/**
 * Defaults of `copyDevices: true` / `--copy-devices`: as fast as a default link (1000 MB/s), so a device never
 * slows the scenarios down on its own; 64 frames deep, which holds a whole formation-copy window (16 tracks) of
 * every pair a system sources at once; 2 µs of set-up per frame.
 */
export const DEFAULT_COPY_DEVICE: Required<CopyDeviceConfig> = { throughputMBps: 1000, queueDepth: 64, setupUs: 2 };

/** Frame types the device carries: the ones with copy data. Everything else bypasses it. */
export const COPY_FRAME_TYPES: ReadonlySet<number> = new Set([FrameType.SyncWrite, FrameType.FormationCopy, FrameType.JournalBatch]);

/** A bundle (byte 1: the type of the frames inside) is copy data when what it bundles is. */
export function isCopyFrame(frame: Uint8Array): boolean {
  return COPY_FRAME_TYPES.has(frame[0] === FrameType.Bundle ? frame[1]! : frame[0]!);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Checks a configuration, naming `where` (e.g. "storage system P: copyDevice") and the bad field; fills the defaults. */
export function validateCopyDevice(c: unknown, where: string): Required<CopyDeviceConfig> {
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${where} must be an object {throughputMBps, queueDepth, setupUs?}, got ${JSON.stringify(c)}`);
  const x = c as Record<string, unknown>;
  for (const k of Object.keys(x)) {
    if (!['throughputMBps', 'queueDepth', 'setupUs'].includes(k)) throw new Error(`${where}: unknown field '${k}' (has throughputMBps, queueDepth, setupUs)`);
  }
  if (!finite(x.throughputMBps) || x.throughputMBps <= 0) throw new Error(`${where}.throughputMBps must be a number > 0, got ${String(x.throughputMBps)}`);
  if (!Number.isInteger(x.queueDepth) || (x.queueDepth as number) < 1) throw new Error(`${where}.queueDepth must be a whole number ≥ 1, got ${String(x.queueDepth)}`);
  if (x.setupUs !== undefined && (!finite(x.setupUs) || x.setupUs < 0)) throw new Error(`${where}.setupUs must be a number ≥ 0, got ${String(x.setupUs)}`);
  return { throughputMBps: x.throughputMBps, queueDepth: x.queueDepth as number, setupUs: (x.setupUs as number | undefined) ?? DEFAULT_COPY_DEVICE.setupUs };
}

/** Counters of one device (the harness reads them through `world.copyDeviceStats(system)`). */
export interface CopyDeviceStats {
  /** Frames and bytes the device finished serialising (handed on to a link). */
  frames: number;
  bytes: number;
  /** Frames that found the queue full and waited in the backlog. */
  queueFullWaits: number;
  /** Time the device spent serialising (set-up + bytes / throughput). */
  busyUs: number;
  /** Most frames held in the queue at once (≤ queueDepth). */
  maxQueue: number;
  /** Frames in the queue and backlog right now. */
  queued: number;
  /** Frames lost in the device: its system lost power while they were queued (the cache is lost too). */
  framesLost: number;
}

export const COPY_DEVICE_STAT_KEYS = ['frames', 'bytes', 'queueFullWaits', 'busyUs', 'maxQueue', 'queued', 'framesLost'] as const;

/** The device of one storage system. `T` is what the runtime needs to send a frame on once it is done. */
export class CopyDevice<T> {
  readonly config: Required<CopyDeviceConfig>;
  /** Frames in the device, oldest first, with the time each is done (non-decreasing). */
  private readonly queue: Array<{ doneUs: number; item: T }> = [];
  private queueHead = 0;
  /** Frames that found the queue full, oldest first. */
  private readonly backlog: Array<{ bytes: number; item: T }> = [];
  private backlogHead = 0;
  /** When the device finishes the last frame it accepted. */
  private busyUntilUs = 0;
  readonly stats: CopyDeviceStats = { frames: 0, bytes: 0, queueFullWaits: 0, busyUs: 0, maxQueue: 0, queued: 0, framesLost: 0 };
  /** Bytes of each queued frame, parallel to `queue` (for the done counters). */
  private readonly queueBytes: number[] = [];

  constructor(config: CopyDeviceConfig, where = 'copyDevice') {
    this.config = validateCopyDevice(config, where);
  }

  private get inQueue(): number { return this.queue.length - this.queueHead; }

  /** Hands a frame of `sizeBytes` to the device at `nowUs`. Returns when it will be done, or -1 if it waits in the backlog. */
  offer(nowUs: number, sizeBytes: number, item: T): number {
    this.stats.queued++;
    if (this.backlogHead === this.backlog.length && this.inQueue < this.config.queueDepth) return this.admit(nowUs, sizeBytes, item);
    this.stats.queueFullWaits++;
    this.backlog.push({ bytes: sizeBytes, item });
    return -1;
  }

  private admit(nowUs: number, sizeBytes: number, item: T): number {
    const serviceUs = this.config.setupUs + sizeBytes / this.config.throughputMBps;
    const doneUs = Math.max(nowUs, this.busyUntilUs) + serviceUs;
    this.busyUntilUs = doneUs;
    this.stats.busyUs += serviceUs;
    this.queue.push({ doneUs, item });
    this.queueBytes.push(sizeBytes);
    if (this.inQueue > this.stats.maxQueue) this.stats.maxQueue = this.inQueue;
    return doneUs;
  }

  /** Done time of the oldest frame in the device (Infinity when empty). */
  nextDoneUs(): number {
    return this.queueHead < this.queue.length ? this.queue[this.queueHead]!.doneUs : Infinity;
  }

  /**
   * Takes the oldest frame if it is done by `nowUs` (undefined otherwise), and lets the backlog's oldest frame into
   * the freed slot. `doneUs` is when the device finished it: the time it enters the link.
   */
  takeDone(nowUs: number): { item: T; doneUs: number } | undefined {
    if (this.queueHead >= this.queue.length || this.queue[this.queueHead]!.doneUs > nowUs) return undefined;
    const e = this.queue[this.queueHead]!;
    this.stats.frames++;
    this.stats.bytes += this.queueBytes[this.queueHead]!;
    this.stats.queued--;
    this.queue[this.queueHead] = undefined as never;
    this.queueHead++;
    if (this.queueHead === this.queue.length) { this.queue.length = 0; this.queueBytes.length = 0; this.queueHead = 0; }
    if (this.backlogHead < this.backlog.length) {
      const b = this.backlog[this.backlogHead]!;
      this.backlog[this.backlogHead++] = undefined as never;
      if (this.backlogHead === this.backlog.length) { this.backlog.length = 0; this.backlogHead = 0; }
      this.admit(nowUs, b.bytes, b.item);
    }
    return { item: e.item, doneUs: e.doneUs };
  }

  /** Power loss: whatever the device held is lost (like the cache); the frames' senders' timeouts will tell. */
  clear(): void {
    this.stats.framesLost += this.stats.queued;
    this.stats.queued = 0;
    this.queue.length = 0;
    this.queueBytes.length = 0;
    this.queueHead = 0;
    this.backlog.length = 0;
    this.backlogHead = 0;
    this.busyUntilUs = 0;
  }

  /**
   * Everything that changes as the device runs (debugger digests and snapshots): the frames it holds, in order,
   * each described by `describe` (the runtime knows what an item is), with the done times and the counters.
   */
  dynamicState<D>(describe: (item: T) => D): CopyDeviceState<D> {
    return {
      busyUntilUs: this.busyUntilUs,
      queue: this.queue.slice(this.queueHead).map((e, i) => ({ doneUs: e.doneUs, bytes: this.queueBytes[this.queueHead + i]!, item: describe(e.item) })),
      backlog: this.backlog.slice(this.backlogHead).map((e) => ({ bytes: e.bytes, item: describe(e.item) })),
      stats: { ...this.stats },
    };
  }
}

/** A device's state as data (CopyDevice.dynamicState). */
export interface CopyDeviceState<D> {
  busyUntilUs: number;
  queue: Array<{ doneUs: number; bytes: number; item: D }>;
  backlog: Array<{ bytes: number; item: D }>;
  stats: CopyDeviceStats;
}
