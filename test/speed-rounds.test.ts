// The emulator's speed against the naive baseline in rounds (bench/study/speed-rounds.ts): both measured back to back
// in each round, the order alternating, the ratio taken per round, medians reported with the spread.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main as bench } from '../bench/study.ts';
import { hopCostsUs, measureRounds, summariseRounds, type SpeedRound } from '../bench/study/speed-rounds.ts';

describe('speed rounds', () => {
  it('measure both in every round, the naive baseline first in odd rounds and second in even ones', async () => {
    const calls: string[] = [];
    let t = 0;
    const rounds = await measureRounds(3, async (round) => { calls.push(`naive ${round}`); return 100 + t++; },
      async (round) => { calls.push(`replicated ${round}`); return { writesPerS: 200 + t++, cpuUsPerWrite: 10 }; });
    expect(calls).toEqual(['naive 1', 'replicated 1', 'replicated 2', 'naive 2', 'naive 3', 'replicated 3']);
    expect(rounds.map((r) => [r.naiveFirst, r.naiveWritesPerS, r.replicatedWritesPerS])).toEqual([[true, 100, 201], [false, 103, 202], [true, 104, 205]]);
    expect(rounds.every((r) => r.hops === undefined)).toBe(true);
  });

  it('measure the hops in every round too: naive, no pair, the synchronous pair, the cascade, reversed in even rounds', async () => {
    const calls: string[] = [];
    let t = 0;
    const rounds = await measureRounds(2, async (round) => { calls.push(`naive ${round}`); return 100 + t++; },
      async (round) => { calls.push(`cascade ${round}`); return { writesPerS: 200 + t++, cpuUsPerWrite: 30 + round }; },
      async (round, pairs) => { calls.push(`${pairs} ${round}`); return { writesPerS: 300 + t++, cpuUsPerWrite: (pairs === 'none' ? 5 : 18) + round }; });
    expect(calls).toEqual(['naive 1', 'none 1', 'sync 1', 'cascade 1', 'cascade 2', 'sync 2', 'none 2', 'naive 2']);
    expect(rounds[0]).toEqual({ naiveFirst: true, naiveWritesPerS: 100, replicatedWritesPerS: 203, replicatedCpuUsPerWrite: 31,
      hops: { none: { writesPerS: 301, cpuUsPerWrite: 6 }, sync: { writesPerS: 302, cpuUsPerWrite: 19 } } });
    expect(rounds[1]!.hops).toEqual({ none: { writesPerS: 306, cpuUsPerWrite: 7 }, sync: { writesPerS: 305, cpuUsPerWrite: 20 } });
    expect(rounds.map(hopCostsUs)).toEqual([{ syncHopUs: 13, asyncHopUs: 12 }, { syncHopUs: 13, asyncHopUs: 12 }]);
    // The summary's hops are the rounds' medians; a round without hops (results from before) gives none.
    expect(summariseRounds(rounds).hops).toEqual({ none: { writesPerS: 303.5, cpuUsPerWrite: 6.5 }, sync: { writesPerS: 303.5, cpuUsPerWrite: 19.5 } });
    expect(summariseRounds([rounds[0]!, { ...rounds[1]!, hops: undefined }]).hops).toBeUndefined();
  });

  it('summarise by medians, the ratio as the median of each round\'s own ratio', () => {
    const round = (naive: number, replicated: number, cpu: number): SpeedRound => ({ naiveFirst: true, naiveWritesPerS: naive, replicatedWritesPerS: replicated, replicatedCpuUsPerWrite: cpu });
    // The rounds' ratios are 4, 1.5 and 1.25: their median is 1.5, though the medians' own ratio would be 40 / 20 = 2.
    const s = summariseRounds([round(10, 40, 30), round(20, 30, 25), round(40, 50, 20)]);
    expect(s).toEqual({ replicatedWritesPerS: 40, naiveWritesPerS: 20, ratioToNaive: 1.5, replicatedCpuUsPerWrite: 25 });
    expect(summariseRounds([round(10, 20, 30), round(30, 60, 20)]).ratioToNaive).toBe(2);
    expect(() => summariseRounds([])).toThrow(/none to summarise/);
  });

  it('refuse a count of rounds that is not a positive whole number, before measuring anything', async () => {
    let measured = 0;
    const m = async () => { measured++; return 1; };
    const r = async () => { measured++; return { writesPerS: 1, cpuUsPerWrite: 1 }; };
    for (const bad of [0, -1, 1.5, Number.NaN]) await expect(measureRounds(bad, m, r)).rejects.toThrow(/not a positive whole number of rounds/);
    expect(measured).toBe(0);
  });

  it('the report gives the rounds\' spread under the medians and the hops\' costs (and results from before rounds still render)', async () => {
    const committed = JSON.parse(readFileSync('bench/results/2026-12-07-linux-x64-2cpu-quick.json', 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), 'rclab-rounds-'));
    const rounds: SpeedRound[] = [
      { naiveFirst: true, naiveWritesPerS: 30_000, replicatedWritesPerS: 60_000, replicatedCpuUsPerWrite: 25 },
      { naiveFirst: false, naiveWritesPerS: 20_000, replicatedWritesPerS: 50_000, replicatedCpuUsPerWrite: 28.5 },
    ];
    const hops = { none: { writesPerS: 250_000, cpuUsPerWrite: 5.5 }, sync: { writesPerS: 76_000, cpuUsPerWrite: 19.5 } };
    const sleep = { name: 'worker timed Atomics.wait 0.5 ms: p99 lateness', value: 185.9, unit: 'µs', reference: '≤ 150 µs', referenceLow: 0, referenceHigh: 150, ratio: 0.81,
      note: '5000 sleeps, nothing else running in the process; p50 105 µs, p99.9 2657 µs, max 7242 µs, 28 (0.56 %) over 1 ms; 1-min load average 1.2; ratio = bound / |value| (> 1 = within the bound)' };
    // Measured since: the same sleeps under the kernel's default timer slack, and the slack the run's threads had.
    const slackless = { name: "worker timed Atomics.wait 0.5 ms, the kernel's default timer slack: p50 lateness", value: 87.4, unit: 'µs', reference: '≤ 150 µs', referenceLow: 0, referenceHigh: 150, ratio: 1.72,
      note: "5000 sleeps with 50 µs of slack, against p50 38 µs with the threads runtime's 1 ns (the row above); p99 140 µs; 1-min load average 1.0; ratio = bound / |value| (> 1 = within the bound)" };
    const emulator = { ...committed.emulator, rounds, hops, replicatedWritesPerS: 55_000, replicatedCpuUsPerWrite: 26.75,
      primitives: [...committed.emulator.primitives.filter((p: { name: string }) => !p.name.startsWith('worker timed Atomics.wait')), sleep, slackless] };
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ ...committed, emulator, scheduling: { policy: 'batch', timerSlackNs: 1 } }));
    expect(await bench(['--from', join(dir, 'in.json'), '--out', dir])).toBe(0);
    const md = readFileSync(join(dir, '2026-12-07-linux-x64-2cpu-quick.md'), 'utf8');
    expect(md).toMatch(/the medians of 2 rounds, each the naive baseline and the replicated writes back to back .*replicated 50,000–60,000\/s at 25\.0–28\.5 CPU µs per write, naive 20,000–30,000\/s, ratio 2\.00–2\.50\./);
    // The injection's p99 beside the machine's floor: how late a worker's timed sleep returns (bench/primitives.ts).
    expect(md).toMatch(/The p99 column stands on this machine's floor: a worker's timed sleep, alone in the process, returned 186 µs late at p99 \(its tail is in the table below, "worker timed Atomics\.wait 0\.5 ms: p99 lateness"\)\./);
    expect(md).toMatch(/\| worker timed Atomics\.wait 0\.5 ms: p99 lateness \| 186 µs \| ≤ 150 µs \| 0\.81 \| 5000 sleeps, .*max 7242 µs, 28 \(0\.56 %\) over 1 ms/);
    expect(md).toMatch(/Under the kernel's default timer slack \(50 µs\) the same sleeps returned 87 µs late at p50 \("worker timed Atomics\.wait 0\.5 ms, the kernel's default timer slack: p50 lateness" below, against the threads runtime's own slack in its note\): the threads runtime gives its threads 1 ns/);
    expect(md).toMatch(/Threads runtime scheduled with SCHED_BATCH \(a woken thread does not preempt the one that woke it\); timer slack 1 ns\./);
    // The hops: the synchronous one is the pair alone less no pair, the asynchronous one the cascade less the pair alone.
    expect(md).toMatch(/one window each\): through no pair \(the host and P\) 250,000\/s at 5\.5 CPU µs per write; through the synchronous pair alone 76,000\/s at 19\.5 µs \(the synchronous hop: \+14\.0 µs\); through the cascade \(the rounds' median\) 55,000\/s at 26\.8 µs \(the asynchronous hop: \+7\.3 µs\)\./);
    // Rounds that measured the hops too: each hop's cost is the median of the rounds' own differences, with their spread.
    const withHops: SpeedRound[] = [
      { ...rounds[0]!, hops: { none: { writesPerS: 250_000, cpuUsPerWrite: 5.5 }, sync: { writesPerS: 76_000, cpuUsPerWrite: 19.5 } } },
      { ...rounds[1]!, hops: { none: { writesPerS: 240_000, cpuUsPerWrite: 6 }, sync: { writesPerS: 74_000, cpuUsPerWrite: 18 } } },
    ];
    const medians = { none: { writesPerS: 245_000, cpuUsPerWrite: 5.75 }, sync: { writesPerS: 75_000, cpuUsPerWrite: 18.75 } };
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ ...committed, emulator: { ...emulator, rounds: withHops, hops: medians } }));
    expect(await bench(['--from', join(dir, 'in.json'), '--out', dir])).toBe(0);
    const inRounds = readFileSync(join(dir, '2026-12-07-linux-x64-2cpu-quick.md'), 'utf8');
    expect(inRounds).toMatch(/hop by hop \(the same QD 32 writes, in each of the 2 rounds beside the cascade; medians\): through no pair \(the host and P\) 245,000\/s at 5\.8 CPU µs per write; through the synchronous pair alone 75,000\/s at 18\.8 µs \(the synchronous hop: \+13\.0 µs, 12\.0 to 14\.0 by round\); through the cascade \(the rounds' median\) 55,000\/s at 26\.8 µs \(the asynchronous hop: \+8\.0 µs, 5\.5 to 10\.5 by round\)\./);
    const { rounds: _gone, hops: _none, ...before } = committed.emulator;
    before.primitives = before.primitives.filter((p: { name: string }) => !p.name.startsWith('worker timed Atomics.wait'));
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ ...committed, emulator: before, scheduling: { policy: 'batch' } })); // as recorded before the slack
    expect(await bench(['--from', join(dir, 'in.json'), '--out', dir])).toBe(0);
    const older = readFileSync(join(dir, '2026-12-07-linux-x64-2cpu-quick.md'), 'utf8');
    expect(older).not.toMatch(/rounds, each the naive baseline/);
    expect(older).not.toMatch(/hop by hop/);
    expect(older).not.toMatch(/stands on this machine's floor/); // measured since; results from before have no such figure
    expect(older).not.toMatch(/default timer slack/);
    expect(older).toMatch(/Threads runtime scheduled with SCHED_BATCH \(a woken thread does not preempt the one that woke it\)\./); // no slack recorded then
  }, 60_000);
});
