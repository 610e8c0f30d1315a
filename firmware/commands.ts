// Management commands the controller accepts (from a host's copy control program, or relayed by a partner),
// and the acceptance table: for each command and pair state, done (ok), accepted-but-nothing-to-do (noop),
// or refused (reject) — never half-done.

import type { GroupMember } from './consistency-group.ts';
import { PairState, pairStateName, type CopyType } from './pair-state.ts';
import type { AsyncMode } from './definition-info.ts';

export type FenceLevel = 'data' | 'status' | 'never';
export type InitialCopy = 'full' | 'none' | 'defer';

export interface PairDefinitionInput {
  pairId: number;
  /** Copy source LVOL on the storage system that receives the create command. */
  localLvol: number;
  remoteStorageId: number;
  remoteLvol: number;
  copyType: CopyType;
  fence: FenceLevel;
  /** Asynchronous pairs: journal volume (232x) on this storage system and on the partner. */
  journalLvol?: number;
  remoteJournalLvol?: number;
  /**
   * Asynchronous pairs (SPEC §5): 'journal' (default) ships every write in order; 'snapshot' ships a difference
   * snapshot every `snapshotIntervalUs` (default DEFAULT_SNAPSHOT_INTERVAL_US), which the destination applies whole.
   */
  asyncMode?: AsyncMode;
  snapshotIntervalUs?: number;
  /**
   * Journal mode only: inflow control (write pacing). While the journal is over the high-water mark a host write is
   * stored and journaled but its completion is held until the destination's acknowledgements bring the journal back
   * under the mark, so the host slows to what the link and the destination drain instead of filling the journal;
   * a journal over the mark for the journal watch time still suspends the pair. Default off.
   */
  inflowControl?: boolean;
  /**
   * A consistency group: every data volume the pair covers, in order, the first being localLvol/remoteLvol. The
   * members share the pair's journal, sequence numbers, bitmap and state (firmware/consistency-group.ts).
   */
  volumes?: GroupMember[];
}

export type Command =
  | { op: 'create'; pair: PairDefinitionInput; initialCopy: InitialCopy; step?: string }
  | { op: 'suspend'; pairId: number; step?: string }
  | { op: 'drain'; pairId: number; step?: string }
  | { op: 'resync'; pairId: number; full?: boolean; step?: string }
  | { op: 'reverse'; pairId: number; step?: string }
  | { op: 'delete'; pairId: number; step?: string }
  | { op: 'query'; pairId: number; step?: string }
  | { op: 'status'; step?: string };

export type CommandOp = Command['op'];
export const PAIR_COMMAND_OPS: ReadonlyArray<Exclude<CommandOp, 'status'>> = [
  'create', 'suspend', 'drain', 'resync', 'reverse', 'delete', 'query',
];

export interface PairView {
  pairId: number;
  storageId: number;
  role: 'source' | 'destination';
  localLvol: number;
  remoteStorageId: number;
  remoteLvol: number;
  /** SPEC §1 fields, as seen from this side. */
  sourceStorageId: number;
  sourceLvol: number;
  destinationStorageId: number;
  destinationLvol: number;
  direction: 'forward' | 'reverse';
  copyType: CopyType;
  fence: FenceLevel;
  state: string;
  stateValue: PairState;
  failureCause: string;
  journalLvol: number;
  /** The data volumes of the pair's consistency group, as seen from this side (one member: a single-volume pair). */
  members: GroupMember[];
  dirtyTracks: number;
  copyProgressPercent: number;
  lastFormationCopy: string;
  lastFormationTracksCopied: number;
  /** Async source: newest sequence number journaled; destination: newest applied. */
  journalNewestSeq: number;
  journalAppliedSeq: number;
  journalEntries: number;
  journalBytes: number;
  journalUsagePercent: number;
  journalOldestUnappliedUs: number;
  /** SPEC §5: 'journal' or 'snapshot' ('journal' for synchronous pairs, which have neither). */
  asyncMode: AsyncMode;
  snapshotIntervalUs: number;
  /** Snapshot mode, source: tracks written since the last snapshot was taken, and whether a snapshot is in flight. */
  snapshotTracksMarked: number;
  snapshotInFlight: boolean;
  /** Snapshot mode: snapshots taken (source) or applied whole (destination) since the controller booted. */
  snapshots: number;
  /** Journal mode: inflow control on; source: host writes whose completion it holds right now (paced). */
  inflowControl: boolean;
  inflowHeldWrites: number;
}

export type CommandReply =
  | { ok: true; outcome: 'done' | 'no-op'; message: string; pair?: PairView; pairs?: PairView[] }
  | { ok: false; error: string };

export type Acceptance = 'ok' | 'noop' | 'reject';

const O: Acceptance = 'ok', N: Acceptance = 'noop', R: Acceptance = 'reject';
// Columns: simplex, initial copying, duplex, suspending, suspend, failure suspend, duplex pending.
const TABLE: Record<Exclude<CommandOp, 'status' | 'query'>, Record<CopyType, Acceptance[]>> = {
  //               SMPL init  dup  sing  sus  fsus dpend
  create:  { sync: [N, N, N, R, R, R, N], async: [N, N, N, R, R, R, N] },
  suspend: { sync: [R, O, O, R, N, N, O], async: [R, O, O, N, N, N, O] },
  drain:   { sync: [R, R, R, R, R, R, R], async: [R, R, O, N, N, R, R] },
  resync:  { sync: [O, N, N, R, O, O, N], async: [O, N, N, R, O, O, N] },
  reverse: { sync: [R, R, R, R, O, O, R], async: [R, R, R, R, O, O, R] },
  delete:  { sync: [O, O, O, O, O, O, O], async: [O, O, O, O, O, O, O] },
};

export function acceptance(op: CommandOp, copyType: CopyType, state: PairState): Acceptance {
  if (op === 'query' || op === 'status') return 'ok';
  return TABLE[op][copyType][state];
}

export function rejection(op: CommandOp, pairId: number, copyType: CopyType, state: PairState, why?: string): string {
  return `${op} refused: pair ${pairId} (${copyType}) is ${pairStateName(state)}${why ? `: ${why}` : ''}`;
}
