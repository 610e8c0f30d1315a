// Formation copying (initial, differential, full), resynchronisation after reverse, host writes during a
// copy, fence levels, S-VOL write protection, and the journal-full path — on a two-system sim world.

import { describe, expect, it } from 'vitest';
import { isConsistentDestination } from '../firmware/definition-info.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { createCommand, ok, PAIR, query, twoSystems, waitFor, write } from './fixtures.ts';

const same = (w: SimWorld) => Buffer.compare(w.volume('A', 0), w.volume('B', 0)) === 0;

async function duplexPair(copyType: 'sync' | 'async', fence: 'data' | 'never' = 'never', bandwidthMBps = 100) {
  const w = new SimWorld(twoSystems({ bandwidthMBps }), 7);
  for (let t = 0; t < 16; t++) await write(w, 'hostA', t * 16 + 3, 0x40 + t);
  await ok(w, 'A', createCommand(copyType, 'full', fence));
  const v = await waitFor(w, 'A', 'duplex');
  return { w, v };
}

describe('formation copying', () => {
  for (const copyType of ['sync', 'async'] as const) {
    it(`${copyType}: S1070 (¶0150) create with initialCopy none: duplex at once, and the destination holds a consistent image from then on`, async () => {
      const w = new SimWorld(twoSystems(), 7);
      await ok(w, 'A', createCommand(copyType, 'none'));
      await waitFor(w, 'B', 'duplex');
      const dest = () => w.definitionInformation('B').find((p) => p.pairId === PAIR)!;
      expect(isConsistentDestination(dest())).toBe(true);
      for (let t = 0; t < 8; t++) await write(w, 'hostA', t * 16, 0x30 + t);
      await w.sleep(500_000); // the journal applied at B
      expect(isConsistentDestination(dest())).toBe(true);
      expect(same(w)).toBe(true);
      await w.close();
    });
  }

  for (const copyType of ['sync', 'async'] as const) {
    it(`${copyType}: initial copying copies every track, then B equals A`, async () => {
      const { w, v } = await duplexPair(copyType);
      expect([v.lastFormationCopy, v.lastFormationTracksCopied]).toEqual(['initial', 16]);
      await waitFor(w, 'B', 'duplex');
      expect(same(w)).toBe(true);
      await w.close();
    });

    it(`${copyType}: differential copying copies only the tracks written while suspended; full copies all`, async () => {
      const { w } = await duplexPair(copyType);
      await ok(w, 'A', { op: 'suspend', pairId: PAIR });
      await waitFor(w, 'A', 'suspend');
      for (const lba of [0, 1, 17, 200]) await write(w, 'hostA', lba, 0x99); // tracks 0, 1, 12
      expect((await query(w, 'A')).dirtyTracks).toBe(3);
      expect(same(w)).toBe(false);
      await ok(w, 'A', { op: 'resync', pairId: PAIR });
      const v = await waitFor(w, 'A', 'duplex');
      expect([v.lastFormationCopy, v.lastFormationTracksCopied]).toEqual(['differential', 3]);
      await w.sleep(50_000);
      expect(same(w)).toBe(true);
      await ok(w, 'A', { op: 'suspend', pairId: PAIR });
      await waitFor(w, 'A', 'suspend');
      await ok(w, 'A', { op: 'resync', pairId: PAIR, full: true });
      const f = await waitFor(w, 'A', 'duplex');
      expect([f.lastFormationCopy, f.lastFormationTracksCopied]).toEqual(['full', 16]);
      await w.close();
    });

    it(`${copyType}: after reverse, resync copies the union of both sides' differences and nothing else`, async () => {
      const { w } = await duplexPair(copyType);
      await ok(w, 'A', { op: 'suspend', pairId: PAIR });
      await waitFor(w, 'B', 'suspend');
      await write(w, 'hostA', 20, 0x11); // track 1 changed at A, never copied
      expect((await write(w, 'hostB', 100, 0x22)).status).toBe('ok'); // B writable once suspended; track 6
      await ok(w, 'B', { op: 'reverse', pairId: PAIR });
      expect((await query(w, 'B')).role).toBe('source');
      await ok(w, 'B', { op: 'resync', pairId: PAIR });
      const v = await waitFor(w, 'B', 'duplex');
      expect(v.lastFormationTracksCopied).toBe(2);
      await w.sleep(50_000);
      expect(same(w)).toBe(true);
      expect(w.volume('A', 0)[100 * 4096]).toBe(0x22);
      expect(w.volume('A', 0)[20 * 4096]).toBe(0); // B's track 1 won: A's write that B never had is undone
      await w.close();
    });

    it(`${copyType}: a resynchronisation converges while the host keeps writing`, async () => {
      const { w } = await duplexPair(copyType, 'never', 4);
      await ok(w, 'A', { op: 'suspend', pairId: PAIR });
      await waitFor(w, 'A', 'suspend');
      for (let i = 0; i < 64; i++) await write(w, 'hostA', (i * 37) % 256, i);
      await ok(w, 'A', { op: 'resync', pairId: PAIR });
      let state = '';
      for (let i = 0; state !== 'duplex' && i < 5000; i++) {
        await write(w, 'hostA', (i * 53) % 256, i & 0xff);
        await w.sleep(2000); // ~2 MB/s of writes: below the link's 4 MB/s, so the journal keeps up
        const v = await query(w, 'A');
        state = v.state;
        expect(v.state, v.failureCause).not.toBe('failure suspend');
      }
      expect(state).toBe('duplex');
      await w.sleep(200_000);
      expect(same(w)).toBe(true);
      await w.close();
    });
  }
});

describe('host access by pair state and fence level', () => {
  it('the destination volume is read-only while the pair copies, and says why', async () => {
    const { w } = await duplexPair('sync');
    expect((await write(w, 'hostB', 5, 1)).status).toBe('write-protected');
    expect((await w.hostIo('hostB', { op: 'read', lvol: 0, lba: 3, blocks: 1 })).data![0]).toBe(0x40);
    await w.close();
  });

  it('fence level data refuses writes the synchronous pair cannot copy; never accepts them into the bitmap', async () => {
    for (const fence of ['data', 'never'] as const) {
      const { w } = await duplexPair('sync', fence);
      await w.fault({ kind: 'cut-link', link: 'L' });
      const r = await write(w, 'hostA', 9, 0x77);
      expect(r.status).toBe(fence === 'data' ? 'fenced' : 'ok');
      const v = await query(w, 'A');
      expect([v.state, v.failureCause]).toEqual(['failure suspend', 'link down']);
      expect((await write(w, 'hostA', 200, 1)).status).toBe(fence === 'data' ? 'fenced' : 'ok');
      await w.close();
    }
  });

  it('bad host I/O gets a clear status and changes nothing', async () => {
    const { w } = await duplexPair('sync');
    const before = w.volume('A', 0).slice();
    expect((await w.hostIo('hostA', { op: 'write', lvol: 0, lba: 256, blocks: 1, data: new Uint8Array(4096) })).status).toBe('out-of-range');
    expect((await w.hostIo('hostA', { op: 'write', lvol: 9, lba: 0, blocks: 1, data: new Uint8Array(4096) })).status).toBe('unknown-lvol');
    expect((await w.hostIo('hostA', { op: 'write', lvol: 0, lba: 0, blocks: 1, data: new Uint8Array(100) })).status).toBe('out-of-range');
    expect(Buffer.compare(w.volume('A', 0), before)).toBe(0);
    await w.close();
  });
});

describe('journal full', () => {
  it('suspends the pair with the bitmap taking over, loses no acknowledged write, and resynchronises', async () => {
    const { w } = await duplexPair('async', 'never', 1); // 1 MB/s: the 2 MiB journal fills faster than it drains
    let acked = 0;
    for (let i = 0; i < 1500; i++) if ((await write(w, 'hostA', i % 256, (i % 250) + 1)).status === 'ok') acked++;
    expect(acked).toBe(1500); // the host never saw the journal fill
    const v = await query(w, 'A');
    expect([v.state, v.failureCause]).toEqual(['failure suspend', 'journal full']);
    expect(v.dirtyTracks).toBeGreaterThan(0);
    expect(v.journalEntries).toBe(0); // freed: the bitmap holds what was not applied
    await w.sleep(5_000_000);
    await ok(w, 'A', { op: 'resync', pairId: PAIR });
    await waitFor(w, 'A', 'duplex', 600_000_000);
    await w.sleep(2_000_000);
    expect(same(w)).toBe(true);
    await w.close();
  });
});
