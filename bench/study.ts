// The benchmark study: synchronous against asynchronous copying over links of 0–1000 km, on both runtimes,
// held against the analytic model (bench/study/model.ts), plus the bandwidth-limited case and the emulator's
// own speed against the limits of this machine. Prints figures and writes
//   bench/results/<date>-<machine>.json, .md and <date>-<machine>-*.svg
// Never asserts a time.
//   npm run bench [-- --quick] [-- --runtimes threads,sim] [-- --out DIR]      (or: rclab bench [--quick])
//   npm run bench -- --distances 0,35,180 --queue-depths 1,16 --schemes sync,async --link-mbps 125 --matrix-only   (a matrix of one's own)

import { BLOCK_SIZE_BYTES, DEFAULT_SNAPSHOT_INTERVAL_US, MAX_IO_BYTES } from '../firmware/constants.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import cliProgress from 'cli-progress';
import { runScenario } from '../harness/scenarios.ts';
import type { RuntimeName } from '../harness/world.ts';
import { formationCopyMsPerMiB, measureHotPaths, type HotPath } from './hot-paths.ts';
import { naiveCascadeWritesPerSecond } from './naive-baseline.ts';
import { replicatedCascadeWritesPerSecond, type ReplicatedWritesPairs } from './replicated-writes.ts';
import { measurePrimitives, type PrimitiveFigure } from './primitives.ts';
import { schedulingInEffect, timerSlackInEffect } from '../hardware/thread-policy.ts';
import {
  BANDWIDTH_CASE, bandwidthLimited, LINK_SWEEP, linkSweepPoint, OFFERED_LOAD_CASE, rpoAtOfferedLoad, type BandwidthLimitedRun, type LinkSweepPoint, type OfferedLoadPoint,
} from './study/bandwidth.ts';
import { cellName, roundTripUs, runCell, SCHEMES, SNAPSHOT_JOURNAL_VOLUME_BYTES, type CellResult, type CellSpec, type Scheme, type Window } from './study/cells.ts';
import { iopsVsDistance, latencyVsDistance, rpoOverTime, rpoVsLinkBandwidth, rpoVsOfferedLoad, syncShareVsDistance, toSvg } from './study/charts.ts';
import { compare, TOLERANCE } from './study/model.ts';
import { markdownReport } from './study/report.ts';
import { measureRounds, summariseRounds, type SpeedRound, type WritesMeasure } from './study/speed-rounds.ts';

export type FailedCell = CellSpec & { error: string };

/** The threads' timer slack for the results file (nothing when no world set one). */
function slackRecord(): { timerSlackNs?: number | null; timerSlackNote?: string } {
  const s = timerSlackInEffect();
  return s ? { timerSlackNs: s.timerSlackNs, ...(s.note ? { timerSlackNote: s.note } : {}) } : {};
}

/**
 * Runs the matrix's cells one after another. A cell that fails is recorded with its error and the rest still run:
 * one hung cell (see runCell) must not throw away a quarter of an hour of measurements.
 */
export async function runCells(specs: CellSpec[], run: (s: CellSpec) => Promise<CellResult>,
  progress: { start?: (s: CellSpec) => void; end?: (s: CellSpec) => void } = {}): Promise<{ cells: CellResult[]; failed: FailedCell[] }> {
  const cells: CellResult[] = [], failed: FailedCell[] = [];
  for (const s of specs) {
    progress.start?.(s);
    try {
      cells.push(await run(s));
    } catch (e) {
      failed.push({ ...s, error: e instanceof Error ? e.message : String(e) });
    }
    progress.end?.(s);
  }
  return { cells, failed };
}

/** The matrix's axes. */
export interface Matrix { distancesKm: number[]; queueDepths: number[]; blockBytes: number[]; schemes: Scheme[] }

export interface StudyOptions {
  quick: boolean;
  runtimes: RuntimeName[];
  outDir: string;
  /** Progress bar on stderr (off when not a terminal). */
  progress?: boolean;
  /** Axes of one's own (--distances, --queue-depths, --blocks, --schemes) in place of the study's: a custom matrix. */
  matrix?: Partial<Matrix>;
  /** The matrix alone: no offered-load, link-sweep or bandwidth-limited runs, no emulator-speed section. */
  matrixOnly?: boolean;
  /** Every link of the matrix's cells at this bandwidth (MB/s) instead of the study's LINK_BANDWIDTH_MBPS: a custom matrix. */
  linkMBps?: number;
}

export interface StudyResult {
  date: string;
  machine: string;
  node: string;
  cpus: string;
  memoryGiB: number;
  quick: boolean;
  /** A matrix of one's own axes (--distances, …), or the matrix only (--matrix-only): either way the files are named
   * <date>-<machine>-custom…, so they never replace the study's. */
  custom?: boolean;
  matrixOnly?: boolean;
  wallS: number;
  matrix: { distancesKm: number[]; queueDepths: number[]; blockBytes: number[]; schemes: string[]; windows: Record<string, Window> };
  snapshotMode: string;
  cells: Array<CellResult & { model?: { iops: number; latencyUs: number; bound: string; iopsError: number; why: string; note: string } }>;
  /** Cells that failed (a hung cell's error says what it left behind): the study goes on without them, and exits 1. */
  failedCells?: FailedCell[];
  offeredLoad: OfferedLoadPoint[];
  /** Asynchronous copying over links of several bandwidths and loss rates (sim); absent in files written before it. */
  linkSweep?: LinkSweepPoint[];
  bandwidthLimited: BandwidthLimitedRun[];
  /**
   * The host OS scheduling policy the threads runtime's worlds ran under, and their timer slack (hardware/thread-policy.ts);
   * absent before it was recorded (the slack: before it was set).
   */
  scheduling?: { policy: string; note?: string; timerSlackNs?: number | null; timerSlackNote?: string };
  /** Absent in a matrix-only run (--matrix-only). */
  emulator?: {
    /** Cascade, 0 km, QD 32, no latency injected anywhere (bench/replicated-writes.ts): the emulator alone (the median of the rounds). */
    replicatedWritesPerS: number | null;
    /** CPU µs of the whole process per replicated write there (2 cores give 2e6 µs per second). */
    replicatedCpuUsPerWrite?: number;
    /** Each round's naive baseline and replicated writes, measured back to back (absent in results from before rounds). */
    rounds?: SpeedRound[];
    /** The same writes through no pair (host → P) and the synchronous pair alone (bench/replicated-writes.ts `pairs`): the hops' costs
     * (the medians of the rounds; in results from before the rounds had them, one window each). */
    hops?: { none?: { writesPerS: number; cpuUsPerWrite: number }; sync?: { writesPerS: number; cpuUsPerWrite: number } };
    /** The same with frame coalescing on (ThreadTuning.coalesceFrames: one bundle of copies per loop turn). */
    coalesced?: { writesPerS: number; cpuUsPerWrite: number };
    /** The matrix's cascade cell at 0 km, QD 32, 4 KiB (its host line is 20 µs each way), for comparison. */
    cascadeCellWritesPerS?: number;
    cascadeCellCpuUsPerWrite?: number;
    /** CPU µs per write the target leaves on this machine: cores × 1e6 / target. */
    targetCpuUsPerWrite?: number;
    /** The median of the rounds' naive baselines (one window when the threads runtime was not run). */
    naiveBaselineWritesPerS: number;
    /** The median of the rounds' own ratios. */
    ratioToNaive: number | null;
    targetWritesPerS: number;
    injection: Array<{ roundTripMs: number; distanceKm: number; writes: number; p50MinusRttUs: number; p99MinusRttUs: number; serviceUsAt0Km: number; p50ErrorUs: number; p99ErrorUs: number }>;
    sim: { eventsPerS: number; cycle1000Km: { wallMs: number; virtualMs: number; ratio: number; events: number; ok: boolean } };
    primitives: PrimitiveFigure[];
    hotPaths: HotPath[];
    formationCopy: { mib: number; wallMs: number; msPerMiB: number; virtualMs: number };
  };
}

/** Replicated 4 KiB writes per second through the cascade at 0 km, QD 32, that the issue asks of this 2-core machine. */
const TARGET_WRITES_PER_S = 300_000;
/** Rounds of the naive baseline and the replicated writes (bench/study/speed-rounds.ts), full run and quick run. */
const SPEED_ROUNDS = 3, SPEED_ROUNDS_QUICK = 2;

export function matrixOf(quick: boolean, own: Partial<Matrix> = {}): Matrix {
  const study = quick
    ? { distancesKm: [0, 10, 100, 1000], queueDepths: [1, 32], blockBytes: [4096] }
    : { distancesKm: [0, 10, 100, 300, 1000], queueDepths: [1, 8, 32], blockBytes: [4096, 65536] };
  return { ...study, schemes: [...SCHEMES], ...own };
}

/** The longest great-circle distance on Earth: a link longer than this is a mistake, not a case. */
export const MAX_DISTANCE_KM = 20_000;
export const MAX_QUEUE_DEPTH = 256;

/** An axis value's parser: the value, or undefined when the item is not one; `what` names what it should be. */
interface AxisParser<T> { parse: (item: string) => T | undefined; what: string }

/** One axis of a custom matrix from its option's value: a comma list, each value checked, the option named if not. */
function axis<T>(option: string, value: string | undefined, p: AxisParser<T>): T[] {
  const items = (value ?? '').split(',').map((x) => x.trim());
  if (!value || items.some((x) => x === '')) throw new Error(`${option} needs a comma-separated list, got '${value ?? ''}'`);
  const out: T[] = [];
  for (const item of items) {
    const v = p.parse(item);
    if (v === undefined) throw new Error(`${option}: '${item}' is not ${p.what}`);
    if (out.includes(v)) throw new Error(`${option}: '${item}' is given twice`);
    out.push(v);
  }
  return out;
}

const DISTANCE: AxisParser<number> = {
  parse: (x) => (/^[0-9]+(\.[0-9]+)?$/.test(x) && Number(x) <= MAX_DISTANCE_KM ? Number(x) : undefined),
  what: `a distance in km from 0 to ${MAX_DISTANCE_KM}`,
};
const QUEUE_DEPTH: AxisParser<number> = {
  parse: (x) => (/^[0-9]+$/.test(x) && Number(x) >= 1 && Number(x) <= MAX_QUEUE_DEPTH ? Number(x) : undefined),
  what: `a queue depth from 1 to ${MAX_QUEUE_DEPTH}`,
};
/** Block sizes in KiB: whole blocks of the firmware's BLOCK_SIZE_BYTES, at most one I/O's MAX_IO_BYTES. */
const BLOCK_KIB: AxisParser<number> = {
  parse: (x) => {
    const bytes = Number(x) * 1024;
    return /^[0-9]+$/.test(x) && bytes >= BLOCK_SIZE_BYTES && bytes <= MAX_IO_BYTES && bytes % BLOCK_SIZE_BYTES === 0 ? bytes : undefined;
  },
  what: `a block size in KiB: a multiple of ${BLOCK_SIZE_BYTES / 1024} from ${BLOCK_SIZE_BYTES / 1024} to ${MAX_IO_BYTES / 1024}`,
};
/** Link bandwidth: from a slow WAN line (1 MB/s) to 100 GB/s. */
export const LINK_MBPS_RANGE = { min: 1, max: 100_000 } as const;
const LINK_MBPS: AxisParser<number> = {
  parse: (x) => (/^[0-9]+(\.[0-9]+)?$/.test(x) && Number(x) >= LINK_MBPS_RANGE.min && Number(x) <= LINK_MBPS_RANGE.max ? Number(x) : undefined),
  what: `a link bandwidth in MB/s from ${LINK_MBPS_RANGE.min} to ${LINK_MBPS_RANGE.max.toLocaleString('en')}`,
};
const SCHEME: AxisParser<Scheme> = {
  parse: (x) => SCHEMES.find((s) => s === x),
  what: `a scheme (${SCHEMES.join(', ')})`,
};

export function windowsOf(quick: boolean): Record<RuntimeName, Window> {
  return quick
    // Quick: half a second measured, the 50 round trips of a 1000 km cell (MIN_WINDOW_ROUND_TRIPS), to keep the run under 3 minutes.
    ? { threads: { warmupUs: 150_000, measureUs: 500_000 }, sim: { warmupUs: 20_000, measureUs: 50_000, maxWrites: 1_500, minWrites: 300 } }
    // Threads: a second of warm-up lets V8 compile the hot paths and the journal volumes be touched once (page faults).
    : { threads: { warmupUs: 1_000_000, measureUs: 2_500_000 }, sim: { warmupUs: 50_000, measureUs: 200_000, maxWrites: 5_000, minWrites: 1_000 } };
}

const today = () => new Date().toISOString().slice(0, 10);
export const machineName = () => `${platform()}-${arch()}-${cpus().length}cpu`;

export async function runStudy(o: StudyOptions): Promise<{ result: StudyResult; files: string[] }> {
  const wall0 = performance.now();
  const m = matrixOf(o.quick, o.matrix);
  const windows = windowsOf(o.quick);
  const specs: CellSpec[] = [];
  for (const runtime of o.runtimes) {
    for (const scheme of m.schemes) for (const distanceKm of m.distancesKm) for (const queueDepth of m.queueDepths) for (const blockBytes of m.blockBytes) {
      specs.push({ runtime, scheme, distanceKm, queueDepth, blockBytes, ...(o.linkMBps === undefined ? {} : { linkMBps: o.linkMBps }) });
    }
  }
  const offeredFractions = o.matrixOnly ? [] : o.quick ? [0.5, 0.9, 1.2] : [0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25];
  const sweep = o.quick ? LINK_SWEEP.quick : LINK_SWEEP.full;
  const sweepPoints = o.runtimes.includes('sim') && !o.matrixOnly ? sweep.bandwidthsMBps.flatMap((mbps) => sweep.lossRates.map((loss) => ({ mbps, loss }))) : [];
  const steps = specs.length + offeredFractions.length * o.runtimes.length + sweepPoints.length + (o.matrixOnly ? 0 : o.runtimes.length + 6);
  const bar = o.progress ? new cliProgress.SingleBar({ format: 'study [{bar}] {value}/{total} {what}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic) : null;
  bar?.start(steps, 0, { what: '' });
  const tick = (what: string) => bar?.increment(1, { what });
  const say = (what: string) => bar?.update({ what });

  try {
    // 1. The matrix.
    const { cells, failed: failedCells } = await runCells(specs, (s) => runCell(s, windows[s.runtime]), { start: (s) => say(cellName(s)), end: () => tick('') });
    const compared = withModel(cells);

    // 2. RPO against offered load, and the bandwidth-limited case.
    const offeredLoad: OfferedLoadPoint[] = [];
    for (const runtime of o.runtimes) {
      for (const f of offeredFractions) {
        say(`${runtime} RPO at ${Math.round(f * 100)} % of the link`);
        offeredLoad.push(await rpoAtOfferedLoad(runtime, f, o.quick ? 1_000_000 : 3_000_000));
        tick('');
      }
    }
    const linkSweep: LinkSweepPoint[] = [];
    for (const { mbps, loss } of sweepPoints) {
      say(`sim link sweep: ${mbps} MB/s, ${loss * 100} % loss`);
      linkSweep.push(await linkSweepPoint(mbps, loss, o.quick ? 1_000_000 : 3_000_000));
      tick('');
    }
    const limited: BandwidthLimitedRun[] = [];
    for (const runtime of o.matrixOnly ? [] : o.runtimes) {
      say(`${runtime} bandwidth-limited: journal full and resync`);
      limited.push(await bandwidthLimited(runtime));
      tick('');
    }

    const result: StudyResult = {
      date: today(), machine: machineName(), node: process.version, cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
      memoryGiB: Math.round(totalmem() / 2 ** 30), quick: o.quick, ...(o.matrix || o.linkMBps !== undefined ? { custom: true } : {}), ...(o.matrixOnly ? { matrixOnly: true } : {}), wallS: 0,
      matrix: { ...m, schemes: [...m.schemes], windows: Object.fromEntries(o.runtimes.map((r) => [r, windows[r]])) },
      snapshotMode: `scheme "snapshot": a difference snapshot every ${DEFAULT_SNAPSHOT_INTERVAL_US / 1000} ms (the firmware's default); each track written since the last one is shipped once, whole, and applied whole; its difference volume is ${SNAPSHOT_JOURNAL_VOLUME_BYTES / 2 ** 20} MiB, room for a snapshot of the whole data volume`,
      cells: compared, failedCells, offeredLoad, linkSweep, bandwidthLimited: limited,
      ...(o.runtimes.includes('threads') && schedulingInEffect() ? { scheduling: { ...schedulingInEffect()!, ...slackRecord() } } : {}),
    };
    // 3. The emulator's own speed.
    if (!o.matrixOnly) result.emulator = await emulatorSpeed(o, cells, { say, tick });
    result.wallS = (performance.now() - wall0) / 1000;

    return { result, files: await writeOutputs(result, o.outDir, o.runtimes) };
  } finally {
    bar?.stop();
  }
}

/** The emulator's own speed (section 3): the replicated writes against the naive baseline, injection, sim, primitives. */
async function emulatorSpeed(o: StudyOptions, cells: CellResult[], progress: { say: (what: string) => void; tick: (what: string) => void }): Promise<NonNullable<StudyResult['emulator']>> {
  const { say, tick } = progress;
  // The naive baseline, and the replicated writes through no pair, the synchronous pair alone and the cascade, in
  // rounds, back to back (bench/study/speed-rounds.ts): each hop's cost is then a difference within one round.
  // Quick: 0.8 s windows, so that the four measurements of each round keep the quick run under 3 minutes.
  const windowMs = o.quick ? 800 : 1_500;
  const naiveOnce = async (): Promise<number> => (await naiveCascadeWritesPerSecond({ durationMs: windowMs, queueDepth: 32 })).writesPerSecond;
  const writes = async (pairs: ReplicatedWritesPairs): Promise<WritesMeasure> => {
    const r = await replicatedCascadeWritesPerSecond({ queueDepth: 32, pairs, durationMs: windowMs, warmupMs: 500 });
    return { writesPerS: r.writesPerSecond, cpuUsPerWrite: r.cpuUsPerWrite };
  };
  let rounds: SpeedRound[] = [];
  if (o.runtimes.includes('threads')) {
    rounds = await measureRounds(o.quick ? SPEED_ROUNDS_QUICK : SPEED_ROUNDS, (round) => {
      say(`naive postMessage baseline (round ${round})`);
      return naiveOnce();
    }, (round) => {
      say(`replicated writes: cascade, 0 km, QD 32, no latency injected (round ${round})`);
      return writes('cascade');
    }, (round, pairs) => {
      say(`replicated writes through ${pairs === 'none' ? 'no pair (host → P)' : 'the synchronous pair alone'} (round ${round})`);
      return writes(pairs);
    });
  }
  const speed = rounds.length > 0 ? summariseRounds(rounds) : null;
  const naiveWritesPerS = speed ? speed.naiveWritesPerS : await naiveOnce();
  tick('');
  say('replicated writes with frame coalescing');
  const coalesced = o.runtimes.includes('threads')
    ? await replicatedCascadeWritesPerSecond({ queueDepth: 32, durationMs: o.quick ? 1_000 : 3_000, warmupMs: 500, tuning: { coalesceFrames: true } }) : null;
  tick('');
  const cascadeCell = cells.find((c) => c.runtime === 'threads' && c.scheme === 'cascade' && c.distanceKm === 0 && c.queueDepth === 32 && c.blockBytes === 4096);
  const injection = cells.filter((c) => c.runtime === 'threads' && c.scheme === 'sync' && c.queueDepth === 1 && c.blockBytes === 4096 && [10, 100, 1000].includes(c.distanceKm))
    .map((c) => {
      const at0 = cells.find((x) => x.runtime === 'threads' && x.scheme === 'sync' && x.queueDepth === 1 && x.blockBytes === 4096 && x.distanceKm === 0);
      const rtt = roundTripUs(c.distanceKm), service = at0?.latencyUs.p50 ?? 0;
      return {
        roundTripMs: rtt / 1000, distanceKm: c.distanceKm, writes: c.writes,
        p50MinusRttUs: c.latencyUs.p50 - rtt, p99MinusRttUs: c.latencyUs.p99 - rtt, serviceUsAt0Km: service,
        p50ErrorUs: c.latencyUs.p50 - rtt - service, p99ErrorUs: c.latencyUs.p99 - rtt - service,
      };
    });
  const simCells = cells.filter((c) => c.runtime === 'sim');
  const simEventsPerS = simCells.length ? simCells.reduce((n, c) => n + c.firmwareEvents, 0) / (simCells.reduce((n, c) => n + c.wallMs, 0) / 1000) : 0;
  say('sim: embodiment1-cycle over 1000 km links');
  const cycleWall0 = performance.now();
  const cycle = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1, linkDistanceKm: 1000, scale: o.quick ? 0.25 : 1 });
  const cycleWallMs = performance.now() - cycleWall0;
  tick('');
  say('primitives of this machine');
  const primitives = await measurePrimitives({ quick: o.quick });
  tick('');
  say('hot paths (tinybench)');
  const hotPaths = await measureHotPaths(o.quick);
  tick('');
  say('formation copy per MiB');
  const formationCopy = await formationCopyMsPerMiB();
  tick('');

  return {
      replicatedWritesPerS: speed ? speed.replicatedWritesPerS : null,
      ...(speed ? { replicatedCpuUsPerWrite: speed.replicatedCpuUsPerWrite, targetCpuUsPerWrite: (cpus().length * 1e6) / TARGET_WRITES_PER_S, rounds, hops: speed.hops } : {}),
      ...(coalesced ? { coalesced: { writesPerS: coalesced.writesPerSecond, cpuUsPerWrite: coalesced.cpuUsPerWrite } } : {}),
      ...(cascadeCell ? { cascadeCellWritesPerS: cascadeCell.iops, cascadeCellCpuUsPerWrite: cascadeCell.cpuUsPerWrite } : {}),
      naiveBaselineWritesPerS: naiveWritesPerS,
      ratioToNaive: speed ? speed.ratioToNaive : null,
      targetWritesPerS: TARGET_WRITES_PER_S,
      injection,
      sim: {
        eventsPerS: simEventsPerS,
        cycle1000Km: { wallMs: cycleWallMs, virtualMs: cycle.virtualTimeUs / 1000, ratio: cycle.virtualTimeUs / 1000 / cycleWallMs, events: cycle.firmwareEvents, ok: cycle.ok },
      },
      primitives, hotPaths, formationCopy,
  };
}

/** The model beside every cell (again, when re-rendering a results file with a newer model). */
function withModel(cells: CellResult[]): StudyResult['cells'] {
  return cells.map((c) => {
    const { model: _old, ...cell } = c as StudyResult['cells'][number];
    const cmp = compare(cell, cells);
    return cmp ? { ...cell, model: { iops: cmp.model.iops, latencyUs: cmp.model.latencyUs, bound: cmp.model.bound, iopsError: cmp.iopsError, why: cmp.why, note: cmp.note } } : cell;
  });
}

/** Writes <date>-<machine>[-quick].json, .md and the charts; returns their paths. */
export async function writeOutputs(result: StudyResult, outDir: string, runtimes: RuntimeName[]): Promise<string[]> {
  const m = result.matrix, cells = result.cells;
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `${result.date}-${result.machine}${result.custom || result.matrixOnly ? '-custom' : ''}${result.quick ? '-quick' : ''}`);
  const charts: Array<{ file: string; title: string }> = [];
  const chart = async (suffix: string, title: string, spec: Parameters<typeof toSvg>[0]) => {
    const file = `${base}-${suffix}.svg`;
    writeFileSync(file, await toSvg(spec));
    charts.push({ file, title });
  };
  for (const runtime of runtimes) {
    for (const bs of m.blockBytes) {
      await chart(`iops-${runtime}-${bs / 1024}k`, `IOPS against distance (${runtime}, ${bs / 1024} KiB)`, iopsVsDistance(cells, runtime, bs));
      await chart(`latency-${runtime}-${bs / 1024}k`, `latency against distance (${runtime}, ${bs / 1024} KiB)`, latencyVsDistance(cells, runtime, bs));
    }
  }
  for (const runtime of runtimes) {
    const share = syncShareVsDistance(cells, runtime);
    if (share) await chart(`sync-share-${runtime}`, `synchronous IOPS as a share of asynchronous against distance (${runtime})`, share);
  }
  const oc = OFFERED_LOAD_CASE;
  if (result.offeredLoad.length) await chart('rpo-offered-load', 'RPO against offered load',
    rpoVsOfferedLoad(result.offeredLoad, `asynchronous I→R, ${oc.distanceKm} km, ${oc.bandwidthMBps} MB/s link, ${oc.blockBytes / 1024} KiB writes, ${oc.journalBytes / 2 ** 20} MiB journal`));
  if (result.linkSweep?.length) {
    const ls = LINK_SWEEP;
    await chart('rpo-link-sweep', 'RPO against the link\'s bandwidth and loss (sim)', rpoVsLinkBandwidth(result.linkSweep,
      `asynchronous I→R, ${ls.distanceKm} km, ${ls.blockBytes / 1024} KiB writes at ${ls.offeredFraction * 100} % of the bandwidth, ${ls.journalBytes / 2 ** 20} MiB journal, sim runtime`));
  }
  for (const run of result.bandwidthLimited) await chart(`rpo-over-time-${run.runtime}`, `RPO over time, bandwidth-limited (${run.runtime})`, rpoOverTime(run));
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 1));
  writeFileSync(`${base}.md`, markdownReport(result, charts.map((c) => ({ ...c, file: c.file.slice(outDir.length).replace(/^\//, '') })), BANDWIDTH_CASE, TOLERANCE));
  return [`${base}.json`, `${base}.md`, ...charts.map((c) => c.file)];
}

/** `--from FILE`: the report and charts of a results file again, with this build's model (no measuring). */
async function rerender(file: string, outDir: string): Promise<string[]> {
  const { readFileSync } = await import('node:fs');
  const result = JSON.parse(readFileSync(file, 'utf8')) as StudyResult;
  // Files written before cells recorded the machine's cores: the study's machine line has them ("2 × AMD EPYC").
  const cores = Number.parseInt(result.cpus, 10);
  if (cores > 0) for (const c of result.cells) if (c.cpuUsPerWrite !== undefined && c.cores === undefined) c.cores = cores;
  result.cells = withModel(result.cells);
  return writeOutputs(result, outDir, [...new Set(result.cells.map((c) => c.runtime))]);
}

function parseArgs(argv: string[]): StudyOptions & { from?: string } {
  const o: StudyOptions & { from?: string } = { quick: false, runtimes: ['threads', 'sim'], outDir: 'bench/results', progress: process.stderr.isTTY === true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') o.quick = true;
    else if (a === '--runtimes') {
      const v = argv[++i] ?? '';
      const rs = v.split(',').filter(Boolean);
      if (rs.length === 0 || rs.some((r) => r !== 'threads' && r !== 'sim')) throw new Error(`--runtimes takes threads, sim or threads,sim, not '${v}'`);
      o.runtimes = rs as RuntimeName[];
    } else if (a === '--out') {
      o.outDir = argv[++i] ?? '';
      if (!o.outDir) throw new Error('--out needs a directory');
    } else if (a === '--progress') o.progress = true;
    else if (a === '--distances') (o.matrix ??= {}).distancesKm = axis(a, argv[++i], DISTANCE).sort((x, y) => x - y);
    else if (a === '--queue-depths') (o.matrix ??= {}).queueDepths = axis(a, argv[++i], QUEUE_DEPTH).sort((x, y) => x - y);
    else if (a === '--blocks') (o.matrix ??= {}).blockBytes = axis(a, argv[++i], BLOCK_KIB).sort((x, y) => x - y);
    else if (a === '--schemes') (o.matrix ??= {}).schemes = axis(a, argv[++i], SCHEME);
    else if (a === '--matrix-only') o.matrixOnly = true;
    else if (a === '--link-mbps') {
      const v = axis(a, argv[++i], LINK_MBPS);
      if (v.length !== 1) throw new Error(`--link-mbps takes one bandwidth (one run per bandwidth), got ${v.length}`);
      o.linkMBps = v[0]!;
    }
    else if (a === '--from') {
      o.from = argv[++i] ?? '';
      if (!o.from) throw new Error('--from needs a results file (bench/results/<date>-<machine>.json)');
    } else throw new Error(`unknown option '${a}' (bench takes --quick, --runtimes threads,sim, --out DIR, --progress, --from FILE, `
      + '--distances KM,…, --queue-depths QD,…, --blocks KIB,…, --schemes sync,async,snapshot,cascade, --link-mbps MBPS, --matrix-only)');
  }
  return o;
}

export async function main(argv: string[]): Promise<number> {
  let o: StudyOptions & { from?: string };
  try {
    o = parseArgs(argv);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    return 2;
  }
  if (o.from) {
    const files = await rerender(o.from, o.outDir);
    console.log(`re-rendered with this build's model:\n${files.map((f) => `  ${f}`).join('\n')}`);
    return 0;
  }
  const { result, files } = await runStudy(o);
  const md = files.find((f) => f.endsWith('.md'))!;
  const { readFileSync } = await import('node:fs');
  console.log(readFileSync(md, 'utf8'));
  console.log(`study finished in ${result.wallS.toFixed(0)} s; wrote:\n${files.map((f) => `  ${f}`).join('\n')}`);
  const failed = result.failedCells ?? [];
  if (failed.length === 0) return 0;
  console.error(`bench: ${failed.length} cell(s) did not finish (listed in the report):\n${failed.map((f) => `  ${cellName(f)}: ${f.error}`).join('\n')}`);
  return 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
