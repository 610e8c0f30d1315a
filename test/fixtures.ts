// A two-system world (A → B over one link) for firmware tests on the sim runtime, and ways to put a pair
// into each state of Fig. 3 / Fig. 4 and hold it there long enough to send it a command.

import type { Command, CommandReply, PairView } from '../firmware/commands.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import type { Topology } from '../harness/topology.ts';

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

export async function write(world: SimWorld, host: string, lba: number, fill: number, blocks = 1) {
  return world.hostIo(host, { op: 'write', lvol: 0, lba, blocks, data: new Uint8Array(blocks * 4096).fill(fill) });
}

/**
 * Builds a world and drives pair 7 (A → B) into `state`, returning while it is still in that state on both
 * sides (B mirrors A one link latency later).
 */
export async function pairIn(state: string, copyType: 'sync' | 'async', seed = 1): Promise<SimWorld> {
  const w = await drive(state, copyType, seed);
  // (Not for suspending: B learns of it only after the journal backlog queued ahead of the state frame.)
  if (state !== 'simplex' && state !== 'suspending') await waitFor(w, 'B', state);
  return w;
}

async function drive(state: string, copyType: 'sync' | 'async', seed: number): Promise<SimWorld> {
  const w = new SimWorld(twoSystems(), seed);
  if (state === 'simplex') { await ok(w, 'A', createCommand(copyType, 'defer')); return w; }
  await ok(w, 'A', createCommand(copyType, 'full'));
  if (state === 'initial copying') return w;
  await waitFor(w, 'A', 'duplex');
  if (state === 'duplex') return w;
  if (state === 'failure suspend') {
    await w.fault({ kind: 'cut-link', link: 'L' });
    await waitFor(w, 'A', 'failure suspend');
    await w.fault({ kind: 'heal-link', link: 'L' }); // repaired, but the pair stays failure suspend until resync
    return w;
  }
  if (state === 'suspending') {
    // A backlog that takes the 1 MB/s link a while to ship.
    for (let i = 0; i < 150; i++) await write(w, 'hostA', i, i + 1);
    await ok(w, 'A', { op: 'drain', pairId: PAIR });
    return w;
  }
  await ok(w, 'A', { op: 'suspend', pairId: PAIR });
  await waitFor(w, 'A', 'suspend');
  if (state === 'suspend') return w;
  if (state === 'duplex pending') {
    for (let t = 0; t < 16; t++) await write(w, 'hostA', t * 16, t + 1);
    await ok(w, 'A', { op: 'resync', pairId: PAIR });
    return w;
  }
  throw new Error(`no way to reach ${state}`);
}
