// Journal restore at the destination: entries are applied strictly in sequence order even when batches
// arrive out of order or twice, the volume is always exactly the effect of a prefix of the entries, and the
// acknowledgements carry the newest sequence number applied. Driven frame by frame on one controller.

import { describe, expect, it } from 'vitest';
import { Controller } from '../firmware/controller.ts';
import { readDefinitionInformation, readJournalRecords } from '../firmware/definition-info.ts';
import { decodeControl, decodeFrame, encodeControl, encodeFrame, encodeJournalBatch, FrameType, type WireDefinition } from '../firmware/frames.ts';
import { PairState } from '../firmware/pair-state.ts';
import { Prng } from '../harness/prng.ts';
import { StubHardware } from './stub-hardware.ts';

const SOURCE = 0, PAIR = 5;
const def: WireDefinition = { pairId: PAIR, role: 'destination', localLvol: 0, remoteLvol: 0, direction: 'forward', copyType: 'async', fence: 'never', journalLvol: 1, remoteJournalLvol: 1 };

function destination() {
  const hw = new StubHardware(1);
  const c = new Controller(hw);
  c.boot();
  c.onFrame(SOURCE, encodeControl(PAIR, { op: 'create', reqId: 1, def }));
  const reply = decodeControl(decodeFrame(hw.sent.pop()!.frame));
  expect(reply).toMatchObject({ op: 'create-reply', reqId: 1 });
  expect((reply as { error?: string }).error).toBeUndefined();
  c.onFrame(SOURCE, encodeControl(PAIR, { op: 'state', def, epoch: 0, state: PairState.Duplex, cause: 0, stateSeq: 1, baseSeq: 0, drainTargetSeq: 0, consistentSeq: 0 }));
  return { hw, c };
}

const entry = (seq: number) => ({ seq, tsUs: seq, lba: seq % 48, data: new Uint8Array(4096).fill(seq & 0xff) });

/** The volume that applying entries 1..k gives. */
function expectedAfter(k: number): Uint8Array {
  const v = new Uint8Array(1024 * 1024);
  for (let s = 1; s <= k; s++) v.fill(s & 0xff, (s % 48) * 4096, (s % 48) * 4096 + 4096);
  return v;
}

describe('journal restore at the destination', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`applies 200 entries in sequence order from shuffled, duplicated batches (seed ${seed})`, () => {
      const { hw, c } = destination();
      const prng = new Prng(seed);
      const batches: number[][] = [];
      for (let s = 1; s <= 200; s += 8) batches.push(Array.from({ length: Math.min(8, 201 - s) }, (_, i) => s + i));
      const deliveries = [...batches, ...batches.filter(() => prng.next() < 0.3)]; // some twice
      for (let i = deliveries.length - 1; i > 0; i--) { const j = prng.int(i + 1); [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!]; }
      let lastAck = 0;
      for (const b of deliveries) {
        hw.sent.length = 0;
        c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: b.map(entry) }));
        const applied = readDefinitionInformation(hw.controlMemory)[0]!.appliedSeq;
        expect(Buffer.compare(hw.memory.disk.lvolBytes(0), expectedAfter(applied))).toBe(0); // always a prefix
        const ack = decodeFrame(hw.sent.find((s) => s.frame[0] === FrameType.JournalAck)!.frame);
        expect(ack.tag).toBe(applied);
        expect(applied).toBeGreaterThanOrEqual(lastAck); // never backwards
        lastAck = applied;
      }
      expect(lastAck).toBe(200);
      expect(Buffer.compare(hw.memory.disk.lvolBytes(0), expectedAfter(200))).toBe(0);
    });
  }

  it('holds everything after a missing entry until it arrives (a lost frame delays the rest)', () => {
    const { hw, c } = destination();
    c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: [entry(2), entry(3)] }));
    expect(readDefinitionInformation(hw.controlMemory)[0]!.appliedSeq).toBe(0);
    c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: [entry(1)] }));
    expect(readDefinitionInformation(hw.controlMemory)[0]!.appliedSeq).toBe(3);
  });

  it('keeps applied entries as its own log information (232R)', () => {
    const { hw, c } = destination();
    c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: [entry(1), entry(2)] }));
    const journals = readDefinitionInformation(hw.controlMemory);
    expect(journals[0]!.appliedSeq).toBe(2);
    expect(readJournalRecords(hw.controlMemory)[0]).toMatchObject({ entries: 2, oldestSeq: 1, newestSeq: 2 });
  });

  it('a malformed frame, a frame for an unknown pair, or one from a stranger changes nothing', () => {
    const { hw, c } = destination();
    c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: [entry(1)] }));
    const cm = hw.controlMemory.slice(), vol = hw.memory.disk.lvolBytes(0).slice();
    c.onFrame(SOURCE, new Uint8Array([1, 2, 3]));
    c.onFrame(SOURCE, encodeJournalBatch(99, { entries: [entry(2)] }));
    c.onFrame(3, encodeJournalBatch(PAIR, { entries: [entry(2)] }));
    c.onFrame(SOURCE, encodeFrame({ type: FrameType.JournalBatch, status: 0, pairId: PAIR, tag: 0, lba: 0, blocks: 0 }, new Uint8Array([0x92, 0x01])));
    expect(Buffer.compare(hw.memory.disk.lvolBytes(0), vol)).toBe(0);
    expect(hw.controlMemory).toEqual(cm);
    expect(hw.events.some((e) => e.type === 'log' && /dropped/.test(e.message))).toBe(true);
  });

  it('S500 a batch delayed on the wire past the start of a resync is not applied after the formation copy of its track (seed 114881)', () => {
    // The source shipped entry 3 before the pair failed; the batch sat in a slow link's queue while the pair was
    // resynchronised. The resync's copy of track 0 (newer data) arrives first, then the stale batch: applied, it
    // would put entry 3's older data back over the copy. Until the source's restore base arrives, batches are ignored.
    const { hw, c } = destination();
    c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: [1, 2].map(entry) }));
    expect(readDefinitionInformation(hw.controlMemory)[0]!.appliedSeq).toBe(2);
    c.onFrame(SOURCE, encodeControl(PAIR, { op: 'bitmap-request', reqId: 9, def, epoch: 0, state: PairState.DuplexPending, stateSeq: 2, gen: 1 }));
    expect(decodeControl(decodeFrame(hw.sent.find((x) => x.frame[0] === FrameType.Control && decodeControl(decodeFrame(x.frame)).op === 'bitmap-reply')!.frame))).toMatchObject({ op: 'bitmap-reply', reqId: 9 });
    const copied = new Uint8Array(16 * 4096).fill(0x77);
    c.onFrame(SOURCE, encodeFrame({ type: FrameType.FormationCopy, status: 0, pairId: PAIR, tag: 1, lba: 0, blocks: 16 }, copied));
    expect(hw.memory.disk.lvolBytes(0).subarray(0, 16 * 4096)).toEqual(copied);
    c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: [entry(3)] })); // the stale batch: entry 3 is block 3 of track 0
    expect(hw.memory.disk.lvolBytes(0).subarray(0, 16 * 4096)).toEqual(copied);
    // The source's base (entries through 3 are covered by the copy): restore goes on after it.
    c.onFrame(SOURCE, encodeControl(PAIR, { op: 'state', def, epoch: 0, state: PairState.Duplex, cause: 0, stateSeq: 3, baseSeq: 3, drainTargetSeq: 0, consistentSeq: 3 }));
    c.onFrame(SOURCE, encodeJournalBatch(PAIR, { entries: [3, 4].map(entry) }));
    expect(readDefinitionInformation(hw.controlMemory)[0]!.appliedSeq).toBe(4);
    expect(hw.memory.disk.lvolBytes(0)[3 * 4096]).toBe(0x77); // entry 3 not applied again
    expect(hw.memory.disk.lvolBytes(0)[4 * 4096]).toBe(4);
  });
});
