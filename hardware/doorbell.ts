// Doorbell: a counter in shared memory. ring() bumps it and wakes waiters; a waiter passes the
// value it last saw, so a ring between "check for work" and "wait" is never lost.

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
// Atomics.waitAsync is in lib ES2024; this project compiles against ES2023.
const waitAsync = (Atomics as unknown as { waitAsync?: (ta: Int32Array, index: number, value: number, timeout?: number) => WaitAsyncResult }).waitAsync;

export class Doorbell {
  private readonly word: Int32Array;

  private constructor(readonly sab: SharedArrayBuffer) {
    this.word = new Int32Array(sab, 0, 1);
  }

  static create(): Doorbell {
    return new Doorbell(new SharedArrayBuffer(4));
  }

  static attach(sab: SharedArrayBuffer): Doorbell {
    return new Doorbell(sab);
  }

  ring(): void {
    Atomics.add(this.word, 0, 1);
    Atomics.notify(this.word, 0);
  }

  value(): number {
    return Atomics.load(this.word, 0);
  }

  /** Resolves when the value differs from `seen` or after timeoutMs (whichever first); never blocks the thread. */
  async waitAsync(seen: number, timeoutMs: number): Promise<void> {
    if (Atomics.load(this.word, 0) !== seen) return;
    if (!waitAsync) throw new Error('Atomics.waitAsync is not available in this runtime');
    const r = waitAsync(this.word, 0, seen, timeoutMs);
    if (r.async) await r.value; // sync shape: already 'not-equal' or 'timed-out'
  }

  /** Blocking wait; for worker threads only (it freezes the calling thread). Returns true if woken/changed. */
  waitSync(seen: number, timeoutMs: number): boolean {
    return Atomics.wait(this.word, 0, seen, timeoutMs) !== 'timed-out';
  }
}
