// Embodiment 1 (P–I–R in series, links S1 and S2): the copy control program's routines A2–A6 with the
// source's step numbers. Each routine runs on one host and ends with what it did and, where the source
// says so, a report of "data loss" or "no data loss".

import type { FenceLevel, PairView } from '../../firmware/commands.ts';
import { DATA_LVOL, groupVolumes, JOURNAL_LVOL } from '../topology.ts';
import type { CopyControlProgram, Report } from '../copy-control.ts';

const AT_R = { system: 'R', lvol: DATA_LVOL }, AT_P = { system: 'P', lvol: DATA_LVOL };

/** Pair ids of embodiment 1: the synchronous pair between P and I, the asynchronous pair between I and R. */
export const PAIR_PI = 1;
export const PAIR_IR = 2;

export const STORAGE_ID = { P: 0, I: 1, J: 2, R: 3 } as const;

export interface Embodiment1Options {
  /** Fence level of the synchronous pair (definition information). Products require data on a cascade's sync leg. */
  syncFence?: FenceLevel;
}

/**
 * Forms a pair so that `source` copies to `dest`, whatever exists: creates it (initial copying → duplex),
 * or — when the pair exists the other way round — reverses it and resynchronises only the differences.
 * Returns the pair as its source sees it once duplex (what its formation copy copied).
 */
export async function formPair(p: CopyControlProgram, step: string, pairId: number, source: keyof typeof STORAGE_ID, dest: keyof typeof STORAGE_ID,
  copyType: 'sync' | 'async', fence: FenceLevel): Promise<PairView> {
  const existing = await p.query(source, pairId, step);
  if (!existing) {
    p.step(step, `form ${copyType} pair ${source}→${dest} (pair ${pairId}) with initial copying`);
    await p.command(source, {
      op: 'create', step, initialCopy: 'full',
      pair: { pairId, localLvol: DATA_LVOL, remoteStorageId: STORAGE_ID[dest], remoteLvol: DATA_LVOL, copyType, fence,
        volumes: groupVolumes(p.world.topology, source, dest), // the application's consistency group: data and log volume
        ...(copyType === 'async' ? { journalLvol: JOURNAL_LVOL, remoteJournalLvol: JOURNAL_LVOL } : {}) },
    });
    const v = await p.waitState(source, pairId, ['duplex'], step);
    p.step(step, `pair ${pairId} ${source}→${dest} duplex (initial copying of ${v.lastFormationTracksCopied} tracks)`);
    return v;
  }
  p.step(step, `pair ${pairId} exists (${existing.sourceStorageId === STORAGE_ID[source] ? 'same' : 'reverse'} direction, ${existing.state}): resynchronise ${source}→${dest}`);
  return p.reverseAndResync(source, pairId, step);
}

/**
 * A2 Initial copying (host P): S100 sync pair P→I, S110 async pair I→R (instruction through P). Returns the sync
 * pair as P saw it at S100's end (what its formation copy copied).
 */
export async function initialCopying(p: CopyControlProgram, o: Embodiment1Options = {}): Promise<{ s100: PairView }> {
  // A formation copy into I while the async pair at I copies would be journaled onward to its destination in
  // track order, breaking that destination's consistency: split the async pair first (S110 resynchronises it).
  const pi = await p.query('P', PAIR_PI, 'S100');
  if (!pi || pi.role !== 'source' || pi.state !== 'duplex') {
    const ir = await p.query('I', PAIR_IR, 'S100');
    if (ir && ['duplex', 'duplex pending', 'initial copying', 'suspending'].includes(ir.state)) {
      p.step('S100', `async pair ${PAIR_IR} at I is ${ir.state}: split it before copying into I`);
      if (ir.state === 'duplex') await p.retrieveAll('I', PAIR_IR, 'S100');
      else await p.suspend('I', PAIR_IR, 'S100');
    }
  }
  const s100 = await formPair(p, 'S100', PAIR_PI, 'P', 'I', 'sync', o.syncFence ?? 'data');
  await formPair(p, 'S110', PAIR_IR, 'I', 'R', 'async', 'never');
  return { s100 };
}

export interface FailoverOptions {
  /** S260–S270 may be skipped when no backup to I is wanted. */
  reverseToIntermediate?: boolean;
}

/** A3 Failover (host R). Returns the report. */
export async function failover(p: CopyControlProgram, o: FailoverOptions = {}): Promise<Report> {
  await p.detectProductionFailure('S200');
  const q = await p.queryStable('R', PAIR_IR, 'S210');
  p.step('S210', `async pair I→R at R: ${q.state}`);
  if (q.state !== 'duplex') {
    return p.report('S220', true, `data loss: async pair I→R is ${q.state}${q.failureCause !== 'none' ? ` (${q.failureCause})` : ''}; R holds consistent but not the most recent data`, AT_R);
  }
  const drained = await p.retrieveAll('R', PAIR_IR, 'S230');
  p.step('S230', `retrieved all log information from 232I: pair ${drained.state}, applied through sequence ${drained.journalAppliedSeq}`);
  const after = await p.queryStable('R', PAIR_IR, 'S240');
  p.step('S240', `async pair I→R at R: ${after.state}`);
  if (after.state !== 'suspend') {
    return p.report('S220', true, `data loss: log information could not be retrieved (${after.state}, ${after.failureCause})`, AT_R);
  }
  // I is current with P only if P could not acknowledge a write that I lacks. With fence level data P refuses
  // such writes. With status or never, I cannot tell a crash of P from a cut of S1 after which P went on
  // acknowledging (a rolling disaster), so a failure-suspended sync pair means possible data loss.
  const sync = await p.query('I', PAIR_PI, 'S240');
  if (sync && sync.state === 'failure suspend' && sync.fence !== 'data') {
    return p.report('S220', true, `data loss: sync pair P→I was in failure suspend (${sync.failureCause}) with fence level ${sync.fence}; storage P may have acknowledged writes that never reached I`, AT_R);
  }
  const report = p.report('S250', false, 'no data loss: R holds every write acknowledged to host P', AT_R);
  if (o.reverseToIntermediate !== false) {
    await p.command('R', { op: 'reverse', pairId: PAIR_IR, step: 'S260' });
    await p.resyncToDuplex('R', PAIR_IR, 'S270');
  }
  return report;
}

/** A4 Reverse copying (host R, once all failures are cleared). */
export async function reverseCopying(p: CopyControlProgram, o: Embodiment1Options = {}): Promise<void> {
  // Claim 3: R never copies to I while I copies to P. A run interrupted after S330 and run again finds I→P
  // copying; split it first, as S340 would have.
  const ip = await p.query('I', PAIR_PI, 'S300');
  if (ip && ip.role === 'source' && ['duplex', 'duplex pending', 'initial copying'].includes(ip.state)) {
    p.step('S300', `sync pair I→P is ${ip.state} (an earlier run reached S330): split it before R copies to I`);
    await p.suspend('I', PAIR_PI, 'S300');
  }
  const ir = await p.query('R', PAIR_IR, 'S300');
  if (ir && ir.role === 'source' && ir.state === 'duplex') p.step('S300', 'async pair R→I already duplex (S270 done): skipped');
  else await formPair(p, 'S300', PAIR_IR, 'R', 'I', 'async', 'never');
  const drained = await p.retrieveAll('R', PAIR_IR, 'S310');
  if (drained.state !== 'suspend') p.fail('S320', `async pair R→I ended ${drained.state} (${drained.failureCause}) instead of suspend`);
  p.step('S320', `232R shipped to I: pair R→I suspend (applied through ${drained.journalAppliedSeq})`);
  await formPair(p, 'S330', PAIR_PI, 'I', 'P', 'sync', o.syncFence ?? 'data');
  await p.suspend('I', PAIR_PI, 'S340');
  await p.resyncToDuplex('R', PAIR_IR, 'S340');
}

export interface ReverseCopyControlOptions {
  cycles: number;
  /** S440: interval between cycles (or until the journal holds a given amount). */
  intervalUs: number;
  /** Start a cycle early once 232R holds this many entries. */
  journalEntriesTrigger?: number;
}

/**
 * A5 Reverse copy control (host R, repeating). Claim 3 interlock: R never copies to I while I copies to P,
 * and I never copies to P while R copies to I — checked before every resynchronisation.
 */
export async function reverseCopyControl(p: CopyControlProgram, o: ReverseCopyControlOptions): Promise<number> {
  let cycles = 0;
  for (; cycles < o.cycles; cycles++) {
    await waitInterval(p, o);
    const drained = await p.retrieveAll('R', PAIR_IR, 'S400');
    if (drained.state !== 'suspend') p.fail('S410', `async pair R→I ended ${drained.state} (${drained.failureCause})`);
    p.step('S410', `cycle ${cycles + 1}: 232R shipped to I through sequence ${drained.journalAppliedSeq}; pair R→I suspend`);
    await assertNotCopying(p, 'R', PAIR_IR, 'S420');
    await p.reverseAndResync('I', PAIR_PI, 'S420');
    await p.suspend('I', PAIR_PI, 'S430');
    await assertNotCopying(p, 'I', PAIR_PI, 'S430');
    await p.resyncToDuplex('R', PAIR_IR, 'S430');
    p.step('S440', `cycle ${cycles + 1} done`);
  }
  return cycles;
}

async function waitInterval(p: CopyControlProgram, o: ReverseCopyControlOptions): Promise<void> {
  const start = p.world.nowUs();
  while (p.world.nowUs() - start < o.intervalUs) {
    if (o.journalEntriesTrigger !== undefined) {
      const v = await p.mustQuery('R', PAIR_IR, 'S440');
      if (v.journalEntries >= o.journalEntriesTrigger) return;
    }
    await p.world.sleep(Math.min(o.intervalUs, 10_000));
  }
}

/** The interlock check: a pair that must not copy now must be suspended. */
async function assertNotCopying(p: CopyControlProgram, system: string, pairId: number, step: string): Promise<void> {
  const v = await p.mustQuery(system, pairId, step);
  if (v.state !== 'suspend') p.fail(step, `interlock (claim 3): pair ${pairId} must be suspended before the other pair copies, is ${v.state}`);
}

export interface FailbackOptions {
  /** ¶0106: when S500 answers suspend, resynchronise first so failback can still be without data loss. */
  variant0106?: boolean;
}

/**
 * A6 Failback (host P, after host R stopped its work application). Returns the report. Every resynchronisation
 * of the sync pair makes I its source first: if A4 never got as far as reversing it (S330), resynchronising it
 * as it stands would copy P's old data over R's (found by a seed sweep).
 */
export async function failback(p: CopyControlProgram, o: FailbackOptions = {}): Promise<Report> {
  let q = await p.queryStable('I', PAIR_IR, 'S500');
  p.step('S500', `async pair R→I at I: ${q.state}`);
  if (q.state === 'suspend' && o.variant0106) {
    p.step('S500', '¶0106 variant: resynchronise and suspend I→P, resynchronise R→I to duplex, then retrieve');
    await p.reverseAndResync('I', PAIR_PI, 'S500');
    await p.suspend('I', PAIR_PI, 'S500');
    await p.resyncToDuplex('I', PAIR_IR, 'S500');
    q = await p.queryStable('I', PAIR_IR, 'S500');
  }
  if (q.state === 'duplex') {
    const drained = await p.retrieveAll('I', PAIR_IR, 'S510');
    p.step('S510', `I retrieved all of 232R: pair ${drained.state}`);
    const after = await p.queryStable('I', PAIR_IR, 'S520');
    p.step('S520', `async pair R→I at I: ${after.state}`);
    if (after.state === 'suspend') {
      await p.reverseAndResync('I', PAIR_PI, 'S530');
      await p.suspend('I', PAIR_PI, 'S530');
      return p.report('S540', false, 'no data loss: P holds the most recent data written at R', AT_P);
    }
  }
  await p.reverseAndResync('I', PAIR_PI, 'S550');
  await p.suspend('I', PAIR_PI, 'S560');
  return p.report('S570', true, `data loss: the async pair R→I was ${q.state === 'duplex' ? 'not drained' : q.state}; P holds I's data, not necessarily R's newest`, AT_P);
}
