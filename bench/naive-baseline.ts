// The naive baseline of the cascade benchmark: replicated 4 KiB writes per second at 0 km and a given queue
// depth, with one postMessage per write and per acknowledgement — what the threads runtime's shared-memory
// rings are measured against (the study reports the emulator's figure beside this one as a ratio).
//
// Three worker threads P, I, R (bench/workers/naive-node.ts), each with a 64 MiB data volume in a
// SharedArrayBuffer, I and R also a 64 MiB journal area. This thread is the host: it keeps `queueDepth` writes
// outstanding to P and counts P's acknowledgements after a 500 ms warm-up. P → I is synchronous (P acknowledges
// the host only after I acknowledged); I → R is asynchronous (I journals the write, acknowledges, and ships the
// entry to R). No latency is injected. Printed figures only; nothing here asserts a rate.
//
// Run: node --import tsx bench/naive-baseline.ts [--duration-ms 3000] [--queue-depth 32] [--json]

import { once } from 'node:events';
import { availableParallelism, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { NaiveNodeData, NaiveWrite } from './workers/naive-node.ts';
import { prefaultPages } from '../hardware/disk-array.ts';

const BLOCK_BYTES = 4096;
const VOLUME_BYTES = 64 * 1024 * 1024;
const JOURNAL_BYTES = 64 * 1024 * 1024;
const VOLUME_BLOCKS = VOLUME_BYTES / BLOCK_BYTES;
/** Writes before the counted window: the same 500 ms the emulator's replicated writes get (bench/replicated-writes.ts callers). */
const NAIVE_WARMUP_MS = 500;

async function startNode(data: Omit<NaiveNodeData, 'entry'>): Promise<Worker> {
  const ports = [data.toI, data.toP, data.toR].filter((p) => p !== undefined);
  const worker = new Worker(new URL('./workers/ts-entry.mjs', import.meta.url), {
    workerData: { ...data, entry: new URL('./workers/naive-node.ts', import.meta.url).href } satisfies NaiveNodeData,
    transferList: ports,
  });
  const [first] = await once(worker, 'message') as [unknown];
  if (first !== 'ready') throw new Error(`naive ${data.role} said ${String(first)}`);
  return worker;
}

export async function naiveCascadeWritesPerSecond(o: { durationMs: number; queueDepth: number }): Promise<{ writesPerSecond: number; writes: number }> {
  const pi = new MessageChannel(), ir = new MessageChannel();
  // Committed before the run, as the emulator's disk arrays are (prefaultMemory): otherwise the baseline would pay a
  // page fault per first write of each page in its window (a short window most of all), and the ratio would flatter us.
  const sab = (bytes: number): SharedArrayBuffer => { const b = new SharedArrayBuffer(bytes); prefaultPages(b); return b; };
  const nodes = await Promise.all([
    startNode({ role: 'P', volumeSab: sab(VOLUME_BYTES), toI: pi.port1 }),
    startNode({ role: 'I', volumeSab: sab(VOLUME_BYTES), journalSab: sab(JOURNAL_BYTES), toP: pi.port2, toR: ir.port1 }),
    startNode({ role: 'R', volumeSab: sab(VOLUME_BYTES), journalSab: sab(JOURNAL_BYTES), toI: ir.port2 }),
  ]);
  const p = nodes[0];
  try {
    const data = new Uint8Array(BLOCK_BYTES).fill(0xa5);
    const stamp = new DataView(data.buffer);
    let nextTag = 0, outstanding = 0, acknowledged = 0, counting = false, sending = true;
    let countStartMs = 0, countEndMs = 0;

    const send = (): void => {
      const tag = nextTag++;
      stamp.setUint32(0, tag, true); // postMessage clones `data` now, so reusing it for the next write is safe
      p.postMessage({ tag, lba: tag % VOLUME_BLOCKS, data } satisfies NaiveWrite);
      outstanding++;
    };

    await new Promise<void>((resolve, reject) => {
      for (const n of nodes) n.on('error', reject);
      p.on('message', () => {
        outstanding--;
        if (counting) acknowledged++;
        if (sending) send();
        else if (outstanding === 0) resolve();
      });
      for (let i = 0; i < o.queueDepth; i++) send();
      setTimeout(() => {
        counting = true;
        countStartMs = performance.now();
        setTimeout(() => {
          counting = false;
          countEndMs = performance.now();
          sending = false; // then wait for the writes in flight, so nothing is torn down under them
        }, o.durationMs);
      }, NAIVE_WARMUP_MS);
    });

    return { writesPerSecond: (acknowledged * 1000) / (countEndMs - countStartMs), writes: acknowledged };
  } finally {
    await Promise.all(nodes.map((n) => n.terminate()));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const durationMs = arg('--duration-ms', 3000), queueDepth = arg('--queue-depth', 32);
  const r = await naiveCascadeWritesPerSecond({ durationMs, queueDepth });
  if (process.argv.includes('--json')) console.log(JSON.stringify({ durationMs, queueDepth, ...r }));
  else console.log(`naive cascade (one postMessage per write and per acknowledgement), 0 km, QD ${queueDepth}: `
    + `${Math.round(r.writesPerSecond).toLocaleString('en')} replicated 4 KiB writes/s (${r.writes} writes in ${durationMs} ms; `
    + `1-min load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} CPUs)`);
}
