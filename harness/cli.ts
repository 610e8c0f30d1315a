// rclab: the command line. A thin layer over the programmatic API (harness/index.ts).

import { Command, InvalidArgumentError, Option } from 'commander';
import { RUNTIMES } from './runtimes.ts';
import { runScenario, SCENARIOS, findScenario, type ScenarioResult, type TimelineEntry } from './scenarios.ts';
import { SimDebugger } from './debugger.ts';
import { DebugRepl } from './debug-repl.ts';
import type { RunRecipe } from './world-state.ts';
import { systemSpec, type World } from './world.ts';
import { formatRunSummary, timelineFormatter } from './timeline.ts';
import { FAULT_PROFILES, type FaultProfile, type ScheduledFault } from './nemesis.ts';
import { allScenarioNames, defaultWorkers, formatSummary, sweep, type SweepOptions } from './sweep.ts';
import { DEFAULT_SNAPSHOT_INTERVAL_US, MAX_SNAPSHOT_INTERVAL_US, MIN_SNAPSHOT_INTERVAL_US, PLANTED_BUGS, type PlantedBug } from '../firmware/constants.ts';
import { ASYNC_MODES, type AsyncMode } from '../firmware/definition-info.ts';
import { readFileSync } from 'node:fs';
import { DEFAULT_CONTROL, ControlError, controlRequest, faultFromArgs, formatPairDisplay, type FaultArgs } from './operator.ts';
import { DEFAULT_CONTROL_PORT, DEFAULT_NBD_PORT, ServeSession, type PairDisplayRow } from './serve.ts';
import { embodiment1Topology, type Topology } from './topology.ts';
import { parsePauseSpec, type PauseSpec } from './pause.ts';
import { applyCopyDevices, parseCopyDevicesArg, type CopyDevicesOption } from './copy-devices.ts';

function parseSchedule(v: string): ScheduledFault[] {
  let x: unknown;
  try {
    x = JSON.parse(v);
  } catch (e) {
    throw new InvalidArgumentError(`--fault-schedule is not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(x) || !x.every((f) => f && typeof f === 'object' && 'fault' in f && typeof f.fault?.kind === 'string'
    && (typeof f.atUs === 'number' || typeof f.atStep === 'string') && typeof f.repairAfterUs === 'number')) {
    throw new InvalidArgumentError('--fault-schedule must be a JSON array of {atUs or atStep, fault: {kind, …}, repairAfterUs}');
  }
  return x as ScheduledFault[];
}

function integer(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0, not '${v}'`);
    return n;
  };
}

function positive(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0, not '${v}'`);
    return n;
  };
}

function nonNegative(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0, not '${v}'`);
    return n;
  };
}

function pauseOption(v: string): PauseSpec {
  try {
    return parsePauseSpec(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

interface RunCliOptions {
  runtime: 'threads' | 'sim'; seed: number; scale: number; json?: boolean; quiet?: boolean; faults: FaultProfile;
  faultSchedule?: ScheduledFault[]; plantedBug?: PlantedBug; trace?: string; saveAt?: string[]; pause?: PauseSpec;
  copyDevices?: CopyDevicesOption; asyncMode?: AsyncMode; snapshotIntervalUs?: number;
}

function copyDevicesOption(v: string): CopyDevicesOption {
  try {
    return parseCopyDevicesArg(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** SPEC §5, for run, debug and sweep: the mode every asynchronous pair the routines create copies in. */
const asyncModeOption = () => new Option('--async-mode <mode>', 'SPEC §5: every asynchronous pair copies by journal (the default), or by difference snapshots applied whole').choices(ASYNC_MODES);
const snapshotIntervalOption = () => new Option('--snapshot-interval-us <us>',
  `with --async-mode snapshot: microseconds between difference snapshots (${MIN_SNAPSHOT_INTERVAL_US}..${MAX_SNAPSHOT_INTERVAL_US}, default ${DEFAULT_SNAPSHOT_INTERVAL_US})`)
  .argParser(integer('--snapshot-interval-us'));

/** --snapshot-interval-us only means something in snapshot mode, and only within the firmware's range. */
function checkSnapshotInterval(o: { asyncMode?: AsyncMode; snapshotIntervalUs?: number }): void {
  if (o.snapshotIntervalUs === undefined) return;
  if (o.asyncMode !== 'snapshot') throw new Error('--snapshot-interval-us needs --async-mode snapshot');
  if (o.snapshotIntervalUs < MIN_SNAPSHOT_INTERVAL_US || o.snapshotIntervalUs > MAX_SNAPSHOT_INTERVAL_US) {
    throw new Error(`--snapshot-interval-us must be ${MIN_SNAPSHOT_INTERVAL_US}..${MAX_SNAPSHOT_INTERVAL_US}, not ${o.snapshotIntervalUs}`);
  }
}

function recipeOf(name: string, o: RunCliOptions): RunRecipe {
  return { scenario: name, seed: o.seed, scale: o.scale, faults: o.faults, schedule: o.faultSchedule, plantedBug: o.plantedBug, copyDevices: o.copyDevices,
    asyncMode: o.asyncMode, snapshotIntervalUs: o.snapshotIntervalUs };
}

const COPY_DEVICES_HELP = 'every storage system copies through a copy device of its own (¶0168, claim 13) instead of its CPU: default 1000 MB/s, 64 frames deep, 2 µs set-up per frame';

/** Refuses, before anything runs, an unknown scenario and `--copy-devices` for a topology with devices of its own (by name). */
function checkScenarios(scenarios: string[], copyDevices: CopyDevicesOption | undefined): void {
  for (const name of scenarios) {
    const s = findScenario(name);
    if (copyDevices !== undefined) applyCopyDevices(s.topology(), copyDevices, '--copy-devices');
  }
}

function parseSaveAt(v: string[], runtime: string): { step: string; file: string } {
  const [step, file] = v;
  if (!step || !/^S\d+$/.test(step) || !file) throw new Error(`--save-at needs a step number and a file, like --save-at S250 run.snap (got '${v.join(' ')}')`);
  if (runtime !== 'sim') throw new Error('--save-at needs --runtime sim (snapshots are of the deterministic runtime)');
  return { step, file };
}

/** A trace recorder that follows the run's world (the debugger builds a new one on back and load). */
async function traceAttacher() {
  const { TraceRecorder } = await import('./trace.ts');
  let rec: InstanceType<typeof TraceRecorder> | null = null;
  return {
    onWorld: (w: World) => { rec = new TraceRecorder(w); return (e: TimelineEntry) => rec!.timeline(e); },
    get sink() { return rec ? (e: TimelineEntry) => rec!.timeline(e) : undefined; },
    write: (path: string) => { if (!rec) throw new Error('no world was built: nothing to trace'); rec.write(path); },
  };
}

const program = new Command();
program
  .name('rclab')
  .description('remote-copy-lab: storage-array controllers replicating volumes between sites (EP1647891), emulated')
  .showHelpAfterError();

program
  .command('list')
  .description('list the scenarios')
  .option('--json', 'machine-readable output')
  .action((o: { json?: boolean }) => {
    if (o.json) return console.log(JSON.stringify(SCENARIOS.map((s) => ({ name: s.name, description: s.description }))));
    for (const s of SCENARIOS) console.log(`${s.name.padEnd(38)} ${s.description}`);
  });

program
  .command('run')
  .description('run a scenario and check it behaved as designed (exit code 0) or not (1)')
  .argument('<scenario>', 'scenario name (see rclab list)')
  .addOption(new Option('--runtime <runtime>', 'threads: one worker per storage system, real time; sim: one thread, virtual time, deterministic').choices(RUNTIMES).default('threads'))
  .option('--seed <n>', 'seed of the run\'s PRNG', integer('--seed'), 1)
  .option('--scale <x>', 'scale of workloads and intervals', positive('--scale'), 1)
  .addOption(new Option('--faults <profile>', 'inject faults drawn from the seed (links, default, aggressive); checks stay binding, expectations do not, and a liveness phase follows').choices([...FAULT_PROFILES]).default('none'))
  .option('--fault-schedule <json>', 'inject exactly this schedule (a JSON array of {atUs|atStep, fault, repairAfterUs}), e.g. from a failed sweep', parseSchedule)
  .addOption(new Option('--planted-bug <bug>', 'test-only: run firmware with a deliberately planted bug (sim)').choices(PLANTED_BUGS))
  .option('--trace <file.json>', 'write a Chrome Trace Event file (open it in ui.perfetto.dev)')
  .option('--save-at <step-and-file...>', 'sim: save the whole world to a snapshot file when step <step> (like S250) is first logged, then go on')
  .option('--pause <system@step:ms>', 'threads: when step <step> is first logged, pause storage system <system> for <ms> milliseconds (its CPU holds between two events, as at a breakpoint) while the others run on, e.g. I@S230:2000', pauseOption)
  .option('--copy-devices [MBps:depth:setupUs]', COPY_DEVICES_HELP, copyDevicesOption)
  .addOption(asyncModeOption()).addOption(snapshotIntervalOption())
  .option('--json', 'print one JSON object with the result instead of the timeline')
  .option('--quiet', 'no timeline, only the summary')
  .action(async (name: string, o: RunCliOptions) => {
    try {
      const scenario = findScenario(name);
      checkSnapshotInterval(o);
      if (o.saveAt) parseSaveAt(o.saveAt, o.runtime);
      if (o.pause) {
        if (o.runtime !== 'threads') throw new Error(`--pause needs --runtime threads (on the sim runtime, \`rclab debug\` stops the whole world at a step instead)`);
        if (o.saveAt) throw new Error('--pause and --save-at cannot be combined: snapshots are of the sim runtime, pauses of the threads runtime');
        systemSpec(scenario.topology(), o.pause.system);
      }
      checkScenarios([name], o.copyDevices);
    } catch (e) {
      program.error((e as Error).message, { exitCode: 2 });
    }
    const color = !o.json && process.stdout.isTTY === true;
    const fmt = timelineFormatter(color);
    const print = o.json || o.quiet ? undefined : (e: TimelineEntry) => { const line = fmt(e); if (line) console.log(line); };
    const trace = o.trace ? await traceAttacher() : null;
    let result: ScenarioResult;
    if (o.saveAt) {
      const { step, file } = parseSaveAt(o.saveAt, o.runtime);
      const dbg = await SimDebugger.start(recipeOf(name, o), { timeline: print, onWorld: trace?.onWorld });
      const r = await dbg.next(step);
      if (r.kind === 'finished') program.error(`--save-at: step ${step} was never logged in this run`, { exitCode: 1 });
      const bytes = dbg.save(file);
      if (!o.json) console.log(`snapshot of event #${dbg.eventIndex} (${step}, ${(dbg.nowUs / 1000).toFixed(3)} ms) saved to ${file}: ${(bytes / 1024).toFixed(0)} KiB`);
      result = await dbg.finish();
    } else {
      result = await runScenario(name, {
        runtime: o.runtime, seed: o.seed, scale: o.scale, faults: o.faults, schedule: o.faultSchedule, plantedBug: o.plantedBug, pause: o.pause, copyDevices: o.copyDevices,
        asyncMode: o.asyncMode, snapshotIntervalUs: o.snapshotIntervalUs,
        timeline: (e) => { trace?.sink?.(e); print?.(e); },
        onWorld: trace ? (w) => { trace.onWorld(w); } : undefined,
      });
    }
    if (trace && o.trace) trace.write(o.trace);
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else console.log(formatRunSummary(result, color));
    process.exitCode = result.ok ? 0 : 1;
  });

program
  .command('debug')
  .description('step the firmware of a scenario on the sim runtime: breakpoints, print, back, save/load (interactive, or a script of commands)')
  .argument('[scenario]', 'scenario name (see rclab list); not needed with --load')
  .option('--seed <n>', 'seed of the run\'s PRNG', integer('--seed'), 1)
  .option('--scale <x>', 'scale of workloads and intervals', positive('--scale'), 1)
  .addOption(new Option('--faults <profile>', 'inject faults drawn from the seed').choices([...FAULT_PROFILES]).default('none'))
  .option('--fault-schedule <json>', 'inject exactly this schedule', parseSchedule)
  .addOption(new Option('--planted-bug <bug>', 'test-only: firmware with a planted bug').choices(PLANTED_BUGS))
  .option('--copy-devices [MBps:depth:setupUs]', COPY_DEVICES_HELP, copyDevicesOption)
  .addOption(asyncModeOption()).addOption(snapshotIntervalOption())
  .option('--load <file>', 'start from a snapshot file (rclab run --save-at, or save in the debugger); it carries its copy devices')
  .option('--commands <file>', 'read commands from a file (- for stdin) instead of the prompt; also used when stdin is not a terminal')
  .option('--trace <file.json>', 'write a Chrome Trace Event file of the run up to where the session ends')
  .option('--no-color', 'no colours')
  .action(async (name: string | undefined, o: RunCliOptions & { load?: string; commands?: string; color: boolean }) => {
    if (!o.load && !name) program.error('rclab debug needs a scenario name or --load <file>', { exitCode: 2 });
    if (o.load && o.copyDevices !== undefined) program.error('--copy-devices and --load cannot be combined: a snapshot replays with the copy devices it was saved with', { exitCode: 2 });
    if (o.load && o.asyncMode !== undefined) program.error('--async-mode and --load cannot be combined: a snapshot replays in the mode it was saved with', { exitCode: 2 });
    try {
      checkSnapshotInterval(o);
      if (name) checkScenarios([name], o.copyDevices);
    } catch (e) {
      program.error((e as Error).message, { exitCode: 2 });
    }
    const interactive = !o.commands && process.stdin.isTTY === true;
    const color = o.color && process.stdout.isTTY === true;
    const trace = o.trace ? await traceAttacher() : null;
    let repl: DebugRepl | null = null;
    const options = { timeline: (e: TimelineEntry) => repl?.timeline(e), onWorld: trace?.onWorld };
    let dbg: SimDebugger;
    try {
      dbg = o.load ? await SimDebugger.load(o.load, options) : await SimDebugger.start(recipeOf(name!, o), options);
    } catch (e) {
      return program.error((e as Error).message, { exitCode: 2 });
    }
    repl = new DebugRepl(dbg, { color, writeTrace: trace && o.trace ? () => { trace.write(o.trace!); console.log(`trace written to ${o.trace}`); } : undefined });
    repl.banner();
    if (o.load) console.log(`loaded ${o.load}: event #${dbg.eventIndex}, world digest ${dbg.digest()} matches the file`);
    if (interactive) await repl.interactive();
    else await repl.runScript(o.commands && o.commands !== '-' ? readFileSync(o.commands, 'utf8') : readFileSync(0, 'utf8'));
    await repl.debugger.close();
    process.exitCode = repl.failedCommands > 0 ? 1 : 0;
  });

program
  .command('bench')
  .description('the benchmark study: sync against async copying over 0–1000 km on both runtimes, against the model, and the emulator\'s own speed (writes bench/results/)')
  .option('--quick', 'a smaller matrix and shorter windows (under 3 minutes)')
  .option('--runtimes <list>', 'threads, sim or threads,sim', 'threads,sim')
  .option('--out <dir>', 'where the results, report and charts go', 'bench/results')
  .option('--distances <km,…>', 'a matrix of one\'s own: link lengths in km (files named …-custom)')
  .option('--queue-depths <qd,…>', 'a matrix of one\'s own: queue depths')
  .option('--blocks <KiB,…>', 'a matrix of one\'s own: block sizes in KiB')
  .option('--schemes <list>', 'a matrix of one\'s own: sync, async, snapshot, cascade')
  .option('--link-mbps <MB/s>', 'a matrix of one\'s own: every link at this bandwidth (the study\'s: 1000)')
  .option('--matrix-only', 'the matrix alone: no offered-load, link-sweep, bandwidth-limited or emulator-speed runs')
  .action(async (o: { quick?: boolean; runtimes: string; out: string; distances?: string; queueDepths?: string; blocks?: string; schemes?: string; linkMbps?: string; matrixOnly?: boolean }) => {
    const { main } = await import('../bench/study.ts');
    const axes = ([['--distances', o.distances], ['--queue-depths', o.queueDepths], ['--blocks', o.blocks], ['--schemes', o.schemes], ['--link-mbps', o.linkMbps]] as const)
      .flatMap(([flag, v]) => (v === undefined ? [] : [flag, v]));
    process.exitCode = await main([...(o.quick ? ['--quick'] : []), '--runtimes', o.runtimes, '--out', o.out, ...axes, ...(o.matrixOnly ? ['--matrix-only'] : []),
      ...(process.stderr.isTTY ? ['--progress'] : [])]);
  });

program
  .command('sweep')
  .description('run many seeds of the sim runtime with the nemesis and every checker, in a pool of workers; exit 1 on any violation')
  .option('--scenario <name>', 'one scenario (default: all)')
  .option('--all', 'every scenario (the default)')
  .option('--seeds <n>', 'how many seeds', integer('--seeds'), 100)
  .option('--from <k>', 'first seed', integer('--from'), 1)
  .option('--workers <w>', 'worker threads', integer('--workers'), defaultWorkers())
  .addOption(new Option('--faults <profile>', 'fault profile').choices([...FAULT_PROFILES]).default('default'))
  .option('--scale <x>', 'scale of workloads and intervals', positive('--scale'), 0.5)
  .addOption(new Option('--planted-bug <bug>', 'test-only: run firmware with a deliberately planted bug').choices(PLANTED_BUGS))
  .option('--copy-devices [MBps:depth:setupUs]', `${COPY_DEVICES_HELP}; passed to every run, and in every replay command`, copyDevicesOption)
  .addOption(asyncModeOption()).addOption(snapshotIntervalOption())
  .option('--stop-on-failure', 'stop scheduling seeds after the first violation')
  .option('--json', 'print the summary as JSON')
  .action(async (o: { scenario?: string; seeds: number; from: number; workers: number; faults: FaultProfile; scale: number; plantedBug?: PlantedBug; copyDevices?: CopyDevicesOption;
    asyncMode?: AsyncMode; snapshotIntervalUs?: number; stopOnFailure?: boolean; json?: boolean }) => {
    const scenarios = o.scenario ? [o.scenario] : allScenarioNames();
    try { checkSnapshotInterval(o); checkScenarios(scenarios, o.copyDevices); } catch (e) { program.error((e as Error).message, { exitCode: 2 }); }
    if (o.seeds < 1) program.error('--seeds must be at least 1', { exitCode: 2 });
    if (o.workers < 1) program.error('--workers must be at least 1', { exitCode: 2 });
    const opts: SweepOptions = { scenarios, seeds: o.seeds, from: o.from, workers: o.workers,
      faults: o.faults, scale: o.scale, plantedBug: o.plantedBug, copyDevices: o.copyDevices, asyncMode: o.asyncMode, snapshotIntervalUs: o.snapshotIntervalUs,
      stopOnFailure: o.stopOnFailure, progress: !o.json && process.stderr.isTTY === true };
    const summary = await sweep(opts);
    if (o.json) console.log(JSON.stringify(summary, null, 2));
    else console.log(formatSummary(summary, opts));
    process.exitCode = summary.failures.length === 0 ? 0 : 1;
  });

// ───────────────────────────── serve, and the operator's verbs ─────────────────────────────

function serveTopology(target: string, o: { dataMib: number; journalMib: number; s1Km: number; s2Km: number }): Topology {
  if (target.endsWith('.json')) {
    try {
      return JSON.parse(readFileSync(target, 'utf8')) as Topology;
    } catch (e) {
      program.error(`topology file ${target}: ${(e as Error).message}`, { exitCode: 2 });
    }
  }
  if (target !== 'embodiment1') {
    try { findScenario(target); } catch { program.error(`unknown scenario or topology '${target}' (use embodiment1, a scenario name, or a .json topology file)`, { exitCode: 2 }); }
  }
  const MiB = 1024 * 1024;
  return embodiment1Topology({ dataVolumeBytes: o.dataMib * MiB, journalVolumeBytes: o.journalMib * MiB, s1DistanceKm: o.s1Km, s2DistanceKm: o.s2Km });
}

program
  .command('serve')
  .description('run a long-lived emulated world (threads runtime) with NBD exports <system>/vol<k> and a control API for the operator verbs')
  .argument('[target]', 'embodiment1, a scenario name (its topology), or a .json topology file', 'embodiment1')
  .option('--nbd-port <n>', 'NBD port on 127.0.0.1', integer('--nbd-port'), DEFAULT_NBD_PORT)
  .option('--control-port <n>', 'control API port on 127.0.0.1', integer('--control-port'), DEFAULT_CONTROL_PORT)
  .option('--data-mib <n>', 'size of each data volume (MiB)', positive('--data-mib'), 64)
  .option('--journal-mib <n>', 'size of each journal volume (MiB)', positive('--journal-mib'), 64)
  .option('--s1-km <n>', 'distance P–I (synchronous link S1)', nonNegative('--s1-km'), 100)
  .option('--s2-km <n>', 'distance I–R (asynchronous link S2)', nonNegative('--s2-km'), 1000)
  .option('--form-pairs', 'run A2 (initial copying: P →sync I →async R) before serving')
  .option('--seed <n>', 'seed of the world\'s PRNG', integer('--seed'), 1)
  .action(async (target: string, o: { nbdPort: number; controlPort: number; dataMib: number; journalMib: number; s1Km: number; s2Km: number; formPairs?: boolean; seed: number }) => {
    const topology = serveTopology(target, o);
    let session!: ServeSession;
    try {
      session = await ServeSession.start({ topology, nbdPort: o.nbdPort, controlPort: o.controlPort, seed: o.seed, formPairs: o.formPairs, color: process.stdout.isTTY === true });
    } catch (e) {
      program.error(`rclab serve: ${(e as Error).message}`, { exitCode: 2 });
    }
    const exportsList = topology.systems.flatMap((s) => s.lvols.filter((l) => l.kind === 'data').map((_, k) => `${s.name}/vol${k}`));
    console.log(`rclab serve: ${topology.name}; NBD on nbd://127.0.0.1:${session.nbdPort}/<export> (exports ${exportsList.join(', ')}); control on 127.0.0.1:${session.controlPort}`);
    const stop = (sig: string) => { console.log(`rclab serve: ${sig}: finishing acknowledged writes, then stopping`); void session.stop(); };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    await session.stopped;
    console.log('rclab serve: stopped; ports released');
  });

/** Runs one verb against a running serve, printing its answer (or --json), exit 1 on refusal. */
async function verb(o: { control: string; json?: boolean }, name: string, body: unknown, print: (v: Record<string, unknown>) => string): Promise<void> {
  try {
    const v = await controlRequest(o.control, name, body);
    console.log(o.json ? JSON.stringify(v, null, 2) : print(v));
  } catch (e) {
    if (!(e instanceof ControlError)) throw e;
    if (o.json) console.log(JSON.stringify({ ok: false, error: e.message }));
    else console.error(`rclab ${name}: ${e.message}`);
    process.exitCode = 1;
  }
}

const controlOpt = () => new Option('--control <host:port>', 'where rclab serve\'s control API listens (or RCLAB_CONTROL)').default(DEFAULT_CONTROL);
const pairMessage = (v: Record<string, unknown>) => String(v.message ?? 'done');
const reportsOf = (v: Record<string, unknown>) => {
  const reps = (v.reports as Array<{ step: string; dataLoss: boolean; message: string }> | undefined) ?? [];
  return [`${String(v.routine)}: done (${String(v.steps)} steps)`, ...reps.map((r) => `  report ${r.step}: ${r.dataLoss ? 'DATA LOSS' : 'NO DATA LOSS'} — ${r.message}`)].join('\n');
};

program.command('pairdisplay').description('show every pair of every storage system: state, copy %, journal %, lag').addOption(controlOpt()).option('--json', 'JSON')
  .action((o: { control: string; json?: boolean }) => verb(o, 'pairdisplay', {}, (v) => formatPairDisplay(v.pairs as PairDisplayRow[], v.down as string[])));

program.command('paircreate').description('define a pair on a storage system (it becomes the source) and start its initial copy')
  .requiredOption('--system <name>', 'storage system of the source volume').requiredOption('--pair <id>', 'pair id', integer('--pair'))
  .requiredOption('--remote <name>', 'storage system of the destination volume')
  .addOption(new Option('--type <type>', 'copy type').choices(['sync', 'async']).makeOptionMandatory())
  .addOption(new Option('--fence <level>', 'fence level (sync default data)').choices(['data', 'status', 'never']))
  .option('--lvol <n>', 'source LVOL', integer('--lvol')).option('--remote-lvol <n>', 'destination LVOL', integer('--remote-lvol'))
  .option('--volumes <list>', 'a consistency group: source:destination LVOLs, comma-separated, e.g. 0:0,2:2 (one journal and state for all)', groupMembers)
  .addOption(new Option('--initial-copy <kind>', 'initial copy').choices(['full', 'none', 'defer']))
  .addOption(new Option('--async-mode <mode>', 'async: copy by journal (default) or by difference snapshots (SPEC §5)').choices(ASYNC_MODES))
  .option('--snapshot-interval-us <us>', 'async snapshot mode: microseconds between difference snapshots', integer('--snapshot-interval-us'))
  .option('--inflow-control', 'async journal mode: pace host writes while the journal is over its high-water mark (80 %) instead of letting it fill')
  .addOption(controlOpt()).option('--json', 'JSON')
  .action((o: { system: string; pair: number; remote: string; type: string; fence?: string; lvol?: number; remoteLvol?: number; volumes?: unknown; initialCopy?: string;
    asyncMode?: string; snapshotIntervalUs?: number; inflowControl?: boolean; control: string; json?: boolean }) =>
    verb(o, 'paircreate', { system: o.system, pairId: o.pair, remote: o.remote, copyType: o.type, fence: o.fence, localLvol: o.lvol, remoteLvol: o.remoteLvol,
      volumes: o.volumes, initialCopy: o.initialCopy, asyncMode: o.asyncMode, snapshotIntervalUs: o.snapshotIntervalUs, inflowControl: o.inflowControl }, pairMessage));

/** `--volumes 0:0,2:2` → [{ localLvol: 0, remoteLvol: 0 }, { localLvol: 2, remoteLvol: 2 }]. */
function groupMembers(v: string): Array<{ localLvol: number; remoteLvol: number }> {
  return v.split(',').map((pair) => {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(pair);
    if (!m) throw new InvalidArgumentError(`--volumes: '${pair}' is not source:destination LVOL numbers (e.g. 0:0,2:2)`);
    return { localLvol: Number(m[1]), remoteLvol: Number(m[2]) };
  });
}

for (const [name, desc, extra] of [
  ['pairsplit', 'suspend a pair (--drain: ship the journal first, as S230 does)', ['--drain', 'drain the journal before suspending (async)']],
  ['pairresync', 'resynchronise a suspended pair (differences only, or --full)', ['--full', 'copy everything']],
  ['pairreverse', 'swap source and destination of a suspended pair', null],
  ['pairdelete', 'delete a pair (both volumes become simplex)', null],
] as const) {
  const c = program.command(name).description(desc).requiredOption('--system <name>', 'storage system to send the command to')
    .requiredOption('--pair <id>', 'pair id', integer('--pair')).addOption(controlOpt()).option('--json', 'JSON');
  if (extra) c.option(extra[0], extra[1]);
  c.action((o: { system: string; pair: number; drain?: boolean; full?: boolean; control: string; json?: boolean }) =>
    verb(o, name, { system: o.system, pairId: o.pair, drain: o.drain, full: o.full }, pairMessage));
}

for (const [name, routine, desc] of [
  ['takeover', 'A3', 'A3 failover at host R after a failure at the production site (reports data loss or no data loss)'],
  ['failover', 'A3', 'the same as takeover'],
  ['failback', 'A6', 'A6 failback: bring production home to P (reports data loss or no data loss)'],
] as const) {
  program.command(name).description(desc).addOption(controlOpt()).option('--json', 'JSON')
    .action((o: { control: string; json?: boolean }) => verb(o, 'routine', { name: routine }, reportsOf));
}

program.command('routine').description('run a copy control routine by name: A2 (initial copying), A3 (failover), A4 (reverse copying), A5 (reverse copy control), A6 (failback)')
  .argument('<name>', 'A2…A6 or initial-copying, failover, reverse-copying, reverse-copy-control, failback')
  .option('--cycles <n>', 'A5: cycles', integer('--cycles')).option('--interval-ms <n>', 'A5: interval between cycles', integer('--interval-ms'))
  .addOption(controlOpt()).option('--json', 'JSON')
  .action((name: string, o: { cycles?: number; intervalMs?: number; control: string; json?: boolean }) =>
    verb(o, 'routine', { name, cycles: o.cycles, intervalMs: o.intervalMs }, reportsOf));

program.command('fault').description('inject a fault of the nemesis into the running world, or --repair it')
  .argument('<kind>', 'cut-link, cut-path, link-conditions, power-loss, partition-site, drive-failure, journal-fill, host-crash, host-partition')
  .argument('<target>', 'a link (S1), a storage system (P) or a host (100P)')
  .option('--repair', 'inject the fault\'s repair instead (heal-link, power-on, drive-repair, host-recover …)')
  .addOption(new Option('--direction <d>', 'one way of a link').choices(['both', 'a-to-b', 'b-to-a']))
  .option('--path <n>', 'path of a link', integer('--path')).option('--lvol <n>', 'LVOL of a drive failure', integer('--lvol'))
  .option('--loss <rate>', 'frame loss rate', Number).option('--duplicate <rate>', 'frame duplication rate', Number)
  .option('--jitter-us <n>', 'jitter', Number).option('--latency-us <n>', 'extra latency', Number).option('--bandwidth-mbps <n>', 'bandwidth', Number)
  .addOption(controlOpt()).option('--json', 'JSON')
  .action(async (kind: string, target: string, o: FaultArgs & { repair?: boolean; control: string; json?: boolean }) => {
    let fault!: Record<string, unknown>;
    try {
      fault = faultFromArgs(kind, target, o);
    } catch (e) {
      program.error(`rclab fault: ${(e as Error).message}`, { exitCode: 2 });
    }
    await verb(o, 'fault', { fault, repair: o.repair === true }, (v) => String(v.message));
  });

program.command('shutdown').description('stop a running serve (it finishes the writes it acknowledged first)').addOption(controlOpt()).option('--json', 'JSON')
  .action((o: { control: string; json?: boolean }) => verb(o, 'shutdown', {}, (v) => String(v.message)));

await program.parseAsync(process.argv);
