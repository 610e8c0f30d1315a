// Forming and splitting pairs on the data volumes of a many-site embodiment (3 and 4): each async pair has its own
// journal volumes, given per pair id. The routines' step logs name the pair, its direction and its journals.

import type { FenceLevel, PairView } from '../../firmware/commands.ts';
import type { CopyControlProgram } from '../copy-control.ts';
import { DATA_LVOL, groupVolumes } from '../topology.ts';
import { STORAGE_ID } from './embodiment1.ts';
import { deletePair } from './embodiment2.ts';

export type System = keyof typeof STORAGE_ID;

/** States in which a pair copies (or is about to): split it before copying into its source. */
export const SPLITTABLE = ['duplex', 'duplex pending', 'initial copying', 'suspending'];

/** createPair, formPair and splitIfCopying for an embodiment whose async pairs use `JOURNALS[pairId]` = [source's, destination's]. */
export function pairForming(JOURNALS: Record<number, [number, number]>) {
  /** Creates a pair source→dest on the data volumes (journals per JOURNALS) and waits for duplex. */
  async function createPair(p: CopyControlProgram, step: string, pairId: number, source: System, dest: System, copyType: 'sync' | 'async',
    fence: FenceLevel, initialCopy: 'full' | 'none'): Promise<PairView> {
    const journals = JOURNALS[pairId];
    p.step(step, `form ${copyType} pair ${source}→${dest} (pair ${pairId})${initialCopy === 'full' ? ' with initial copying' : ' without formation copy'}` +
      (journals ? ` (journal LVOL ${journals[0]} at ${source}, LVOL ${journals[1]} at ${dest})` : ''));
    const create = () => p.command(source, {
      op: 'create', step, initialCopy,
      pair: { pairId, localLvol: DATA_LVOL, remoteStorageId: STORAGE_ID[dest], remoteLvol: DATA_LVOL, copyType, fence,
        volumes: groupVolumes(p.world.topology, source, dest), // the application's consistency group: data and log volume
        ...(journals ? { journalLvol: journals[0], remoteJournalLvol: journals[1] } : {}) },
    });
    for (let attempt = 1; ; attempt++) {
      try {
        await create();
        break;
      } catch (e) {
        // A half left at the destination by an earlier create whose reply was lost (or a late resend of it):
        // delete it and create again, as an operator would. Anything else is not ours to mend.
        if (attempt >= 3 || !new RegExp(`refused by storage ${STORAGE_ID[dest]}: .*already exists`).test((e as Error).message)) throw e;
        await deletePair(p, pairId, [dest, source], step, `a half of it was left at ${dest} by an earlier create`);
        await p.world.sleep(50_000);
      }
    }
    const v = await p.waitState(source, pairId, ['duplex'], step);
    p.step(step, `pair ${pairId} ${source}→${dest} duplex${initialCopy === 'full' ? ` (initial copying of ${v.lastFormationTracksCopied} tracks)` : ''}`);
    return v;
  }

  /**
   * Forms a pair so that `source` copies to `dest`: creates it (initial copying), or resynchronises it by
   * differences — reversing it first when it stands the other way round.
   */
  async function formPair(p: CopyControlProgram, step: string, pairId: number, source: System, dest: System, copyType: 'sync' | 'async', fence: FenceLevel): Promise<void> {
    const [atSource, atDest] = [await p.query(source, pairId, step), await p.query(dest, pairId, step)];
    if ((atSource === null) !== (atDest === null)) await deletePair(p, pairId, [source, dest], step, 'only one half of it is left');
    if (!atSource || !atDest) { await createPair(p, step, pairId, source, dest, copyType, fence, 'full'); return; }
    if (atSource.role === 'source' && atSource.state === 'duplex') return p.step(step, `pair ${pairId} ${source}→${dest} already duplex`);
    p.step(step, `pair ${pairId} exists (${atSource.role === 'source' ? 'same' : 'reverse'} direction, ${atSource.state}): resynchronise ${source}→${dest} by differences`);
    await p.reverseAndResync(source, pairId, step);
  }

  /**
   * Splits a pair that copies out of a volume before a formation copy goes into that volume: otherwise the copy,
   * made in track order, would be journaled onward and the next destination would not be prefix-consistent.
   */
  async function splitIfCopying(p: CopyControlProgram, system: System, pairId: number, step: string, why: string): Promise<void> {
    const v = await p.query(system, pairId, step);
    if (!v || !SPLITTABLE.includes(v.state)) return;
    p.step(step, `pair ${pairId} at ${system} is ${v.state}: split it — ${why}`);
    if (v.state === 'duplex' && v.copyType === 'async') await p.retrieveAll(system, pairId, step);
    else if (v.state !== 'suspending') await p.suspend(system, pairId, step);
    else await p.queryStable(system, pairId, step);
  }

  return { createPair, formPair, splitIfCopying };
}
