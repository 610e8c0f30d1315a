// Pair states of Fig. 3 (synchronous) and Fig. 4 (asynchronous, adds suspending).

export enum PairState {
  Simplex = 0,
  InitialCopying = 1,
  Duplex = 2,
  Suspending = 3,
  Suspend = 4,
  FailureSuspend = 5,
  DuplexPending = 6,
}

export const PAIR_STATE_COUNT = 7;

export type CopyType = 'sync' | 'async';

/** The source document's names. */
export const PAIR_STATE_NAMES: Record<PairState, string> = {
  [PairState.Simplex]: 'simplex',
  [PairState.InitialCopying]: 'initial copying',
  [PairState.Duplex]: 'duplex',
  [PairState.Suspending]: 'suspending',
  [PairState.Suspend]: 'suspend',
  [PairState.FailureSuspend]: 'failure suspend',
  [PairState.DuplexPending]: 'duplex pending',
};

/** The names operators know from products (Hitachi CCI), shown beside the source's names. */
export const PRODUCT_STATE_NAMES: Record<PairState, string> = {
  [PairState.Simplex]: 'SMPL',
  [PairState.InitialCopying]: 'COPY',
  [PairState.Duplex]: 'PAIR',
  [PairState.Suspending]: 'PSUS*',
  [PairState.Suspend]: 'PSUS',
  [PairState.FailureSuspend]: 'PSUE',
  [PairState.DuplexPending]: 'COPY',
};

export function pairStateName(s: PairState): string {
  const n = PAIR_STATE_NAMES[s];
  if (n === undefined) throw new Error(`invalid pair state value ${s}`);
  return n;
}

export function parsePairState(name: string): PairState {
  for (const [v, n] of Object.entries(PAIR_STATE_NAMES)) if (n === name) return Number(v) as PairState;
  throw new Error(`unknown pair state '${name}' (expected one of: ${Object.values(PAIR_STATE_NAMES).join(', ')})`);
}

/**
 * Every transition the state machines allow, by copy type. Fig. 3 (sync) has no suspending;
 * Fig. 4 (async) reaches suspend and failure suspend from duplex through suspending.
 * Failure suspend can be entered from any state in which copying is active.
 */
const SYNC_TRANSITIONS: ReadonlyArray<[PairState, PairState]> = [
  [PairState.Simplex, PairState.InitialCopying],
  [PairState.Simplex, PairState.Duplex], // formation copy not needed (S1070 ¶0150)
  [PairState.InitialCopying, PairState.Duplex],
  [PairState.InitialCopying, PairState.Suspend],
  [PairState.InitialCopying, PairState.FailureSuspend],
  [PairState.Duplex, PairState.Suspend],
  [PairState.Duplex, PairState.FailureSuspend],
  [PairState.Suspend, PairState.DuplexPending],
  [PairState.Suspend, PairState.FailureSuspend],
  [PairState.FailureSuspend, PairState.DuplexPending],
  [PairState.DuplexPending, PairState.Duplex],
  [PairState.DuplexPending, PairState.Suspend],
  [PairState.DuplexPending, PairState.FailureSuspend],
];

const ASYNC_TRANSITIONS: ReadonlyArray<[PairState, PairState]> = [
  ...SYNC_TRANSITIONS.filter(([f, t]) => !(f === PairState.Duplex && t === PairState.Suspend)),
  [PairState.Duplex, PairState.Suspending],
  [PairState.Suspending, PairState.Suspend],
  [PairState.Suspending, PairState.FailureSuspend],
];

const key = (from: PairState, to: PairState) => from * PAIR_STATE_COUNT + to;
const LEGAL: Record<CopyType, Set<number>> = {
  sync: new Set(SYNC_TRANSITIONS.map(([f, t]) => key(f, t))),
  async: new Set(ASYNC_TRANSITIONS.map(([f, t]) => key(f, t))),
};

export function isLegalTransition(copyType: CopyType, from: PairState, to: PairState): boolean {
  return LEGAL[copyType].has(key(from, to));
}

export function legalTransitions(copyType: CopyType): ReadonlyArray<[PairState, PairState]> {
  return copyType === 'sync' ? SYNC_TRANSITIONS : ASYNC_TRANSITIONS;
}

/** States in which the pair copies (so the destination volume is read-only to hosts). */
export function isCopyingState(s: PairState): boolean {
  return s === PairState.InitialCopying || s === PairState.Duplex || s === PairState.DuplexPending || s === PairState.Suspending;
}
