// What every host wrote, independent of the firmware's own bookkeeping, and the checks SPEC §7 asks for.
// Each written 4 KiB block carries a self-describing pattern (write id, LBA, a fill derived from both), so
// the checkers can tell from a volume's bytes alone which write every block holds.

import { createHash } from 'node:crypto';
import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import type { IoStatus } from '../firmware/hardware-interface.ts';

const MAGIC = 0x52434c57; // "RCLW"

export interface WriteRecord {
  id: number;
  host: string;
  system: string;
  lvol: number;
  /** Which of the application's volumes (its consistency group) was written: 0 its data volume, 1 its log volume. */
  member: number;
  lba: number;
  blocks: number;
  issuedUs: number;
  completedUs: number | null;
  status: IoStatus | null;
}

/** Fills `blocks` blocks with the pattern of write `id` at `lba`. */
export function writePattern(id: number, lba: number, blocks: number): Uint8Array {
  const out = new Uint8Array(blocks * BLOCK_SIZE_BYTES);
  const v = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const base = b * BLOCK_SIZE_BYTES;
    v.setUint32(base, MAGIC);
    v.setUint32(base + 4, id);
    v.setUint32(base + 8, lba + b);
    for (let o = 12; o < BLOCK_SIZE_BYTES; o += 4) v.setUint32(base + o, fillWord(id, lba + b, o));
  }
  return out;
}

/** Each word of a block's fill depends only on (write id, LBA, offset), so any word can be checked alone. */
function fillWord(id: number, lba: number, offset: number): number {
  let x = (Math.imul(id, 0x9e3779b1) ^ Math.imul(lba, 0x85ebca6b) ^ Math.imul(offset, 0xc2b2ae35)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  return (x ^ (x >>> 15)) >>> 0;
}

/** Offsets checked in every block (besides the header): spread over the whole block, including its end. */
const CHECKED_OFFSETS = [12, 16, 512, 1028, 2048, 3072, 4088, 4092];

/** One DataView per volume view (worlds hand out the same view of an LVOL each time): no allocation per block read. */
const volumeViews = new WeakMap<Uint8Array, DataView>();

/** The write id a block holds: 0 for a never-written (zero) block, -1 for bytes that are no write's pattern. */
export function blockWriteId(volume: Uint8Array, lba: number): number {
  let v = volumeViews.get(volume);
  if (!v) volumeViews.set(volume, (v = new DataView(volume.buffer, volume.byteOffset, volume.byteLength)));
  const base = lba * BLOCK_SIZE_BYTES;
  if (v.getUint32(base) !== MAGIC) {
    for (let o = 0; o < BLOCK_SIZE_BYTES; o += 4) if (v.getUint32(base + o) !== 0) return -1;
    return 0;
  }
  const id = v.getUint32(base + 4);
  if (v.getUint32(base + 8) !== lba) return -1;
  for (let i = 0; i < CHECKED_OFFSETS.length; i++) {
    const o = CHECKED_OFFSETS[i]!;
    if (v.getUint32(base + o) !== fillWord(id, lba, o)) return -1;
  }
  return id;
}

export interface Violation {
  check: string;
  lba: number;
  message: string;
}

/**
 * The volumes a check reads, by member of the application's group: one volume is its data volume alone (blocks
 * of other members are not checked); a list is the whole group, checked together (a member missing: skipped).
 */
export type GroupVolumes = Uint8Array | ReadonlyArray<Uint8Array | undefined>;

/** Blocks of all members share one map: member m's block b is key m × MEMBER_KEY + b. */
const MEMBER_KEY = 2 ** 32;
const memberOf = (key: number) => Math.floor(key / MEMBER_KEY);
const lbaOf = (key: number) => key % MEMBER_KEY;
const volumeOf = (v: GroupVolumes, member: number): Uint8Array | undefined => (v instanceof Uint8Array ? (member === 0 ? v : undefined) : v[member]);
/** A block as messages name it: the data volume's by number, the log volume's as such. */
const blockName = (key: number) => `${memberOf(key) === 0 ? '' : 'log '}block ${lbaOf(key)}`;

export class WriteHistory {
  readonly writes: WriteRecord[] = [];
  /** Called after every completion (checkers hook in here). */
  readonly onComplete: Array<(w: WriteRecord) => void> = [];
  /** Writes declared lost by a data-loss report: no later check expects them anywhere. */
  readonly lost = new Set<number>();
  /** Per block of the application's volumes (key: member and LBA, whichever site holds them): the writes to it, in issue order. */
  private readonly perBlock = new Map<number, WriteRecord[]>();

  issue(host: string, system: string, lvol: number, lba: number, blocks: number, nowUs: number, member = 0): WriteRecord {
    const w: WriteRecord = { id: this.writes.length + 1, host, system, lvol, member, lba, blocks, issuedUs: nowUs, completedUs: null, status: null };
    this.writes.push(w);
    for (let b = lba; b < lba + blocks; b++) {
      const key = member * MEMBER_KEY + b;
      const list = this.perBlock.get(key) ?? [];
      const prev = list[list.length - 1];
      if (prev && prev.completedUs === null) throw new Error(`workload bug: ${blockName(key)} written again while write ${prev.id} is in flight`);
      list.push(w);
      this.perBlock.set(key, list);
    }
    return w;
  }

  /** True while a write to any of these blocks is in flight (an application never overlaps two). */
  inFlight(lba: number, blocks: number, member = 0): boolean {
    for (let b = lba; b < lba + blocks; b++) {
      const list = this.perBlock.get(member * MEMBER_KEY + b);
      if (list && list[list.length - 1]!.completedUs === null) return true;
    }
    return false;
  }

  complete(w: WriteRecord, status: IoStatus, nowUs: number): void {
    w.status = status;
    w.completedUs = nowUs;
    for (const f of this.onComplete) f(w);
  }

  /** True when `volume` holds write `w` (or a later write to the same blocks) in every block it wrote. */
  holds(volume: Uint8Array, w: WriteRecord): boolean {
    for (let b = w.lba; b < w.lba + w.blocks; b++) {
      const list = this.perBlock.get(w.member * MEMBER_KEY + b)!;
      const got = blockWriteId(volume, b);
      if (list.findIndex((x) => x.id === got) < list.indexOf(w)) return false;
    }
    return true;
  }

  /**
   * After a data-loss report, the acknowledged writes the surviving volume lacks are gone for good: they are
   * marked lost, so later checks (prefix consistency of the new history on top) do not expect them.
   */
  markLost(volumes: GroupVolumes): number {
    let n = 0;
    for (const [key, list] of this.perBlock) {
      const volume = volumeOf(volumes, memberOf(key));
      if (!volume) continue;
      const got = blockWriteId(volume, lbaOf(key));
      const idx = list.findIndex((w) => w.id === got);
      for (let i = idx + 1; i < list.length; i++) if (!this.lost.has(list[i]!.id)) { this.lost.add(list[i]!.id); n++; }
    }
    return n;
  }

  get acknowledged(): number {
    return this.writes.reduce((n, w) => n + (w.status === 'ok' ? 1 : 0), 0);
  }


  /**
   * SPEC §7.1/§7.3: the volume holds every acknowledged write — each block holds its last acknowledged
   * write or a write issued after it (one that was in flight or refused may or may not have landed).
   */
  missingAcknowledged(volumes: GroupVolumes, limit = 20, o: { includeLost?: boolean } = {}): Violation[] {
    const out: Violation[] = [];
    for (const [key, list] of this.perBlock) {
      const volume = volumeOf(volumes, memberOf(key)), lba = lbaOf(key);
      if (!volume) continue;
      const got = blockWriteId(volume, lba);
      let lastAck = -1;
      for (let i = list.length - 1; i >= 0; i--) if (list[i]!.status === 'ok' && (o.includeLost || !this.lost.has(list[i]!.id))) { lastAck = i; break; }
      if (lastAck < 0) continue;
      const gotIndex = list.findIndex((w) => w.id === got);
      if (got === -1 || gotIndex < lastAck) {
        out.push({ check: 'acknowledged-write-present', lba, message: `${blockName(key)} holds ${describe(got)}, but write ${list[lastAck]!.id} (acknowledged at ${list[lastAck]!.completedUs} µs) is missing` });
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /**
   * SPEC §7.2: the volume is prefix-consistent — it holds no write without every write acknowledged
   * before that one was issued (the order a host can rely on). Given the group's volumes, across all of them.
   */
  prefixViolations(volumes: GroupVolumes, limit = 20): Violation[] {
    // Sampled every few ms of a run, so written for speed: a block usually holds one of its newest writes,
    // hence the search from the end, and no arrays are built per block.
    const out: Violation[] = [];
    let newestIssued = -Infinity, newestLba = -1, newestId = 0;
    const lists: WriteRecord[][] = [], lbas: number[] = [], held: number[] = [];
    for (const [lba, list] of this.perBlock) {
      const volume = volumeOf(volumes, memberOf(lba));
      if (!volume) continue;
      const got = blockWriteId(volume, lbaOf(lba));
      let idx = -1;
      if (got > 0) for (let i = list.length - 1; i >= 0; i--) if (list[i]!.id === got) { idx = i; break; }
      if (got === -1 || (got !== 0 && idx < 0)) {
        out.push({ check: 'prefix-consistent', lba: lbaOf(lba), message: `${blockName(lba)} holds ${describe(got)}, which no host wrote there (corruption)` });
        continue;
      }
      lists.push(list); lbas.push(lba); held.push(idx);
      if (idx >= 0 && list[idx]!.issuedUs > newestIssued) { newestIssued = list[idx]!.issuedUs; newestLba = lba; newestId = got; }
    }
    for (let k = 0; k < lists.length && out.length < limit; k++) {
      const list = lists[k]!;
      let next: WriteRecord | undefined;
      for (let i = held[k]! + 1; i < list.length; i++) if (!this.lost.has(list[i]!.id)) { next = list[i]; break; }
      if (next && next.status === 'ok' && next.completedUs !== null && next.completedUs < newestIssued) {
        out.push({ check: 'prefix-consistent', lba: lbaOf(lbas[k]!), message: `${blockName(lbas[k]!)} lacks write ${next.id} (${next.host} to ${next.system}, acknowledged at ${next.completedUs} µs) although ${blockName(newestLba)} holds write ${newestId} (${this.writes[newestId - 1]!.host} to ${this.writes[newestId - 1]!.system}), issued later at ${newestIssued} µs` });
      }
    }
    return out;
  }
}

function describe(id: number): string {
  return id === 0 ? 'nothing (zeros)' : id === -1 ? 'bytes of no write' : `write ${id}`;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
