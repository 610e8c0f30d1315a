// The emulator's speed against the naive baseline, measured in rounds. This machine's speed moves from minute to
// minute (the same probe has done 43,000 and 64,000 replicated writes/s an hour apart), so one window of each, one after
// the other, compares two different machines. Each round measures both back to back, the order alternating from
// round to round; the ratio is taken per round, and the report gives the medians and the spread.

import { median } from './model.ts';

export interface SpeedRound {
  naiveFirst: boolean;
  naiveWritesPerS: number;
  replicatedWritesPerS: number;
  /** CPU µs of the whole process per replicated write in that round. */
  replicatedCpuUsPerWrite: number;
}

export interface SpeedSummary {
  replicatedWritesPerS: number;
  naiveWritesPerS: number;
  /** The median of the rounds' own ratios (not the ratio of the medians). */
  ratioToNaive: number;
  replicatedCpuUsPerWrite: number;
}

/** Runs `count` rounds of both measurements (told the round, from 1), the naive baseline first in the first round, then alternating. */
export async function measureRounds(count: number, naive: (round: number) => Promise<number>,
  replicated: (round: number) => Promise<{ writesPerS: number; cpuUsPerWrite: number }>): Promise<SpeedRound[]> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`speed rounds: ${count} is not a positive whole number of rounds`);
  const rounds: SpeedRound[] = [];
  for (let i = 0; i < count; i++) {
    const naiveFirst = i % 2 === 0;
    let naiveWritesPerS = 0;
    if (naiveFirst) naiveWritesPerS = await naive(i + 1);
    const r = await replicated(i + 1);
    if (!naiveFirst) naiveWritesPerS = await naive(i + 1);
    rounds.push({ naiveFirst, naiveWritesPerS, replicatedWritesPerS: r.writesPerS, replicatedCpuUsPerWrite: r.cpuUsPerWrite });
  }
  return rounds;
}

export function summariseRounds(rounds: readonly SpeedRound[]): SpeedSummary {
  if (rounds.length === 0) throw new RangeError('speed rounds: none to summarise');
  return {
    replicatedWritesPerS: median(rounds.map((r) => r.replicatedWritesPerS)),
    naiveWritesPerS: median(rounds.map((r) => r.naiveWritesPerS)),
    ratioToNaive: median(rounds.map((r) => r.replicatedWritesPerS / r.naiveWritesPerS)),
    replicatedCpuUsPerWrite: median(rounds.map((r) => r.replicatedCpuUsPerWrite)),
  };
}
