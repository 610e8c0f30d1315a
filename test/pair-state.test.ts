// Fig. 3 (synchronous) and Fig. 4 (asynchronous) as tables: every ordered pair of states is either a legal
// transition or not, and the tables say exactly which.

import { describe, expect, it } from 'vitest';
import { isLegalTransition, legalTransitions, PairState, PAIR_STATE_NAMES, parsePairState, pairStateName } from '../firmware/pair-state.ts';

const S = PairState;
const all = Object.values(S).filter((v) => typeof v === 'number') as PairState[];

const fig3: Array<[PairState, PairState]> = [
  [S.Simplex, S.InitialCopying], [S.Simplex, S.Duplex], [S.InitialCopying, S.Duplex], [S.InitialCopying, S.Suspend],
  [S.InitialCopying, S.FailureSuspend], [S.Duplex, S.Suspend], [S.Duplex, S.FailureSuspend], [S.Suspend, S.DuplexPending],
  [S.Suspend, S.FailureSuspend], [S.FailureSuspend, S.DuplexPending], [S.DuplexPending, S.Duplex], [S.DuplexPending, S.Suspend],
  [S.DuplexPending, S.FailureSuspend],
];
const fig4: Array<[PairState, PairState]> = [
  ...fig3.filter(([f, t]) => !(f === S.Duplex && t === S.Suspend)),
  [S.Duplex, S.Suspending], [S.Suspending, S.Suspend], [S.Suspending, S.FailureSuspend],
];

describe('Fig. 3 / Fig. 4 transition tables', () => {
  for (const [copyType, legal] of [['sync', fig3], ['async', fig4]] as const) {
    for (const from of all) {
      for (const to of all) {
        const expected = legal.some(([f, t]) => f === from && t === to);
        it(`${copyType}: ${pairStateName(from)} → ${pairStateName(to)} is ${expected ? 'legal' : 'illegal'}`, () => {
          expect(isLegalTransition(copyType, from, to)).toBe(expected);
        });
      }
    }
    it(`${copyType}: lists exactly its legal transitions`, () => {
      expect(legalTransitions(copyType).length).toBe(legal.length);
    });
  }
  it('a synchronous pair never passes through suspending; an asynchronous duplex pair always does', () => {
    expect(isLegalTransition('sync', S.Duplex, S.Suspending)).toBe(false);
    expect(isLegalTransition('async', S.Duplex, S.Suspend)).toBe(false);
  });
  it('names round-trip and an unknown name is refused by name', () => {
    for (const s of all) expect(parsePairState(PAIR_STATE_NAMES[s])).toBe(s);
    expect(() => parsePairState('paired')).toThrow(/unknown pair state 'paired'/);
  });
});
