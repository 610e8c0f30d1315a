// The emulator's own speed: replicated 4 KiB writes per second through the cascade P →sync I →async R of
// embodiment 1 on the threads runtime, at QD writes outstanding — with no latency injected anywhere (0 km links, a
// 0 µs host line), like the naive postMessage baseline it is reported beside (bench/naive-baseline.ts). The
// study's matrix cell for the cascade at 0 km keeps its 20 µs host line; this measures the emulator alone.
// Prints nothing; bench/cascade-probe.ts is its command line.

import { ThreadsWorld } from '../harness/runtime-threads.ts';
import { CopyControlProgram, OperationsLog } from '../harness/copy-control.ts';
import { Host } from '../harness/host.ts';
import { formPair, initialCopying, PAIR_PI } from '../harness/routines/embodiment1.ts';
import { embodiment1Topology, DATA_LVOL } from '../harness/topology.ts';
import type { ThreadTuning } from '../hardware/thread-cpu.ts';

/**
 * Which pairs the writes go through: the cascade P →sync I →async R (the figure the study reports), the synchronous
 * pair P → I alone, or none (host → P only). The hops one at a time show where a replicated write's CPU goes.
 */
export type ReplicatedWritesPairs = 'cascade' | 'sync' | 'none';
export const REPLICATED_WRITES_PAIRS: readonly ReplicatedWritesPairs[] = ['cascade', 'sync', 'none'];

export interface ReplicatedWritesOptions {
  queueDepth: number;
  /** Default 'cascade'. */
  pairs?: ReplicatedWritesPairs;
  durationMs: number;
  /** Writes before the measured window, so V8 has compiled the hot paths. */
  warmupMs: number;
  distanceKm?: number;
  tuning?: Partial<ThreadTuning>;
  /** Called when the measured window starts and when it ends (the probe reads counters there). */
  onWindow?: (world: ThreadsWorld, edge: 'start' | 'end', writes: number) => void;
}

export interface ReplicatedWrites {
  writesPerSecond: number;
  writes: number;
  /** CPU time of the whole process (host, P, I, R, V8's helper threads) per write in the window. */
  cpuUsPerWrite: number;
  kernelUsPerWrite: number;
}

export async function replicatedCascadeWritesPerSecond(o: ReplicatedWritesOptions): Promise<ReplicatedWrites> {
  const km = o.distanceKm ?? 0;
  const t = embodiment1Topology({ s1DistanceKm: km, s2DistanceKm: km, dataVolumeBytes: 64 << 20, journalVolumeBytes: 64 << 20, paths: 1, jitterUs: 0 });
  t.hostLinkUs = 0;
  const w = await ThreadsWorld.create(t, 1, { tuning: o.tuning, prefaultMemory: true });
  try {
    const hostP = new Host(w, '100P');
    const program = new CopyControlProgram(w, hostP, new OperationsLog(), 'A2');
    const pairs = o.pairs ?? 'cascade';
    if (pairs === 'cascade') await initialCopying(program);
    else if (pairs === 'sync') await formPair(program, 'S100', PAIR_PI, 'P', 'I', 'sync', 'data');
    await hostP.stop();
    // Why a write could fail (e.g. a partner timeout when the machine is overloaded): the pair-state changes seen.
    const failures: string[] = [];
    w.onEvent((e) => { if (e.event.type === 'pair-state') failures.push(`${e.system} pair ${e.event.pairId} ${e.event.from} → ${e.event.to} (${e.event.cause})`); });
    const data = new Uint8Array(4096).fill(3);
    const qd = o.queueDepth;
    let n = 0, counting = false, stop = false, t0 = 0, t1 = 0;
    let cpu0 = process.cpuUsage(), cpu: NodeJS.CpuUsage = { user: 0, system: 0 };
    const begin = performance.now();
    await Promise.all(Array.from({ length: qd }, async (_, q) => {
      let lba = q;
      while (!stop) {
        const r = await w.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba: lba = (lba + qd) % 16384, blocks: 1, data });
        if (r.status !== 'ok') throw new Error(`write ${r.status}: ${failures.join('; ') || 'no pair-state change reported'}`);
        if (counting) n++;
        const now = performance.now();
        if (!counting && !stop && now - begin >= o.warmupMs) {
          counting = true; t0 = now; cpu0 = process.cpuUsage(); o.onWindow?.(w, 'start', 0);
        } else if (counting && now - t0 >= o.durationMs) {
          counting = false; stop = true; t1 = now; cpu = process.cpuUsage(cpu0); o.onWindow?.(w, 'end', n);
        }
      }
    }));
    return { writesPerSecond: (n * 1000) / (t1 - t0), writes: n, cpuUsPerWrite: (cpu.user + cpu.system) / n, kernelUsPerWrite: cpu.system / n };
  } finally {
    await w.close();
  }
}
