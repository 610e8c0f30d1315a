// The other end of bench/primitives.ts's two-thread measurements. Waits for one command at a time from
// the parent, runs it to completion (blocking this thread, which is the point), then replies 'done'.

import { type MessagePort, parentPort } from 'node:worker_threads';
import { SpscRing } from '../../hardware/spsc-ring.ts';
import { applyTimerSlack } from '../../hardware/thread-policy.ts';

export type PeerCommand =
  /**
   * Push payloads of `payloadBytes` (first 32-bit word = sequence number) into the ring, spinning while it is
   * full, until word 0 of `stopSab` becomes non-zero.
   */
  | { op: 'ring-produce'; ringSab: SharedArrayBuffer; stopSab: SharedArrayBuffer; payloadBytes: number }
  /**
   * Ping-pong on word 0 of `sab`: wait for an odd value (the parent's ping), answer with the next even one;
   * -1 (PONG_STOP) ends it.
   */
  | { op: 'pong-wait'; sab: SharedArrayBuffer }
  /** Same, but polling with Atomics.load instead of sleeping. */
  | { op: 'pong-spin'; sab: SharedArrayBuffer }
  /**
   * Sleep `count` times in a timed Atomics.wait of `sleepUs` that nothing ends early (as the threads runtime's CPU loop
   * sleeps towards a deadline), writing each sleep's lateness (µs past sleepUs) into `outSab` (Float64Array), with
   * this thread's timer slack set to `timerSlackNs` first (hardware/thread-policy.ts; 0: left as it is).
   */
  | { op: 'timed-sleeps'; outSab: SharedArrayBuffer; sleepUs: number; count: number; timerSlackNs: number }
  /** Echo every message on `port` back on it until the message 'stop'. */
  | { op: 'echo'; port: MessagePort }
  | { op: 'exit' };

/** Written by the parent instead of a ping to end a ping-pong (bench/primitives.ts uses the same value). */
const PONG_STOP = -1;

const port = parentPort!;

function ringProduce(c: Extract<PeerCommand, { op: 'ring-produce' }>): void {
  const ring = SpscRing.attach(c.ringSab);
  const payload = new Uint8Array(c.payloadBytes).fill(0x5a);
  const seqWord = new Uint32Array(payload.buffer, 0, 1);
  const stop = new Int32Array(c.stopSab, 0, 1);
  for (let seq = 0; ; seq++) {
    seqWord[0] = seq;
    // Spin while full: the consumer frees space within microseconds.
    while (!ring.tryPush(payload)) if (Atomics.load(stop, 0) !== 0) return;
    if ((seq & 255) === 0 && Atomics.load(stop, 0) !== 0) return;
  }
}

function pong(c: Extract<PeerCommand, { op: 'pong-wait' | 'pong-spin' }>): void {
  const word = new Int32Array(c.sab, 0, 1);
  const sleep = c.op === 'pong-wait';
  for (let even = 0; ; even += 2) {
    // Wait until the parent turns `even` into `even + 1` (or into PONG_STOP).
    let v: number;
    while ((v = Atomics.load(word, 0)) === even) if (sleep) Atomics.wait(word, 0, even);
    if (v === PONG_STOP) return;
    Atomics.store(word, 0, even + 2);
    if (sleep) Atomics.notify(word, 0);
  }
}

function timedSleeps(c: Extract<PeerCommand, { op: 'timed-sleeps' }>): void {
  const word = new Int32Array(new SharedArrayBuffer(4)), out = new Float64Array(c.outSab);
  const slack = c.timerSlackNs > 0 ? applyTimerSlack(c.timerSlackNs) : null;
  if (slack?.note) throw new Error(slack.note);
  for (let i = 0; i < c.count; i++) {
    const t0 = performance.now();
    Atomics.wait(word, 0, 0, c.sleepUs / 1000);
    out[i] = (performance.now() - t0) * 1000 - c.sleepUs;
  }
}

port.on('message', (c: PeerCommand) => {
  switch (c.op) {
    case 'ring-produce': ringProduce(c); break;
    case 'pong-wait': case 'pong-spin': pong(c); break;
    case 'timed-sleeps': timedSleeps(c); break;
    case 'echo':
      c.port.on('message', (m: unknown) => { if (m === 'stop') c.port.close(); else c.port.postMessage(m); });
      break;
    case 'exit': port.close(); return;
  }
  port.postMessage('done');
});
port.postMessage('ready');
