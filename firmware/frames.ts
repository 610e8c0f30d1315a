// Frames between storage systems. Every frame starts with a fixed 24-byte header read through a DataView
// (cheap on the per-write hot path); data payloads (host writes, tracks, journal batches) follow as raw
// blocks behind fixed binary headers, control payloads as msgpackr.
//
//  0 u8  type        1 u8 status     2 u16 copy generation (SyncWrite, SyncAck; 0 on every other frame)
//  4 u32 pairId      8 u32 tag (write tag / track / sequence number)
// 12 u32 lba        16 u32 blocks   20 u32 bodyBytes
// 24 body (bodyBytes)

import { Packr } from 'msgpackr';
import { BLOCK_SIZE_BYTES, BUNDLE_MAX_BODY_BYTES, BUNDLE_MAX_FRAMES, MAX_GROUP_MEMBERS, MAX_IO_BYTES, TRACK_SIZE_BYTES, JOURNAL_BATCH_MAX_BYTES } from './constants.ts';

export const FRAME_HEADER_BYTES = 24;
/** Largest body any frame may carry: a journal batch plus its metadata. */
export const MAX_FRAME_BODY_BYTES = JOURNAL_BATCH_MAX_BYTES + MAX_IO_BYTES + 64 * 1024;

export enum FrameType {
  SyncWrite = 1,       // synchronous copy of one host write; body = data
  SyncAck = 2,         // status 0 = stored
  FormationCopy = 3,   // one track of formation copying; tag = track; body = data
  FormationAck = 4,
  JournalBatch = 5,    // tag = entries; body = binary JournalBatchBody (see encodeJournalBatchInto)
  JournalAck = 6,      // tag = newest sequence number applied at the destination; lba = newest stored (snapshot mode)
  Control = 7,         // body = msgpackr ControlBody
  Keepalive = 8,
  Bundle = 9,          // status = the inner frames' type; tag = how many; body = whole frames back to back (see FrameBundler)
}

/**
 * Frame types a bundle may carry: the per-write synchronous copies and their acknowledgements, which a busy
 * controller sends by the dozen in one burst of work. One bundle takes one trip through the link's hardware (one
 * ring record, one delivery) instead of one per write.
 */
export const BUNDLED_FRAME_TYPES: ReadonlySet<number> = new Set([FrameType.SyncWrite, FrameType.SyncAck]);

export class FrameError extends Error {
  override name = 'FrameError';
}

export interface FrameHeader {
  type: FrameType;
  status: number;
  pairId: number;
  tag: number;
  lba: number;
  blocks: number;
  /**
   * SyncWrite, and the SyncAck answering it: the pair's copy generation (16 bits, P.copyGeneration), which every
   * resynchronisation advances, so a copy (or a copy sent again) from before a resync is refused. 0 when absent.
   */
  gen?: number;
}

export interface JournalEntryWire {
  seq: number;
  tsUs: number;
  lba: number;
  data: Uint8Array;
}
export interface JournalBatchBody {
  entries: JournalEntryWire[];
  /** Snapshot mode (SPEC §5): last sequence number of the difference snapshot these entries belong to. */
  endSeq?: number;
}

/** Definition information as one side sends it to the other (fields from the receiver's point of view). */
export interface WireDefinition {
  pairId: number;
  role: 'source' | 'destination';
  localLvol: number;
  remoteLvol: number;
  direction: 'forward' | 'reverse';
  copyType: 'sync' | 'async';
  fence: 'data' | 'status' | 'never';
  journalLvol: number;
  remoteJournalLvol: number;
  /** Asynchronous pairs: SPEC §5 mode and snapshot interval (absent: journal mode). */
  asyncMode?: 'journal' | 'snapshot';
  snapshotIntervalUs?: number;
  /** Journal mode: inflow control (absent: off). */
  inflowControl?: boolean;
  /**
   * A consistency group's members [local LVOL, remote LVOL, the sender's blocks of it] (absent: the one volume
   * localLvol/remoteLvol). The receiver refuses a group whose member sizes differ from its own, since group
   * addresses are laid out from them.
   */
  members?: Array<[number, number, number]>;
}

export type ControlBody =
  | { op: 'create'; reqId: number; def: WireDefinition }
  | { op: 'create-reply'; reqId: number; error?: string }
  | { op: 'state'; def: WireDefinition; epoch: number; state: number; cause: number; stateSeq: number; baseSeq: number; drainTargetSeq: number; consistentSeq: number; step?: string }
  | { op: 'bitmap-request'; reqId: number; def: WireDefinition; epoch: number; state: number; stateSeq: number; gen: number; step?: string }
  | { op: 'bitmap-reply'; reqId: number; words: Uint8Array; newestSeq: number; error?: string }
  | { op: 'forward-command'; reqId: number; command: unknown }
  | { op: 'command-reply'; reqId: number; reply: unknown }
  | { op: 'delete'; step?: string };

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface DecodedFrame extends FrameHeader {
  body: Uint8Array;
}

function encodeHeader(view: DataView, h: FrameHeader, bodyBytes: number): void {
  view.setUint8(0, h.type);
  view.setUint8(1, h.status);
  view.setUint16(2, h.gen ?? 0);
  view.setUint32(4, h.pairId);
  view.setUint32(8, h.tag >>> 0);
  view.setUint32(12, h.lba);
  view.setUint32(16, h.blocks);
  view.setUint32(20, bodyBytes);
}

// Journal batch body, all little-endian, so that every entry's data starts 8-byte aligned (a 4 KiB copy into
// shared memory is word by word only when source and destination are equally aligned):
//   0 u32 entries   4 u32 flags (bit 0: endSeq present)   8 u32 endSeq   12 u32 reserved (0)
//   per entry: 0 u32 seq  4 u32 lba  8 u32 dataBytes  12 u32 reserved (0)  16 f64 tsUs  24 data (dataBytes)
const BATCH_HEADER_BYTES = 16;
const BATCH_ENTRY_HEADER_BYTES = 24;
const BATCH_HAS_END_SEQ = 1;

const journalBatchBodyBytes = (batch: JournalBatchBody): number =>
  batch.entries.reduce((n, e) => n + BATCH_ENTRY_HEADER_BYTES + e.data.length, BATCH_HEADER_BYTES);

/**
 * Encodes frames into one reused buffer, for sending: the frame returned is valid until the next call, since
 * Hardware.send copies what it keeps. Saves a buffer allocation (off-heap for 4 KiB, and GC work) per frame on
 * the hot path. One per controller.
 */
export class FrameEncoder {
  private buf = new Uint8Array(FRAME_HEADER_BYTES + MAX_IO_BYTES);
  private view = new DataView(this.buf.buffer);

  private room(bytes: number): void {
    if (bytes <= this.buf.length) return;
    this.buf = new Uint8Array(bytes);
    this.view = new DataView(this.buf.buffer);
  }

  /** A frame with a raw body (SyncWrite, FormationCopy) or none (acks, keepalive). */
  frame(h: FrameHeader, body?: Uint8Array): Uint8Array {
    this.room(FRAME_HEADER_BYTES + (body ? body.length : 0));
    return encodeFrameInto(this.buf, this.view, h, body);
  }

  journalBatch(pairId: number, batch: JournalBatchBody): Uint8Array {
    const n = journalBatchBodyBytes(batch);
    this.room(FRAME_HEADER_BYTES + n);
    return encodeJournalBatchInto(this.buf, this.view, pairId, batch, n);
  }

  control(pairId: number, body: ControlBody): Uint8Array {
    return this.frame({ type: FrameType.Control, status: 0, pairId, tag: 0, lba: 0, blocks: 0 }, packr.pack(body));
  }
}

function encodeFrameInto(buf: Uint8Array, view: DataView, h: FrameHeader, body: Uint8Array | undefined): Uint8Array {
  const n = body ? body.length : 0;
  encodeHeader(view, h, n);
  if (body) buf.set(body, FRAME_HEADER_BYTES);
  return buf.subarray(0, FRAME_HEADER_BYTES + n);
}

function encodeJournalBatchInto(buf: Uint8Array, v: DataView, pairId: number, batch: JournalBatchBody, bodyBytes: number): Uint8Array {
  encodeHeader(v, { type: FrameType.JournalBatch, status: 0, pairId, tag: batch.entries.length, lba: 0, blocks: 0 }, bodyBytes);
  let at = FRAME_HEADER_BYTES;
  v.setUint32(at, batch.entries.length, true);
  v.setUint32(at + 4, batch.endSeq === undefined ? 0 : BATCH_HAS_END_SEQ, true);
  v.setUint32(at + 8, batch.endSeq ?? 0, true);
  v.setUint32(at + 12, 0, true);
  at += BATCH_HEADER_BYTES;
  for (const e of batch.entries) {
    v.setUint32(at, e.seq, true);
    v.setUint32(at + 4, e.lba, true);
    v.setUint32(at + 8, e.data.length, true);
    v.setUint32(at + 12, 0, true);
    v.setFloat64(at + 16, e.tsUs, true);
    buf.set(e.data, at + BATCH_ENTRY_HEADER_BYTES);
    at += BATCH_ENTRY_HEADER_BYTES + e.data.length;
  }
  return buf.subarray(0, at);
}

/** A frame with a raw body (SyncWrite, FormationCopy) or none (acks, keepalive), in a buffer of its own. */
export function encodeFrame(h: FrameHeader, body?: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + (body ? body.length : 0));
  return encodeFrameInto(out, new DataView(out.buffer), h, body);
}

export function encodeJournalBatch(pairId: number, batch: JournalBatchBody): Uint8Array {
  const n = journalBatchBodyBytes(batch);
  const out = new Uint8Array(FRAME_HEADER_BYTES + n);
  return encodeJournalBatchInto(out, new DataView(out.buffer), pairId, batch, n);
}

export function encodeControl(pairId: number, body: ControlBody): Uint8Array {
  return encodeFrame({ type: FrameType.Control, status: 0, pairId, tag: 0, lba: 0, blocks: 0 }, packr.pack(body));
}

/** Validates and splits a frame; throws FrameError naming what is wrong. Never trusts the sender. */
export function decodeFrame(frame: Uint8Array): DecodedFrame {
  if (!(frame instanceof Uint8Array)) throw new FrameError('frame is not a byte array');
  if (frame.length < FRAME_HEADER_BYTES) throw new FrameError(`frame of ${frame.length} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header`);
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const type = v.getUint8(0);
  if (!(type in FrameType) || typeof FrameType[type] !== 'string') throw new FrameError(`unknown frame type ${type}`);
  const gen = v.getUint16(2);
  if (gen !== 0 && type !== FrameType.SyncWrite && type !== FrameType.SyncAck) {
    throw new FrameError(`${FrameType[type]} frame: copy generation ${gen} set (only SyncWrite and SyncAck carry one)`);
  }
  const bodyBytes = v.getUint32(20);
  if (bodyBytes > MAX_FRAME_BODY_BYTES) throw new FrameError(`frame body of ${bodyBytes} bytes exceeds the limit of ${MAX_FRAME_BODY_BYTES}`);
  if (frame.length !== FRAME_HEADER_BYTES + bodyBytes) {
    throw new FrameError(`frame length ${frame.length} does not match header (${FRAME_HEADER_BYTES} + ${bodyBytes} body bytes)`);
  }
  const h: DecodedFrame = {
    type, status: v.getUint8(1), pairId: v.getUint32(4), tag: v.getUint32(8), lba: v.getUint32(12), blocks: v.getUint32(16),
    gen, body: frame.subarray(FRAME_HEADER_BYTES),
  };
  if (type === FrameType.SyncWrite || type === FrameType.FormationCopy) {
    const limit = type === FrameType.SyncWrite ? MAX_IO_BYTES : TRACK_SIZE_BYTES;
    if (h.blocks < 1 || h.blocks * BLOCK_SIZE_BYTES !== bodyBytes || bodyBytes > limit) {
      throw new FrameError(`${FrameType[type]} frame: ${h.blocks} blocks do not match ${bodyBytes} body bytes (limit ${limit})`);
    }
  } else if (type === FrameType.Bundle) {
    if (!BUNDLED_FRAME_TYPES.has(h.status) || h.tag < 2 || h.tag > BUNDLE_MAX_FRAMES || bodyBytes > BUNDLE_MAX_BODY_BYTES) {
      throw new FrameError(`Bundle frame: ${h.tag} inner frames of type ${h.status} in ${bodyBytes} bytes (needs 2..${BUNDLE_MAX_FRAMES} SyncWrite or SyncAck frames, at most ${BUNDLE_MAX_BODY_BYTES} bytes)`);
    }
  } else if (type !== FrameType.JournalBatch && type !== FrameType.Control && bodyBytes !== 0) {
    throw new FrameError(`${FrameType[type]} frame must have no body, has ${bodyBytes} bytes`);
  }
  return h;
}

/**
 * The inner frames of a bundle, each a view of the bundle (lent like the bundle itself). Each is still to be decoded
 * (decodeFrame) on its own; here only the framing is checked: every inner frame is whole, of the bundle's type, and
 * together they fill the body exactly.
 */
export function decodeBundle(f: DecodedFrame): Uint8Array[] {
  const b = f.body, inner: Uint8Array[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  for (let i = 0; i < f.tag; i++) {
    if (at + FRAME_HEADER_BYTES > b.length) throw new FrameError(`Bundle frame: inner frame ${i} of ${f.tag} runs past the end of the body`);
    const bytes = FRAME_HEADER_BYTES + v.getUint32(at + 20);
    if (v.getUint8(at) !== f.status) throw new FrameError(`Bundle frame: inner frame ${i} is of type ${v.getUint8(at)}, the bundle says ${f.status}`);
    if (at + bytes > b.length) throw new FrameError(`Bundle frame: inner frame ${i} of ${f.tag} runs past the end of the body`);
    inner.push(b.subarray(at, at + bytes));
    at += bytes;
  }
  if (at !== b.length) throw new FrameError(`Bundle frame: ${b.length - at} bytes after the last of its ${f.tag} inner frames`);
  return inner;
}

function unpack(body: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(body);
  } catch (e) {
    throw new FrameError(`${what}: undecodable body (${(e as Error).message})`);
  }
}

const isU32 = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;

export function decodeJournalBatch(f: DecodedFrame): JournalBatchBody {
  const b = f.body;
  if (b.length < BATCH_HEADER_BYTES) throw new FrameError(`journal batch: body of ${b.length} bytes is shorter than its ${BATCH_HEADER_BYTES}-byte header`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = v.getUint32(0, true), flags = v.getUint32(4, true), endSeq = v.getUint32(8, true);
  if (count !== f.tag) throw new FrameError(`journal batch: body has ${count} entries, the header says ${f.tag}`);
  if ((flags & ~BATCH_HAS_END_SEQ) !== 0 || v.getUint32(12, true) !== 0) throw new FrameError('journal batch: reserved bits are not zero');
  if (count > b.length / BATCH_ENTRY_HEADER_BYTES) throw new FrameError(`journal batch: ${count} entries cannot fit in ${b.length} bytes`);
  const entries: JournalEntryWire[] = [];
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + BATCH_ENTRY_HEADER_BYTES > b.length) throw new FrameError(`journal batch: entry ${i} runs past the end of the body`);
    const seq = v.getUint32(at, true), lba = v.getUint32(at + 4, true), bytes = v.getUint32(at + 8, true), tsUs = v.getFloat64(at + 16, true);
    if (seq === 0 || v.getUint32(at + 12, true) !== 0 || !Number.isFinite(tsUs) || bytes === 0 || bytes % BLOCK_SIZE_BYTES !== 0 || bytes > MAX_IO_BYTES) {
      throw new FrameError('journal batch: malformed entry (needs seq ≥ 1, tsUs, lba, whole blocks of data)');
    }
    const start = at + BATCH_ENTRY_HEADER_BYTES;
    if (start + bytes > b.length) throw new FrameError(`journal batch: entry ${i} (seq ${seq}) runs past the end of the body`);
    entries.push({ seq, tsUs, lba, data: b.subarray(start, start + bytes) });
    at = start + bytes;
  }
  if (at !== b.length) throw new FrameError(`journal batch: ${b.length - at} bytes after the last entry`);
  return flags & BATCH_HAS_END_SEQ ? { entries, endSeq } : { entries };
}

const CONTROL_OPS = new Set(['create', 'create-reply', 'state', 'bitmap-request', 'bitmap-reply', 'forward-command', 'command-reply', 'delete']);

function checkDefinition(d: unknown): asserts d is WireDefinition {
  const x = d as WireDefinition;
  if (!x || !isU32(x.pairId) || (x.role !== 'source' && x.role !== 'destination') || !isU32(x.localLvol) || !isU32(x.remoteLvol)
    || (x.direction !== 'forward' && x.direction !== 'reverse') || (x.copyType !== 'sync' && x.copyType !== 'async')
    || !['data', 'status', 'never'].includes(x.fence) || typeof x.journalLvol !== 'number' || typeof x.remoteJournalLvol !== 'number'
    || (x.asyncMode !== undefined && x.asyncMode !== 'journal' && x.asyncMode !== 'snapshot')
    || (x.snapshotIntervalUs !== undefined && !isU32(x.snapshotIntervalUs))
    || (x.inflowControl !== undefined && typeof x.inflowControl !== 'boolean')) {
    throw new FrameError('control frame: malformed definition information');
  }
  if (x.members !== undefined && !(Array.isArray(x.members) && x.members.length >= 1 && x.members.length <= MAX_GROUP_MEMBERS
    && x.members.every((m) => Array.isArray(m) && m.length === 3 && m.every(isU32)))) {
    throw new FrameError('control frame: malformed consistency group members in definition information');
  }
}

export function decodeControl(f: DecodedFrame): ControlBody {
  const b = unpack(f.body, 'control frame') as ControlBody;
  if (!b || typeof b !== 'object' || !CONTROL_OPS.has((b as { op: string }).op)) throw new FrameError('control frame: unknown op');
  // Every field an op needs must be there: the firmware trusts a decoded body's shape.
  if (b.op === 'create' || b.op === 'state' || b.op === 'bitmap-request') checkDefinition((b as { def?: unknown }).def);
  if (b.op !== 'state' && b.op !== 'delete' && !isU32((b as { reqId?: unknown }).reqId)) throw new FrameError(`${b.op}: bad or missing reqId`);
  if (b.op === 'bitmap-reply' && !(b.words instanceof Uint8Array)) throw new FrameError('bitmap-reply: words missing');
  if ((b.op === 'state' || b.op === 'bitmap-request') && !(isU32(b.state) && b.state <= 6)) throw new FrameError(`${b.op}: bad state`);
  if ((b.op === 'state' || b.op === 'bitmap-request') && (!isU32(b.epoch) || !isU32(b.stateSeq))) throw new FrameError(`${b.op}: bad or missing epoch or stateSeq`);
  if (b.op === 'bitmap-request' && !(isU32(b.gen) && b.gen <= 0xffff)) throw new FrameError('bitmap-request: bad or missing copy generation (gen, 0..65535)');
  if (b.op === 'state' && !(isU32(b.stateSeq) && isU32(b.cause) && typeof b.baseSeq === 'number' && typeof b.drainTargetSeq === 'number' && typeof b.consistentSeq === 'number')) throw new FrameError('state: malformed');
  return b;
}
