// The wait before an unanswered frame goes again, from the round trips its answers took: TCP's retransmission timer
// (RFC 6298). A smoothed round trip and its mean deviation follow the queue a link builds, so a frame queued on a
// congested path is not taken for lost and sent again onto the same queue. Each time a frame goes again the wait
// doubles (backOff), and it stays doubled until a frame sent once is answered and gives a new sample (RFC 6298
// §5.7): answers to frames sent more than once are ambiguous and are not sampled (Karn's rule, kept by the caller).

import { assertInvariant } from './invariant.ts';

export class RetransmitTimer {
  /** Smoothed round trip and its mean deviation (µs); -1 until the first sample. */
  private srttUs = -1;
  private rttvarUs = 0;
  /** 2^k after k times backOff() without a new sample. */
  private backoff = 1;

  /** @param firstWaitUs the wait before any round trip was measured; @param minWaitUs the least wait ever. */
  constructor(private readonly firstWaitUs: number, private readonly minWaitUs: number) {
    assertInvariant(minWaitUs > 0 && firstWaitUs >= minWaitUs, `retransmit timer: first wait ${firstWaitUs} µs below the least ${minWaitUs} µs`);
  }

  /** A round trip measured on a frame sent once (RFC 6298 §2: gains 1/8 and 1/4). */
  sample(rttUs: number): void {
    if (!(rttUs >= 0)) return;
    this.backoff = 1;
    if (this.srttUs < 0) {
      this.srttUs = rttUs;
      this.rttvarUs = rttUs / 2;
    } else {
      this.rttvarUs += (Math.abs(this.srttUs - rttUs) - this.rttvarUs) / 4;
      this.srttUs += (rttUs - this.srttUs) / 8;
    }
  }

  /** How long a frame sent now may go unanswered before it goes again: srtt + 4 × rttvar (at least the least wait), backed off. */
  waitUs(): number {
    return this.backoff * (this.srttUs < 0 ? this.firstWaitUs : Math.max(this.minWaitUs, this.srttUs + 4 * this.rttvarUs));
  }

  /** A frame went again: the wait doubles (up to 64 times) until the next sample. */
  backOff(): void {
    this.backoff = Math.min(64, this.backoff * 2);
  }
}
