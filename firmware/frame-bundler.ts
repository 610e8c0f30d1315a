// Bundling of the per-write frames a controller sends to one partner in one burst of work (synchronous copies,
// their acknowledgements): interrupt coalescing, as an HBA or NVMe driver batches its doorbells. Frames of a bundled
// type wait in a per-destination buffer (allocated once, on first use) until the burst ends (`flush`), the buffer is full, or
// a frame of another kind goes to the same destination (which flushes first, so every destination still receives
// frames in the order they were sent). A bundle of one frame is sent as that frame: bundling changes nothing on the
// wire until there are two.
// The first frame held for a destination is kept by reference, not copied: most bursts (one host write, one copy)
// hold a single frame, which then goes out from the caller's own buffer. The caller keeps that buffer unchanged until
// it calls `copyLent` (the controller does before every encode), which copies what is still lent into the buffer.

import { assertInvariant } from './invariant.ts';
import { BUNDLE_MAX_BODY_BYTES, BUNDLE_MAX_FRAMES } from './constants.ts';
import { BUNDLED_FRAME_TYPES, FRAME_HEADER_BYTES, FrameType } from './frames.ts';

interface Pending {
  /** Bundle header + inner frames, BUNDLE_MAX_BODY_BYTES of room for them. */
  readonly buf: Uint8Array;
  readonly view: DataView;
  /** Inner frames held, their type, and the bytes they take after the header. */
  frames: number;
  type: number;
  bytes: number;
  /** The one frame held, still in the caller's buffer (not yet copied into `buf`); null once copied. */
  lent: Uint8Array | null;
}

export class FrameBundler {
  private readonly pending = new Map<number, Pending>();
  /** Destinations with frames waiting, in the order they got their first one. */
  private readonly waiting: number[] = [];
  /** Frames of bundles the link refused, reported once the call that flushed them is done with its own frame. */
  private readonly lost: Array<{ dest: number; frame: Uint8Array }> = [];
  /** Destinations whose one held frame is still lent (see copyLent). */
  private lentCount = 0;

  /**
   * `send` puts a frame on the wire (Hardware.send); `unsent` hears of each inner frame of a bundle that could not
   * be sent (no link), so the controller can fail its pair as it would have on the spot.
   */
  constructor(
    private readonly send: (dest: number, frame: Uint8Array) => boolean,
    private readonly unsent: (dest: number, frame: Uint8Array) => void,
  ) {}

  /**
   * Sends `frame` to `dest`, or holds it for a bundle. True unless it was sent at once and the link refused it; a
   * held frame's failure is reported through `unsent` when its bundle goes out. A frame sent at once is lent for the
   * call only; a held one until the caller's next `copyLent`.
   */
  offer(dest: number, frame: Uint8Array): boolean {
    const type = frame[0]!;
    const p = this.pending.get(dest);
    if (!BUNDLED_FRAME_TYPES.has(type) || frame.length > BUNDLE_MAX_BODY_BYTES) {
      if (p && p.frames > 0) this.flushOne(dest, p);
      const sent = this.send(dest, frame);
      this.reportLost();
      return sent;
    }
    const q = p ?? this.open(dest);
    if (q.frames > 0 && (q.type !== type || q.frames === BUNDLE_MAX_FRAMES || q.bytes + frame.length > BUNDLE_MAX_BODY_BYTES)) this.flushOne(dest, q);
    if (q.frames === 0) {
      q.type = type;
      q.lent = frame;
      this.lentCount++;
      this.waiting.push(dest);
    } else {
      this.copyIn(q);
      q.buf.set(frame, FRAME_HEADER_BYTES + q.bytes);
    }
    q.bytes += frame.length;
    q.frames++;
    this.reportLost();
    return true;
  }

  /** Copies every frame still held by reference into its bundle buffer: the caller is about to reuse its buffer. */
  copyLent(): void {
    if (this.lentCount === 0) return;
    for (const dest of this.waiting) this.copyIn(this.pending.get(dest)!);
  }

  private copyIn(p: Pending): void {
    if (!p.lent) return;
    assertInvariant(p.frames === 1, () => `bundle of ${p.frames} frames still holds one by reference`);
    p.buf.set(p.lent, FRAME_HEADER_BYTES);
    p.lent = null;
    this.lentCount--;
  }

  /** Sends every frame held (the burst of work is over). */
  flush(): void {
    if (this.waiting.length === 0) return;
    // A failed send's report may send (and so hold) more frames: it finds a fresh list.
    for (const dest of this.waiting.splice(0)) {
      const p = this.pending.get(dest)!;
      if (p.frames > 0) this.flushOne(dest, p);
    }
    this.reportLost();
  }

  /** Frames held for `dest` now (for tests and assertions). */
  held(dest: number): number {
    return this.pending.get(dest)?.frames ?? 0;
  }

  private open(dest: number): Pending {
    const buf = new Uint8Array(FRAME_HEADER_BYTES + BUNDLE_MAX_BODY_BYTES);
    const p: Pending = { buf, view: new DataView(buf.buffer), frames: 0, type: 0, bytes: 0, lent: null };
    this.pending.set(dest, p);
    return p;
  }

  private flushOne(dest: number, p: Pending): void {
    assertInvariant(p.frames > 0, () => `bundle for storage ${dest} flushed empty`);
    const frames = p.frames, lent = p.lent;
    const body = lent ?? p.buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + p.bytes);
    p.frames = 0;
    p.bytes = 0;
    if (lent) { p.lent = null; this.lentCount--; }
    const i = this.waiting.indexOf(dest);
    if (i >= 0) this.waiting.splice(i, 1);
    // The buffer is reused at once: a frame the link refused is kept as a copy, for reportLost.
    if (frames === 1) {
      if (!this.send(dest, body)) this.lost.push({ dest, frame: body.slice() });
      return;
    }
    const v = p.view;
    v.setUint8(0, FrameType.Bundle);
    v.setUint8(1, p.type);
    v.setUint16(2, 0);
    v.setUint32(4, 0);
    v.setUint32(8, frames);
    v.setUint32(12, 0);
    v.setUint32(16, 0);
    v.setUint32(20, body.length);
    if (this.send(dest, p.buf.subarray(0, FRAME_HEADER_BYTES + body.length))) return;
    // No link: each inner frame is reported, as if it had been refused on its own.
    const lost = body.slice(), lv = new DataView(lost.buffer);
    for (let at = 0; at < lost.length;) {
      const end = at + FRAME_HEADER_BYTES + lv.getUint32(at + 20);
      this.lost.push({ dest, frame: lost.subarray(at, end) });
      at = end;
    }
  }

  /**
   * Tells the controller of the frames refused, after the call that flushed them has finished with the frame it was
   * lent (a report fails a pair, which encodes and sends frames of its own). Reports may refuse more: all are told.
   */
  private reportLost(): void {
    while (this.lost.length > 0) {
      const { dest, frame } = this.lost.shift()!;
      this.unsent(dest, frame);
    }
  }
}
