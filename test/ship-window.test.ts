// The journal's ship window (S110, asynchronous copying I→R): what the source sends and the destination has not
// acknowledged is bounded in entries (JOURNAL_SHIP_WINDOW_ENTRIES) and in bytes of write data (the pacing's
// window, at most JOURNAL_SHIP_WINDOW_BYTES), whichever is reached first; each acknowledgement opens it again.
// The window starts at SHIP_INITIAL_WINDOW_BYTES and grows with the delivery rate the acknowledgements show
// (firmware/ship-pacing.ts; test/ship-pacing.test.ts runs it over slow links).

import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE_BYTES, JOURNAL_SHIP_WINDOW_BYTES, JOURNAL_SHIP_WINDOW_ENTRIES } from '../firmware/constants.ts';
import { Controller } from '../firmware/controller.ts';
import { readDefinitionInformation } from '../firmware/definition-info.ts';
import { decodeFrame, decodeJournalBatch, FrameType } from '../firmware/frames.ts';
import { PairState } from '../firmware/pair-state.ts';
import { SHIP_INITIAL_WINDOW_BYTES } from '../firmware/ship-pacing.ts';
import { StubHardware } from './stub-hardware.ts';

const MiB = 1024 * 1024;
const PAIR = 9;

/** I (storage 1) is the source of asynchronous pair PAIR to R (storage 3); frames are carried only when asked. */
function asyncPair() {
  const hwI = new StubHardware(1, 64 * MiB, 64 * MiB), hwR = new StubHardware(3, 64 * MiB, 64 * MiB);
  const I = new Controller(hwI), R = new Controller(hwR);
  I.boot();
  R.boot();
  const carry = (from: StubHardware, to: Controller, fromId: number) => {
    const frames = from.sent.splice(0);
    for (const s of frames) to.onFrame(fromId, s.frame);
    return frames.map((s) => s.frame);
  };
  I.onCommand(1, { op: 'create', initialCopy: 'none', pair: { pairId: PAIR, localLvol: 0, remoteStorageId: 3, remoteLvol: 0, copyType: 'async', fence: 'never', journalLvol: 1, remoteJournalLvol: 1 } });
  for (let i = 0; i < 10 && hwI.sent.length + hwR.sent.length > 0; i++) { carry(hwI, R, 1); carry(hwR, I, 3); }
  expect(hwI.replies.get(1)?.ok).toBe(true);
  expect(readDefinitionInformation(hwI.controlMemory)[0]!.state).toBe(PairState.Duplex);
  /** Fires the source's due journal-ship timers; returns the entries (seq, bytes) of the batches it holds to send. */
  const ship = () => {
    const due = hwI.timers.splice(0);
    for (const t of due) I.onTimer(t.kind, t.arg);
    const batches = hwI.sent.filter((s) => s.frame[0] === FrameType.JournalBatch);
    return batches.flatMap((s) => decodeJournalBatch(decodeFrame(s.frame)).entries.map((e) => ({ seq: e.seq, bytes: e.data.length })));
  };
  /** One round trip of `rttUs`: I's batches to R, R's acknowledgements back; returns the newest seq acknowledged. */
  let base = 0;
  const roundTrip = (rttUs: number) => {
    hwI.now += rttUs / 2;
    hwR.now = hwI.now;
    carry(hwI, R, 1);
    for (const t of hwR.timers.splice(0)) R.onTimer(t.kind, t.arg);
    hwI.now += rttUs / 2;
    for (const f of carry(hwR, I, 3)) {
      const d = decodeFrame(f);
      if (d.type === FrameType.JournalAck) base = Math.max(base, d.tag, d.lba);
    }
    return base;
  };
  return { hwI, hwR, I, R, carry, ship, roundTrip };
}

const write = (tag: number, blocks: number) =>
  ({ tag, op: 'write' as const, lvol: 0, lba: (tag * blocks) % (16 * 1024), blocks, data: new Uint8Array(blocks * BLOCK_SIZE_BYTES).fill(tag & 0xff), port: 0 });

describe('S110 the journal ship window', () => {
  it('64 KiB writes: the window opens from 64 KiB to 16 MiB of write data in flight and waits there, though 512 entries would be 32 MiB', () => {
    const { hwI, hwR, I, ship, roundTrip } = asyncPair();
    for (let t = 1; t <= 700; t++) I.onHostIo(write(t, 16));
    expect(hwI.completions.filter((c) => c.status === 'ok')).toHaveLength(700); // acknowledged on journaling
    // Before any acknowledgement: the initial window, one 64 KiB entry.
    const first = ship();
    expect(first.reduce((n, e) => n + e.bytes, 0)).toBe(SHIP_INITIAL_WINDOW_BYTES);
    expect(ship()).toEqual(first); // nothing more until an acknowledgement
    // Round trips of 1 ms: each acknowledgement opens the window again, wider, never beyond 16 MiB.
    const sentBytes = new Map(first.map((e) => [e.seq, e.bytes]));
    let base = 0, widest = 0;
    for (let round = 0; round < 200 && base < 700; round++) {
      base = roundTrip(1000);
      for (const e of ship()) sentBytes.set(e.seq, e.bytes);
      const inFlight = [...sentBytes].filter(([seq]) => seq > base).reduce((n, [, b]) => n + b, 0);
      expect(inFlight).toBeLessThanOrEqual(JOURNAL_SHIP_WINDOW_BYTES);
      widest = Math.max(widest, inFlight);
    }
    expect(widest).toBe(JOURNAL_SHIP_WINDOW_BYTES);
    expect(base).toBe(700);
    expect([...sentBytes.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
    for (const t of [1, 350, 700]) expect(hwR.disk.read(0, (t * 16) % (16 * 1024), 1)[0]).toBe(t & 0xff);
  });
  it('4 KiB writes: once the window is open, the entry count is the limit (512 entries are 2 MiB)', () => {
    const { hwI, I, ship, roundTrip } = asyncPair();
    for (let t = 1; t <= 16; t++) I.onHostIo(write(t, 1));
    expect(ship()).toHaveLength(SHIP_INITIAL_WINDOW_BYTES / BLOCK_SIZE_BYTES);
    expect(roundTrip(1000)).toBe(16); // one round trip shows the rate: 64 KiB in 1 ms
    for (let t = 17; t <= 716; t++) I.onHostIo(write(t, 1));
    expect(hwI.completions).toHaveLength(716);
    const sent = ship().filter((e) => e.seq > 16);
    expect(sent).toHaveLength(JOURNAL_SHIP_WINDOW_ENTRIES);
    expect(sent.reduce((n, e) => n + e.bytes, 0)).toBe(JOURNAL_SHIP_WINDOW_ENTRIES * BLOCK_SIZE_BYTES);
  });
  it('fast resend: a batch lost on the wire goes again on the third acknowledgement that does not move, not after the 1 s resend timeout', () => {
    const { hwI, hwR, I, R, carry, ship } = asyncPair();
    for (let t = 1; t <= 16; t++) I.onHostIo(write(t, 1));
    expect(ship()).toHaveLength(16); // the initial window: 16 batches of one 4 KiB entry
    const batches = hwI.sent.splice(0).filter((x) => x.frame[0] === FrameType.JournalBatch);
    expect(batches).toHaveLength(16);
    // Batch 1 is lost; 2..16 reach R, which holds them and acknowledges each with 0 applied.
    for (const b of batches.slice(1)) R.onFrame(1, b.frame);
    const acks = hwR.sent.splice(0).filter((x) => x.frame[0] === FrameType.JournalAck);
    expect(acks.map((a) => decodeFrame(a.frame).tag)).toEqual(Array(15).fill(0));
    const resent = (n: number) => {
      for (const a of acks.splice(0, n)) I.onFrame(3, a.frame);
      return hwI.sent.filter((x) => x.frame[0] === FrameType.JournalBatch).flatMap((x) => decodeJournalBatch(decodeFrame(x.frame)).entries.map((e) => e.seq));
    };
    expect(resent(2)).toEqual([]);
    expect(resent(1)).toEqual([1]); // the third: entry 1 again, at once
    expect(resent(12)).toEqual([1]); // once per gap
    carry(hwI, R, 1);
    expect(readDefinitionInformation(hwR.controlMemory)[0]!.appliedSeq).toBe(16);
    expect(hwR.disk.read(0, 1, 1)[0]).toBe(1);
  });
});
