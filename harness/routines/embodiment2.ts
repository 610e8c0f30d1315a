// Embodiment 2 (¶0109–0121): P–I–R in series as embodiment 1, plus communication circuit S5 directly between
// P and R; journal volume 232P is required. Initial copying (A2) and failover (A3) are embodiment 1's. Reverse
// operation copies R→P directly, asynchronously, so there is no reverse copy control routine:
//   B1 reverse copying (host R): S600 delete the async pair R–I, S610 form the async pair R→P over S5;
//   B2 failback (host P):        S700 query R→P at P, S710 P retrieves all of 232R, S720 query,
//                                S730 "no data loss" / S740 "data loss"; ¶0120 resynchronises a suspended pair first.
// Then A2 returns the system to normal operation (¶0121).
//
// A3 here keeps S260–S270 (the async pair reversed to R→I and resynchronised), so host R's writes before B1
// are backed up to I; S600 then deletes that pair, which also frees 232R, the journal volume of the new pair.

import type { PairView } from '../../firmware/commands.ts';
import type { CopyControlProgram, Report } from '../copy-control.ts';
import { DATA_LVOL } from '../topology.ts';
import { formPair, initialCopying as initialCopying1, PAIR_IR, type Embodiment1Options } from './embodiment1.ts';

export { failover } from './embodiment1.ts';

/** Pair id of the asynchronous pair R→P over S5 (pairs 1 and 2 are embodiment 1's P–I and I–R). */
export const PAIR_RP = 3;

const AT_P = { system: 'P', lvol: DATA_LVOL };

/**
 * Deletes a pair at both its storage systems. A delete tells the partner; over a cut link the partner keeps
 * its half (and its journal volume in use), so a half still there after a while is deleted where it is.
 */
export async function deletePair(p: CopyControlProgram, pairId: number, systems: [string, string], step: string, why: string): Promise<boolean> {
  let deleted = false;
  for (const system of systems) {
    // After the first delete, give the partner a moment to hear of it (a frame over S2 or S5).
    for (let waitedUs = 0; deleted && waitedUs < 200_000 && (await p.query(system, pairId, step)); waitedUs += p.pollUs) await p.world.sleep(p.pollUs);
    if (!(await p.query(system, pairId, step))) continue;
    if (!deleted) p.step(step, `delete pair ${pairId} (${systems.join('–')}): ${why}`);
    try {
      await p.command(system, { op: 'delete', pairId, step });
    } catch (e) {
      if (!/unknown pair/.test((e as Error).message)) throw e; // deleted by its partner's frame meanwhile
    }
    deleted = true;
  }
  return deleted;
}

/**
 * B1 Reverse copying (host R, once the failures at the production site are cleared; ¶0112–0115).
 * Safe to run again: an existing pair R→P is resynchronised (differences only) instead of formed anew.
 */
export async function reverseCopying(p: CopyControlProgram): Promise<void> {
  // S600: the async pair R–I (I→R, or R→I after S260–S270) is deleted if it exists.
  if (!(await deletePair(p, PAIR_IR, ['R', 'I'], 'S600', 'reverse operation copies R→P directly over S5; 232R is freed for it'))) {
    p.step('S600', `no async pair R–I (pair ${PAIR_IR}): nothing to delete`);
  }
  // S610: async pair R→P over S5 with formation copying (initial copying → duplex).
  const [atR, atP] = [await p.query('R', PAIR_RP, 'S610'), await p.query('P', PAIR_RP, 'S610')];
  // A half left by an earlier delete that the other side missed (over a cut S5, or while it was powered off).
  if ((atR === null) !== (atP === null)) await deletePair(p, PAIR_RP, ['P', 'R'], 'S610', `a half left at ${atR ? 'R' : 'P'} by an earlier delete the other side missed`);
  else if (atR && atR.role === 'source' && atR.state === 'duplex') return p.step('S610', `async pair R→P already duplex: nothing to do`);
  await formPair(p, 'S610', PAIR_RP, 'R', 'P', 'async', 'never');
  p.step('S610', 'reverse operation: host R\'s writes are copied R→P asynchronously over S5 (journal 232R → 232P)');
}

export interface FailbackOptions {
  /** ¶0120: when S700 answers suspend, resynchronise R→P first (formation copy → duplex), then S710. */
  variant0120?: boolean;
}

/** B2 Failback (host P, after host R stopped its work application; ¶0116–0120). Returns the report. */
export async function failback(p: CopyControlProgram, o: FailbackOptions = {}): Promise<Report> {
  let q: PairView = await p.queryStable('P', PAIR_RP, 'S700');
  p.step('S700', `async pair R→P at P: ${q.state}${q.failureCause !== 'none' ? ` (${q.failureCause})` : ''}`);
  if (q.state === 'suspend' && o.variant0120) {
    p.step('S700', '¶0120 variant: resynchronise R→P (formation copy of the differences) before retrieving');
    await p.command('P', { op: 'resync', pairId: PAIR_RP, step: 'S700' }); // relayed to R, the source
    await p.waitState('P', PAIR_RP, ['duplex'], 'S700');
    const atR = await p.mustQuery('R', PAIR_RP, 'S700'); // the source records what its formation copy did
    p.step('S700', `pair ${PAIR_RP} duplex after ${atR.lastFormationCopy} formation copy of ${atR.lastFormationTracksCopied} track(s)`);
    q = await p.queryStable('P', PAIR_RP, 'S700');
  }
  if (q.state !== 'duplex') {
    return p.report('S740', true, `data loss: async pair R→P was ${q.state}${q.failureCause !== 'none' ? ` (${q.failureCause})` : ''}; P holds consistent but not necessarily R's most recent data`, AT_P);
  }
  const drained = await p.retrieveAll('P', PAIR_RP, 'S710');
  p.step('S710', `P retrieved all of 232R: pair ${drained.state}, applied through sequence ${drained.journalAppliedSeq}`);
  const after = await p.queryStable('P', PAIR_RP, 'S720');
  p.step('S720', `async pair R→P at P: ${after.state}`);
  if (after.state === 'suspend') return p.report('S730', false, 'no data loss: P holds the most recent data written at R', AT_P);
  return p.report('S740', true, `data loss: log information in 232R could not be retrieved (${after.state}, ${after.failureCause}); P holds consistent but not the most recent data`, AT_P);
}

/**
 * A2 after failback (¶0121): normal operation P →sync I →async R again. Pair R→P is deleted first — its
 * source holds 232R, the journal volume S110's pair I→R needs (one journal volume per system) — and halves of
 * pair R–I left by a delete over a cut link go too. S100 resynchronises P→I by differences (P's bitmap holds
 * every track B1/B2 wrote, I's every track R wrote before S600); S110 forms I→R with initial copying, because
 * S600 deleted that pair.
 */
export async function initialCopying(p: CopyControlProgram, o: Embodiment1Options = {}): Promise<void> {
  await deletePair(p, PAIR_RP, ['P', 'R'], 'S100', 'reverse operation is over; S110 needs 232R for the async pair I→R');
  const [atI, atR] = [await p.query('I', PAIR_IR, 'S100'), await p.query('R', PAIR_IR, 'S100')];
  if ((atI === null) !== (atR === null)) await deletePair(p, PAIR_IR, ['I', 'R'], 'S100', 'only one half of it is left');
  await initialCopying1(p, o);
}
