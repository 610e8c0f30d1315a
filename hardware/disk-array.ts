// Disk array: every LVOL lives in ONE SharedArrayBuffer so a controller worker and the harness's
// checkers see the same bytes without copying; drive health is a separate Int32 word per LVOL so
// the harness can fail a drive from another thread (Atomics) while the firmware is running.

import { BLOCK_SIZE_BYTES, MAX_LVOLS } from '../firmware/constants.ts';
import type { DiskArrayPort } from '../firmware/hardware-interface.ts';
import { AddressError, DiskError } from './errors.ts';

export interface LvolSpec { name: string; kind: 'data' | 'journal'; sizeBytes: number }
export type LvolLayout = LvolSpec & { offsetBytes: number };
export interface LvolInfo extends LvolLayout { blocks: number }

/** Plain structured-cloneable data: post it to a worker and `attach` there to share the memory. */
export interface DiskArrayState {
  data: SharedArrayBuffer;
  health: SharedArrayBuffer;
  lvols: LvolLayout[];
}

const HEALTHY = 0;
const FAILED = 1;

function checkSpecs(specs: readonly LvolSpec[]): void {
  if (specs.length < 1 || specs.length > MAX_LVOLS) throw new Error(`disk array needs 1..${MAX_LVOLS} LVOLs, got ${specs.length}`);
  specs.forEach((s, i) => {
    if (!Number.isSafeInteger(s.sizeBytes) || s.sizeBytes <= 0 || s.sizeBytes % BLOCK_SIZE_BYTES !== 0)
      throw new Error(`LVOL ${i} (${s.name}): sizeBytes ${s.sizeBytes} is not a positive multiple of ${BLOCK_SIZE_BYTES}`);
    if (s.kind !== 'data' && s.kind !== 'journal') throw new Error(`LVOL ${i} (${s.name}): kind must be 'data' or 'journal'`);
  });
}

export class DiskArray implements DiskArrayPort {
  private readonly layout: LvolLayout[];
  private readonly health: Int32Array;
  /** One view per LVOL, built once, so read() only creates the returned subarray. */
  private readonly views: Uint8Array[];
  private readonly blocks: number[];
  private readonly writesBase: number;
  /** Aligned staging for unaligned writes (see write). */
  private bounce = new Uint8Array(0);

  private constructor(private readonly data: SharedArrayBuffer, private readonly healthSab: SharedArrayBuffer, lvols: LvolLayout[]) {
    this.layout = lvols.map((l) => ({ ...l }));
    this.health = new Int32Array(healthSab);
    // Word lvol: drive health; word lvols.length + lvol: writes completed (like a drive's write counter).
    if (this.health.length < 2 * lvols.length) throw new Error(`health buffer has ${this.health.length} words for ${lvols.length} LVOLs (needs 2 per LVOL)`);
    this.writesBase = lvols.length;
    this.views = this.layout.map((l) => {
      if (l.offsetBytes + l.sizeBytes > data.byteLength) throw new Error(`LVOL ${l.name} ends at ${l.offsetBytes + l.sizeBytes}, beyond the ${data.byteLength}-byte data buffer`);
      return new Uint8Array(data, l.offsetBytes, l.sizeBytes);
    });
    this.blocks = this.layout.map((l) => l.sizeBytes / BLOCK_SIZE_BYTES);
  }

  static bytesNeeded(specs: LvolSpec[]): number {
    checkSpecs(specs);
    return specs.reduce((sum, s) => sum + s.sizeBytes, 0);
  }

  static create(specs: LvolSpec[]): DiskArray {
    const data = new SharedArrayBuffer(DiskArray.bytesNeeded(specs));
    const health = new SharedArrayBuffer(2 * specs.length * Int32Array.BYTES_PER_ELEMENT);
    let offsetBytes = 0;
    const lvols = specs.map((s) => {
      const l = { name: s.name, kind: s.kind, sizeBytes: s.sizeBytes, offsetBytes };
      offsetBytes += s.sizeBytes;
      return l;
    });
    return new DiskArray(data, health, lvols);
  }

  static attach(state: DiskArrayState): DiskArray {
    checkSpecs(state.lvols);
    return new DiskArray(state.data, state.health, state.lvols);
  }

  get state(): DiskArrayState {
    return { data: this.data, health: this.healthSab, lvols: this.layout.map((l) => ({ ...l })) };
  }

  get lvols(): readonly LvolLayout[] {
    return this.layout;
  }

  lvolInfo(lvol: number): LvolInfo {
    this.checkLvol(lvol);
    return { ...this.layout[lvol]!, blocks: this.blocks[lvol]! };
  }

  lvolBlocks(lvol: number): number {
    this.checkLvol(lvol);
    return this.blocks[lvol]!;
  }

  read(lvol: number, lba: number, blocks: number): Uint8Array {
    this.checkRange(lvol, lba, blocks);
    this.checkHealthy(lvol);
    return this.views[lvol]!.subarray(lba * BLOCK_SIZE_BYTES, (lba + blocks) * BLOCK_SIZE_BYTES);
  }

  write(lvol: number, lba: number, data: Uint8Array): void {
    this.checkLvol(lvol);
    if (data.length === 0 || data.length % BLOCK_SIZE_BYTES !== 0)
      throw new AddressError(`LVOL ${lvol}: write of ${data.length} bytes is not a positive whole number of ${BLOCK_SIZE_BYTES}-byte blocks`);
    this.checkRange(lvol, lba, data.length / BLOCK_SIZE_BYTES);
    this.checkHealthy(lvol);
    const view = this.views[lvol]!, at = lba * BLOCK_SIZE_BYTES;
    // Into shared memory V8 copies with a relaxed memmove: word by word when source and destination are equally
    // aligned, byte by byte (5× slower) otherwise. Unaligned private data (e.g. a journal entry unpacked from a
    // batch) goes through an aligned bounce buffer first: a plain memcpy, then the word-by-word copy.
    if (((data.byteOffset - view.byteOffset - at) & 7) !== 0 && !(data.buffer instanceof SharedArrayBuffer)) {
      if (this.bounce.length < data.length) this.bounce = new Uint8Array(data.length);
      const b = this.bounce.subarray(0, data.length);
      b.set(data);
      view.set(b, at);
    } else {
      view.set(data, at);
    }
    Atomics.add(this.health, this.writesBase + lvol, 1);
  }

  writeWithinBlock(lvol: number, lba: number, offsetBytes: number, bytes: Uint8Array): void {
    this.checkRange(lvol, lba, 1);
    if (!Number.isInteger(offsetBytes) || offsetBytes < 0 || offsetBytes + bytes.length > BLOCK_SIZE_BYTES || bytes.length === 0)
      throw new AddressError(`LVOL ${lvol}: ${bytes.length} bytes at offset ${offsetBytes} do not fit inside block ${lba} (${BLOCK_SIZE_BYTES} bytes)`);
    this.checkHealthy(lvol);
    this.views[lvol]!.set(bytes, lba * BLOCK_SIZE_BYTES + offsetBytes);
    Atomics.add(this.health, this.writesBase + lvol, 1);
  }

  /**
   * Commits every page of the array's memory now (one write per 4 KiB page, of the byte already there). The OS
   * commits a SharedArrayBuffer's pages on their first write, and on a VM that costs about 12 µs a page: a
   * benchmark would otherwise measure the first pass over each volume and journal, which real drives do not have.
   * Only before the controller runs: it rewrites bytes without Atomics.
   */
  prefault(): void {
    prefaultPages(this.data);
  }

  /** Writes completed to an LVOL since the array was built (wraps at 2^32): a checker skips an unchanged volume. */
  lvolWriteCount(lvol: number): number {
    this.checkLvol(lvol);
    return Atomics.load(this.health, this.writesBase + lvol) >>> 0;
  }

  lvolHealthy(lvol: number): boolean {
    this.checkLvol(lvol);
    return Atomics.load(this.health, lvol) === HEALTHY;
  }

  failDrive(lvol: number): void {
    this.checkLvol(lvol);
    Atomics.store(this.health, lvol, FAILED);
  }

  repairDrive(lvol: number): void {
    this.checkLvol(lvol);
    Atomics.store(this.health, lvol, HEALTHY);
  }

  /** The whole LVOL as a view (for checkers); ignores drive health on purpose. */
  lvolBytes(lvol: number): Uint8Array {
    this.checkLvol(lvol);
    return this.views[lvol]!;
  }

  private checkLvol(lvol: number): void {
    if (!Number.isInteger(lvol) || lvol < 0 || lvol >= this.layout.length)
      throw new AddressError(`unknown LVOL ${lvol} (array has LVOLs 0..${this.layout.length - 1})`);
  }

  private checkRange(lvol: number, lba: number, blocks: number): void {
    this.checkLvol(lvol);
    const n = this.blocks[lvol]!;
    if (!Number.isInteger(lba) || lba < 0) throw new AddressError(`LVOL ${lvol}: LBA ${lba} is not a non-negative integer`);
    if (!Number.isInteger(blocks) || blocks < 1) throw new AddressError(`LVOL ${lvol}: block count ${blocks} is not a positive integer`);
    if (lba + blocks > n) throw new AddressError(`LVOL ${lvol}: blocks ${lba}..${lba + blocks - 1} outside 0..${n - 1}`);
  }

  private checkHealthy(lvol: number): void {
    if (Atomics.load(this.health, lvol) !== HEALTHY) throw new DiskError(`LVOL ${lvol} (${this.layout[lvol]!.name}): drives failed`, lvol);
  }
}

/**
 * Commits every 4 KiB page of a SharedArrayBuffer now, by rewriting one byte already there per page (the OS commits a
 * page on its first write, about 12 µs a page on this VM). Only while no other thread writes the buffer.
 */
export function prefaultPages(sab: SharedArrayBuffer): void {
  const all = new Uint8Array(sab);
  for (let i = 0; i < all.length; i += 4096) all[i] = all[i]!;
}
