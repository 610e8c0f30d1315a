// Cache memory: fixed slots allocated up front. The bytes live in a SharedArrayBuffer only so a
// debugger or checker on another thread can look at them; allocation bookkeeping is used by the
// owning controller thread alone, so it is plain (non-shared, non-atomic) memory.

import type { CacheMemoryPort } from '../firmware/hardware-interface.ts';

export interface CacheMemoryState { data: SharedArrayBuffer; slotCount: number; slotBytes: number }

export class CacheMemory implements CacheMemoryPort {
  private readonly bytes: Uint8Array;
  /** Free-slot stack: free[0..top) are free slot indices. */
  private readonly free: Int32Array;
  private top = 0;
  /** 1 while a slot is allocated: catches double release in O(1). */
  private readonly used: Uint8Array;

  private constructor(private readonly data: SharedArrayBuffer, readonly slotCount: number, readonly slotBytes: number) {
    if (!Number.isInteger(slotCount) || slotCount < 1) throw new Error(`cache slotCount ${slotCount} must be a positive integer`);
    if (!Number.isInteger(slotBytes) || slotBytes < 1) throw new Error(`cache slotBytes ${slotBytes} must be a positive integer`);
    if (data.byteLength < slotCount * slotBytes) throw new Error(`cache buffer of ${data.byteLength} bytes is smaller than ${slotCount} × ${slotBytes}`);
    this.bytes = new Uint8Array(data, 0, slotCount * slotBytes);
    this.free = new Int32Array(slotCount);
    this.used = new Uint8Array(slotCount);
    this.resetFree();
  }

  static create(slotCount: number, slotBytes: number): CacheMemory {
    return new CacheMemory(new SharedArrayBuffer(slotCount * slotBytes), slotCount, slotBytes);
  }

  /** Shares the bytes; the allocation state is local, so an attached instance starts with every slot free. */
  static attach(state: CacheMemoryState): CacheMemory {
    return new CacheMemory(state.data, state.slotCount, state.slotBytes);
  }

  get state(): CacheMemoryState {
    return { data: this.data, slotCount: this.slotCount, slotBytes: this.slotBytes };
  }

  /** The allocator's state (free stack, oldest first): which slot the next allocation gets is part of the world. */
  get allocation(): { freeStack: number[] } {
    return { freeStack: Array.from(this.free.subarray(0, this.top)) };
  }

  get inUse(): number {
    return this.slotCount - this.top;
  }

  allocate(): number {
    if (this.top === 0) return -1;
    const s = this.free[--this.top]!;
    this.used[s] = 1;
    return s;
  }

  release(slot: number): void {
    this.checkSlot(slot);
    if (this.used[slot] === 0) throw new Error(`cache slot ${slot} released twice (or never allocated)`);
    this.used[slot] = 0;
    this.free[this.top++] = slot;
  }

  slot(slot: number, length: number): Uint8Array {
    this.checkSlot(slot);
    if (!Number.isInteger(length) || length < 0 || length > this.slotBytes)
      throw new RangeError(`cache slot view of ${length} bytes exceeds the slot size ${this.slotBytes}`);
    const start = slot * this.slotBytes;
    return this.bytes.subarray(start, start + length);
  }

  /** Power loss: every slot freed and its bytes zeroed. */
  clear(): void {
    // Only slots in use hold data anyone could miss; zeroing all of them would touch every page of a cache
    // that is mostly never used.
    for (let i = 0; i < this.slotCount; i++) {
      if (this.used[i]) this.bytes.fill(0, i * this.slotBytes, (i + 1) * this.slotBytes);
    }
    this.used.fill(0);
    this.resetFree();
  }

  private resetFree(): void {
    // Pushed in reverse so allocation order is 0, 1, 2 … (deterministic and easy to read in traces).
    for (let i = 0; i < this.slotCount; i++) this.free[i] = this.slotCount - 1 - i;
    this.top = this.slotCount;
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount)
      throw new RangeError(`cache slot ${slot} outside 0..${this.slotCount - 1}`);
  }
}
