// The tags of the last N synchronous copies a destination applied, so a duplicate frame (a repeater's late
// copy) is acknowledged again but never written again: written late, it would overwrite a newer write to the
// same blocks. Bounded and allocated up front: a ring of tags in arrival order, and an open-addressing hash set
// over it (linear probing, backward-shift deletion) in typed arrays — it is asked twice per synchronous copy,
// where a JavaScript Set cost about 1 µs.

export class RecentTags {
  private readonly ring: Uint32Array;
  private readonly keys: Uint32Array;
  private readonly used: Uint8Array;
  private readonly mask: number;
  private readonly shift: number;
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`RecentTags capacity ${capacity} must be a positive integer`);
    this.ring = new Uint32Array(capacity);
    let bits = 1;
    while (1 << bits < 2 * capacity) bits++; // at most half full: short probe runs
    this.keys = new Uint32Array(1 << bits);
    this.used = new Uint8Array(1 << bits);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
  }

  /** Fibonacci hashing: the high bits of tag × 2^32/φ, so consecutive tags spread over the table. */
  private home(tag: number): number { return Math.imul(tag, 0x9e3779b1) >>> this.shift; }

  private slotOf(tag: number): number {
    for (let i = this.home(tag); this.used[i]; i = (i + 1) & this.mask) if (this.keys[i] === tag) return i;
    return -1;
  }

  has(tag: number): boolean { return this.slotOf(tag >>> 0) >= 0; }

  /** Remembers a tag, forgetting the oldest once full. */
  add(tag: number): void {
    tag >>>= 0;
    if (this.slotOf(tag) >= 0) return;
    if (this.count === this.capacity) this.remove(this.ring[this.next]!);
    this.ring[this.next] = tag;
    this.next = (this.next + 1) % this.capacity;
    let i = this.home(tag);
    while (this.used[i]) i = (i + 1) & this.mask;
    this.used[i] = 1;
    this.keys[i] = tag;
    this.count++;
  }

  /** Deletes a tag and shifts back the entries of its probe run that could no longer be found past the hole. */
  private remove(tag: number): void {
    let hole = this.slotOf(tag);
    if (hole < 0) return;
    this.used[hole] = 0;
    this.count--;
    for (let j = (hole + 1) & this.mask; this.used[j]; j = (j + 1) & this.mask) {
      const h = this.home(this.keys[j]!);
      // The entry at j stays if its home lies cyclically in (hole, j]; otherwise the hole would cut it off.
      const stays = hole < j ? h > hole && h <= j : h > hole || h <= j;
      if (stays) continue;
      this.keys[hole] = this.keys[j]!;
      this.used[hole] = 1;
      this.used[j] = 0;
      hole = j;
    }
  }

  /** Forgets everything (a resynchronisation starts: the source's tags may start again after its restart). */
  clear(): void {
    this.used.fill(0);
    this.count = 0;
    this.next = 0;
  }

  get size(): number { return this.count; }
}
