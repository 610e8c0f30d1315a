// The command acceptance table (README): for every command, copy type and pair state, the firmware does it
// (ok), accepts it doing nothing (no-op), or refuses it naming the pair, its state and the command — and a
// refusal changes nothing. Each cell is walked live: a pair is driven into the state on the sim runtime.

import { describe, expect, it } from 'vitest';
import { acceptance, type Command } from '../firmware/commands.ts';
import { PairState, pairStateName } from '../firmware/pair-state.ts';
import { createCommand, PAIR, pairIn } from './fixtures.ts';

const STATES: PairState[] = [PairState.Simplex, PairState.InitialCopying, PairState.Duplex, PairState.Suspending,
  PairState.Suspend, PairState.FailureSuspend, PairState.DuplexPending];

function commandFor(op: string, copyType: 'sync' | 'async'): Command {
  if (op === 'create') return createCommand(copyType, 'full');
  return { op, pairId: PAIR } as Command;
}

describe('command acceptance table, walked live on the sim runtime', () => {
  for (const copyType of ['sync', 'async'] as const) {
    for (const state of STATES) {
      if (copyType === 'sync' && state === PairState.Suspending) continue; // Fig. 3 has no suspending
      for (const op of ['create', 'suspend', 'drain', 'resync', 'reverse', 'delete'] as const) {
        const expected = acceptance(op, copyType, state);
        it(`${copyType} pair in ${pairStateName(state)}: ${op} → ${expected}`, async () => {
          const w = await pairIn(pairStateName(state), copyType);
          const before = { A: w.definitionInformation('A'), B: w.definitionInformation('B') };
          expect(before.A[0]!.state).toBe(state);
          const r = await w.command('A', commandFor(op, copyType));
          if (expected === 'reject') {
            expect(r.ok).toBe(false);
            if (!r.ok) {
              expect(r.error).toContain(`${op} refused`);
              expect(r.error).toContain(`pair ${PAIR}`);
              expect(r.error).toContain(pairStateName(state));
            }
            const after = { A: w.definitionInformation('A'), B: w.definitionInformation('B') };
            // B mirrors A; while A drains (suspending) B's mirror moves on by itself, so only A is compared then.
            for (const sys of state === PairState.Suspending ? (['A'] as const) : (['A', 'B'] as const)) {
              expect(after[sys].map((p) => [p.state, p.role, p.direction, p.fence])).toEqual(before[sys].map((p) => [p.state, p.role, p.direction, p.fence]));
            }
          } else {
            expect(r.ok, r.ok ? '' : r.error).toBe(true);
            if (r.ok) expect(r.outcome).toBe(expected === 'ok' ? 'done' : 'no-op');
            if (expected === 'noop') expect(w.definitionInformation('A')[0]!.state).toBe(state);
            else if (op === 'delete') expect(w.definitionInformation('A')).toEqual([]);
            else if (op === 'reverse') {
              // The direction flips at once on the side that was told; the state stays until a resync.
              expect(w.definitionInformation('A')[0]!.role).toBe('destination');
              expect(w.definitionInformation('A')[0]!.direction).toBe('reverse');
            } else expect(w.definitionInformation('A')[0]!.state).not.toBe(state);
          }
          await w.close();
        });
      }
    }
  }

  it('an unknown pair is refused by number and changes nothing', async () => {
    const w = await pairIn('duplex', 'sync');
    const r = await w.command('A', { op: 'suspend', pairId: 99 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/unknown pair 99 on storage 0/);
    expect(w.definitionInformation('A')[0]!.state).toBe(PairState.Duplex);
    await w.close();
  });

  it('a malformed or unknown command is refused with its name', async () => {
    const w = await pairIn('simplex', 'sync');
    const r = await w.command('A', { op: 'explode', pairId: PAIR } as unknown as Command);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/unknown command 'explode'/);
    await w.close();
  });

  it('create with a missing LVOL, a bad fence or no journal is refused and defines nothing', async () => {
    const w = await pairIn('simplex', 'sync');
    await w.command('A', { op: 'delete', pairId: PAIR });
    const bad: Array<[Command, RegExp]> = [
      [{ op: 'create', initialCopy: 'full', pair: { pairId: 3, localLvol: 9, remoteStorageId: 1, remoteLvol: 0, copyType: 'sync', fence: 'data' } }, /LVOL 9 does not exist/],
      [{ op: 'create', initialCopy: 'full', pair: { pairId: 3, localLvol: 0, remoteStorageId: 1, remoteLvol: 0, copyType: 'sync', fence: 'maybe' as 'data' } }, /fence level must be/],
      [{ op: 'create', initialCopy: 'full', pair: { pairId: 3, localLvol: 0, remoteStorageId: 1, remoteLvol: 0, copyType: 'async', fence: 'never' } }, /journal volume on both sides/],
      [{ op: 'create', initialCopy: 'full', pair: { pairId: 3, localLvol: 0, remoteStorageId: 1, remoteLvol: 5, copyType: 'sync', fence: 'data' } }, /refused by storage 1: .*LVOL 5 does not exist/],
    ];
    for (const [cmd, re] of bad) {
      const r = await w.command('A', cmd);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(re);
      expect(w.definitionInformation('A')).toEqual([]);
      expect(w.definitionInformation('B')).toEqual([]);
    }
    await w.close();
  });
});
