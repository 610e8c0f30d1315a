// The lateness a CPU credits to the event it dispatches (ThreadTuning.maxDueCreditUs): how late the event is for
// reasons that are not the emulated controller's (the thread asleep or waking, the host OS running another thread),
// so that the frames and completions the event makes are stamped as if it had been dispatched when due. Lateness
// behind the CPU's own earlier events is queueing, which a busy controller has too: it is not credited.

export class DueCredit {
  /** When the CPU last finished a firmware event (world µs): an event due before then waited behind it. */
  private lastEventEndUs = -Infinity;
  private creditUs = 0;

  constructor(readonly maxUs: number) {
    if (!(Number.isFinite(maxUs) && maxUs >= 0)) throw new Error(`maxDueCreditUs must be a finite number >= 0, got ${maxUs}`);
  }

  /** An event due at dueUs is dispatched at nowUs: credits what it waited past both its due time and the CPU's last event. */
  dispatch(nowUs: number, dueUs: number): number {
    const waited = nowUs - Math.max(dueUs, this.lastEventEndUs);
    this.creditUs = waited > 0 ? Math.min(waited, this.maxUs) : 0;
    return this.creditUs;
  }

  /** The event's handler returned: what the CPU does until the next dispatch is stamped with the wall clock. */
  clear(): void { this.creditUs = 0; }

  /** The CPU was busy with events until nowUs (or held, as by a debugger's pause: what waited for it is not credited). */
  busyUntil(nowUs: number): void {
    this.lastEventEndUs = nowUs;
    this.creditUs = 0;
  }

  /** The time an effect made at nowUs is stamped with. */
  stamp(nowUs: number): number { return nowUs - this.creditUs; }
}
