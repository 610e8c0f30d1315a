// The emulator's speed against the naive baseline, measured in rounds. This machine's speed moves from minute to
// minute (the same probe has done 43,000 and 64,000 replicated writes/s an hour apart), so one window of each, one after
// the other, compares two different machines. Each round measures all of them back to back — the naive baseline, and
// the same writes through no pair, the synchronous pair alone and the cascade — in one order in odd rounds and the
// reverse in even ones (a drift of the machine then falls on each side alike). Ratios and the hops' costs are taken
// per round; the report gives their medians and the spread.

import { median } from './model.ts';

export interface WritesMeasure {
  writesPerS: number;
  /** CPU µs of the whole process per write. */
  cpuUsPerWrite: number;
}

/** The same replicated writes through fewer hops (bench/replicated-writes.ts `pairs`). */
export type HopPairs = 'none' | 'sync';

export interface SpeedRound {
  naiveFirst: boolean;
  naiveWritesPerS: number;
  replicatedWritesPerS: number;
  /** CPU µs of the whole process per replicated write in that round. */
  replicatedCpuUsPerWrite: number;
  /** The same writes through no pair and through the synchronous pair alone, in the same round (absent in results from before). */
  hops?: Record<HopPairs, WritesMeasure>;
}

export interface SpeedSummary {
  replicatedWritesPerS: number;
  naiveWritesPerS: number;
  /** The median of the rounds' own ratios (not the ratio of the medians). */
  ratioToNaive: number;
  replicatedCpuUsPerWrite: number;
  /** Medians of the hops' measures, when every round has them. */
  hops?: Record<HopPairs, WritesMeasure>;
}

/** What each hop adds to a write's CPU, per round: the synchronous hop is the pair alone less no pair, the asynchronous one the cascade less the pair alone. */
export function hopCostsUs(r: SpeedRound): { syncHopUs: number; asyncHopUs: number } | null {
  if (!r.hops) return null;
  return { syncHopUs: r.hops.sync.cpuUsPerWrite - r.hops.none.cpuUsPerWrite, asyncHopUs: r.replicatedCpuUsPerWrite - r.hops.sync.cpuUsPerWrite };
}

/**
 * Runs `count` rounds (each told its number, from 1). Every round measures the naive baseline, then (given `hop`) the
 * writes through no pair and the synchronous pair alone, then the cascade; even rounds take that order reversed.
 */
export async function measureRounds(count: number, naive: (round: number) => Promise<number>,
  replicated: (round: number) => Promise<WritesMeasure>, hop?: (round: number, pairs: HopPairs) => Promise<WritesMeasure>): Promise<SpeedRound[]> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`speed rounds: ${count} is not a positive whole number of rounds`);
  const rounds: SpeedRound[] = [];
  for (let i = 0; i < count; i++) {
    const naiveFirst = i % 2 === 0;
    const order: Array<'naive' | HopPairs | 'cascade'> = hop ? ['naive', 'none', 'sync', 'cascade'] : ['naive', 'cascade'];
    if (!naiveFirst) order.reverse();
    let naiveWritesPerS = 0, cascade: WritesMeasure = { writesPerS: 0, cpuUsPerWrite: 0 };
    const hops: Partial<Record<HopPairs, WritesMeasure>> = {};
    for (const what of order) {
      if (what === 'naive') naiveWritesPerS = await naive(i + 1);
      else if (what === 'cascade') cascade = await replicated(i + 1);
      else hops[what] = await hop!(i + 1, what);
    }
    rounds.push({ naiveFirst, naiveWritesPerS, replicatedWritesPerS: cascade.writesPerS, replicatedCpuUsPerWrite: cascade.cpuUsPerWrite,
      ...(hop ? { hops: hops as Record<HopPairs, WritesMeasure> } : {}) });
  }
  return rounds;
}

export function summariseRounds(rounds: readonly SpeedRound[]): SpeedSummary {
  if (rounds.length === 0) throw new RangeError('speed rounds: none to summarise');
  const medianOf = (pairs: HopPairs): WritesMeasure => ({
    writesPerS: median(rounds.map((r) => r.hops![pairs].writesPerS)), cpuUsPerWrite: median(rounds.map((r) => r.hops![pairs].cpuUsPerWrite)),
  });
  return {
    replicatedWritesPerS: median(rounds.map((r) => r.replicatedWritesPerS)),
    naiveWritesPerS: median(rounds.map((r) => r.naiveWritesPerS)),
    ratioToNaive: median(rounds.map((r) => r.replicatedWritesPerS / r.naiveWritesPerS)),
    replicatedCpuUsPerWrite: median(rounds.map((r) => r.replicatedCpuUsPerWrite)),
    ...(rounds.every((r) => r.hops) ? { hops: { none: medianOf('none'), sync: medianOf('sync') } } : {}),
  };
}
