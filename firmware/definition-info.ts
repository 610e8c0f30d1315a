// Definition information (the pair table) and journal metadata, laid out in control memory (memory 220)
// as 32-bit words so that any thread holding the SharedArrayBuffer can read pair states without asking
// the firmware. The firmware is the only writer.

import { MAX_GROUP_MEMBERS, MAX_JOURNALS, MAX_PAIRS } from './constants.ts';
import type { GroupMember } from './consistency-group.ts';
import type { FenceLevel } from './commands.ts';
import { PairState, type CopyType } from './pair-state.ts';

const MAGIC = 0x52434c32; // "RCL2"
const LAYOUT_VERSION = 2; // 2: pair slots hold a consistency group's member list and the SPEC §5 async mode
const HEADER_WORDS = 16;
const PAIR_SLOT_WORDS = 48;
const JOURNAL_SLOT_WORDS = 16;
/**
 * A pair slot's bitmaps: its difference bitmap; the tracks with a copy in flight; and (snapshot mode, SPEC §5) the
 * tracks written since the last difference snapshot was taken.
 */
export type BitmapKind = 'difference' | 'pending' | 'snapshot';
const BITMAPS: BitmapKind[] = ['difference', 'pending', 'snapshot'];

// Header word offsets.
const H_MAGIC = 0, H_VERSION = 1, H_STORAGE_ID = 2, H_BOOT_COUNT = 3, H_BITMAP_WORDS = 4;

// Pair slot word offsets (SPEC §1 definition information, plus what the controller records).
export const P = {
  inUse: 0, pairId: 1, role: 2, localLvol: 3, remoteStorageId: 4, remoteLvol: 5, direction: 6,
  copyType: 7, state: 8, fence: 9, journalLvol: 10, remoteJournalLvol: 11,
  copyTracksTotal: 12, copyTracksDone: 13, formationKind: 14, lastFormationTracksCopied: 15,
  appliedSeq: 16, failureCause: 17, drainTargetSeq: 18, dirtyTracks: 19, stateChanges: 20,
  lastFormationKind: 21, consistentSeq: 22, announcedBaseSeq: 23, epoch: 24,
  /** Consistency group: member count, then [local LVOL, remote LVOL] per member (member 0 = localLvol/remoteLvol). */
  memberCount: 25, members: 26,
  // SPEC §5: asynchronous copying by journal (0) or by difference snapshots (1); the snapshot interval; the last
  // sequence number of the snapshot in flight (source), 0 when none is.
  asyncMode: 42, snapshotIntervalUs: 43, snapshotEndSeq: 44,
  /** Journal mode, source: 1 = inflow control (host writes paced while the journal is over the high-water mark). */
  inflowControl: 45,
  /**
   * Synchronous pairs: the copy generation (16 bits), advanced by the source at every resynchronisation and adopted
   * by the destination from the resync request; each synchronous copy carries it, and the destination refuses a copy
   * of another generation (one sent, or sent again, before the resync). In control memory, so it survives power loss.
   */
  copyGeneration: 46,
} as const;
if (P.members + 2 * MAX_GROUP_MEMBERS > P.asyncMode || P.copyGeneration >= PAIR_SLOT_WORDS) throw new Error('definition information: a pair slot cannot hold MAX_GROUP_MEMBERS members, the async mode, inflow control and the copy generation');

/** consistentSeq of a destination whose image is not consistent (a formation copy is under way or never ran). */
export const NOT_CONSISTENT = 0x7fffffff;

// Journal slot word offsets.
export const J = {
  inUse: 0, journalLvol: 1, pairId: 2, headOffset: 3, tailOffset: 4, usedBytes: 5, entries: 6,
  oldestSeq: 7, newestSeq: 8, capacityBytes: 9, full: 10, dataHeadBlock: 11, dataTailBlock: 12,
  slotCount: 13, dataBlocks: 14,
} as const;

export type Role = 'source' | 'destination';
/** SPEC §5: how an asynchronous pair copies — a journal of every write, or difference snapshots applied whole. */
export type AsyncMode = 'journal' | 'snapshot';
export const ASYNC_MODES: AsyncMode[] = ['journal', 'snapshot'];
export type Direction = 'forward' | 'reverse';
export type FormationKind = 'none' | 'initial' | 'differential' | 'full';
export type FailureCause =
  | 'none' | 'link down' | 'partner lost' | 'journal full' | 'drain failed' | 'power loss' | 'drive failure' | 'copy failed';

export const ROLES: Role[] = ['source', 'destination'];
export const DIRECTIONS: Direction[] = ['forward', 'reverse'];
export const COPY_TYPES: CopyType[] = ['sync', 'async'];
export const FENCE_LEVELS: FenceLevel[] = ['data', 'status', 'never'];
export const FORMATION_KINDS: FormationKind[] = ['none', 'initial', 'differential', 'full'];
export const FAILURE_CAUSES: FailureCause[] = [
  'none', 'link down', 'partner lost', 'journal full', 'drain failed', 'power loss', 'drive failure', 'copy failed',
];

export interface ControlMemoryGeometry {
  bitmapWords: number;
}

export function controlMemoryWords(g: ControlMemoryGeometry): number {
  return HEADER_WORDS + MAX_PAIRS * PAIR_SLOT_WORDS + MAX_JOURNALS * JOURNAL_SLOT_WORDS + MAX_PAIRS * BITMAPS.length * g.bitmapWords;
}

/** Formats fresh control memory (as at manufacture): empty pair table and journals. */
export function formatControlMemory(cm: Int32Array, storageId: number, g: ControlMemoryGeometry): void {
  if (cm.length < controlMemoryWords(g)) throw new Error(`control memory too small: ${cm.length} words < ${controlMemoryWords(g)}`);
  cm.fill(0);
  cm[H_MAGIC] = MAGIC;
  cm[H_VERSION] = LAYOUT_VERSION;
  cm[H_STORAGE_ID] = storageId;
  cm[H_BITMAP_WORDS] = g.bitmapWords;
}

/** Typed access to the layout, shared by the firmware (writer) and any reader (harness, checkers, debugger). */
export class ControlMemoryLayout {
  readonly bitmapWords: number;
  private readonly pairBase = HEADER_WORDS;
  private readonly journalBase = HEADER_WORDS + MAX_PAIRS * PAIR_SLOT_WORDS;
  private readonly bitmapBase = HEADER_WORDS + MAX_PAIRS * PAIR_SLOT_WORDS + MAX_JOURNALS * JOURNAL_SLOT_WORDS;

  constructor(readonly cm: Int32Array) {
    if (cm[H_MAGIC] !== MAGIC) throw new Error('control memory is not formatted (bad magic)');
    if (cm[H_VERSION] !== LAYOUT_VERSION) throw new Error(`control memory layout version ${cm[H_VERSION]} is not ${LAYOUT_VERSION}`);
    this.bitmapWords = cm[H_BITMAP_WORDS]!;
  }

  get storageId(): number { return this.cm[H_STORAGE_ID]!; }
  get bootCount(): number { return this.cm[H_BOOT_COUNT]!; }
  countBoot(): number { return ++this.cm[H_BOOT_COUNT]!; }

  pairWord(slot: number, field: number): number {
    return Atomics.load(this.cm, this.pairBase + slot * PAIR_SLOT_WORDS + field);
  }
  setPairWord(slot: number, field: number, value: number): void {
    Atomics.store(this.cm, this.pairBase + slot * PAIR_SLOT_WORDS + field, value);
  }
  clearPairSlot(slot: number): void {
    const b = this.pairBase + slot * PAIR_SLOT_WORDS;
    this.cm.fill(0, b, b + PAIR_SLOT_WORDS);
    for (const which of BITMAPS) this.bitmap(slot, which).fill(0);
  }

  journalWord(slot: number, field: number): number {
    return Atomics.load(this.cm, this.journalBase + slot * JOURNAL_SLOT_WORDS + field);
  }
  setJournalWord(slot: number, field: number, value: number): void {
    Atomics.store(this.cm, this.journalBase + slot * JOURNAL_SLOT_WORDS + field, value);
  }
  clearJournalSlot(slot: number): void {
    const b = this.journalBase + slot * JOURNAL_SLOT_WORDS;
    this.cm.fill(0, b, b + JOURNAL_SLOT_WORDS);
  }

  /** The words of one of a pair slot's bitmaps (BitmapKind). */
  bitmap(slot: number, which: BitmapKind): Int32Array {
    const start = this.bitmapBase + (slot * BITMAPS.length + BITMAPS.indexOf(which)) * this.bitmapWords;
    return this.cm.subarray(start, start + this.bitmapWords);
  }

  /** Slot holding pairId, or -1. */
  findPair(pairId: number): number {
    for (let s = 0; s < MAX_PAIRS; s++) {
      if (this.pairWord(s, P.inUse) === 1 && this.pairWord(s, P.pairId) === pairId) return s;
    }
    return -1;
  }
  freePairSlot(): number {
    for (let s = 0; s < MAX_PAIRS; s++) if (this.pairWord(s, P.inUse) === 0) return s;
    return -1;
  }
  usedPairSlots(): number[] {
    const out: number[] = [];
    for (let s = 0; s < MAX_PAIRS; s++) if (this.pairWord(s, P.inUse) === 1) out.push(s);
    return out;
  }
  findJournal(journalLvol: number): number {
    for (let s = 0; s < MAX_JOURNALS; s++) {
      if (this.journalWord(s, J.inUse) === 1 && this.journalWord(s, J.journalLvol) === journalLvol) return s;
    }
    return -1;
  }
  freeJournalSlot(): number {
    for (let s = 0; s < MAX_JOURNALS; s++) if (this.journalWord(s, J.inUse) === 0) return s;
    return -1;
  }
}

/** One pair's definition information, decoded (SPEC §1 fields plus the recorded state). */
export interface PairRecord {
  slot: number;
  pairId: number;
  role: Role;
  localLvol: number;
  remoteStorageId: number;
  remoteLvol: number;
  direction: Direction;
  copyType: CopyType;
  state: PairState;
  fence: FenceLevel;
  journalLvol: number;
  remoteJournalLvol: number;
  failureCause: FailureCause;
  copyTracksTotal: number;
  copyTracksDone: number;
  formationKind: FormationKind;
  lastFormationKind: FormationKind;
  lastFormationTracksCopied: number;
  appliedSeq: number;
  drainTargetSeq: number;
  dirtyTracks: number;
  /** Destination: its image is prefix-consistent once appliedSeq ≥ consistentSeq (NOT_CONSISTENT during a formation copy). */
  consistentSeq: number;
  /** The data volumes the pair covers (a consistency group); the first is localLvol/remoteLvol. */
  members: GroupMember[];
  asyncMode: AsyncMode;
  snapshotIntervalUs: number;
  /** Source in snapshot mode: last sequence number of the snapshot in flight (0: none). */
  snapshotEndSeq: number;
  /** Journal mode: host writes are paced while the journal is over the high-water mark (OPERATORS.md §1). */
  inflowControl: boolean;
}

/** A destination volume that holds a prefix-consistent image (no formation copy in progress or unfinished). */
export function isConsistentDestination(r: PairRecord): boolean {
  return r.role === 'destination' && r.state !== PairState.Simplex && r.state !== PairState.InitialCopying
    && r.state !== PairState.DuplexPending && r.appliedSeq >= r.consistentSeq;
}

export function readPairRecord(l: ControlMemoryLayout, slot: number): PairRecord {
  const w = (f: number) => l.pairWord(slot, f);
  return {
    slot,
    pairId: w(P.pairId),
    role: ROLES[w(P.role)]!,
    localLvol: w(P.localLvol),
    remoteStorageId: w(P.remoteStorageId),
    remoteLvol: w(P.remoteLvol),
    direction: DIRECTIONS[w(P.direction)]!,
    copyType: COPY_TYPES[w(P.copyType)]!,
    state: w(P.state) as PairState,
    fence: FENCE_LEVELS[w(P.fence)]!,
    journalLvol: w(P.journalLvol),
    remoteJournalLvol: w(P.remoteJournalLvol),
    failureCause: FAILURE_CAUSES[w(P.failureCause)]!,
    copyTracksTotal: w(P.copyTracksTotal),
    copyTracksDone: w(P.copyTracksDone),
    formationKind: FORMATION_KINDS[w(P.formationKind)]!,
    lastFormationKind: FORMATION_KINDS[w(P.lastFormationKind)]!,
    lastFormationTracksCopied: w(P.lastFormationTracksCopied),
    appliedSeq: w(P.appliedSeq),
    drainTargetSeq: w(P.drainTargetSeq),
    dirtyTracks: w(P.dirtyTracks),
    consistentSeq: w(P.consistentSeq),
    members: readMembers(l, slot),
    asyncMode: ASYNC_MODES[w(P.asyncMode)]!,
    snapshotIntervalUs: w(P.snapshotIntervalUs),
    snapshotEndSeq: w(P.snapshotEndSeq),
    inflowControl: w(P.inflowControl) === 1,
  };
}

/** The member list of a pair slot (a slot without one, as written before groups existed, has its one volume). */
export function readMembers(l: ControlMemoryLayout, slot: number): GroupMember[] {
  const n = l.pairWord(slot, P.memberCount);
  if (n === 0) return [{ localLvol: l.pairWord(slot, P.localLvol), remoteLvol: l.pairWord(slot, P.remoteLvol) }];
  return Array.from({ length: n }, (_, i) => ({ localLvol: l.pairWord(slot, P.members + 2 * i), remoteLvol: l.pairWord(slot, P.members + 2 * i + 1) }));
}

export function writeMembers(l: ControlMemoryLayout, slot: number, members: GroupMember[]): void {
  if (members.length < 1 || members.length > MAX_GROUP_MEMBERS) throw new Error(`a pair has 1..${MAX_GROUP_MEMBERS} members, not ${members.length}`);
  l.setPairWord(slot, P.memberCount, members.length);
  members.forEach((m, i) => { l.setPairWord(slot, P.members + 2 * i, m.localLvol); l.setPairWord(slot, P.members + 2 * i + 1, m.remoteLvol); });
}

/** Every pair in a storage system's control memory, read without the firmware. */
export function readDefinitionInformation(cm: Int32Array): PairRecord[] {
  const l = new ControlMemoryLayout(cm);
  return l.usedPairSlots().map((s) => readPairRecord(l, s));
}

export interface JournalRecord {
  slot: number;
  journalLvol: number;
  pairId: number;
  headOffset: number;
  tailOffset: number;
  usedBytes: number;
  entries: number;
  oldestSeq: number;
  newestSeq: number;
  capacityBytes: number;
}

export function readJournalRecords(cm: Int32Array): JournalRecord[] {
  const l = new ControlMemoryLayout(cm);
  const out: JournalRecord[] = [];
  for (let s = 0; s < MAX_JOURNALS; s++) {
    if (l.journalWord(s, J.inUse) !== 1) continue;
    const w = (f: number) => l.journalWord(s, f);
    out.push({
      slot: s, journalLvol: w(J.journalLvol), pairId: w(J.pairId), headOffset: w(J.headOffset),
      tailOffset: w(J.tailOffset), usedBytes: w(J.usedBytes), entries: w(J.entries),
      oldestSeq: w(J.oldestSeq), newestSeq: w(J.newestSeq), capacityBytes: w(J.capacityBytes),
    });
  }
  return out;
}
