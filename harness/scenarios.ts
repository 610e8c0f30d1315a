// Named scenarios: a world, hosts, workloads, faults and routines in a fixed order, ending in checks.
// `runScenario` is what `rclab run` and `npm start` call; the result is what `--json` prints.

import { readDefinitionInformation } from '../firmware/definition-info.ts';
import { OperationsLog, CopyControlProgram, RoutineError, type Report } from './copy-control.ts';
import { WriteHistory, sha256, type Violation } from './history.ts';
import { Host } from './host.ts';
import { failback, failover, initialCopying, reverseCopyControl, reverseCopying, PAIR_IR, PAIR_PI } from './routines/embodiment1.ts';
import { createWorld } from './runtimes.ts';
import { embodiment1Topology, DATA_LVOL, type Topology } from './topology.ts';
import { Workload } from './workload.ts';
import type { RuntimeName, TimedEvent, World } from './world.ts';
import type { FenceLevel } from '../firmware/commands.ts';
import { InterlockMonitor } from './interlock.ts';
import { pairStateName } from '../firmware/pair-state.ts';

export interface ScenarioOptions {
  runtime: RuntimeName;
  seed: number;
  /** Called with every timeline line as it happens. */
  timeline?: (line: TimelineEntry) => void;
  /** Scale of the workloads (1 = default). */
  scale?: number;
}

export type TimelineEntry =
  | { kind: 'step'; timeUs: number; step: string; host: string; routine: string; message: string }
  | { kind: 'report'; timeUs: number; step: string; host: string; routine: string; dataLoss: boolean; message: string }
  | { kind: 'event'; timeUs: number; system: string; event: TimedEvent['event']; backlog?: string; pairLabel?: string }
  | { kind: 'note'; timeUs: number; message: string };

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  scenario: string;
  runtime: RuntimeName;
  seed: number;
  ok: boolean;
  failures: string[];
  traceHash: string;
  firmwareEvents: number;
  reports: Array<{ routine: string; step: string; dataLoss: boolean; host: string; message: string; timeUs: number }>;
  checks: CheckResult[];
  pairs: Record<string, Array<ReturnType<typeof readDefinitionInformation>[number] & { stateName: string; remoteStorage: string }>>;
  volumes: Record<string, Record<string, string>>;
  acknowledgedWrites: number;
  issuedWrites: number;
  virtualTimeUs: number;
  wallMs: number;
}

export interface ScenarioContext {
  world: World;
  log: OperationsLog;
  history: WriteHistory;
  hostP: Host;
  hostR: Host;
  checks: CheckResult[];
  scale: number;
  note(message: string): void;
  program(host: Host, routine: string): CopyControlProgram;
  check(name: string, violations: Violation[] | boolean, detail?: string): void;
  expectReport(r: Report, step: string, dataLoss: boolean): void;
}

export interface Scenario {
  name: string;
  description: string;
  topology(): Topology;
  run(ctx: ScenarioContext): Promise<void>;
}

// ───────────────────────────── embodiment 1 ─────────────────────────────

/** Site P is lost: host P and storage P fail together while the work application is writing. */
async function siteDisaster(ctx: ScenarioContext, workload: Workload, alsoIntermediate: boolean): Promise<void> {
  ctx.note(`site P disaster${alsoIntermediate ? ' together with storage I' : ''}: host P and storage P fail`);
  ctx.hostP.crash();
  workload.stop();
  await ctx.world.fault({ kind: 'power-loss', system: 'P' });
  if (alsoIntermediate) await ctx.world.fault({ kind: 'power-loss', system: 'I' });
  await workload.done;
}

function workloadP(ctx: ScenarioContext): Workload {
  return new Workload(ctx.world, ctx.history, { host: '100P', lvol: DATA_LVOL, queueDepth: 8, regionBlocks: 2048 });
}

/** A2 and a fixed sequence of host P writes; the disaster strikes as the last one is acknowledged. */
async function normalOperationThenDisaster(ctx: ScenarioContext, o: { writes?: number; queueDepth?: number } = {}): Promise<void> {
  const { world } = ctx;
  await initialCopying(ctx.program(ctx.hostP, 'A2 initial copying'));
  // The same writes in the same order on both runtimes, so the final volumes do not depend on timing.
  const wP = new Workload(world, ctx.history, { host: '100P', lvol: DATA_LVOL, queueDepth: o.queueDepth ?? 8, regionBlocks: 2048, writes: Math.round((o.writes ?? 3000) * ctx.scale), pattern: 'stride' });
  await wP.done;
  const backlog = world.journals('I').reduce((n, j) => n + j.entries, 0);
  ctx.note(`${ctx.history.acknowledged} writes acknowledged to host P; 232I holds ${backlog} entries not yet applied at R`);
  await siteDisaster(ctx, wP, false);
  ctx.check('R prefix-consistent after the disaster', ctx.history.prefixViolations(world.volume('R', DATA_LVOL)));
}

function hostRWrites(ctx: ScenarioContext, n: number): Workload {
  return new Workload(ctx.world, ctx.history, { host: '100R', lvol: DATA_LVOL, queueDepth: 4, regionBlocks: 2048, thinkUs: 500, writes: Math.round(n * ctx.scale), pattern: 'stride' });
}

/** A3 (no data loss expected), work on R, failures cleared, A4, and A5 with host R writing throughout. */
async function failoverAndReverseOperation(ctx: ScenarioContext): Promise<void> {
  const { world } = ctx;
  const report = await failover(ctx.program(ctx.hostR, 'A3 failover'));
  ctx.expectReport(report, 'S250', false);
  ctx.check('S250 no data loss is true: R holds every acknowledged write', ctx.history.missingAcknowledged(world.volume('R', DATA_LVOL)));
  // Host R runs the work application; its writes go to 232R and ship to I.
  await hostRWrites(ctx, 800).done;
  ctx.note('failures cleared: storage P powered on, host P back');
  await world.fault({ kind: 'power-on', system: 'P' });
  ctx.hostP.recover();
  await reverseCopying(ctx.program(ctx.hostR, 'A4 reverse copying'));
  const wR = hostRWrites(ctx, 1500);
  const cycles = await reverseCopyControl(ctx.program(ctx.hostR, 'A5 reverse copy control'), { cycles: 3, intervalUs: 100_000 * ctx.scale });
  ctx.note(`${cycles} reverse copy control cycles done; host R finishes its writes`);
  await wR.done;
}

/** A2 again after failback: P → I → R, and every site's data volume the same. */
async function backToNormal(ctx: ScenarioContext): Promise<void> {
  await initialCopying(ctx.program(ctx.hostP, 'A2 initial copying'));
  await settleAsync(ctx);
  compareSites(ctx, ['P', 'I', 'R']);
}

const embodiment1Cycle: Scenario = {
  name: 'embodiment1-cycle',
  description: 'A2 initial copying → workload → site P disaster → A3 failover (no data loss) → work on R → failures cleared → A4 reverse copying → A5 reverse copy control cycles → A6 failback (no data loss) → A2 back to normal; all data volumes identical',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseOperation(ctx);
    ctx.note('host R stops its work application');
    const fb = await failback(ctx.program(ctx.hostP, 'A6 failback'));
    ctx.expectReport(fb, 'S540', false);
    ctx.check('S540 no data loss is true: P holds every acknowledged write', ctx.history.missingAcknowledged(ctx.world.volume('P', DATA_LVOL)));
    await backToNormal(ctx);
  },
};

const embodiment1FailbackVariant: Scenario = {
  name: 'embodiment1-failback-variant',
  description: 'the administrator split R→I (suspend) and host R went on writing; A6 with the ¶0106 variant resynchronises first, so failback still reports no data loss (S540)',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseOperation(ctx);
    ctx.note('administrator suspends the async pair R→I; host R writes on (recorded in R\'s difference bitmap), then stops');
    await ctx.program(ctx.hostR, 'administrator').suspend('R', PAIR_IR, 'S500');
    await hostRWrites(ctx, 300).done;
    const fb = await failback(ctx.program(ctx.hostP, 'A6 failback'), { variant0106: true });
    ctx.expectReport(fb, 'S540', false);
    ctx.check('S540 no data loss is true: P holds every acknowledged write', ctx.history.missingAcknowledged(ctx.world.volume('P', DATA_LVOL)));
    await backToNormal(ctx);
  },
};

const embodiment1FailbackDataLoss: Scenario = {
  name: 'embodiment1-failback-data-loss',
  description: 'link S2 fails during reverse operation while host R keeps writing: A6 finds R→I in failure suspend (S500) and reports data loss (S570) after copying I\'s data to P',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    const { world } = ctx;
    await normalOperationThenDisaster(ctx);
    await failoverAndReverseOperation(ctx);
    ctx.note('link S2 cut; host R writes on, then stops');
    await world.fault({ kind: 'cut-link', link: 'S2' });
    await hostRWrites(ctx, 300).done;
    const fb = await failback(ctx.program(ctx.hostP, 'A6 failback'));
    ctx.expectReport(fb, 'S570', true);
    const missing = ctx.history.missingAcknowledged(world.volume('P', DATA_LVOL), 1_000_000);
    ctx.check('S570 data loss is real: P lacks writes acknowledged at R after the cut', missing.length > 0, `${missing.length} block(s)`);
    ctx.check('S550: P holds I\'s data', sha256(world.volume('P', DATA_LVOL)) === sha256(world.volume('I', DATA_LVOL)));
    ctx.check('P is prefix-consistent', ctx.history.prefixViolations(world.volume('P', DATA_LVOL)));
  },
};

const embodiment1FailoverDrainFails: Scenario = {
  name: 'embodiment1-failover-drain-fails',
  description: 'S2 is slow, so 232I holds a backlog at the disaster; S2 fails while R retrieves it (S230): S240 finds failure suspend and reports data loss (S220); R stays prefix-consistent',
  topology: () => {
    const t = embodiment1Topology();
    t.links.find((l) => l.name === 'S2')!.bandwidthMBps = 4;
    return t;
  },
  async run(ctx) {
    const { world } = ctx;
    await normalOperationThenDisaster(ctx, { writes: 4000 });
    // Cut S2 as soon as R's pair is draining.
    const cutter = (async () => {
      while (world.definitionInformation('R').find((p) => p.pairId === PAIR_IR)?.state !== 3) await world.sleep(1000);
      await world.sleep(20_000);
      ctx.note('link S2 cut while R retrieves the log information');
      await world.fault({ kind: 'cut-link', link: 'S2' });
    })();
    const report = await failover(ctx.program(ctx.hostR, 'A3 failover'));
    await cutter;
    ctx.expectReport(report, 'S220', true);
    const missing = ctx.history.missingAcknowledged(world.volume('R', DATA_LVOL), 1_000_000);
    ctx.check('S220 data loss is real: R lacks acknowledged writes', missing.length > 0, `${missing.length} block(s)`);
    ctx.check('R holds a consistent older image (prefix-consistent)', ctx.history.prefixViolations(world.volume('R', DATA_LVOL)));
  },
};

const embodiment1DoubleFailure: Scenario = {
  name: 'embodiment1-double-failure',
  description: 'storage I fails together with site P: A3 failover must report data loss at S220; work resumes on R\'s consistent but older data',
  topology: () => embodiment1Topology(),
  async run(ctx) {
    const { world } = ctx;
    await initialCopying(ctx.program(ctx.hostP, 'A2 initial copying'));
    const wP = workloadP(ctx);
    await world.sleep(300_000 * ctx.scale);
    await siteDisaster(ctx, wP, true);
    const report = await failover(ctx.program(ctx.hostR, 'A3 failover'));
    ctx.expectReport(report, 'S220', true);
    const missing = ctx.history.missingAcknowledged(world.volume('R', DATA_LVOL), 1_000_000);
    ctx.note(`R lacks ${missing.length} block(s) of acknowledged writes (the data loss S220 reported)`);
    ctx.check('R holds a consistent older image (prefix-consistent)', ctx.history.prefixViolations(world.volume('R', DATA_LVOL)));
    ctx.note('work resumes on R');
    const wR = new Workload(world, ctx.history, { host: '100R', lvol: DATA_LVOL, queueDepth: 4, writes: 500, regionBlocks: 2048 });
    const r = await wR.done;
    ctx.check('host R can write to R after the data-loss failover', r.acknowledged === r.issued, `${r.acknowledged}/${r.issued} acknowledged`);
    ctx.check('R holds every write acknowledged to host R', ctx.history.missingAcknowledged(world.volume('R', DATA_LVOL)).filter((v) => isWriteOfHost(ctx, v, '100R')));
  },
};

function isWriteOfHost(ctx: ScenarioContext, v: Violation, host: string): boolean {
  const m = /write (\d+) \(acknowledged/.exec(v.message);
  return !!m && ctx.history.writes[Number(m[1]) - 1]?.host === host;
}

function rollingDisaster(fence: FenceLevel): Scenario {
  return {
    name: fence === 'data' ? 'embodiment1-rolling-disaster-fenced' : 'embodiment1-rolling-disaster',
    description: `link S1 fails first while host P keeps writing (sync fence level ${fence}), then site P is lost: ` +
      (fence === 'data' ? 'P refuses writes it cannot copy, so failover truthfully reports no data loss'
        : 'P acknowledged writes that exist nowhere else, and failover must report data loss'),
    topology: () => embodiment1Topology(),
    async run(ctx) {
      const { world } = ctx;
      await initialCopying(ctx.program(ctx.hostP, 'A2 initial copying'), { syncFence: fence });
      const wP = workloadP(ctx);
      await world.sleep(150_000 * ctx.scale);
      ctx.note('link S1 cut (first stage of a rolling disaster)');
      await world.fault({ kind: 'cut-link', link: 'S1' });
      await world.sleep(150_000 * ctx.scale);
      await siteDisaster(ctx, wP, false);
      const report = await failover(ctx.program(ctx.hostR, 'A3 failover'));
      const missing = ctx.history.missingAcknowledged(world.volume('R', DATA_LVOL));
      if (fence === 'data') {
        ctx.expectReport(report, 'S250', false);
        ctx.check('fence data: R holds every acknowledged write', missing);
        ctx.check('fence data: P refused writes after the cut', ctx.history.writes.some((w) => w.status === 'fenced'), 'some writes were refused with status fenced');
      } else {
        ctx.expectReport(report, 'S220', true);
        ctx.check('fence never: writes acknowledged after the cut are really missing at R', missing.length > 0, `${missing.length} block(s) missing`);
      }
    },
  };
}

export const SCENARIOS: Scenario[] = [
  embodiment1Cycle, embodiment1DoubleFailure, embodiment1FailoverDrainFails, embodiment1FailbackVariant, embodiment1FailbackDataLoss,
  rollingDisaster('never'), rollingDisaster('data'),
];

export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown scenario '${name}' (known: ${SCENARIOS.map((x) => x.name).join(', ')})`);
  return s;
}

// ───────────────────────────── shared endings ─────────────────────────────

/** Waits until no asynchronous pair has journal entries left to apply, so volumes can be compared. */
export async function settleAsync(ctx: ScenarioContext, timeoutUs = 30_000_000): Promise<void> {
  const start = ctx.world.nowUs();
  for (;;) {
    let busy = false;
    for (const s of ctx.world.topology.systems) {
      if (!ctx.world.isUp(s.name)) continue;
      for (const p of ctx.world.definitionInformation(s.name)) {
        if (p.role === 'source' && (p.state === 1 || p.state === 6 || p.state === 3)) busy = true;
      }
      for (const j of ctx.world.journals(s.name)) {
        const pair = ctx.world.definitionInformation(s.name).find((p) => p.pairId === j.pairId);
        if (pair && pair.role === 'source' && pair.state === 2 && j.entries > 0) busy = true;
      }
    }
    if (!busy) return;
    if (ctx.world.nowUs() - start > timeoutUs) throw new Error('asynchronous copying did not settle');
    await ctx.world.sleep(5_000);
  }
}

export function compareSites(ctx: ScenarioContext, systems: string[]): void {
  const digests = systems.map((s) => sha256(ctx.world.volume(s, DATA_LVOL)));
  const same = digests.every((d) => d === digests[0]);
  ctx.check(`data volumes of ${systems.join(', ')} identical`, same, systems.map((s, i) => `${s} ${digests[i]!.slice(0, 12)}`).join(' '));
  ctx.check(`final volume holds every acknowledged write`, ctx.history.missingAcknowledged(ctx.world.volume(systems[0]!, DATA_LVOL)));
}

// ───────────────────────────── runner ─────────────────────────────

export async function runScenario(name: string, o: ScenarioOptions): Promise<ScenarioResult> {
  const scenario = findScenario(name);
  const wallStart = performance.now();
  const world = await createWorld(o.runtime, scenario.topology(), o.seed);
  const log = new OperationsLog();
  const history = new WriteHistory();
  const checks: CheckResult[] = [];
  const failures: string[] = [];
  const emit = o.timeline ?? (() => {});
  const interlock = new InterlockMonitor(world, 'I', PAIR_PI, PAIR_IR);
  world.onEvent((e) => {
    const ev = e.event;
    const backlog = ev.type === 'pair-state' ? backlogOf(world) : undefined;
    const pairLabel = ev.type === 'pair-state' ? pairLabelOf(world, e.system, ev.pairId) : undefined;
    emit({ kind: 'event', timeUs: e.timeUs, system: e.system, event: ev, backlog, pairLabel });
  });
  log.on((x) => emit(x.kind === 'step' ? { kind: 'step', ...x.e } : { kind: 'report', ...x.e }));
  const hostP = new Host(world, '100P');
  const hostR = new Host(world, '100R');
  hostP.pairWith(hostR);
  hostR.pairWith(hostP);
  const ctx: ScenarioContext = {
    world, log, history, hostP, hostR, checks, scale: o.scale ?? 1,
    note: (message) => emit({ kind: 'note', timeUs: world.nowUs(), message }),
    program: (host, routine) => new CopyControlProgram(world, host, log, routine),
    check(name, v, detail) {
      const ok = typeof v === 'boolean' ? v : v.length === 0;
      const d = typeof v === 'boolean' ? detail ?? '' : v.length === 0 ? detail ?? 'ok' : v.slice(0, 3).map((x) => x.message).join('; ');
      checks.push({ name, ok, detail: d });
      if (!ok) failures.push(`check failed: ${name}: ${d}`);
    },
    expectReport(r, step, dataLoss) {
      const ok = r.step === step && r.dataLoss === dataLoss;
      checks.push({ name: `report ${step} (${dataLoss ? 'data loss' : 'no data loss'})`, ok, detail: `${r.step}: ${r.message}` });
      if (!ok) failures.push(`expected report ${step} ${dataLoss ? 'data loss' : 'no data loss'}, got ${r.step} ${r.dataLoss ? 'data loss' : 'no data loss'}: ${r.message}`);
    },
  };
  let virtualTimeUs = 0;
  try {
    await scenario.run(ctx);
  } catch (e) {
    failures.push(e instanceof RoutineError ? `routine failed: ${e.message}` : `scenario failed: ${(e as Error).stack ?? e}`);
  } finally {
    await hostP.stop();
    await hostR.stop();
    virtualTimeUs = world.nowUs();
  }
  const interlockViolations = interlock.violations();
  checks.push({ name: 'claim 3 interlock never broken', ok: interlockViolations.length === 0, detail: interlockViolations.join('; ') || `${interlock.samples} state changes at I checked` });
  if (interlockViolations.length) failures.push(`interlock broken: ${interlockViolations[0]}`);
  for (const e of world.controllerErrors) failures.push(`controller ${e.system} stopped: ${e.message}`);
  const result: ScenarioResult = {
    scenario: name, runtime: o.runtime, seed: o.seed, ok: failures.length === 0, failures,
    traceHash: world.traceHash(), firmwareEvents: world.eventCount(),
    reports: log.reports.map((r) => ({ routine: r.routine, step: r.step, dataLoss: r.dataLoss, host: r.host, message: r.message, timeUs: r.timeUs })),
    checks,
    pairs: Object.fromEntries(world.topology.systems.map((s) => [s.name, world.definitionInformation(s.name).map((p) => ({
      ...p, stateName: pairStateName(p.state), remoteStorage: world.topology.systems.find((x) => x.id === p.remoteStorageId)?.name ?? '?' }))])),
    volumes: Object.fromEntries(world.topology.systems.map((s) => [s.name,
      Object.fromEntries(s.lvols.map((l, i) => [l.name, l.kind === 'data' ? sha256(world.volume(s.name, i)) : undefined]).filter(([, v]) => v))])),
    acknowledgedWrites: history.acknowledged,
    issuedWrites: history.writes.length,
    virtualTimeUs,
    wallMs: 0,
  };
  await world.close();
  result.wallMs = Math.round(performance.now() - wallStart);
  return result;
}

/** "(sync P→I)" from the definition information of the system that reported the event. */
function pairLabelOf(world: World, system: string, pairId: number): string | undefined {
  const r = world.definitionInformation(system).find((p) => p.pairId === pairId);
  if (!r) return undefined;
  const remote = world.topology.systems.find((s) => s.id === r.remoteStorageId)?.name ?? `#${r.remoteStorageId}`;
  return `(${r.copyType} ${r.role === 'source' ? `${system}→${remote}` : `${remote}→${system}`})`;
}

function backlogOf(world: World): string {
  const parts: string[] = [];
  for (const s of world.topology.systems) {
    if (!world.isUp(s.name)) continue;
    for (const j of world.journals(s.name)) {
      const pair = world.definitionInformation(s.name).find((p) => p.pairId === j.pairId);
      if (pair?.role === 'source' && j.entries > 0) parts.push(`232${s.name} ${j.entries} entries`);
    }
  }
  return parts.join(', ');
}

export { PAIR_IR, PAIR_PI };
