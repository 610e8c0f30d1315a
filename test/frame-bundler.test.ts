// Bundling of synchronous copies and their acknowledgements (firmware/frame-bundler.ts): the bundle format and its
// refusals, the bundler's ordering and failure rules, and two real controllers copying a burst of host writes
// (S110–S130 of the synchronous copy) through one bundle each way.

import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE_BYTES, BUNDLE_MAX_FRAMES } from '../firmware/constants.ts';
import { Controller } from '../firmware/controller.ts';
import { readDefinitionInformation } from '../firmware/definition-info.ts';
import { FrameBundler } from '../firmware/frame-bundler.ts';
import {
  decodeBundle, decodeFrame, encodeControl, encodeFrame, FRAME_HEADER_BYTES, FrameError, FrameType,
} from '../firmware/frames.ts';
import { PairState } from '../firmware/pair-state.ts';
import { StubHardware } from './stub-hardware.ts';

const syncWrite = (tag: number, fill = tag) =>
  encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 7, tag, lba: tag, blocks: 1 }, new Uint8Array(BLOCK_SIZE_BYTES).fill(fill));
const syncAck = (tag: number) => encodeFrame({ type: FrameType.SyncAck, status: 0, pairId: 7, tag, lba: 0, blocks: 0 });

/** A bundler whose sends are recorded (`up` false: the link refuses them). */
function bundler(up = true) {
  const sent: Array<{ to: number; frame: Uint8Array }> = [], unsent: Array<{ to: number; frame: Uint8Array }> = [];
  const b = new FrameBundler((to, frame) => { if (up) sent.push({ to, frame: frame.slice() }); return up; }, (to, frame) => unsent.push({ to, frame: frame.slice() }));
  return { b, sent, unsent };
}

/** A bundle frame built by hand: header fields as given, body = the frames back to back. */
function bundleOf(frames: Uint8Array[], o: { type?: number; count?: number; extra?: number } = {}): Uint8Array {
  const bodyBytes = frames.reduce((n, f) => n + f.length, 0) + (o.extra ?? 0);
  const out = new Uint8Array(FRAME_HEADER_BYTES + bodyBytes), v = new DataView(out.buffer);
  v.setUint8(0, FrameType.Bundle);
  v.setUint8(1, o.type ?? frames[0]![0]!);
  v.setUint32(8, o.count ?? frames.length);
  v.setUint32(20, bodyBytes);
  let at = FRAME_HEADER_BYTES;
  for (const f of frames) { out.set(f, at); at += f.length; }
  return out;
}

describe('bundle frames', () => {
  it('carry whole inner frames, each decodable on its own', () => {
    const frames = [syncWrite(1), syncWrite(2), syncWrite(3)];
    const f = decodeFrame(bundleOf(frames));
    expect([f.type, f.status, f.tag]).toEqual([FrameType.Bundle, FrameType.SyncWrite, 3]);
    const inner = decodeBundle(f);
    expect(inner.map((x) => Buffer.compare(x, frames[inner.indexOf(x)]!))).toEqual([0, 0, 0]);
    expect(inner.map((x) => decodeFrame(x).tag)).toEqual([1, 2, 3]);
  });
  it.each([
    ['an inner type that may not be bundled', () => bundleOf([encodeControl(1, { op: 'delete' }), encodeControl(1, { op: 'delete' })]), /needs 2\.\.64 SyncWrite or SyncAck/],
    ['a bundle of one', () => bundleOf([syncAck(1)]), /1 inner frames/],
    ['more frames than a bundle may carry', () => bundleOf(Array.from({ length: BUNDLE_MAX_FRAMES + 1 }, (_, i) => syncAck(i))), /65 inner frames/],
    ['a count larger than the frames there', () => bundleOf([syncAck(1), syncAck(2)], { count: 3 }), /inner frame 2 of 3 runs past the end/],
    ['bytes after the last inner frame', () => bundleOf([syncAck(1), syncAck(2)], { extra: 8 }), /8 bytes after the last of its 2 inner frames/],
    ['an inner frame of another type than the bundle says', () => bundleOf([syncAck(1), syncWrite(2)]), /inner frame 1 is of type 1, the bundle says 2/],
  ])('are refused with a FrameError naming %s', (_, make, re) => {
    expect(() => decodeBundle(decodeFrame(make()))).toThrow(FrameError);
    expect(() => decodeBundle(decodeFrame(make()))).toThrow(re);
  });
});

describe('FrameBundler', () => {
  it('holds synchronous copies until flushed, then sends them as one bundle; one held frame goes out as itself', () => {
    const { b, sent } = bundler();
    for (const t of [1, 2, 3]) expect(b.offer(2, syncWrite(t))).toBe(true);
    b.offer(3, syncAck(9));
    expect([sent.length, b.held(2), b.held(3)]).toEqual([0, 3, 1]);
    b.flush();
    expect(sent.map((s) => [s.to, s.frame[0]])).toEqual([[2, FrameType.Bundle], [3, FrameType.SyncAck]]);
    expect(decodeBundle(decodeFrame(sent[0]!.frame)).map((x) => decodeFrame(x).tag)).toEqual([1, 2, 3]);
    expect(Buffer.compare(sent[1]!.frame, syncAck(9))).toBe(0);
    expect([b.held(2), b.held(3)]).toEqual([0, 0]);
  });
  it('keeps each destination in send order: another kind of frame, or another bundled type, flushes what is held first', () => {
    const { b, sent } = bundler();
    b.offer(2, syncWrite(1));
    b.offer(2, syncWrite(2));
    b.offer(4, syncWrite(5)); // another destination: untouched
    b.offer(2, encodeControl(7, { op: 'delete' }));
    b.offer(2, syncWrite(3));
    b.offer(2, syncAck(4)); // another bundled type
    b.flush();
    expect(sent.map((s) => `${s.to}:${FrameType[s.frame[0]!]}`)).toEqual(['2:Bundle', '2:Control', '2:SyncWrite', '4:SyncWrite', '2:SyncAck']);
  });
  it('sends a bundle as soon as it is full, and a frame too big for one on its own', () => {
    const { b, sent } = bundler();
    for (let t = 1; t <= BUNDLE_MAX_FRAMES + 1; t++) b.offer(2, syncAck(t));
    expect(sent.length).toBe(1);
    expect(decodeFrame(sent[0]!.frame).tag).toBe(BUNDLE_MAX_FRAMES);
    const big = encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 7, tag: 99, lba: 0, blocks: 128 }, new Uint8Array(128 * BLOCK_SIZE_BYTES));
    b.offer(2, big);
    expect(sent.map((s) => decodeFrame(s.frame).tag)).toEqual([BUNDLE_MAX_FRAMES, BUNDLE_MAX_FRAMES + 1, 99]);
  });
  it('keeps the one frame it holds in the caller\'s buffer (no copy) until copyLent, then sends its own copy', () => {
    const sent: Uint8Array[] = [];
    const b = new FrameBundler((_to, frame) => { sent.push(frame); return true; }, () => {});
    const lone = syncWrite(1);
    b.offer(2, lone);
    b.flush();
    expect(sent[0]).toBe(lone); // a burst of one frame: sent from where it was encoded
    const reused = syncWrite(2), original = reused.slice();
    b.offer(2, reused);
    b.copyLent(); // the caller is about to reuse its buffer
    reused.fill(0xee);
    b.flush();
    expect(sent[1]).not.toBe(reused);
    expect(Buffer.compare(sent[1]!, original)).toBe(0);
    // A second frame for the same destination copies the first in: the bundle holds both as they were offered.
    const first = syncWrite(3), firstBytes = first.slice();
    b.offer(2, first);
    b.offer(2, syncWrite(4));
    first.fill(0xee);
    b.flush();
    const inner = decodeBundle(decodeFrame(sent[2]!));
    expect(inner.map((x) => decodeFrame(x).tag)).toEqual([3, 4]);
    expect(Buffer.compare(inner[0]!, firstBytes)).toBe(0);
  });
  it('reports every inner frame of a bundle the link refused', () => {
    const { b, sent, unsent } = bundler(false);
    b.offer(2, syncWrite(1));
    b.offer(2, syncWrite(2));
    b.flush();
    expect(sent).toEqual([]);
    expect(unsent.map((u) => [u.to, decodeFrame(u.frame).tag])).toEqual([[2, 1], [2, 2]]);
  });
  it('tells of refused frames only after it holds the frame it was lent, and a report may send frames itself', () => {
    const told: number[] = [], sent: Uint8Array[] = [];
    const lent = syncAck(9), original = lent.slice();
    let up = false;
    const b: FrameBundler = new FrameBundler((_to, frame) => { if (up) sent.push(frame.slice()); return up; }, (_to, frame) => {
      told.push(decodeFrame(frame).tag);
      b.copyLent(); // the controller encodes through Controller.encoder(), which has the bundler copy what it holds...
      lent.fill(0xee); // ...before it reuses its encoder's buffer while it fails the pair...
      b.offer(3, syncAck(50 + told.length)); // ...and sends frames of its own
    });
    b.offer(2, syncWrite(1));
    b.offer(2, syncWrite(2));
    b.offer(2, lent); // another type: flushes the two copies, which the link refuses
    expect(told).toEqual([1, 2]);
    up = true;
    b.flush();
    expect(sent.map((f) => Buffer.compare(f, original))).toContain(0); // the acknowledgement went out intact
    expect(sent.map((f) => `${FrameType[f[0]!]}×${f[0] === FrameType.Bundle ? decodeFrame(f).tag : 1}`)).toEqual(['SyncAck×1', 'Bundle×2']);
  });
});

// Two controllers on stub hardware: P (storage 0) is the source of synchronous pair 7, I (storage 1) its destination.
function syncPair() {
  const hwP = new StubHardware(0), hwI = new StubHardware(1);
  const P = new Controller(hwP), I = new Controller(hwI);
  P.boot();
  I.boot();
  /** Delivers everything each side sent to the other, until both are quiet; returns the frames it carried. */
  const wire = (): Uint8Array[] => {
    const carried: Uint8Array[] = [];
    for (;;) {
      const fromP = hwP.sent.splice(0), fromI = hwI.sent.splice(0);
      if (fromP.length + fromI.length === 0) return carried;
      for (const s of fromP) { carried.push(s.frame); I.onFrame(0, s.frame); }
      for (const s of fromI) { carried.push(s.frame); P.onFrame(1, s.frame); }
    }
  };
  P.onCommand(1, { op: 'create', initialCopy: 'none', pair: { pairId: 7, localLvol: 0, remoteStorageId: 1, remoteLvol: 0, copyType: 'sync', fence: 'data' } });
  wire();
  expect(hwP.replies.get(1)?.ok).toBe(true);
  expect(readDefinitionInformation(hwP.controlMemory)[0]!.state).toBe(PairState.Duplex);
  return { hwP, hwI, P, I, wire };
}

const write = (tag: number) => ({ tag, op: 'write' as const, lvol: 0, lba: tag * 3, blocks: 1, data: new Uint8Array(BLOCK_SIZE_BYTES).fill(tag), port: 0 });

describe('a burst of synchronous copies between two controllers (S110–S130)', () => {
  it('goes over as one bundle and is acknowledged by one, each write stored at the destination before it completes', () => {
    const { hwP, hwI, P, wire } = syncPair();
    P.beginBurst();
    for (const t of [1, 2, 3, 4, 5]) P.onHostIo(write(t));
    expect(hwP.sent).toEqual([]); // held until the burst ends
    P.endBurst();
    expect(hwP.completions).toEqual([]);
    const carried = wire();
    expect(carried.map((f) => `${FrameType[f[0]!]}×${f[0] === FrameType.Bundle ? decodeFrame(f).tag : 1}`)).toEqual(['Bundle×5', 'Bundle×5']);
    expect(decodeFrame(carried[1]!).status).toBe(FrameType.SyncAck);
    expect(hwP.completions.map((c) => [c.io.tag, c.status])).toEqual([1, 2, 3, 4, 5].map((t) => [t, 'ok']));
    for (const t of [1, 2, 3, 4, 5]) expect(hwI.memory.disk.read(0, t * 3, 1)[0]).toBe(t);
  });
  it('without bursts, each write goes as its own frame, as before bundling', () => {
    const { hwP, P, wire } = syncPair();
    for (const t of [1, 2]) P.onHostIo(write(t));
    expect(wire().map((f) => FrameType[f[0]!])).toEqual(['SyncWrite', 'SyncWrite', 'SyncAck', 'SyncAck']);
    expect(hwP.completions.map((c) => c.status)).toEqual(['ok', 'ok']);
  });
  it('a bundle the link refuses at the end of the burst fails the pair (link down) and fences its writes', () => {
    const { hwP, P } = syncPair();
    hwP.send = () => false;
    P.beginBurst();
    for (const t of [1, 2, 3]) P.onHostIo(write(t));
    P.endBurst();
    const rec = readDefinitionInformation(hwP.controlMemory)[0]!;
    expect([rec.state, rec.failureCause]).toEqual([PairState.FailureSuspend, 'link down']);
    expect(hwP.completions.map((c) => c.status)).toEqual(['fenced', 'fenced', 'fenced']);
  });
});

describe('coalescing on the threads runtime (ThreadTuning.coalesceFrames)', () => {
  it('carries the cascade P →sync I →async R in bundles, and every site ends with the same bytes', async () => {
    const { ThreadsWorld } = await import('../harness/runtime-threads.ts');
    const { CopyControlProgram, OperationsLog } = await import('../harness/copy-control.ts');
    const { Host } = await import('../harness/host.ts');
    const { initialCopying } = await import('../harness/routines/embodiment1.ts');
    const { embodiment1Topology, DATA_LVOL } = await import('../harness/topology.ts');
    const framesPerWrite: Record<string, number> = {};
    for (const coalesceFrames of [false, true]) {
      const t = embodiment1Topology({ dataVolumeBytes: 4 << 20, journalVolumeBytes: 8 << 20 });
      const w = await ThreadsWorld.create(t, 1, { tuning: { coalesceFrames } });
      try {
        const hostP = new Host(w, '100P');
        await initialCopying(new CopyControlProgram(w, hostP, new OperationsLog(), 'A2'));
        const out0 = w.stats('P').framesOut;
        const writes = 2048, qd = 32;
        await Promise.all(Array.from({ length: qd }, async (_, q) => {
          for (let i = q; i < writes; i += qd) {
            const r = await w.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba: i % 1024, blocks: 1, data: new Uint8Array(BLOCK_SIZE_BYTES).fill((i * 7) & 0xff) });
            expect(r.status).toBe('ok');
          }
        }));
        framesPerWrite[String(coalesceFrames)] = (w.stats('P').framesOut - out0) / writes;
        await hostP.stop();
        const p = w.volume('P', DATA_LVOL);
        expect(Buffer.compare(w.volume('I', DATA_LVOL), p)).toBe(0); // synchronous: I holds every acknowledged write
        for (let k = 0; k < 200 && Buffer.compare(w.volume('R', DATA_LVOL), p) !== 0; k++) await w.sleep(10_000);
        expect(Buffer.compare(w.volume('R', DATA_LVOL), p)).toBe(0);
        expect(w.definitionInformation('P')[0]!.state).toBe(PairState.Duplex);
      } finally {
        await w.close();
      }
    }
    expect(framesPerWrite.false).toBeGreaterThanOrEqual(1); // one synchronous copy each
    expect(framesPerWrite.true).toBeLessThan(0.8); // copies bundled (0.44 frames per write measured here)
  }, 60_000);
});
