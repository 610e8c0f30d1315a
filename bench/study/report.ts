// The study's markdown report: every cell with the model beside it, the bandwidth-limited case, the emulator's
// own speed as ratios against this machine's limits.

import type { StudyResult } from '../study.ts';
import { LINK_SWEEP, type BANDWIDTH_CASE, type OfferedLoadPoint } from './bandwidth.ts';
import { cellName, LINK_BANDWIDTH_MBPS, linkMBpsOf, SCHEME_LABEL } from './cells.ts';
import { syncVsAsyncMarkdown } from './sync-vs-async.ts';
import { median } from './model.ts';
import { hopCostsUs } from './speed-rounds.ts';

const n = (x: number, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
const ms = (us: number) => n(us / 1000, us < 10_000 ? 2 : 1);
/** The columns an open-loop load's row shares (offered and achieved MB/s, host p50, RPO, journal, pair at the end). */
const loadColumns = (p: OfferedLoadPoint, mbDigits: number) => `${n(p.offeredMBps, mbDigits)} | ${n(p.achievedMBps, mbDigits)} | ${ms(p.latencyUs.p50)} | `
  + `${n(p.rpoMsP50, 1)} | ${n(p.rpoMsMax, 1)} | ${n(p.rpoWritesMax)} | ${n(p.journalUsagePercentMax, 1)} | ${p.endState}`;

export function markdownReport(r: StudyResult, charts: Array<{ file: string; title: string }>, bw: typeof BANDWIDTH_CASE, tolerance: number): string {
  const out: string[] = [];
  out.push(`# Benchmark study, ${r.date}, ${r.machine}${r.custom ? ', a matrix of one\'s own' : ''}${r.matrixOnly ? ', the matrix only' : ''}${r.quick ? ' (quick)' : ''}`, '');
  out.push(`Node ${r.node}, ${r.cpus}, ${r.memoryGiB} GiB; the study took ${n(r.wallS)} s.`);
  out.push(`Links: one path, no jitter, ${[...new Set(r.cells.map(linkMBpsOf))].join(', ') || LINK_BANDWIDTH_MBPS} MB/s, 5 µs/km one way; host line 20 µs one way; every link of a scheme at the cell's length.`);
  out.push(`Windows: ${Object.entries(r.matrix.windows).map(([rt, w]) => `${rt} warm-up ${w.warmupUs / 1000} ms then ${w.measureUs / 1000} ms${w.maxWrites ? ` or ${w.maxWrites} writes` : ''}${w.minWrites ? ` (at least ${w.minWrites})` : ''}`).join('; ')}.`);
  out.push(`Difference-snapshot mode: ${r.snapshotMode}.`);
  if (r.scheduling) {
    const slack = r.scheduling.timerSlackNs !== undefined
      ? `; timer slack ${r.scheduling.timerSlackNs === null ? 'unknown' : `${n(r.scheduling.timerSlackNs)} ns`}${r.scheduling.timerSlackNote ? ` (${r.scheduling.timerSlackNote})` : ''}` : '';
    out.push(`Threads runtime scheduled ${r.scheduling.policy === 'batch' ? 'with SCHED_BATCH (a woken thread does not preempt the one that woke it)' : 'with the OS default (SCHED_OTHER)'}${r.scheduling.note ? `: ${r.scheduling.note}` : ''}${slack}.`);
  }
  out.push('');

  // Model agreement summary.
  for (const runtime of [...new Set(r.cells.map((c) => c.runtime))]) {
    const above0 = r.cells.filter((c) => c.runtime === runtime && c.distanceKm > 0 && c.model);
    const within = above0.filter((c) => Math.abs(c.model!.iopsError) <= tolerance);
    const errs = above0.map((c) => Math.abs(c.model!.iopsError)).sort((a, b) => a - b);
    const unmodelled = r.cells.filter((c) => c.runtime === runtime && !c.model).length;
    out.push(`**${runtime}**: ${within.length} of ${above0.length} cells above 0 km within ±${tolerance * 100} % of the model; median |error| ${errs.length ? (errs[Math.floor(errs.length / 2)]! * 100).toFixed(1) : '–'} %, worst ${errs.length ? (errs[errs.length - 1]! * 100).toFixed(1) : '–'} %.`
      + (unmodelled ? ` ${unmodelled} cell(s) have no model: a synchronous or cascade series needs its QD 1 cells, whose latency less the round trip is the systems' service time.` : ''), '');
  }
  const failed = r.failedCells ?? [];
  if (failed.length > 0) {
    out.push(`**${failed.length} cell(s) did not finish**, and are left out of the tables, the model and the charts:`, '');
    for (const f of failed) out.push(`- ${cellName(f)}: ${f.error}`);
    out.push('');
  }
  out.push(...syncVsAsyncMarkdown(r.cells));

  for (const runtime of [...new Set(r.cells.map((c) => c.runtime))]) {
    out.push(`## The matrix on the ${runtime} runtime`, '');
    out.push('| scheme | km | QD | block | IOPS | MB/s | p50 ms | p99 ms | p99.9 ms | backlog max (entries) | RPO p50 / max (ms) | RPO max (writes) | model IOPS (bound) | error | why, and notes |');
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|');
    for (const c of r.cells.filter((x) => x.runtime === runtime)) {
      const j = c.journal;
      out.push(`| ${c.scheme} | ${c.distanceKm} | ${c.queueDepth} | ${c.blockBytes / 1024} KiB | ${n(c.iops)} | ${n(c.mbPerS, 1)} | ${ms(c.latencyUs.p50)} | ${ms(c.latencyUs.p99)} | ${ms(c.latencyUs.p999)} | `
        + `${j ? n(j.entriesMax) : ''} | ${j ? `${n(j.rpoMsP50, 1)} / ${n(j.rpoMsMax, 1)}` : ''} | ${j ? n(j.rpoWritesMax) : ''} | `
        + `${c.model ? `${n(c.model.iops)} (${c.model.bound})` : ''} | ${c.model ? pct(c.model.iopsError) : ''} | ${[c.model?.why, c.model?.note].filter(Boolean).join('; ')} |`);
    }
    const refused = r.cells.filter((c) => c.runtime === runtime && Object.keys(c.refused).length);
    if (refused.length) out.push('', `Refused writes: ${refused.map((c) => `${c.scheme} ${c.distanceKm} km QD ${c.queueDepth}: ${JSON.stringify(c.refused)}`).join('; ')}`);
    out.push('');
  }
  out.push(`Schemes: ${Object.entries(SCHEME_LABEL).map(([k, v]) => `\`${k}\` = ${v}`).join('; ')}. The model: bench/study/model.ts (README, *Performance*).`, '');

  if (r.offeredLoad.length) {
    out.push('## Recovery point against offered load', '');
    out.push('| runtime | offered (% of link) | offered MB/s | achieved MB/s | host p50 ms | RPO p50 ms | RPO max ms | RPO max (writes) | journal max % | pair at the end |');
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|---|');
    for (const p of r.offeredLoad) {
      out.push(`| ${p.runtime} | ${n(p.offeredFraction * 100)} | ${loadColumns(p, 1)} |`);
    }
    out.push('');
  }

  if (r.linkSweep?.length) {
    const ls = LINK_SWEEP;
    out.push(`## The link sweep: ${ls.blockBytes / 1024} KiB writes at ${ls.offeredFraction * 100} % of the link's bandwidth, ${ls.distanceKm} km, ${ls.journalBytes / 2 ** 20} MiB journal (sim)`, '');
    out.push('A lost frame holds back every entry after it until it is sent again: at the third acknowledgement that does not move (fast resend); '
      + 'a lost copy again once batches sent after it have been answered, or, with the window full, once its answer is overdue; '
      + 'a second gap at once when the answer to the first stops short (a partial acknowledgement); a lost last batch once the destination has been silent for a probe timeout (at least 20 ms: a tail loss probe); '
      + 'go-back-N after the resend timeout (1 s) as the last resort. '
      + `The last column offers ${ls.saturatingFraction * 100} % of the bandwidth with inflow control on, so the ship window is full: what the destination applied, and its share of the link.`, '');
    out.push(`| bandwidth MB/s | loss % | offered MB/s | achieved MB/s | host p50 ms | RPO p50 ms | RPO max ms | RPO max (writes) | journal max % | pair at the end | at ${ls.saturatingFraction * 100} %: delivered MB/s (of the link) |`);
    out.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|');
    for (const p of r.linkSweep) {
      const saturated = p.saturatedDeliveredMBps === undefined ? '–' : `${n(p.saturatedDeliveredMBps, 2)} (${n((100 * p.saturatedDeliveredMBps) / p.bandwidthMBps)} %)`;
      out.push(`| ${n(p.bandwidthMBps, p.bandwidthMBps < 1 ? 2 : 0)} | ${n(p.lossRate * 100, 1)} | ${loadColumns(p, 2)} | ${saturated} |`);
    }
    out.push('');
  }

  if (r.bandwidthLimited.length) out.push(`## Bandwidth-limited: ${bw.offeredMBps} MB/s offered over a ${bw.bandwidthMBps} MB/s link (${bw.distanceKm} km), ${bw.journalBytes / 2 ** 20} MiB journal`, '');
  for (const run of r.bandwidthLimited) {
    out.push(`**${run.runtime}**: journal full at ${run.journalFullAtMs === null ? 'never' : `${n(run.journalFullAtMs)} ms`}; resync from ${run.resyncStartMs === null ? '–' : `${n(run.resyncStartMs)} ms`}; duplex again at ${run.duplexAgainAtMs === null ? 'never' : `${n(run.duplexAgainAtMs)} ms`} (${run.tracksCopied} tracks copied); RPO at most ${n(Math.max(0, ...run.series.map((s) => s.rpoMs)))} ms; writes refused: ${run.refusedWrites}.`, '');
    for (const e of run.events) out.push(`- ${n(e.tMs)} ms: ${e.what}`);
    out.push('');
  }

  if (r.emulator) out.push(...emulatorSection(r.emulator));
  else out.push('A matrix-only run (`--matrix-only`): no offered-load, link-sweep or bandwidth-limited runs, and no measure of the emulator\'s own speed.', '');
  if (charts.length) {
    out.push('## Charts', '');
    for (const c of charts) out.push(`- [${c.title}](${c.file})`);
    out.push('');
  }
  return out.join('\n');
}

/** The emulator's own speed: replicated writes against the naive baseline, sim speed, injection, primitives, hot paths. */
function emulatorSection(e: NonNullable<StudyResult['emulator']>): string[] {
  const out: string[] = [];
  out.push('## The emulator\'s own speed', '');
  out.push(`- Replicated 4 KiB writes through the cascade at 0 km, QD 32, no latency injected (threads, host line 0 µs): **${e.replicatedWritesPerS === null ? 'not measured' : n(e.replicatedWritesPerS)}/s** `
    + `against the target of ${n(e.targetWritesPerS)}/s (${e.replicatedWritesPerS === null ? '–' : (e.replicatedWritesPerS / e.targetWritesPerS).toFixed(3)} of it); `
    + `the naive baseline (one postMessage per write and per acknowledgement, same process) did ${n(e.naiveBaselineWritesPerS)}/s: ratio **${e.ratioToNaive === null ? '–' : e.ratioToNaive.toFixed(2)}**.`
    + (e.replicatedCpuUsPerWrite === undefined ? '' : ` CPU per replicated write (host, P, I, R and V8's helper threads together): ${e.replicatedCpuUsPerWrite.toFixed(1)} µs; `
      + `the target allows ${(e.targetCpuUsPerWrite ?? 0).toFixed(1)} µs on this machine's cores.`)
    + (e.coalesced === undefined ? '' : ` With frame coalescing (ThreadTuning.coalesceFrames, off by default): ${n(e.coalesced.writesPerS)}/s at ${e.coalesced.cpuUsPerWrite.toFixed(1)} CPU µs per write.`)
    + (e.cascadeCellWritesPerS === undefined ? '' : ` The matrix's cascade cell at 0 km, QD 32, 4 KiB, whose host line adds 20 µs each way (spun for by the host and P), did ${n(e.cascadeCellWritesPerS)}/s`
      + (e.cascadeCellCpuUsPerWrite === undefined ? '.' : ` at ${e.cascadeCellCpuUsPerWrite.toFixed(1)} CPU µs per write.`)));
  if (e.rounds && e.rounds.length > 0) {
    const range = (xs: number[], f: (x: number) => string) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;
    out.push(`- Those are the medians of ${e.rounds.length} rounds, each the naive baseline and the replicated writes back to back (the order alternating), the ratio taken per round: `
      + `replicated ${range(e.rounds.map((r) => r.replicatedWritesPerS), n)}/s at ${range(e.rounds.map((r) => r.replicatedCpuUsPerWrite), (x) => x.toFixed(1))} CPU µs per write, `
      + `naive ${range(e.rounds.map((r) => r.naiveWritesPerS), n)}/s, ratio ${range(e.rounds.map((r) => r.replicatedWritesPerS / r.naiveWritesPerS), (x) => x.toFixed(2))}.`);
  }
  const none = e.hops?.none, sync = e.hops?.sync;
  if (none && sync && e.replicatedCpuUsPerWrite !== undefined && e.replicatedWritesPerS !== null) {
    // Since the rounds measure the hops too, each hop's cost is a difference within a round (the median of the rounds');
    // results from before give one window each, measured apart from the cascade's rounds.
    const perRound = (e.rounds ?? []).map(hopCostsUs);
    const inRounds = perRound.length > 0 && perRound.every((c) => c !== null);
    const cost = (pick: (c: { syncHopUs: number; asyncHopUs: number }) => number, whole: number): string => {
      if (!inRounds) return `+${whole.toFixed(1)} µs`;
      const xs = perRound.map((c) => pick(c!));
      return `+${median(xs).toFixed(1)} µs, ${Math.min(...xs).toFixed(1)} to ${Math.max(...xs).toFixed(1)} by round`;
    };
    out.push(`- Where a replicated write's CPU goes, hop by hop (the same QD 32 writes, ${inRounds ? `in each of the ${perRound.length} rounds beside the cascade; medians` : 'one window each'}): `
      + `through no pair (the host and P) ${n(none.writesPerS)}/s at ${none.cpuUsPerWrite.toFixed(1)} CPU µs per write; `
      + `through the synchronous pair alone ${n(sync.writesPerS)}/s at ${sync.cpuUsPerWrite.toFixed(1)} µs (the synchronous hop: ${cost((c) => c.syncHopUs, sync.cpuUsPerWrite - none.cpuUsPerWrite)}); `
      + `through the cascade (the rounds' median) ${n(e.replicatedWritesPerS)}/s at ${e.replicatedCpuUsPerWrite.toFixed(1)} µs (the asynchronous hop: ${cost((c) => c.asyncHopUs, e.replicatedCpuUsPerWrite - sync.cpuUsPerWrite)}).`);
  }
  out.push(`- Sim runtime: ${n(e.sim.eventsPerS)} firmware events/s over the matrix; embodiment1-cycle with every link 1000 km: ${n(e.sim.cycle1000Km.virtualMs)} ms virtual in ${n(e.sim.cycle1000Km.wallMs)} ms wall (${e.sim.cycle1000Km.ratio.toFixed(1)}× real time, ${n(e.sim.cycle1000Km.events)} events, ${e.sim.cycle1000Km.ok ? 'behaved as designed' : 'FAILED'}).`);
  out.push(`- Formation copy (sim, 0 km): ${n(e.formationCopy.mib)} MiB in ${n(e.formationCopy.wallMs)} ms wall, ${e.formationCopy.msPerMiB.toFixed(2)} ms per MiB.`, '');
  out.push('Latency injection on the threads runtime (synchronous pair, QD 1, 4 KiB): measured host latency minus the configured round trip; the error subtracts also the 0 km service time (host line, controllers).', '');
  out.push('| round trip | km | writes | p50 − RTT µs | p99 − RTT µs | 0 km service p50 µs | p50 error µs | p99 error µs |');
  out.push('|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const i of e.injection) out.push(`| ${i.roundTripMs} ms | ${i.distanceKm} | ${i.writes} | ${n(i.p50MinusRttUs)} | ${n(i.p99MinusRttUs)} | ${n(i.serviceUsAt0Km)} | ${n(i.p50ErrorUs)} | ${n(i.p99ErrorUs)} |`);
  out.push('');
  const sleep = e.primitives.find((p) => p.name.startsWith('worker timed Atomics.wait') && p.name.endsWith(': p99 lateness'));
  if (sleep) {
    out.push(`The p99 column stands on this machine's floor: a worker's timed sleep, alone in the process, returned ${n(sleep.value)} µs late at p99 `
      + `(its tail is in the table below, "${sleep.name}"). A QD 1 synchronous write waits through several such sleeps (P's and I's towards their deadlines, `
      + 'the host\'s wake-up), so the few writes in a hundred that meet one of the rarer long ones make a p99 of milliseconds that the link model has no part in.', '');
  }
  const slackless = e.primitives.find((p) => p.name.startsWith('worker timed Atomics.wait') && p.name.includes("the kernel's default timer slack"));
  if (slackless) {
    out.push(`Under the kernel's default timer slack (50 µs) the same sleeps returned ${n(slackless.value)} µs late at p50 ("${slackless.name}" below, `
      + 'against the threads runtime\'s own slack in its note): the threads runtime gives its threads 1 ns (hardware/thread-policy.ts).', '');
  }
  out.push('This machine\'s limits, measured in the same run, against the figures measured earlier on these machines:', '');
  out.push('| primitive | measured | reference | ratio | note |');
  out.push('|---|--:|---|--:|---|');
  for (const p of e.primitives) out.push(`| ${p.name} | ${n(p.value, p.value < 10 ? 2 : 0)} ${p.unit} | ${p.reference} | ${p.ratio.toFixed(2)} | ${p.note ?? ''} |`);
  out.push('');
  out.push('Hot paths (tinybench):', '');
  out.push('| task | ns/op | ops/s |');
  out.push('|---|--:|--:|');
  for (const h of e.hotPaths) out.push(`| ${h.task} | ${n(h.nsPerOp)} | ${n(h.opsPerS)} |`);
  out.push('');
  return out;
}
