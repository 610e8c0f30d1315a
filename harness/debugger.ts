// The stepping debugger of the sim runtime. It holds the whole emulated world at the gate before every
// event (SimWorld.gate): `step()` lets exactly one event through — one firmware event on one storage system,
// or one host wake-up — and waits until the host continuations it woke have run. Breakpoints are checked
// after every event. `back(n)` builds the run again from its recipe (scenario, seed, options) and stops n
// events earlier: the sim runtime is deterministic, so that is the identical world, and the digests say so.

import { readFileSync, writeFileSync } from 'node:fs';
import { FrameType } from '../firmware/frames.ts';
import { ControlMemoryLayout, type JournalRecord, type PairRecord } from '../firmware/definition-info.ts';
import { DifferenceBitmap } from '../firmware/difference-bitmap.ts';
import { groupLayout } from '../firmware/consistency-group.ts';
import { PAIR_STATE_NAMES, pairStateName } from '../firmware/pair-state.ts';
import type { SimEventView } from '../hardware/sim-machine.ts';
import type { PlantedBug } from '../firmware/constants.ts';
import { SimWorld } from './runtime-sim.ts';
import { findScenario, runScenario, type ScenarioResult, type TimelineEntry } from './scenarios.ts';
import type { FaultProfile, ScheduledFault } from './nemesis.ts';
import type { World } from './world.ts';
import { applyCopyDevices } from './copy-devices.ts';
import type { SimCopyDeviceState } from '../hardware/sim-machine.ts';
import { captureWorldState, decodeSnapshot, diffWorldStates, digestWorld, encodeSnapshot, type RunRecipe, type WorldState } from './world-state.ts';

export type BreakpointSpec =
  /** A step number logged by a routine or carried by a firmware event. */
  | { kind: 'step'; step: string }
  /** A pair entering a state (the source's names: duplex, suspend, failure suspend …). */
  | { kind: 'state'; state: string; system?: string; pairId?: number }
  /** A journal first holding this sequence number (its newest ≥ seq). */
  | { kind: 'seq'; seq: number; system?: string }
  /** A frame of this type arriving at a storage system. */
  | { kind: 'frame'; frameType: FrameType; system?: string }
  /** A host routine starting (its name begins with this, e.g. "A3"). */
  | { kind: 'routine'; routine: string };

export type Breakpoint = BreakpointSpec & { id: number };

export interface StopReason {
  kind: 'paused' | 'breakpoint' | 'finished';
  breakpoint?: Breakpoint;
  /** What hit it, in words. */
  detail: string;
}

export interface InFlightFrame {
  link: string;
  from: string;
  to: string;
  frameType: string;
  bytes: number;
  path: number;
  sentUs: number;
  arrivesUs: number;
  duplicate: boolean;
}

export interface BitmapView {
  system: string;
  pairId: number;
  tracks: number;
  dirtyTracks: number;
  /** Dirty track numbers as ranges "a-b", at most 32 of them. */
  dirtyRanges: string[];
}

export interface DebugOptions {
  /** Every timeline line as it happens (steps, reports, pair states, notes). */
  timeline?: (e: TimelineEntry) => void;
  /**
   * Called with each new world before its first event (`back` and `load` build new ones); a trace recorder
   * attaches here and may return a sink that gets every timeline line of that world, replays included.
   */
  onWorld?: (world: World) => ((e: TimelineEntry) => void) | void;
}

export const FRAME_TYPE_NAMES: string[] = Object.keys(FrameType).filter((k) => Number.isNaN(Number(k)));

export function parseFrameType(name: string): FrameType {
  const k = FRAME_TYPE_NAMES.find((n) => n.toLowerCase() === name.toLowerCase());
  if (k === undefined) throw new Error(`unknown frame type '${name}' (use ${FRAME_TYPE_NAMES.join(', ')})`);
  return FrameType[k as keyof typeof FrameType];
}

/** An event as the debugger shows it: frames by their type's name. */
export function describeEvent(e: SimEventView): string {
  const f = e.frame;
  if (!f) return e.label;
  return `${f.to}: ${FrameType[f.frameType] ?? `type ${f.frameType}`} frame from ${f.from}, ${f.bytes} B, path ${f.path}${f.duplicate ? ' (duplicate)' : ''}`;
}

export function describeBreakpoint(b: BreakpointSpec): string {
  switch (b.kind) {
    case 'step': return `step ${b.step}`;
    case 'state': return `pair ${b.pairId ?? 'any'} on ${b.system ?? 'any system'} enters ${b.state}`;
    case 'seq': return `journal sequence number ${b.seq} on ${b.system ?? 'any system'}`;
    case 'frame': return `${FrameType[b.frameType]} frame arrives at ${b.system ?? 'any system'}`;
    case 'routine': return `routine ${b.routine} starts`;
  }
}

/** One run of a scenario under the gate. `back` and `load` replace it with a fresh one. */
class Session {
  world!: SimWorld;
  result: ScenarioResult | null = null;
  error: Error | null = null;
  /** Set while the world is held at the gate: lets the next event through. */
  private release: (() => void) | null = null;
  /** The debugger waiting for the world to come to rest (held again, or finished). */
  private waiter: (() => void) | null = null;
  /** The gate decides whether to hold the world before the next event. */
  shouldHold: () => boolean = () => true;
  readonly done: Promise<void>;

  constructor(readonly recipe: RunRecipe, onTimeline: (e: TimelineEntry) => void, onWorld: DebugOptions['onWorld']) {
    // A bad copy-devices value, or a topology with devices of its own, is refused here, before any world is built.
    applyCopyDevices(findScenario(recipe.scenario).topology(), recipe.copyDevices);
    let sink: ((e: TimelineEntry) => void) | void;
    this.done = runScenario(recipe.scenario, {
      runtime: 'sim', seed: recipe.seed, scale: recipe.scale, faults: recipe.faults as FaultProfile,
      schedule: recipe.schedule as ScheduledFault[] | undefined, plantedBug: recipe.plantedBug as PlantedBug | undefined, copyDevices: recipe.copyDevices,
      asyncMode: recipe.asyncMode, snapshotIntervalUs: recipe.snapshotIntervalUs,
      timeline: (e) => { sink?.(e); onTimeline(e); },
      onWorld: (w) => {
        if (!(w instanceof SimWorld)) throw new Error('the debugger needs the sim runtime');
        this.world = w;
        w.gate = () => this.gate();
        sink = onWorld?.(w);
      },
    }).then((r) => { this.result = r; }, (e: Error) => { this.error = e; })
      .finally(() => { this.wakeWaiter(); });
  }

  get finished(): boolean { return this.result !== null || this.error !== null; }
  get held(): boolean { return this.release !== null; }

  private gate(): Promise<void> | void {
    if (!this.shouldHold()) return;
    return new Promise<void>((resolve) => {
      this.release = resolve;
      this.wakeWaiter();
    });
  }

  private wakeWaiter(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Waits until the world is held at the gate or the run has finished. */
  rest(): Promise<void> {
    if (this.held || this.finished) return Promise.resolve();
    return new Promise<void>((r) => { this.waiter = r; });
  }

  /** Lets the world run (event by event, `shouldHold` deciding) until it is held again or finishes. */
  async resume(): Promise<void> {
    const r = this.release;
    this.release = null;
    if (r) {
      const rested = new Promise<void>((res) => { this.waiter = res; });
      r();
      await rested;
    }
    await this.rest();
  }

  /** Stops the world where it is, for good (its host tasks are left waiting and collected with it). */
  async abandon(): Promise<void> {
    if (this.finished) return;
    await this.world.close();
  }

  /** Lets the run go to its end, ignoring breakpoints. */
  async finish(): Promise<void> {
    this.shouldHold = () => false;
    const r = this.release;
    this.release = null;
    r?.();
    await this.done;
  }
}

export class SimDebugger {
  private session!: Session;
  private readonly bps: Breakpoint[] = [];
  private nextBpId = 1;
  /** Hits noticed during the current event (timeline and firmware events), checked at the gate. */
  private hits: StopReason[] = [];
  /** Newest journal sequence number seen per seq breakpoint (a hit is the crossing). */
  private readonly seqSeen = new Map<number, number>();
  /** Digest of the world at every event the debugger stopped at, to prove `back` reaches the same world. */
  readonly digests = new Map<number, string>();
  /** Timeline lines are passed on only while this is true (not while `back` replays). */
  private live = true;
  /** The last routine step or report logged. */
  lastStep: Extract<TimelineEntry, { kind: 'step' | 'report' }> | null = null;

  private constructor(readonly recipe: RunRecipe, readonly options: DebugOptions) {}

  /** Builds the run and holds it before its first event. */
  static async start(recipe: RunRecipe, o: DebugOptions = {}): Promise<SimDebugger> {
    const d = new SimDebugger(recipe, o);
    await d.begin(0);
    return d;
  }

  /** Builds the run of a snapshot file, replays it to the saved event and checks the world is the saved one. */
  static async load(path: string, o: DebugOptions = {}): Promise<SimDebugger> {
    const file = decodeSnapshot(readFileSync(path), `snapshot file ${path}`);
    const d = new SimDebugger(file.recipe, o);
    await d.begin(file.state.eventIndex);
    const now = captureWorldState(d.world);
    const differ = diffWorldStates(file.state, now);
    if (differ.length) {
      await d.close();
      throw new Error(`snapshot ${path} cannot be continued: replaying its run does not reach its world (differs in ${differ.join(', ')}); was it saved by another firmware build?`);
    }
    d.digests.set(d.eventIndex, file.digest);
    return d;
  }

  /** (Re)builds the run and runs it, without stopping at breakpoints, to `eventIndex`. */
  private async begin(eventIndex: number): Promise<void> {
    this.live = eventIndex === 0;
    this.hits = [];
    this.lastStep = null;
    const s = new Session(this.recipe, (e) => this.onTimeline(e), this.options.onWorld);
    this.session = s;
    s.shouldHold = () => s.world.eventCount() >= eventIndex;
    await s.rest();
    this.live = true;
    this.hits = [];
    this.seqSeen.clear();
    if (!s.finished && s.world.eventCount() !== eventIndex) throw new Error(`replay stopped at event ${s.world.eventCount()}, not ${eventIndex}`);
    if (s.finished && s.world.eventCount() < eventIndex) throw new Error(`the run ends after ${s.world.eventCount()} events, before event ${eventIndex}`);
  }

  get world(): SimWorld { return this.session.world; }
  /** Events dispatched so far: the next `step()` dispatches event number eventIndex + 1. */
  get eventIndex(): number { return this.session.world.eventCount(); }
  get nowUs(): number { return this.session.world.nowUs(); }
  get finished(): boolean { return this.session.finished; }
  get result(): ScenarioResult | null { return this.session.result; }
  get runError(): Error | null { return this.session.error; }
  /** The event dispatched last. */
  get lastEvent(): SimEventView | null { return this.session.world.sched.last; }
  /** Scheduled events in dispatch order (the next one first). */
  pendingEvents(): SimEventView[] { return this.session.world.sched.pendingEvents(); }

  // ─────────── running ───────────

  /** Dispatches exactly n events (fewer if the run ends), ignoring breakpoints. */
  async step(n = 1): Promise<StopReason> {
    const target = this.eventIndex + n;
    return this.run(() => this.eventIndex >= target, false);
  }

  /** Runs until `predicate` holds after an event, or a breakpoint is hit, or the run ends. */
  async stepUntil(predicate: (d: SimDebugger) => boolean, o: { breakpoints?: boolean } = {}): Promise<StopReason> {
    return this.run(() => predicate(this), o.breakpoints ?? true);
  }

  /** Runs until a breakpoint is hit or the run ends. */
  async continue(): Promise<StopReason> {
    return this.run(() => false, true);
  }

  /** Runs to the first time `step` is logged (routine or firmware), like `next S250`. */
  async next(step: string): Promise<StopReason> {
    let seen = false;
    const off = this.onHit((h) => { if (h.step === step) seen = true; });
    try {
      const r = await this.run(() => seen, true);
      return seen && r.kind === 'paused' ? { kind: 'paused', detail: `reached ${step}` } : r;
    } finally {
      off();
    }
  }

  private stepListeners = new Set<(h: { step: string }) => void>();
  private onHit(l: (h: { step: string }) => void): () => void {
    this.stepListeners.add(l);
    return () => this.stepListeners.delete(l);
  }

  private async run(done: () => boolean, breakpoints: boolean): Promise<StopReason> {
    const s = this.session;
    if (s.finished) return this.finishedReason();
    let reason: StopReason | null = null;
    this.hits = [];
    s.shouldHold = () => {
      const hit = breakpoints ? this.checkBreakpoints() : null;
      this.hits = [];
      if (hit) { reason = hit; return true; }
      if (done()) { reason = { kind: 'paused', detail: `event #${this.eventIndex}` }; return true; }
      return false;
    };
    await s.resume();
    s.shouldHold = () => true;
    if (s.finished) return this.finishedReason();
    return reason ?? { kind: 'paused', detail: `event #${this.eventIndex}` };
  }

  private finishedReason(): StopReason {
    const r = this.session.result;
    if (this.session.error) return { kind: 'finished', detail: `the run failed: ${this.session.error.message}` };
    return { kind: 'finished', detail: r ? `the run finished after ${r.firmwareEvents} events: ${r.ok ? 'behaved as designed' : 'did NOT behave as designed'}, trace hash ${r.traceHash}` : 'the run finished' };
  }

  /** Lets the run go to its end (no breakpoints) and returns its result. */
  async finish(): Promise<ScenarioResult> {
    await this.session.finish();
    if (this.session.error) throw this.session.error;
    return this.session.result!;
  }

  /** Stops the run where it is (nothing more is dispatched). */
  async close(): Promise<void> {
    this.live = false;
    await this.session.abandon();
  }

  // ─────────── breakpoints ───────────

  addBreakpoint(spec: BreakpointSpec): Breakpoint {
    if (spec.kind === 'state' && !Object.values(PAIR_STATE_NAMES).includes(spec.state)) {
      throw new Error(`unknown pair state '${spec.state}' (use ${Object.values(PAIR_STATE_NAMES).join(', ')})`);
    }
    if ((spec.kind === 'state' || spec.kind === 'seq' || spec.kind === 'frame') && spec.system !== undefined && !this.world.systems.has(spec.system)) {
      throw new Error(`unknown storage system '${spec.system}' (this topology has ${[...this.world.systems.keys()].join(', ')})`);
    }
    if (spec.kind === 'step' && !/^S\d+$/.test(spec.step)) throw new Error(`'${spec.step}' is not a step number (like S230)`);
    if (spec.kind === 'seq' && (!Number.isInteger(spec.seq) || spec.seq < 1)) throw new Error(`journal sequence number must be a whole number ≥ 1, not ${spec.seq}`);
    const b = { ...spec, id: this.nextBpId++ } as Breakpoint;
    this.bps.push(b);
    return b;
  }

  deleteBreakpoint(id: number): void {
    const i = this.bps.findIndex((b) => b.id === id);
    if (i < 0) throw new Error(`no breakpoint ${id} (have ${this.bps.map((b) => b.id).join(', ') || 'none'})`);
    this.bps.splice(i, 1);
  }

  get breakpoints(): readonly Breakpoint[] { return this.bps; }

  private onTimeline(e: TimelineEntry): void {
    if (e.kind === 'step' || e.kind === 'report') this.lastStep = e;
    if (this.live) this.options.timeline?.(e);
    const step = e.kind === 'step' || e.kind === 'report' ? e.step : e.kind === 'event' ? e.event.step : undefined;
    if (step) for (const l of this.stepListeners) l({ step });
    for (const b of this.bps) {
      if (b.kind === 'step' && step === b.step) this.hits.push({ kind: 'breakpoint', breakpoint: b, detail: `${b.step} ${e.kind === 'event' ? `on ${e.system}` : `logged by ${(e as { host: string }).host}`}` });
      if (b.kind === 'routine' && e.kind === 'routine' && e.phase === 'start' && e.routine.startsWith(b.routine)) {
        this.hits.push({ kind: 'breakpoint', breakpoint: b, detail: `${e.host} starts ${e.routine}` });
      }
      if (b.kind === 'state' && e.kind === 'event' && e.event.type === 'pair-state' && e.event.to === b.state
        && (b.system === undefined || b.system === e.system) && (b.pairId === undefined || b.pairId === e.event.pairId)) {
        this.hits.push({ kind: 'breakpoint', breakpoint: b, detail: `pair ${e.event.pairId} on ${e.system}: ${e.event.from} → ${e.event.to}` });
      }
    }
  }

  /** At the gate, after an event: the first breakpoint it hit. */
  private checkBreakpoints(): StopReason | null {
    if (this.hits.length) return this.hits[0]!;
    const last = this.lastEvent;
    for (const b of this.bps) {
      if (b.kind === 'frame' && last?.frame && last.frame.frameType === b.frameType && (b.system === undefined || b.system === last.frame.to)) {
        return { kind: 'breakpoint', breakpoint: b, detail: `${FrameType[b.frameType]} frame ${last.frame.from}→${last.frame.to} arrived` };
      }
      if (b.kind === 'seq') {
        for (const [system, s] of this.world.systems) {
          if (!s.up || (b.system !== undefined && b.system !== system)) continue;
          const newest = Math.max(0, ...this.world.journals(system).map((j) => j.newestSeq));
          const key = b.id * 64 + s.storageId;
          const before = this.seqSeen.get(key) ?? 0;
          this.seqSeen.set(key, newest);
          if (before < b.seq && newest >= b.seq) return { kind: 'breakpoint', breakpoint: b, detail: `journal of ${system} now holds sequence number ${newest}` };
        }
      }
    }
    return null;
  }

  // ─────────── looking ───────────

  private system(name: string) {
    const s = this.world.systems.get(name);
    if (!s) throw new Error(`unknown storage system '${name}' (this topology has ${[...this.world.systems.keys()].join(', ')})`);
    return s;
  }

  pairs(system: string): Array<PairRecord & { stateName: string; remote: string }> {
    this.system(system);
    return this.world.definitionInformation(system).map((p) => ({ ...p, stateName: pairStateName(p.state),
      remote: this.world.topology.systems.find((x) => x.id === p.remoteStorageId)?.name ?? `#${p.remoteStorageId}` }));
  }

  journals(system: string): JournalRecord[] {
    this.system(system);
    return this.world.journals(system);
  }

  bitmap(system: string, pairId: number): BitmapView {
    const s = this.system(system);
    const pair = this.world.definitionInformation(system).find((p) => p.pairId === pairId);
    if (!pair) throw new Error(`storage system ${system} has no pair ${pairId} (it has ${this.world.definitionInformation(system).map((p) => p.pairId).join(', ') || 'none'})`);
    const layout = new ControlMemoryLayout(s.controlMemory);
    const tracks = DifferenceBitmap.tracksFor(groupLayout(pair.members, (lvol) => s.memory.disk.lvolBlocks(lvol)).blocks);
    const bm = new DifferenceBitmap(layout.bitmap(pair.slot, 'difference'), tracks);
    const ranges: string[] = [];
    let dirty = 0, start = -1;
    for (let t = 0; t <= tracks; t++) {
      const set = t < tracks && bm.test(t);
      if (set) { dirty++; if (start < 0) start = t; }
      if (!set && start >= 0) { if (ranges.length < 32) ranges.push(start === t - 1 ? `${start}` : `${start}-${t - 1}`); start = -1; }
    }
    return { system, pairId, tracks, dirtyTracks: dirty, dirtyRanges: ranges };
  }

  cache(system: string): { slotsInUse: number; slots: number; slotBytes: number } {
    const c = this.system(system).memory.cache;
    return { slotsInUse: c.inUse, slots: c.slotCount, slotBytes: c.slotBytes };
  }

  volume(system: string, lvol: number, lba: number, blocks = 1): Uint8Array {
    const disk = this.system(system).memory.disk;
    const total = disk.lvolBlocks(lvol);
    if (!Number.isInteger(lba) || !Number.isInteger(blocks) || lba < 0 || blocks < 1 || lba + blocks > total) {
      throw new Error(`blocks ${lba}+${blocks} are outside LVOL ${lvol} of ${system} (it has ${total} blocks)`);
    }
    return disk.read(lvol, lba, blocks).slice();
  }

  /** Frames on every link, in arrival order, and each link's state. */
  links(): { links: Array<{ name: string; a: string; b: string; up: boolean; distanceKm: number }>; inFlight: InFlightFrame[] } {
    const w = this.world;
    const linkOf = (a: string, b: string) => w.topology.links.find((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a))?.name ?? '?';
    return {
      links: w.topology.links.map((l) => ({ name: l.name, a: l.a, b: l.b, up: w.links.get(l.name)!.up, distanceKm: l.distanceKm })),
      inFlight: w.sched.pendingEvents().filter((e) => e.frame).map((e) => ({
        link: linkOf(e.frame!.from, e.frame!.to), from: e.frame!.from, to: e.frame!.to, frameType: FrameType[e.frame!.frameType] ?? `t${e.frame!.frameType}`,
        bytes: e.frame!.bytes, path: e.frame!.path, sentUs: e.frame!.sentUs, arrivesUs: e.timeUs, duplicate: e.frame!.duplicate,
      })),
    };
  }

  /** The copy device of a system (¶0168): its configuration and state, null when the system has none. */
  copyDevice(system: string): (SimCopyDeviceState & { config: { throughputMBps: number; queueDepth: number; setupUs: number } }) | null {
    const dev = this.system(system).copyDevice;
    const st = this.system(system).copyDeviceState();
    return dev && st ? { ...st, config: dev.config } : null;
  }

  recentEvents(system: string) {
    return this.system(system).recent.toArray();
  }

  /** The whole world as data (copies). */
  state(): WorldState {
    return captureWorldState(this.world);
  }

  /** Digest of the whole world; remembered for this event so a later `back` can be checked against it. */
  digest(): string {
    const d = digestWorld(this.world);
    const known = this.digests.get(this.eventIndex);
    if (known !== undefined && known !== d) throw new Error(`world at event #${this.eventIndex} differs from when it was first reached (${known} ≠ ${d})`);
    this.digests.set(this.eventIndex, d);
    return d;
  }

  // ─────────── going back, snapshots ───────────

  /**
   * Returns to n events earlier by replaying the run from its recipe. If the debugger saw the world at that
   * event before, the digests must match (they do: the run is deterministic); `verified` says whether it could check.
   */
  async back(n = 1): Promise<{ eventIndex: number; digest: string; verified: boolean; replayMs: number }> {
    if (!Number.isInteger(n) || n < 1) throw new Error(`back takes a number of events ≥ 1, not ${n}`);
    return this.goto(Math.max(0, this.eventIndex - n));
  }

  /** Goes to event `eventIndex` (forward by stepping, backward by replaying), ignoring breakpoints. */
  async goto(eventIndex: number): Promise<{ eventIndex: number; digest: string; verified: boolean; replayMs: number }> {
    if (!Number.isInteger(eventIndex) || eventIndex < 0) throw new Error(`event number must be a whole number ≥ 0, not ${eventIndex}`);
    const t0 = performance.now();
    if (eventIndex >= this.eventIndex && !this.finished) {
      await this.step(eventIndex - this.eventIndex);
    } else {
      this.live = false;
      await this.session.abandon();
      await this.begin(eventIndex);
    }
    const replayMs = performance.now() - t0;
    const known = this.digests.get(this.eventIndex);
    const digest = this.digest();
    return { eventIndex: this.eventIndex, digest, verified: known !== undefined, replayMs };
  }

  /** Saves the world to a snapshot file; returns its size in bytes. */
  save(path: string): number {
    const state = this.state();
    const bytes = encodeSnapshot(this.recipe, state);
    writeFileSync(path, bytes);
    this.digests.set(this.eventIndex, this.digest());
    return bytes.length;
  }
}
