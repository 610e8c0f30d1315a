// Two controllers on stub hardware, P (storage 1) → I (storage 2), with a duplex synchronous pair 7 (fence data),
// whose frames go only when the test carries them: for tests of how synchronous copies travel (order, loss, resends).

import { expect } from 'vitest';
import { Controller } from '../firmware/controller.ts';
import { readDefinitionInformation } from '../firmware/definition-info.ts';
import { FrameType } from '../firmware/frames.ts';
import { PairState } from '../firmware/pair-state.ts';
import { StubHardware } from './stub-hardware.ts';

/** P (storage 1) → I (storage 2), a duplex synchronous pair 7, fence data; frames go only when `carry` carries them. */
export function syncPair() {
  const hwP = new StubHardware(1), hwI = new StubHardware(2);
  const P = new Controller(hwP), I = new Controller(hwI);
  P.boot();
  I.boot();
  /** Carries every frame both ways until none is left. */
  const carry = () => {
    for (let i = 0; i < 10 && hwP.sent.length + hwI.sent.length > 0; i++) {
      for (const s of hwP.sent.splice(0)) I.onFrame(1, s.frame);
      for (const s of hwI.sent.splice(0)) P.onFrame(2, s.frame);
    }
  };
  P.onCommand(1, { op: 'create', initialCopy: 'none', pair: { pairId: 7, localLvol: 0, remoteStorageId: 2, remoteLvol: 0, copyType: 'sync', fence: 'data' } });
  carry();
  expect(readDefinitionInformation(hwP.controlMemory)[0]!.state).toBe(PairState.Duplex);
  let tag = 0;
  /** A host write of `blocks` blocks at `lba`, each filled with `fill`; returns the copy P sent for it. */
  const hostWrite = (lba: number, fill: number, blocks = 1) => {
    P.onHostIo({ tag: ++tag, op: 'write', lvol: 0, lba, blocks, data: new Uint8Array(blocks * 4096).fill(fill), port: 0 });
    const copies = hwP.sent.splice(0).filter((x) => x.frame[0] === FrameType.SyncWrite);
    expect(copies).toHaveLength(1);
    return copies[0]!.frame;
  };
  /**
   * Moves both clocks on by `us` in 5 ms steps, firing due timers, and carries everything but synchronous copies and
   * their acknowledgements (keepalives keep the partners alive); returns the copies P sent meanwhile, which the test
   * delivers or loses.
   */
  const acks: Uint8Array[] = []; // acknowledgements I sent, held back for the test to deliver (or lose)
  const advanceP = (us: number) => {
    const copies: Uint8Array[] = [];
    const fire = (hw: StubHardware, c: Controller) => {
      for (const t of hw.timers.splice(0)) if (t.at <= hw.now) c.onTimer(t.kind, t.arg); else hw.timers.push(t);
    };
    for (const end = hwP.now + us; hwP.now < end;) {
      hwP.now = hwI.now = Math.min(end, hwP.now + 5_000);
      fire(hwP, P);
      fire(hwI, I);
      for (const s of hwP.sent.splice(0)) if (s.frame[0] === FrameType.SyncWrite) copies.push(s.frame); else I.onFrame(1, s.frame);
      for (const s of hwI.sent.splice(0)) if (s.frame[0] === FrameType.SyncAck) acks.push(s.frame); else P.onFrame(2, s.frame);
    }
    return copies;
  };
  const block = (hw: StubHardware, lba: number) => hw.disk.read(0, lba, 1)[0];
  const stateAt = (hw: StubHardware) => readDefinitionInformation(hw.controlMemory)[0]!.state;
  /** Delivers to P the acknowledgements I has sent since the last call (those held by advanceP and those still queued). */
  const deliverAcks = () => {
    for (const s of hwI.sent.splice(0)) if (s.frame[0] === FrameType.SyncAck) acks.push(s.frame); else P.onFrame(2, s.frame);
    const n = acks.length;
    for (const a of acks.splice(0)) P.onFrame(2, a);
    return n;
  };
  return { hwP, hwI, P, I, carry, hostWrite, advanceP, deliverAcks, block, stateAt };
}
