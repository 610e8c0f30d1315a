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
  /** Runs the source's tick (and only that) at `atUs`. */
  const tickAt = (atUs: number) => {
    hwI.now = hwR.now = atUs;
    const ticks = hwI.timers.filter((t) => t.kind === 'tick');
    hwI.timers.splice(0, hwI.timers.length, ...hwI.timers.filter((t) => t.kind !== 'tick'));
    for (const t of ticks) I.onTimer(t.kind, t.arg);
  };
  return { hwI, hwR, I, R, carry, ship, roundTrip, tickAt };
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
    expect(resent(12)).toEqual([1]); // not again for answers from batches sent before that copy
    carry(hwI, R, 1);
    expect(readDefinitionInformation(hwR.controlMemory)[0]!.appliedSeq).toBe(16);
    expect(hwR.disk.read(0, 1, 1)[0]).toBe(1);
  });
  it('fast resend: when the resent batch is lost too, it goes again once batches sent after it have been answered, not after the 1 s resend timeout', () => {
    const { hwI, hwR, I, R, ship, roundTrip } = asyncPair();
    for (let t = 1; t <= 16; t++) I.onHostIo(write(t, 1));
    ship();
    expect(roundTrip(1000)).toBe(16); // the window opens: batches now carry up to 64 entries
    const batchesOf = (from: StubHardware) => from.sent.splice(0).filter((x) => x.frame[0] === FrameType.JournalBatch);
    const seqs = (bs: { frame: Uint8Array }[]) => bs.flatMap((x) => decodeJournalBatch(decodeFrame(x.frame)).entries.map((e) => e.seq));
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const answer = (n = Infinity) => { for (const a of hwR.sent.splice(0).filter((x) => x.frame[0] === FrameType.JournalAck).slice(0, n)) I.onFrame(3, a.frame); };
    /** Writes `n` entries one at a time, each shipped in its own batch as it is written; returns the batches. */
    let tag = 16;
    const oneByOne = (n: number) => Array.from({ length: n }, () => { I.onHostIo(write(++tag, 1)); ship(); return batchesOf(hwI)[0]!; });
    const sent = oneByOne(24);
    expect(seqs(sent)).toEqual(range(17, 40));
    // Batch 17 is lost; 18..40 reach R, which holds them and answers each without progress.
    for (const b of sent.slice(1)) R.onFrame(1, b.frame);
    const acks = hwR.sent.splice(0);
    expect(acks.map((a) => decodeFrame(a.frame)).map((d) => [d.type, d.tag])).toEqual(Array(23).fill([FrameType.JournalAck, 16]));
    for (const a of acks.slice(0, 3)) I.onFrame(3, a.frame);
    expect(seqs(batchesOf(hwI))).toEqual(range(17, 40)); // the third: from 17 again, one batch — and this copy is lost too
    // The other 20 answers belong to batches sent before that copy: they say nothing of it.
    for (const a of acks.slice(3)) I.onFrame(3, a.frame);
    expect(batchesOf(hwI)).toEqual([]);
    // Batches sent after the copy arrive and are answered while it has not: beyond the 23 batches in flight when it
    // went, and the same margin of three as the first resend, it was lost, and 17 goes again.
    const after = oneByOne(6);
    let again: { frame: Uint8Array }[] = [];
    for (const [i, b] of after.entries()) {
      R.onFrame(1, b.frame);
      answer();
      const out = batchesOf(hwI);
      expect(seqs(out), `after the answer to batch ${41 + i}`).toEqual(i === 5 ? range(17, 46) : []);
      if (i === 5) again = out;
    }
    // This copy arrives: R applies everything it held, in order.
    R.onFrame(1, again[0]!.frame);
    expect(readDefinitionInformation(hwR.controlMemory)[0]!.appliedSeq).toBe(46);
    expect(hwR.disk.read(0, 17, 1)[0]).toBe(17);
  });

  /**
   * The window opened by one round trip of 1 ms (65.5 MB/s seen), then writes 17..lastTag shipped (each 4 KiB); the
   * writer then silent. Helpers: the batches the source sent since the last look, R's answers, a side's applied seq.
   */
  function openedThen(lastTag: number) {
    const pair = asyncPair();
    const { hwI, hwR, I, ship, roundTrip } = pair;
    for (let t = 1; t <= 16; t++) I.onHostIo(write(t, 1));
    ship();
    expect(roundTrip(1000)).toBe(16);
    hwI.sent.splice(0);
    for (let t = 17; t <= lastTag; t++) I.onHostIo(write(t, 1));
    ship();
    /** Each journal batch's frame, its seqs, and its first and last seq. */
    const out = () => hwI.sent.splice(0).filter((x) => x.frame[0] === FrameType.JournalBatch).map((x) => {
      const seqs = decodeJournalBatch(decodeFrame(x.frame)).entries.map((e) => e.seq);
      return { frame: x.frame, seqs, span: [seqs[0], seqs.at(-1)] };
    });
    const answers = () => hwR.sent.splice(0).filter((x) => x.frame[0] === FrameType.JournalAck);
    const applied = (hw: StubHardware) => readDefinitionInformation(hw.controlMemory)[0]!.appliedSeq;
    return { ...pair, batches: out(), out, answers, applied };
  }

  /** 512 more 4 KiB entries shipped after the window opened: 8 batches of 64, the window full. */
  function fullWindow() {
    const w = openedThen(528);
    expect(w.batches.map((b) => b.span)).toEqual(Array.from({ length: 8 }, (_, i) => [17 + 64 * i, 80 + 64 * i]));
    return w;
  }

  it('fast resend with the window full: a lost copy goes again once its answer is overdue (twice the round trip and the link\'s time for what was ahead of it), not after the 1 s resend timeout', () => {
    const { hwI, hwR, I, R, batches, out, tickAt, answers, applied } = fullWindow();
    expect(out()).toEqual([]); // nothing more: 512 entries in flight
    for (const b of batches.slice(1)) R.onFrame(1, b.frame); // batch 17..80 is lost
    const acks = answers();
    expect(acks).toHaveLength(7);
    for (const a of acks.slice(0, 3)) I.onFrame(3, a.frame);
    const t0 = hwI.now;
    expect(out().map((b) => b.span)).toEqual([[17, 80]]); // the copy, lost too
    for (const a of acks.slice(3)) I.onFrame(3, a.frame);
    expect(out()).toEqual([]); // no batch can follow it: its loss shows only by its answer not coming
    // Due: 2 × (1 ms round trip + 2.25 MiB at 65.5 MB/s) = 74 ms after it went.
    tickAt(t0 + 70_000);
    expect(out()).toEqual([]);
    tickAt(t0 + 80_000);
    expect(out().map((b) => b.span)).toEqual([[17, 80]]);
    // Lost again: the next copy waits twice as long (148 ms), so copies never take much of the link.
    tickAt(t0 + 80_000 + 140_000);
    expect(out()).toEqual([]);
    tickAt(t0 + 80_000 + 150_000);
    const third = out();
    expect(third.map((b) => b.span)).toEqual([[17, 80]]);
    // This one arrives: R applies all 528 entries, and its answer moves the source on.
    R.onFrame(1, third[0]!.frame);
    expect(applied(hwR)).toBe(528);
    for (const a of answers()) I.onFrame(3, a.frame);
    expect(applied(hwI)).toBe(528);
    expect(readDefinitionInformation(hwI.controlMemory)[0]!.state).toBe(PairState.Duplex);
  });

  it('fast resend, two batches lost in one window: the answer to the first copy stops short of what had been shipped, so the second gap goes at once (a partial acknowledgement)', () => {
    const { hwI, hwR, I, R, batches, out, answers, applied } = fullWindow();
    // Batches 17..80 and 145..208 are lost; the other six reach R.
    for (const [i, b] of batches.entries()) if (i !== 0 && i !== 2) R.onFrame(1, b.frame);
    for (const a of answers()) I.onFrame(3, a.frame);
    const copy = out();
    expect(copy.map((b) => b.span)).toEqual([[17, 80]]);
    // The copy arrives: R applies 17..144 and holds 209..528; its answer (144) is short of 528.
    R.onFrame(1, copy[0]!.frame);
    expect(applied(hwR)).toBe(144);
    for (const a of answers()) I.onFrame(3, a.frame);
    const second = out();
    expect(second.map((b) => b.span)).toEqual([[145, 208]]);
    R.onFrame(1, second[0]!.frame);
    for (const a of answers()) I.onFrame(3, a.frame);
    expect(applied(hwI)).toBe(528);
    expect(hwI.now).toBe(1000); // all of it within the round trip that opened the window: no timer was needed
  });

  /** One more write after the window opened, shipped alone. */
  function tailBatch() {
    const w = openedThen(17);
    expect(w.batches.map((b) => b.seqs)).toEqual([[17]]);
    return { ...w, tail: w.batches[0]!, t0: w.hwI.now };
  }

  it('tail loss probe: the newest batch lost with nothing sent after it goes again once the destination has been silent for the probe timeout (20 ms here), not after the 1 s resend timeout', () => {
    const { I, R, hwI, hwR, t0, tickAt, out, answers, applied } = tailBatch();
    // No answer can show this loss (no batch follows it). The probe waits out LOSS_TIMER_MIN_US, here more than
    // twice the 1 ms round trip: a destination held up for a few ms is not taken for a loss.
    tickAt(t0 + 10_000);
    expect(out()).toEqual([]);
    tickAt(t0 + 20_000);
    const probe = out();
    expect(probe.map((b) => b.seqs)).toEqual([[17]]);
    expect(hwI.events.some((e) => e.type === 'log' && e.step === 'S110' && /tail probe/.test(e.message))).toBe(true);
    // The probe is lost as well: its answer is due within the probe timeout too, and each later copy waits twice as
    // long as the one before (20, then 40 ms).
    tickAt(t0 + 30_000);
    expect(out()).toEqual([]);
    tickAt(t0 + 40_000);
    expect(out().map((b) => b.seqs)).toEqual([[17]]);
    tickAt(t0 + 70_000);
    expect(out()).toEqual([]);
    tickAt(t0 + 80_000);
    const again = out();
    expect(again.map((b) => b.seqs)).toEqual([[17]]);
    R.onFrame(1, again[0]!.frame);
    expect(applied(hwR)).toBe(17);
    for (const a of answers()) I.onFrame(3, a.frame);
    expect(applied(hwI)).toBe(17);
    // Once answered, the silence is over: no more copies.
    tickAt(t0 + 200_000);
    expect(out()).toEqual([]);
  });

  it('tail loss probe: when the newest batch arrived and its answer was lost, the probe draws a duplicate answer that moves the source on', () => {
    const { I, R, hwR, hwI, tail, t0, tickAt, out, answers, applied } = tailBatch();
    R.onFrame(1, tail.frame);
    expect(applied(hwR)).toBe(17);
    expect(answers()).toHaveLength(1); // lost on the wire
    tickAt(t0 + 20_000);
    const probe = out();
    expect(probe.map((b) => b.seqs)).toEqual([[17]]);
    R.onFrame(1, probe[0]!.frame); // a duplicate for R: it answers with what it holds
    expect(applied(hwR)).toBe(17);
    for (const a of answers()) I.onFrame(3, a.frame);
    expect(applied(hwI)).toBe(17);
    tickAt(t0 + 1_200_000);
    expect(out()).toEqual([]); // no go-back-N either
  });

  it('tail loss probe: no copy while the answer to all that is in flight may still be on its way (the window full: 66 ms), though that is longer than 20 ms', () => {
    const { hwI, hwR, I, R, batches, out, tickAt, answers, applied } = fullWindow();
    // 2 MiB in flight at 65.5 MB/s behind a 1 ms round trip: the last answer is due 2 × (1 ms + 32 ms) after it went.
    tickAt(hwI.now + 50_000);
    expect(out()).toEqual([]);
    for (const b of batches) R.onFrame(1, b.frame);
    for (const a of answers()) I.onFrame(3, a.frame);
    expect(applied(hwI)).toBe(528);
    expect(applied(hwR)).toBe(528);
    tickAt(hwI.now + 1_200_000);
    expect(out()).toEqual([]);
  });
});
