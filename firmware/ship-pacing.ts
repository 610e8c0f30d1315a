// Sizes a journal pair's ship window and its batches from the destination's acknowledgements (S110), so that
// shipping fits the link the firmware cannot see. A fixed window (2 MiB of 4 KiB entries, 16 MiB of larger ones)
// outlasts a slow link's transmit queue: frames were tail-dropped and go-back-N stalled the pair. And one batch
// (up to 1 MiB) took longer to cross a link under 1 MB/s than the partner timeout, so the destination, hearing
// nothing meanwhile, declared the source lost.
//
// The estimate is the one TCP's BBR makes from its acknowledgements: the delivery rate (bytes acknowledged over
// the time they took, max-filtered) and the smallest round trip seen. The window is the rate times (that round
// trip + a queue target): enough to keep the link busy with at most about the target queued at its bottleneck.
// A batch is at most what the link carries in SHIP_BATCH_SERIALISE_US. Before the first estimate both start small
// (TCP's initial window); each round trip then multiplies the window by about (round trip + target) / round trip.
// Formation copies (S100) use a second instance for their window of tracks, keyed by copy serial.

import { BLOCK_SIZE_BYTES, JOURNAL_BATCH_MAX_BYTES, JOURNAL_SHIP_WINDOW_BYTES, JOURNAL_SHIP_WINDOW_ENTRIES } from './constants.ts';
import { assertInvariant } from './invariant.ts';

/** What the window lets queue at the link's bottleneck, in time: far under the link's 2 s transmit queue and a command's 2 s timeout. */
export const SHIP_QUEUE_TARGET_US = 200_000;
/** One batch's time on the link at the estimated rate, so the destination hears from the source far more often than its partner timeout (300 ms). */
export const SHIP_BATCH_SERIALISE_US = 20_000;
/**
 * Before the first estimate: bytes in flight (0.66 s on a 0.1 MB/s link), and bytes per batch: one 4 KiB entry,
 * so that the first round trip measured is not mostly a large batch's time on a slow link's wire.
 */
export const SHIP_INITIAL_WINDOW_BYTES = 64 * 1024;
export const SHIP_INITIAL_BATCH_BYTES = BLOCK_SIZE_BYTES;
/** The delivery rate is the largest sample of the last one to two of these periods; a bandwidth drop shows within two. */
export const SHIP_RATE_FILTER_US = 1_000_000;

export class ShipPacing {
  // Batches sent and not yet acknowledged, oldest first: a ring allocated up front. A batch holds at least one
  // entry and the window at most JOURNAL_SHIP_WINDOW_ENTRIES, which bounds it.
  private readonly lastSeq = new Float64Array(JOURNAL_SHIP_WINDOW_ENTRIES);
  private readonly bytes = new Float64Array(JOURNAL_SHIP_WINDOW_ENTRIES);
  private readonly sentUs = new Float64Array(JOURNAL_SHIP_WINDOW_ENTRIES);
  /** At each batch's send: bytes delivered so far, and when the last of them was (BBR's delivered and delivered_time). */
  private readonly deliveredAtSend = new Float64Array(JOURNAL_SHIP_WINDOW_ENTRIES);
  private readonly deliveredUsAtSend = new Float64Array(JOURNAL_SHIP_WINDOW_ENTRIES);
  private head = 0;
  private count = 0;
  private delivered = 0;
  private deliveredUs = 0;
  private minRttUs = Infinity;
  /** Max filter over two periods: the current one's largest sample and the previous one's. */
  private rateNow = 0;
  private ratePrev = 0;
  private periodStartUs = -Infinity;
  /** Batches ending at or before this went before the last rewind too: see rewind. */
  private resentThroughSeq = 0;

  /** Delivery rate estimate, bytes per µs (= MB/s); 0 before the first sample. */
  get rateBytesPerUs(): number { return Math.max(this.rateNow, this.ratePrev); }
  /**
   * Smallest round trip seen, from a batch's send to its acknowledgement; Infinity before the first. It includes
   * that batch's time on the wire (at most SHIP_BATCH_SERIALISE_US once the rate is known, one entry before),
   * which the window has to cover as well.
   */
  get roundTripUs(): number { return this.minRttUs; }
  get batchesInFlight(): number { return this.count; }
  /** When the newest batch in flight went; -Infinity when none is. */
  get newestSentUs(): number {
    return this.count > 0 ? this.sentUs[(this.head + this.count - 1) % JOURNAL_SHIP_WINDOW_ENTRIES]! : -Infinity;
  }

  /** Bytes of write data the source may have sent and not yet had acknowledged. */
  windowBytes(): number {
    const rate = this.rateBytesPerUs;
    if (rate === 0) return SHIP_INITIAL_WINDOW_BYTES;
    return Math.min(JOURNAL_SHIP_WINDOW_BYTES, Math.max(BLOCK_SIZE_BYTES, rate * (this.minRttUs + SHIP_QUEUE_TARGET_US)));
  }

  /** Bytes of write data one batch may carry (at least one entry, whatever its size). */
  batchBytes(): number {
    const rate = this.rateBytesPerUs;
    if (rate === 0) return SHIP_INITIAL_BATCH_BYTES;
    return Math.min(JOURNAL_BATCH_MAX_BYTES, Math.max(BLOCK_SIZE_BYTES, rate * SHIP_BATCH_SERIALISE_US));
  }

  /** A batch ending at `lastSeq` carrying `bytes` of write data went out. */
  onSent(lastSeq: number, bytes: number, nowUs: number): void {
    assertInvariant(this.count < JOURNAL_SHIP_WINDOW_ENTRIES, () => `ship pacing: more than ${JOURNAL_SHIP_WINDOW_ENTRIES} batches in flight`);
    const tail = (this.head + this.count) % JOURNAL_SHIP_WINDOW_ENTRIES;
    if (this.count > 0) {
      const prev = this.lastSeq[(tail + JOURNAL_SHIP_WINDOW_ENTRIES - 1) % JOURNAL_SHIP_WINDOW_ENTRIES]!;
      assertInvariant(lastSeq > prev, () => `ship pacing: batch ending at ${lastSeq} sent after one ending at ${prev}`);
    } else {
      this.deliveredUs = nowUs; // nothing in flight: time the source had nothing to send is not the link's
    }
    this.lastSeq[tail] = lastSeq;
    this.bytes[tail] = bytes;
    this.sentUs[tail] = nowUs;
    this.deliveredAtSend[tail] = this.delivered;
    this.deliveredUsAtSend[tail] = this.deliveredUs;
    this.count++;
  }

  /** The destination acknowledged every entry through `throughSeq` (received or applied). */
  onAcknowledged(throughSeq: number, nowUs: number): void {
    let popped = false;
    while (this.count > 0 && this.lastSeq[this.head]! <= throughSeq) {
      const i = this.head;
      this.head = (this.head + 1) % JOURNAL_SHIP_WINDOW_ENTRIES;
      this.count--;
      this.delivered += this.bytes[i]!;
      popped = true;
      const rttUs = nowUs - this.sentUs[i]!;
      if (rttUs < this.minRttUs) this.minRttUs = rttUs;
      const intervalUs = nowUs - this.deliveredUsAtSend[i]!;
      if (intervalUs > 0 && this.lastSeq[i]! > this.resentThroughSeq) this.sampleRate((this.delivered - this.deliveredAtSend[i]!) / intervalUs, rttUs, nowUs);
    }
    if (popped) this.deliveredUs = nowUs;
  }

  /**
   * Shipping restarts (go-back-N, a journal reset, a new formation copy): what was in flight is void. What was learnt
   * of the link stays. Batches through `sentThroughSeq` went before: the destination may hold them already (go-back-N
   * sends again what it received past a gap), so one acknowledgement covers a window sent at once, and their rate
   * (it was 6 × the link) is not the link's; they sample none (as Karn's algorithm for retransmissions).
   */
  rewind(sentThroughSeq = 0): void {
    this.count = 0;
    this.resentThroughSeq = Math.max(this.resentThroughSeq, sentThroughSeq);
  }

  private sampleRate(rate: number, rttUs: number, nowUs: number): void {
    // A queue far beyond the target means the link got slower than the filter remembers: start it again.
    if (rttUs > this.minRttUs + 4 * SHIP_QUEUE_TARGET_US) {
      this.ratePrev = 0;
      this.rateNow = rate;
      this.periodStartUs = nowUs;
      return;
    }
    if (nowUs - this.periodStartUs >= SHIP_RATE_FILTER_US) {
      this.ratePrev = nowUs - this.periodStartUs >= 2 * SHIP_RATE_FILTER_US ? 0 : this.rateNow;
      this.rateNow = 0;
      this.periodStartUs = nowUs;
    }
    if (rate > this.rateNow) this.rateNow = rate;
  }
}
