// Probe: how accurately the threads runtime injects link latency. A synchronous pair P→I of embodiment 1 (one path,
// no jitter), 4 KiB writes at QD 1 and QD 8, over S1 of 0, 10, 100 and 1000 km; per cell: writes, latency mean/p50/p99,
// latency − round trip, and IOPS against the model QD / (S + round trip), S = the smallest (QD 1 mean − round trip).
//   npm run bench:injection   (node --import tsx bench/injection-probe.ts)
// Env: PROBE_KM (comma list, default 0,10,100,1000), PROBE_QD (default 1,8), PROBE_MS (measuring time per cell,
// default 3000), PROBE_WARMUP_MS (default 500), PROBE_SLOTS (blocks written in turn, default 16384: the whole volume), PROBE_TUNING (JSON ThreadTuning overrides), PROBE_WORLD (JSON ThreadsWorldOptions), PROBE_STATS=1 (how late
// each CPU dispatched frames and host I/Os, its loop turns and sleeps, per write). Prints figures; asserts nothing.
// The machine is shared: compare runs interleaved and look at medians over several runs.
import { ThreadsWorld } from '../harness/runtime-threads.ts';
import { embodiment1Topology, DATA_LVOL } from '../harness/topology.ts';
import { PairState } from '../firmware/pair-state.ts';
import type { ThreadCpuStats } from '../hardware/thread-cpu.ts';
import { newHistogram, percentiles, roundTripUs } from './study/cells.ts';

const list = (v: string | undefined, d: number[]): number[] => (v ? v.split(',').map(Number) : d);
const distancesKm = list(process.env.PROBE_KM, [0, 10, 100, 1000]);
const queueDepths = list(process.env.PROBE_QD, [1, 8]);
const measureMs = Number(process.env.PROBE_MS ?? 3000), warmupMs = Number(process.env.PROBE_WARMUP_MS ?? 500);
const tuning = JSON.parse(process.env.PROBE_TUNING ?? '{}');
const worldOptions = JSON.parse(process.env.PROBE_WORLD ?? '{}');
// Blocks written in turn (4 KiB each; the default covers the 64 MiB data volume, as the study's cells do).
const slots = Number(process.env.PROBE_SLOTS ?? 16384);

interface Row { km: number; qd: number; writes: number; iops: number; mean: number; p50: number; p99: number; cpuUsPerWrite: number; stats: string }

async function cell(km: number, qd: number): Promise<Row> {
  const t = embodiment1Topology({ s1DistanceKm: km, s2DistanceKm: km, dataVolumeBytes: 64 << 20, journalVolumeBytes: 16 << 20, paths: 1, jitterUs: 0 });
  const w = await ThreadsWorld.create(t, 1, { ...worldOptions, tuning });
  try {
    // The synchronous pair alone, with no initial copy (both volumes start zeroed), as the study's sync cells.
    const r = await w.command('P', { op: 'create', initialCopy: 'none', step: 'S100',
      pair: { pairId: 1, localLvol: DATA_LVOL, remoteStorageId: 1, remoteLvol: DATA_LVOL, copyType: 'sync', fence: 'data' } });
    if (!r.ok) throw new Error(`create: ${r.error}`);
    while (w.definitionInformation('P').concat(w.definitionInformation('I')).filter((p) => p.state === PairState.Duplex).length < 2) await w.sleep(1000);
    const data = new Uint8Array(4096).fill(0x5a);
    const h = newHistogram();
    let stop = false, writes = 0;
    const t0 = w.nowUs(), from = t0 + warmupMs * 1000, to = from + measureMs * 1000;
    let before: Record<string, ThreadCpuStats> = {}, cpu0 = process.cpuUsage();
    const mark = setTimeout(() => { before = { P: w.stats('P'), I: w.stats('I') }; cpu0 = process.cpuUsage(); }, warmupMs);
    await Promise.all(Array.from({ length: qd }, async (_, lane) => {
      for (let k = lane; !stop; k += qd) {
        const a = w.nowUs();
        const res = await w.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba: k % slots, blocks: 1, data });
        const b = w.nowUs();
        if (res.status !== 'ok') throw new Error(`write ${res.status}`);
        if (a >= from && b < to) { writes++; h.recordValue(Math.max(1, Math.round(b - a))); }
        if (b >= to) stop = true;
      }
    }));
    clearTimeout(mark);
    const cpu = process.cpuUsage(cpu0);
    const p = percentiles(h);
    let stats = '';
    if (process.env.PROBE_STATS) {
      stats = ['P', 'I'].map((x) => {
        const a = w.stats(x), b = before[x]!;
        const d = (k: keyof ThreadCpuStats) => a[k] - b[k];
        return `${x}: frame late avg ${(d('frameLateUsSum') / Math.max(1, d('framesIn'))).toFixed(1)} µs, host late avg ${(d('hostLateUsSum') / Math.max(1, d('hostIos'))).toFixed(1)} µs, `
          + `late max ${a.lateUsMax.toFixed(0)} µs, credited ${(d('dueCreditUsSum') / writes).toFixed(1)} µs/write, turns/write ${(d('loopTurns') / writes).toFixed(1)}, sleeps/write ${(d('waits') / writes).toFixed(1)}`;
      }).join('\n    ');
    }
    return { km, qd, writes, iops: (writes * 1e6) / (measureMs * 1000), mean: p.mean, p50: p.p50, p99: p.p99, cpuUsPerWrite: (cpu.user + cpu.system) / Math.max(1, writes), stats };
  } finally {
    await w.close();
  }
}

const rows: Row[] = [];
for (const km of distancesKm) for (const qd of queueDepths) {
  const r = await cell(km, qd);
  rows.push(r);
  console.error(`${km} km QD ${qd}: ${r.writes} writes, p50 ${r.p50} µs`);
}
const qd1 = rows.filter((r) => r.qd === 1);
const serviceUs = qd1.length ? Math.min(...qd1.map((r) => r.mean - roundTripUs(r.km))) : NaN;
const f = (x: number): string => Math.round(x).toLocaleString('en-US');
console.log(`tuning ${JSON.stringify(tuning)}; S = ${serviceUs.toFixed(0)} µs (smallest QD 1 mean − RTT)`);
console.log('| km | QD | writes | mean µs | p50 µs | p99 µs | p50 − RTT | p99 − RTT | p50 − RTT − S | IOPS | model | error | CPU µs/write |');
console.log('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const r of rows) {
  const rtt = roundTripUs(r.km), model = (r.qd * 1e6) / (serviceUs + rtt);
  console.log(`| ${r.km} | ${r.qd} | ${r.writes} | ${f(r.mean)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.p50 - rtt)} | ${f(r.p99 - rtt)} | ${f(r.p50 - rtt - serviceUs)} | ${f(r.iops)} | ${f(model)} | ${(100 * (r.iops / model - 1)).toFixed(1)} % | ${r.cpuUsPerWrite.toFixed(0)} |`);
  if (r.stats) console.log(`    ${r.stats}`);
}
