// rclab: the command line. A thin layer over the programmatic API (harness/index.ts).

import { Command, InvalidArgumentError, Option } from 'commander';
import { RUNTIMES } from './runtimes.ts';
import { runScenario, SCENARIOS, findScenario, type ScenarioResult } from './scenarios.ts';
import { timelineFormatter } from './timeline.ts';
import { FAULT_PROFILES, type FaultProfile, type ScheduledFault } from './nemesis.ts';
import { allScenarioNames, defaultWorkers, formatSummary, sweep, type SweepOptions } from './sweep.ts';
import { PLANTED_BUGS, type PlantedBug } from '../firmware/constants.ts';

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

function summary(r: ScenarioResult, color: boolean): string {
  const lines: string[] = [];
  const mark = (ok: boolean) => (ok ? (color ? '\x1b[32m✔\x1b[0m' : 'ok  ') : color ? '\x1b[31m✘\x1b[0m' : 'FAIL');
  lines.push('', `scenario ${r.scenario} on the ${r.runtime} runtime, seed ${r.seed}`);
  for (const rep of r.reports) lines.push(`  report ${rep.step} (${rep.routine}): ${rep.dataLoss ? 'DATA LOSS' : 'no data loss'} — ${rep.message}`);
  for (const c of r.checks) lines.push(`  ${mark(c.ok)} ${c.name}${c.detail && c.detail !== 'ok' ? ` — ${c.detail}` : ''}`);
  lines.push(`  volumes: ${Object.entries(r.volumes).map(([s, v]) => `${s} ${Object.values(v)[0]?.slice(0, 12)}`).join('  ')}`);
  lines.push(`  ${r.acknowledgedWrites} of ${r.issuedWrites} host writes acknowledged; ${r.firmwareEvents} firmware events; ` +
    `${(r.virtualTimeUs / 1e6).toFixed(3)} s emulated in ${(r.wallMs / 1000).toFixed(2)} s; trace hash ${r.traceHash}`);
  if (r.faults.injected.length) lines.push(`  faults injected: ${r.faults.injected.map((f) => `${(f.atUs / 1000).toFixed(1)} ms ${f.fault}`).join('; ')}`);
  if (!r.ok) for (const f of r.failures) lines.push(`  ${color ? '\x1b[31m' : ''}${f}${color ? '\x1b[0m' : ''}`);
  if (!r.ok) lines.push(`  replay: ${r.replay}`);
  lines.push(r.ok ? `${mark(true)} ${r.scenario}: behaved as designed` : `${mark(false)} ${r.scenario}: did NOT behave as designed`);
  return lines.join('\n');
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
  .option('--json', 'print one JSON object with the result instead of the timeline')
  .option('--quiet', 'no timeline, only the summary')
  .action(async (name: string, o: { runtime: 'threads' | 'sim'; seed: number; scale: number; json?: boolean; quiet?: boolean; faults: FaultProfile; faultSchedule?: ScheduledFault[]; plantedBug?: PlantedBug }) => {
    try {
      findScenario(name);
    } catch (e) {
      program.error((e as Error).message, { exitCode: 2 });
    }
    const color = !o.json && process.stdout.isTTY === true;
    const fmt = timelineFormatter(color);
    const result = await runScenario(name, {
      runtime: o.runtime, seed: o.seed, scale: o.scale, faults: o.faults, schedule: o.faultSchedule, plantedBug: o.plantedBug,
      timeline: o.json || o.quiet ? undefined : (e) => { const line = fmt(e); if (line) console.log(line); },
    });
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else console.log(summary(result, color));
    process.exitCode = result.ok ? 0 : 1;
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
  .option('--stop-on-failure', 'stop scheduling seeds after the first violation')
  .option('--json', 'print the summary as JSON')
  .action(async (o: { scenario?: string; seeds: number; from: number; workers: number; faults: FaultProfile; scale: number; plantedBug?: PlantedBug; stopOnFailure?: boolean; json?: boolean }) => {
    if (o.scenario) {
      try { findScenario(o.scenario); } catch (e) { program.error((e as Error).message, { exitCode: 2 }); }
    }
    if (o.seeds < 1) program.error('--seeds must be at least 1', { exitCode: 2 });
    if (o.workers < 1) program.error('--workers must be at least 1', { exitCode: 2 });
    const opts: SweepOptions = { scenarios: o.scenario ? [o.scenario] : allScenarioNames(), seeds: o.seeds, from: o.from, workers: o.workers,
      faults: o.faults, scale: o.scale, plantedBug: o.plantedBug, stopOnFailure: o.stopOnFailure, progress: !o.json && process.stderr.isTTY === true };
    const summary = await sweep(opts);
    if (o.json) console.log(JSON.stringify(summary, null, 2));
    else console.log(formatSummary(summary, opts));
    process.exitCode = summary.failures.length === 0 ? 0 : 1;
  });

await program.parseAsync(process.argv);
