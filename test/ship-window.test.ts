// The journal's ship window (S110, asynchronous copying I→R): what the source sends and the destination has not
// acknowledged is bounded in entries (JOURNAL_SHIP_WINDOW_ENTRIES) and in bytes of write data
// (JOURNAL_SHIP_WINDOW_BYTES), whichever is reached first; each acknowledgement opens it again.

import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE_BYTES, JOURNAL_SHIP_WINDOW_BYTES, JOURNAL_SHIP_WINDOW_ENTRIES } from '../firmware/constants.ts';
import { Controller } from '../firmware/controller.ts';
import { readDefinitionInformation } from '../firmware/definition-info.ts';
import { decodeFrame, decodeJournalBatch, FrameType } from '../firmware/frames.ts';
import { PairState } from '../firmware/pair-state.ts';
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
  return { hwI, hwR, I, R, carry, ship };
}

const write = (tag: number, blocks: number) =>
  ({ tag, op: 'write' as const, lvol: 0, lba: (tag * blocks) % (16 * 1024), blocks, data: new Uint8Array(blocks * BLOCK_SIZE_BYTES).fill(tag & 0xff), port: 0 });

describe('S110 the journal ship window', () => {
  it('64 KiB writes: the source sends 16 MiB of write data and waits, though 512 entries would be 32 MiB', () => {
    const { hwI, hwR, I, R, carry, ship } = asyncPair();
    for (let t = 1; t <= 400; t++) I.onHostIo(write(t, 16));
    expect(hwI.completions.filter((c) => c.status === 'ok')).toHaveLength(400); // acknowledged on journaling
    const sent = ship();
    const bytes = sent.reduce((n, e) => n + e.bytes, 0);
    expect(bytes).toBe(JOURNAL_SHIP_WINDOW_BYTES);
    expect(sent.map((e) => e.seq)).toEqual(Array.from({ length: JOURNAL_SHIP_WINDOW_BYTES / (64 * 1024) }, (_, i) => i + 1));
    expect(ship()).toEqual(sent); // nothing more until an acknowledgement
    // R takes the batches and acknowledges; each acknowledgement opens the window again, never beyond 16 MiB.
    const sentBytes = new Map(sent.map((e) => [e.seq, e.bytes]));
    let base = 0; // what R has acknowledged (received or applied), as I last heard
    for (let round = 0; round < 200 && base < 400; round++) {
      carry(hwI, R, 1);
      for (const t of hwR.timers.splice(0)) R.onTimer(t.kind, t.arg);
      for (const f of carry(hwR, I, 3)) {
        const d = decodeFrame(f);
        if (d.type === FrameType.JournalAck) base = Math.max(base, d.tag, d.lba);
      }
      for (const e of ship()) sentBytes.set(e.seq, e.bytes);
      const inFlight = [...sentBytes].filter(([seq]) => seq > base).reduce((n, [, b]) => n + b, 0);
      expect(inFlight).toBeLessThanOrEqual(JOURNAL_SHIP_WINDOW_BYTES);
    }
    expect(base).toBe(400);
    expect([...sentBytes.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    for (const t of [1, 200, 400]) expect(hwR.disk.read(0, (t * 16) % (16 * 1024), 1)[0]).toBe(t & 0xff);
  });
  it('4 KiB writes: the entry count is the limit (512 entries are 2 MiB)', () => {
    const { hwI, I, ship } = asyncPair();
    for (let t = 1; t <= 700; t++) I.onHostIo(write(t, 1));
    expect(hwI.completions).toHaveLength(700);
    const sent = ship();
    expect(sent).toHaveLength(JOURNAL_SHIP_WINDOW_ENTRIES);
    expect(sent.reduce((n, e) => n + e.bytes, 0)).toBe(JOURNAL_SHIP_WINDOW_ENTRIES * BLOCK_SIZE_BYTES);
  });
});
