// Unit tests of the firmware's building blocks on real emulated memory: difference bitmap, journal volume,
// frame codec.

import { describe, expect, it } from 'vitest';
import { BLOCKS_PER_TRACK } from '../firmware/constants.ts';
import { ControlMemoryLayout } from '../firmware/definition-info.ts';
import { DifferenceBitmap } from '../firmware/difference-bitmap.ts';
import { decodeControl, decodeFrame, decodeJournalBatch, encodeControl, encodeFrame, encodeJournalBatch, FrameError, FrameType } from '../firmware/frames.ts';
import { Journal } from '../firmware/journal.ts';
import { StubHardware } from './stub-hardware.ts';

describe('difference bitmap', () => {
  it('marks the tracks a write touches, once each', () => {
    const b = new DifferenceBitmap(new Int32Array(4), 100);
    expect(b.markBlocks(BLOCKS_PER_TRACK - 1, 2)).toBe(2); // straddles tracks 0 and 1
    expect(b.markBlocks(0, 1)).toBe(0);
    expect([b.test(0), b.test(1), b.test(2)]).toEqual([true, true, false]);
    expect(b.count()).toBe(2);
  });
  it('finds set tracks in order across word boundaries and ignores bits beyond the volume', () => {
    const b = new DifferenceBitmap(new Int32Array(4), 100);
    for (const t of [5, 31, 32, 63, 99]) b.set(t);
    const seen: number[] = [];
    for (let t = b.nextSet(0); t >= 0; t = t + 1 < 100 ? b.nextSet(t + 1) : -1) seen.push(t);
    expect(seen).toEqual([5, 31, 32, 63, 99]);
    expect(b.nextSet(33)).toBe(63);
    b.words[3] = -1; // bits for tracks 96..127, beyond the 100 tracks
    b.clear(99);
    expect(b.nextSet(64)).toBe(96);
  });
  it('set all, clear, union and count agree', () => {
    const a = new DifferenceBitmap(new Int32Array(2), 40), c = new DifferenceBitmap(new Int32Array(2), 40);
    a.setAll();
    expect(a.count()).toBe(40);
    c.set(3);
    a.clearAll();
    a.union(c.words);
    expect(a.count()).toBe(1);
    expect(() => a.set(40)).toThrow(/track 40 outside bitmap of 40 tracks/);
  });
});

function journalOn(hw: StubHardware): Journal {
  return Journal.open(hw.disk, new ControlMemoryLayout(hw.controlMemory), 1, 7);
}

describe('journal volume', () => {
  it('keeps entries in sequence order with their data, timestamps and addresses', () => {
    const hw = new StubHardware(0);
    const j = journalOn(hw);
    for (let s = 1; s <= 10; s++) expect(j.append(s, s * 1000, 0, s * 3, new Uint8Array(4096 * (1 + (s % 3))).fill(s))).toBe(true);
    expect([j.entries, j.oldestSeq, j.newestSeq]).toEqual([10, 1, 10]);
    const e = j.entryAt(7);
    expect([e.seq, e.tsUs, e.lba, e.blocks, e.data[0], e.data.length]).toEqual([7, 7000, 21, 2, 7, 8192]);
    expect(j.freeThrough(4)).toBe(4);
    expect(j.oldestSeq).toBe(5);
    expect(() => j.entryAt(4)).toThrow(/no entry 4/);
  });
  it('refuses a sequence number that goes backwards (a firmware invariant)', () => {
    const j = journalOn(new StubHardware(0));
    j.append(5, 0, 0, 0, new Uint8Array(4096));
    expect(() => j.append(5, 0, 0, 0, new Uint8Array(4096))).toThrow(/went backwards/);
  });
  it('wraps around its data region and reports full without changing anything', () => {
    const hw = new StubHardware(0, 1024 * 1024, 256 * 1024); // 64 blocks of journal volume
    const j = journalOn(hw);
    let seq = 0;
    for (let round = 0; round < 20; round++) {
      while (j.append(seq + 1, 0, 0, seq % 200, new Uint8Array(4096 * 3).fill(seq & 0xff))) seq++;
      const before = [j.entries, j.usedBytes, j.newestSeq];
      expect(j.append(seq + 1, 0, 0, 0, new Uint8Array(4096 * 3))).toBe(false);
      expect([j.entries, j.usedBytes, j.newestSeq]).toEqual(before);
      expect(j.usagePercent).toBeGreaterThan(80);
      expect(j.almostFull).toBe(true);
      j.freeThrough(j.oldestSeq + 4);
      for (let s = j.oldestSeq; s <= j.newestSeq; s++) expect(j.entryAt(s).data[0]).toBe((s - 1) & 0xff);
    }
    expect(seq).toBeGreaterThan(100);
  });
  it('spanBytes: the data region entries take, across a wrap, and 0 for entries it does not hold (the ship window\'s bytes)', () => {
    const hw = new StubHardware(0, 1024 * 1024, 256 * 1024); // 64 blocks of journal volume
    const j = journalOn(hw);
    for (let s = 1; s <= 5; s++) expect(j.append(s, 0, 0, s, new Uint8Array(4096 * s))).toBe(true); // 1+2+3+4+5 blocks
    expect(j.spanBytes(2, 4)).toBe((2 + 3 + 4) * 4096);
    expect(j.spanBytes(1, 5)).toBe(j.usedBytes);
    expect(j.spanBytes(3, 3)).toBe(3 * 4096);
    expect(j.spanBytes(4, 3)).toBe(0); // nothing between
    expect(j.spanBytes(5, 99)).toBe(5 * 4096); // clamped to what the journal holds
    expect(j.spanBytes(6, 9)).toBe(0);
    // Across the end of the data region: the unused tail a wrapped entry skipped is inside the span.
    const w = journalOn(new StubHardware(0, 1024 * 1024, 256 * 1024));
    let seq = 0;
    while (w.append(seq + 1, 0, 0, 0, new Uint8Array(4096 * 5))) seq++;
    expect([seq, w.usedBytes / 4096]).toEqual([12, 60]); // 12 entries of 5 blocks; the region has a few blocks more
    const tail = w.dataBlocks - 60;
    expect(tail).toBeGreaterThan(0);
    expect(tail).toBeLessThan(5);
    w.freeThrough(2);
    expect(w.append(13, 0, 0, 0, new Uint8Array(4096 * 5))).toBe(true); // does not fit in the tail: wraps to block 0
    expect(w.spanBytes(12, 13)).toBe((5 + tail + 5) * 4096);
    expect(w.spanBytes(13, 13)).toBe(5 * 4096);
    expect(w.spanBytes(3, 13)).toBe(w.usedBytes);
    expect(w.spanBytes(4, 12)).toBe(9 * 5 * 4096);
  });
  it('survives a controller restart: metadata in control memory, entries on the journal volume', () => {
    const hw = new StubHardware(0);
    const j = journalOn(hw);
    j.append(1, 11, 0, 2, new Uint8Array(4096).fill(9));
    const again = journalOn(hw);
    expect([again.entries, again.entryAt(1).data[0], again.entryAt(1).tsUs]).toEqual([1, 9, 11]);
  });
});

describe('frames', () => {
  it('round-trip: header fields, raw data, journal batches and control bodies', () => {
    const data = new Uint8Array(8192).fill(3);
    const f = decodeFrame(encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 9, tag: 0xfffffffe, lba: 77, blocks: 2 }, data));
    expect([f.type, f.pairId, f.tag, f.lba, f.blocks, f.body.length]).toEqual([FrameType.SyncWrite, 9, 0xfffffffe, 77, 2, 8192]);
    const b = decodeJournalBatch(decodeFrame(encodeJournalBatch(9, { entries: [{ seq: 4, tsUs: 1.5, lba: 3, data: new Uint8Array(4096).fill(1) }] })));
    expect(b.entries[0]!.seq).toBe(4);
    expect(decodeControl(decodeFrame(encodeControl(9, { op: 'delete' }))).op).toBe('delete');
  });
  it.each([
    ['a truncated header', new Uint8Array(10), /shorter than its 24-byte header/],
    ['an unknown type', (() => { const x = encodeFrame({ type: FrameType.Keepalive, status: 0, pairId: 0, tag: 0, lba: 0, blocks: 0 }); x[0] = 99; return x; })(), /unknown frame type 99/],
    ['a length that disagrees with the header', encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 1, tag: 1, lba: 0, blocks: 1 }, new Uint8Array(4096)).subarray(0, 100), /does not match header/],
    ['blocks that disagree with the data', encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 1, tag: 1, lba: 0, blocks: 2 }, new Uint8Array(4096)), /2 blocks do not match 4096 body bytes/],
    ['a body on an acknowledgement', encodeFrame({ type: FrameType.SyncAck, status: 0, pairId: 1, tag: 1, lba: 0, blocks: 0 }, new Uint8Array(4)), /must have no body/],
  ])('rejects %s with a FrameError naming it', (_, bytes, re) => {
    expect(() => decodeFrame(bytes as Uint8Array)).toThrow(FrameError);
    expect(() => decodeFrame(bytes as Uint8Array)).toThrow(re);
  });
  it('rejects garbage msgpack bodies and malformed journal entries', () => {
    const garbage = encodeFrame({ type: FrameType.Control, status: 0, pairId: 1, tag: 0, lba: 0, blocks: 0 }, new Uint8Array([0xc1, 0xff, 0x00]));
    expect(() => decodeControl(decodeFrame(garbage))).toThrow(FrameError);
    const badEntry = encodeJournalBatch(1, { entries: [{ seq: 0, tsUs: 0, lba: 0, data: new Uint8Array(4096) }] });
    expect(() => decodeJournalBatch(decodeFrame(badEntry))).toThrow(/malformed entry/);
  });
});

describe('RecentTags (duplicate synchronous copies)', () => {
  it('remembers the last N tags, forgets the oldest first, and clears', async () => {
    const { RecentTags } = await import('../firmware/recent-tags.ts');
    const t = new RecentTags(3);
    for (const tag of [10, 11, 12]) t.add(tag);
    expect([10, 11, 12].map((x) => t.has(x))).toEqual([true, true, true]);
    t.add(11); // already there: nothing forgotten
    t.add(13);
    expect([10, 11, 12, 13].map((x) => t.has(x))).toEqual([false, true, true, true]);
    expect(t.size).toBe(3);
    t.clear();
    expect(t.has(13)).toBe(false);
    expect(t.size).toBe(0);
  });

  it('answers as a Set over the last N distinct tags would, over random adds, lookups and clears', async () => {
    const { RecentTags } = await import('../firmware/recent-tags.ts');
    const fc = (await import('fast-check')).default;
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ k: fc.constant('add' as const), tag: fc.oneof(fc.nat(40), fc.constantFrom(0, 0xffffffff, 0x80000000)) }) },
      { weight: 3, arbitrary: fc.record({ k: fc.constant('has' as const), tag: fc.oneof(fc.nat(40), fc.constantFrom(0, 0xffffffff)) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('clear' as const), tag: fc.constant(0) }) },
    );
    fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.array(op, { maxLength: 300 }), (n, ops) => {
      const t = new RecentTags(n);
      let model: number[] = []; // the remembered tags, oldest first
      for (const o of ops) {
        if (o.k === 'add') {
          if (!model.includes(o.tag)) { model.push(o.tag); if (model.length > n) model = model.slice(1); }
          t.add(o.tag);
        } else if (o.k === 'clear') { model = []; t.clear(); }
        expect(t.has(o.tag)).toBe(model.includes(o.tag));
        expect(t.size).toBe(model.length);
      }
      for (let tag = 0; tag <= 40; tag++) expect(t.has(tag)).toBe(model.includes(tag));
    }), { seed: 7, numRuns: 400 });
  });
});
