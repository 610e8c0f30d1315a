// The lateness a CPU credits to the event it dispatches (ThreadTuning.maxDueCreditUs): how late the event is for
// reasons that are not the emulated controller's (the thread asleep or waking, the host OS running another thread, the
// event's sender putting it in the ring late), so that the frames and completions the event makes are stamped as if it
// had been dispatched when due. Lateness spent while the CPU ran its own other events is queueing, which a busy
// controller has too: it is not credited.

/** Busy intervals remembered: a CPU runs a few dozen events within the lateness a credit can cover. A power of 2. */
export const DUE_CREDIT_HISTORY = 256;
const MASK = DUE_CREDIT_HISTORY - 1;

export class DueCredit {
  /** The last DUE_CREDIT_HISTORY busy intervals (events run, holds), in time order in a ring: `count` of them, ending before `next`. */
  private readonly startUs = new Float64Array(DUE_CREDIT_HISTORY);
  private readonly endUs = new Float64Array(DUE_CREDIT_HISTORY);
  /** Busy time from the first interval ever to the end of each one, so busySince is a binary search, not a walk. */
  private readonly busyToEndUs = new Float64Array(DUE_CREDIT_HISTORY);
  private busyTotalUs = 0;
  private next = 0;
  private count = 0;
  /** When the event being dispatched started (NaN between events). */
  private openUs = Number.NaN;
  private creditUs = 0;

  constructor(readonly maxUs: number) {
    if (!(Number.isFinite(maxUs) && maxUs >= 0)) throw new Error(`maxDueCreditUs must be a finite number >= 0, got ${maxUs}`);
  }

  /**
   * An event due at dueUs is dispatched at nowUs: credits what it waited past its due time, less the time the CPU was
   * busy (running other events, or held) since then. The event is busy from now until busyUntil.
   */
  dispatch(nowUs: number, dueUs: number): number {
    const waited = Math.min(nowUs - dueUs, this.maxUs);
    this.creditUs = waited > 0 ? Math.max(0, waited - this.busySince(nowUs - waited)) : 0;
    this.openUs = nowUs;
    return this.creditUs;
  }

  /** The event's handler returned: what the CPU does until the next dispatch is stamped with the wall clock. */
  clear(): void { this.creditUs = 0; }

  /** The event dispatched last ended at nowUs: the CPU was busy with it since its dispatch. */
  busyUntil(nowUs: number): void {
    if (!Number.isNaN(this.openUs)) this.remember(this.openUs, nowUs);
    this.openUs = Number.NaN;
    this.creditUs = 0;
  }

  /** The CPU was held from fromUs to toUs (a debugger's pause): what waited for it gets no credit for that time. */
  held(fromUs: number, toUs: number): void {
    this.busyUntil(fromUs);
    this.remember(fromUs, toUs);
  }

  /** The time an effect made at nowUs is stamped with. */
  stamp(nowUs: number): number { return nowUs - this.creditUs; }

  private remember(fromUs: number, toUs: number): void {
    if (!(toUs > fromUs)) return;
    this.busyTotalUs += toUs - fromUs;
    this.startUs[this.next] = fromUs;
    this.endUs[this.next] = toUs;
    this.busyToEndUs[this.next] = this.busyTotalUs;
    this.next = (this.next + 1) & MASK;
    if (this.count < DUE_CREDIT_HISTORY) this.count++;
  }

  /** Busy time from sinceUs on; before the oldest interval remembered, every µs counts as busy. */
  private busySince(sinceUs: number): number {
    const n = this.count, first = (this.next - n) & MASK;
    if (n === 0 || this.endUs[(this.next - 1) & MASK]! <= sinceUs) return 0; // asleep since: the common case
    // The oldest interval that ends after sinceUs (intervals are in time order): binary search over 0..n-1.
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.endUs[(first + mid) & MASK]! > sinceUs) hi = mid; else lo = mid + 1;
    }
    const k = (first + lo) & MASK, start = this.startUs[k]!;
    const before = this.busyToEndUs[k]! - (this.endUs[k]! - start); // busy up to that interval's start
    let busy = this.busyTotalUs - before - Math.max(0, sinceUs - start);
    if (lo === 0 && n === DUE_CREDIT_HISTORY && start > sinceUs) busy += start - sinceUs; // older than the history: not credited
    return busy;
  }
}
