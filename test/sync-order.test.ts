// Synchronous copies to overlapping blocks (§2, Fig. 3): a host may have two writes to the same blocks in flight at
// once; their copies can take different paths of the link and arrive in the other order. The destination writes a
// block only with a copy newer (a later tag) than the one that last wrote it, so in duplex it ends with what the
// source holds. Before, 25 of 50 such pairs of writes left the destination with the older data.

import { describe, expect, it } from 'vitest';
import { readDefinitionInformation } from '../firmware/definition-info.ts';
import { PairState } from '../firmware/pair-state.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { syncPair } from './sync-pair-rig.ts';
import { createCommand, ok, twoSystems, waitFor } from './fixtures.ts';

describe('synchronous copies to overlapping blocks arriving out of order', () => {
  it('the older copy, arriving second, does not write over the newer: the destination ends as the source, and both writes are acknowledged', () => {
    const { hwP, hwI, P, I, hostWrite, block } = syncPair();
    const older = hostWrite(5, 1), newer = hostWrite(5, 2);
    expect(block(hwP, 5)).toBe(2);
    I.onFrame(1, newer);
    I.onFrame(1, older);
    expect(block(hwI, 5)).toBe(2);
    for (const s of hwI.sent.splice(0)) P.onFrame(2, s.frame);
    expect(hwP.completions.map((c) => c.status)).toEqual(['ok', 'ok']);
    expect(readDefinitionInformation(hwP.controlMemory)[0]!.state).toBe(PairState.Duplex);
  });

  it('a partly overtaken copy writes only the blocks no newer copy wrote', () => {
    const { hwP, hwI, P, I, hostWrite, block } = syncPair();
    const older = hostWrite(4, 1, 4), newer = hostWrite(5, 2);
    I.onFrame(1, newer);
    I.onFrame(1, older);
    expect([4, 5, 6, 7].map((b) => block(hwI, b))).toEqual([1, 2, 1, 1]);
    expect([4, 5, 6, 7].map((b) => block(hwP, b))).toEqual([1, 2, 1, 1]);
    for (const s of hwI.sent.splice(0)) P.onFrame(2, s.frame);
    expect(hwP.completions.map((c) => c.status)).toEqual(['ok', 'ok']);
  });

  it('copies in order write as before, and a later write to the same block still goes over an earlier one', () => {
    const { hwI, I, hostWrite, block } = syncPair();
    I.onFrame(1, hostWrite(5, 1));
    I.onFrame(1, hostWrite(5, 2));
    expect(block(hwI, 5)).toBe(2);
    I.onFrame(1, hostWrite(5, 3));
    expect(block(hwI, 5)).toBe(3);
  });

  it('sim, a link of two paths 300 µs apart: 50 pairs of overlapping writes in flight at once leave source and destination equal (25 did not)', async () => {
    const w = new SimWorld(twoSystems({ bandwidthMBps: 100, distanceKm: 10, dataBytes: 1 << 20, paths: 2 }), 3);
    await ok(w, 'A', createCommand('sync', 'none', 'data'));
    await waitFor(w, 'A', 'duplex');
    const fill = (v: number) => new Uint8Array(4096).fill(v);
    for (let i = 0; i < 50; i++) {
      // An odd number of frames before every other pair, so that the older copy takes either path.
      if (i % 2) await w.hostIo('hostA', { op: 'write', lvol: 0, lba: 9, blocks: 1, data: fill(7) });
      const rs = await Promise.all([1, 2].map((k) => w.hostIo('hostA', { op: 'write', lvol: 0, lba: 5, blocks: 1, data: fill(2 * i + k) })));
      expect(rs.map((r) => r.status)).toEqual(['ok', 'ok']);
      expect(w.volume('B', 0)[5 * 4096], `pair ${i}`).toBe(w.volume('A', 0)[5 * 4096]);
    }
    expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
    await w.close();
  });
});
