// Probe: replicated 4 KiB writes per second through the cascade P →sync I →async R at 0 km on the threads runtime.
//   npm run bench:cascade -- [QD=32]   (node --import tsx bench/cascade-probe.ts [QD])
// Env: PROBE_KM (distance of both links, default 0), PROBE_MS (measuring time, default 2000), PROBE_STATS=1 (per-thread CPU and the CPUs' STAT counters),
// PROBE_TUNING (JSON ThreadTuning overrides). The machine is shared: compare runs interleaved, and look at the
// CPU µs per write (all threads of the process), which depends much less on the load than writes/s does.
import { readdirSync, readFileSync } from 'node:fs';
import { ThreadsWorld } from '../harness/runtime-threads.ts';
import { embodiment1Topology, DATA_LVOL } from '../harness/topology.ts';
import { CopyControlProgram, OperationsLog } from '../harness/copy-control.ts';
import { Host } from '../harness/host.ts';
import { initialCopying } from '../harness/routines/embodiment1.ts';
const km = Number(process.env.PROBE_KM ?? 0);
const t = embodiment1Topology({ s1DistanceKm: km, s2DistanceKm: km, dataVolumeBytes: 64 << 20, journalVolumeBytes: 64 << 20, paths: 1, jitterUs: 0 });
t.hostLinkUs = 0;
// PROBE_TUNING='{"idleSpinUs":20}' tries ThreadTuning values (hardware/thread-cpu.ts) without editing code.
const w = await ThreadsWorld.create(t, 1, { tuning: JSON.parse(process.env.PROBE_TUNING ?? '{}'), prefaultMemory: true });
const hostP = new Host(w, '100P');
await initialCopying(new CopyControlProgram(w, hostP, new OperationsLog(), 'A2'));
await hostP.stop();
const data = new Uint8Array(4096).fill(3);
// Why a write could fail (e.g. a partner timeout when the machine is overloaded): the pair-state changes seen.
const failures: string[] = [];
w.onEvent((e) => { if (e.event.type === 'pair-state') failures.push(`${e.system} pair ${e.event.pairId} ${e.event.from} → ${e.event.to} (${e.event.cause})`); });
const QD = Number(process.argv[2] ?? 32), MS = Number(process.env.PROBE_MS ?? 2000);
const before = Object.fromEntries(['P', 'I', 'R'].map((x) => [x, w.stats(x)]));
let n = 0, stop = false;
const minorFaults = (): number => Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[7]); // field 10: minflt
const faults0 = minorFaults();
// Per-thread CPU (utime + stime, clock ticks of 10 ms) from /proc: which thread burns what.
const threadTicks = (): Map<string, number> => new Map(readdirSync('/proc/self/task').map((tid) => {
  const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return [`${tid}:${readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()}`, Number(f[11]) + Number(f[12])];
}));
const ticks0 = threadTicks();
const cpu0 = process.cpuUsage(); // every thread of the process: a load-independent cost per write
const t0 = performance.now();
await Promise.all(Array.from({ length: QD }, async (_, q) => {
  let lba = q;
  while (!stop) {
    const r = await w.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba: lba = (lba + QD) % 16384, blocks: 1, data });
    if (r.status !== 'ok') throw new Error(`write ${r.status}: ${failures.join('; ') || 'no pair-state change reported'}`);
    n++;
    if (performance.now() - t0 > MS) stop = true;
  }
}));
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(`QD ${QD}: ${Math.round(n / s)} replicated writes/s, ${((cpu.user + cpu.system) / n).toFixed(1)} CPU µs/write (all threads; ${(cpu.system / n).toFixed(1)} in the kernel, ${((minorFaults() - faults0) / n).toFixed(1)} page faults/write)`);
if (process.env.PROBE_STATS) {
  const busy = [...threadTicks()].map(([k, v]) => [k, ((v - (ticks0.get(k) ?? 0)) * 10000) / n] as const).filter(([, us]) => us >= 1);
  console.log('CPU µs/write by thread:', busy.map(([k, us]) => `${k} ${us.toFixed(0)}`).join(', '));
}
if (process.env.PROBE_STATS) for (const sys of ['P', 'I', 'R']) {
  const a = w.stats(sys), b = before[sys]!;
  const st = Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - b[k as keyof typeof b]])) as typeof a;
  console.log(sys, JSON.stringify({ ev: st.eventsDispatched, in: st.framesIn, out: st.framesOut, turns: st.loopTurns, waits: st.waits,
    timers: st.timersFired, frameLateAvgUs: +(st.frameLateUsSum / Math.max(1, st.framesIn)).toFixed(1), hostLateAvgUs: +(st.hostLateUsSum / Math.max(1, st.hostIos)).toFixed(1) }));
}
await w.close();
