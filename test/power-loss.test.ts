// SPEC §7.4: definition information and pair states survive what the hardware survives. A power loss stops
// the controller and empties its cache; disks and control memory keep everything the firmware needs, and a
// track whose synchronous copy was in flight is copied again after the restart.

import { describe, expect, it } from 'vitest';
import { SimWorld } from '../harness/runtime-sim.ts';
import { createCommand, ok, PAIR, query, twoSystems, waitFor } from './fixtures.ts';

describe('power loss and restart of a storage system', () => {
  it('keeps the pair table, marks the pair failure suspend (power loss), and resync repairs an in-flight write', async () => {
    const w = new SimWorld(twoSystems({ bandwidthMBps: 100, distanceKm: 200 }), 11); // 2 ms round trip
    await ok(w, 'A', createCommand('sync', 'full', 'never'));
    await waitFor(w, 'A', 'duplex');
    const before = w.definitionInformation('A')[0]!;
    // A write whose synchronous copy is in flight when the power goes: never acknowledged to the host.
    const io = w.hostIo('hostA', { op: 'write', lvol: 0, lba: 77, blocks: 1, data: new Uint8Array(4096).fill(0xab) });
    await w.sleep(300); // stored at A and sent, not yet acknowledged by B
    await w.fault({ kind: 'power-loss', system: 'A' });
    expect((await io).status).toBe('not-ready');
    expect(w.isUp('A')).toBe(false);
    expect(w.definitionInformation('A')[0]).toEqual(before); // control memory is readable while A is down
    expect((await w.command('A', { op: 'query', pairId: PAIR })).ok).toBe(false);
    await w.fault({ kind: 'power-on', system: 'A' });
    const after = await query(w, 'A');
    expect([after.state, after.failureCause, after.role, after.remoteStorageId, after.fence]).toEqual(['failure suspend', 'power loss', 'source', 1, 'never']);
    expect(after.dirtyTracks).toBe(1); // the track of the unacknowledged write, from the pending bitmap
    await ok(w, 'A', { op: 'resync', pairId: PAIR });
    const v = await waitFor(w, 'A', 'duplex');
    expect(v.lastFormationTracksCopied).toBe(1);
    await w.sleep(10_000);
    expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
    await w.close();
  });

  it('an asynchronous source keeps its journal across a restart and folds it into the bitmap', async () => {
    const w = new SimWorld(twoSystems({ bandwidthMBps: 0.5 }), 12);
    await ok(w, 'A', createCommand('async', 'full'));
    await waitFor(w, 'A', 'duplex', 120_000_000);
    for (let i = 0; i < 40; i++) await w.hostIo('hostA', { op: 'write', lvol: 0, lba: i * 6, blocks: 1, data: new Uint8Array(4096).fill(i + 1) });
    expect(w.journals('A')[0]!.entries).toBeGreaterThan(10); // a backlog on the slow link
    await w.fault({ kind: 'power-loss', system: 'A' });
    await w.fault({ kind: 'power-on', system: 'A' });
    const v = await query(w, 'A');
    expect([v.state, v.failureCause, v.journalEntries]).toEqual(['failure suspend', 'power loss', 0]);
    expect(v.dirtyTracks).toBeGreaterThan(0);
    await ok(w, 'A', { op: 'resync', pairId: PAIR });
    await waitFor(w, 'A', 'duplex', 120_000_000);
    await w.sleep(2_000_000);
    expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
    await w.close();
  });
});
