// One storage system of bench/naive-baseline.ts: the cascade P → I → R done naively, with one postMessage
// per write, per forwarded copy, per journal entry and per acknowledgement (no rings, no batching).
//
//   host ──write──▶ P ──sync copy──▶ I ──journal entry──▶ R
//   host ◀──ack─── P ◀────ack────── I ◀──────ack──────── R
//
// P stores the write in its volume and forwards it to I; I stores and journals it, acknowledges P (which then
// acknowledges the host) and ships the entry to R; R applies entries strictly in sequence order and
// acknowledges each, which frees I's journal space.

import { type MessagePort, parentPort, workerData } from 'node:worker_threads';

export interface NaiveNodeData {
  entry: string;
  role: 'P' | 'I' | 'R';
  volumeSab: SharedArrayBuffer;
  /** I and R: the journal area. */
  journalSab?: SharedArrayBuffer;
  /** P: its port to I. I: to P and to R. R: to I. */
  toI?: MessagePort;
  toP?: MessagePort;
  toR?: MessagePort;
}

/** host → P and P → I */
export interface NaiveWrite { tag: number; lba: number; data: Uint8Array }
/** I → R */
export interface NaiveEntry { seq: number; tsUs: number; lba: number; data: Uint8Array }

const BLOCK_BYTES = 4096;
/** A journal slot: [seq u32][lba u32][tsUs f64][4 KiB data]. */
const ENTRY_HEADER_BYTES = 16;
const SLOT_BYTES = ENTRY_HEADER_BYTES + BLOCK_BYTES;

const d = workerData as NaiveNodeData;
const host = parentPort!;
const volume = new Uint8Array(d.volumeSab);

/** Fixed-size slots in a SharedArrayBuffer, used as a circular journal. */
class JournalArea {
  readonly slots: number;
  private readonly u8: Uint8Array;
  private readonly view: DataView;

  constructor(sab: SharedArrayBuffer) {
    this.u8 = new Uint8Array(sab);
    this.view = new DataView(sab);
    this.slots = Math.floor(sab.byteLength / SLOT_BYTES);
  }

  store(seq: number, tsUs: number, lba: number, data: Uint8Array): number {
    const off = (seq % this.slots) * SLOT_BYTES;
    this.view.setUint32(off, seq, true);
    this.view.setUint32(off + 4, lba, true);
    this.view.setFloat64(off + 8, tsUs, true);
    this.u8.set(data, off + ENTRY_HEADER_BYTES);
    return off;
  }

  /** A private (non-shared) copy of a slot's data, fit for postMessage. */
  dataCopy(off: number): Uint8Array {
    return this.u8.slice(off + ENTRY_HEADER_BYTES, off + SLOT_BYTES);
  }
}

function runP(): void {
  const toI = d.toI!;
  host.on('message', (w: NaiveWrite) => {
    volume.set(w.data, w.lba * BLOCK_BYTES);
    toI.postMessage(w); // the synchronous copy: the data is cloned into the message
  });
  toI.on('message', (tag: number) => host.postMessage(tag));
}

function runI(): void {
  const toP = d.toP!, toR = d.toR!;
  const journal = new JournalArea(d.journalSab!);
  let lastSeq = 0, ackedSeq = 0;
  const waiting: NaiveWrite[] = []; // writes held while the journal is full

  const accept = (w: NaiveWrite): void => {
    volume.set(w.data, w.lba * BLOCK_BYTES);
    const seq = ++lastSeq, tsUs = Math.round(performance.now() * 1000);
    const off = journal.store(seq, tsUs, w.lba, w.data);
    toP.postMessage(w.tag);
    toR.postMessage({ seq, tsUs, lba: w.lba, data: journal.dataCopy(off) } satisfies NaiveEntry);
  };

  toP.on('message', (w: NaiveWrite) => {
    if (waiting.length > 0 || lastSeq - ackedSeq >= journal.slots) waiting.push(w);
    else accept(w);
  });
  toR.on('message', (seq: number) => {
    if (seq !== ackedSeq + 1) throw new Error(`R acknowledged ${seq} after ${ackedSeq}`);
    ackedSeq = seq;
    while (waiting.length > 0 && lastSeq - ackedSeq < journal.slots) accept(waiting.shift()!);
  });
}

function runR(): void {
  const toI = d.toI!;
  const journal = new JournalArea(d.journalSab!);
  const early = new Map<number, NaiveEntry>(); // entries that arrived before their predecessors
  let appliedSeq = 0;

  toI.on('message', (e: NaiveEntry) => {
    if (e.seq <= appliedSeq || early.has(e.seq)) return; // duplicate
    early.set(e.seq, e);
    for (let next = early.get(appliedSeq + 1); next; next = early.get(appliedSeq + 1)) {
      early.delete(next.seq);
      journal.store(next.seq, next.tsUs, next.lba, next.data);
      volume.set(next.data, next.lba * BLOCK_BYTES);
      appliedSeq = next.seq;
      toI.postMessage(appliedSeq);
    }
  });
}

({ P: runP, I: runI, R: runR })[d.role]();
host.postMessage('ready');
