// The controller's program (CPU 210 running out of memory 220): an event handler that is given one event
// at a time — a host I/O, a frame, a timer, a management command, a link-state change — and reacts by
// touching its hardware and sending frames. It knows nothing of threads, timers or the harness.

import { BLOCK_SIZE_BYTES, BLOCKS_PER_TRACK, FORMATION_COPY_WINDOW_TRACKS, TRACK_SIZE_BYTES,
  FAST_RESEND_DUPLICATE_ACKS, INFLOW_HELD_MAX_WRITES, LOSS_TIMER_MIN_US, SYNC_RESEND_FIRST_WAIT_US, JOURNAL_BATCH_MAX_ENTRIES, JOURNAL_LOW_WATER_PERCENT, JOURNAL_SHIP_WINDOW_ENTRIES, MAX_GROUP_MEMBERS, MAX_IO_BYTES, RESTORE_PENDING_MAX_ENTRIES, SYNC_DUPLICATE_WINDOW_TAGS,
  DEFAULT_SNAPSHOT_INTERVAL_US, MAX_SNAPSHOT_INTERVAL_US, MIN_SNAPSHOT_INTERVAL_US } from './constants.ts';
import { checkMembers, groupLayout, locateInGroup, memberOfTrack, type GroupLayout, type GroupMember } from './consistency-group.ts';
import { acceptance, rejection, type Command, type CommandReply, type PairView, type PairDefinitionInput } from './commands.ts';
import { ASYNC_MODES, ControlMemoryLayout, type BitmapKind, NOT_CONSISTENT, P, readMembers, readPairRecord, writeMembers, FAILURE_CAUSES, FENCE_LEVELS, FORMATION_KINDS,
  type FailureCause, type FormationKind, type PairRecord } from './definition-info.ts';
import { DifferenceBitmap } from './difference-bitmap.ts';
import { RetransmitTimer } from './retransmit-timer.ts';
import { decodeBundle, decodeControl, decodeFrame, decodeJournalBatch, FrameEncoder, FrameType,
  type ControlBody, type DecodedFrame, type JournalEntryWire, type WireDefinition } from './frames.ts';
import type { FirmwareEntryPoints, Hardware, HostIo, IoStatus, TimerKind } from './hardware-interface.ts';
import { FrameBundler } from './frame-bundler.ts';
import { assertInvariant } from './invariant.ts';
import { Journal } from './journal.ts';
import { isCopyingState, isLegalTransition, PairState, pairStateName } from './pair-state.ts';
import { RecentTags } from './recent-tags.ts';
import { ShipPacing } from './ship-pacing.ts';

/** Volatile per-pair state (lost on power loss; everything durable is in control memory). */
interface PairRuntime {
  slot: number;
  pairId: number;
  /** The pair's consistency group: its members placed in one address space (bitmap, journal and frames use group addresses). */
  group: GroupLayout;
  bitmap: DifferenceBitmap;
  pending: DifferenceBitmap;
  /** Snapshot mode, source (SPEC §5): tracks written since the last difference snapshot was taken. */
  snapshot: DifferenceBitmap;
  journal?: Journal;
  // formation copying (source): track -> serial and send time
  copyInflight: Map<number, { serial: number; sentUs: number }>;
  /** Tracks in flight, fitted to the link as the journal's window is (firmware/ship-pacing.ts); keyed by serial. */
  copyPacing: ShipPacing;
  copyCursor: number;
  lastCopyAckUs: number;
  /** Writes to tracks whose formation copy is in flight, held until that copy is acknowledged (so they cannot be overtaken by it). */
  deferred: Map<number, DeferredWrite[]>;
  // formation copying (destination): newest serial applied per track, so a late duplicate never overwrites
  copySerialApplied?: Uint32Array;
  // synchronous copying (destination): tags of recently applied copies, so a late duplicate is not written again
  syncTagsApplied: RecentTags;
  /**
   * Synchronous copying (destination): per group block, the tag of the copy that last wrote it (0: none since the copy
   * began), so an older copy overtaken by a newer one to the same block does not write over it (writeSyncCopy).
   */
  syncBlockTags?: Uint32Array;
  /** Synchronous copying (source): when an unanswered copy goes again, from the round trips of the pair's copies. */
  syncResendTimer: RetransmitTimer;
  // journal shipping (source)
  shippedSeq: number;
  /** The ship window and batch size, from the acknowledgements (firmware/ship-pacing.ts). */
  pacing: ShipPacing;
  /** Acknowledgements in a row that did not move (fast resend). */
  duplicateAcks: number;
  /** The count of those at which the gap's first batch goes (again): see onAckWithoutProgress. */
  resendAtDuplicateAcks: number;
  /** When the gap's first batch last went again, and how long its answer may take before it goes once more (tick); -1: none out. */
  gapResentUs: number;
  gapResendWaitUs: number;
  /** What had been shipped when a gap's first batch first went again; 0: no gap. Progress that stops short of it is partial (ackMoved). */
  recoverSeq: number;
  lastAckProgressUs: number;
  shipScheduled: boolean;
  // journal restore (destination): entries that arrived ahead of their predecessors
  restorePending: Map<number, JournalEntryWire>;
  /** Newest state-change counter seen from the partner: state frames overtaken on another path are ignored. */
  partnerStateSeq: number;
  /** A resync request (bitmap-request) is out and not yet answered. */
  resyncPending: boolean;
  /**
   * Destination: a resynchronisation began and the source's restore base has not arrived yet. Journal batches
   * are ignored meanwhile: one still queued from before the failure could otherwise be applied after the
   * formation copy of its track and put older data back (the source resends what it shipped since).
   */
  awaitingBase: boolean;
  activeSinceUs: number;
  lastStep?: string;
  // snapshot mode (SPEC §5)
  snapshotTimerArmed: boolean;
  /** Source: when the newest snapshot was taken; when the one the destination last applied was. */
  lastSnapshotUs: number;
  appliedSnapshotTakenUs: number;
  /** Source: newest sequence number the destination reports stored in its difference volume (flow control). */
  receivedSeq: number;
  /** Destination: last sequence number of the snapshot being received (the source keeps its own in P.snapshotEndSeq). */
  receivingEndSeq: number;
  /** Source draining (suspending): the last snapshot is taken; host writes are differences from now on. */
  drainSnapshotTaken: boolean;
  snapshots: number;
  /**
   * Inflow control (journal mode, source): writes stored and journaled whose completion (to a host, or the
   * acknowledgement of a synchronous copy in a cascade) is held while the journal is over the high-water mark (at most
   * INFLOW_HELD_MAX_WRITES); since when it has been over the mark (-1: not).
   */
  inflowHeld: SyncWriteGroup[];
  overMarkSinceUs: number;
}

interface DeferredWrite {
  lba: number;
  data: Uint8Array;
  /** Synchronous pairs: the host write waiting for this copy. */
  group?: SyncWriteGroup;
}

interface SyncWriteGroup {
  io?: HostIo;
  /**
   * A synchronous copy received (the destination side of P→I): the acknowledgement it is owed, sent once the group
   * is over — at once, or when inflow control on a cascaded asynchronous pair (I→R) lets it go.
   */
  ack?: SyncAckOwed;
  cacheSlot: number;
  remaining: number;
  fenced: boolean;
}
interface SyncAckOwed {
  to: number;
  pairId: number;
  tag: number;
  /** The copy's generation, echoed so that the source matches the answer to the copy it made. */
  gen: number;
}
interface SyncCopy {
  tag: number;
  pairId: number;
  /** The pair's copy generation when the copy was made (P.copyGeneration). */
  gen: number;
  lba: number;
  blocks: number;
  /** The data, in the host write's cache slot, which stays allocated until the copy is over (to be sent again). */
  data: Uint8Array;
  /** First sent (the copy timeout counts from here); last sent; how many times sent again. */
  sentUs: number;
  lastSentUs: number;
  resends: number;
  group: SyncWriteGroup;
}
interface PendingRequest {
  partner: number;
  deadlineUs: number;
  onReply(body: ControlBody): void;
  onFail(why: string): void;
}

type Reply = (r: CommandReply) => void;

/** A value from a command, printable whatever it is (an error message must name the problem, never fail itself). */
function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  try {
    return typeof v === 'object' && v !== null ? JSON.stringify(v) ?? String(typeof v) : String(v);
  } catch {
    return `(${typeof v})`;
  }
}
/** Part of a write: first block, block count, and the in-flight track it waits for (-1: send now). */
type Segment = [number, number, number];

const TICK_US = 10_000;
const ACTIVE = (s: PairState) => isCopyingState(s);
/** A block's last synchronous copy tag `last` is newer than `tag` (serial-number arithmetic: tags wrap at 2^32; 0 is none). */
const newerTag = (last: number, tag: number): boolean => last !== 0 && ((last - tag) | 0) > 0;

/** The `blocks` blocks at `lba` of a buffer that holds the blocks from `bufLba` on. (Not a closure in writeLvol: tsx's keepNames wraps every closure made per write.) */
function blocksOf(buf: Uint8Array, bufLba: number, lba: number, blocks: number): Uint8Array {
  return buf.subarray((lba - bufLba) * BLOCK_SIZE_BYTES, (lba - bufLba + blocks) * BLOCK_SIZE_BYTES);
}

export class Controller implements FirmwareEntryPoints {
  private readonly l: ControlMemoryLayout;
  private readonly pairs = new Map<number, PairRuntime>();
  /** Per local LVOL, the pairs it is a member of and where it starts in each one's group address space. */
  private readonly pairsByLvol = new Map<number, Array<{ rt: PairRuntime; offsetBlocks: number }>>();
  private readonly syncCopies = new Map<number, SyncCopy>();
  private readonly trackInflight = new Map<number, number>();
  private readonly requests = new Map<number, PendingRequest>();
  private readonly lastHeardUs = new Map<number, number>();
  private readonly lastKeepaliveUs = new Map<number, number>();
  private readonly linkDown = new Set<number>();
  private nextTag = 1;
  /** Every frame this controller sends is encoded here (Hardware.send copies it before returning). */
  private readonly enc = new FrameEncoder();
  /** Synchronous copies and acknowledgements wait here for the end of the burst of work, to go out bundled. */
  private readonly bundler = new FrameBundler((to, frame) => this.hw.send(to, frame), (to, frame) => this.frameUnsent(to, frame));
  /** Bursts the hardware has begun and not ended (beginBurst/endBurst); held frames go out when the last ends. */
  private burstDepth = 0;
  private nextReqId = 1;
  private nextCopySerial = 1;
  private lastAnnounceUs = 0;
  private booted = false;

  constructor(private readonly hw: Hardware) {
    this.l = new ControlMemoryLayout(hw.controlMemory);
    assertInvariant(this.l.storageId === hw.storageId, () => `control memory belongs to storage ${this.l.storageId}, not ${hw.storageId}`);
  }

  // ───────────────────────────── boot ─────────────────────────────

  boot(): void {
    try { this.bootUp(); } finally { this.entryOver(); }
  }

  private bootUp(): void {
    assertInvariant(!this.booted, 'boot twice');
    this.booted = true;
    const boots = this.l.countBoot();
    for (const slot of this.l.usedPairSlots()) {
      const rt = this.attach(slot);
      // Tracks whose synchronous copy was in flight when power went may differ: copy them again.
      rt.bitmap.union(rt.pending.words);
      rt.pending.clearAll();
      const state = this.state(rt);
      if (boots > 1 && ACTIVE(state)) this.pairFailed(rt, 'power loss');
      this.updateDirty(rt);
    }
    this.rebuildLvolIndex();
    this.hw.setTimer(TICK_US, 'tick', 0);
    if (boots > 1) this.log('info', `controller restarted (boot ${boots}); ${this.pairs.size} pair(s) in definition information`);
  }

  private attach(slot: number): PairRuntime {
    const pairId = this.l.pairWord(slot, P.pairId);
    const group = groupLayout(readMembers(this.l, slot), (lvol) => this.hw.disk.lvolBlocks(lvol));
    const tracks = DifferenceBitmap.tracksFor(group.blocks);
    // Exactly the group's words, so both sides of a pair exchange bitmaps of one length whatever else their slots hold.
    const words = (which: BitmapKind) => this.l.bitmap(slot, which).subarray(0, Math.ceil(tracks / 32));
    const rt: PairRuntime = {
      slot, pairId, group,
      bitmap: new DifferenceBitmap(words('difference'), tracks),
      pending: new DifferenceBitmap(words('pending'), tracks),
      snapshot: new DifferenceBitmap(words('snapshot'), tracks),
      snapshotTimerArmed: false, lastSnapshotUs: this.hw.nowUs(), appliedSnapshotTakenUs: this.hw.nowUs(), receivedSeq: 0, receivingEndSeq: 0, snapshots: 0, drainSnapshotTaken: false,
      copyInflight: new Map(), copyPacing: new ShipPacing(), copyCursor: 0, lastCopyAckUs: 0, deferred: new Map(), shippedSeq: 0, pacing: new ShipPacing(), duplicateAcks: 0, resendAtDuplicateAcks: FAST_RESEND_DUPLICATE_ACKS, gapResentUs: -1, gapResendWaitUs: 0, recoverSeq: 0, lastAckProgressUs: this.hw.nowUs(), shipScheduled: false,
      restorePending: new Map(), partnerStateSeq: 0, resyncPending: false, awaitingBase: false, activeSinceUs: this.hw.nowUs(),
      syncTagsApplied: new RecentTags(SYNC_DUPLICATE_WINDOW_TAGS), inflowHeld: [], overMarkSinceUs: -1,
      syncResendTimer: new RetransmitTimer(SYNC_RESEND_FIRST_WAIT_US, LOSS_TIMER_MIN_US),
    };
    if (this.l.pairWord(slot, P.copyType) === 1) {
      rt.journal = Journal.open(this.hw.disk, this.l, this.l.pairWord(slot, P.journalLvol), pairId);
      rt.shippedSeq = this.l.pairWord(slot, P.appliedSeq);
    }
    this.pairs.set(pairId, rt);
    return rt;
  }

  private rebuildLvolIndex(): void {
    this.pairsByLvol.clear();
    for (const rt of this.pairs.values()) {
      for (const m of rt.group.members) {
        const list = this.pairsByLvol.get(m.localLvol) ?? [];
        list.push({ rt, offsetBlocks: m.offsetBlocks });
        this.pairsByLvol.set(m.localLvol, list);
      }
    }
  }

  /** Member LVOL and LBA of a group address range, or null when it is not inside one member. */
  private toMember(rt: PairRuntime, groupLba: number, blocks: number): { lvol: number; lba: number } | null {
    const at = locateInGroup(rt.group, groupLba, blocks);
    return at && { lvol: at.member.localLvol, lba: at.lba };
  }

  /** A destination writes what its pair carried (group address, checked by framePair or the batch check) to the member volume. */
  private writeMember(rt: PairRuntime, groupLba: number, data: Uint8Array, ack?: SyncAckOwed): boolean {
    const at = this.toMember(rt, groupLba, data.length / BLOCK_SIZE_BYTES);
    assertInvariant(at !== null, () => `${this.label(rt)}: group blocks ${groupLba}+${data.length / BLOCK_SIZE_BYTES} lie in no member`);
    return this.writeLvol(at.lvol, at.lba, data, rt.pairId, undefined, ack);
  }

  // ───────────────────────────── accessors ─────────────────────────────

  private w(rt: PairRuntime, f: number): number { return this.l.pairWord(rt.slot, f); }
  private set(rt: PairRuntime, f: number, v: number): void { this.l.setPairWord(rt.slot, f, v); }
  private state(rt: PairRuntime): PairState { return this.w(rt, P.state) as PairState; }
  private isSource(rt: PairRuntime): boolean { return this.w(rt, P.role) === 0; }
  private isAsync(rt: PairRuntime): boolean { return this.w(rt, P.copyType) === 1; }
  private isSnapshotMode(rt: PairRuntime): boolean { return this.w(rt, P.asyncMode) === 1; }
  private partner(rt: PairRuntime): number { return this.w(rt, P.remoteStorageId); }
  private record(rt: PairRuntime): PairRecord { return readPairRecord(this.l, rt.slot); }
  private label(rt: PairRuntime): string {
    const r = this.record(rt);
    const lvols = r.members.length > 1 ? `LVOLs ${r.members.map((m) => m.localLvol).join('+')}` : `LVOL ${r.localLvol}`;
    return `pair ${rt.pairId} (${r.copyType} ${r.role === 'source' ? `${lvols} → storage ${r.remoteStorageId}` : `storage ${r.remoteStorageId} → ${lvols}`})`;
  }
  private updateDirty(rt: PairRuntime): void { this.set(rt, P.dirtyTracks, rt.bitmap.count()); }

  private log(level: 'info' | 'warn' | 'error', message: string, step?: string): void {
    this.hw.emit({ type: 'log', level, message, step });
  }

  // ───────────────────────────── state machine ─────────────────────────────

  /** A transition of Fig. 3 / Fig. 4; anything else is a firmware bug and stops the controller. */
  private setState(rt: PairRuntime, to: PairState, cause: FailureCause = 'none'): void {
    const from = this.state(rt);
    if (from === to) return;
    const copyType = this.isAsync(rt) ? 'async' : 'sync';
    assertInvariant(isLegalTransition(copyType, from, to),
      `${this.label(rt)}: illegal transition ${pairStateName(from)} → ${pairStateName(to)}`);
    this.adoptState(rt, to, cause);
  }

  /** Records a state (the destination mirrors whatever its source reports, so no transition check there). */
  private adoptState(rt: PairRuntime, to: PairState, cause: FailureCause = 'none'): void {
    const from = this.state(rt);
    if (from === to && this.w(rt, P.failureCause) === FAILURE_CAUSES.indexOf(cause)) return;
    this.set(rt, P.state, to);
    this.set(rt, P.failureCause, FAILURE_CAUSES.indexOf(cause));
    this.set(rt, P.stateChanges, this.w(rt, P.stateChanges) + 1);
    if (ACTIVE(to) && !ACTIVE(from)) rt.activeSinceUs = this.hw.nowUs();
    if (!isCopyingState(to)) this.releaseInflow(rt); // no longer journaling: nothing to pace
    if (from !== to) {
      this.hw.emit({ type: 'pair-state', pairId: rt.pairId, from: pairStateName(from), to: pairStateName(to), cause, step: rt.lastStep });
    }
  }

  private wireDefinition(rt: PairRuntime): WireDefinition {
    // From the partner's point of view: roles and local/remote swapped.
    const r = this.record(rt);
    return {
      pairId: rt.pairId, role: r.role === 'source' ? 'destination' : 'source', localLvol: r.remoteLvol, remoteLvol: r.localLvol,
      direction: r.direction, copyType: r.copyType, fence: r.fence, journalLvol: r.remoteJournalLvol, remoteJournalLvol: r.journalLvol,
      asyncMode: r.asyncMode, snapshotIntervalUs: r.snapshotIntervalUs, inflowControl: r.inflowControl,
      members: rt.group.members.map((m) => [m.remoteLvol, m.localLvol, m.blocks]),
    };
  }

  /** Every state frame carries a number larger than the last one's (in control memory, so across restarts too). */
  private bumpStateSeq(rt: PairRuntime): number {
    const n = this.w(rt, P.stateChanges) + 1;
    this.set(rt, P.stateChanges, n);
    return n;
  }

  /**
   * Sends this side's state. A source records what it announced (restore base, consistency point), so the
   * periodic re-announcement in tick() repeats it exactly: a state frame lost on the wire heals itself.
   */
  private sendState(rt: PairRuntime, baseSeq = -1, consistentSeq = -1): void {
    if (this.isSource(rt)) {
      if (baseSeq >= 0) this.set(rt, P.announcedBaseSeq, baseSeq);
      if (consistentSeq >= 0) this.set(rt, P.consistentSeq, consistentSeq);
    }
    this.sendStateFrame(rt, baseSeq, consistentSeq);
  }

  private announceState(rt: PairRuntime): void {
    const s = this.state(rt);
    // The restore base is repeated in duplex and suspending too: a destination that lost the announcement made at
    // the start of the copy (lost, or overtaken on another path by the duplex one) still learns it. Until it does it
    // ignores journal batches (awaitingBase), so a drain begun meanwhile could never end (seed 400, 14.7 % loss).
    const copying = s === PairState.InitialCopying || s === PairState.DuplexPending || s === PairState.Duplex || s === PairState.Suspending;
    this.sendStateFrame(rt, copying && rt.journal ? this.w(rt, P.announcedBaseSeq) : -1, s === PairState.Duplex ? this.w(rt, P.consistentSeq) : -1);
  }

  private sendStateFrame(rt: PairRuntime, baseSeq: number, consistentSeq: number): void {
    this.sendControl(this.partner(rt), rt.pairId, {
      op: 'state', def: this.wireDefinition(rt), epoch: this.w(rt, P.epoch), state: this.state(rt), cause: this.w(rt, P.failureCause), stateSeq: this.bumpStateSeq(rt),
      baseSeq, drainTargetSeq: this.w(rt, P.drainTargetSeq), consistentSeq, step: rt.lastStep,
    });
  }

  /** Failure suspend (automatic): everything in flight is folded into the difference bitmap. */
  private pairFailed(rt: PairRuntime, cause: FailureCause): void {
    const state = this.state(rt);
    if (state === PairState.FailureSuspend || state === PairState.Simplex) return;
    this.stopCopying(rt);
    this.adoptState(rt, PairState.FailureSuspend, cause);
    if (cause !== 'link down' && cause !== 'partner lost' && cause !== 'power loss') this.sendState(rt);
  }

  /** Stops formation copying, synchronous copies and journal shipping, marking what was not confirmed. */
  /** A track's pending bit goes once neither a synchronous copy nor a formation copy of it is in flight. */
  private clearPendingTrack(rt: PairRuntime, t: number): void {
    if (!this.trackInflight.has(rt.slot * 0x1000000 + t) && !rt.copyInflight.has(t)) rt.pending.clear(t);
  }

  private stopCopying(rt: PairRuntime, failed = true): void {
    this.dropDeferred(rt, failed);
    for (const t of rt.copyInflight.keys()) { rt.bitmap.set(t); rt.copyInflight.delete(t); this.clearPendingTrack(rt, t); }
    rt.copyInflight.clear();
    rt.copyPacing.rewind();
    for (const c of [...this.syncCopies.values()]) if (c.pairId === rt.pairId) this.finishSyncCopy(c, false);
    if (rt.journal && this.isSource(rt)) this.journalToBitmap(rt);
    rt.restorePending.clear();
    this.updateDirty(rt);
  }

  /**
   * Runs journal-volume I/O; when the journal's drives have failed, the pair fails (drive failure) and every
   * track is marked, because which tracks the unreadable entries covered is no longer known.
   */
  private journalIo<T>(rt: PairRuntime, f: () => T): T | undefined {
    try {
      return f();
    } catch (e) {
      if ((e as Error).name !== 'DiskError') throw e;
      this.log('warn', `${this.label(rt)}: journal volume ${rt.journal?.journalLvol} unusable (${(e as Error).message})`, rt.lastStep);
      rt.bitmap.setAll();
      this.pairFailed(rt, 'drive failure');
      return undefined;
    }
  }

  /**
   * Entries not yet applied at the destination become bitmap marks; the journal is freed (as real arrays do). In
   * snapshot mode the tracks written since the last snapshot are differences too.
   */
  private journalToBitmap(rt: PairRuntime): void {
    const j = rt.journal!;
    rt.bitmap.union(rt.snapshot.words);
    rt.snapshot.clearAll();
    try {
      for (let s = j.oldestSeq; j.entries > 0 && s <= j.newestSeq; s++) {
        const e = j.entryAt(s);
        rt.bitmap.markBlocks(e.lba, e.blocks);
      }
    } catch (e) {
      if ((e as Error).name !== 'DiskError') throw e;
      rt.bitmap.setAll(); // the entries cannot be read: copy everything
    }
    j.reset();
    this.shipFrom(rt, j.newestSeq);
    this.set(rt, P.appliedSeq, j.newestSeq);
  }

  // ───────────────────────────── host I/O ─────────────────────────────

  onHostIo(io: HostIo): void {
    try { this.hostIo(io); } finally { this.entryOver(); }
  }

  private hostIo(io: HostIo): void {
    const status = this.checkHostIo(io);
    if (status !== 'ok') return this.hw.completeHostIo(io, status);
    if (io.op === 'read') {
      try {
        return this.hw.completeHostIo(io, 'ok', this.hw.disk.read(io.lvol, io.lba, io.blocks));
      } catch (e) {
        return this.hw.completeHostIo(io, this.ioError(e));
      }
    }
    let journalOf: PairRuntime | undefined;
    for (const rt of this.pairs.values()) if (rt.journal?.journalLvol === io.lvol) { journalOf = rt; break; }
    if (journalOf) {
      this.log('warn', `host write to LVOL ${io.lvol} refused: it is the journal volume of pair ${journalOf.pairId}`);
      return this.hw.completeHostIo(io, 'write-protected');
    }
    const pairs = this.pairsByLvol.get(io.lvol) ?? [];
    for (const { rt } of pairs) {
      const s = this.state(rt);
      if (!this.isSource(rt) && isCopyingState(s)) {
        this.log('warn', `host write to LVOL ${io.lvol} refused: it is the destination of ${this.label(rt)} in ${pairStateName(s)}`);
        return this.hw.completeHostIo(io, 'write-protected');
      }
      if (this.isSource(rt) && !this.isAsync(rt) && s === PairState.FailureSuspend && this.fence(rt) === 'data') {
        this.log('warn', `host write to LVOL ${io.lvol} refused by fence level data: ${this.label(rt)} is in failure suspend`);
        return this.hw.completeHostIo(io, 'fenced');
      }
    }
    this.writeLvol(io.lvol, io.lba, io.data!, -1, io);
  }

  private checkHostIo(io: HostIo): IoStatus {
    if (io.op !== 'read' && io.op !== 'write') return 'invalid-request';
    let blocks: number;
    try {
      blocks = this.hw.disk.lvolBlocks(io.lvol);
    } catch {
      return 'unknown-lvol';
    }
    if (!Number.isInteger(io.lba) || !Number.isInteger(io.blocks) || io.lba < 0 || io.blocks < 1
      || io.lba + io.blocks > blocks || io.blocks * BLOCK_SIZE_BYTES > MAX_IO_BYTES) return 'out-of-range';
    if (io.op === 'write' && (!io.data || io.data.length !== io.blocks * BLOCK_SIZE_BYTES)) return 'out-of-range';
    return 'ok';
  }

  private ioError(e: unknown): IoStatus {
    const name = (e as Error).name;
    if (name === 'DiskError') return 'medium-error';
    if (name === 'AddressError') return 'out-of-range';
    throw e;
  }

  private fence(rt: PairRuntime) { return FENCE_LEVELS[this.w(rt, P.fence)]!; }

  /**
   * Every write to a data volume comes through here — from a host, a synchronous copy, or journal restore
   * (`origin` is then the pair it came in on). It decides, pair by pair, what the write means for copying:
   * duplex → replicate (synchronous copy or journal entry); formation copying → replicate the parts that fall
   * on tracks already copied, mark the rest; otherwise → difference bitmap. `lvol`/`lba` are the member volume's;
   * each pair sees the write at its own group address (the member's offset in that pair's group + lba).
   */
  private writeLvol(lvol: number, lba: number, data: Uint8Array, origin: number, io?: HostIo, ack?: SyncAckOwed): boolean {
    const pairs = this.pairsByLvol.get(lvol) ?? [];
    const blocks = data.length / BLOCK_SIZE_BYTES;
    // What each source pair (by its index in `pairs`) replicates: [lba, blocks, deferredTrack] segments (none: only
    // marked in the bitmap); undefined for a pair this write does not replicate through.
    const plan: Array<Segment[] | undefined> = new Array(pairs.length);
    let syncNeeded = false;
    for (let i = 0; i < pairs.length; i++) {
      const { rt, offsetBlocks } = pairs[i]!;
      if (rt.pairId === origin || !this.isSource(rt)) continue;
      const segs = this.replicatedSegments(rt, offsetBlocks + lba, blocks);
      plan[i] = segs;
      if (segs.length > 0 && !this.isAsync(rt)) syncNeeded = true;
    }
    let cacheSlot = -1;
    if (syncNeeded) {
      cacheSlot = this.hw.cache.allocate();
      if (cacheSlot < 0 && io) { this.hw.completeHostIo(io, 'busy'); return false; }
    }
    try {
      this.hw.disk.write(lvol, lba, data);
    } catch (e) {
      if (cacheSlot >= 0) this.hw.cache.release(cacheSlot);
      const status = this.ioError(e);
      for (const { rt } of pairs) this.pairFailed(rt, 'drive failure');
      if (io) this.hw.completeHostIo(io, status);
      return false;
    }
    const staged = cacheSlot >= 0 ? this.hw.cache.slot(cacheSlot, data.length) : data;
    if (cacheSlot >= 0) staged.set(data);
    // The group counts the copies this host write waits for; it is completed when they are all over.
    const group: SyncWriteGroup = { io, cacheSlot, remaining: 1, fenced: false };
    // A received synchronous copy's acknowledgement waits for nothing but inflow control (not for copies made from it).
    const owed: SyncWriteGroup | undefined = ack && { ack, cacheSlot: -1, remaining: 1, fenced: false };
    for (let i = 0; i < pairs.length; i++) {
      const { rt, offsetBlocks } = pairs[i]!;
      if (rt.pairId === origin) continue;
      const glba = offsetBlocks + lba;
      const segs = plan[i];
      if (!segs) {
        // A destination volume written other than through its pair now differs from its source.
        rt.bitmap.markBlocks(glba, blocks);
        this.updateDirty(rt);
        continue;
      }
      this.markExcept(rt, glba, blocks, segs);
      const sync = !this.isAsync(rt);
      for (const [sl, sb, track] of segs) {
        if (sync && cacheSlot < 0) { rt.bitmap.markBlocks(sl, sb); continue; } // no cache for a non-host write: copy later
        if (track >= 0) {
          const list = rt.deferred.get(track) ?? [];
          list.push({ lba: sl, data: sync ? blocksOf(staged, glba, sl, sb) : blocksOf(data, glba, sl, sb).slice(), group: sync ? group : undefined });
          rt.deferred.set(track, list);
          if (sync) group.remaining++;
        } else if (sync) {
          group.remaining++;
          this.sendSyncCopy(rt, sl, sb, blocksOf(staged, glba, sl, sb), group);
          if (this.hw.options?.plantedBug === 'sync-ack-before-copy' && group.io) {
            this.hw.completeHostIo(group.io, 'ok'); // PLANTED BUG (test-only): acknowledged before the destination stored it
            group.io = undefined;
          }
        } else {
          this.journalAppend(rt, sl, blocksOf(data, glba, sl, sb));
        }
      }
      if (!sync && segs.length > 0 && (group.io || owed)) this.paceInflow(rt, owed ?? group);
      this.updateDirty(rt);
    }
    this.groupCopyOver(group, true, 'never');
    if (owed) this.groupCopyOver(owed, true, 'never');
    return true;
  }

  /**
   * Inflow control (OPERATORS.md §1): a host write journaled while the journal is over the high-water mark has its
   * completion held (the group waits for one more "copy") until acknowledgements bring the journal back under the
   * mark, so the host slows to the rate the link and the destination drain. Without it the journal fills and the
   * pair suspends. In a cascade (P →sync I →async R) the write journaled at I is a synchronous copy: its
   * acknowledgement to P is held instead, so P's host is paced.
   */
  private paceInflow(rt: PairRuntime, group: SyncWriteGroup): void {
    const j = rt.journal;
    if (!j || this.w(rt, P.inflowControl) !== 1 || !j.almostFull || !isCopyingState(this.state(rt))) return;
    if (rt.overMarkSinceUs < 0) {
      rt.overMarkSinceUs = this.hw.nowUs();
      this.log('info', `${this.label(rt)}: journal ${j.journalLvol} ${j.usagePercent.toFixed(1)} % used, over the high-water mark: host writes paced (inflow control)`, rt.lastStep);
    }
    if (rt.inflowHeld.length >= INFLOW_HELD_MAX_WRITES) return;
    group.remaining++;
    rt.inflowHeld.push(group);
  }

  /**
   * Completes the writes inflow control held (host completions, or acknowledgements owed to P) once the journal is
   * back under the high-water mark, or the pair stopped journaling (`stopped`: it is being deleted). The pacing episode
   * (logged once, timed by the watch) lasts until usage falls below the low-water mark: a journal hovering at the
   * mark, as it does under pacing, stays "over the mark".
   */
  private releaseInflow(rt: PairRuntime, stopped = false): void {
    const j = rt.journal, journaling = !stopped && j !== undefined && isCopyingState(this.state(rt));
    if (rt.overMarkSinceUs >= 0 && (!journaling || j.usagePercent < JOURNAL_LOW_WATER_PERCENT)) rt.overMarkSinceUs = -1;
    if (rt.inflowHeld.length === 0 || (journaling && j.almostFull)) return;
    const held = rt.inflowHeld;
    rt.inflowHeld = [];
    for (const g of held) this.groupCopyOver(g, true, 'never');
  }

  /**
   * The parts of a write a source pair replicates now. In duplex, all of it. During formation copying, the
   * parts on tracks already copied and not in flight (a track once clean stays clean, so a later formation
   * copy can never overtake this update); the rest is left to the copier.
   */
  private replicatedSegments(rt: PairRuntime, lba: number, blocks: number): Segment[] {
    const s = this.state(rt);
    // Snapshot mode: a drain waiting for the snapshot in flight still takes writes into its last snapshot, whose
    // tracks are read when it is taken — a write left out of it could be older than one read into it.
    if (s === PairState.Duplex || (s === PairState.Suspending && this.isSnapshotMode(rt) && !rt.drainSnapshotTaken)) return [[lba, blocks, -1]];
    if (s !== PairState.InitialCopying && s !== PairState.DuplexPending) return [];
    const segs: Segment[] = [];
    const end = lba + blocks;
    for (let t = Math.floor(lba / BLOCKS_PER_TRACK); t * BLOCKS_PER_TRACK < end; t++) {
      if (rt.bitmap.test(t)) continue; // not copied yet: the copier will carry this write
      const sl = Math.max(lba, t * BLOCKS_PER_TRACK), se = Math.min(end, (t + 1) * BLOCKS_PER_TRACK);
      // A track being copied right now: hold the update until its copy is acknowledged, rather than marking
      // it again — a resynchronisation under steady writes then still converges.
      const deferTrack = rt.copyInflight.has(t) ? t : -1;
      const last = segs[segs.length - 1];
      if (last && deferTrack < 0 && last[2] < 0 && last[0] + last[1] === sl) last[1] += se - sl;
      else segs.push([sl, se - sl, deferTrack]);
    }
    return segs;
  }

  /** Sends the updates held for a track once its formation copy is acknowledged. */
  private releaseDeferred(rt: PairRuntime, track: number): void {
    const list = rt.deferred.get(track);
    if (!list) return;
    rt.deferred.delete(track);
    for (const d of list) {
      const blocks = d.data.length / BLOCK_SIZE_BYTES;
      if (d.group) this.sendSyncCopy(rt, d.lba, blocks, d.data, d.group);
      else this.journalAppend(rt, d.lba, d.data);
    }
  }

  /** Held updates of a track (or all) fall back to the bitmap: the pair stopped copying, or the track will be copied again. */
  private dropDeferred(rt: PairRuntime, failed: boolean, track?: number): void {
    for (const t of track === undefined ? [...rt.deferred.keys()] : [track]) {
      for (const d of rt.deferred.get(t) ?? []) {
        rt.bitmap.markBlocks(d.lba, d.data.length / BLOCK_SIZE_BYTES);
        if (d.group) this.groupCopyOver(d.group, !failed, this.fence(rt));
      }
      rt.deferred.delete(t);
    }
  }

  /** Marks the tracks of a write that are not covered by the replicated segments. */
  private markExcept(rt: PairRuntime, lba: number, blocks: number, segs: Segment[]): void {
    let at = lba;
    for (const [sl, sb] of segs) {
      if (sl > at) rt.bitmap.markBlocks(at, sl - at);
      at = sl + sb;
    }
    if (lba + blocks > at) rt.bitmap.markBlocks(at, lba + blocks - at);
  }

  // ───────────────────────────── synchronous copying ─────────────────────────────

  private sendSyncCopy(rt: PairRuntime, lba: number, blocks: number, data: Uint8Array, group: SyncWriteGroup): void {
    const tag = this.nextTag++ >>> 0 || this.nextTag++;
    const now = this.hw.nowUs();
    const copy: SyncCopy = { tag, pairId: rt.pairId, gen: this.w(rt, P.copyGeneration), lba, blocks, data, sentUs: now, lastSentUs: now, resends: 0, group };
    this.syncCopies.set(tag, copy);
    for (let t = Math.floor(lba / BLOCKS_PER_TRACK), last = Math.floor((lba + blocks - 1) / BLOCKS_PER_TRACK); t <= last; t++) {
      const k = rt.slot * 0x1000000 + t;
      const n = this.trackInflight.get(k) ?? 0;
      if (n === 0) rt.pending.set(t);
      this.trackInflight.set(k, n + 1);
    }
    this.transmitSyncCopy(rt, copy);
  }

  private transmitSyncCopy(rt: PairRuntime, c: SyncCopy): void {
    const frame = this.encoder().frame({ type: FrameType.SyncWrite, status: 0, pairId: rt.pairId, tag: c.tag, lba: c.lba, blocks: c.blocks, gen: c.gen }, c.data);
    if (!this.send(this.partner(rt), frame)) this.pairFailed(rt, 'link down');
  }

  /**
   * A synchronous copy unanswered for the pair's wait (RetransmitTimer) goes again under the same tag: a frame lost
   * on the wire (or its acknowledgement) need not cost the host a failed pair, as a real link's transport resends
   * too. The destination writes it at most once (its recent tags), never over a newer copy's blocks (its per-block
   * tags), and not at all if a resync came between (the copy generation). Each resend doubles the pair's wait until
   * a copy sent once is answered, and the caller sends at most one per pair per tick, the oldest first, so that
   * resends do not pile onto a link that is only slow (TCP, after a timeout, also sends one segment). The copy
   * timeout still counts from the first send. True when it went again.
   */
  private resendSyncCopyIfOverdue(c: SyncCopy, now: number): boolean {
    const rt = this.pairs.get(c.pairId);
    if (!rt || now - c.lastSentUs < rt.syncResendTimer.waitUs() || this.linkDown.has(this.partner(rt))) return false;
    if (!ACTIVE(this.state(rt))) return false;
    c.resends++;
    c.lastSentUs = now;
    rt.syncResendTimer.backOff();
    this.log('info', `${this.label(rt)}: synchronous copy tag ${c.tag} (blocks ${c.lba}+${c.blocks}) unanswered for ${Math.round((now - c.sentUs) / 1000)} ms: sent again (${c.resends}); next wait ${Math.round(rt.syncResendTimer.waitUs() / 1000)} ms`, rt.lastStep);
    this.transmitSyncCopy(rt, c);
    return true;
  }

  /** A synchronous copy is over: acknowledged (ok) or given up (the bitmap then remembers the tracks). */
  private finishSyncCopy(c: SyncCopy, ok: boolean): void {
    if (!this.syncCopies.delete(c.tag)) return;
    const rt = this.pairs.get(c.pairId);
    if (rt) {
      for (let t = Math.floor(c.lba / BLOCKS_PER_TRACK), last = Math.floor((c.lba + c.blocks - 1) / BLOCKS_PER_TRACK); t <= last; t++) {
        const k = rt.slot * 0x1000000 + t;
        const n = (this.trackInflight.get(k) ?? 1) - 1;
        if (n <= 0) { this.trackInflight.delete(k); this.clearPendingTrack(rt, t); } else this.trackInflight.set(k, n);
        if (!ok) rt.bitmap.set(t);
      }
      if (!ok) this.updateDirty(rt);
    }
    this.groupCopyOver(c.group, ok, rt ? this.fence(rt) : 'never');
  }

  /** One copy a host write waited for is over; the last one completes the host write. */
  private groupCopyOver(group: SyncWriteGroup, ok: boolean, fence: string): void {
    if (!ok && fence === 'data') group.fenced = true;
    if (--group.remaining > 0) return;
    if (group.cacheSlot >= 0) this.hw.cache.release(group.cacheSlot);
    if (group.io) this.hw.completeHostIo(group.io, group.fenced ? 'fenced' : 'ok');
    if (group.ack) this.sendSyncAck(group.ack, 0);
  }

  /** Acknowledges a synchronous copy received: status 0 = stored, 1 = not accepted in this state, 2 = not written. */
  private sendSyncAck(a: SyncAckOwed, status: number): void {
    this.send(a.to, this.encoder().frame({ type: FrameType.SyncAck, status, pairId: a.pairId, tag: a.tag, lba: 0, blocks: 0, gen: a.gen }));
  }

  /**
   * The pair a data-carrying or acknowledging frame names, if the frame comes from that pair's partner and
   * (for data) addresses blocks inside the volume; otherwise the frame is dropped with a log line.
   */
  private framePair(from: number, f: DecodedFrame, role: 'source' | 'destination', what: string): PairRuntime | null {
    const rt = this.pairs.get(f.pairId);
    let why: string | null = null;
    if (!rt) why = `unknown pair ${f.pairId}`;
    else if (this.partner(rt) !== from) why = `storage ${from} is not the partner of pair ${f.pairId}`;
    else if (this.isSource(rt) !== (role === 'source')) why = `pair ${f.pairId} is not ${role === 'source' ? 'a source' : 'a destination'} here`;
    else if (f.blocks > 0 && !this.toMember(rt, f.lba, f.blocks)) {
      why = `blocks ${f.lba}..${f.lba + f.blocks - 1} are outside the volumes of pair ${f.pairId} (or span two of them)`;
    }
    if (why) { this.log('info', `${what} from storage ${from} dropped: ${why}`); return null; }
    return rt!;
  }

  private onSyncWrite(from: number, f: DecodedFrame): void {
    const rt = this.framePair(from, f, 'destination', 'synchronous copy');
    if (!rt) return;
    const gen = f.gen ?? 0;
    if (gen !== this.w(rt, P.copyGeneration)) {
      // Sent (or sent again) before the resync that began since: its data may be older than what the resync copied.
      this.log('info', `synchronous copy tag ${f.tag} of pair ${f.pairId} from storage ${from} dropped: copy generation ${gen}, the pair is at ${this.w(rt, P.copyGeneration)} (sent before a resync)`, rt.lastStep);
      return;
    }
    const ack: SyncAckOwed = { to: from, pairId: f.pairId, tag: f.tag, gen };
    let status = 1;
    if (!this.isAsync(rt)) {
      const s = this.state(rt);
      if (s === PairState.Duplex || s === PairState.DuplexPending || s === PairState.InitialCopying || s === PairState.Simplex) {
        if (rt.syncTagsApplied.has(f.tag)) {
          // A duplicate (sent again, or doubled on the wire): acknowledged again, not written again; unless the first
          // one's acknowledgement is held by inflow control, which answers for both.
          if (this.syncAckHeld(f.pairId, f.tag)) return;
          status = 0;
        } else if (this.writeSyncCopy(rt, f, ack)) {
          rt.syncTagsApplied.add(f.tag);
          return; // acknowledged by the write's group: now, or once inflow control on a cascaded pair lets it go
        } else status = 2;
      }
    }
    this.sendSyncAck(ack, status);
  }

  /** Inflow control on some pair holds the acknowledgement owed for this synchronous copy (rare: only a duplicate asks). */
  private syncAckHeld(pairId: number, tag: number): boolean {
    for (const p of this.pairs.values()) if (p.inflowHeld.some((g) => g.ack?.pairId === pairId && g.ack.tag === tag)) return true;
    return false;
  }

  /**
   * Writes a synchronous copy's blocks, except those a newer copy (a later tag) already wrote. Two copies to
   * overlapping blocks, both in flight at once (the host did not wait for the first write before the second), can
   * take different paths of the link and arrive in the other order; written as they came, the destination would keep
   * the older data while the source holds the newer, in duplex. The acknowledgement goes with the last run written
   * (or at once when none is left). False when a write failed.
   */
  private writeSyncCopy(rt: PairRuntime, f: DecodedFrame, ack: SyncAckOwed): boolean {
    const tags = (rt.syncBlockTags ??= new Uint32Array(rt.group.blocks));
    const tag = f.tag >>> 0, end = f.lba + f.body.length / BLOCK_SIZE_BYTES;
    assertInvariant(end <= tags.length, () => `${this.label(rt)}: synchronous copy of blocks ${f.lba}..${end - 1} beyond the group's ${tags.length}`);
    // Runs of blocks no newer copy wrote: one run, the whole copy, unless it was overtaken (the usual case is
    // written without building the list of runs: this is once per synchronous copy received).
    let overtaken = false;
    for (let b = f.lba; b < end && !overtaken; b++) overtaken = newerTag(tags[b]!, tag);
    if (!overtaken) {
      tags.fill(tag, f.lba, end);
      return this.writeMember(rt, f.lba, f.body, ack);
    }
    const runs: Array<[number, number]> = [];
    for (let b = f.lba; b < end;) {
      if (newerTag(tags[b]!, tag)) { b++; continue; }
      const start = b;
      while (b < end && !newerTag(tags[b]!, tag)) b++;
      runs.push([start, b]);
    }
    if (runs.length === 0) { this.sendSyncAck(ack, 0); return true; }
    for (const [i, [start, stop]] of runs.entries()) {
      tags.fill(tag, start, stop);
      const body = f.body.subarray((start - f.lba) * BLOCK_SIZE_BYTES, (stop - f.lba) * BLOCK_SIZE_BYTES);
      if (!this.writeMember(rt, start, body, i === runs.length - 1 ? ack : undefined)) return false;
    }
    return true;
  }

  private onSyncAck(from: number, f: DecodedFrame): void {
    const c = this.syncCopies.get(f.tag);
    if (!c) return; // already given up on, or answered before (the answer to a copy sent again)
    const owner = this.pairs.get(c.pairId);
    if (c.pairId !== f.pairId || !owner || this.partner(owner) !== from || (f.gen ?? 0) !== c.gen) {
      this.log('info', `synchronous copy acknowledgement from storage ${from} dropped: tag ${f.tag} of generation ${f.gen ?? 0} was not sent to it for pair ${f.pairId}`);
      return;
    }
    // Karn's rule: the answer to a copy sent more than once may answer any of its sends, so it measures nothing.
    if (c.resends === 0) owner.syncResendTimer.sample(this.hw.nowUs() - c.sentUs);
    this.finishSyncCopy(c, f.status === 0);
    const rt = this.pairs.get(c.pairId);
    if (f.status !== 0 && rt) this.pairFailed(rt, 'copy failed');
  }

  // ───────────────────────────── formation copying ─────────────────────────────

  private startFormationCopy(rt: PairRuntime, kind: FormationKind): void {
    if (kind === 'initial' || kind === 'full') rt.bitmap.setAll();
    this.set(rt, P.formationKind, FORMATION_KINDS.indexOf(kind));
    this.set(rt, P.copyTracksTotal, rt.bitmap.count());
    this.set(rt, P.copyTracksDone, 0);
    rt.copyCursor = 0;
    rt.copyInflight.clear();
    rt.copyPacing.rewind();
    rt.lastCopyAckUs = this.hw.nowUs();
    this.updateDirty(rt);
    this.pumpFormationCopy(rt);
  }

  private pumpFormationCopy(rt: PairRuntime): void {
    const s = this.state(rt);
    if (!this.isSource(rt) || (s !== PairState.InitialCopying && s !== PairState.DuplexPending)) return;
    const windowTracks = Math.min(FORMATION_COPY_WINDOW_TRACKS, Math.max(1, Math.floor(rt.copyPacing.windowBytes() / TRACK_SIZE_BYTES)));
    while (rt.copyInflight.size < windowTracks) {
      const t = this.nextCopyTrack(rt);
      if (t < 0) break;
      rt.bitmap.clear(t);
      // A track lies in one member (members start on track boundaries); the frame carries its group address.
      const m = memberOfTrack(rt.group, t);
      assertInvariant(m !== null, () => `${this.label(rt)}: track ${t} is in no member of the group`);
      const lba = t * BLOCKS_PER_TRACK, blocks = Math.min(BLOCKS_PER_TRACK, m.offsetBlocks + m.blocks - lba);
      let data: Uint8Array;
      try {
        data = this.hw.disk.read(m.localLvol, lba - m.offsetBlocks, blocks);
      } catch {
        rt.bitmap.set(t);
        return this.pairFailed(rt, 'drive failure');
      }
      const serial = this.nextCopySerial++;
      rt.copyInflight.set(t, { serial, sentUs: this.hw.nowUs() });
      rt.copyPacing.onSent(serial, blocks * BLOCK_SIZE_BYTES, this.hw.nowUs());
      rt.pending.set(t); // in control memory: a power loss before the acknowledgement must not forget this track
      rt.copyCursor = t + 1;
      if (!this.send(this.partner(rt), this.encoder().frame({ type: FrameType.FormationCopy, status: 0, pairId: rt.pairId, tag: serial, lba, blocks }, data))) {
        return this.pairFailed(rt, 'link down');
      }
    }
    this.updateDirty(rt);
    if (rt.copyInflight.size === 0 && rt.bitmap.count() === 0) this.formationCopyDone(rt);
  }

  /** A track in flight is given up (lost, or its answer was): it is copied again, and the writes deferred behind it with it. */
  private copyTrackAgain(rt: PairRuntime, track: number): void {
    rt.bitmap.set(track);
    this.dropDeferred(rt, false, track);
    rt.copyInflight.delete(track);
    this.clearPendingTrack(rt, track);
  }

  /**
   * Tick: when the destination has answered nothing, not even a stale answer, since a track went, for as long as the
   * answer to every track in flight may take (answerDueUs, at least LOSS_TIMER_MIN_US), that track was lost, or its
   * answer was: it goes again with a new serial, so that an old answer is stale. Before, a lost track waited until no
   * answer at all had come for the 1 s resend timeout, which stays as the last resort: at 5 % loss lost tracks filled
   * the window, and each time it was full the copy stood still for 1 s (3 × the data's time on the wire at 16 MB/s).
   * Timed from the last answer, not the track's send alone: on a link slower than the estimate, tracks merely queued
   * would otherwise go again and again, each copy making the answer to the one before stale (a copy that never ended).
   */
  private copyOverdueTracksAgain(rt: PairRuntime, now: number): void {
    const dueUs = Math.max(LOSS_TIMER_MIN_US, this.answerDueUs(rt.copyPacing, rt.copyInflight.size * TRACK_SIZE_BYTES));
    let again = false;
    for (const [track, c] of [...rt.copyInflight]) {
      if (now - Math.max(c.sentUs, rt.lastCopyAckUs) < dueUs) continue;
      this.copyTrackAgain(rt, track);
      again = true;
    }
    // What went before is void for the estimate (its answers may be stale): the window's accounting starts again.
    if (again) rt.copyPacing.rewind(this.nextCopySerial - 1);
  }

  private nextCopyTrack(rt: PairRuntime): number {
    for (const from of [rt.copyCursor, 0]) {
      let t = rt.bitmap.nextSet(from);
      while (t >= 0 && rt.copyInflight.has(t)) t = t + 1 < rt.bitmap.tracks ? rt.bitmap.nextSet(t + 1) : -1;
      if (t >= 0) return t;
    }
    return -1;
  }

  private formationCopyDone(rt: PairRuntime): void {
    if (this.isSnapshotMode(rt)) {
      // Writes to tracks already copied were only marked: the destination is consistent once a snapshot of them
      // is applied. One at a time: a snapshot still in flight calls the copier again when it is applied.
      if (this.snapshotInFlight(rt) || !this.takeSnapshot(rt)) return;
    }
    const kind = FORMATION_KINDS[this.w(rt, P.formationKind)]!;
    const copied = this.w(rt, P.copyTracksDone);
    this.set(rt, P.lastFormationKind, this.w(rt, P.formationKind));
    this.set(rt, P.lastFormationTracksCopied, copied);
    this.set(rt, P.formationKind, 0);
    this.hw.emit({ type: 'formation-copy-done', pairId: rt.pairId, kind, tracksCopied: copied, step: rt.lastStep });
    this.setState(rt, PairState.Duplex);
    // The destination is consistent once it has applied every entry journaled while the copy ran.
    this.sendState(rt, rt.journal ? this.w(rt, P.announcedBaseSeq) : -1, rt.journal ? rt.journal.newestSeq : 0);
  }

  private onFormationCopy(from: number, f: DecodedFrame): void {
    const rt = this.framePair(from, f, 'destination', 'formation copy');
    if (!rt) return;
    let status = 1;
    {
      const s = this.state(rt);
      if (s === PairState.Simplex || s === PairState.InitialCopying || s === PairState.DuplexPending) {
        const t = Math.floor(f.lba / BLOCKS_PER_TRACK);
        rt.copySerialApplied ??= new Uint32Array(rt.bitmap.tracks);
        status = 0;
        if (t < rt.copySerialApplied.length && f.tag > rt.copySerialApplied[t]!) {
          // Through writeLvol, so a pair that copies onward from this volume (a cascade) sees the update.
          if (this.writeMember(rt, f.lba, f.body)) rt.copySerialApplied[t] = f.tag;
          else status = 2;
        }
      }
    }
    this.send(from, this.encoder().frame({ type: FrameType.FormationAck, status, pairId: f.pairId, tag: f.tag, lba: f.lba, blocks: 0 }));
  }

  private onFormationAck(from: number, f: DecodedFrame): void {
    const rt = this.framePair(from, f, 'source', 'formation copy acknowledgement');
    if (!rt) return;
    const t = Math.floor(f.lba / BLOCKS_PER_TRACK);
    const inflight = rt.copyInflight.get(t);
    // Stale (the track went again since): it completes nothing, but the destination is answering.
    if (!inflight || inflight.serial !== f.tag) { rt.lastCopyAckUs = this.hw.nowUs(); return; }
    rt.copyInflight.delete(t);
    // Serials grow with each copy sent; an acknowledgement overtaking an earlier one (another path) counts that one too.
    rt.copyPacing.onAcknowledged(f.tag, this.hw.nowUs());
    this.clearPendingTrack(rt, t);
    rt.lastCopyAckUs = this.hw.nowUs();
    if (f.status !== 0) {
      rt.bitmap.set(t);
      return this.pairFailed(rt, 'copy failed');
    }
    this.set(rt, P.copyTracksDone, this.w(rt, P.copyTracksDone) + 1);
    this.releaseDeferred(rt, t);
    this.pumpFormationCopy(rt);
  }

  // ───────────────────────────── journal: append, ship, restore ─────────────────────────────

  private journalAppend(rt: PairRuntime, lba: number, data: Uint8Array): void {
    if (this.isSnapshotMode(rt)) {
      // SPEC §5: the write only marks its tracks; the next difference snapshot carries it. Never waits, never fills.
      rt.snapshot.markBlocks(lba, data.length / BLOCK_SIZE_BYTES);
      return this.armSnapshotTimer(rt);
    }
    const j = rt.journal!;
    const appended = this.journalIo(rt, () => j.append(j.newestSeq + 1, this.hw.nowUs(), this.w(rt, P.localLvol), lba, data));
    if (appended === undefined) return; // journal drives failed: the pair failed with every track marked
    if (!appended) {
      // Journal full: the pair suspends and the bitmap takes over; no acknowledged write is dropped.
      rt.bitmap.markBlocks(lba, data.length / BLOCK_SIZE_BYTES);
      this.log('warn', `${this.label(rt)}: journal ${j.journalLvol} full (${j.entries} entries, ${j.usedBytes} bytes)`, rt.lastStep);
      this.pairFailed(rt, 'journal full');
      return;
    }
    this.scheduleShip(rt);
  }

  /**
   * Shipping (re)starts after `seq`: go-back-N, a journal reset, a resync, a reverse. What the pacing holds as in
   * flight is void (and may lie beyond `seq`); what it learnt of the link stays.
   */
  private shipFrom(rt: PairRuntime, seq: number): void {
    rt.pacing.rewind(rt.shippedSeq);
    rt.shippedSeq = seq;
    this.forgetGap(rt);
  }

  private scheduleShip(rt: PairRuntime): void {
    if (rt.shipScheduled) return;
    rt.shipScheduled = true;
    this.hw.setTimer(this.hw.timing.journalShipDelayUs, 'journal-ship', rt.pairId);
  }

  /** A journal pair's source in a state that ships entries. */
  private shipping(rt: PairRuntime): boolean {
    const s = this.state(rt);
    return rt.journal !== undefined && this.isSource(rt)
      && (s === PairState.Duplex || s === PairState.Suspending || s === PairState.DuplexPending || s === PairState.InitialCopying);
  }

  private ship(rt: PairRuntime): void {
    if (!this.shipping(rt)) return;
    const j = rt.journal!;
    const acked = this.w(rt, P.appliedSeq);
    const limit = this.state(rt) === PairState.Suspending ? Math.min(j.newestSeq, this.w(rt, P.drainTargetSeq)) : j.newestSeq;
    if (rt.shippedSeq < acked) rt.shippedSeq = acked;
    // Snapshot mode: the destination applies a snapshot only whole, so the window slides on what it has stored.
    const windowBase = Math.max(acked, Math.min(rt.receivedSeq, j.newestSeq));
    // The window: entries, and bytes of write data (as many as the link carries, ShipPacing), sent and not yet acknowledged.
    let inFlightBytes = this.journalIo(rt, () => j.spanBytes(windowBase + 1, rt.shippedSeq));
    if (inFlightBytes === undefined) return;
    const windowBytes = rt.pacing.windowBytes(), batchBytes = rt.pacing.batchBytes();
    while (rt.shippedSeq < limit && rt.shippedSeq - windowBase < JOURNAL_SHIP_WINDOW_ENTRIES && inFlightBytes < windowBytes) {
      const sent = this.sendBatch(rt, rt.shippedSeq + 1, Math.min(limit, windowBase + JOURNAL_SHIP_WINDOW_ENTRIES), batchBytes, windowBytes - inFlightBytes);
      if (!sent) return;
      rt.shippedSeq = sent.lastSeq;
      rt.pacing.onSent(sent.lastSeq, sent.bytes, this.hw.nowUs());
      inFlightBytes += sent.bytes;
    }
  }

  /**
   * Sends one journal batch: entries from `fromSeq` through at most `lastSeq`, up to `batchBytes` of write data and
   * no more than `roomBytes` (but at least one entry). Returns its last sequence number and bytes; undefined when it
   * did not go (the journal could not be read, or the link is down and the pair failed).
   */
  private sendBatch(rt: PairRuntime, fromSeq: number, lastSeq: number, batchBytes: number, roomBytes: number): { lastSeq: number; bytes: number } | undefined {
    const j = rt.journal!;
    const endSeq = this.isSnapshotMode(rt) ? this.w(rt, P.snapshotEndSeq) : undefined;
    const entries: JournalEntryWire[] = [];
    let bytes = 0;
    for (let seq = fromSeq; seq <= lastSeq && entries.length < JOURNAL_BATCH_MAX_ENTRIES && bytes < batchBytes && (entries.length === 0 || bytes < roomBytes); seq++) {
      const e = this.journalIo(rt, () => j.entryAt(seq));
      if (!e) return undefined;
      entries.push({ seq, tsUs: e.tsUs, lba: e.lba, data: e.data });
      bytes += e.data.length;
    }
    assertInvariant(entries.length > 0, () => `${this.label(rt)}: a journal batch from ${fromSeq} through ${lastSeq} holds no entry`);
    if (!this.send(this.partner(rt), this.encoder().journalBatch(rt.pairId, endSeq === undefined ? { entries } : { entries, endSeq }))) {
      this.pairFailed(rt, 'link down');
      return undefined;
    }
    return { lastSeq: entries[entries.length - 1]!.seq, bytes };
  }

  /**
   * Fast resend (TCP's fast retransmit): an acknowledgement that does not move while entries are in flight beyond
   * it means the destination received a batch past a gap, so one was lost. On the FAST_RESEND_DUPLICATE_ACKS-th such
   * acknowledgement the first batch after what the destination holds goes again at once, instead of the whole window
   * after the resend timeout. The copy can be lost too (at 1 % loss, one in a hundred): each batch that was in flight
   * when it went still answers without progress, at most one answer each; answers beyond those (and the same margin
   * again) come from batches sent after it, which a link delivers in order, so it was lost and goes once more
   * (as TCP's RACK decides by send order). With no batch sent after it (the window is full), the tick sends it again
   * when its answer is overdue (resendGapIfOverdue).
   */
  private onAckWithoutProgress(rt: PairRuntime, through: number): void {
    if (rt.shippedSeq <= through || !this.shipping(rt)) return; // nothing in flight past it: an answer to a duplicate frame
    if (++rt.duplicateAcks < rt.resendAtDuplicateAcks) return;
    rt.resendAtDuplicateAcks = rt.duplicateAcks + Math.max(0, rt.pacing.batchesInFlight - 1) + FAST_RESEND_DUPLICATE_ACKS;
    this.resendGap(rt, through, undefined);
  }

  /**
   * Sends the first batch after `through` (what the destination holds) again. Its answer is due a round trip after
   * the link has carried what was in flight before it and itself; it may take twice that (as TCP's probe timeout), and
   * each further copy of the same gap waits twice as long as the one before (`backoffFromUs`), so that copies never
   * take more than half the link.
   */
  private resendGap(rt: PairRuntime, through: number, backoffFromUs: number | undefined, minWaitUs = 0): void {
    const j = rt.journal!;
    const inFlightBytes = this.journalIo(rt, () => j.spanBytes(through + 1, rt.shippedSeq));
    if (inFlightBytes === undefined) return;
    const sent = this.sendBatch(rt, through + 1, rt.shippedSeq, rt.pacing.batchBytes(), Infinity);
    if (!sent) return;
    const dueUs = Math.max(minWaitUs, this.answerDueUs(rt.pacing, inFlightBytes + sent.bytes));
    rt.gapResentUs = this.hw.nowUs();
    if (rt.recoverSeq === 0) rt.recoverSeq = rt.shippedSeq;
    rt.gapResendWaitUs = Math.min(this.hw.timing.journalResendTimeoutUs, backoffFromUs === undefined ? dueUs : Math.max(dueUs, 2 * backoffFromUs));
  }

  /**
   * How long after a batch went its answer may take: twice (as TCP's probe timeout) the smallest round trip plus the
   * link's time, at the measured rate, for `bytesAhead` (what was in flight before it and itself). The resend timeout
   * while the link is not measured yet.
   */
  private answerDueUs(pacing: ShipPacing, bytesAhead: number): number {
    const rate = pacing.rateBytesPerUs, rttUs = pacing.roundTripUs;
    return rate > 0 && rttUs < Infinity ? 2 * (rttUs + bytesAhead / rate) : this.hw.timing.journalResendTimeoutUs;
  }

  /** Tick: a copy of the gap's first batch whose answer is overdue was lost (or is far late): it goes again. */
  private resendGapIfOverdue(rt: PairRuntime, now: number): void {
    if (rt.gapResentUs < 0 || now - rt.gapResentUs < rt.gapResendWaitUs || !this.shipping(rt)) return;
    const through = Math.max(this.w(rt, P.appliedSeq), rt.receivedSeq);
    if (rt.shippedSeq > through) this.resendGap(rt, through, rt.gapResendWaitUs);
    else rt.gapResentUs = -1;
  }

  /**
   * Tick: the newest batches, or their answers, may have been lost with nothing sent after them whose answers would
   * show it (a writer that paused): no fast resend can act, and go-back-N would wait for the 1 s resend timeout. When
   * the destination has answered nothing new since the newest batch went, for as long as the answer to all that is in
   * flight may take (answerDueUs, at least LOSS_TIMER_MIN_US), the first batch it does not hold goes again (TCP's tail
   * loss probe, RFC 8985). Its answer, new or a duplicate, shows what the destination holds; a copy lost too goes again
   * from resendGapIfOverdue, each wait twice the one before.
   */
  private probeTail(rt: PairRuntime, now: number): void {
    if (rt.gapResentUs >= 0 || !this.isSource(rt) || !this.shipping(rt)) return;
    const through = Math.max(this.w(rt, P.appliedSeq), rt.receivedSeq);
    if (rt.shippedSeq <= through) return;
    const silentUs = now - Math.max(rt.lastAckProgressUs, rt.pacing.newestSentUs);
    if (silentUs < LOSS_TIMER_MIN_US) return;
    const inFlightBytes = this.journalIo(rt, () => rt.journal!.spanBytes(through + 1, rt.shippedSeq));
    if (inFlightBytes === undefined || silentUs < this.answerDueUs(rt.pacing, inFlightBytes)) return;
    this.log('info', `${this.label(rt)}: no answer for ${Math.round(silentUs / 1000)} ms to entries ${through + 1}..${rt.shippedSeq}: the first batch goes again (tail probe)`, 'S110');
    this.resendGap(rt, through, undefined, LOSS_TIMER_MIN_US);
  }

  /**
   * The destination holds more than before. When that is the answer to a copy of a gap's first batch and still short
   * of what had been shipped when the first copy went (a partial acknowledgement, as TCP's NewReno), the batch after
   * it was lost as well: every batch sent before that copy has had its time to arrive, so it goes at once.
   */
  private ackMoved(rt: PairRuntime, through: number): void {
    const recoverSeq = rt.recoverSeq;
    this.forgetGap(rt);
    if (through >= recoverSeq || !this.shipping(rt)) return;
    rt.recoverSeq = recoverSeq;
    this.resendGap(rt, through, undefined);
  }

  /** No gap is known (shipping restarts, or the destination holds all that had been shipped when the gap was resent). */
  private forgetGap(rt: PairRuntime): void {
    rt.duplicateAcks = 0;
    rt.resendAtDuplicateAcks = FAST_RESEND_DUPLICATE_ACKS;
    rt.gapResentUs = -1;
    rt.recoverSeq = 0;
  }

  private onJournalAck(from: number, f: DecodedFrame): void {
    const rt = this.framePair(from, f, 'source', 'journal acknowledgement');
    if (!rt || !rt.journal) return;
    const applied = f.tag;
    const before = Math.max(this.w(rt, P.appliedSeq), rt.receivedSeq);
    // lba: what the destination holds in its journal or difference volume (journal mode: what it applied).
    if (f.lba > rt.receivedSeq && f.lba <= rt.journal.newestSeq) {
      rt.receivedSeq = f.lba;
      rt.lastAckProgressUs = this.hw.nowUs();
    }
    const valid = applied <= rt.journal.newestSeq;
    const through = Math.max(before, valid ? applied : 0, rt.receivedSeq);
    rt.pacing.onAcknowledged(through, this.hw.nowUs());
    if (through > before) this.ackMoved(rt, through);
    else this.onAckWithoutProgress(rt, through);
    if (applied > this.w(rt, P.appliedSeq) && valid) {
      if (this.journalIo(rt, () => rt.journal!.freeThrough(applied)) === undefined) return;
      this.set(rt, P.appliedSeq, applied);
      rt.lastAckProgressUs = this.hw.nowUs();
      this.releaseInflow(rt);
      if (this.isSnapshotMode(rt) && !this.snapshotInFlight(rt)) return this.snapshotApplied(rt);
    }
    if (this.state(rt) === PairState.Suspending && this.w(rt, P.appliedSeq) >= this.w(rt, P.drainTargetSeq)) this.finishDrain(rt);
    else this.ship(rt);
  }

  private onJournalBatch(from: number, f: DecodedFrame): void {
    const rt = this.framePair(from, f, 'destination', 'journal batch');
    if (!rt || !rt.journal) return;
    const s = this.state(rt);
    if (!isCopyingState(s) || rt.awaitingBase) return;
    const batch = decodeJournalBatch(f);
    const outside = batch.entries.find((e) => !this.toMember(rt, e.lba, e.data.length / BLOCK_SIZE_BYTES));
    if (outside) {
      this.log('info', `journal batch from storage ${from} dropped: entry ${outside.seq} addresses blocks outside the volumes of pair ${rt.pairId}`);
      return;
    }
    if (this.isSnapshotMode(rt)) {
      if (batch.endSeq !== undefined && batch.endSeq > rt.receivingEndSeq) rt.receivingEndSeq = batch.endSeq;
      for (const e of batch.entries) {
        if (e.seq <= rt.journal.newestSeq || rt.restorePending.has(e.seq)) continue; // duplicate
        if (e.seq === rt.journal.newestSeq + 1) {
          if (!this.storeSnapshotEntry(rt, e)) return;
        } else if (rt.restorePending.size < RESTORE_PENDING_MAX_ENTRIES) {
          rt.restorePending.set(e.seq, { seq: e.seq, tsUs: e.tsUs, lba: e.lba, data: e.data.slice() });
        }
      }
      this.receiveSnapshot(rt);
      if (!isCopyingState(this.state(rt))) return;
      this.send(from, this.encoder().frame({ type: FrameType.JournalAck, status: 0, pairId: rt.pairId, tag: this.w(rt, P.appliedSeq), lba: rt.journal.newestSeq, blocks: 0 }));
      return;
    }
    for (const e of batch.entries) {
      const applied = this.w(rt, P.appliedSeq);
      if (e.seq <= applied || rt.restorePending.has(e.seq)) continue; // duplicate
      if (e.seq === applied + 1) {
        if (!this.restore(rt, e)) return;
      } else if (rt.restorePending.size < RESTORE_PENDING_MAX_ENTRIES) {
        rt.restorePending.set(e.seq, { seq: e.seq, tsUs: e.tsUs, lba: e.lba, data: e.data.slice() });
        // PLANTED BUG (test-only): an entry that arrived early is written at once, ahead of its predecessors.
        if (this.hw.options?.plantedBug === 'restore-out-of-order') {
          const at = this.toMember(rt, e.lba, e.data.length / BLOCK_SIZE_BYTES)!;
          this.hw.disk.write(at.lvol, at.lba, e.data);
        }
      }
    }
    this.restorePendingInOrder(rt);
    this.send(from, this.encoder().frame({ type: FrameType.JournalAck, status: 0, pairId: rt.pairId, tag: this.w(rt, P.appliedSeq), lba: this.w(rt, P.appliedSeq), blocks: 0 }));
  }

  /** Applies buffered entries strictly in sequence order, as far as they are contiguous. */
  private restorePendingInOrder(rt: PairRuntime): void {
    if (!isCopyingState(this.state(rt))) return;
    if (this.isSnapshotMode(rt)) return this.receiveSnapshot(rt);
    for (;;) {
      const next = this.w(rt, P.appliedSeq) + 1;
      const e = rt.restorePending.get(next);
      if (!e) break;
      rt.restorePending.delete(next);
      if (!this.restore(rt, e)) return;
    }
  }

  private restore(rt: PairRuntime, e: JournalEntryWire): boolean {
    const applied = this.w(rt, P.appliedSeq);
    assertInvariant(e.seq === applied + 1, () => `${this.label(rt)}: journal entry ${e.seq} applied after ${applied}`);
    if (!this.writeMember(rt, e.lba, e.data)) {
      this.pairFailed(rt, 'drive failure');
      return false;
    }
    // The destination keeps the applied entries as its own log information (232R), oldest overwritten first.
    const j = rt.journal!;
    if (e.seq > j.newestSeq) {
      const logged = this.journalIo(rt, () => {
        while (!j.append(e.seq, e.tsUs, this.w(rt, P.localLvol), e.lba, e.data) && j.entries > 0) j.freeOldest();
        return true;
      });
      if (!logged) return false;
    }
    this.set(rt, P.appliedSeq, e.seq);
    return true;
  }

  // ───────────────────────────── difference snapshots (SPEC §5) ─────────────────────────────

  /** Source: a snapshot was taken and the destination has not applied it yet (the difference volume is frozen). */
  private snapshotInFlight(rt: PairRuntime): boolean {
    return this.w(rt, P.appliedSeq) < this.w(rt, P.snapshotEndSeq);
  }

  private armSnapshotTimer(rt: PairRuntime): void {
    if (rt.snapshotTimerArmed) return;
    rt.snapshotTimerArmed = true;
    const delayUs = Math.max(0, rt.lastSnapshotUs + this.w(rt, P.snapshotIntervalUs) - this.hw.nowUs());
    this.hw.setTimer(delayUs, 'snapshot', rt.pairId);
  }

  /** The interval is up: take the next snapshot, unless one is still in flight (its application calls again). */
  private snapshotDue(rt: PairRuntime): void {
    if (!this.isSource(rt) || this.state(rt) !== PairState.Duplex || this.snapshotInFlight(rt)) return;
    if (rt.snapshot.count() > 0) this.takeSnapshot(rt);
  }

  /**
   * Takes a difference snapshot: every track written since the last one is read from the data volume, as it is
   * now, into the difference volume (the pair's journal volume) and shipped. A snapshot that does not fit whole
   * fails the pair (journal full) — half a snapshot is never sent. False when the pair failed.
   */
  private takeSnapshot(rt: PairRuntime): boolean {
    const j = rt.journal!, lvol = this.w(rt, P.localLvol), nowUs = this.hw.nowUs();
    const firstSeq = j.newestSeq + 1;
    for (let t = rt.snapshot.nextSet(0); t >= 0; t = t + 1 < rt.snapshot.tracks ? rt.snapshot.nextSet(t + 1) : -1) {
      // A track lies in one member of the group; the entry carries its group address, as journal entries do.
      const m = memberOfTrack(rt.group, t);
      assertInvariant(m !== null, () => `${this.label(rt)}: snapshot track ${t} is in no member of the group`);
      const lba = t * BLOCKS_PER_TRACK, blocks = Math.min(BLOCKS_PER_TRACK, m.offsetBlocks + m.blocks - lba);
      let data: Uint8Array;
      try {
        data = this.hw.disk.read(m.localLvol, lba - m.offsetBlocks, blocks);
      } catch (e) {
        if ((e as Error).name !== 'DiskError') throw e;
        this.pairFailed(rt, 'drive failure');
        return false;
      }
      const appended = this.journalIo(rt, () => j.append(j.newestSeq + 1, nowUs, lvol, lba, data));
      if (appended === undefined) return false;
      if (!appended) {
        this.log('warn', `${this.label(rt)}: difference snapshot of ${rt.snapshot.count() + j.newestSeq - firstSeq + 1} track(s) does not fit in difference volume ${j.journalLvol}`, rt.lastStep);
        this.pairFailed(rt, 'journal full'); // the entries already taken and the remaining marks go to the bitmap
        return false;
      }
      rt.snapshot.clear(t);
    }
    this.set(rt, P.snapshotEndSeq, j.newestSeq);
    rt.lastSnapshotUs = nowUs;
    if (j.newestSeq >= firstSeq) { rt.snapshots++; this.scheduleShip(rt); }
    return true;
  }

  /** Source: the destination applied the snapshot in flight; the next may be taken. */
  private snapshotApplied(rt: PairRuntime): void {
    rt.appliedSnapshotTakenUs = rt.lastSnapshotUs;
    const s = this.state(rt);
    if (s === PairState.Suspending && this.w(rt, P.appliedSeq) >= this.w(rt, P.drainTargetSeq)) {
      // Drain: what was written since the snapshot that was in flight at the drain command goes last.
      if (rt.drainSnapshotTaken) return this.finishDrain(rt);
      if (!this.takeSnapshot(rt)) return;
      rt.drainSnapshotTaken = true;
      this.set(rt, P.drainTargetSeq, rt.journal!.newestSeq);
      if (!this.snapshotInFlight(rt)) return this.finishDrain(rt);
      return this.ship(rt);
    }
    if (s === PairState.InitialCopying || s === PairState.DuplexPending) return this.pumpFormationCopy(rt);
    if (rt.snapshot.count() > 0) this.armSnapshotTimer(rt);
    this.ship(rt);
  }

  /** Destination: stores one received entry in its difference volume, after the ones before it. False when the pair failed. */
  private storeSnapshotEntry(rt: PairRuntime, e: JournalEntryWire): boolean {
    const j = rt.journal!, applied = this.w(rt, P.appliedSeq), lvol = this.w(rt, P.localLvol);
    return this.journalIo(rt, () => {
      while (!j.append(e.seq, e.tsUs, lvol, e.lba, e.data)) {
        // Only entries already applied may make room; a snapshot larger than the difference volume fails the pair.
        if (j.entries === 0 || j.oldestSeq > applied) {
          this.log('warn', `${this.label(rt)}: received snapshot does not fit in difference volume ${j.journalLvol}`, rt.lastStep);
          this.pairFailed(rt, 'journal full');
          return false;
        }
        j.freeOldest();
      }
      return true;
    }) === true;
  }

  /** Destination: stores buffered entries in order; once a snapshot is stored whole, applies it whole. */
  private receiveSnapshot(rt: PairRuntime): void {
    const j = rt.journal!;
    for (let e = rt.restorePending.get(j.newestSeq + 1); e; e = rt.restorePending.get(j.newestSeq + 1)) {
      rt.restorePending.delete(e.seq);
      if (!this.storeSnapshotEntry(rt, e)) return;
    }
    const applied = this.w(rt, P.appliedSeq), end = rt.receivingEndSeq;
    if (end <= applied || j.newestSeq < end || !isCopyingState(this.state(rt))) return;
    // All of it is here: apply it in this one event, so no one ever sees half a snapshot. A member volume that has
    // failed would take part of it and refuse the rest (seed 72: the log member of a group failed, the data member
    // took its writes), so every member's drives are checked first; the image then stays at the snapshot before.
    const failed = rt.group.members.find((m) => !this.hw.disk.lvolHealthy(m.localLvol));
    if (failed) {
      this.log('warn', `${this.label(rt)}: LVOL ${failed.localLvol} failed: snapshot through ${end} not applied, the image stays at ${applied}`, rt.lastStep);
      rt.bitmap.setAll();
      return this.pairFailed(rt, 'drive failure');
    }
    for (let seq = applied + 1; seq <= end; seq++) {
      const entry = this.journalIo(rt, () => j.entryAt(seq));
      if (entry && this.writeMember(rt, entry.lba, entry.data)) continue;
      // A volume failed during the apply (on threads a fault can land mid-event): part of the snapshot is in the
      // image, which is then no moment of the source's; say so.
      if (seq > applied + 1) this.set(rt, P.consistentSeq, NOT_CONSISTENT);
      if (entry) this.pairFailed(rt, 'drive failure'); // (a read of the difference volume failed the pair already)
      return;
    }
    this.set(rt, P.appliedSeq, end);
    rt.snapshots++;
  }

  private startSuspending(rt: PairRuntime): void {
    const j = rt.journal!;
    // Snapshot mode: everything written until the last snapshot is taken goes in it — now, or once the one in
    // flight is applied.
    rt.drainSnapshotTaken = this.isSnapshotMode(rt) && !this.snapshotInFlight(rt);
    if (rt.drainSnapshotTaken && !this.takeSnapshot(rt)) return;
    this.set(rt, P.drainTargetSeq, j.newestSeq);
    this.setState(rt, PairState.Suspending);
    this.sendState(rt);
    if (this.w(rt, P.appliedSeq) >= j.newestSeq) this.finishDrain(rt);
    else this.ship(rt);
  }

  private finishDrain(rt: PairRuntime): void {
    assertInvariant(rt.snapshot.count() === 0, () => `${this.label(rt)}: drained with ${rt.snapshot.count()} track(s) never put in a snapshot`);
    rt.journal!.reset();
    this.shipFrom(rt, rt.journal!.newestSeq);
    this.setState(rt, PairState.Suspend);
    this.sendState(rt);
  }

  // ───────────────────────────── frames ─────────────────────────────

  onFrame(fromStorageId: number, frame: Uint8Array): void {
    try { this.frame(fromStorageId, frame); } finally { this.entryOver(); }
  }

  private frame(fromStorageId: number, frame: Uint8Array): void {
    let f: DecodedFrame;
    try {
      f = decodeFrame(frame);
    } catch (e) {
      this.log('warn', `frame from storage ${fromStorageId} dropped: ${(e as Error).message}`);
      return;
    }
    this.lastHeardUs.set(fromStorageId, this.hw.nowUs());
    try {
      switch (f.type) {
        case FrameType.Bundle: { for (const inner of decodeBundle(f)) this.frame(fromStorageId, inner); return; }
        case FrameType.SyncWrite: return this.onSyncWrite(fromStorageId, f);
        case FrameType.SyncAck: return this.onSyncAck(fromStorageId, f);
        case FrameType.FormationCopy: return this.onFormationCopy(fromStorageId, f);
        case FrameType.FormationAck: return this.onFormationAck(fromStorageId, f);
        case FrameType.JournalBatch: return this.onJournalBatch(fromStorageId, f);
        case FrameType.JournalAck: return this.onJournalAck(fromStorageId, f);
        case FrameType.Control: return this.onControl(fromStorageId, f.pairId, decodeControl(f));
        case FrameType.Keepalive: return;
      }
    } catch (e) {
      if ((e as Error).name !== 'FrameError') throw e;
      this.log('warn', `frame from storage ${fromStorageId} dropped: ${(e as Error).message}`);
    }
  }

  private sendControl(to: number, pairId: number, body: ControlBody): boolean {
    return this.send(to, this.encoder().control(pairId, body));
  }

  private onControl(from: number, pairId: number, b: ControlBody): void {
    switch (b.op) {
      case 'create': {
        const error = this.createDestination(from, b.def);
        this.sendControl(from, pairId, { op: 'create-reply', reqId: b.reqId, error });
        return;
      }
      case 'state':
      case 'bitmap-request': {
        const rt = this.pairs.get(pairId);
        if (!rt || this.partner(rt) !== from) {
          if (b.op === 'bitmap-request') this.sendControl(from, pairId, { op: 'bitmap-reply', reqId: b.reqId, words: new Uint8Array(0), newestSeq: 0, error: `pair ${pairId} unknown at storage ${this.hw.storageId}` });
          return;
        }
        // A definition older than ours (the partner has not heard of a reverse we made) is ignored whole.
        if (b.epoch < this.w(rt, P.epoch)) {
          if (b.op === 'bitmap-request') this.sendControl(from, pairId, { op: 'bitmap-reply', reqId: b.reqId, words: new Uint8Array(0), newestSeq: 0, error: `pair ${pairId} was reversed since (definition epoch ${this.w(rt, P.epoch)} > ${b.epoch})` });
          this.log('info', `${b.op} of pair ${pairId} from storage ${from} ignored: definition epoch ${b.epoch} < ${this.w(rt, P.epoch)}`);
          return;
        }
        if (b.op === 'state') {
          if (b.stateSeq <= rt.partnerStateSeq) return; // overtaken by a newer state frame (or resync request)
        }
        // A resync request always starts the copy here, but state frames older than it are void from now on.
        rt.partnerStateSeq = Math.max(rt.partnerStateSeq, b.stateSeq);
        this.set(rt, P.epoch, b.epoch);
        rt.lastStep = b.step;
        this.adoptDefinition(rt, b.def);
        if (b.op === 'state') return this.adoptSourceState(rt, b.state as PairState, FAILURE_CAUSES[b.cause] ?? 'none', b.baseSeq, b.drainTargetSeq, b.consistentSeq);
        // Resynchronisation begins: hand our own differences to the source and start mirroring its copy. They stay
        // marked here until the source reports duplex: if this reply is lost, the next request sends them again.
        const words = new Uint8Array(rt.bitmap.words.slice().buffer);
        rt.copySerialApplied = undefined;
        rt.syncTagsApplied.clear();
        rt.syncBlockTags?.fill(0);
        this.set(rt, P.copyGeneration, b.gen);
        rt.restorePending.clear();
        rt.awaitingBase = rt.journal !== undefined;
        this.set(rt, P.consistentSeq, NOT_CONSISTENT);
        this.adoptState(rt, b.state as PairState);
        this.updateDirty(rt);
        this.sendControl(from, pairId, { op: 'bitmap-reply', reqId: b.reqId, words, newestSeq: rt.journal ? rt.journal.newestSeq : 0 });
        return;
      }
      case 'create-reply':
      case 'bitmap-reply':
      case 'command-reply': {
        const req = this.requests.get(b.reqId);
        if (!req || req.partner !== from) return;
        this.requests.delete(b.reqId);
        return req.onReply(b);
      }
      case 'forward-command': {
        // Only the partner of the pair the command names may relay it, and only for that pair.
        const cmd = b.command as { pairId?: unknown };
        const rt = this.pairs.get(pairId);
        if (!rt || this.partner(rt) !== from || !cmd || typeof cmd !== 'object' || cmd.pairId !== pairId) {
          this.log('info', `relayed command from storage ${from} dropped: not the partner of pair ${pairId}, or the command names another pair`);
          return;
        }
        return this.execute(b.command as Command, (reply) => this.sendControl(from, pairId, { op: 'command-reply', reqId: b.reqId, reply }), from);
      }
      case 'delete': {
        const rt = this.pairs.get(pairId);
        if (rt && this.partner(rt) === from) this.deleteLocal(rt);
        return;
      }
    }
  }

  private adoptDefinition(rt: PairRuntime, d: WireDefinition): void {
    const wasSource = this.isSource(rt);
    if (wasSource && d.role === 'destination') this.set(rt, P.consistentSeq, 0);
    this.set(rt, P.role, d.role === 'source' ? 0 : 1);
    this.set(rt, P.direction, d.direction === 'forward' ? 0 : 1);
    this.set(rt, P.fence, FENCE_LEVELS.indexOf(d.fence));
    if (wasSource !== this.isSource(rt) && rt.journal) {
      // Reversed by the partner: entries it never applied mark their tracks, so the next resync copies them.
      if (wasSource) this.journalToBitmap(rt);
      else { rt.journal.reset(); this.shipFrom(rt, rt.journal.newestSeq); this.set(rt, P.appliedSeq, rt.journal.newestSeq); }
      this.updateDirty(rt);
    }
  }

  private adoptSourceState(rt: PairRuntime, state: PairState, cause: FailureCause, baseSeq: number, drainTarget: number, consistentSeq: number): void {
    const own = this.state(rt);
    if (own === PairState.FailureSuspend && state !== PairState.FailureSuspend && state !== PairState.Suspend && state !== PairState.Simplex) {
      // The partner has not noticed our failure (a restart, a cut it did not see) and still announces copying.
      // Only a resynchronisation brings this side back: adopting the announcement would clear the differences
      // recorded meanwhile (host writes to a failure-suspended destination) and skip entries lost with our
      // volatile memory. Tell the partner instead, so that it fails the pair too.
      this.log('info', `${this.label(rt)}: partner announces ${pairStateName(state)} but this side is in failure suspend: told it so`, rt.lastStep);
      this.sendState(rt);
      return;
    }
    if (this.isSource(rt) && state === PairState.FailureSuspend && own !== PairState.FailureSuspend) {
      // The destination failed (a drive, a restart): stop copying and mark what it has not confirmed.
      this.stopCopying(rt);
    }
    if (baseSeq >= 0 || !isCopyingState(state)) rt.awaitingBase = false;
    if (consistentSeq >= 0) this.set(rt, P.consistentSeq, consistentSeq);
    if (state === PairState.InitialCopying || state === PairState.DuplexPending) this.set(rt, P.consistentSeq, NOT_CONSISTENT);
    if (rt.journal && baseSeq > this.w(rt, P.appliedSeq)) {
      // Restore (re)starts after this sequence number: entries up to it are covered by formation copying.
      // (Only ever forward: the announcement is repeated, and applied entries are never un-applied.)
      this.set(rt, P.appliedSeq, baseSeq);
      if (baseSeq > rt.journal.newestSeq) rt.journal.reset(baseSeq);
      for (const seq of rt.restorePending.keys()) if (seq <= baseSeq) rt.restorePending.delete(seq);
    }
    this.set(rt, P.drainTargetSeq, drainTarget);
    if (state === PairState.FailureSuspend || state === PairState.Suspend) rt.restorePending.clear();
    // The source finished a formation copy that included our differences: they are no longer differences. Only on
    // the way into duplex from that copy: a re-announcement of duplex (the source repeats its state every keepalive,
    // and one may arrive late) says nothing of differences recorded here since, such as writes a cascade's other
    // pair restored into this volume after the source went quiet.
    if (state === PairState.Duplex && consistentSeq >= 0 && (own === PairState.DuplexPending || own === PairState.InitialCopying)) {
      rt.bitmap.clearAll();
      this.updateDirty(rt);
    }
    this.adoptState(rt, state, cause);
    this.restorePendingInOrder(rt);
  }

  // ───────────────────────────── timers and links ─────────────────────────────

  onTimer(kind: TimerKind, arg: number): void {
    try { this.timer(kind, arg); } finally { this.entryOver(); }
  }

  private timer(kind: TimerKind, arg: number): void {
    if (kind === 'snapshot') {
      const rt = this.pairs.get(arg);
      if (rt) { rt.snapshotTimerArmed = false; this.snapshotDue(rt); }
      return;
    }
    if (kind === 'journal-ship') {
      const rt = this.pairs.get(arg);
      if (rt) { rt.shipScheduled = false; this.ship(rt); }
      return;
    }
    if (kind === 'tick') {
      this.tick();
      this.hw.setTimer(TICK_US, 'tick', 0);
    }
  }

  private tick(): void {
    const now = this.hw.nowUs(), t = this.hw.timing;
    const partners = new Set<number>();
    for (const rt of [...this.pairs.values()]) {
      const s = this.state(rt);
      if (!ACTIVE(s)) continue;
      const partner = this.partner(rt);
      partners.add(partner);
      const heard = Math.max(this.lastHeardUs.get(partner) ?? 0, rt.activeSinceUs);
      if (now - heard > t.partnerTimeoutUs) { this.pairFailed(rt, 'partner lost'); continue; }
      // Frames lost on the wire: a track whose answer is overdue goes again; the last resort, when no formation copy
      // has been acknowledged for the resend timeout, copies everything in flight again (progress-based, so frames
      // merely queued on a slow link are not resent).
      if (rt.copyInflight.size > 0 && now - rt.lastCopyAckUs > t.journalResendTimeoutUs) {
        for (const track of [...rt.copyInflight.keys()]) this.copyTrackAgain(rt, track);
        rt.copyPacing.rewind();
        rt.lastCopyAckUs = now;
      }
      if (rt.copyInflight.size > 0) this.copyOverdueTracksAgain(rt, now);
      this.pumpFormationCopy(rt);
      if (rt.overMarkSinceUs >= 0 && rt.journal?.almostFull && now - rt.overMarkSinceUs > t.journalWatchTimeUs) {
        this.log('warn', `${this.label(rt)}: journal ${rt.journal?.journalLvol} over the high-water mark for ${Math.round((now - rt.overMarkSinceUs) / 1000)} ms (watch time ${t.journalWatchTimeUs / 1000} ms)`, rt.lastStep);
        this.pairFailed(rt, 'journal full');
        continue;
      }
      if (rt.journal) {
        this.resendGapIfOverdue(rt, now);
        this.probeTail(rt, now);
      }
      if (rt.journal && this.isSource(rt) && rt.shippedSeq > this.w(rt, P.appliedSeq) && now - rt.lastAckProgressUs > t.journalResendTimeoutUs) {
        this.shipFrom(rt, this.w(rt, P.appliedSeq)); // go back N: resend everything not yet applied
        rt.lastAckProgressUs = now;
        this.ship(rt);
      }
    }
    let resentFor: number[] | undefined; // pairs that sent a copy again in this tick (one each)
    for (const c of [...this.syncCopies.values()]) { // oldest first (a Map keeps insertion order)
      if (now - c.sentUs > t.syncCopyTimeoutUs) {
        const rt = this.pairs.get(c.pairId);
        this.finishSyncCopy(c, false);
        if (rt) this.pairFailed(rt, 'copy failed');
      } else if (!resentFor?.includes(c.pairId) && this.resendSyncCopyIfOverdue(c, now)) (resentFor ??= []).push(c.pairId);
    }
    // Sources re-announce their state every keepalive period, so a lost state frame cannot leave a mirror stale.
    if (now - this.lastAnnounceUs >= t.keepaliveIntervalUs) {
      this.lastAnnounceUs = now;
      for (const rt of this.pairs.values()) {
        // (Not while a resync request is out: the state it is about to leave would race the request.)
        if (this.isSource(rt) && !rt.resyncPending && !this.linkDown.has(this.partner(rt)) && this.state(rt) !== PairState.Simplex) this.announceState(rt);
      }
    }
    for (const p of partners) {
      if (now - (this.lastKeepaliveUs.get(p) ?? 0) >= t.keepaliveIntervalUs) {
        this.lastKeepaliveUs.set(p, now);
        this.send(p, this.encoder().frame({ type: FrameType.Keepalive, status: 0, pairId: 0, tag: 0, lba: 0, blocks: 0 }));
      }
    }
    for (const [id, r] of [...this.requests]) {
      if (now > r.deadlineUs) { this.requests.delete(id); r.onFail(`no answer from storage ${r.partner} within ${t.commandTimeoutUs} µs`); }
    }
  }

  onLinkState(remoteStorageId: number, up: boolean): void {
    try { this.linkState(remoteStorageId, up); } finally { this.entryOver(); }
  }

  private linkState(remoteStorageId: number, up: boolean): void {
    if (up) {
      this.linkDown.delete(remoteStorageId);
      this.lastHeardUs.set(remoteStorageId, this.hw.nowUs());
      return;
    }
    this.linkDown.add(remoteStorageId);
    for (const rt of [...this.pairs.values()]) if (this.partner(rt) === remoteStorageId && ACTIVE(this.state(rt))) this.pairFailed(rt, 'link down');
    for (const [id, r] of [...this.requests]) {
      if (r.partner === remoteStorageId) { this.requests.delete(id); r.onFail(`link to storage ${remoteStorageId} is down`); }
    }
  }

  private request(partner: number, pairId: number, make: (reqId: number) => ControlBody, onReply: (b: ControlBody) => void, onFail: (why: string) => void): void {
    const reqId = this.nextReqId++;
    if (this.linkDown.has(partner) || !this.sendControl(partner, pairId, make(reqId))) return onFail(`storage ${partner} is unreachable (link down)`);
    this.requests.set(reqId, { partner, deadlineUs: this.hw.nowUs() + this.hw.timing.commandTimeoutUs, onReply, onFail });
  }

  // ───────────────────────────── management commands ─────────────────────────────

  onCommand(requestId: number, command: Command): void {
    try { this.execute(command, (r) => this.hw.replyCommand(requestId, r)); } finally { this.entryOver(); }
  }

  /**
   * The hardware is about to dispatch several events in a row (a CPU loop's turn): frames that may be bundled are
   * held until endBurst, so a burst of host writes goes to the partner as one bundle of synchronous copies, and their
   * acknowledgements come back as one. Without bursts, each entry point sends what it held when it returns.
   */
  beginBurst(): void {
    this.burstDepth++;
  }

  endBurst(): void {
    assertInvariant(this.burstDepth > 0, 'endBurst without beginBurst');
    if (--this.burstDepth === 0) this.bundler.flush();
  }

  private entryOver(): void {
    if (this.burstDepth === 0) this.bundler.flush();
  }

  /**
   * The frame encoder, about to reuse its buffer: a frame of it that the bundler still holds by reference is copied
   * out first (FrameBundler.copyLent). Every frame is encoded through here.
   */
  private encoder(): FrameEncoder {
    this.bundler.copyLent();
    return this.enc;
  }

  /** Every frame leaves through here: per destination in the order sent, bundled where it may be (FrameBundler). */
  private send(to: number, frame: Uint8Array): boolean {
    return this.bundler.offer(to, frame);
  }

  /** A held frame's bundle found no link: what a refused send of that frame would have done. */
  private frameUnsent(to: number, frame: Uint8Array): void {
    const f = decodeFrame(frame);
    if (f.type !== FrameType.SyncWrite) return; // an acknowledgement is lost as a refused one was: the source times out
    const rt = this.pairs.get(f.pairId);
    if (rt && this.partner(rt) === to) this.pairFailed(rt, 'link down');
  }

  private execute(cmd: Command, reply: Reply, forwardedFrom?: number): void {
    try {
      this.dispatch(cmd, reply, forwardedFrom);
    } catch (e) {
      if ((e as Error).name === 'InvariantError') throw e;
      reply({ ok: false, error: (e as Error).message });
    }
  }

  private dispatch(cmd: Command, reply: Reply, forwardedFrom?: number): void {
    if (!cmd || typeof cmd !== 'object' || typeof (cmd as { op?: unknown }).op !== 'string') throw new Error('malformed command: expected an object with an op');
    if (cmd.op === 'status') return reply({ ok: true, outcome: 'done', message: 'status', pairs: [...this.pairs.values()].map((rt) => this.view(rt)) });
    if (cmd.op === 'create') return this.create(cmd, reply);
    const known = ['suspend', 'drain', 'resync', 'reverse', 'delete', 'query'];
    if (!known.includes(cmd.op)) throw new Error(`unknown command ${show((cmd as { op: unknown }).op)}`);
    const rt = this.pairs.get(cmd.pairId);
    if (!rt) throw new Error(`${cmd.op}: unknown pair ${show(cmd.pairId)} on storage ${this.hw.storageId}`);
    if (cmd.op === 'query') return reply({ ok: true, outcome: 'done', message: pairStateName(this.state(rt)), pair: this.view(rt) });
    const copyType = this.isAsync(rt) ? 'async' : 'sync';
    const state = this.state(rt);
    const acc = acceptance(cmd.op, copyType, state);
    if (acc === 'reject') throw new Error(rejection(cmd.op, rt.pairId, copyType, state));
    if (acc === 'noop') return reply({ ok: true, outcome: 'no-op', message: `${cmd.op}: pair ${rt.pairId} already ${pairStateName(state)}`, pair: this.view(rt) });
    rt.lastStep = cmd.step;
    if (cmd.op === 'reverse') return this.reverse(rt, reply);
    if (cmd.op === 'delete') {
      this.sendControl(this.partner(rt), rt.pairId, { op: 'delete', step: cmd.step });
      this.deleteLocal(rt);
      return reply({ ok: true, outcome: 'done', message: `pair ${cmd.pairId} deleted` });
    }
    if (!this.isSource(rt)) {
      // Suspend, drain and resync are carried out by the source; the destination relays them.
      if (forwardedFrom !== undefined) throw new Error(`${cmd.op}: storage ${this.hw.storageId} is not the source of pair ${rt.pairId}`);
      return this.request(this.partner(rt), rt.pairId, (reqId) => ({ op: 'forward-command', reqId, command: cmd }),
        (b) => reply((b as { reply: CommandReply }).reply),
        (why) => {
          if (cmd.op === 'drain') {
            // S230/S510: log information cannot be retrieved — the pair fails.
            this.pairFailed(rt, 'drain failed');
            return reply({ ok: true, outcome: 'done', message: `drain of pair ${rt.pairId} failed: ${why}`, pair: this.view(rt) });
          }
          reply({ ok: false, error: `${cmd.op} of pair ${rt.pairId} not done: ${why}` });
        });
    }
    if (cmd.op === 'suspend') {
      if (copyType === 'async' && state === PairState.Duplex) this.startSuspending(rt);
      else {
        this.stopCopying(rt, false);
        this.setState(rt, PairState.Suspend);
        this.sendState(rt);
      }
      return reply({ ok: true, outcome: 'done', message: `pair ${rt.pairId} ${pairStateName(this.state(rt))}`, pair: this.view(rt) });
    }
    if (cmd.op === 'drain') {
      this.startSuspending(rt);
      return reply({ ok: true, outcome: 'done', message: `pair ${rt.pairId} ${pairStateName(this.state(rt))}`, pair: this.view(rt) });
    }
    // resync: fetch the destination's own differences first, so nothing it changed is missed.
    const target = state === PairState.Simplex ? PairState.InitialCopying : PairState.DuplexPending;
    const kind: FormationKind = state === PairState.Simplex ? 'initial' : cmd.full ? 'full' : 'differential';
    // A new copy generation: the destination adopts it with the request and refuses copies of the one before.
    this.set(rt, P.copyGeneration, (this.w(rt, P.copyGeneration) + 1) & 0xffff);
    const gen = this.w(rt, P.copyGeneration);
    this.request(this.partner(rt), rt.pairId, (reqId) => { rt.resyncPending = true; return { op: 'bitmap-request', reqId, def: this.wireDefinition(rt), epoch: this.w(rt, P.epoch), state: target, stateSeq: this.bumpStateSeq(rt), gen, step: cmd.step }; },
      (b) => {
        rt.resyncPending = false;
        const r = b as Extract<ControlBody, { op: 'bitmap-reply' }>;
        if (r.error) return reply({ ok: false, error: `resync of pair ${rt.pairId} not done: ${r.error}` });
        if (this.state(rt) !== state) return reply({ ok: false, error: `resync of pair ${rt.pairId} not done: state changed to ${pairStateName(this.state(rt))}` });
        if (r.words.length === rt.bitmap.words.length * 4) rt.bitmap.union(new Int32Array(r.words.slice().buffer));
        rt.lastStep = cmd.step;
        if (rt.journal) {
          this.journalToBitmap(rt);
          // Sequence numbers continue past anything either side has logged, so the destination's log stays ordered.
          if (r.newestSeq > rt.journal.newestSeq) { rt.journal.reset(r.newestSeq); this.shipFrom(rt, r.newestSeq); this.set(rt, P.appliedSeq, r.newestSeq); }
        }
        this.setState(rt, target);
        this.sendState(rt, rt.journal ? rt.journal.newestSeq : -1);
        this.startFormationCopy(rt, kind);
        reply({ ok: true, outcome: 'done', message: `pair ${rt.pairId} ${pairStateName(this.state(rt))}`, pair: this.view(rt) });
      },
      (why) => {
        rt.resyncPending = false;
        // The destination may have started mirroring a copy that never began: tell it what we really are.
        this.sendState(rt);
        reply({ ok: false, error: `resync of pair ${rt.pairId} not done: ${why}` });
      });
  }

  private create(cmd: Extract<Command, { op: 'create' }>, reply: Reply): void {
    const d = cmd.pair;
    const existing = d && this.pairs.get(d.pairId);
    if (existing) {
      const copyType = this.isAsync(existing) ? 'async' : 'sync';
      const acc = acceptance('create', copyType, this.state(existing));
      if (acc === 'reject') throw new Error(rejection('create', d.pairId, copyType, this.state(existing), 'delete or resynchronise it instead'));
      return reply({ ok: true, outcome: 'no-op', message: `create: pair ${d.pairId} already ${pairStateName(this.state(existing))}`, pair: this.view(existing) });
    }
    const members = this.validateDefinition(d, 'source');
    if (!['full', 'none', 'defer'].includes(cmd.initialCopy)) throw new Error(`create: initialCopy must be full, none or defer, not ${show(cmd.initialCopy)}`);
    if (this.l.freePairSlot() < 0) throw new Error(`create: definition information is full on storage ${this.hw.storageId}`);
    const def: WireDefinition = {
      pairId: d.pairId, role: 'destination', localLvol: d.remoteLvol, remoteLvol: d.localLvol, direction: 'forward',
      copyType: d.copyType, fence: d.fence, journalLvol: d.remoteJournalLvol ?? -1, remoteJournalLvol: d.journalLvol ?? -1,
      asyncMode: d.asyncMode ?? 'journal', snapshotIntervalUs: d.snapshotIntervalUs ?? DEFAULT_SNAPSHOT_INTERVAL_US, inflowControl: d.inflowControl === true,
      members: members.map((m) => [m.remoteLvol, m.localLvol, this.hw.disk.lvolBlocks(m.localLvol)]),
    };
    this.request(d.remoteStorageId, d.pairId, (reqId) => ({ op: 'create', reqId, def }),
      (b) => {
        const r = b as Extract<ControlBody, { op: 'create-reply' }>;
        if (r.error) return reply({ ok: false, error: `create of pair ${d.pairId} refused by storage ${d.remoteStorageId}: ${r.error}` });
        if (this.pairs.has(d.pairId)) return reply({ ok: false, error: `create: pair ${d.pairId} appeared meanwhile` });
        const rt = this.definePair(d.remoteStorageId, { ...def, role: 'source', localLvol: d.localLvol, remoteLvol: d.remoteLvol,
          journalLvol: d.journalLvol ?? -1, remoteJournalLvol: d.remoteJournalLvol ?? -1, members: members.map((m) => [m.localLvol, m.remoteLvol, 0]) });
        rt.lastStep = cmd.step;
        if (cmd.initialCopy === 'full') {
          this.setState(rt, PairState.InitialCopying);
          this.sendState(rt, rt.journal ? rt.journal.newestSeq : -1);
          this.startFormationCopy(rt, 'initial');
        } else if (cmd.initialCopy === 'none') {
          // No formation copy is needed (S1070, ¶0150): the volumes are already identical, so the destination's
          // image is consistent from the restore base on, as at the end of a formation copy (finishFormationCopy).
          const baseSeq = rt.journal ? rt.journal.newestSeq : -1;
          this.setState(rt, PairState.Duplex);
          this.sendState(rt, baseSeq, rt.journal ? baseSeq : 0);
        }
        reply({ ok: true, outcome: 'done', message: `pair ${d.pairId} ${pairStateName(this.state(rt))}`, pair: this.view(rt) });
      },
      (why) => reply({ ok: false, error: `create of pair ${d.pairId} not done: ${why}` }));
  }

  /** Checks a definition (as given, or as the partner sent it) and returns its group members; throws naming the problem. */
  private validateDefinition(d: PairDefinitionInput, role: 'source' | 'destination'): GroupMember[] {
    if (!d || typeof d !== 'object') throw new Error('create: missing pair definition');
    if (!Number.isInteger(d.pairId) || d.pairId < 1 || d.pairId > 0xffff) throw new Error(`create: pair id must be 1..65535, not ${show(d.pairId)}`);
    if (d.copyType !== 'sync' && d.copyType !== 'async') throw new Error(`create: copy type must be sync or async, not ${show(d.copyType)}`);
    if (!FENCE_LEVELS.includes(d.fence)) throw new Error(`create: fence level must be data, status or never, not ${show(d.fence)}`);
    if (!Number.isInteger(d.remoteStorageId) || d.remoteStorageId === this.hw.storageId) throw new Error(`create: bad destination storage ${show(d.remoteStorageId)}`);
    this.checkLvol(d.localLvol, `${role} LVOL`);
    if (!Number.isInteger(d.remoteLvol) || d.remoteLvol < 0) throw new Error(`create: bad destination LVOL ${show(d.remoteLvol)}`);
    if (d.copyType === 'async') {
      if (d.journalLvol === undefined || d.remoteJournalLvol === undefined) throw new Error('create: an asynchronous pair needs a journal volume on both sides');
      this.checkLvol(d.journalLvol, 'journal LVOL');
      if (d.journalLvol === d.localLvol) throw new Error('create: journal volume and data volume must differ');
      if (this.l.findJournal(d.journalLvol) < 0 && this.l.freeJournalSlot() < 0) throw new Error('create: no free journal slot');
      const user = [...this.pairs.values()].find((rt) => rt.journal?.journalLvol === d.journalLvol);
      if (user) throw new Error(`create: journal LVOL ${d.journalLvol} is in use by pair ${user.pairId}`);
    }
    if (d.asyncMode !== undefined && !ASYNC_MODES.includes(d.asyncMode)) throw new Error(`create: async mode must be journal or snapshot, not ${show(d.asyncMode)}`);
    if (d.asyncMode === 'snapshot' && d.copyType !== 'async') throw new Error('create: snapshot mode is for asynchronous pairs only');
    if (d.inflowControl !== undefined && typeof d.inflowControl !== 'boolean') throw new Error(`create: inflow control must be true or false, not ${show(d.inflowControl)}`);
    if (d.inflowControl && (d.copyType !== 'async' || d.asyncMode === 'snapshot')) {
      throw new Error('create: inflow control paces host writes against a journal: for asynchronous pairs in journal mode only');
    }
    if (d.snapshotIntervalUs !== undefined && (!Number.isInteger(d.snapshotIntervalUs)
      || d.snapshotIntervalUs < MIN_SNAPSHOT_INTERVAL_US || d.snapshotIntervalUs > MAX_SNAPSHOT_INTERVAL_US)) {
      throw new Error(`create: snapshot interval must be ${MIN_SNAPSHOT_INTERVAL_US}..${MAX_SNAPSHOT_INTERVAL_US} µs, not ${show(d.snapshotIntervalUs)}`);
    }
    return this.validateMembers(d, role);
  }

  /** A consistency group's members: shape, existence, no journal volume, and no volume in two groups of one role. */
  private validateMembers(d: PairDefinitionInput, role: 'source' | 'destination'): GroupMember[] {
    const members = d.volumes ?? [{ localLvol: d.localLvol, remoteLvol: d.remoteLvol }];
    checkMembers(members, MAX_GROUP_MEMBERS);
    const first = members[0]!;
    if (first.localLvol !== d.localLvol || first.remoteLvol !== d.remoteLvol) {
      throw new Error(`create: the first of volumes must be the pair's own LVOLs ${d.localLvol}→${d.remoteLvol}, not ${first.localLvol}→${first.remoteLvol}`);
    }
    for (const m of members) {
      this.checkLvol(m.localLvol, `${role} LVOL`);
      if (m.localLvol === d.journalLvol || m.remoteLvol === d.remoteJournalLvol) {
        throw new Error(`create: LVOL ${m.localLvol === d.journalLvol ? m.localLvol : m.remoteLvol} is the pair's journal volume and cannot be a member`);
      }
      const journalOf = [...this.pairs.values()].find((rt) => rt.journal?.journalLvol === m.localLvol);
      if (journalOf) throw new Error(`create: LVOL ${m.localLvol} is the journal volume of pair ${journalOf.pairId} and cannot be a member`);
      for (const { rt } of this.pairsByLvol.get(m.localLvol) ?? []) {
        if (rt.pairId === d.pairId) continue;
        // A destination is written by one pair only; a source volume is in one group per partner (two would each
        // order its writes with different companions, and neither destination would be consistent as a whole).
        if (role === 'destination' && !this.isSource(rt) && ACTIVE(this.state(rt))) {
          throw new Error(`LVOL ${m.localLvol} is already the destination of pair ${rt.pairId}`);
        }
        // (The same group in a second pair to that partner — a sync and an async pair, as in the variation's P→I — is
        // no such conflict: it orders the same volumes together.)
        const sameGroup = rt.group.members.length === members.length && rt.group.members.every((x, i) => x.localLvol === members[i]!.localLvol);
        if (role === 'source' && this.isSource(rt) && this.partner(rt) === d.remoteStorageId && !sameGroup) {
          throw new Error(`create: LVOL ${m.localLvol} is already a member of pair ${rt.pairId} to storage ${d.remoteStorageId}, in another group`);
        }
      }
    }
    return members;
  }

  private checkLvol(lvol: number | undefined, what: string): void {
    try {
      this.hw.disk.lvolBlocks(lvol as number);
    } catch (e) {
      throw new Error(`create: ${what} ${show(lvol)} does not exist on storage ${this.hw.storageId} (${(e as Error).message})`);
    }
  }

  private createDestination(from: number, def: WireDefinition): string | undefined {
    try {
      if (this.pairs.has(def.pairId)) return `pair ${def.pairId} already exists`;
      const members = this.validateDefinition({ pairId: def.pairId, localLvol: def.localLvol, remoteStorageId: from, remoteLvol: def.remoteLvol, copyType: def.copyType,
        fence: def.fence, journalLvol: def.copyType === 'async' ? def.journalLvol : undefined, remoteJournalLvol: def.copyType === 'async' ? def.remoteJournalLvol : undefined,
        volumes: wireMembers(def), asyncMode: def.asyncMode, snapshotIntervalUs: def.snapshotIntervalUs, inflowControl: def.inflowControl }, 'destination');
      // Group addresses are laid out from member sizes: both sides must have the same ones.
      const sizes = def.members ?? [];
      for (let i = 0; sizes.length > 1 && i < sizes.length; i++) {
        const here = this.hw.disk.lvolBlocks(members[i]!.localLvol);
        if (here !== sizes[i]![2]) return `member ${i}: LVOL ${members[i]!.localLvol} has ${here} blocks here but LVOL ${members[i]!.remoteLvol} of storage ${from} has ${sizes[i]![2]}: a group's volumes must be the same size on both sides`;
      }
      if (this.l.freePairSlot() < 0) return 'definition information is full';
      this.definePair(from, def);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private definePair(remote: number, def: WireDefinition): PairRuntime {
    const slot = this.l.freePairSlot();
    assertInvariant(slot >= 0, 'no free pair slot after validation');
    this.l.clearPairSlot(slot);
    const s = (f: number, v: number) => this.l.setPairWord(slot, f, v);
    s(P.pairId, def.pairId);
    s(P.role, def.role === 'source' ? 0 : 1);
    s(P.localLvol, def.localLvol);
    s(P.remoteStorageId, remote);
    s(P.remoteLvol, def.remoteLvol);
    s(P.direction, def.direction === 'forward' ? 0 : 1);
    s(P.copyType, def.copyType === 'sync' ? 0 : 1);
    s(P.state, PairState.Simplex);
    s(P.fence, FENCE_LEVELS.indexOf(def.fence));
    s(P.journalLvol, def.journalLvol);
    s(P.remoteJournalLvol, def.remoteJournalLvol);
    writeMembers(this.l, slot, wireMembers(def));
    s(P.consistentSeq, NOT_CONSISTENT); // a destination that was never copied holds nothing of its source
    s(P.asyncMode, ASYNC_MODES.indexOf(def.asyncMode ?? 'journal'));
    s(P.snapshotIntervalUs, def.snapshotIntervalUs ?? DEFAULT_SNAPSHOT_INTERVAL_US);
    s(P.inflowControl, def.inflowControl ? 1 : 0);
    s(P.inUse, 1);
    const rt = this.attach(slot);
    if (rt.journal) {
      rt.journal.reset();
      this.set(rt, P.appliedSeq, rt.journal.newestSeq);
      this.shipFrom(rt, rt.journal.newestSeq);
    }
    this.rebuildLvolIndex();
    this.hw.emit({ type: 'pair-state', pairId: def.pairId, from: 'none', to: 'simplex', cause: 'none', step: undefined });
    return rt;
  }

  private reverse(rt: PairRuntime, reply: Reply): void {
    // The direction flips; each side keeps its own difference bitmap, merged at the next resync.
    const wasSource = this.isSource(rt);
    this.set(rt, P.epoch, this.w(rt, P.epoch) + 1); // a newer definition: the partner's older announcements lose
    if (wasSource) this.set(rt, P.consistentSeq, 0); // the new destination's image is its own, consistent
    this.set(rt, P.role, wasSource ? 1 : 0);
    this.set(rt, P.direction, this.w(rt, P.direction) === 0 ? 1 : 0);
    if (rt.journal) {
      // Entries the old destination never applied mark their tracks; a destination's log is simply restarted.
      if (wasSource) this.journalToBitmap(rt);
      else { rt.journal.reset(); this.shipFrom(rt, rt.journal.newestSeq); this.set(rt, P.appliedSeq, rt.journal.newestSeq); }
      this.updateDirty(rt);
    }
    rt.restorePending.clear();
    this.sendState(rt);
    const r = this.record(rt);
    this.log('info', `pair ${rt.pairId} reversed: now ${r.role} (${r.direction} direction)`, rt.lastStep);
    reply({ ok: true, outcome: 'done', message: `pair ${rt.pairId} reversed (${r.direction})`, pair: this.view(rt) });
  }

  private deleteLocal(rt: PairRuntime): void {
    for (const c of [...this.syncCopies.values()]) if (c.pairId === rt.pairId) this.finishSyncCopy(c, true);
    this.releaseInflow(rt, true);
    const jl = rt.journal?.journalLvol;
    this.pairs.delete(rt.pairId);
    this.hw.emit({ type: 'pair-state', pairId: rt.pairId, from: pairStateName(this.state(rt)), to: 'deleted', cause: 'none', step: rt.lastStep });
    this.l.clearPairSlot(rt.slot);
    if (jl !== undefined) {
      const js = this.l.findJournal(jl);
      if (js >= 0) this.l.clearJournalSlot(js);
    }
    this.rebuildLvolIndex();
  }

  // ───────────────────────────── views ─────────────────────────────

  private view(rt: PairRuntime): PairView {
    const r = this.record(rt);
    const src = r.role === 'source';
    const j = rt.journal;
    const total = r.copyTracksTotal;
    const copying = r.state === PairState.InitialCopying || r.state === PairState.DuplexPending;
    let oldestUnappliedUs = 0;
    const snapshotMode = r.asyncMode === 'snapshot';
    if (snapshotMode && src && (this.snapshotInFlight(rt) || rt.snapshot.count() > 0)) {
      oldestUnappliedUs = this.hw.nowUs() - rt.appliedSnapshotTakenUs; // the destination holds the image of that moment
    } else if (j && src && j.entries > 0 && r.appliedSeq < j.newestSeq) {
      const seq = Math.max(j.oldestSeq, r.appliedSeq + 1);
      try {
        oldestUnappliedUs = this.hw.nowUs() - j.entryAt(seq).tsUs;
      } catch {
        oldestUnappliedUs = -1; // journal unreadable (drive failure)
      }
    }
    return {
      pairId: r.pairId, storageId: this.hw.storageId, role: r.role, localLvol: r.localLvol, remoteStorageId: r.remoteStorageId, remoteLvol: r.remoteLvol,
      sourceStorageId: src ? this.hw.storageId : r.remoteStorageId, sourceLvol: src ? r.localLvol : r.remoteLvol,
      destinationStorageId: src ? r.remoteStorageId : this.hw.storageId, destinationLvol: src ? r.remoteLvol : r.localLvol,
      direction: r.direction, copyType: r.copyType, fence: r.fence, state: pairStateName(r.state), stateValue: r.state, failureCause: r.failureCause,
      journalLvol: r.journalLvol, members: r.members, dirtyTracks: rt.bitmap.count(),
      copyProgressPercent: copying ? (total === 0 ? 100 : Math.floor((100 * r.copyTracksDone) / Math.max(total, r.copyTracksDone + rt.bitmap.count()))) : r.state === PairState.Duplex ? 100 : 0,
      lastFormationCopy: r.lastFormationKind, lastFormationTracksCopied: r.lastFormationTracksCopied,
      journalNewestSeq: j ? j.newestSeq : 0, journalAppliedSeq: r.appliedSeq, journalEntries: j ? j.entries : 0, journalBytes: j ? j.usedBytes : 0,
      journalUsagePercent: j ? Math.round(j.usagePercent * 10) / 10 : 0, journalOldestUnappliedUs: oldestUnappliedUs,
      asyncMode: r.asyncMode, snapshotIntervalUs: r.snapshotIntervalUs, snapshotTracksMarked: src ? rt.snapshot.count() : 0,
      snapshotInFlight: src && snapshotMode && this.snapshotInFlight(rt), snapshots: rt.snapshots,
      inflowControl: r.inflowControl, inflowHeldWrites: rt.inflowHeld.length,
    };
  }
}

/** The members a definition names, from its receiver's point of view (none listed: its one volume). */
function wireMembers(def: WireDefinition): GroupMember[] {
  return def.members ? def.members.map(([localLvol, remoteLvol]) => ({ localLvol, remoteLvol })) : [{ localLvol: def.localLvol, remoteLvol: def.remoteLvol }];
}
