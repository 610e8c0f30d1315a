// A two-system world (A → B over one link) for firmware tests on the sim runtime (harness/two-systems.ts), and ways
// to put a pair into each state of Fig. 3 / Fig. 4 and hold it there long enough to send it a command.

import { SimWorld } from '../harness/runtime-sim.ts';
import { PAIR, createCommand, ok, twoSystems, waitFor } from '../harness/two-systems.ts';

export { A, B, PAIR, createCommand, ok, query, twoSystems, waitFor } from '../harness/two-systems.ts';

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
