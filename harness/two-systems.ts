// A two-system world, A → B over one link "L" (a host on each), and the management calls that make and watch its one
// pair (7): for firmware scenarios on the sim runtime, in the tests (test/fixtures.ts) and the benchmarks that need a
// single pair over one link (bench/sync-loss.ts).

import type { Command, CommandReply, PairView } from '../firmware/commands.ts';
import type { SimWorld } from './runtime-sim.ts';
import type { Topology } from './topology.ts';

export const A = 0, B = 1, PAIR = 7;

export function twoSystems(o: { bandwidthMBps?: number; distanceKm?: number; dataBytes?: number; paths?: number; jitterUs?: number; lossRate?: number; duplicateRate?: number } = {}): Topology {
  const data = o.dataBytes ?? 1024 * 1024;
  const sys = (name: string, id: number) => ({
    name, id, cacheSlots: 64,
    lvols: [{ name: `data${name}`, kind: 'data' as const, sizeBytes: data }, { name: `jnl${name}`, kind: 'journal' as const, sizeBytes: 2 * 1024 * 1024 }],
  });
  return {
    name: 'A–B', systems: [sys('A', A), sys('B', B)],
    links: [{ name: 'L', a: 'A', b: 'B', distanceKm: o.distanceKm ?? 10, bandwidthMBps: o.bandwidthMBps ?? 1, jitterUs: o.jitterUs ?? 0,
      paths: Array.from({ length: o.paths ?? 1 }, (_, i) => ({ extraDelayUs: i * 300 })), lossRate: o.lossRate, duplicateRate: o.duplicateRate }],
    hosts: [{ name: 'hostA', storage: 'A', port: 0 }, { name: 'hostB', storage: 'B', port: 1 }],
    hostLinkUs: 10,
  };
}

export function createCommand(copyType: 'sync' | 'async', initialCopy: 'full' | 'none' | 'defer' = 'full', fence: 'data' | 'never' = 'never'): Command {
  return {
    op: 'create', initialCopy,
    pair: { pairId: PAIR, localLvol: 0, remoteStorageId: B, remoteLvol: 0, copyType, fence, ...(copyType === 'async' ? { journalLvol: 1, remoteJournalLvol: 1 } : {}) },
  };
}

export async function ok(world: SimWorld, system: string, cmd: Command): Promise<CommandReply & { ok: true }> {
  const r = await world.command(system, cmd);
  if (!r.ok) throw new Error(`${cmd.op} at ${system} failed: ${r.error}`);
  return r;
}

export async function query(world: SimWorld, system: string): Promise<PairView> {
  const r = await ok(world, system, { op: 'query', pairId: PAIR });
  return r.pair!;
}

export async function waitFor(world: SimWorld, system: string, state: string, timeoutUs = 60_000_000): Promise<PairView> {
  const start = world.nowUs();
  for (;;) {
    const v = await query(world, system);
    if (v.state === state) return v;
    if (world.nowUs() - start > timeoutUs) throw new Error(`pair at ${system} still ${v.state}, waiting for ${state}`);
    await world.sleep(1000);
  }
}
