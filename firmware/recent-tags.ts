// The tags of the last N synchronous copies a destination applied, so a duplicate frame (a repeater's late
// copy) is acknowledged again but never written again: written late, it would overwrite a newer write to the
// same blocks. Bounded and allocated up front: a ring of tags and a set over it.

export class RecentTags {
  private readonly ring: Uint32Array;
  private readonly present = new Set<number>();
  private next = 0;

  constructor(readonly capacity: number) {
    this.ring = new Uint32Array(capacity);
  }

  has(tag: number): boolean { return this.present.has(tag); }

  /** Remembers a tag, forgetting the oldest once full. */
  add(tag: number): void {
    if (this.present.has(tag)) return;
    if (this.present.size === this.capacity) this.present.delete(this.ring[this.next]!);
    this.ring[this.next] = tag;
    this.present.add(tag);
    this.next = (this.next + 1) % this.capacity;
  }

  /** Forgets everything (a resynchronisation starts: the source's tags may start again after its restart). */
  clear(): void {
    this.present.clear();
    this.next = 0;
  }

  get size(): number { return this.present.size; }
}
