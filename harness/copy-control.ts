// The host's copy control program (¶0060): the primitives every routine is built of — issue a command to a
// storage system, query a pair (a pair-state read), wait for a state (like pairevtwait), log a step, and
// report "data loss" / "no data loss" on the host's display device (130x).

import type { Command, PairView } from '../firmware/commands.ts';
import type { AsyncMode } from '../firmware/definition-info.ts';
import type { Host } from './host.ts';
import type { World } from './world.ts';

export interface StepLog {
  timeUs: number;
  host: string;
  routine: string;
  step: string;
  message: string;
}

export interface Report {
  timeUs: number;
  host: string;
  routine: string;
  step: string;
  dataLoss: boolean;
  message: string;
  /** The surviving volume the report speaks of (R's after failover, P's after failback). */
  subject: { system: string; lvol: number };
}

/** A routine stopped half-way (its host crashed, or the nemesis interrupted it); the wrapper runs it again. */
export class RoutineInterrupted extends Error {
  override name = 'RoutineInterrupted';
}

export class RoutineError extends Error {
  override name = 'RoutineError';
  constructor(readonly routine: string, readonly step: string, message: string) {
    super(`${routine} ${step}: ${message}`);
  }
}

/** Where every routine writes its step log and reports; the timeline and the JSON result read it. */
export class OperationsLog {
  readonly steps: StepLog[] = [];
  /** Set when a checker found a violation: every routine stops at its next command. */
  abortReason: string | null = null;
  /** Set by the nemesis: the running routine stops before its next command (and is run again). */
  interruptRequested = false;
  readonly reports: Report[] = [];
  private readonly listeners = new Set<(e: { kind: 'step'; e: StepLog } | { kind: 'report'; e: Report }) => void>();
  on(l: (e: { kind: 'step'; e: StepLog } | { kind: 'report'; e: Report }) => void) { this.listeners.add(l); }
  step(e: StepLog) { this.steps.push(e); for (const l of this.listeners) l({ kind: 'step', e }); }
  report(e: Report) { this.reports.push(e); for (const l of this.listeners) l({ kind: 'report', e }); }
}

export const COPYING_STATES = ['initial copying', 'duplex pending'];

/** A copy control program's configuration, as an operator's configuration file sets it for every routine. */
export interface CopyControlConfig {
  /** SPEC §5: how every asynchronous pair the program creates copies — by journal (the default) or by difference snapshots. */
  asyncMode?: AsyncMode;
  /** Snapshot mode: the interval between difference snapshots (the firmware's default when unset). */
  snapshotIntervalUs?: number;
}

export class CopyControlProgram {
  pollUs = 5_000;

  constructor(readonly world: World, readonly host: Host, readonly log: OperationsLog, readonly routine: string,
    readonly config: CopyControlConfig = {}) {}

  /** A copy control program for another routine, on the same host. */
  as(routine: string): CopyControlProgram {
    const p = new CopyControlProgram(this.world, this.host, this.log, routine, this.config);
    p.pollUs = this.pollUs;
    return p;
  }

  step(step: string, message: string): void {
    this.log.step({ timeUs: this.world.nowUs(), host: this.host.name, routine: this.routine, step, message });
  }

  report(step: string, dataLoss: boolean, message: string, subject: Report['subject']): Report {
    const r: Report = { timeUs: this.world.nowUs(), host: this.host.name, routine: this.routine, step, dataLoss, message, subject };
    this.log.report(r);
    return r;
  }

  /** S200 / S1000: waits until host P's heartbeat is missing, and logs the detection under `step`. */
  async detectProductionFailure(step: string): Promise<void> {
    let silentUs: number;
    try {
      silentUs = await this.host.detectPeerFailure();
    } catch (e) {
      this.fail(step, (e as Error).message);
    }
    this.step(step, `heartbeat of host P missing for ${(silentUs / 1000).toFixed(0)} ms: failure at the production site`);
  }

  fail(step: string, message: string): never {
    throw new RoutineError(this.routine, step, message);
  }

  /** Issues a command; a refusal ends the routine with the storage system's own error. */
  async command(system: string, cmd: Command): Promise<PairView | undefined> {
    const step = cmd.step ?? '?';
    if (this.log.abortReason) this.fail(step, `stopped: ${this.log.abortReason}`);
    if (!this.host.alive) throw new RoutineInterrupted(`${this.routine} ${step}: host ${this.host.name} crashed`);
    if (this.log.interruptRequested) {
      this.log.interruptRequested = false;
      throw new RoutineInterrupted(`${this.routine} ${step}: interrupted before ${cmd.op}`);
    }
    const r = await this.world.command(system, this.configured(cmd));
    if (!r.ok) this.fail(step, `storage ${system} refused ${cmd.op}: ${r.error}`);
    this.step(step, `${system}: ${cmd.op}${'pairId' in cmd ? ` pair ${cmd.pairId}` : ''} — ${r.outcome}: ${r.message}`);
    return r.pair;
  }

  /** A create of an asynchronous pair gets the configured mode, unless the routine chose one itself. */
  private configured(cmd: Command): Command {
    const { asyncMode, snapshotIntervalUs } = this.config;
    if (cmd.op !== 'create' || cmd.pair?.copyType !== 'async' || cmd.pair.asyncMode !== undefined || asyncMode === undefined) return cmd;
    return { ...cmd, pair: { ...cmd.pair, asyncMode, ...(snapshotIntervalUs !== undefined ? { snapshotIntervalUs } : {}) } };
  }

  /** A pair-state read: the pair as storage `system` records it, or null when it has no such pair. */
  async query(system: string, pairId: number, step: string): Promise<PairView | null> {
    const r = await this.world.command(system, { op: 'query', pairId, step });
    if (!r.ok) {
      if (/unknown pair/.test(r.error)) return null;
      this.fail(step, `query of pair ${pairId} at storage ${system} failed: ${r.error}`);
    }
    return r.pair!;
  }

  async mustQuery(system: string, pairId: number, step: string): Promise<PairView> {
    const v = await this.query(system, pairId, step);
    if (!v) this.fail(step, `storage ${system} has no pair ${pairId}`);
    return v;
  }

  /**
   * A query that waits out transitional states (initial copying, duplex pending, suspending): the answer a
   * routine branches on must be a settled one, and a destination's mirror of its source's state lags by a
   * link's latency.
   */
  async queryStable(system: string, pairId: number, step: string, timeoutUs = 120_000_000): Promise<PairView> {
    const start = this.world.nowUs();
    for (;;) {
      const v = await this.mustQuery(system, pairId, step);
      if (!['initial copying', 'duplex pending', 'suspending'].includes(v.state)) return v;
      if (this.world.nowUs() - start > timeoutUs) this.fail(step, `pair ${pairId} at ${system} still ${v.state} after ${timeoutUs} µs`);
      await this.world.sleep(this.pollUs);
    }
  }

  /**
   * Waits until the pair reaches one of `states` as seen at `system`; fails fast on failure suspend
   * when that is not among them, and after `timeoutUs`.
   */
  async waitState(system: string, pairId: number, states: string[], step: string, timeoutUs = 120_000_000): Promise<PairView> {
    const start = this.world.nowUs();
    for (;;) {
      const v = await this.mustQuery(system, pairId, step);
      if (states.includes(v.state)) return v;
      if (v.state === 'failure suspend') this.fail(step, `pair ${pairId} at ${system} went to failure suspend (${v.failureCause}) while waiting for ${states.join(' or ')}`);
      if (this.world.nowUs() - start > timeoutUs) this.fail(step, `pair ${pairId} at ${system} still ${v.state} after ${timeoutUs} µs, waiting for ${states.join(' or ')}`);
      await this.world.sleep(this.pollUs);
    }
  }

  /** Resynchronises a suspended pair from `system` (its source) and waits for duplex (duplex pending → duplex). */
  async resyncToDuplex(system: string, pairId: number, step: string): Promise<PairView> {
    await this.command(system, { op: 'resync', pairId, step });
    const v = await this.waitState(system, pairId, ['duplex'], step);
    this.step(step, `pair ${pairId} duplex after ${v.lastFormationCopy} formation copy of ${v.lastFormationTracksCopied} track(s)`);
    return v;
  }

  /** Suspends a pair and waits until it is suspended. */
  async suspend(system: string, pairId: number, step: string): Promise<PairView> {
    await this.command(system, { op: 'suspend', pairId, step });
    return this.waitState(system, pairId, ['suspend'], step);
  }

  /**
   * "Retrieve all log information": drains the source journal to the destination (suspending), ending in
   * suspend (success) or failure suspend (failure). Returns the final state.
   */
  async retrieveAll(system: string, pairId: number, step: string): Promise<PairView> {
    try {
      await this.command(system, { op: 'drain', pairId, step });
    } catch (e) {
      // The source failed the pair after our query (e.g. its journal filled) and refuses the drain: the log
      // information cannot be retrieved. That is the routine's failure branch (S240, S520 …), not an error.
      if (!(e instanceof RoutineError) || !/drain refused: pair \d+ \(async\) is failure suspend/.test(e.message)) throw e;
      this.step(step, `log information of pair ${pairId} cannot be retrieved: its source is in failure suspend`);
      return this.queryStable(system, pairId, step);
    }
    const start = this.world.nowUs();
    for (;;) {
      const v = await this.mustQuery(system, pairId, step);
      if (v.state === 'suspend' || v.state === 'failure suspend') return v;
      if (this.world.nowUs() - start > 120_000_000) this.fail(step, `drain of pair ${pairId} did not end`);
      await this.world.sleep(this.pollUs);
    }
  }

  /**
   * Makes `system` the source of a pair that exists in the other direction (reverse; the pair must be
   * suspended) and resynchronises it to duplex — a formation copy of the differences only.
   */
  async reverseAndResync(system: string, pairId: number, step: string): Promise<PairView> {
    for (let attempt = 1; ; attempt++) {
      let v = await this.queryStable(system, pairId, step);
      if (v.role !== 'destination') break;
      if (v.state === 'duplex') {
        // Copying the other way: split it first (an asynchronous pair drains its journal on the way).
        await this.command(system, { op: v.copyType === 'async' ? 'drain' : 'suspend', pairId, step });
        v = await this.queryStable(system, pairId, step);
      }
      if (v.state !== 'suspend' && v.state !== 'failure suspend') this.fail(step, `pair ${pairId} must be suspended to reverse, is ${v.state}`);
      const r = await this.world.command(system, { op: 'reverse', pairId, step });
      if (r.ok) { this.step(step, `${system}: reverse pair ${pairId} — ${r.outcome}: ${r.message}`); break; }
      // The state moved between the query and the command (the source went on copying): split again.
      if (attempt >= 3 || !/reverse refused/.test(r.error)) this.fail(step, `storage ${system} refused reverse: ${r.error}`);
      this.step(step, `${system}: reverse of pair ${pairId} refused (${r.error}); splitting it again`);
    }
    return this.resyncToDuplex(system, pairId, step);
  }
}
