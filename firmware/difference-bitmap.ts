// Difference bitmap: one bit per track of a data volume (TRACK_SIZE_BYTES), kept in control memory.
// A set bit means "this track may differ between source and destination and must be copied".

import { BLOCKS_PER_TRACK } from './constants.ts';

export class DifferenceBitmap {
  constructor(readonly words: Int32Array, readonly tracks: number) {
    if (tracks > words.length * 32) throw new Error(`bitmap of ${words.length} words cannot cover ${tracks} tracks`);
  }

  static tracksFor(blocks: number): number {
    return Math.ceil(blocks / BLOCKS_PER_TRACK);
  }

  /** Marks the tracks touched by `blocks` blocks at `lba`; returns how many bits were newly set. */
  markBlocks(lba: number, blocks: number): number {
    let added = 0;
    const last = Math.floor((lba + blocks - 1) / BLOCKS_PER_TRACK);
    for (let t = Math.floor(lba / BLOCKS_PER_TRACK); t <= last; t++) if (this.set(t)) added++;
    return added;
  }

  /** Sets a track's bit; true when it was clear. */
  set(track: number): boolean {
    this.check(track);
    const w = track >>> 5, m = 1 << (track & 31);
    const old = this.words[w]!;
    if (old & m) return false;
    this.words[w] = old | m;
    return true;
  }

  /** Clears a track's bit; true when it was set. */
  clear(track: number): boolean {
    this.check(track);
    const w = track >>> 5, m = 1 << (track & 31);
    const old = this.words[w]!;
    if (!(old & m)) return false;
    this.words[w] = old & ~m;
    return true;
  }

  test(track: number): boolean {
    this.check(track);
    return (this.words[track >>> 5]! & (1 << (track & 31))) !== 0;
  }

  /** First set track at or after `from`, or -1. Skips clear words whole. */
  nextSet(from: number): number {
    for (let w = from >>> 5; w < this.words.length; w++) {
      let bits = this.words[w]!;
      if (w === from >>> 5) bits &= -1 << (from & 31);
      if (bits === 0) continue;
      const t = w * 32 + (31 - Math.clz32(bits & -bits));
      return t < this.tracks ? t : -1;
    }
    return -1;
  }

  count(): number {
    let n = 0;
    for (let w = 0; w < this.words.length; w++) {
      let v = this.words[w]! >>> 0;
      v = v - ((v >>> 1) & 0x55555555);
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      n += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    }
    return n;
  }

  /** ORs another bitmap's words into this one (merging both sides' differences before a resync). */
  union(other: ArrayLike<number>): void {
    if (other.length !== this.words.length) throw new Error(`bitmap union: ${other.length} words vs ${this.words.length}`);
    for (let w = 0; w < this.words.length; w++) this.words[w] = this.words[w]! | other[w]!;
  }

  setAll(): void {
    this.words.fill(0);
    for (let t = 0; t < this.tracks; t++) this.words[t >>> 5] = this.words[t >>> 5]! | (1 << (t & 31));
  }

  clearAll(): void {
    this.words.fill(0);
  }

  private check(track: number): void {
    if (!Number.isInteger(track) || track < 0 || track >= this.tracks) {
      throw new RangeError(`track ${track} outside bitmap of ${this.tracks} tracks`);
    }
  }
}
