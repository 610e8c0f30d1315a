// Synchronous copies over a lossy link (§2, Fig. 3): a copy (or its acknowledgement) lost on the wire goes again under
// the same tag once the pair's retransmission wait has passed, so the host's write completes and the pair stays in
// duplex, as a real link's transport would make it. Before, the host waited out the 1 s copy timeout and the pair
// went to failure suspend ("copy failed"). What makes a resend safe is tested here too: the copy generation that a
// resync advances (a copy from before it is refused), and an acknowledgement held by inflow control that a resend does
// not overtake.

import { describe, expect, it } from 'vitest';
import { readDefinitionInformation, readJournalRecords } from '../firmware/definition-info.ts';
import { decodeControl, decodeFrame, encodeControl, encodeFrame, encodeJournalBatch, FrameType, type WireDefinition } from '../firmware/frames.ts';
import { PairState } from '../firmware/pair-state.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import type { World } from '../harness/world.ts';
import { StubHardware } from './stub-hardware.ts';
import { syncPair } from './sync-pair-rig.ts';
import { createCommand, ok, query, twoSystems, waitFor } from './fixtures.ts';

const logs = (hw: StubHardware, re: RegExp) => hw.events.filter((e) => e.type === 'log' && re.test(e.message));

describe('synchronous copies sent again', () => {
  it('a lost copy goes again under the same tag after the first wait (200 ms, no round trip measured yet), then after twice that; the host write completes and the pair stays duplex', () => {
    const { hwP, hwI, I, hostWrite, advanceP, deliverAcks, block, stateAt } = syncPair();
    const lost = hostWrite(3, 0x33);
    expect(advanceP(190_000)).toHaveLength(0);
    const again = advanceP(20_000);
    expect(again).toHaveLength(1);
    expect(decodeFrame(again[0]!).tag).toBe(decodeFrame(lost).tag);
    expect(logs(hwP, /synchronous copy tag \d+ .*sent again \(1\)/)).toHaveLength(1);
    expect(advanceP(380_000)).toHaveLength(0); // the wait doubled: due at 600 ms
    const third = advanceP(20_000);
    expect(third).toHaveLength(1);
    I.onFrame(1, third[0]!);
    expect(block(hwI, 3)).toBe(0x33);
    expect(deliverAcks()).toBe(1);
    expect(hwP.completions.map((c) => c.status)).toEqual(['ok']);
    expect(stateAt(hwP)).toBe(PairState.Duplex);
  });

  it('a lost acknowledgement: the copy sent again is answered again (not written twice, nor over a newer write), and each host write completes once', () => {
    const { hwP, hwI, I, hostWrite, advanceP, deliverAcks, block } = syncPair();
    I.onFrame(1, hostWrite(3, 0x44));
    hwI.sent.length = 0; // its acknowledgement is lost
    I.onFrame(1, hostWrite(3, 0x45)); // a newer write to the block, answered
    expect(deliverAcks()).toBe(1);
    // That answer measured a round trip of 0 (the stub carries frames at once): the wait is its floor, 20 ms.
    expect(advanceP(15_000)).toHaveLength(0);
    const again = advanceP(10_000);
    expect(again).toHaveLength(1);
    I.onFrame(1, again[0]!);
    expect(block(hwI, 3)).toBe(0x45); // the duplicate neither wrote again nor went over the newer write
    const answers = hwI.sent.filter((x) => x.frame[0] === FrameType.SyncAck).map((x) => decodeFrame(x.frame));
    expect(answers.map((a) => [a.status, a.tag])).toEqual([[0, decodeFrame(again[0]!).tag]]);
    expect(deliverAcks()).toBe(1);
    expect(hwP.completions.map((c) => c.status)).toEqual(['ok', 'ok']);
    expect(advanceP(2_000_000)).toHaveLength(0); // answered: nothing goes again
    expect(logs(hwI, /dropped/)).toEqual([]);
  });

  it('one copy goes again per tick, oldest first, and the wait doubles each time: copies queued on a slow link are not all sent again at once', () => {
    const { hwP, hostWrite, advanceP } = syncPair();
    const tags = [1, 2, 3, 4].map((k) => decodeFrame(hostWrite(k, k)).tag);
    const resent = advanceP(1_000_000 - 5_000).map((f) => decodeFrame(f).tag);
    // At 200, 400 and 800 ms, each time the oldest copy overdue by the doubled wait: three in the copy timeout, not
    // every copy at every wait (4 at 200 ms, 4 more at 600 ms).
    expect(resent).toEqual([tags[0], tags[1], tags[2]]);
    expect(hwP.completions).toEqual([]);
  });

  it('the wait follows the measured round trip: copies answered after 30 ms make the next lost one go again after about srtt + 4 × rttvar, not 200 ms', () => {
    const { hwP, I, hostWrite, advanceP, deliverAcks } = syncPair();
    for (let k = 0; k < 8; k++) {
      I.onFrame(1, hostWrite(k, k + 1));
      advanceP(30_000);
      deliverAcks();
    }
    expect(hwP.completions).toHaveLength(8);
    hostWrite(9, 9); // lost
    expect(advanceP(25_000)).toHaveLength(0);
    expect(advanceP(30_000)).toHaveLength(1); // srtt ≈ 30 ms, rttvar shrinking from 15 ms: due before 55 ms
  });

  it('a copy from before a resync (an older copy generation) is dropped by the destination: it does not write over what the resync copied, and is not answered', () => {
    const { hwP, hwI, P, I, carry, hostWrite, block } = syncPair();
    const stale = hostWrite(3, 0x55); // delayed on the wire past everything below
    P.onCommand(2, { op: 'suspend', pairId: 7 });
    carry();
    P.onHostIo({ tag: 99, op: 'write', lvol: 0, lba: 3, blocks: 1, data: new Uint8Array(4096).fill(0x77), port: 0 }); // marked while suspended
    P.onCommand(3, { op: 'resync', pairId: 7 });
    carry();
    expect(readDefinitionInformation(hwP.controlMemory)[0]!.state).toBe(PairState.Duplex);
    expect(block(hwI, 3)).toBe(0x77); // by the resync's formation copy
    expect(decodeFrame(stale).gen).toBe(0);
    const before = hwI.sent.length;
    I.onFrame(1, stale); // the resync cleared the destination's tags: only the generation tells this copy is stale
    expect(block(hwI, 3)).toBe(0x77);
    expect(hwI.sent.length).toBe(before);
    expect(logs(hwI, /copy generation 0, the pair is at 1 \(sent before a resync\)/)).toHaveLength(1);
    // A copy of the new generation is written and answered in it.
    I.onFrame(1, hostWrite(4, 0x66));
    expect(block(hwI, 4)).toBe(0x66);
    expect(decodeFrame(hwI.sent.at(-1)!.frame)).toMatchObject({ type: FrameType.SyncAck, status: 0, gen: 1 });
  });

  it('an acknowledgement of another copy generation completes nothing', () => {
    const { hwP, P, hostWrite } = syncPair();
    const copy = decodeFrame(hostWrite(3, 1));
    P.onFrame(2, encodeAck(copy.tag, 5));
    expect(hwP.completions).toEqual([]);
    expect(logs(hwP, /tag \d+ of generation 5 was not sent to it/)).toHaveLength(1);
    P.onFrame(2, encodeAck(copy.tag, 0));
    expect(hwP.completions.map((c) => c.status)).toEqual(['ok']);
  });
});

/** `n` one-block host writes from hostA at QD 4 over 256 blocks; the statuses of those not completed ok. */
async function writesNotOk(w: World, n: number): Promise<string[]> {
  const notOk: string[] = [];
  let next = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < n) {
      const k = next++;
      const r = await w.hostIo('hostA', { op: 'write', lvol: 0, lba: (k * 37) % 256, blocks: 1, data: new Uint8Array(4096).fill((k % 250) + 1) });
      if (r.status !== 'ok') notOk.push(r.status);
    }
  }));
  return notOk;
}

function encodeAck(tag: number, gen: number): Uint8Array {
  return encodeFrame({ type: FrameType.SyncAck, status: 0, pairId: 7, tag, lba: 0, blocks: 0, gen });
}

describe('found with resends: a destination keeps its own differences through a late re-announcement of duplex', () => {
  it('S330 seed 105248: differences recorded at a duplex destination (written by another pair) survive a duplex state frame re-announced, and arriving, after them', () => {
    // In sweep seed 105248 copies sent again queued S1 for a second; P's re-announcements of duplex, sent before P
    // failed, reached I after host R's writes had been restored into I's volume through the reversed pair R→I and
    // recorded in the difference bitmap of P→I at I. Each cleared that bitmap, the failback's resync then copied
    // nothing, and P lacked acknowledged writes. Only the state frame that ends a formation copy clears it now.
    const { hwI, I } = syncPair();
    const pairAt = (id: number) => readDefinitionInformation(hwI.controlMemory).find((r) => r.pairId === id)!;
    // Pair 9, I →async R (storage 3) on the same volume, as in the cascade; then reversed by R (R → I), as S260 does.
    I.onCommand(5, { op: 'create', initialCopy: 'none', pair: { pairId: 9, localLvol: 0, remoteStorageId: 3, remoteLvol: 0, copyType: 'async', fence: 'never', journalLvol: 1, remoteJournalLvol: 1 } });
    const create = decodeControl(decodeFrame(hwI.sent.find((x) => x.to === 3 && x.frame[0] === FrameType.Control)!.frame)) as { reqId: number };
    I.onFrame(3, encodeControl(9, { op: 'create-reply', reqId: create.reqId }));
    const def9: WireDefinition = { pairId: 9, role: 'destination', localLvol: 0, remoteLvol: 0, direction: 'reverse', copyType: 'async', fence: 'never', journalLvol: 1, remoteJournalLvol: 1 };
    I.onFrame(3, encodeControl(9, { op: 'state', def: def9, epoch: 1, state: PairState.Duplex, cause: 0, stateSeq: 50, baseSeq: 0, drainTargetSeq: 0, consistentSeq: 0 }));
    expect(pairAt(9)).toMatchObject({ role: 'destination', state: PairState.Duplex });
    I.onFrame(3, encodeJournalBatch(9, { entries: [{ seq: 1, tsUs: 1, lba: 40, data: new Uint8Array(4096).fill(9) }] }));
    expect(hwI.disk.read(0, 40, 1)[0]).toBe(9);
    expect(pairAt(7).dirtyTracks).toBe(1);
    const def7: WireDefinition = { pairId: 7, role: 'destination', localLvol: 0, remoteLvol: 0, direction: 'forward', copyType: 'sync', fence: 'data', journalLvol: 0, remoteJournalLvol: 0 };
    I.onFrame(1, encodeControl(7, { op: 'state', def: def7, epoch: 0, state: PairState.Duplex, cause: 0, stateSeq: 1000, baseSeq: -1, drainTargetSeq: 0, consistentSeq: 0 }));
    expect(pairAt(7).state).toBe(PairState.Duplex);
    expect(pairAt(7).dirtyTracks).toBe(1);
  });
});

describe('a synchronous pair over a lossy link (sim)', () => {
  for (const loss of [0.01, 0.05]) {
    it(`fence data, 16 MB/s at 100 km losing ${loss * 100} % of frames: 600 host writes at QD 4 all complete ok, the pair stays duplex, the volumes end equal (the pair went to failure suspend at the first loss before)`, async () => {
      const w = new SimWorld(twoSystems({ bandwidthMBps: 16, distanceKm: 100, dataBytes: 1 << 20, lossRate: loss }), 11);
      let resent = 0;
      w.onEvent((e) => { if (e.event.type === 'log' && /sent again/.test(e.event.message)) resent++; });
      await ok(w, 'A', createCommand('sync', 'full', 'data'));
      await waitFor(w, 'A', 'duplex');
      expect(await writesNotOk(w, 600)).toEqual([]);
      expect(resent).toBeGreaterThan(0);
      expect((await query(w, 'A')).state).toBe('duplex');
      await waitFor(w, 'B', 'duplex');
      expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
      await w.close();
    }, 60_000);
  }
});

describe('a copy sent again while inflow control holds the first one\'s acknowledgement', () => {
  it('is not answered before the first: the held acknowledgement answers both, once the journal drains', () => {
    // Cascade at I: pair 7 (P →sync I) and pair 9 (I →async R, inflow control) on the same volume. With I's journal
    // over the high-water mark, I holds the acknowledgements of the copies it journals, so that P's host is paced.
    const { hwI, P, I, hostWrite } = syncPair();
    I.onCommand(5, { op: 'create', initialCopy: 'none', pair: { pairId: 9, localLvol: 0, remoteStorageId: 3, remoteLvol: 0, copyType: 'async', fence: 'never', journalLvol: 1, remoteJournalLvol: 1, inflowControl: true } });
    const create = decodeControl(decodeFrame(hwI.sent.find((x) => x.to === 3 && x.frame[0] === FrameType.Control)!.frame)) as { reqId: number };
    I.onFrame(3, encodeControl(9, { op: 'create-reply', reqId: create.reqId }));
    hwI.sent.length = 0;
    const acksTo = (tag: number) => hwI.sent.filter((x) => x.to === 1 && x.frame[0] === FrameType.SyncAck && decodeFrame(x.frame).tag === tag).length;
    let held: Uint8Array | undefined;
    for (let k = 0; k < 400 && !held; k++) {
      const copy = hostWrite(k % 256, (k % 250) + 1);
      I.onFrame(1, copy);
      if (acksTo(decodeFrame(copy).tag) === 0) held = copy;
      else P.onFrame(2, hwI.sent.findLast((x) => x.frame[0] === FrameType.SyncAck)!.frame); // frees P's cache slot
    }
    expect(held).toBeDefined(); // the journal reached the mark and an acknowledgement is held
    I.onFrame(1, held!); // P sent it again: a duplicate, already stored
    expect(acksTo(decodeFrame(held!).tag)).toBe(0);
    // R applies everything: the journal drains under the mark, and the held acknowledgement goes, once.
    const newest = readJournalRecords(hwI.controlMemory).find((j) => j.pairId === 9)!.newestSeq;
    I.onFrame(3, encodeFrame({ type: FrameType.JournalAck, status: 0, pairId: 9, tag: newest, lba: newest, blocks: 0 }));
    expect(acksTo(decodeFrame(held!).tag)).toBe(1);
    I.onFrame(1, held!); // and a duplicate after that is answered at once
    expect(acksTo(decodeFrame(held!).tag)).toBe(2);
  });
});

describe('a synchronous pair over a lossy link (threads, real time)', () => {
  it('fence data, 16 MB/s at 10 km losing 2 % of frames: 400 host writes at QD 4 all complete ok, the pair stays duplex, the volumes end equal', async () => {
    const { ThreadsWorld } = await import('../harness/runtime-threads.ts');
    const w = await ThreadsWorld.create(twoSystems({ bandwidthMBps: 16, distanceKm: 10, dataBytes: 1 << 20, lossRate: 0.02 }), 5);
    try {
      let resent = 0;
      w.onEvent((e) => { if (e.event.type === 'log' && /sent again/.test(e.event.message)) resent++; });
      const created = await w.command('A', createCommand('sync', 'full', 'data'));
      expect(created.ok).toBe(true);
      const stateAt = (sys: string) => w.definitionInformation(sys)[0]?.state;
      for (let k = 0; k < 500 && stateAt('A') !== PairState.Duplex; k++) await w.sleep(10_000);
      expect(stateAt('A')).toBe(PairState.Duplex);
      expect(await writesNotOk(w, 400)).toEqual([]);
      expect(resent).toBeGreaterThan(0);
      expect(stateAt('A')).toBe(PairState.Duplex);
      for (let k = 0; k < 100 && Buffer.compare(w.volume('A', 0), w.volume('B', 0)) !== 0; k++) await w.sleep(10_000);
      expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
    } finally {
      await w.close();
    }
  }, 60_000);
});
