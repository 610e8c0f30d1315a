// The firmware's only window on the world. Both runtimes (threads, sim) implement `Hardware`;
// the firmware cannot tell them apart. Nothing here may name a thread, a timer API or the harness.

import type { Command, CommandReply } from './commands.ts';
import type { FirmwareOptions, FirmwareTiming } from './constants.ts';

/** Disk array 230x as the firmware sees it: LVOLs addressed in 4 KiB blocks. */
export interface DiskArrayPort {
  /** Number of blocks of an LVOL; throws AddressError for an unknown LVOL. */
  lvolBlocks(lvol: number): number;
  /** A view of `blocks` blocks at `lba` (valid until the next write of those blocks); throws AddressError when out of range. */
  read(lvol: number, lba: number, blocks: number): Uint8Array;
  /** Stores whole blocks at `lba`; throws AddressError when out of range or not block-aligned in size. */
  write(lvol: number, lba: number, data: Uint8Array): void;
  /**
   * Rewrites `bytes` at `offsetBytes` inside block `lba` and leaves the rest of the block as it is: the
   * read-modify-write the controller's cache does for a small record (a journal descriptor), without copying the
   * whole block out and back. Throws AddressError when the bytes do not fit inside the one block.
   */
  writeWithinBlock(lvol: number, lba: number, offsetBytes: number, bytes: Uint8Array): void;
  /** False while the drives behind this LVOL have failed (every read/write then throws DiskError). */
  lvolHealthy(lvol: number): boolean;
}

/** Cache memory: write data staged while a copy is in flight. Slots are allocated up front. */
export interface CacheMemoryPort {
  readonly slotBytes: number;
  readonly slotCount: number;
  /** A free slot index, or -1 when the cache is exhausted. */
  allocate(): number;
  release(slot: number): void;
  /** The slot's bytes (a view of `length` bytes). */
  slot(slot: number, length: number): Uint8Array;
}

export type IoStatus =
  | 'ok'
  | 'out-of-range'      // LBA or length outside the LVOL, or not whole blocks
  | 'invalid-request'   // neither a read nor a write
  | 'unknown-lvol'
  | 'write-protected'   // destination volume of a pair that is copying (S-VOL is read-only)
  | 'fenced'            // fence level data: the synchronous copy cannot be made
  | 'busy'              // cache exhausted; the host retries
  | 'medium-error'      // drive failure
  | 'not-ready';        // controller is down

export interface HostIo {
  tag: number;
  op: 'read' | 'write';
  lvol: number;
  lba: number;
  blocks: number;
  /** Write data (blocks × 4 KiB bytes). */
  data?: Uint8Array;
  /** Host port it arrived on (host P = 0, host R = 1 …); reported back with the completion. */
  port: number;
}

export type TimerKind = 'journal-ship' | 'tick' | 'command-timeout' | 'snapshot';

/** Something the firmware did that the outside world may want to see (timeline, trace, checkers). */
export type FirmwareEvent =
  | { type: 'pair-state'; pairId: number; from: string; to: string; cause: string; step?: string }
  | { type: 'formation-copy-done'; pairId: number; kind: string; tracksCopied: number; step?: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; step?: string };

export interface Hardware {
  readonly storageId: number;
  readonly disk: DiskArrayPort;
  readonly cache: CacheMemoryPort;
  /** Memory 220: definition information, journal metadata and bitmaps, as 32-bit words. Survives a controller restart. */
  readonly controlMemory: Int32Array;
  readonly timing: FirmwareTiming;
  /** Test-only build flags (planted bugs); absent in normal runs. */
  readonly options?: FirmwareOptions;
  /** The runtime's clock, microseconds since the world started. */
  nowUs(): number;
  /** One-shot timer; the firmware receives onTimer(kind, arg) no earlier than delayUs from now. */
  setTimer(delayUs: number, kind: TimerKind, arg: number): void;
  /**
   * Hands a frame to the port that reaches `destStorageId`; false when no link reaches it or the link is cut.
   * The frame is lent for the call only (the firmware encodes every frame into one reused buffer): the hardware
   * copies whatever it keeps (onto a link, into a queue) before returning.
   */
  send(destStorageId: number, frame: Uint8Array): boolean;
  /** Completes a host I/O (read data for reads). */
  completeHostIo(io: HostIo, status: IoStatus, data?: Uint8Array): void;
  /** Answers a management command (possibly long after it arrived). */
  replyCommand(requestId: number, reply: CommandReply): void;
  /** Reports an event (state change, log line) to the runtime's trace. */
  emit(event: FirmwareEvent): void;
}

/** What the runtime's CPU loop feeds the firmware, one at a time. */
export interface FirmwareEntryPoints {
  boot(): void;
  /**
   * `io.data` (a write's data) and `frame` are lent for the duration of the call only: the threads runtime hands
   * over views into its rings and recycled buffers, and reuses them once the call returns. Whatever the firmware
   * keeps of them (a cache slot, the journal volume, a pending entry), it copies during the call.
   */
  onHostIo(io: HostIo): void;
  onFrame(fromStorageId: number, frame: Uint8Array): void;
  onTimer(kind: TimerKind, arg: number): void;
  onCommand(requestId: number, command: Command): void;
  onLinkState(remoteStorageId: number, up: boolean): void;
  /**
   * Brackets a run of entry-point calls the hardware makes back to back (a CPU loop's turn): frames that may be
   * bundled (synchronous copies, their acknowledgements) are held until the run ends and go out as one bundle per
   * destination. Optional for the hardware: without it, each entry point sends what it held as it returns.
   */
  beginBurst(): void;
  endBurst(): void;
}
