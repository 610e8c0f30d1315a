// Bad input, property-based: random garbage fed to every entry point of the firmware — frames, management
// commands, host I/O — must never make an exception escape, must never change a volume byte or a control-memory
// word, and must leave the controller working. Fixed seeds, so every run is the same run.
//
// The single-controller rig (storage 1) is a duplex pair both ways round: source of synchronous pair 3
// (LVOL 0 → storage 2, a stub fed by hand) and destination of asynchronous pair 5 (storage 0 → LVOL 1, journal
// LVOL 2), set up by feeding frames as in restore-ordering.test.ts. LVOL 3 belongs to no pair.
//
// Tests whose comments start with BUG pin firmware bugs this file found (each says what, where, and the input); all are fixed.

import fc from 'fast-check';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { Command, CommandReply } from '../firmware/commands.ts';
import { BLOCK_SIZE_BYTES, DEFAULT_FIRMWARE_TIMING, MAX_IO_BYTES, TRACK_SIZE_BYTES } from '../firmware/constants.ts';
import { Controller } from '../firmware/controller.ts';
import { readDefinitionInformation, type PairRecord } from '../firmware/definition-info.ts';
import {
  FrameEncoder, decodeControl, decodeFrame, decodeJournalBatch, encodeControl, encodeFrame, encodeJournalBatch, FRAME_HEADER_BYTES, FrameError,
  FrameType, MAX_FRAME_BODY_BYTES, type ControlBody, type DecodedFrame, type JournalEntryWire, type WireDefinition,
} from '../firmware/frames.ts';
import type { FirmwareEvent, Hardware, HostIo, IoStatus, TimerKind } from '../firmware/hardware-interface.ts';
import { PairState } from '../firmware/pair-state.ts';
import { StorageSystemMemory } from '../hardware/storage-system.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { A, B, createCommand, PAIR, twoSystems } from './fixtures.ts';

const SEED = 42;

// ───────────────────────────── the single-controller rig ─────────────────────────────

const ME = 1;            // the controller under test
const D_SOURCE = 0;      // partner of pair D (its source)
const S_DEST = 2;        // partner of pair S (its destination)
const PAIR_S = 3;        // sync, source here, LVOL 0
const PAIR_D = 5;        // async, destination here, LVOL 1, journal LVOL 2
const LVOL_S = 0, LVOL_D = 1, LVOL_JNL = 2, LVOL_FREE = 3;
const LVOL_COUNT = 4;
const LVOL_BYTES = 256 * 1024;
const LVOL_BLOCKS = LVOL_BYTES / BLOCK_SIZE_BYTES; // 64 blocks, 4 tracks
const KNOWN_PAIRS = [PAIR_S, PAIR_D];
const partnerOf = (pairId: number) => (pairId === PAIR_S ? S_DEST : D_SOURCE);

const DEF_D: WireDefinition = {
  pairId: PAIR_D, role: 'destination', localLvol: LVOL_D, remoteLvol: 0, direction: 'forward', copyType: 'async', fence: 'never',
  journalLvol: LVOL_JNL, remoteJournalLvol: 1,
};

/** A hand-cranked Hardware like test/stub-hardware.ts, with four small LVOLs and read data kept. */
class RigHardware implements Hardware {
  readonly memory: StorageSystemMemory;
  readonly storageId: number;
  readonly disk; readonly cache; readonly controlMemory: Int32Array;
  /** Every LVOL's bytes (one SharedArrayBuffer). */
  readonly diskBytes: Uint8Array;
  readonly timing = { ...DEFAULT_FIRMWARE_TIMING };
  now = 1_000;
  readonly sent: Array<{ to: number; frame: Uint8Array }> = [];
  readonly completions: Array<{ io: HostIo; status: IoStatus; data?: Uint8Array }> = [];
  readonly replies = new Map<number, CommandReply>();
  readonly events: FirmwareEvent[] = [];
  readonly timers: Array<{ at: number; kind: TimerKind; arg: number }> = [];

  constructor(storageId: number) {
    this.memory = StorageSystemMemory.build(storageId, `S${storageId}`, [
      { name: 'srcS', kind: 'data', sizeBytes: LVOL_BYTES }, { name: 'dstD', kind: 'data', sizeBytes: LVOL_BYTES },
      { name: 'jnlD', kind: 'journal', sizeBytes: LVOL_BYTES }, { name: 'free', kind: 'data', sizeBytes: LVOL_BYTES }], 1);
    this.storageId = storageId;
    this.disk = this.memory.disk;
    this.cache = this.memory.cache;
    this.controlMemory = this.memory.controlMemory;
    this.diskBytes = new Uint8Array(this.memory.disk.state.data);
  }
  nowUs() { return this.now; }
  setTimer(delayUs: number, kind: TimerKind, arg: number) { this.timers.push({ at: this.now + delayUs, kind, arg }); }
  send(to: number, frame: Uint8Array) { this.sent.push({ to, frame: frame.slice() }); return true; }
  completeHostIo(io: HostIo, status: IoStatus, data?: Uint8Array) { this.completions.push({ io, status, data: data?.slice() }); }
  replyCommand(id: number, r: CommandReply) { this.replies.set(id, r); }
  emit(e: FirmwareEvent) { this.events.push(e); }
  clearLogs() { this.sent.length = 0; this.completions.length = 0; this.replies.clear(); this.events.length = 0; }
}

const blocksOf = (n: number, fill: number) => new Uint8Array(n * BLOCK_SIZE_BYTES).fill(fill);
const journalEntry = (seq: number): JournalEntryWire => ({ seq, tsUs: seq, lba: (seq * 3) % LVOL_BLOCKS, data: blocksOf(1, 0x30 + seq) });
const stateOfD = (stateSeq: number, state = PairState.Duplex): ControlBody =>
  ({ op: 'state', def: DEF_D, epoch: 0, state, cause: 0, stateSeq, baseSeq: stateSeq === 1 ? 0 : -1, drainTargetSeq: 0, consistentSeq: 0 });
const header = (type: FrameType, pairId: number, o: { status?: number; tag?: number; lba?: number; blocks?: number } = {}) =>
  ({ type, status: o.status ?? 0, pairId, tag: o.tag ?? 0, lba: o.lba ?? 0, blocks: o.blocks ?? 0 });

function lastSentTo(hw: RigHardware, to: number): Uint8Array {
  const s = [...hw.sent].reverse().find((x) => x.to === to);
  if (!s) throw new Error(`nothing sent to storage ${to}`);
  return s.frame;
}

interface Rig { hw: RigHardware; c: Controller }

/** A controller with pair S (sync source, duplex) and pair D (async destination, duplex, entries 1..3 applied); nothing outstanding. */
function rig(): Rig {
  const hw = new RigHardware(ME);
  const c = new Controller(hw);
  c.boot();
  // Pair S: created here, the stub partner agrees, no initial copy → duplex.
  c.onCommand(1, { op: 'create', initialCopy: 'none', pair: { pairId: PAIR_S, localLvol: LVOL_S, remoteStorageId: S_DEST, remoteLvol: 0, copyType: 'sync', fence: 'never' } });
  const req = decodeControl(decodeFrame(lastSentTo(hw, S_DEST))) as { reqId: number };
  c.onFrame(S_DEST, encodeControl(PAIR_S, { op: 'create-reply', reqId: req.reqId }));
  // Pair D: created by its source, put in duplex, three journal entries applied.
  c.onFrame(D_SOURCE, encodeControl(PAIR_D, { op: 'create', reqId: 1, def: DEF_D }));
  c.onFrame(D_SOURCE, encodeControl(PAIR_D, stateOfD(1)));
  c.onFrame(D_SOURCE, encodeJournalBatch(PAIR_D, { entries: [1, 2, 3].map(journalEntry) }));
  // One host write to S, copied synchronously and acknowledged: nothing is left in flight.
  c.onHostIo({ tag: 1, op: 'write', lvol: LVOL_S, lba: 5, blocks: 2, data: blocksOf(2, 0x5a), port: 0 });
  const sw = decodeFrame(lastSentTo(hw, S_DEST));
  c.onFrame(S_DEST, encodeFrame(header(FrameType.SyncAck, PAIR_S, { tag: sw.tag })));
  if (hw.replies.get(1)?.ok !== true || hw.completions[0]?.status !== 'ok') throw new Error('rig setup failed');
  const recs = readDefinitionInformation(hw.controlMemory);
  const s = recs.find((p) => p.pairId === PAIR_S), d = recs.find((p) => p.pairId === PAIR_D);
  if (s?.state !== PairState.Duplex || s.role !== 'source' || d?.state !== PairState.Duplex || d.role !== 'destination' || d.appliedSeq !== 3) {
    throw new Error(`rig setup failed: ${JSON.stringify(recs)}`);
  }
  hw.clearLogs();
  return { hw, c };
}

interface Snapshot { cm: Int32Array; disk: Uint8Array }
const snapshot = (hw: RigHardware): Snapshot => ({ cm: hw.controlMemory.slice(), disk: hw.diskBytes.slice() });

/** What changed since the snapshot (undefined: nothing), described by pair field where possible. */
function changes(hw: RigHardware, snap: Snapshot): string | undefined {
  const out: string[] = [];
  const cm = hw.controlMemory;
  let word = -1;
  for (let i = 0; i < cm.length; i++) if (cm[i] !== snap.cm[i]) { word = i; break; }
  if (word >= 0) {
    const before = readDefinitionInformation(snap.cm), after = readDefinitionInformation(cm);
    out.push(`control memory word ${word} changed; pairs ${describePairDiff(before, after) || '(bitmap/journal words only)'}`);
  }
  if (Buffer.compare(hw.diskBytes, snap.disk) !== 0) {
    let i = 0;
    while (hw.diskBytes[i] === snap.disk[i]) i++;
    out.push(`volume byte changed: LVOL ${Math.floor(i / LVOL_BYTES)} block ${Math.floor((i % LVOL_BYTES) / BLOCK_SIZE_BYTES)}`);
  }
  return out.length ? out.join('; ') : undefined;
}

function describePairDiff(before: PairRecord[], after: PairRecord[]): string {
  const parts: string[] = [];
  const ids = new Set([...before, ...after].map((p) => p.pairId));
  for (const id of ids) {
    const b = before.find((p) => p.pairId === id), a = after.find((p) => p.pairId === id);
    if (!b || !a) { parts.push(`pair ${id} ${b ? 'deleted' : 'created'}`); continue; }
    for (const k of Object.keys(b) as Array<keyof PairRecord>) if (b[k] !== a[k]) parts.push(`pair ${id} ${k} ${String(b[k])}→${String(a[k])}`);
  }
  return parts.join(', ');
}

/** The controller still works: queries answer correctly, the next journal entry applies, a host write completes. */
function expectHealthy({ hw, c }: Rig, appliedSeq = 3): void {
  hw.clearLogs();
  c.onCommand(9001, { op: 'query', pairId: PAIR_S });
  c.onCommand(9002, { op: 'query', pairId: PAIR_D });
  const qs = hw.replies.get(9001), qd = hw.replies.get(9002);
  if (!qs?.ok || !qd?.ok) throw new Error(`query refused afterwards: ${JSON.stringify([qs, qd])}`);
  expect(qs.pair).toMatchObject({ pairId: PAIR_S, role: 'source', state: 'duplex', copyType: 'sync', localLvol: LVOL_S, remoteStorageId: S_DEST });
  expect(qd.pair).toMatchObject({ pairId: PAIR_D, role: 'destination', state: 'duplex', copyType: 'async', localLvol: LVOL_D, journalAppliedSeq: appliedSeq });
  const next = journalEntry(appliedSeq + 1);
  c.onFrame(D_SOURCE, encodeJournalBatch(PAIR_D, { entries: [next] }));
  const ack = decodeFrame(lastSentTo(hw, D_SOURCE));
  expect([ack.type, ack.tag]).toEqual([FrameType.JournalAck, appliedSeq + 1]);
  expect(Buffer.compare(hw.disk.read(LVOL_D, next.lba, 1), next.data)).toBe(0);
  c.onHostIo({ tag: 77, op: 'write', lvol: LVOL_FREE, lba: 9, blocks: 1, data: blocksOf(1, 0xee), port: 0 });
  expect(hw.completions.at(-1)?.status).toBe('ok');
}

// ───────────────────────────── arbitraries: values ─────────────────────────────

const U32 = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 5, 7, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);
/** Values that are not an unsigned 32-bit integer (and not -0, which msgpack turns into 0). */
const NOT_U32: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(-1, 1.5, 2 ** 32, 2 ** 53, NaN, Infinity, -Infinity, '1', '', null, true, false, [1], {}),
  fc.integer({ min: -(2 ** 31), max: -1 }),
  fc.double({ noNaN: true }).filter((x) => !Number.isInteger(x)),
  fc.string(),
);
const NOT_NUMBER: fc.Arbitrary<unknown> = fc.oneof(fc.constantFrom<unknown>('0', '', null, true, [], {}, [0]), fc.string());
const badString = (good: readonly string[]): fc.Arbitrary<unknown> =>
  fc.oneof(fc.string().filter((s) => !good.includes(s)), fc.constantFrom<unknown>(null, 0, 1, true, [good[0]], {}, good[0]!.toUpperCase()));

const CONTROL_OPS = ['create', 'create-reply', 'state', 'bitmap-request', 'bitmap-reply', 'forward-command', 'command-reply', 'delete'] as const;

function safePack(v: unknown): Uint8Array | undefined {
  try { return pack(v); } catch { return undefined; }
}
/** fc.anything() (with the exotic options on) packed with msgpackr. */
const PACKED_ANYTHING: fc.Arbitrary<Uint8Array> = fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true, withSparseArray: true, withBoxedValues: true })
  .map(safePack).filter((b): b is Uint8Array => b !== undefined);
/** Hostile msgpack: deep nesting, huge declared lengths, record/extension tokens, truncated values. */
const HOSTILE_MSGPACK: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.integer({ min: 1, max: 50_000 }).map((n) => { const b = new Uint8Array(n + 1).fill(0x91); b[n] = 0xc0; return b; }),
  fc.constantFrom(
    Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff),                 // array32 of 2^32-1 elements, none present
    Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff),                 // map32 likewise
    Uint8Array.of(0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2),           // bin32 longer than the frame
    Uint8Array.of(0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61),           // str32 longer than the frame
    Uint8Array.of(0xd4, 0x72, 0x40, 0x91, 0xa1, 0x78, 0x01),     // record definition (id 0x40) + a record
    Uint8Array.of(0xc7, 0x02, 0x78, 0xa1, 0x28, 0xc0),           // RegExp extension with an invalid pattern
    Uint8Array.of(0xc7, 0x03, 0x74, 0x08, 0x01, 0x02),           // typed-array extension, misaligned Float64Array
    Uint8Array.of(0xd6, 0xff, 0xff, 0xff, 0xff, 0xff),           // timestamp extension
    Uint8Array.of(0xc1),                                         // never used
    Uint8Array.of(0x81, 0xa2, 0x6f, 0x70),                       // map truncated after its key
    Uint8Array.of(0x81, 0xa2, 0x6f, 0x70, 0xa5, 0x73, 0x74, 0x61, 0x74, 0x65, 0x00), // {op:'state'} + trailing byte
  ),
);
const RANDOM_BODY = fc.oneof(fc.uint8Array({ maxLength: 96 }), PACKED_ANYTHING, HOSTILE_MSGPACK);

// ───────────────────────────── arbitraries: valid frames and bodies ─────────────────────────────

const arbDef: fc.Arbitrary<WireDefinition> = fc.record({
  pairId: U32, role: fc.constantFrom('source', 'destination'), localLvol: U32, remoteLvol: U32,
  direction: fc.constantFrom('forward', 'reverse'), copyType: fc.constantFrom('sync', 'async'), fence: fc.constantFrom('data', 'status', 'never'),
  journalLvol: fc.integer({ min: -1, max: 8 }), remoteJournalLvol: fc.integer({ min: -1, max: 8 }),
});
const arbEntry: fc.Arbitrary<JournalEntryWire> = fc.record({
  seq: fc.integer({ min: 1, max: 0xffffffff }), tsUs: fc.double({ noNaN: true, noDefaultInfinity: true }), lba: U32,
  data: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.nat(255)).map(([n, f]) => blocksOf(n, f)),
});
const arbControlBody: fc.Arbitrary<ControlBody> = fc.oneof(
  fc.record({ op: fc.constant('create' as const), reqId: U32, def: arbDef }),
  fc.record({ op: fc.constant('create-reply' as const), reqId: U32, error: fc.option(fc.string(), { nil: undefined }) }, { requiredKeys: ['op', 'reqId'] }),
  fc.record({ op: fc.constant('state' as const), def: arbDef, epoch: U32, state: fc.integer({ min: 0, max: 6 }), cause: fc.integer({ min: 0, max: 7 }), stateSeq: U32,
    baseSeq: fc.integer({ min: -1, max: 100 }), drainTargetSeq: fc.nat(100), consistentSeq: fc.integer({ min: -1, max: 100 }) }),
  fc.record({ op: fc.constant('bitmap-request' as const), reqId: U32, def: arbDef, epoch: U32, stateSeq: U32, state: fc.integer({ min: 0, max: 6 }), gen: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ op: fc.constant('bitmap-reply' as const), reqId: U32, words: fc.uint8Array({ maxLength: 16 }), newestSeq: fc.nat() }),
  fc.record({ op: fc.constant('forward-command' as const), reqId: U32, command: fc.constantFrom<unknown>({ op: 'status' }, { op: 'suspend', pairId: 3 }) }),
  fc.record({ op: fc.constant('command-reply' as const), reqId: U32, reply: fc.constantFrom<unknown>({ ok: false, error: 'x' }) }),
  fc.record({ op: fc.constant('delete' as const) }),
);

/** Any valid frame, any type, random header fields. */
const arbValidFrame: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({ pairId: U32, tag: U32, lba: U32, status: fc.nat(255), gen: fc.integer({ min: 0, max: 0xffff }), blocks: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(MAX_IO_BYTES / BLOCK_SIZE_BYTES) }) })
    .map((h) => encodeFrame({ type: FrameType.SyncWrite, ...h }, blocksOf(h.blocks, 1))),
  fc.record({ pairId: U32, tag: U32, lba: U32, blocks: U32, status: fc.nat(255), gen: fc.integer({ min: 0, max: 0xffff }) })
    .map((h) => encodeFrame({ type: FrameType.SyncAck, ...h })),
  fc.record({ pairId: U32, tag: U32, lba: U32, status: fc.nat(255), blocks: fc.integer({ min: 1, max: TRACK_SIZE_BYTES / BLOCK_SIZE_BYTES }) })
    .map((h) => encodeFrame({ type: FrameType.FormationCopy, ...h }, blocksOf(h.blocks, 2))),
  fc.record({ type: fc.constantFrom(FrameType.SyncAck, FrameType.FormationAck, FrameType.JournalAck, FrameType.Keepalive), pairId: U32, tag: U32, lba: U32, blocks: U32, status: fc.nat(255) })
    .map((h) => encodeFrame(h)),
  fc.tuple(U32, fc.array(arbEntry, { maxLength: 3 })).map(([p, entries]) => encodeJournalBatch(p, { entries })),
  fc.tuple(U32, arbControlBody).map(([p, b]) => encodeControl(p, b)),
);

// ───────────────────────────── arbitraries: mutations ─────────────────────────────

const u32At = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off);
const setU32 = (b: Uint8Array, off: number, v: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(off, v >>> 0);
const NO_BODY_TYPES: number[] = [FrameType.SyncAck, FrameType.FormationAck, FrameType.JournalAck, FrameType.Keepalive];

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; extra: Uint8Array }
  | { kind: 'flip'; flips: Array<[number, number]> }
  | { kind: 'bodyBytes'; value: number }
  | { kind: 'blocks'; value: number }
  | { kind: 'type'; value: number };

const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({ kind: fc.constant('flip' as const), flips: fc.array(fc.tuple(fc.nat(FRAME_HEADER_BYTES - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('bodyBytes' as const), value: fc.oneof(U32, fc.constantFrom(MAX_FRAME_BODY_BYTES, MAX_FRAME_BODY_BYTES + 1)) }),
  fc.record({ kind: fc.constant('blocks' as const), value: fc.oneof(U32, fc.constantFrom(0, 0xffffffff, 0x100000, 257)) }),
  fc.record({ kind: fc.constant('type' as const), value: fc.nat(255) }),
);

/** Applies a mutation (the result may or may not be valid). */
function mutate(frame: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case 'truncate': return frame.slice(0, m.at % Math.max(1, frame.length));
    case 'extend': { const out = new Uint8Array(frame.length + m.extra.length); out.set(frame); out.set(m.extra, frame.length); return out; }
    case 'flip': { const out = frame.slice(); for (const [i, x] of m.flips) if (i < out.length) out[i]! ^= x; return out; }
    case 'bodyBytes': { const out = frame.slice(); if (out.length >= 24) setU32(out, 20, m.value); return out; }
    case 'blocks': { const out = frame.slice(); if (out.length >= 24) setU32(out, 16, m.value); return out; }
    case 'type': { const out = frame.slice(); if (out.length > 0) out[0] = m.value; return out; }
  }
}

/**
 * A mutation that always leaves a frame that fails the header check, whatever header flips came first.
 * 'type': an unknown frame type; 'length': the length no longer matches bodyBytes; 'bodyBytes': likewise from the
 * other side; 'blocks': a data frame whose blocks disagree with its body; 'body': a body on a frame that has none.
 */
type Breaker = { kind: 'type'; value: number } | { kind: 'length'; delta: number } | { kind: 'bodyBytes'; offset: number }
  | { kind: 'blocks'; offset: number } | { kind: 'body'; extra: Uint8Array };
const arbBreaker: fc.Arbitrary<Breaker> = fc.oneof(
  fc.record({ kind: fc.constant('type' as const), value: fc.oneof(fc.constant(0), fc.integer({ min: 9, max: 255 })) }),
  fc.record({ kind: fc.constant('length' as const), delta: fc.integer({ min: -300, max: 300 }).filter((d) => d !== 0) }),
  fc.record({ kind: fc.constant('bodyBytes' as const), offset: fc.integer({ min: 0, max: 0xfffffffe }) }),
  fc.record({ kind: fc.constant('blocks' as const), offset: fc.integer({ min: 0, max: 0xfffffffe }) }),
  fc.record({ kind: fc.constant('body' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
);

function breakFrame(frame: Uint8Array, br: Breaker): Uint8Array {
  const out = frame.slice();
  const type = out[0]!, bodyBytes = u32At(out, 20), actualBody = out.length - FRAME_HEADER_BYTES;
  switch (br.kind) {
    case 'length': {
      let len = Math.max(0, out.length + br.delta);
      if (len === FRAME_HEADER_BYTES + bodyBytes) len += 1;
      const r = new Uint8Array(len);
      r.set(out.subarray(0, Math.min(len, out.length)));
      return r;
    }
    case 'bodyBytes':
      setU32(out, 20, (actualBody + 1 + br.offset) % 2 ** 32); // never equals the real body length
      return out;
    case 'blocks':
      if ((type === FrameType.SyncWrite || type === FrameType.FormationCopy) && bodyBytes === actualBody && actualBody % BLOCK_SIZE_BYTES === 0) {
        setU32(out, 16, (actualBody / BLOCK_SIZE_BYTES + 1 + br.offset) % 2 ** 32);
        return out;
      }
      return breakFrame(frame, { kind: 'type', value: 0 });
    case 'body':
      if (NO_BODY_TYPES.includes(type)) {
        const r = new Uint8Array(FRAME_HEADER_BYTES + br.extra.length);
        r.set(out.subarray(0, FRAME_HEADER_BYTES));
        r.set(br.extra, FRAME_HEADER_BYTES);
        setU32(r, 20, br.extra.length);
        return r;
      }
      return breakFrame(frame, { kind: 'type', value: 0xff });
    case 'type':
      out[0] = br.value;
      return out;
  }
}

// ───────────────────────────── arbitraries: malformed bodies ─────────────────────────────

function withField(body: object, key: string, value: unknown): Record<string, unknown> {
  return { ...(body as Record<string, unknown>), [key]: value };
}

/** A control body with exactly one field made invalid in a way decodeControl must catch. */
const arbBrokenControlBody: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(arbControlBody, badString(CONTROL_OPS)).map(([b, op]) => withField(b, 'op', op)),
  fc.tuple(fc.constantFrom<'create' | 'state' | 'bitmap-request'>('create', 'state', 'bitmap-request'), arbControlBody, arbDef,
    fc.oneof(
      fc.constantFrom<unknown>(null, 0, 'def', [], true).map((v) => ({ whole: v })),
      fc.tuple(fc.constantFrom('pairId', 'localLvol', 'remoteLvol'), NOT_U32).map(([k, v]) => ({ k, v })),
      badString(['source', 'destination']).map((v) => ({ k: 'role', v })),
      badString(['forward', 'reverse']).map((v) => ({ k: 'direction', v })),
      badString(['sync', 'async']).map((v) => ({ k: 'copyType', v })),
      badString(['data', 'status', 'never']).map((v) => ({ k: 'fence', v })),
      fc.tuple(fc.constantFrom('journalLvol', 'remoteJournalLvol'), NOT_NUMBER).map(([k, v]) => ({ k, v })),
    ))
    .map(([op, b, def, brk]) => withField({ ...b, op, reqId: 1, state: 2, cause: 0, stateSeq: 1, baseSeq: 0, drainTargetSeq: 0, consistentSeq: 0 },
      'def', 'whole' in brk ? brk.whole : withField(def, brk.k, brk.v))),
  fc.tuple(fc.constantFrom('create', 'create-reply', 'bitmap-request', 'bitmap-reply', 'forward-command', 'command-reply'), arbDef, NOT_U32)
    .map(([op, def, reqId]) => ({ op, reqId, def, state: 1, words: new Uint8Array(4), command: { op: 'status' }, reply: {} })),
  fc.tuple(fc.constantFrom('state', 'bitmap-request'), arbDef, fc.oneof(NOT_U32, fc.integer({ min: 7, max: 1000 })))
    .map(([op, def, state]) => ({ op, reqId: 1, def, state, cause: 0, stateSeq: 1, baseSeq: 0, drainTargetSeq: 0, consistentSeq: 0 })),
  fc.tuple(arbDef, fc.oneof(
    fc.tuple(fc.constantFrom('stateSeq', 'cause'), NOT_U32),
    fc.tuple(fc.constantFrom('baseSeq', 'drainTargetSeq', 'consistentSeq'), NOT_NUMBER),
  )).map(([def, [k, v]]) => withField({ op: 'state', def, state: 2, cause: 0, stateSeq: 1, baseSeq: 0, drainTargetSeq: 0, consistentSeq: 0 }, k, v)),
  fc.constantFrom<unknown>(null, [], [1, 2, 3], 'state', 0).map((words) => ({ op: 'bitmap-reply', reqId: 1, words, newestSeq: 0 })),
  fc.constantFrom<unknown>(null, 0, 'state', [], true, { op: 'state' }),
);

/** A journal batch body with exactly one thing wrong. */
/** The binary body of a valid one-entry journal batch (the frame header's tag must then say 1). */
const batchBodyOf = (e: JournalEntryWire, endSeq?: number): Uint8Array =>
  decodeFrame(encodeJournalBatch(PAIR_D, endSeq === undefined ? { entries: [e] } : { entries: [e], endSeq })).body.slice();
/**
 * A journal batch body (binary, one entry, header tag 1) broken in exactly one field. Offsets: body header
 * 0 count, 4 flags, 8 endSeq, 12 reserved; the entry at 16: +0 seq, +4 lba, +8 dataBytes, +12 reserved, +16 tsUs, +24 data.
 */
const arbBrokenBatchBody: fc.Arbitrary<Uint8Array> = fc.tuple(fc.integer({ min: 1, max: 50 }), fc.oneof(
  fc.constantFrom(0, 2, 0xffffffff).map((v) => ['count', 0, v] as const),
  fc.integer({ min: 2, max: 0xffffffff }).map((v) => ['flags', 4, v] as const),
  fc.integer({ min: 1, max: 0xffffffff }).map((v) => ['reserved', 12, v] as const),
  fc.constant(['seq', 16, 0] as const),
  fc.integer({ min: 1, max: 0xffffffff }).map((v) => ['entry reserved', 28, v] as const),
  fc.constantFrom(0, 100, BLOCK_SIZE_BYTES + 1, 2 * BLOCK_SIZE_BYTES, MAX_IO_BYTES + BLOCK_SIZE_BYTES, 0xffffffff).map((v) => ['dataBytes', 24, v] as const),
  fc.constantFrom(NaN, Infinity, -Infinity).map((v) => ['tsUs', 32, v] as const),
  fc.integer({ min: 1, max: 40 + BLOCK_SIZE_BYTES - 1 }).map((n) => ['truncated', -1, n] as const),
  fc.integer({ min: 1, max: 16 }).map((n) => ['trailing', -2, n] as const),
)).map(([seq, [, at, v]]) => {
  const body = batchBodyOf(journalEntry(seq));
  const dv = new DataView(body.buffer);
  if (at === -1) return body.subarray(0, body.length - v);
  if (at === -2) { const longer = new Uint8Array(body.length + v); longer.set(body); return longer; }
  if (at === 32) dv.setFloat64(at, v, true);
  else dv.setUint32(at, v, true);
  return body;
});

function throwsFrameError(f: () => unknown): boolean {
  try { f(); return false; } catch (e) {
    if (e instanceof FrameError) return true;
    throw new Error(`expected FrameError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

// ───────────────────────────── arbitraries: commands that must be refused ─────────────────────────────

const PAIR_OPS = ['suspend', 'drain', 'resync', 'reverse', 'delete', 'query'] as const;
const ALL_OPS: string[] = ['create', 'status', ...PAIR_OPS];
const NEW_PAIR = 20;
const goodCreate = { pairId: NEW_PAIR, localLvol: LVOL_FREE, remoteStorageId: S_DEST, remoteLvol: 0, copyType: 'sync', fence: 'never' };
const goodAsyncCreate = { ...goodCreate, copyType: 'async', journalLvol: LVOL_S, remoteJournalLvol: 1 };

interface Refused { cmd: unknown; expect: RegExp[]; what: string }
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// The firmware prints offending values as show() does: strings quoted, objects as JSON, the rest as String().
const shown = (v: unknown) => {
  let t: string;
  try { t = typeof v === 'string' ? `'${v}'` : typeof v === 'object' && v !== null ? JSON.stringify(v) ?? typeof v : String(v); } catch { t = `(${typeof v})`; }
  return esc(t);
};
/** Values that are no LVOL of the rig. */
const NOT_LVOL: fc.Arbitrary<unknown> = fc.oneof(fc.integer({ min: LVOL_COUNT, max: 1000 }), fc.integer({ min: -1000, max: -1 }),
  fc.constantFrom<unknown>(1.5, NaN, Infinity, '0', null, undefined, true, [0]));
/** Values that are not an existing pair id (any type). */
const NOT_A_PAIR: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer().filter((x) => !KNOWN_PAIRS.includes(x)), fc.double().filter((x) => !KNOWN_PAIRS.includes(x)),
  fc.constantFrom<unknown>('3', '5', null, undefined, [3], { pairId: 3 }, true), fc.string(),
  fc.anything().filter((x) => !KNOWN_PAIRS.includes(x as number)),
);

const arbRefusedCommand: fc.Arbitrary<Refused> = fc.oneof(
  // Not a command at all.
  fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true, withSparseArray: true, withBoxedValues: true })
    .filter((x) => !(x !== null && typeof x === 'object' && typeof (x as { op?: unknown }).op === 'string'))
    .map((cmd) => ({ cmd, expect: [/malformed command/], what: 'malformed' })),
  // An op nobody knows, with random other fields.
  fc.tuple(fc.string().filter((s) => !ALL_OPS.includes(s)), fc.dictionary(fc.string(), fc.anything(), { maxKeys: 3 }))
    .map(([op, rest]) => ({ cmd: { ...rest, op }, expect: [new RegExp(`unknown command '${esc(op)}'`)], what: 'unknown op' })),
  // A pair command naming no pair of this storage system (any type of id).
  fc.tuple(fc.constantFrom(...PAIR_OPS), NOT_A_PAIR, fc.option(fc.string(), { nil: undefined }))
    .map(([op, pairId, step]) => ({ cmd: { op, pairId, step }, expect: [new RegExp(`^${op}: unknown pair`), new RegExp(`on storage ${ME}`)], what: 'unknown pair' })),
  // Commands the acceptance table refuses in duplex.
  fc.constantFrom(['drain', PAIR_S, 'sync'], ['reverse', PAIR_S, 'sync'], ['reverse', PAIR_D, 'async'])
    .map(([op, pairId, ct]) => ({ cmd: { op, pairId }, expect: [new RegExp(`^${op} refused: pair ${pairId} \\(${ct}\\) is duplex`)], what: 'refused in duplex' })),
  // create with one thing wrong.
  fc.oneof(
    fc.oneof(fc.constantFrom<unknown>(0, -1, 65536, 1.5, NaN, '20', null, undefined, true), fc.integer({ min: 65536 }), fc.integer({ max: 0 }))
      .map((v) => ({ pair: { ...goodCreate, pairId: v }, re: [/pair id must be 1\.\.65535/, new RegExp(`not ${shown(v)}$`)] })),
    badString(['sync', 'async']).map((v) => ({ pair: { ...goodCreate, copyType: v }, re: [/copy type must be sync or async/, new RegExp(shown(v))] })),
    badString(['data', 'status', 'never']).map((v) => ({ pair: { ...goodCreate, fence: v }, re: [/fence level must be data, status or never/, new RegExp(shown(v))] })),
    fc.constantFrom<unknown>(ME, 1.5, NaN, '2', null, undefined).map((v) => ({ pair: { ...goodCreate, remoteStorageId: v }, re: [new RegExp(`bad destination storage ${shown(v)}`)] })),
    NOT_LVOL.map((v) => ({ pair: { ...goodCreate, localLvol: v }, re: [new RegExp(`source LVOL ${shown(v)} does not exist on storage ${ME}`)] })),
    fc.oneof(fc.integer({ max: -1 }), fc.constantFrom<unknown>(1.5, NaN, '0', null)).map((v) => ({ pair: { ...goodCreate, remoteLvol: v }, re: [new RegExp(`bad destination LVOL ${shown(v)}`)] })),
    fc.constantFrom('journalLvol', 'remoteJournalLvol').map((k) => ({ pair: withField(goodAsyncCreate, k, undefined), re: [/needs a journal volume on both sides/] })),
    NOT_LVOL.filter((v) => v !== undefined).map((v) => ({ pair: { ...goodAsyncCreate, journalLvol: v }, re: [new RegExp(`journal LVOL ${shown(v)} does not exist`)] })),
    fc.constant({ pair: { ...goodAsyncCreate, journalLvol: LVOL_FREE }, re: [/journal volume and data volume must differ/] }),
    fc.constant({ pair: { ...goodAsyncCreate, journalLvol: LVOL_JNL }, re: [new RegExp(`journal LVOL ${LVOL_JNL} is in use by pair ${PAIR_D}`)] }),
    fc.constantFrom<unknown>(undefined, null, 7, 'pair').map((v) => ({ pair: v, re: [/missing pair definition/] })),
  ).map(({ pair, re }) => ({ cmd: { op: 'create', initialCopy: 'full', pair }, expect: [/^create: /, ...re], what: 'bad create' })),
  badString(['full', 'none', 'defer']).map((v) => ({ cmd: { op: 'create', initialCopy: v, pair: goodCreate },
    expect: [/^create: initialCopy must be full, none or defer/, new RegExp(shown(v))], what: 'bad initialCopy' })),
);

// ───────────────────────────── arbitraries: frames that must change nothing ─────────────────────────────

const FROM_ANY = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 99), U32);
interface Garbage { kind: string; from: number; frame: Uint8Array }

/** Valid, correctly addressed frames for the rig, many of which would change something — the raw material to break. */
const arbRigFrame: fc.Arbitrary<{ from: number; frame: Uint8Array }> = fc.oneof(
  fc.record({ lba: fc.nat(LVOL_BLOCKS - 4), blocks: fc.integer({ min: 1, max: 4 }), tag: U32, fill: fc.nat(255) })
    .map((x) => ({ from: D_SOURCE, frame: encodeFrame(header(FrameType.SyncWrite, PAIR_D, x), blocksOf(x.blocks, x.fill)) })),
  fc.record({ track: fc.nat(3), tag: U32, fill: fc.nat(255) })
    .map((x) => ({ from: D_SOURCE, frame: encodeFrame(header(FrameType.FormationCopy, PAIR_D, { lba: x.track * 16, blocks: 16, tag: x.tag }), blocksOf(16, x.fill)) })),
  fc.record({ type: fc.constantFrom(FrameType.SyncAck, FrameType.FormationAck, FrameType.JournalAck), tag: U32, status: fc.nat(3) })
    .map((x) => ({ from: S_DEST, frame: encodeFrame(header(x.type, PAIR_S, x)) })),
  fc.constant({ from: D_SOURCE, frame: encodeFrame(header(FrameType.Keepalive, 0)) }),
  fc.integer({ min: 4, max: 8 }).map((seq) => ({ from: D_SOURCE, frame: encodeJournalBatch(PAIR_D, { entries: [journalEntry(seq)] }) })),
  fc.constantFrom<[number, number, ControlBody]>(
    [D_SOURCE, PAIR_D, stateOfD(2, PairState.Suspend)],
    [D_SOURCE, PAIR_D, { op: 'delete' }],
    [D_SOURCE, PAIR_D, { op: 'bitmap-request', reqId: 9, def: DEF_D, epoch: 0, stateSeq: 1, state: PairState.DuplexPending, gen: 1 }],
    [S_DEST, PAIR_S, { op: 'delete' }],
    [S_DEST, PAIR_S, { op: 'forward-command', reqId: 9, command: { op: 'suspend', pairId: PAIR_S } }],
    [4, 30, { op: 'create', reqId: 9, def: { ...DEF_D, pairId: 30, localLvol: LVOL_FREE, copyType: 'sync' } }],
  ).map(([from, pairId, body]) => ({ from, frame: encodeControl(pairId, body) })),
);

/** Counterexamples print as a header summary plus the first body bytes, not as kilobytes of array. */
function printable(g: Garbage): Garbage {
  const f = g.frame;
  const hdr = f.length >= FRAME_HEADER_BYTES
    ? `type ${f[0]} status ${f[1]} pairId ${u32At(f, 4)} tag ${u32At(f, 8)} lba ${u32At(f, 12)} blocks ${u32At(f, 16)} bodyBytes ${u32At(f, 20)}` : 'short';
  const body = Buffer.from(f.subarray(Math.min(f.length, FRAME_HEADER_BYTES), FRAME_HEADER_BYTES + 48)).toString('hex');
  return Object.assign(g, { [fc.toStringMethod]: () => `${g.kind} from ${g.from}: ${f.length} bytes [${hdr}] body ${body}${f.length > FRAME_HEADER_BYTES + 48 ? '…' : ''}` });
}

/**
 * Frames that cannot be valid for the rig. Left out on purpose, because the firmware acts on them (bugs, shown by
 * the it.fails tests below): a forward-command carrying an acceptable command from a non-partner, and acks from a
 * non-partner while something is outstanding (the rig has nothing outstanding, so the acks generated here are inert).
 */
const arbGarbageFrame: fc.Arbitrary<Garbage> = fc.oneof(
  // Random bytes from anyone.
  fc.tuple(FROM_ANY, fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: FRAME_HEADER_BYTES, maxLength: 120 })))
    .map(([from, frame]) => ({ kind: 'random bytes', from, frame })),
  // A correctly addressed frame whose header no longer checks out (after random header flips, too).
  fc.tuple(arbRigFrame, fc.array(fc.tuple(fc.nat(FRAME_HEADER_BYTES - 1), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }), arbBreaker)
    .map(([{ from, frame }, flips, br]) => ({ kind: `broken header (${br.kind})`, from, frame: breakFrame(mutate(frame, { kind: 'flip', flips }), br) })),
  // A valid frame naming a pair this system does not have (creates and relayed commands excepted: they name no pair).
  fc.tuple(FROM_ANY, arbValidFrame, U32.filter((p) => !KNOWN_PAIRS.includes(p))).filter(([, f]) => {
    if (f[0] !== FrameType.Control) return true;
    const op = (decodeControl(decodeFrame(f)) as { op: string }).op;
    return op !== 'create' && op !== 'forward-command';
  }).map(([from, f, pairId]) => { const frame = f.slice(); setU32(frame, 4, pairId); return { kind: 'unknown pair', from, frame }; }),
  // A correctly formed frame for S or D from a storage system that is not that pair's partner.
  fc.tuple(fc.constantFrom(PAIR_S, PAIR_D), FROM_ANY, fc.oneof(
    fc.record({ lba: fc.nat(LVOL_BLOCKS - 1), tag: U32 }).map((x) => (p: number) => encodeFrame(header(FrameType.SyncWrite, p, { ...x, blocks: 1 }), blocksOf(1, 0xab))),
    fc.record({ track: fc.nat(3), tag: U32 }).map((x) => (p: number) => encodeFrame(header(FrameType.FormationCopy, p, { lba: x.track * 16, blocks: 16, tag: x.tag }), blocksOf(16, 0xcd))),
    fc.constant((p: number) => encodeJournalBatch(p, { entries: [journalEntry(4), journalEntry(5)] })),
    fc.record({ type: fc.constantFrom(FrameType.SyncAck, FrameType.FormationAck, FrameType.JournalAck), tag: U32, status: fc.nat(3) })
      .map((x) => (p: number) => encodeFrame(header(x.type, p, x))),
    fc.constantFrom<(p: number) => ControlBody>(
      (p) => (p === PAIR_D ? stateOfD(50, PairState.Suspend) : { op: 'state', def: { ...DEF_D, pairId: p, role: 'source' }, epoch: 0, state: 4, cause: 0, stateSeq: 50, baseSeq: -1, drainTargetSeq: 0, consistentSeq: 0 }),
      (p) => ({ op: 'bitmap-request', reqId: 9, def: { ...DEF_D, pairId: p }, epoch: 0, stateSeq: 1, state: PairState.DuplexPending, gen: 1 }),
      () => ({ op: 'delete' }),
    ).map((mk) => (p: number) => encodeControl(p, mk(p))),
  )).filter(([p, from]) => from !== partnerOf(p)).map(([p, from, mk]) => ({ kind: 'wrong sender', from, frame: mk(p) })),
  // From the right partner for the right pair, but the body does not decode.
  fc.tuple(fc.constantFrom(PAIR_S, PAIR_D), fc.oneof(RANDOM_BODY, arbBrokenControlBody.map((b) => pack(b))))
    .map(([p, body]) => ({ kind: 'bad control body', from: partnerOf(p), frame: encodeFrame(header(FrameType.Control, p), body) }))
    .filter((g) => throwsFrameError(() => decodeControl(decodeFrame(g.frame)))),
  fc.oneof(RANDOM_BODY, arbBrokenBatchBody)
    .map((body) => ({ kind: 'bad journal batch body', from: D_SOURCE, frame: encodeFrame(header(FrameType.JournalBatch, PAIR_D, { tag: 1 }), body) }))
    .filter((g) => throwsFrameError(() => decodeJournalBatch(decodeFrame(g.frame)))),
  // A create this system must refuse: the pair exists, or the definition does not fit here.
  fc.tuple(FROM_ANY, U32, arbDef, fc.oneof(
    fc.constantFrom(PAIR_S, PAIR_D).map((pairId) => ({ pairId })),
    NOT_LVOL.filter((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0).map((localLvol) => ({ pairId: 40, localLvol: localLvol as number })),
    fc.constant({ pairId: 41, localLvol: LVOL_D }),                                                     // LVOL 1 is already D's destination
    fc.constant({ pairId: 42, localLvol: LVOL_FREE, copyType: 'async' as const, journalLvol: LVOL_JNL }), // journal in use by D
    fc.constant({ pairId: 43, localLvol: LVOL_FREE, copyType: 'async' as const, journalLvol: LVOL_FREE }), // journal = data volume
    fc.constant({ pairId: 44, localLvol: LVOL_FREE, copyType: 'async' as const, journalLvol: 9 }),
  )).map(([from, framePair, def, fix]) => ({ kind: 'refused create', from, frame: encodeControl(framePair, { op: 'create', reqId: 5, def: { ...def, ...fix } }) })),
  // A relayed command this system must refuse.
  fc.tuple(FROM_ANY, U32, arbRefusedCommand, U32).map(([from, p, r, reqId]) => ({
    kind: `refused forward-command (${r.what})`, from, frame: encodeControl(p, { op: 'forward-command', reqId, command: r.cmd }),
  })),
).map(printable);

// ───────────────────────────── properties: the codec ─────────────────────────────

/** A frame decodeFrame accepted must satisfy every rule it checks, and survive re-encoding unchanged. */
function expectRevalidates(bytes: Uint8Array, f: DecodedFrame): void {
  expect(typeof FrameType[f.type]).toBe('string');
  expect(f.body.length).toBe(bytes.length - FRAME_HEADER_BYTES);
  expect(f.body.length).toBeLessThanOrEqual(MAX_FRAME_BODY_BYTES);
  if (f.type === FrameType.SyncWrite || f.type === FrameType.FormationCopy) {
    expect(f.blocks).toBeGreaterThanOrEqual(1);
    expect(f.blocks * BLOCK_SIZE_BYTES).toBe(f.body.length);
    expect(f.body.length).toBeLessThanOrEqual(f.type === FrameType.SyncWrite ? MAX_IO_BYTES : TRACK_SIZE_BYTES);
  } else if (f.type !== FrameType.JournalBatch && f.type !== FrameType.Control) {
    expect(f.body.length).toBe(0);
  }
  // The copy generation (bytes 2-3) is carried by SyncWrite and SyncAck only; decodeFrame refuses it on any other.
  if (f.type !== FrameType.SyncWrite && f.type !== FrameType.SyncAck) expect(f.gen).toBe(0);
  const again = encodeFrame(f, f.body);
  expect(Buffer.compare(again, bytes)).toBe(0);
  const g = decodeFrame(again);
  expect({ ...g, body: null }).toEqual({ ...f, body: null });
  expect(Buffer.compare(g.body, f.body)).toBe(0);
}

describe('frame codec on garbage', () => {
  it('decodeFrame: random bytes and mutated valid frames either decode to a frame that re-validates, or throw FrameError', () => {
    const arbBytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      arbValidFrame,
      fc.tuple(arbValidFrame, fc.array(arbMutation, { minLength: 1, maxLength: 3 })).map(([f, ms]) => ms.reduce(mutate, f)),
      // At an offset inside a bigger buffer (the codec must honour byteOffset).
      fc.tuple(fc.oneof(arbValidFrame, fc.tuple(arbValidFrame, arbMutation).map(([f, m]) => mutate(f, m))), fc.nat(16), fc.nat(16)).map(([f, pre, post]) => {
        const big = new Uint8Array(pre + f.length + post).fill(0xa5);
        big.set(f, pre);
        return big.subarray(pre, pre + f.length);
      }),
    );
    fc.assert(fc.property(arbBytes, (bytes) => {
      let f: DecodedFrame;
      try {
        f = decodeFrame(bytes);
      } catch (e) {
        if (!(e instanceof FrameError)) throw new Error(`decodeFrame threw ${(e as Error).name}, not FrameError: ${(e as Error).message}`);
        expect((e as Error).message.length).toBeGreaterThan(0);
        return;
      }
      expectRevalidates(bytes, f);
    }), { seed: SEED, numRuns: 3000 });
  });

  it('a journal batch round-trips through its binary body (entries, endSeq), and FrameEncoder writes the bytes encodeFrame does', () => {
    const enc = new FrameEncoder();
    fc.assert(fc.property(U32, fc.array(arbEntry, { maxLength: 5 }), fc.option(U32, { nil: undefined }), (pairId, entries, endSeq) => {
      const batch = endSeq === undefined ? { entries } : { entries, endSeq };
      const frame = encodeJournalBatch(pairId, batch);
      expect(Buffer.compare(enc.journalBatch(pairId, batch), frame)).toBe(0);
      const f = decodeFrame(frame);
      expect(f.tag).toBe(entries.length);
      const back = decodeJournalBatch(f);
      expect(back.endSeq).toBe(endSeq);
      expect(back.entries.map((e) => ({ ...e, data: [...e.data] }))).toEqual(entries.map((e) => ({ ...e, data: [...e.data] })));
      // Entry data sits 8-byte aligned in the frame, so the destination's copy to its volume goes word by word.
      for (const e of back.entries) expect((e.data.byteOffset - frame.byteOffset) % 8).toBe(0);
    }), { seed: SEED, numRuns: 300 });
    fc.assert(fc.property(arbValidFrame, (frame) => {
      const f = decodeFrame(frame);
      if (f.type === FrameType.JournalBatch || f.type === FrameType.Control) return;
      expect(Buffer.compare(enc.frame(f, f.body.length > 0 ? f.body : undefined), frame)).toBe(0);
    }), { seed: SEED, numRuns: 300 });
  });

  it('decodeFrame: a copy generation is carried by SyncWrite and SyncAck, and refused on every other frame type by name', () => {
    const sw = encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 7, tag: 9, lba: 0, blocks: 1, gen: 0xfffe }, new Uint8Array(BLOCK_SIZE_BYTES));
    expect(decodeFrame(sw).gen).toBe(0xfffe);
    expect(decodeFrame(encodeFrame({ type: FrameType.SyncAck, status: 0, pairId: 7, tag: 9, lba: 0, blocks: 0, gen: 3 })).gen).toBe(3);
    for (const type of [FrameType.FormationAck, FrameType.JournalAck, FrameType.Keepalive]) {
      const f = encodeFrame({ type, status: 0, pairId: 7, tag: 9, lba: 0, blocks: 0 });
      f[3] = 1;
      expect(() => decodeFrame(f)).toThrow(new RegExp(`${FrameType[type]} frame: copy generation 1 set`));
    }
  });

  it('decodeFrame: a non-Uint8Array is refused with FrameError', () => {
    for (const x of [null, undefined, 'frame', [1, 2, 3], new ArrayBuffer(30), new Uint16Array(20), { length: 30 }]) {
      expect(() => decodeFrame(x as unknown as Uint8Array)).toThrow(FrameError);
    }
  });

  it('decodeControl / decodeJournalBatch: valid headers with arbitrary msgpack values, bytes or damaged batches throw only FrameError', () => {
    const arbBody = fc.oneof(RANDOM_BODY, arbBrokenControlBody.map((b) => pack(b)), arbBrokenBatchBody,
      arbControlBody.map((b) => pack(b)), fc.array(arbEntry, { maxLength: 3 }).map((entries) => pack({ entries })),
      // Valid binary batches with random bytes overwritten.
      fc.tuple(fc.array(arbEntry, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }))
        .map(([entries, hits]) => {
          const body = decodeFrame(encodeJournalBatch(1, { entries })).body.slice();
          for (const [at, v] of hits) body[at % body.length] = v;
          return body;
        }));
    fc.assert(fc.property(arbBody, U32, (body, pairId) => {
      const control = decodeFrame(encodeFrame(header(FrameType.Control, pairId), body));
      try {
        const b = decodeControl(control);
        // Accepted: the checks decodeControl makes hold.
        expect(CONTROL_OPS).toContain(b.op);
        if ('def' in b) expect(['source', 'destination']).toContain(b.def.role);
        if (b.op === 'bitmap-reply') expect(b.words).toBeInstanceOf(Uint8Array);
        if (b.op === 'state') expect(b.state).toBeLessThanOrEqual(6);
      } catch (e) {
        if (!(e instanceof FrameError)) throw new Error(`decodeControl threw ${(e as Error).name}: ${(e as Error).message}`);
      }
      const batch = decodeFrame(encodeFrame(header(FrameType.JournalBatch, pairId), body));
      try {
        for (const e of decodeJournalBatch(batch).entries) {
          expect(e.seq).toBeGreaterThanOrEqual(1);
          expect(e.data.length % BLOCK_SIZE_BYTES).toBe(0);
          expect(e.data.length).toBeGreaterThan(0);
          expect(e.data.length).toBeLessThanOrEqual(MAX_IO_BYTES);
        }
      } catch (e) {
        if (!(e instanceof FrameError)) throw new Error(`decodeJournalBatch threw ${(e as Error).name}: ${(e as Error).message}`);
      }
    }), { seed: SEED, numRuns: 1500 });
  });

  it('decodeControl / decodeJournalBatch: a body broken in exactly one field is always refused', () => {
    fc.assert(fc.property(arbBrokenControlBody, arbBrokenBatchBody, (c, j) => {
      expect(throwsFrameError(() => decodeControl(decodeFrame(encodeFrame(header(FrameType.Control, 5), pack(c)))))).toBe(true);
      expect(throwsFrameError(() => decodeJournalBatch(decodeFrame(encodeFrame(header(FrameType.JournalBatch, 5, { tag: 1 }), j))))).toBe(true);
    }), { seed: SEED, numRuns: 1000 });
  });

  it('a hostile body does not poison the decoder for the frames after it', () => {
    const valid = encodeControl(PAIR_D, { ...stateOfD(64), drainTargetSeq: 100 } as ControlBody);
    const before = decodeControl(decodeFrame(valid));
    fc.assert(fc.property(fc.oneof(HOSTILE_MSGPACK, PACKED_ANYTHING), (body) => {
      try { decodeControl(decodeFrame(encodeFrame(header(FrameType.Control, PAIR_D), body))); } catch { /* refused or not: either way */ }
      try { decodeJournalBatch(decodeFrame(encodeFrame(header(FrameType.JournalBatch, PAIR_D), body))); } catch { /* idem */ }
      expect(decodeControl(decodeFrame(valid))).toEqual(before);
    }), { seed: SEED, numRuns: 300 });
  });
});

// ───────────────────────────── properties: the controller ─────────────────────────────

describe('controller on garbage frames', () => {
  it('thousands of frames that cannot be valid: no exception, no byte or word changed, a log line for each undecodable one, still working', () => {
    let frames = 0;
    const kinds = new Map<string, number>();
    fc.assert(fc.property(fc.array(arbGarbageFrame, { minLength: 1, maxLength: 16 }), (garbage) => {
      const r = rig();
      const snap = snapshot(r.hw);
      for (const g of garbage) {
        frames++;
        kinds.set(g.kind.replace(/ \(.*/, ''), (kinds.get(g.kind.replace(/ \(.*/, '')) ?? 0) + 1);
        const events = r.hw.events.length;
        try {
          r.c.onFrame(g.from, g.frame);
        } catch (e) {
          throw new Error(`onFrame threw on ${g.kind} from ${g.from}: ${(e as Error).name}: ${(e as Error).message}`);
        }
        const changed = changes(r.hw, snap);
        if (changed) throw new Error(`${g.kind} from ${g.from} changed state: ${changed}`);
        let undecodable = false;
        try { decodeFrame(g.frame); } catch { undecodable = true; }
        if (g.kind.startsWith('broken header') && !undecodable) throw new Error(`test generator bug: ${g.kind} frame passes the header check`);
        if (g.kind.startsWith('bad ')) undecodable = true;
        if (undecodable && !r.hw.events.slice(events).some((e) => e.type === 'log' && /dropped/.test(e.message))) {
          throw new Error(`${g.kind} from ${g.from} dropped without a log event`);
        }
      }
      expectHealthy(r);
    }), { seed: SEED, numRuns: 500 });
    expect(frames).toBeGreaterThan(3000);
    for (const k of ['random bytes', 'broken header', 'unknown pair', 'wrong sender', 'bad control body', 'bad journal batch body', 'refused create', 'refused forward-command']) {
      expect(kinds.get(k) ?? 0, k).toBeGreaterThan(50);
    }
  });

  it('the same frames unbroken do change things (the rig is live, so the property above is not vacuous)', () => {
    const r = rig();
    const snap = snapshot(r.hw);
    r.c.onFrame(D_SOURCE, encodeJournalBatch(PAIR_D, { entries: [journalEntry(4)] }));
    expect(changes(r.hw, snap)).toMatch(/appliedSeq 3→4/);
    const r2 = rig();
    const snap2 = snapshot(r2.hw);
    r2.c.onFrame(D_SOURCE, encodeControl(PAIR_D, stateOfD(2, PairState.Suspend)));
    expect(changes(r2.hw, snap2)).toMatch(/pair 5 state 2→4/);
  });

  // BUG (firmware/controller.ts, onControl case 'forward-command', ~line 768): a relayed command is executed for
  // whoever sends it — the sender is never checked against the partner of the pair the command names (nor the
  // frame's pairId against the command's). Input: onFrame(9, encodeControl(0, { op: 'forward-command', reqId: 1,
  // command: { op: 'delete', pairId: 3 } })) from storage 9, which has nothing to do with pair 3 → pair 3 deleted here
  // (with { op: 'suspend' } it is suspended).
  it('a relayed command from a storage system that is not the pair\'s partner is dropped', () => {
    const r = rig();
    const snap = snapshot(r.hw);
    r.c.onFrame(9, encodeControl(0, { op: 'forward-command', reqId: 1, command: { op: 'delete', pairId: PAIR_S } }));
    r.c.onFrame(D_SOURCE, encodeControl(PAIR_D, { op: 'forward-command', reqId: 2, command: { op: 'suspend', pairId: PAIR_S } }));
    expect(changes(r.hw, snap)).toBeUndefined();
  });

  // BUG (firmware/controller.ts, onSyncAck ~line 472, called from onFrame ~line 710 without the sender): a SyncAck is matched
  // by tag alone — neither the sender nor the pairId is checked — so anyone can complete a synchronous copy that the
  // destination never stored. Input: host write to LVOL 0 (pair 3, duplex) → SyncWrite tag T sent to storage 2;
  // onFrame(9, SyncAck{pairId: 0, tag: T}) → the host write completes 'ok' and the pending-bitmap word is cleared.
  it('a SyncAck from a storage system that is not the pair\'s partner completes nothing', () => {
    const r = rig();
    r.c.onHostIo({ tag: 2, op: 'write', lvol: LVOL_S, lba: 0, blocks: 1, data: blocksOf(1, 0x11), port: 0 });
    const sw = decodeFrame(lastSentTo(r.hw, S_DEST));
    const snap = snapshot(r.hw);
    r.c.onFrame(9, encodeFrame(header(FrameType.SyncAck, 0, { tag: sw.tag })));
    expect(changes(r.hw, snap)).toBeUndefined();
    expect(r.hw.completions.map((x) => `io ${x.io.tag}: ${x.status}`)).toEqual([]);
  });

  // BUG (firmware/controller.ts, onJournalAck ~line 620, called from onFrame without the sender): a JournalAck is
  // believed from anyone. Input: async source pair 9 (LVOL 0 → storage 2, journal LVOL 2), two host writes journaled
  // (seq 1, 2), nothing shipped yet; onFrame(9, JournalAck{pairId: 9, tag: 2}) from storage 9 → appliedSeq 0→2 and both
  // entries freed from the journal although the destination never received them (they are lost for good).
  it('a JournalAck from a storage system that is not the pair\'s partner frees no journal entry', () => {
    const hw = new RigHardware(ME);
    const c = new Controller(hw);
    c.boot();
    c.onCommand(1, { op: 'create', initialCopy: 'none', pair: { pairId: 9, localLvol: LVOL_S, remoteStorageId: S_DEST, remoteLvol: 0, copyType: 'async', fence: 'never', journalLvol: LVOL_JNL, remoteJournalLvol: 1 } });
    const req = decodeControl(decodeFrame(lastSentTo(hw, S_DEST))) as { reqId: number };
    c.onFrame(S_DEST, encodeControl(9, { op: 'create-reply', reqId: req.reqId }));
    expect(hw.replies.get(1)).toMatchObject({ ok: true, pair: { state: 'duplex' } });
    c.onHostIo({ tag: 1, op: 'write', lvol: LVOL_S, lba: 0, blocks: 1, data: blocksOf(1, 1), port: 0 });
    c.onHostIo({ tag: 2, op: 'write', lvol: LVOL_S, lba: 1, blocks: 1, data: blocksOf(1, 2), port: 0 });
    const snap = snapshot(hw);
    c.onFrame(9, encodeFrame(header(FrameType.JournalAck, 9, { tag: 2 })));
    expect(changes(hw, snap)).toBeUndefined();
  });

  // BUG (firmware/controller.ts, onFormationAck ~line 563, called from onFrame without the sender): a FormationAck is
  // believed from anyone. Input: sync source pair 9 created with initialCopy 'full' (tracks 0..3 in flight with serials
  // 1..4); onFrame(9, FormationAck{pairId: 9, status: 1, tag: 1, lba: 0}) from storage 9 → the pair goes to failure
  // suspend ('copy failed'); with status 0 it would count a track as copied that the destination never got.
  it('a FormationAck from a storage system that is not the pair\'s partner neither advances nor fails the copy', () => {
    const hw = new RigHardware(ME);
    const c = new Controller(hw);
    c.boot();
    c.onCommand(1, { op: 'create', initialCopy: 'full', pair: { pairId: 9, localLvol: LVOL_S, remoteStorageId: S_DEST, remoteLvol: 0, copyType: 'sync', fence: 'never' } });
    const req = decodeControl(decodeFrame(lastSentTo(hw, S_DEST))) as { reqId: number };
    c.onFrame(S_DEST, encodeControl(9, { op: 'create-reply', reqId: req.reqId }));
    const copy = hw.sent.map((x) => decodeFrame(x.frame)).find((f) => f.type === FrameType.FormationCopy)!;
    const snap = snapshot(hw);
    c.onFrame(9, encodeFrame(header(FrameType.FormationAck, 9, { status: 1, tag: copy.tag, lba: copy.lba })));
    c.onFrame(9, encodeFrame(header(FrameType.FormationAck, 9, { status: 0, tag: copy.tag + 1, lba: copy.lba + 16 })));
    expect(changes(hw, snap)).toBeUndefined();
  });

  // BUG (firmware/controller.ts, writeLvol's catch ~line 317 + ioError): the LBA of a SyncWrite / FormationCopy /
  // journal entry from the partner is never checked against the volume; DiskArray.write then throws AddressError,
  // which writeLvol treats like a failed drive: every pair on the LVOL goes to failure suspend with cause
  // 'drive failure'. Input: onFrame(0, encodeJournalBatch(5, { entries: [{ seq: 4, tsUs: 4, lba: 0xffffffff,
  // data: 4096 bytes }] })) → pair 5 duplex → failure suspend ('drive failure'). Same with
  // SyncWrite{pairId: 5, lba: 1000, blocks: 1}. The frame should be dropped (logged) and the pair left alone.
  it('a journal entry or sync write from the partner with an LBA outside the volume is dropped; the pair is left alone', () => {
    const r = rig();
    const snap = snapshot(r.hw);
    r.c.onFrame(D_SOURCE, encodeJournalBatch(PAIR_D, { entries: [{ seq: 4, tsUs: 4, lba: 0xffffffff, data: blocksOf(1, 1) }] }));
    r.c.onFrame(D_SOURCE, encodeFrame(header(FrameType.SyncWrite, PAIR_D, { lba: 1000, blocks: 1 }), blocksOf(1, 1)));
    expect(changes(r.hw, snap)).toBeUndefined();
  });

  // BUG (firmware/controller.ts, writeLvol → replicatedSegments ~line 370 → DifferenceBitmap.test): in a cascade (the
  // destination LVOL of one pair is the source LVOL of another pair that is in initial copying / duplex pending), an
  // out-of-range LBA from the partner reaches rt.bitmap.test(track) before the disk rejects it, and the RangeError
  // ("track 62 outside bitmap of 4 tracks") escapes onFrame: the controller stops. Input: D duplex on LVOL 1, sync
  // pair 6 LVOL 1 → storage 2 created with initialCopy 'full' (initial copying); onFrame(0, encodeJournalBatch(5,
  // { entries: [{ seq: 4, lba: 1000, data: 4096 bytes }] })).
  it('in a cascade, an out-of-range LBA from the partner is dropped without an exception', () => {
    const r = rig();
    r.c.onCommand(50, { op: 'create', initialCopy: 'full', pair: { pairId: 6, localLvol: LVOL_D, remoteStorageId: S_DEST, remoteLvol: 0, copyType: 'sync', fence: 'never' } });
    const req = decodeControl(decodeFrame(lastSentTo(r.hw, S_DEST))) as { reqId: number };
    r.c.onFrame(S_DEST, encodeControl(6, { op: 'create-reply', reqId: req.reqId }));
    expect(r.hw.replies.get(50)).toMatchObject({ ok: true, pair: { state: 'initial copying' } });
    expect(() => r.c.onFrame(D_SOURCE, encodeJournalBatch(PAIR_D, { entries: [{ seq: 4, tsUs: 4, lba: 1000, data: blocksOf(1, 1) }] }))).not.toThrow();
  });

  // BUG (firmware/frames.ts decodeControl ~line 170: `if ('def' in b) checkDefinition(b.def)` lets a body without
  // `def` through; firmware/controller.ts onControl case 'state' / 'bitmap-request' ~line 747 then calls
  // adoptDefinition(rt, undefined)): a TypeError ("Cannot read properties of undefined (reading 'role')") escapes onFrame and stops the
  // controller. Input: from the partner, encodeFrame({type: Control, pairId: 5, ...}, pack({ op: 'state', state: 2,
  // cause: 0, stateSeq: 9, baseSeq: 0, drainTargetSeq: 0, consistentSeq: 0 })) — or pack({ op: 'bitmap-request',
  // reqId: 3, state: 6 }). decodeControl should require def for create/state/bitmap-request (and reqId where the type
  // has one).
  it('a state / bitmap-request frame without def is refused by the decoder; nothing escapes onFrame', () => {
    const r = rig();
    const snap = snapshot(r.hw);
    const body = pack({ op: 'state', state: 2, cause: 0, stateSeq: 9, baseSeq: 0, drainTargetSeq: 0, consistentSeq: 0 });
    expect(() => r.c.onFrame(D_SOURCE, encodeFrame(header(FrameType.Control, PAIR_D), body))).not.toThrow();
    expect(() => r.c.onFrame(D_SOURCE, encodeFrame(header(FrameType.Control, PAIR_D), pack({ op: 'bitmap-request', reqId: 3, state: 6 })))).not.toThrow();
    expect(changes(r.hw, snap)).toBeUndefined();
  });
});

describe('controller on bad commands', () => {
  it('refused commands: ok:false naming the problem, nothing changed, nothing sent, still working', () => {
    const whats = new Map<string, number>();
    // One rig for all runs (a refusal changes nothing, so every run is compared with the same snapshot); a new rig
    // after a failing run, so that shrinking starts from a clean controller again.
    let g = rig(), snap = snapshot(g.hw), clean = true;
    fc.assert(fc.property(arbRefusedCommand, (r) => {
      if (!clean) { g = rig(); snap = snapshot(g.hw); }
      clean = false;
      g.hw.clearLogs();
      try {
        g.c.onCommand(500, r.cmd as Command);
      } catch (e) {
        throw new Error(`onCommand threw (${r.what}): ${(e as Error).name}: ${(e as Error).message}`);
      }
      const reply = g.hw.replies.get(500);
      if (!reply) throw new Error(`no reply (${r.what})`);
      if (reply.ok) throw new Error(`accepted (${r.what}): ${reply.message}`);
      expect(typeof reply.error).toBe('string');
      expect(reply.error.length).toBeGreaterThan(0);
      for (const re of r.expect) expect(reply.error, r.what).toMatch(re);
      const changed = changes(g.hw, snap);
      if (changed) throw new Error(`${r.what} changed state: ${changed}`);
      expect(g.hw.sent).toEqual([]);
      whats.set(r.what, (whats.get(r.what) ?? 0) + 1);
      clean = true;
    }), { seed: SEED, numRuns: 1500 });
    expect(whats.size).toBe(6);
    expectHealthy(g);
  });

  it('specific refusals name the problem', () => {
    const { hw, c } = rig();
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /^malformed command: expected an object with an op$/],
      [{ op: 42 }, /^malformed command/],
      [{ op: 'explode', pairId: PAIR_S }, /^unknown command 'explode'$/],
      [{ op: 'suspend', pairId: 99 }, /^suspend: unknown pair 99 on storage 1$/],
      [{ op: 'resync', pairId: '3' }, /^resync: unknown pair '3' on storage 1$/],
      [{ op: 'query' }, /^query: unknown pair undefined/],
      [{ op: 'drain', pairId: PAIR_S }, /^drain refused: pair 3 \(sync\) is duplex$/],
      [{ op: 'reverse', pairId: PAIR_D }, /^reverse refused: pair 5 \(async\) is duplex$/],
      [{ op: 'create', initialCopy: 'full', pair: { ...goodCreate, fence: 'maybe' } }, /fence level must be data, status or never, not 'maybe'/],
      [{ op: 'create', initialCopy: 'full', pair: { ...goodCreate, localLvol: 17 } }, /source LVOL 17 does not exist on storage 1/],
      [{ op: 'create', initialCopy: 'full', pair: { ...goodCreate, pairId: 70000 } }, /pair id must be 1\.\.65535, not 70000/],
      [{ op: 'create', initialCopy: 'full', pair: { ...goodCreate, copyType: 'async' } }, /asynchronous pair needs a journal volume on both sides/],
      [{ op: 'create', initialCopy: 'full', pair: { ...goodAsyncCreate, journalLvol: LVOL_JNL } }, /journal LVOL 2 is in use by pair 5/],
      [{ op: 'create', initialCopy: 'sometimes', pair: goodCreate }, /initialCopy must be full, none or defer, not 'sometimes'/],
      [{ op: 'create', initialCopy: 'full', pair: { ...goodCreate, remoteStorageId: ME } }, /bad destination storage 1/],
      [{ op: 'create', initialCopy: 'full', pair: { ...goodCreate, remoteLvol: -2 } }, /bad destination LVOL -2/],
    ];
    const snap = snapshot(hw);
    cases.forEach(([cmd, re], i) => {
      c.onCommand(600 + i, cmd as Command);
      const reply = hw.replies.get(600 + i);
      expect(reply, JSON.stringify(cmd)).toMatchObject({ ok: false });
      expect(reply && !reply.ok ? reply.error : '', JSON.stringify(cmd)).toMatch(re);
    });
    expect(changes(hw, snap)).toBeUndefined();
    expectHealthy({ hw, c });
  });

  // BUG (firmware/controller.ts, dispatch ~line 903 / validateDefinition ~line 1009: error messages are built with
  // template strings from the offending value): a value that cannot be turned into a string — an object with a
  // non-callable toString (possible from JSON: {"toString": 1}) or a null-prototype object — makes the template throw
  // TypeError, and the reply is { ok: false, error: 'Cannot convert object to primitive value' }, which names neither
  // the op nor the field. Input: onCommand(1, { op: 'suspend', pairId: { toString: 1 } }).
  it('a field value that cannot be printed still gets a reply naming the problem', () => {
    const { hw, c } = rig();
    c.onCommand(1, { op: 'suspend', pairId: { toString: 1 } } as unknown as Command);
    c.onCommand(2, { op: 'create', initialCopy: 'full', pair: { ...goodCreate, fence: Object.create(null) } } as unknown as Command);
    expect(hw.replies.get(1)).toMatchObject({ ok: false, error: expect.stringMatching(/suspend: unknown pair/) });
    expect(hw.replies.get(2)).toMatchObject({ ok: false, error: expect.stringMatching(/fence level/) });
  });
});

describe('controller on bad host I/O', () => {
  const validIo = (io: { op: string; lvol: unknown; lba: unknown; blocks: unknown; data?: Uint8Array }) =>
    Number.isInteger(io.lvol) && (io.lvol as number) >= 0 && (io.lvol as number) < LVOL_COUNT
    && Number.isInteger(io.lba) && Number.isInteger(io.blocks) && (io.lba as number) >= 0 && (io.blocks as number) >= 1
    && (io.lba as number) + (io.blocks as number) <= LVOL_BLOCKS && (io.blocks as number) * BLOCK_SIZE_BYTES <= MAX_IO_BYTES
    && (io.op === 'read' || (io.data !== undefined && io.data.length === (io.blocks as number) * BLOCK_SIZE_BYTES));

  const NUM: fc.Arbitrary<number> = fc.oneof(
    fc.integer({ min: -10, max: LVOL_BLOCKS + 10 }),
    fc.constantFrom(NaN, Infinity, -Infinity, 0.5, 1.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, Number.MAX_VALUE, -(2 ** 31)),
    fc.double(),
  );
  const LVOL: fc.Arbitrary<number> = fc.oneof(fc.integer({ min: 0, max: LVOL_COUNT - 1 }), fc.integer({ min: -5, max: 40 }), fc.constantFrom(NaN, 1.5, Infinity, -1, 2 ** 32));
  const arbIo = fc.oneof(
    // Good address, write data of the wrong length (missing, empty, off by one, misaligned, a block too many).
    fc.record({ op: fc.constant('write'), lvol: fc.integer({ min: 0, max: LVOL_COUNT - 1 }), lba: fc.integer({ min: 0, max: 40 }), blocks: fc.integer({ min: 1, max: 8 }),
      delta: fc.oneof(fc.constantFrom<number | null>(null, -1, 1, -BLOCK_SIZE_BYTES, BLOCK_SIZE_BYTES, 100), fc.integer({ min: -30000, max: 30000 })) })
      .map(({ delta, ...io }) => ({ ...io, data: delta === null ? undefined : new Uint8Array(Math.max(0, io.blocks * BLOCK_SIZE_BYTES + delta)).fill(0xdd) })),
    // Anything for the address; data of the length asked for, or random.
    fc.record({ op: fc.constantFrom('read', 'write'), lvol: LVOL, lba: NUM, blocks: NUM, len: fc.oneof(fc.constant(-1), fc.nat(70_000)) })
      .map(({ len, ...io }) => {
        const want = Number.isInteger(io.blocks) && io.blocks > 0 && io.blocks <= 256 ? io.blocks * BLOCK_SIZE_BYTES : 0;
        return { ...io, data: new Uint8Array(len < 0 ? want : len).fill(0xdd) };
      }),
  ).filter((io) => !validIo(io));

  it('completes every bad I/O with unknown-lvol / out-of-range and changes no byte; good I/O works afterwards', () => {
    // One rig and snapshot for all runs; a new rig after a failing run, so that shrinking starts clean.
    let g = rig(), snap = snapshot(g.hw), clean = true;
    const seen = new Set<string>();
    let tag = 1000;
    fc.assert(fc.property(arbIo, (raw) => {
      if (!clean) { g = rig(); snap = snapshot(g.hw); }
      clean = false;
      g.hw.clearLogs();
      const io = { ...raw, tag: tag++, port: 0 } as unknown as HostIo;
      try {
        g.c.onHostIo(io);
      } catch (e) {
        throw new Error(`onHostIo threw: ${(e as Error).name}: ${(e as Error).message}`);
      }
      const lvolOk = Number.isInteger(raw.lvol) && raw.lvol >= 0 && raw.lvol < LVOL_COUNT;
      expect(g.hw.completions.length).toBe(1);
      expect(g.hw.completions[0]!.io).toBe(io);
      expect(g.hw.completions[0]!.status).toBe(lvolOk ? 'out-of-range' : 'unknown-lvol');
      seen.add(g.hw.completions[0]!.status);
      const changed = changes(g.hw, snap);
      if (changed) throw new Error(`bad I/O changed state: ${changed}`);
      expect(g.hw.sent).toEqual([]);
      clean = true;
    }), { seed: SEED, numRuns: 2000 });
    expect([...seen].sort()).toEqual(['out-of-range', 'unknown-lvol']);
    // Good I/O still works: a write and read-back on the free LVOL, a synchronous copy on S, a refusal on D.
    g.hw.clearLogs();
    g.c.onHostIo({ tag: 1, op: 'write', lvol: LVOL_FREE, lba: LVOL_BLOCKS - 2, blocks: 2, data: blocksOf(2, 0x77), port: 0 });
    g.c.onHostIo({ tag: 2, op: 'read', lvol: LVOL_FREE, lba: LVOL_BLOCKS - 2, blocks: 2, port: 0 });
    expect(g.hw.completions.map((x) => x.status)).toEqual(['ok', 'ok']);
    expect(Buffer.compare(g.hw.completions[1]!.data!, blocksOf(2, 0x77))).toBe(0);
    g.c.onHostIo({ tag: 3, op: 'write', lvol: LVOL_S, lba: 0, blocks: 1, data: blocksOf(1, 0x78), port: 0 });
    const sw = decodeFrame(lastSentTo(g.hw, S_DEST));
    expect(sw.type).toBe(FrameType.SyncWrite);
    g.c.onFrame(S_DEST, encodeFrame(header(FrameType.SyncAck, PAIR_S, { tag: sw.tag })));
    g.c.onHostIo({ tag: 4, op: 'write', lvol: LVOL_D, lba: 0, blocks: 1, data: blocksOf(1, 0x79), port: 0 });
    expect(g.hw.completions.slice(2).map((x) => x.status)).toEqual(['ok', 'write-protected']);
    expectHealthy(g);
  });

  // BUG (firmware/controller.ts, onHostIo ~line 243–265 / checkHostIo ~line 277): io.op is never checked. Anything other
  // than 'read' takes the write path: checkHostIo only checks data for op === 'write', so with no data
  // writeLvol(…, io.data!) throws TypeError ("Cannot read properties of undefined (reading 'length')") out of
  // onHostIo; with data of the right length the "I/O" writes the volume and completes 'ok'.
  // Input: onHostIo({ tag: 1, op: 'erase', lvol: 3, lba: 0, blocks: 1, port: 0 }).
  it('a host I/O whose op is neither read nor write is refused (invalid-request) and writes nothing', () => {
    const g = rig();
    const snap = snapshot(g.hw);
    expect(() => g.c.onHostIo({ tag: 1, op: 'erase', lvol: LVOL_FREE, lba: 0, blocks: 1, port: 0 } as unknown as HostIo)).not.toThrow();
    g.c.onHostIo({ tag: 2, op: 'trim', lvol: LVOL_FREE, lba: 0, blocks: 1, data: blocksOf(1, 9), port: 0 } as unknown as HostIo);
    expect(g.hw.completions.map((x) => x.status)).not.toContain('ok');
    expect(changes(g.hw, snap)).toBeUndefined();
  });
});

// ───────────────────────────── property: illegal transitions on a sim world ─────────────────────────────

type Action =
  | { kind: 'command'; system: 'A' | 'B'; cmd: Command }
  | { kind: 'write'; host: 'hostA' | 'hostB'; lba: number }
  | { kind: 'link'; up: boolean };

const arbSimCommand = (system: 'A' | 'B'): fc.Arbitrary<Command> => {
  const self = system === 'A' ? A : B, other = system === 'A' ? B : A;
  const pairId = fc.oneof({ weight: 8, arbitrary: fc.constant(PAIR) }, { weight: 1, arbitrary: fc.constantFrom(8, 99) });
  return fc.oneof(
    { weight: 2, arbitrary: fc.record({
      op: fc.constant('create' as const),
      initialCopy: fc.constantFrom('full' as const, 'none' as const, 'defer' as const),
      pair: fc.record({ pairId, copyType: fc.constantFrom('sync' as const, 'async' as const), fence: fc.constantFrom('data' as const, 'never' as const),
        localLvol: fc.constantFrom(0, 0, 0, 1), remoteLvol: fc.constantFrom(0, 0, 0, 1), remoteStorageId: fc.constantFrom(other, other, other, self) })
        .map((p) => (p.copyType === 'async' ? { ...p, journalLvol: 1, remoteJournalLvol: 1 } : p)),
    }) },
    { weight: 12, arbitrary: fc.tuple(fc.constantFrom('suspend' as const, 'drain' as const, 'resync' as const, 'reverse' as const, 'delete' as const, 'query' as const), pairId, fc.boolean())
      .map(([op, id, full]) => (op === 'resync' && full ? { op, pairId: id, full } : { op, pairId: id })) },
    { weight: 1, arbitrary: fc.constant({ op: 'status' as const }) },
    { weight: 1, arbitrary: arbRefusedCommand.map((r) => r.cmd as Command) },
  );
};
const arbAction: fc.Arbitrary<Action> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('A' as const, 'B' as const).chain((system) => arbSimCommand(system).map((cmd) => ({ kind: 'command' as const, system, cmd }))) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('write' as const), host: fc.constantFrom('hostA' as const, 'hostB' as const), lba: fc.nat(255) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('link' as const), up: fc.boolean() }) },
);

const TRANSIENT = new Set<PairState>([PairState.InitialCopying, PairState.DuplexPending, PairState.Suspending]);
const defs = (w: SimWorld) => ({ A: w.definitionInformation('A'), B: w.definitionInformation('B') });

/** Lets formation copies, drains and state frames finish, so that only a command can change definition information. */
async function settle(w: SimWorld): Promise<void> {
  let prev = JSON.stringify(defs(w));
  for (let i = 0; i < 200; i++) {
    await w.sleep(50_000);
    const d = defs(w);
    const now = JSON.stringify(d);
    if (now === prev && ![...d.A, ...d.B].some((p) => TRANSIENT.has(p.state))) return;
    prev = now;
  }
}

describe('illegal state transitions on a two-system sim world', () => {
  it('random command sequences: every refused command leaves both sides unchanged; no controller ever stops', async () => {
    let refused = 0, commands = 0;
    const statesSeen = new Set<string>();
    const arbStart = fc.record({ copyType: fc.constantFrom('sync' as const, 'async' as const), initialCopy: fc.constantFrom('full' as const, 'none' as const, 'defer' as const),
      fence: fc.constantFrom('data' as const, 'never' as const) });
    await fc.assert(fc.asyncProperty(arbStart, fc.array(arbAction, { minLength: 5, maxLength: 25 }), fc.integer({ min: 1, max: 1000 }), async (start, actions, seed) => {
      const topo = twoSystems();
      for (const s of topo.systems) s.cacheSlots = 4;
      const w = new SimWorld(topo, seed);
      try {
        // Pair 7 (A → B) to start from, so that most commands meet a real pair.
        expect(await w.command('A', createCommand(start.copyType, start.initialCopy, start.fence))).toMatchObject({ ok: true });
        let linkUp = true;
        for (const a of actions) {
          await settle(w);
          if (a.kind === 'link') {
            if (a.up !== linkUp) await w.fault({ kind: a.up ? 'heal-link' : 'cut-link', link: 'L' });
            linkUp = a.up;
            continue;
          }
          if (a.kind === 'write') {
            await w.hostIo(a.host, { op: 'write', lvol: 0, lba: a.lba, blocks: 1, data: new Uint8Array(BLOCK_SIZE_BYTES).fill(a.lba) });
            continue;
          }
          const before = defs(w);
          for (const [sys, ps] of Object.entries(before)) for (const p of ps) statesSeen.add(`${sys} ${p.role} ${p.copyType} ${PairState[p.state]}`);
          commands++;
          const r = await w.command(a.system, a.cmd);
          if (!r.ok) {
            refused++;
            expect(r.error.length).toBeGreaterThan(0);
            const after = defs(w);
            if (JSON.stringify(after) !== JSON.stringify(before)) {
              throw new Error(`refused ${JSON.stringify(a.cmd)} at ${a.system} ("${r.error}") changed definition information: `
                + `A: ${describePairDiff(before.A, after.A)}; B: ${describePairDiff(before.B, after.B)}`);
            }
          }
          expect(w.controllerErrors).toEqual([]);
        }
        await settle(w);
        expect(w.controllerErrors).toEqual([]);
      } finally {
        await w.close();
      }
    }), { seed: SEED, numRuns: 200 });
    // Commands met pairs in every settled state, both ways round (after reverse) — not only unknown pairs.
    for (const k of ['source sync Duplex', 'source async Duplex', 'source sync Suspend', 'source async Suspend', 'source sync FailureSuspend',
      'source async FailureSuspend', 'source sync Simplex', 'destination sync Suspend', 'destination async Suspend']) {
      expect([...statesSeen], k).toContain(`A ${k}`);
    }
    expect(refused).toBeGreaterThan(600);
    expect(commands).toBeGreaterThan(1200);
  });
});
