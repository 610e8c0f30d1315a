// Embodiment 4 (¶0140–0161): P, I, J, R in series, the same copy scheme in both directions.
//   normal operation:  P →sync I →async J →async R
//   reverse operation: R →sync J →async I →async P
// Routines with the source's step numbers:
//   A2 initial copying (host P; ¶0141, ¶0160): S100 sync pair P→I, S110 async pairs I→J and J→R
//   D1 failover (host R):            S1000–S1080 (Figs. 20, 21)
//   D2 reverse copying (host R):     S1100–S1110 (Fig. 22)
//   D3 failback (host P):            S1200–S1270 (Figs. 24, 25)
// J (normal) and I (reverse) are at once the destination of one asynchronous pair and the source of the next:
// each such pair has its own journal volume, LVOL 1 (232x) for the pair I–J and LVOL 2 (232x-2) for the other.

import type { FenceLevel } from '../../firmware/commands.ts';
import type { CopyControlProgram, Report } from '../copy-control.ts';
import { DATA_LVOL, JOURNAL_LVOL, SECOND_JOURNAL_LVOL } from '../topology.ts';
import { deletePair } from './embodiment2.ts';
import { pairForming, SPLITTABLE } from './pair-forming.ts';

/** Pair ids: the normal-operation pairs 1–3, the reverse-operation pairs 4 (R→J sync) and 5 (I→P async). */
export const PAIR_PI = 1; // sync P→I
export const PAIR_IJ = 2; // async I→J; reversed to J→I at S1100
export const PAIR_JR = 3; // async J→R; deleted at S1060
export const PAIR_RJ = 4; // sync R→J, formed at S1070
export const PAIR_IP = 5; // async I→P, formed at S1110, deleted at S1250

/** Journal volumes of each async pair: [source's, destination's]. The pair I–J keeps 232I/232J in both directions. */
const JOURNALS: Record<number, [number, number]> = {
  [PAIR_IJ]: [JOURNAL_LVOL, JOURNAL_LVOL],
  [PAIR_JR]: [SECOND_JOURNAL_LVOL, JOURNAL_LVOL], // 232J-2 → 232R
  [PAIR_IP]: [SECOND_JOURNAL_LVOL, JOURNAL_LVOL], // 232I-2 → 232P
};

const AT_R = { system: 'R', lvol: DATA_LVOL }, AT_P = { system: 'P', lvol: DATA_LVOL };

const { createPair, formPair, splitIfCopying } = pairForming(JOURNALS);




export interface InitialCopyingOptions {
  syncFence?: FenceLevel;
}

/**
 * A2 Initial copying for the 4-site cascade (host P; ¶0141), also the return to normal operation after D3
 * (¶0160): S100 sync pair P→I, S110 async pairs I→J and J→R. Each formation copy goes into a volume whose
 * outgoing async pair is split first. Pairs of reverse operation still defined (I→P, R→J) are deleted.
 * Safe to run again: existing pairs are resynchronised by differences.
 */
export async function initialCopying(p: CopyControlProgram, o: InitialCopyingOptions = {}): Promise<void> {
  await deletePair(p, PAIR_IP, ['P', 'I'], 'S100', 'reverse operation is over (S1250 normally deleted it)');
  const pi = await p.query('P', PAIR_PI, 'S100');
  if (!pi || pi.role !== 'source' || pi.state !== 'duplex') await splitIfCopying(p, 'I', PAIR_IJ, 'S100', 'the formation copy P→I goes into I');
  await formPair(p, 'S100', PAIR_PI, 'P', 'I', 'sync', o.syncFence ?? 'data');
  // S110 (¶0160): the async pairs I→J and J→R are formed again. The sync pair R→J of reverse operation gives way.
  await deletePair(p, PAIR_RJ, ['R', 'J'], 'S110', 'reverse operation is over: J copies to R asynchronously again');
  const ij = await p.query('I', PAIR_IJ, 'S110');
  if (!ij || ij.role !== 'source' || ij.state !== 'duplex') await splitIfCopying(p, 'J', PAIR_JR, 'S110', 'the formation copy I→J goes into J');
  await formPair(p, 'S110', PAIR_IJ, 'I', 'J', 'async', 'never');
  await formPair(p, 'S110', PAIR_JR, 'J', 'R', 'async', 'never');
  p.step('S110', 'normal operation: P →sync I →async J →async R');
}

export interface FailoverOptions {
  /**
   * ¶0150: host R's work application restarted after S1050 but before S1070 (the host knows whether its own
   * application runs). S1070 then needs a formation copy R→J.
   */
  workRestarted?: () => boolean;
  /** ¶0148: S1060–S1070 may be omitted when no backup to J is wanted. */
  backupToJ?: boolean;
}

/**
 * A destination retrieves all log information of its async pair (if duplex) and then queries the pair: `lacking`
 * says why it did not end in suspend (the retrieval could not be made, or ended in failure suspend), or is null.
 */
async function retrieveAndQuery(p: CopyControlProgram, o: { at: 'J' | 'R'; pairId: number; label: string; journal: string; retrieveStep: string; queryStep: string }):
  Promise<{ lacking: string | null }> {
  const before = await p.queryStable(o.at, o.pairId, o.retrieveStep);
  if (before.state === 'duplex') {
    const drained = await p.retrieveAll(o.at, o.pairId, o.retrieveStep);
    p.step(o.retrieveStep, `${o.at}'s retrieval of all log information from ${o.journal} ended: pair ${drained.state}, applied through sequence ${drained.journalAppliedSeq}`);
  } else {
    p.step(o.retrieveStep, `async pair ${o.label} at ${o.at} is ${before.state}: its log information cannot be retrieved`);
  }
  const after = await p.queryStable(o.at, o.pairId, o.queryStep);
  p.step(o.queryStep, `async pair ${o.label} at ${o.at}: ${after.state}${after.failureCause !== 'none' ? ` (${after.failureCause})` : ''}`);
  if (before.state !== 'duplex') return { lacking: `async pair ${o.label} was ${before.state}` };
  return { lacking: after.state === 'suspend' ? null : `async pair ${o.label} was ${after.state} (${after.failureCause})` };
}

/** D1 Failover (host R; Figs. 20, 21). Returns the report. */
export async function failover(p: CopyControlProgram, o: FailoverOptions = {}): Promise<Report> {
  await p.detectProductionFailure('S1000');
  // S1010: J retrieves all log information from I (pair I→J suspending → suspend / failure suspend); S1020 query.
  const ij = await retrieveAndQuery(p, { at: 'J', pairId: PAIR_IJ, label: 'I→J', journal: '232I', retrieveStep: 'S1010', queryStep: 'S1020' });
  if (ij.lacking) return dataLossAtR(p, `${ij.lacking}; J lacks log information of I`);
  // S1030: R retrieves all from J — J has journaled onward (232J-2) every entry it applied at S1010; S1040 query.
  const jr = await retrieveAndQuery(p, { at: 'R', pairId: PAIR_JR, label: 'J→R', journal: '232J-2', retrieveStep: 'S1030', queryStep: 'S1040' });
  if (jr.lacking) return dataLossAtR(p, `${jr.lacking}; R lacks log information of J`);
  // As embodiment 1's S240: with fence level status or never, P may have acknowledged writes I never got.
  const sync = await p.query('I', PAIR_PI, 'S1040');
  if (sync && sync.state === 'failure suspend' && sync.fence !== 'data') {
    return p.report('S1080', true, `data loss: sync pair P→I was in failure suspend (${sync.failureCause}) with fence level ${sync.fence}; storage P may have acknowledged writes that never reached I`, AT_R);
  }
  const report = p.report('S1050', false, 'no data loss: R holds every write acknowledged to host P', AT_R);
  if (o.backupToJ === false) return report;
  // Host R's writes since S1030 are in R's difference bitmap of pair J→R (R is its suspended destination).
  const dirtyAtR = (await p.mustQuery('R', PAIR_JR, 'S1060')).dirtyTracks;
  await deletePair(p, PAIR_JR, ['R', 'J'], 'S1060', 'R becomes the production site; J is backed up synchronously from R');
  // S1070 (¶0149): J and R hold the same data after S1010 and S1030, so no formation copy is needed — unless
  // host R has written since (¶0150: work restarted before S1070).
  const written = dirtyAtR > 0 || (o.workRestarted?.() ?? false);
  if (written) p.step('S1070', `host R has written since S1030 (${dirtyAtR} track(s) marked at R${o.workRestarted?.() ? '; its work application restarted' : ''}): formation copy needed (¶0150)`);
  await createPair(p, 'S1070', PAIR_RJ, 'R', 'J', 'sync', 'data', written ? 'full' : 'none');
  return report;
}

/**
 * S1080 / S1270 "data loss" at the surviving volume (R, or P on failback). If the async pair into it is still
 * copying, it is split first, retrieving what its source's journal holds: the volume is then a consistent (older)
 * image that the work application may use (a destination being copied into is write-protected).
 */
async function dataLossAt(p: CopyControlProgram, at: { step: string; system: 'R' | 'P'; pairId: number; label: string; journal: string }, why: string): Promise<Report> {
  const inbound = await p.query(at.system, at.pairId, at.step);
  if (inbound && inbound.role === 'destination' && SPLITTABLE.includes(inbound.state)) {
    p.step(at.step, `async pair ${at.label} is ${inbound.state}: ${at.system} retrieves what ${at.journal} holds, so ${at.system} is consistent and writable`);
    if (inbound.state === 'duplex') await p.retrieveAll(at.system, at.pairId, at.step);
    else await p.queryStable(at.system, at.pairId, at.step);
  }
  return p.report(at.step, true, `data loss: ${why}; ${at.system} holds consistent but not the most recent data`, at.system === 'R' ? AT_R : AT_P);
}

const dataLossAtR = (p: CopyControlProgram, why: string) => dataLossAt(p, { step: 'S1080', system: 'R', pairId: PAIR_JR, label: 'J→R', journal: '232J-2' }, why);

/**
 * D2 Reverse copying (host R, once the failures at the production site are cleared; Fig. 22): S1100 reverse
 * the async pair I→J to J→I and resynchronise it, S1110 form the async pair I→P. Safe to run again.
 */
export async function reverseCopying(p: CopyControlProgram): Promise<void> {
  // (Liveness, or a failover that ended at S1080 / stopped before S1070: the sync pair R→J is formed first.)
  const rj = await p.query('R', PAIR_RJ, 'S1100');
  if (!rj || rj.role !== 'source' || rj.state !== 'duplex') {
    p.step('S1100', 'sync pair R→J is not duplex (the failover did not reach S1070): form it first');
    await deletePair(p, PAIR_JR, ['R', 'J'], 'S1100', 'R is the production site');
    await splitIfCopying(p, 'J', PAIR_IJ, 'S1100', 'J can be the destination of one copying pair only, and R→J copies into J');
    await formPair(p, 'S1100', PAIR_RJ, 'R', 'J', 'sync', 'data');
  }
  // A run again after S1110: I→P copies out of I, into which S1100 copies.
  await splitIfCopying(p, 'I', PAIR_IP, 'S1100', 'the formation copy J→I goes into I');
  await formPair(p, 'S1100', PAIR_IJ, 'J', 'I', 'async', 'never');
  // S1110: P's sync pair P→I (failure suspend since the disaster) must not copy while I copies to P.
  await splitIfCopying(p, 'P', PAIR_PI, 'S1110', 'I copies to P asynchronously in reverse operation');
  const ip = await p.query('I', PAIR_IP, 'S1110');
  if (ip && ip.role === 'source' && ip.state === 'duplex') p.step('S1110', 'async pair I→P already duplex');
  else await formPair(p, 'S1110', PAIR_IP, 'I', 'P', 'async', 'never');
  p.step('S1110', 'reverse operation: R →sync J →async I →async P');
}

export interface FailbackOptions {
  /**
   * As ¶0106/¶0120 in embodiments 1 and 2: a suspended pair J→I or I→P is resynchronised (differences only)
   * before the retrieval, so failback can still be without data loss. The liveness phase uses it.
   */
  resyncFirst?: boolean;
}

/** D3 Failback (host P, after host R stopped its work application; Figs. 24, 25). Returns the report. */
export async function failback(p: CopyControlProgram, o: FailbackOptions = {}): Promise<Report> {
  // S1200: I retrieves all log information from J (pair J→I suspending → suspend / failure suspend).
  let ji = await p.queryStable('I', PAIR_IJ, 'S1200');
  if (o.resyncFirst && ji.role === 'destination' && (ji.state === 'suspend' || ji.state === 'failure suspend')) {
    await splitIfCopying(p, 'I', PAIR_IP, 'S1200', 'a resynchronisation J→I copies into I');
    p.step('S1200', `async pair J→I at I is ${ji.state}: resynchronise it first (differences only)`);
    await p.resyncToDuplex('J', PAIR_IJ, 'S1200');
    ji = await p.queryStable('I', PAIR_IJ, 'S1200');
  }
  const retrievable = ji.role === 'destination' && ji.state === 'duplex';
  if (retrievable) {
    const drained = await p.retrieveAll('I', PAIR_IJ, 'S1200');
    p.step('S1200', `I's retrieval of all log information from 232J ended: pair ${drained.state}, applied through sequence ${drained.journalAppliedSeq}`);
  } else {
    p.step('S1200', `async pair J→I at I is ${ji.state}${ji.role === 'source' ? ' (not reversed: I→J)' : ''}: its log information cannot be retrieved`);
  }
  const jiAfter = await p.queryStable('I', PAIR_IJ, 'S1210');
  p.step('S1210', `async pair J→I at I: ${jiAfter.state}${jiAfter.failureCause !== 'none' ? ` (${jiAfter.failureCause})` : ''}`);
  if (!retrievable || jiAfter.state !== 'suspend') return dataLossAtP(p, `async pair J→I was ${!retrievable ? ji.state : `${jiAfter.state} (${jiAfter.failureCause})`}; I lacks log information of J`);
  // S1220: P retrieves all from I — I has journaled onward (232I-2) every entry it applied at S1200.
  let ip = await p.query('P', PAIR_IP, 'S1220');
  if (ip && o.resyncFirst && ip.role === 'destination' && (ip.state === 'suspend' || ip.state === 'failure suspend')) {
    p.step('S1220', `async pair I→P at P is ${ip.state}: resynchronise it first (differences only)`);
    await p.resyncToDuplex('I', PAIR_IP, 'S1220');
    ip = await p.queryStable('P', PAIR_IP, 'S1220');
  }
  if (ip) ip = await p.queryStable('P', PAIR_IP, 'S1220');
  const ipRetrievable = ip !== null && ip.role === 'destination' && ip.state === 'duplex';
  if (ipRetrievable) {
    const drained = await p.retrieveAll('P', PAIR_IP, 'S1220');
    p.step('S1220', `P's retrieval of all log information from 232I-2 ended: pair ${drained.state}, applied through sequence ${drained.journalAppliedSeq}`);
  } else {
    p.step('S1220', `async pair I→P at P is ${ip ? ip.state : 'not defined'}: its log information cannot be retrieved`);
  }
  const ipAfter = ip ? await p.queryStable('P', PAIR_IP, 'S1230') : null;
  p.step('S1230', `async pair I→P at P: ${ipAfter ? `${ipAfter.state}${ipAfter.failureCause !== 'none' ? ` (${ipAfter.failureCause})` : ''}` : 'not defined'}`);
  if (!ipRetrievable || ipAfter?.state !== 'suspend') return dataLossAtP(p, `async pair I→P was ${!ipRetrievable ? (ip?.state ?? 'not defined') : `${ipAfter?.state} (${ipAfter?.failureCause})`}; P lacks log information of I`);
  const report = p.report('S1240', false, 'no data loss: P holds the most recent data written at R', AT_P);
  await deletePair(p, PAIR_IP, ['P', 'I'], 'S1250', 'P is the production site again');
  // S1260: pair 1 has stood P→I since normal operation (failure suspend): a formation copy of the differences
  // (P's marks from S1110's copy into P, I's from S1100 and S1200) resynchronises it; created anew if absent.
  await formPair(p, 'S1260', PAIR_PI, 'P', 'I', 'sync', 'data');
  return report;
}

const dataLossAtP = (p: CopyControlProgram, why: string) => dataLossAt(p, { step: 'S1270', system: 'P', pairId: PAIR_IP, label: 'I→P', journal: '232I-2' }, why);
