// Embodiment 3 (¶0123–0139): P, I, J, R; J near R, far from P. Normal operation is embodiment 1's
// (P →sync I →async R, J idle, [0125]); reverse operation is R →sync J →async P, with no reverse copy control.
// Routines with the source's step numbers:
//   A2 initial copying, A3 failover (host P / host R): embodiment 1's. A3 omits S260–S270 here ([0125]): host R's
//      writes are backed up to J by C1 instead of to I, so pair I→R stays suspended (R its destination).
//   C1 reverse copying (host R, Fig. 15): S800 sync pair R→J, S810 async pair J→P, each formation copy → duplex.
//   C2 failback (host P, Fig. 17): S900 query J→P at P, S910 P retrieves all log information from J, S920 query,
//      S930 "no data loss" / S970 "data loss"; ¶0135 resynchronises a suspended J→P first.
// Then A2 returns the system to normal operation ([0136]).
// Variation (Fig. 18, claim 8): in normal operation R also copies asynchronously to J (pair 5, journal 232R-2 →
// 232J), so at S800 J is current: R retrieves what 232R-2 holds, and the sync pair R→J needs no formation copy.
// Its reverse half ([0139]): in reverse operation P also copies asynchronously to I (pair 6, 232P-2 → 232I-2), so
// when normal operation resumes I is current: P retrieves what 232P-2 holds, and S100's sync pair P→I is formed
// anew without formation copy.

import type { FenceLevel, PairView } from '../../firmware/commands.ts';
import type { CopyControlProgram, Report } from '../copy-control.ts';
import { DATA_LVOL, JOURNAL_LVOL, SECOND_JOURNAL_LVOL } from '../topology.ts';
import { failover as failover1, initialCopying as initialCopying1, PAIR_IR, PAIR_PI } from './embodiment1.ts';
import { deletePair } from './embodiment2.ts';
import { pairForming, SPLITTABLE } from './pair-forming.ts';

export { PAIR_IR, PAIR_PI };

/** Pair ids beyond embodiment 1's 1 (sync P→I) and 2 (async I→R). */
export const PAIR_RJ = 3; // sync R→J, formed at S800
export const PAIR_JP = 4; // async J→P, formed at S810 (232J → 232P)
export const PAIR_RJ_BACKUP = 5; // variation: async R→J in normal operation (232R-2 → 232J), replaced at S800
export const PAIR_PI_BACKUP = 6; // variation, [0139]: async P→I in reverse operation (232P-2 → 232I-2), replaced at S100

/** Journal volumes of each of this embodiment's async pairs: [source's, destination's]. */
const JOURNALS: Record<number, [number, number]> = {
  [PAIR_JP]: [JOURNAL_LVOL, JOURNAL_LVOL],
  [PAIR_RJ_BACKUP]: [SECOND_JOURNAL_LVOL, JOURNAL_LVOL],
  // P is the destination of J→P (232P) and I the source of the suspended I→R (232I): second journals on both.
  [PAIR_PI_BACKUP]: [SECOND_JOURNAL_LVOL, SECOND_JOURNAL_LVOL],
};

const AT_P = { system: 'P', lvol: DATA_LVOL };

const { createPair, formPair, splitIfCopying } = pairForming(JOURNALS);




/**
 * The variation's async backup pair source→dest gives way to the sync pair between the same volumes (the firmware
 * cannot turn an async pair into a sync one). The source first ships all of its journal (suspending → suspend).
 * Returns whether dest then holds what source holds — suspend, and nothing marked at the source since — so that the
 * sync pair needs no formation copy; false too when there is no backup pair. Either way the backup pair is deleted.
 */
async function retireBackup(p: CopyControlProgram, step: string, pairId: number, source: 'R' | 'P', dest: 'J' | 'I', journal: string, why: string): Promise<boolean> {
  let current = false;
  const backup = await p.query(source, pairId, step);
  if (backup && backup.role === 'source') {
    let v = await p.queryStable(source, pairId, step);
    if (v.state === 'duplex') v = await p.retrieveAll(source, pairId, step);
    p.step(step, `variation: async pair ${source}→${dest} (${journal}) ${v.state}${v.state === 'suspend' ? `, ${dest} applied through sequence ${v.journalAppliedSeq}` : ` (${v.failureCause})`}; ${v.dirtyTracks} track(s) marked at ${source} since`);
    current = v.state === 'suspend' && v.dirtyTracks === 0;
  }
  await deletePair(p, pairId, [source, dest], step, why);
  if (current) p.step(step, `${dest} holds the same data as ${source} (variation): no formation copy needed`);
  return current;
}

export interface InitialCopyingOptions {
  /** Fig. 18 (claim 8): after S110, R also copies asynchronously to J (pair 5). */
  variation?: boolean;
  syncFence?: FenceLevel;
}

/** What A2 did, for the scenario's measurement of the variation's reverse half ([0139]). */
export interface InitialCopyingResult {
  /** Tracks the formation copy of S100 (P→I: initial, or differences when normal operation resumes) copied; 0 when none was needed. */
  s100TracksCopied: number;
}

/**
 * A2 Initial copying (host P): embodiment 1's S100 (sync P→I) and S110 (async I→R); also the return to normal
 * operation after C2 ([0136]), which first deletes the pairs of reverse operation (J→P, sync R→J). With the
 * variation, S110 also forms the async pair R→J (232R-2 → 232J) once I→R is duplex. The firmware cannot turn the
 * sync pair R→J into an async one, so that pair is formed anew with initial copying. Returning to normal with the
 * variation, the async pair P→I of reverse operation ([0139]) gives way to the sync pair P→I: formed anew without
 * formation copy when I is current, else resynchronised by differences. Safe to run again.
 */
export async function initialCopying(p: CopyControlProgram, o: InitialCopyingOptions = {}): Promise<InitialCopyingResult> {
  await deletePair(p, PAIR_JP, ['P', 'J'], 'S100', 'reverse operation is over (J→P of S810)');
  await deletePair(p, PAIR_RJ, ['R', 'J'], 'S100', `reverse operation is over (sync R→J of S800)${o.variation ? '; J is backed up asynchronously again' : '; J is idle in normal operation ([0125])'}`);
  // [0139]: P's writes of reverse operation reached I asynchronously. Otherwise S100 resynchronises the sync pair by
  // differences, and P's half of it marked every track written into P since the disaster (S810's copy among them).
  // (Without the variation nothing is asked: its runs stay event for event what they were.)
  if (o.variation && ((await p.query('P', PAIR_PI_BACKUP, 'S100')) || (await p.query('I', PAIR_PI_BACKUP, 'S100')))) {
    if (await retireBackup(p, 'S100', PAIR_PI_BACKUP, 'P', 'I', '232P-2', 'replaced by the sync pair P→I of normal operation')) {
      await deletePair(p, PAIR_PI, ['P', 'I'], 'S100', 'I holds what P holds: the sync pair is formed anew, without its differences');
      await createPair(p, 'S100', PAIR_PI, 'P', 'I', 'sync', o.syncFence ?? 'data', 'none');
    }
  }
  // A formation copy into R (S110) would be journaled onward to J in track order: split the variation's pair first.
  const ir = await p.query('I', PAIR_IR, 'S110');
  if (!ir || ir.role !== 'source' || ir.state !== 'duplex') await splitIfCopying(p, 'R', PAIR_RJ_BACKUP, 'S110', 'the formation copy I→R goes into R');
  if (!o.variation) await deletePair(p, PAIR_RJ_BACKUP, ['R', 'J'], 'S110', 'no variation: J is idle in normal operation');
  // (Also halves of pairs 1 and 2 left by a delete over a cut link: embodiment 1's formPair needs both or neither.)
  for (const [pairId, a, b] of [[PAIR_PI, 'P', 'I'], [PAIR_IR, 'I', 'R']] as const) {
    if (((await p.query(a, pairId, 'S100')) === null) !== ((await p.query(b, pairId, 'S100')) === null)) await deletePair(p, pairId, [a, b], 'S100', 'only one half of it is left');
  }
  const { s100 } = await initialCopying1(p, { syncFence: o.syncFence });
  const s100TracksCopied = s100.lastFormationTracksCopied; // 0 for a pair formed without formation copy
  p.step('S100', `S100 formation copy P→I: ${s100TracksCopied} track(s)`);
  if (o.variation) {
    await formPair(p, 'S110', PAIR_RJ_BACKUP, 'R', 'J', 'async', 'never');
    p.step('S110', 'normal operation (variation, Fig. 18): P →sync I →async R →async J');
  } else {
    p.step('S110', 'normal operation: P →sync I →async R; J idle ([0125])');
  }
  return { s100TracksCopied };
}

/** A3 Failover (host R): embodiment 1's with S260–S270 omitted ([0125]); C1 backs host R's writes up to J. */
export function failover(p: CopyControlProgram): Promise<Report> {
  return failover1(p, { reverseToIntermediate: false });
}

/** What C1 did, for the scenario's measurement of the variation (claim 8). */
export interface ReverseCopyingResult {
  /** Tracks the formation copy of S800 (R→J) copied; 0 when none was needed. */
  s800TracksCopied: number;
  s810TracksCopied: number;
  /** Variation ([0139]): tracks the formation copy of the async pair P→I copied (at S810, once J→P is duplex). */
  s810BackupTracksCopied: number;
}

export interface ReverseCopyingOptions {
  /** [0139]: in reverse operation P also copies asynchronously to I (pair 6, 232P-2 → 232I-2). */
  variation?: boolean;
}

/**
 * C1 Reverse copying (host R, once all failures are cleared; Fig. 15). Host R's work application does not write
 * during C1 ([0129]: it runs once C1 has ended). Safe to run again: existing pairs are resynchronised.
 */
export async function reverseCopying(p: CopyControlProgram, o: ReverseCopyingOptions = {}): Promise<ReverseCopyingResult> {
  const result: ReverseCopyingResult = { s800TracksCopied: 0, s810TracksCopied: 0, s810BackupTracksCopied: 0 };
  // (A run again after S810: J→P copies out of J, into which S800 copies.)
  await splitIfCopying(p, 'J', PAIR_JP, 'S800', 'the formation copy R→J goes into J');
  // R is the production site: nothing is to copy into it any more (A3 normally left I→R suspended at S230).
  await splitIfCopying(p, 'R', PAIR_IR, 'S800', 'R is the production site');
  const rj = await p.query('R', PAIR_RJ, 'S800');
  if (rj && rj.role === 'source' && rj.state === 'duplex') {
    p.step('S800', `sync pair R→J already duplex: nothing to do`);
  } else if (rj) {
    await formPair(p, 'S800', PAIR_RJ, 'R', 'J', 'sync', 'data');
    result.s800TracksCopied = (await p.mustQuery('R', PAIR_RJ, 'S800')).lastFormationTracksCopied;
  } else {
    // S800 (variation, Fig. 18): J was kept current by the async pair R→J, which gives way to the sync pair R→J
    // (which also frees 232J for S810).
    const current = await retireBackup(p, 'S800', PAIR_RJ_BACKUP, 'R', 'J', '232R-2', 'replaced by the sync pair R→J of reverse operation');
    const initialCopy = current ? 'none' : 'full';
    const v = await createPair(p, 'S800', PAIR_RJ, 'R', 'J', 'sync', 'data', initialCopy);
    result.s800TracksCopied = initialCopy === 'full' ? v.lastFormationTracksCopied : 0;
  }
  p.step('S800', `S800 formation copy R→J: ${result.s800TracksCopied} track(s)`);
  // S810: async pair J→P. P's sync pair P→I (failure suspend since the disaster) must not copy while J copies to P.
  await splitIfCopying(p, 'P', PAIR_PI, 'S810', 'J copies into P asynchronously in reverse operation');
  const jp = await p.query('J', PAIR_JP, 'S810');
  if (jp && jp.role === 'source' && jp.state === 'duplex') {
    p.step('S810', 'async pair J→P already duplex');
  } else {
    // (Variation, a run again: the async pair P→I copies out of P, into which this formation copy goes.)
    if (o.variation) await splitIfCopying(p, 'P', PAIR_PI_BACKUP, 'S810', 'the formation copy J→P goes into P');
    await formPair(p, 'S810', PAIR_JP, 'J', 'P', 'async', 'never');
    result.s810TracksCopied = (await p.mustQuery('J', PAIR_JP, 'S810')).lastFormationTracksCopied;
  }
  if (o.variation) {
    // [0139]: P also copies asynchronously to I. Only now that J→P is duplex: J's formation copy into P would
    // otherwise be journaled onward to I in track order, and I would not be consistent.
    await formPair(p, 'S810', PAIR_PI_BACKUP, 'P', 'I', 'async', 'never');
    result.s810BackupTracksCopied = (await p.mustQuery('P', PAIR_PI_BACKUP, 'S810')).lastFormationTracksCopied;
  }
  p.step('S810', `reverse operation: R →sync J →async P${o.variation ? ' →async I (variation, [0139])' : ''}`);
  return result;
}

export interface FailbackOptions {
  /** ¶0135: when S900 answers suspend, resynchronise J→P first (duplex pending → duplex), then S910. */
  variant0135?: boolean;
  /** [0139]: the async pair P→I of reverse operation is split before a resynchronisation copies into P. */
  variation?: boolean;
  /** Liveness only: also resynchronise after failure suspend (once every fault is repaired), as embodiment 4's. */
  resyncAfterFailure?: boolean;
}

/** C2 Failback (host P, after host R stopped its work application; Fig. 17). Returns the report. */
export async function failback(p: CopyControlProgram, o: FailbackOptions = {}): Promise<Report> {
  let q: PairView | null = await p.query('P', PAIR_JP, 'S900');
  if (q) q = await p.queryStable('P', PAIR_JP, 'S900');
  const show = (v: PairView | null) => (v ? `${v.state}${v.failureCause !== 'none' ? ` (${v.failureCause})` : ''}` : 'not defined');
  p.step('S900', `async pair J→P at P: ${show(q)}`);
  if (q && q.role === 'destination' && (q.state === 'suspend' && o.variant0135 || q.state === 'failure suspend' && o.resyncAfterFailure)) {
    p.step('S900', `¶0135 variant: resynchronise J→P (formation copy of the differences) before retrieving`);
    // (Variation: the formation copy goes into P, out of which the async pair P→I copies; A2 resynchronises P→I.)
    if (o.variation) await splitIfCopying(p, 'P', PAIR_PI_BACKUP, 'S900', 'the formation copy J→P goes into P');
    await p.command('P', { op: 'resync', pairId: PAIR_JP, step: 'S900' }); // relayed to J, the source
    await p.waitState('P', PAIR_JP, ['duplex'], 'S900');
    const atJ = await p.mustQuery('J', PAIR_JP, 'S900'); // the source records what its formation copy did
    p.step('S900', `pair ${PAIR_JP} duplex after ${atJ.lastFormationCopy} formation copy of ${atJ.lastFormationTracksCopied} track(s)`);
    q = await p.queryStable('P', PAIR_JP, 'S900');
  }
  if (!q || q.role !== 'destination' || q.state !== 'duplex') return dataLossAtP(p, `async pair J→P was ${show(q)}`);
  const drained = await p.retrieveAll('P', PAIR_JP, 'S910');
  p.step('S910', `P retrieved all log information from 232J: pair ${drained.state}, applied through sequence ${drained.journalAppliedSeq}`);
  const after = await p.queryStable('P', PAIR_JP, 'S920');
  p.step('S920', `async pair J→P at P: ${show(after)}`);
  if (after.state === 'suspend') return p.report('S930', false, 'no data loss: P holds the most recent data written at R (through J)', AT_P);
  return dataLossAtP(p, `log information in 232J could not be retrieved (${show(after)})`);
}

/** S970 "data loss": a pair J→P still copying into P is split first, so P is a consistent (older) image and writable. */
async function dataLossAtP(p: CopyControlProgram, why: string): Promise<Report> {
  const jp = await p.query('P', PAIR_JP, 'S970');
  if (jp && jp.role === 'destination' && SPLITTABLE.includes(jp.state)) {
    p.step('S970', `async pair J→P is ${jp.state}: P retrieves what 232J holds, so P is consistent and writable`);
    if (jp.state === 'duplex') await p.retrieveAll('P', PAIR_JP, 'S970');
    else await p.queryStable('P', PAIR_JP, 'S970');
  }
  return p.report('S970', true, `data loss: ${why}; P holds consistent but not necessarily R's most recent data`, AT_P);
}
