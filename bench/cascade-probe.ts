// Probe: replicated 4 KiB writes per second through the cascade P →sync I →async R at 0 km on the threads runtime
// (bench/replicated-writes.ts, the figure the study reports as the emulator's own speed).
//   npm run bench:cascade -- [QD=32]   (node --import tsx bench/cascade-probe.ts [QD])
// Env: RCLAB_SCHEDULING (batch, the default, or normal: hardware/thread-policy.ts), RCLAB_TIMER_SLACK_NS (1, the default; 50000 is Linux's), PROBE_KM (distance of both links, default 0), PROBE_MS (measuring time, default 2000), PROBE_WARMUP_MS
// (default 500), PROBE_STATS=1 (per-thread CPU and the CPUs' STAT counters), PROBE_TUNING (JSON ThreadTuning
// overrides), PROBE_PAIRS (cascade, the default; sync: the synchronous pair P → I alone; none: host → P only — the
// hops one at a time). The machine is shared: compare runs interleaved, and look at the CPU µs per write (all threads of
// the process), which depends much less on the load than writes/s does.
import { readdirSync, readFileSync } from 'node:fs';
import type { ThreadCpuStats } from '../hardware/thread-cpu.ts';
import { REPLICATED_WRITES_PAIRS, replicatedCascadeWritesPerSecond, type ReplicatedWritesPairs } from './replicated-writes.ts';
import { schedulingInEffect, timerSlackInEffect } from '../hardware/thread-policy.ts';

const minorFaults = (): number => Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[7]); // field 10: minflt
// Per-thread CPU (utime + stime, clock ticks of 10 ms) from /proc: which thread burns what.
const threadTicks = (): Map<string, number> => new Map(readdirSync('/proc/self/task').map((tid) => {
  const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return [`${tid}:${readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()}`, Number(f[11]) + Number(f[12])];
}));

const QD = Number(process.argv[2] ?? 32);
const pairs = (process.env.PROBE_PAIRS ?? 'cascade') as ReplicatedWritesPairs;
if (!REPLICATED_WRITES_PAIRS.includes(pairs)) {
  console.error(`PROBE_PAIRS must be one of ${REPLICATED_WRITES_PAIRS.join(', ')}, not '${pairs}'`);
  process.exit(2);
}
let faults0 = 0, faults = 0, ticks0 = new Map<string, number>(), ticks = new Map<string, number>();
let stats0: Record<string, ThreadCpuStats> = {}, stats: Record<string, ThreadCpuStats> = {};
let pickup0 = { completions: 0, lateUsSum: 0 }, pickup = { completions: 0, lateUsSum: 0 };
const r = await replicatedCascadeWritesPerSecond({
  queueDepth: QD, pairs, durationMs: Number(process.env.PROBE_MS ?? 2000), warmupMs: Number(process.env.PROBE_WARMUP_MS ?? 500),
  distanceKm: Number(process.env.PROBE_KM ?? 0), tuning: JSON.parse(process.env.PROBE_TUNING ?? '{}'),
  onWindow: (w, edge) => {
    const s = Object.fromEntries(['P', 'I', 'R'].map((x) => [x, w.stats(x)]));
    if (edge === 'start') { faults0 = minorFaults(); ticks0 = threadTicks(); stats0 = s; pickup0 = w.hostPickup(); } else { faults = minorFaults(); ticks = threadTicks(); stats = s; pickup = w.hostPickup(); }
  },
});
const n = r.writes;
const scheduling = schedulingInEffect(), slack = timerSlackInEffect();
console.log(`QD ${QD}${pairs === 'cascade' ? '' : ` (${pairs === 'sync' ? 'synchronous pair P → I alone' : 'no pair: host → P only'})`}: ${Math.round(r.writesPerSecond)} replicated writes/s, ${r.cpuUsPerWrite.toFixed(1)} CPU µs/write (all threads; ${r.kernelUsPerWrite.toFixed(1)} in the kernel, ${((faults - faults0) / n).toFixed(1)} page faults/write; `
  + `scheduling ${scheduling?.policy ?? 'normal'}${scheduling?.note ? `: ${scheduling.note}` : ''}; timer slack ${slack?.timerSlackNs ?? '?'} ns${slack?.note ? `: ${slack.note}` : ''})`);
if (process.env.PROBE_STATS) {
  const busy = [...ticks].map(([k, v]) => [k, ((v - (ticks0.get(k) ?? 0)) * 10000) / n] as const).filter(([, us]) => us >= 1);
  const picked = pickup.completions - pickup0.completions;
  console.log(`host took its completions ${((pickup.lateUsSum - pickup0.lateUsSum) / Math.max(1, picked)).toFixed(1)} µs after they were visible, on average`);
  console.log('CPU µs/write by thread:', busy.map(([k, us]) => `${k} ${us.toFixed(0)}`).join(', '));
  for (const sys of ['P', 'I', 'R']) {
    const a = stats[sys]!, b = stats0[sys]!;
    const st = Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - b[k as keyof typeof b]])) as typeof a;
    console.log(sys, JSON.stringify({ ev: st.eventsDispatched, in: st.framesIn, out: st.framesOut, turns: st.loopTurns, waits: st.waits, skipped: st.doorbellsSkipped,
      timers: st.timersFired, frameLateAvgUs: +(st.frameLateUsSum / Math.max(1, st.framesIn)).toFixed(1), hostLateAvgUs: +(st.hostLateUsSum / Math.max(1, st.hostIos)).toFixed(1) }));
  }
}
