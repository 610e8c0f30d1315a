// The machine's primitives, measured here and set beside the limits measured earlier on these machines
// (the benchmark study's reference figures): 4 KiB copies in shared memory, the shared-memory ring, thread
// hand-offs (sleeping and spinning), msgpackr, and how accurately a delay can be waited for. They bound
// what the threads runtime can reach. Printed figures only; nothing here asserts a time.
//
// Run: node --import tsx bench/primitives.ts [--quick] [--json]

import { once } from 'node:events';
import { availableParallelism, loadavg } from 'node:os';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import { SpscRing } from '../hardware/spsc-ring.ts';
import { DEFAULT_TIMER_SLACK_NS, KERNEL_DEFAULT_TIMER_SLACK_NS } from '../hardware/thread-policy.ts';
import type { PeerCommand } from './workers/primitives-peer.ts';

export interface PrimitiveFigure {
  name: string;
  value: number;
  unit: string;
  /** The reference as it was stated, e.g. "0.13 µs" or "40–70 µs". */
  reference: string;
  referenceLow: number;
  referenceHigh: number;
  /** value against the reference, oriented so that > 1 means better than the reference (see note). */
  ratio: number;
  note?: string;
}

const PAYLOAD_BYTES = 4096;

// ---------------------------------------------------------------- figures and their ratios

type Better = 'higher' | 'lower' | 'bound';

/**
 * higher: ratio = value / midpoint (throughputs). lower: ratio = midpoint / value (times).
 * bound ("within X"): ratio = X / |value|, so > 1 means inside the bound (|value| floored at X/100).
 */
function figure(name: string, value: number, unit: string, low: number, high: number, better: Better, note?: string): PrimitiveFigure {
  const mid = (low + high) / 2;
  const ratio = better === 'higher' ? value / mid
    : better === 'lower' ? mid / value
    : high / Math.max(Math.abs(value), high / 100);
  const reference = better === 'bound' ? `≤ ${high} ${unit}` : low === high ? `${low} ${unit}` : `${low}–${high} ${unit}`;
  const orient = better === 'higher' ? 'ratio = value / reference midpoint'
    : better === 'lower' ? 'ratio = reference midpoint / value'
    : 'ratio = bound / |value| (> 1 = within the bound)';
  return { name, value: round(value), unit, reference, referenceLow: low, referenceHigh: high, ratio: round(ratio), note: note ? `${note}; ${orient}` : orient };
}

/** Four significant digits (at most one decimal from 1000 up). */
const round = (x: number): number => (Math.abs(x) >= 1000 ? Math.round(x * 10) / 10 : Number(x.toPrecision(4)));

function percentile(sorted: Float64Array | number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `body(n)` in batches of `batch` until `budgetMs` has passed; returns µs per unit of work. */
function timeLoop(budgetMs: number, batch: number, body: (n: number) => void): number {
  body(batch); // warm up (JIT)
  let n = 0;
  const t0 = performance.now();
  let elapsedMs = 0;
  while (elapsedMs < budgetMs) { body(batch); n += batch; elapsedMs = performance.now() - t0; }
  return (elapsedMs * 1000) / n;
}

// ---------------------------------------------------------------- 4 KiB copies inside a SharedArrayBuffer

function copyFigures(quick: boolean): PrimitiveFigure[] {
  const budgetMs = quick ? 300 : 1500;

  // Hot: the same 4 KiB source and destination each time (L1/L2 resident).
  const small = new Uint8Array(new SharedArrayBuffer(64 * 1024)).fill(1);
  const hotUs = timeLoop(budgetMs, 10_000, (n) => { for (let i = 0; i < n; i++) small.copyWithin(8192, 0, PAYLOAD_BYTES); });

  // Cold: a 256 MiB buffer, far larger than the caches, walked block by block: the source advances through the
  // first half and the destination through the second, so every copy misses the caches (the prefetchers may
  // stream). The same in a shuffled block order (no prefetching, TLB misses too) goes in the note. Every page is
  // touched first so no page fault is timed.
  const bigBytes = 256 * 1024 * 1024;
  const big = new Uint8Array(new SharedArrayBuffer(bigBytes)).fill(2);
  const blocks = bigBytes / PAYLOAD_BYTES, half = blocks >> 1;
  let k = 0;
  const coldUs = timeLoop(budgetMs, 4096, (n) => {
    for (let i = 0; i < n; i++) {
      const src = k * PAYLOAD_BYTES, dst = (k + half) * PAYLOAD_BYTES;
      big.copyWithin(dst, src, src + PAYLOAD_BYTES);
      k = (k + 1) & (half - 1);
    }
  });
  const order = new Int32Array(blocks);
  for (let i = 0; i < blocks; i++) order[i] = i;
  let rand = 0x9e3779b9;
  for (let i = blocks - 1; i > 0; i--) { // Fisher–Yates with an xorshift PRNG
    rand ^= rand << 13; rand ^= rand >>> 17; rand ^= rand << 5;
    const j = (rand >>> 0) % (i + 1);
    const t = order[i]!; order[i] = order[j]!; order[j] = t;
  }
  const shuffledUs = timeLoop(budgetMs / 2, 4096, (n) => {
    for (let i = 0; i < n; i++) {
      const src = order[k]! * PAYLOAD_BYTES, dst = order[(k + half) & (blocks - 1)]! * PAYLOAD_BYTES;
      big.copyWithin(dst, src, src + PAYLOAD_BYTES);
      k = (k + 1) & (blocks - 1);
    }
  });

  return [
    figure('4 KiB copy in a SAB, hot', hotUs, 'µs', 0.13, 0.13, 'lower', 'copyWithin, same source and destination'),
    figure('4 KiB copy in a SAB, cold', coldUs, 'µs', 0.3, 0.3, 'lower',
      `copyWithin, walking a 256 MiB SAB in order; in shuffled block order ${shuffledUs.toFixed(2)} µs`),
  ];
}

// ---------------------------------------------------------------- two-thread measurements

/** A worker running bench/workers/primitives-peer.ts; run() sends one command and waits for its 'done'. */
class Peer {
  private constructor(private readonly worker: Worker) {}

  static async start(): Promise<Peer> {
    const worker = new Worker(new URL('./workers/ts-entry.mjs', import.meta.url), {
      workerData: { entry: new URL('./workers/primitives-peer.ts', import.meta.url).href },
    });
    const [first] = await once(worker, 'message') as [unknown];
    if (first !== 'ready') throw new Error(`primitives peer said ${String(first)}`);
    return new Peer(worker);
  }

  /** Sends the command; `meanwhile` runs on this thread (it may block) while the peer works. */
  async run<T>(command: PeerCommand, meanwhile: () => T, transfer: readonly MessagePort[] = []): Promise<T> {
    const done = once(this.worker, 'message');
    this.worker.postMessage(command, transfer as MessagePort[]);
    const result = meanwhile();
    const [reply] = await done as [unknown];
    if (reply !== 'done') throw new Error(`primitives peer said ${String(reply)}`);
    return result;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Spinning pairs need both threads on a core at once: on a busy 2-core machine the scheduler, not the memory, sets the figure. */
const loadNote = (): string => `1-min load average ${loadavg()[0]!.toFixed(1)}`;

/** Written instead of a ping to end the peer's ping-pong (the same value as in the peer). */
const PONG_STOP = -1;

/** Producer in the worker, consumer here: payloads per second through hardware/spsc-ring.ts, both spinning. */
async function ringFigure(peer: Peer, budgetMs: number): Promise<PrimitiveFigure> {
  const ring = SpscRing.create(1024 * 1024);
  const stopSab = new SharedArrayBuffer(64);
  let received = 0;
  const payloadsPerSecond = await peer.run({ op: 'ring-produce', ringSab: ring.sab, stopSab, payloadBytes: PAYLOAD_BYTES }, () => {
    let t0 = 0, now = 0;
    for (;;) {
      const view = ring.peek();
      if (!view || (received & 255) === 0) {
        now = performance.now();
        if (received > 0 && now - t0 >= budgetMs) break;
      }
      if (!view) continue;
      // The consumer checks the sequence number (so a lost or repeated payload would show) and frees the record.
      const seq = (view[0]! | (view[1]! << 8) | (view[2]! << 16) | (view[3]! << 24)) >>> 0;
      if (seq !== received) throw new Error(`ring delivered payload ${seq}, expected ${received}`);
      ring.pop();
      if (received === 0) t0 = performance.now();
      received++;
    }
    Atomics.store(new Int32Array(stopSab, 0, 1), 0, 1);
    return ((received - 1) * 1000) / (now - t0);
  });
  return figure('SPSC ring, 4 KiB payloads, worker → main', payloadsPerSecond / 1e6, 'M/s', 2.7, 3.3, 'higher',
    `hardware/spsc-ring.ts, 1 MiB ring, both sides spinning; consumer reads the sequence word, does not copy the payload; `
    + `${received} payloads; ${loadNote()}`);
}

/**
 * Atomics ping-pong on one word for `budgetMs`: this thread makes it odd, the peer makes it even again.
 * Returns each round trip in µs.
 */
function pingAtomics(sab: SharedArrayBuffer, budgetMs: number, sleep: boolean): Float64Array {
  const word = new Int32Array(sab, 0, 1);
  const roundTripUs: number[] = [];
  const start = performance.now();
  for (let even = 0; ; even += 2) {
    const t0 = performance.now();
    if (t0 - start >= budgetMs) break;
    Atomics.store(word, 0, even + 1);
    if (sleep) Atomics.notify(word, 0);
    while (Atomics.load(word, 0) === even + 1) if (sleep) Atomics.wait(word, 0, even + 1);
    roundTripUs.push((performance.now() - t0) * 1000);
  }
  Atomics.store(word, 0, PONG_STOP);
  Atomics.notify(word, 0);
  return Float64Array.from(roundTripUs);
}

/** p50 of the samples after the first 10 % (warm-up), with mean and p99 for the note. */
function summarise(samplesUs: Float64Array): { p50: number; p99: number; mean: number; n: number } {
  const kept = samplesUs.slice(Math.floor(samplesUs.length / 10)).sort();
  let sum = 0;
  for (const x of kept) sum += x;
  return { p50: percentile(kept, 50), p99: percentile(kept, 99), mean: sum / kept.length, n: kept.length };
}

async function handOffFigures(peer: Peer, budgetMs: number): Promise<PrimitiveFigure[]> {
  const waitSab = new SharedArrayBuffer(64);
  const wait = summarise(await peer.run({ op: 'pong-wait', sab: waitSab }, () => pingAtomics(waitSab, budgetMs, true)));

  // postMessage ping-pong on a dedicated channel; the peer echoes each message.
  const { port1, port2 } = new MessageChannel();
  await peer.run({ op: 'echo', port: port2 }, () => undefined, [port2]);
  const postUs: number[] = [];
  for (const start = performance.now(); ;) {
    const t0 = performance.now();
    if (t0 - start >= budgetMs) break;
    const echoed = once(port1, 'message');
    port1.postMessage(postUs.length);
    await echoed;
    postUs.push((performance.now() - t0) * 1000);
  }
  port1.postMessage('stop');
  port1.close();
  const post = summarise(Float64Array.from(postUs));

  // Spinning: timing each round would cost as much as the round, so time the whole run (after a warm-up).
  const spinSab = new SharedArrayBuffer(64);
  const spin = await peer.run({ op: 'pong-spin', sab: spinSab }, () => {
    const word = new Int32Array(spinSab, 0, 1);
    const warmupMs = budgetMs / 10;
    let rounds = 0, even = 0, t0 = performance.now(), measuring = false, now = t0;
    for (;; even += 2) {
      if ((even & 1023) === 0) {
        now = performance.now();
        if (!measuring && now - t0 >= warmupMs) { measuring = true; t0 = now; rounds = 0; }
        else if (measuring && now - t0 >= budgetMs) break;
      }
      Atomics.store(word, 0, even + 1);
      while (Atomics.load(word, 0) === even + 1) { /* spin */ }
      rounds++;
    }
    Atomics.store(word, 0, PONG_STOP);
    return { meanUs: ((now - t0) * 1000) / rounds, rounds };
  });

  const detail = (s: ReturnType<typeof summarise>): string =>
    `p50 shown; mean ${s.mean.toFixed(1)} µs, p99 ${s.p99.toFixed(1)} µs over ${s.n} rounds`;
  return [
    figure('Atomics.wait/notify ping-pong round trip', wait.p50, 'µs', 40, 70, 'lower', `main ↔ worker, both sleeping; ${detail(wait)}`),
    figure('postMessage ping-pong round trip', post.p50, 'µs', 40, 70, 'lower', `main ↔ worker on a MessageChannel; ${detail(post)}`),
    figure('spinning hand-off round trip (Atomics.load)', spin.meanUs, 'µs', 0.3, 0.3, 'lower', `main ↔ worker, both polling; mean over ${spin.rounds} rounds; ${loadNote()}`),
  ];
}

/**
 * How late a worker's timed Atomics.wait returns when nothing ends it early: the floor under the threads runtime's
 * latency injection, whose CPUs sleep so towards every deadline (a write waits through several such sleeps: P's, I's,
 * and the host's wake-up). Measured with the 1 ns timer slack the threads runtime gives its threads, and (Linux) again
 * with the kernel's default of 50 µs, to show what the setting buys (hardware/thread-policy.ts). The reference is the
 * 70–150 µs a final sleep was seen to overshoot on these 2-vCPU VMs under the default slack (ThreadTuning.spinUs); the
 * tail, which no spin margin covers, is in the note.
 */
async function timedSleepFigures(peer: Peer, count: number): Promise<PrimitiveFigure[]> {
  const sleepUs = 500;
  const sleeps = async (timerSlackNs: number): Promise<Float64Array> => {
    const outSab = new SharedArrayBuffer(count * 8);
    await peer.run({ op: 'timed-sleeps', outSab, sleepUs, count, timerSlackNs }, () => undefined);
    return new Float64Array(outSab).sort();
  };
  const linux = process.platform === 'linux';
  const late = await sleeps(linux ? DEFAULT_TIMER_SLACK_NS : 0);
  const over1Ms = late.filter((x) => x > 1000).length;
  const slackNote = linux ? `timer slack ${DEFAULT_TIMER_SLACK_NS} ns (the threads runtime's)` : 'timer slack as the OS set it';
  const out = [figure(`worker timed Atomics.wait ${sleepUs / 1000} ms: p99 lateness`, percentile(late, 99), 'µs', 0, 150, 'bound',
    `${count} sleeps, nothing else running in the process, ${slackNote}; p50 ${percentile(late, 50).toFixed(0)} µs, p99.9 ${percentile(late, 99.9).toFixed(0)} µs, `
    + `max ${late[late.length - 1]!.toFixed(0)} µs, ${over1Ms} (${((100 * over1Ms) / count).toFixed(2)} %) over 1 ms; ${loadNote()}`)];
  if (linux) {
    const byDefault = await sleeps(KERNEL_DEFAULT_TIMER_SLACK_NS);
    out.push(figure(`worker timed Atomics.wait ${sleepUs / 1000} ms, the kernel's default timer slack: p50 lateness`, percentile(byDefault, 50), 'µs', 0, 150, 'bound',
      `${count} sleeps with ${KERNEL_DEFAULT_TIMER_SLACK_NS / 1000} µs of slack, against p50 ${percentile(late, 50).toFixed(0)} µs with the threads runtime's ${DEFAULT_TIMER_SLACK_NS} ns `
      + `(the row above); p99 ${percentile(byDefault, 99).toFixed(0)} µs; ${loadNote()}`));
  }
  return out;
}

// ---------------------------------------------------------------- msgpackr

function msgpackrFigure(quick: boolean): PrimitiveFigure {
  // Configured as firmware/frames.ts configures its Packr.
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const tsBaseUs = Math.round(performance.timeOrigin * 1000);
  let seq = 0;
  const packUs = timeLoop(quick ? 300 : 1000, 10_000, (n) => {
    for (let i = 0; i < n; i++) { seq++; packr.pack({ seq, tsUs: tsBaseUs + seq * 13, lba: seq & 16383, blocks: 1 }); }
  });
  const packed = packr.pack({ seq: 123456, tsUs: tsBaseUs, lba: 77, blocks: 1 });
  const unpackUs = timeLoop(quick ? 150 : 500, 10_000, (n) => { for (let i = 0; i < n; i++) packr.unpack(packed); });
  return figure('msgpackr pack {seq, tsUs, lba, blocks}', 1 / packUs, 'M/s', 0.5, 1.4, 'higher',
    `one record per pack(), Packr({useRecords: false}) as in firmware/frames.ts; unpack ${(1 / unpackUs).toFixed(2)} M/s`);
}

// ---------------------------------------------------------------- delay accuracy

/** The timer leaves this much of a timer-plus-spin delay to the spin: setTimeout fires up to ~1–2 ms late. */
const SPIN_MARGIN_MS = 2;

/** Waits until `targetMs` after now with setTimeout for the bulk and a spin on performance.now for the rest. */
async function timerSpinDelay(targetMs: number): Promise<number> {
  const t0 = performance.now(), deadline = t0 + targetMs;
  const bulkMs = Math.floor(targetMs - SPIN_MARGIN_MS);
  if (bulkMs >= 1) await sleepMs(bulkMs);
  let now = performance.now();
  while (now < deadline) now = performance.now();
  return (now - deadline) * 1000;
}

async function setTimeoutDelay(targetMs: number): Promise<number> {
  const t0 = performance.now();
  await sleepMs(targetMs); // Node clamps delays below 1 ms to 1 ms
  return (performance.now() - t0 - targetMs) * 1000;
}

async function delayFigures(quick: boolean): Promise<PrimitiveFigure[]> {
  const targets = [{ ms: 0.1, samples: quick ? 300 : 2000 }, { ms: 1, samples: quick ? 200 : 1000 }, { ms: 10, samples: quick ? 40 : 200 }];
  const out: PrimitiveFigure[] = [];
  for (const [method, delay, boundUs, ref] of [
    ['timer+spin', timerSpinDelay, 10, `reference: within about 10 µs for targets ≥ 0.1 ms; timer for all but the last ${SPIN_MARGIN_MS} ms`],
    ['setTimeout', setTimeoutDelay, 1000, 'reference: only good from about 5 ms, read as lateness ≤ ~1 ms (≤ 20 % of 5 ms)'],
  ] as const) {
    for (const { ms, samples } of targets) {
      const errUs = new Float64Array(samples);
      for (let i = 0; i < samples; i++) errUs[i] = await delay(ms);
      errUs.sort();
      const note = `actual − target over ${samples} delays; ${ref}`;
      out.push(figure(`delay ${method} ${ms} ms: p50 error`, percentile(errUs, 50), 'µs', 0, boundUs, 'bound', note));
      out.push(figure(`delay ${method} ${ms} ms: p99 error`, percentile(errUs, 99), 'µs', 0, boundUs, 'bound', note));
    }
  }
  return out;
}

// ---------------------------------------------------------------- all of it

export async function measurePrimitives(o: { quick: boolean }): Promise<PrimitiveFigure[]> {
  const figures: PrimitiveFigure[] = [];
  figures.push(...copyFigures(o.quick));
  figures.push(msgpackrFigure(o.quick));
  const peer = await Peer.start();
  try {
    figures.push(await ringFigure(peer, o.quick ? 1000 : 4000));
    figures.push(...await handOffFigures(peer, o.quick ? 500 : 2000));
    figures.push(...await timedSleepFigures(peer, o.quick ? 1000 : 5000));
  } finally {
    await peer.close();
  }
  figures.push(...await delayFigures(o.quick));
  return figures;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick'), json = process.argv.includes('--json');
  const t0 = performance.now();
  const figures = await measurePrimitives({ quick });
  if (json) console.log(JSON.stringify(figures, null, 2));
  else {
    console.table(figures.map((f) => ({ primitive: f.name, value: f.value, unit: f.unit, reference: f.reference, ratio: f.ratio })));
    let lastNote = '';
    figures.forEach((f, i) => { // notes by table index; a note repeated from the row above is left out
      if (f.note && f.note !== lastNote) console.log(`[${i}] ${f.note}`);
      lastNote = f.note ?? '';
    });
    console.log(`measured in ${((performance.now() - t0) / 1000).toFixed(1)} s${quick ? ' (quick)' : ''}; ${loadNote()} on ${availableParallelism()} CPUs`);
  }
}
