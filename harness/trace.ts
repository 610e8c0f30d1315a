// A run as a Chrome Trace Event JSON file (opens in ui.perfetto.dev or chrome://tracing): one process per
// storage system, host and link; pair states, routines with their step numbers, frames in flight, journal
// backlog and link utilisation. Timestamps (`ts`) are microseconds of emulated time: virtual on sim, real
// since the world was built on threads.
//
// Processes and tracks (pid / tid):
//   1        scenario         tid 1 notes (the timeline's "----" lines)
//   10 + i   storage system   tid 100 + pairId: the pair's state as slices, each change as an instant;
//                             tid 1 firmware log (warn/error/info, controller stopped, flight-recorder dump);
//                             counters: journal backlog per journal, events dispatched per ms (sim)
//   50 + i   link (sim)       frames in flight as async slices; tid 1/2 per direction for lost frames;
//                             counters: utilisation per direction
//   100 + i  host             one tid per routine (A2 … A6, administrator, liveness): the routine as a slice,
//                             each step and report as an instant inside it named "S230 …"

import { closeSync, openSync, writeSync } from 'node:fs';
import { FrameType } from '../firmware/frames.ts';
import type { FrameInFlight, SimEventView } from '../hardware/sim-machine.ts';
import { SimWorld } from './runtime-sim.ts';
import type { TimelineEntry } from './scenarios.ts';
import { pairLabelOf } from './timeline.ts';
import type { TimedEvent, World } from './world.ts';

/** Default bound on recorded trace events (≈ 250 MB of JSON); past it events are counted, not kept. */
export const TRACE_MAX_EVENTS = 2_000_000;
/** Counters are sampled at most this often (emulated time). */
export const TRACE_SAMPLE_PERIOD_US = 1000;
/** Event names are cut here (the full text is in args). */
const NAME_MAX_CHARS = 100;

const PID_SCENARIO = 1, PID_SYSTEM_BASE = 10, PID_LINK_BASE = 50, PID_HOST_BASE = 100;
const TID_NOTES = 1, TID_LOG = 1, TID_PAIR_BASE = 100;

/** One Chrome trace event (the fields this recorder uses). */
export interface TraceEvent {
  name: string;
  ph: 'M' | 'B' | 'E' | 'i' | 'b' | 'e' | 'C';
  ts: number;
  pid: number;
  tid?: number;
  cat?: string;
  id?: number;
  /** Instant scope: thread, process, global. */
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

/** A B/E or b/e slice; 'dropped' when the cap refused its start (its end is then dropped too). */
interface Slice { pid: number; tid: number; name: string; cat?: string; id?: number; async: boolean; state: 'open' | 'dropped' | 'closed'; startUs: number }

interface OpenRoutine { host: string; routine: string; slice: Slice; lastStepUs: number; explicit: boolean }

interface OpenFrame { slice: Slice; linkEpoch: number; dirEpoch: number; peerEpoch: number; link: string; dir: 0 | 1 }

interface LinkDir { link: string; dir: 0 | 1; pid: number; tid: number; label: string }

const FLIGHT_RECORDER = /^last (\d+) event\(s\) of storage system ([^\s,:]+)/;

const cut = (s: string) => (s.length > NAME_MAX_CHARS ? `${s.slice(0, NAME_MAX_CHARS - 1)}…` : s);

export class TraceRecorder {
  private readonly events: TraceEvent[] = [];
  private readonly maxEvents: number;
  /** Slots held back for the ends of recorded open slices, so the cap never leaves a B without its E. */
  private reserved = 0;
  private dropped = 0;
  private finished = false;
  private lastSeenUs = 0;
  private readonly detach: Array<() => void> = [];

  private readonly systemPid = new Map<string, number>();
  private readonly hostPid = new Map<string, number>();
  private readonly namedThreads = new Set<string>();
  private readonly routineTids = new Map<string, number>();

  private readonly pairSlices = new Map<string, Slice>();
  private readonly routines = new Map<string, OpenRoutine>();  // key: host|routine track
  private readonly openRoutineOfHost = new Map<string, string>(); // host → key of its implicit routine

  // sim only
  private readonly sim: SimWorld | null;
  private readonly linkDirs = new Map<string, LinkDir>();  // "P>I" → link direction
  private readonly frames = new Map<string, OpenFrame[]>(); // frame key → frames sent and not yet delivered
  private nextFrameId = 1;

  // counters
  private nextSampleUs = 0;
  private windowStartUs = 0;
  private readonly lastBusyUs = new Map<string, number>();
  private readonly dispatched = new Map<string, number>();
  private readonly lastCounter = new Map<string, string>();
  private readonly journalsSeen = new Map<string, number>(); // "pid|counter name" → pid
  private samplerTimer: NodeJS.Timeout | null = null;

  constructor(private readonly world: World, o: { maxEvents?: number } = {}) {
    this.maxEvents = o.maxEvents ?? TRACE_MAX_EVENTS;
    this.sim = world instanceof SimWorld ? world : null;
    this.lastSeenUs = world.nowUs();
    this.windowStartUs = this.lastSeenUs;
    this.describeProcesses();
    this.detach.push(world.onEvent((e) => this.onFirmwareEvent(e)));
    const sim = this.sim;
    if (sim) {
      const observer = (e: SimEventView) => this.onDispatched(e);
      sim.sched.observers.push(observer);
      this.detach.push(() => { const i = sim.sched.observers.indexOf(observer); if (i >= 0) sim.sched.observers.splice(i, 1); });
      const frameListener = (f: FrameInFlight & { deliverAtUs: number; drop: boolean }) => this.onFrameSent(f);
      sim.frameListeners.add(frameListener);
      this.detach.push(() => sim.frameListeners.delete(frameListener));
      for (const s of sim.systems.keys()) this.dispatched.set(s, 0);
      // Utilisation counts from now, also when the recorder attaches to a world already running (a debugger).
      for (const d of this.linkDirs.values()) { const l = sim.links.get(d.link)!; this.lastBusyUs.set(`${d.link}|${d.dir}`, (d.dir === 0 ? l.ab : l.ba).busyUs()); }
    } else {
      // Threads (any non-sim world): nothing tells us when time passes without a firmware event (a workload writing), so the
      // journal backlog is sampled on a real-time timer. unref: a forgotten finish() never holds the process.
      this.samplerTimer = setInterval(() => {
        try {
          const nowUs = this.world.nowUs();
          if (nowUs >= this.nextSampleUs) this.sample(nowUs);
        } catch { this.stopSampler(); } // the world was closed under us
      }, TRACE_SAMPLE_PERIOD_US / 1000);
      this.samplerTimer.unref();
    }
  }

  /** Trace events recorded so far (metadata included; dropped ones not). */
  get eventCount(): number { return this.events.length; }

  // ───────────────────────────── recording with a bound ─────────────────────────────

  private see(timeUs: number): void {
    if (timeUs > this.lastSeenUs) this.lastSeenUs = timeUs;
  }

  /** A stand-alone event (instant, counter); false when the cap dropped it. */
  private put(e: TraceEvent): boolean {
    if (this.events.length + this.reserved >= this.maxEvents) { this.dropped++; return false; }
    this.events.push(e);
    return true;
  }

  /** Opens a slice (B, or b for async): it needs a slot for itself and one held for its end. */
  private open(pid: number, tid: number, name: string, ts: number, args?: Record<string, unknown>, async?: { cat: string; id: number }): Slice {
    const slice: Slice = { pid, tid, name, async: !!async, cat: async?.cat, id: async?.id, state: 'dropped', startUs: ts };
    if (this.events.length + this.reserved + 2 > this.maxEvents) { this.dropped++; return slice; }
    this.events.push(async ? { name, ph: 'b', ts, pid, tid, cat: async.cat, id: async.id, args } : { name, ph: 'B', ts, pid, tid, args });
    this.reserved++;
    slice.state = 'open';
    return slice;
  }

  /** Ends a slice (never refused: its slot was held back when it opened). `ts` may lie in the past; toJson sorts. */
  private close(s: Slice, ts: number, args?: Record<string, unknown>): void {
    if (s.state === 'closed') return;
    if (s.state === 'dropped') { s.state = 'closed'; this.dropped++; return; }
    s.state = 'closed';
    this.reserved--;
    const end = Math.max(ts, s.startUs);
    this.events.push(s.async ? { name: s.name, ph: 'e', ts: end, pid: s.pid, tid: s.tid, cat: s.cat, id: s.id, args } : { name: s.name, ph: 'E', ts: end, pid: s.pid, tid: s.tid, args });
  }

  /** Metadata ('M') is not capped: there is one per process and track. */
  private meta(name: string, pid: number, args: Record<string, unknown>, tid?: number): void {
    this.events.push({ name, ph: 'M', ts: 0, pid, ...(tid !== undefined ? { tid } : {}), args });
  }

  private nameThread(pid: number, tid: number, name: string, sortIndex: number): void {
    const key = `${pid}/${tid}`;
    if (this.namedThreads.has(key)) return;
    this.namedThreads.add(key);
    this.meta('thread_name', pid, { name }, tid);
    this.meta('thread_sort_index', pid, { sort_index: sortIndex }, tid);
  }

  private nameProcess(pid: number, name: string, sortIndex: number): void {
    this.meta('process_name', pid, { name });
    this.meta('process_sort_index', pid, { sort_index: sortIndex });
  }

  // ───────────────────────────── processes ─────────────────────────────

  private describeProcesses(): void {
    const t = this.world.topology;
    this.nameProcess(PID_SCENARIO, `scenario (${t.name}, ${this.world.runtime}, seed ${this.world.seed})`, 0);
    this.nameThread(PID_SCENARIO, TID_NOTES, 'notes', 0);
    t.systems.forEach((s, i) => {
      const pid = PID_SYSTEM_BASE + i;
      this.systemPid.set(s.name, pid);
      this.nameProcess(pid, `storage system ${s.name}`, pid);
      this.nameThread(pid, TID_LOG, 'firmware log', 1_000_000);
    });
    t.hosts.forEach((h, i) => {
      this.hostPid.set(h.name, PID_HOST_BASE + i);
      this.nameProcess(PID_HOST_BASE + i, `host ${h.name}`, PID_HOST_BASE + i);
    });
    if (!this.sim) return; // threads: links are not observable from World
    t.links.forEach((l, i) => {
      const pid = PID_LINK_BASE + i;
      this.nameProcess(pid, `link ${l.name} ${l.a}–${l.b} (${l.distanceKm} km)`, pid);
      for (const [dir, from, to] of [[0, l.a, l.b], [1, l.b, l.a]] as const) {
        const d: LinkDir = { link: l.name, dir, pid, tid: dir + 1, label: `${from}→${to}` };
        this.linkDirs.set(`${from}>${to}`, d);
        this.nameThread(pid, d.tid, d.label, dir);
      }
    });
  }

  private pidOfSystem(system: string): number {
    let pid = this.systemPid.get(system);
    if (pid === undefined) { // not in the topology (should not happen): a process of its own
      pid = PID_SYSTEM_BASE + this.systemPid.size;
      this.systemPid.set(system, pid);
      this.nameProcess(pid, `storage system ${system}`, pid);
    }
    return pid;
  }

  private pidOfHost(host: string): number {
    let pid = this.hostPid.get(host);
    if (pid === undefined) {
      pid = PID_HOST_BASE + this.hostPid.size;
      this.hostPid.set(host, pid);
      this.nameProcess(pid, `host ${host}`, pid);
    }
    return pid;
  }

  // ───────────────────────────── firmware events ─────────────────────────────

  private onFirmwareEvent(e: TimedEvent): void {
    if (this.finished) return;
    this.see(e.timeUs);
    const pid = this.pidOfSystem(e.system);
    const ev = e.event;
    if (ev.type === 'pair-state') {
      const tid = TID_PAIR_BASE + ev.pairId;
      const label = this.pairLabel(e.system, ev.pairId);
      this.nameThread(pid, tid, `pair ${ev.pairId}`, ev.pairId); // (not its label: a reverse changes the direction)
      // The state as a slice (from this change to the next), and the change itself as an instant inside it.
      const key = `${e.system}|${ev.pairId}`;
      const prev = this.pairSlices.get(key);
      if (prev) this.close(prev, e.timeUs);
      this.pairSlices.delete(key);
      if (ev.to !== 'deleted') {
        const stateName = ev.cause !== 'none' ? `${ev.to} (${ev.cause})` : ev.to;
        this.pairSlices.set(key, this.open(pid, tid, stateName, e.timeUs, { pairId: ev.pairId, state: ev.to, cause: ev.cause }));
      }
      const step = ev.step ? `${ev.step} ` : '';
      this.put({ name: cut(`${step}pair ${ev.pairId}: ${ev.from} → ${ev.to}${ev.cause !== 'none' ? ` (${ev.cause})` : ''}`), ph: 'i', s: 't',
        ts: e.timeUs, pid, tid, cat: 'pair-state', args: { pairId: ev.pairId, from: ev.from, to: ev.to, cause: ev.cause, step: ev.step ?? null, pair: label ?? null } });
    } else if (ev.type === 'formation-copy-done') {
      const tid = TID_PAIR_BASE + ev.pairId;
      this.nameThread(pid, tid, `pair ${ev.pairId}`, ev.pairId);
      this.put({ name: `${ev.step ? `${ev.step} ` : ''}pair ${ev.pairId}: ${ev.kind} formation copy done, ${ev.tracksCopied} track(s)`, ph: 'i', s: 't',
        ts: e.timeUs, pid, tid, cat: 'formation-copy', args: { pairId: ev.pairId, kind: ev.kind, tracksCopied: ev.tracksCopied, step: ev.step ?? null } });
    } else if (ev.type === 'log') {
      const dump = FLIGHT_RECORDER.exec(ev.message);
      if (dump) {
        // The flight recorder printed when an assertion stopped the controller: the whole dump in args.
        this.put({ name: `flight recorder: last ${dump[1]} event(s) of storage system ${dump[2]}`, ph: 'i', s: 'p', ts: e.timeUs, pid, tid: TID_LOG,
          cat: 'flight-recorder', args: { text: ev.message } });
      } else {
        this.put({ name: cut(`${ev.step ? `${ev.step} ` : ''}${ev.level}: ${ev.message}`), ph: 'i', s: ev.level === 'error' ? 'p' : 't', ts: e.timeUs, pid, tid: TID_LOG,
          cat: `log.${ev.level}`, args: { level: ev.level, message: ev.message, step: ev.step ?? null } });
      }
    }
  }

  private pairLabel(system: string, pairId: number): string | undefined {
    try { return pairLabelOf(this.world, system, pairId); } catch { return undefined; } // e.g. the pair was just deleted
  }

  // ───────────────────────────── timeline: routines, steps, reports, notes ─────────────────────────────

  timeline(e: TimelineEntry): void {
    if (this.finished) return;
    this.see(e.timeUs);
    switch (e.kind) {
      case 'note':
        this.put({ name: cut(e.message), ph: 'i', s: 't', ts: e.timeUs, pid: PID_SCENARIO, tid: TID_NOTES, cat: 'note', args: { message: e.message } });
        return;
      case 'routine':
        if (e.phase === 'start') this.startRoutine(e.host, e.routine, e.timeUs, true);
        else {
          const r = this.routines.get(this.routineKey(e.host, e.routine));
          if (r && r.routine === e.routine) this.endRoutine(e.host, e.routine, e.timeUs, { outcome: e.outcome ?? null });
        }
        return;
      case 'step': {
        // An instant, not a slice up to the next step: a routine logs many steps when a command has completed,
        // so the time after a step belongs to the next one's work.
        const r = this.routineFor(e.host, e.routine, e.timeUs);
        this.put({ name: cut(`${e.step} ${e.message}`), ph: 'i', s: 't', ts: e.timeUs, pid: r.slice.pid, tid: r.slice.tid, cat: 'step',
          args: { step: e.step, message: e.message, routine: e.routine } });
        r.lastStepUs = e.timeUs;
        return;
      }
      case 'report': {
        const r = this.routineFor(e.host, e.routine, e.timeUs);
        r.lastStepUs = e.timeUs;
        this.put({ name: cut(`${e.step} ${e.dataLoss ? 'DATA LOSS' : 'NO DATA LOSS'}: ${e.message}`), ph: 'i', s: 'p', ts: e.timeUs,
          pid: r.slice.pid, tid: r.slice.tid, cat: 'report', args: { step: e.step, message: e.message, dataLoss: e.dataLoss, routine: e.routine } });
        // A routine without start/end entries ends with its report.
        if (!r.explicit) this.endRoutine(e.host, e.routine, e.timeUs);
        return;
      }
      default:
        return; // firmware events come through world.onEvent
    }
  }

  /** Track of a routine: reruns ("A3 failover (run 2)") share their routine's track. */
  private routineKey(host: string, routine: string): string {
    return `${host}|${routine.replace(/ \(run \d+\)$/, '')}`;
  }

  private startRoutine(host: string, routine: string, timeUs: number, explicit: boolean): OpenRoutine {
    const key = this.routineKey(host, routine);
    this.closeImplicit(host);
    const open = this.routines.get(key);
    if (open) this.endRoutine(host, open.routine, open.explicit ? timeUs : open.lastStepUs);
    const pid = this.pidOfHost(host);
    let tid = this.routineTids.get(key);
    if (tid === undefined) {
      tid = 1 + [...this.routineTids.keys()].filter((k) => k.startsWith(`${host}|`)).length;
      this.routineTids.set(key, tid);
      this.nameThread(pid, tid, key.slice(host.length + 1), tid);
    }
    const r: OpenRoutine = { host, routine, slice: this.open(pid, tid, routine, timeUs, { routine, host }), lastStepUs: timeUs, explicit };
    this.routines.set(key, r);
    if (!explicit) this.openRoutineOfHost.set(host, key);
    return r;
  }

  /**
   * The routine a step belongs to. A routine the scenario did not announce (an administrator's commands, the
   * liveness phase) gets a slice from its first step to its report or last step; it ends when another routine
   * of the same host starts or steps.
   */
  private routineFor(host: string, routine: string, timeUs: number): OpenRoutine {
    const key = this.routineKey(host, routine);
    const r = this.routines.get(key);
    if (r && r.routine === routine) {
      if (this.openRoutineOfHost.get(host) !== key) this.closeImplicit(host);
      return r;
    }
    return this.startRoutine(host, routine, timeUs, false);
  }

  private closeImplicit(host: string): void {
    const key = this.openRoutineOfHost.get(host);
    if (key === undefined) return;
    const r = this.routines.get(key);
    if (r && !r.explicit) this.endRoutine(host, r.routine, r.lastStepUs);
    this.openRoutineOfHost.delete(host);
  }

  private endRoutine(host: string, routine: string, timeUs: number, args?: Record<string, unknown>): void {
    const key = this.routineKey(host, routine);
    const r = this.routines.get(key);
    if (!r) return;
    this.close(r.slice, timeUs, args);
    this.routines.delete(key);
    if (this.openRoutineOfHost.get(host) === key) this.openRoutineOfHost.delete(host);
  }

  // ───────────────────────────── sim: frames and dispatched events ─────────────────────────────

  // Frames go on a process per link rather than on the sender's: in flight a frame belongs to neither end,
  // the link's process puts both directions' traffic next to that link's utilisation counters, and the
  // storage systems' processes stay about firmware state. Perfetto stacks the async slices by name, so each
  // frame type and direction ("JournalBatch I→R") gets its own rows.
  private static frameKey(f: FrameInFlight): string {
    return `${f.from}>${f.to}|${f.sentUs}|${f.frameType}|${f.bytes}|${f.path}`;
  }

  private frameName(f: FrameInFlight): string {
    return `${FrameType[f.frameType] ?? `type ${f.frameType}`} ${f.from}→${f.to}`;
  }

  private onFrameSent(f: FrameInFlight & { deliverAtUs: number; drop: boolean }): void {
    if (this.finished) return;
    this.see(f.sentUs);
    const d = this.linkDirs.get(`${f.from}>${f.to}`);
    if (!d) return;
    const name = this.frameName(f);
    if (f.drop) {
      this.put({ name: `lost ${name}`, ph: 'i', s: 't', ts: f.sentUs, pid: d.pid, tid: d.tid, cat: 'frame',
        args: { bytes: f.bytes, path: f.path, why: 'lost on the wire (loss, a full transmit queue, or every path cut)' } });
      return;
    }
    const id = this.nextFrameId++;
    const slice = this.open(d.pid, d.tid, name, f.sentUs, { bytes: f.bytes, path: f.path, deliverAtUs: f.deliverAtUs }, { cat: 'frame', id });
    const link = this.sim!.links.get(d.link)!;
    const peer = this.sim!.systems.get(f.to)!;
    const key = TraceRecorder.frameKey(f);
    const list = this.frames.get(key) ?? [];
    list.push({ slice, link: d.link, dir: d.dir, linkEpoch: link.epoch, dirEpoch: link.dirEpoch[d.dir], peerEpoch: peer.powerEpoch });
    this.frames.set(key, list);
  }

  private onDispatched(e: SimEventView): void {
    if (this.finished) return;
    this.see(e.timeUs);
    if (e.system !== undefined) this.dispatched.set(e.system, (this.dispatched.get(e.system) ?? 0) + 1);
    if (e.frame) this.onFrameArrived(e.frame, e.timeUs);
    if (e.timeUs >= this.nextSampleUs) this.sample(e.timeUs);
  }

  private onFrameArrived(f: FrameInFlight, timeUs: number): void {
    const d = this.linkDirs.get(`${f.from}>${f.to}`);
    if (!d) return;
    if (f.duplicate) {
      // The link delivered a copy (duplication): a slice of its own, from the original's send to now.
      const s = this.open(d.pid, d.tid, `${this.frameName(f)} (duplicate)`, f.sentUs, { bytes: f.bytes, path: f.path }, { cat: 'frame', id: this.nextFrameId++ });
      this.close(s, timeUs);
      return;
    }
    const key = TraceRecorder.frameKey(f);
    const list = this.frames.get(key);
    const o = list?.shift();
    if (!o) return;
    if (list!.length === 0) this.frames.delete(key);
    // Same checks as the hardware's delivery: a cut link or a peer that lost power meanwhile loses the frame.
    const link = this.sim!.links.get(o.link)!;
    const peer = this.sim!.systems.get(f.to)!;
    const linkOk = link.epoch === o.linkEpoch && link.up && link.dirEpoch[o.dir] === o.dirEpoch && link.dirUp[o.dir];
    const lost = !linkOk ? 'link cut while in flight' : peer.powerEpoch !== o.peerEpoch || !peer.up ? `${f.to} was powered off when it arrived` : null;
    this.close(o.slice, timeUs, lost ? { lost } : undefined);
    if (lost) this.put({ name: `lost ${this.frameName(f)}`, ph: 'i', s: 't', ts: timeUs, pid: d.pid, tid: d.tid, cat: 'frame', args: { bytes: f.bytes, why: lost } });
  }

  // ───────────────────────────── counters ─────────────────────────────

  /** A counter event, left out when its values have not changed (a counter holds its value until the next). */
  private counter(pid: number, name: string, ts: number, args: Record<string, number>): void {
    const key = `${pid}|${name}`;
    const v = JSON.stringify(args);
    if (this.lastCounter.get(key) === v) return;
    this.lastCounter.set(key, v); // also when the cap drops it, so a capped trace drops each value once
    this.put({ name, ph: 'C', ts, pid, cat: 'counter', args });
  }

  /**
   * Journal backlog (sim and threads) and, on sim, link utilisation and events dispatched, at most once per
   * TRACE_SAMPLE_PERIOD_US. Rates over a window are stamped at the window's start, so they show over the
   * interval they were measured on.
   */
  private sample(nowUs: number): void {
    if (this.finished) return;
    this.nextSampleUs = nowUs + TRACE_SAMPLE_PERIOD_US;
    this.sampleJournals(nowUs);
    const sim = this.sim;
    if (!sim) return;
    const windowUs = nowUs - this.windowStartUs;
    if (windowUs <= 0) return;
    for (const d of this.linkDirs.values()) {
      const link = sim.links.get(d.link)!;
      const model = d.dir === 0 ? link.ab : link.ba;
      const key = `${d.link}|${d.dir}`;
      const busy = model.busyUs();
      const delta = busy - (this.lastBusyUs.get(key) ?? 0);
      this.lastBusyUs.set(key, busy);
      const percent = (100 * delta) / (windowUs * model.config.paths.length);
      this.counter(d.pid, `utilisation ${d.label} %`, this.windowStartUs, { percent: Math.round(percent * 100) / 100 });
    }
    for (const [system, n] of this.dispatched) {
      this.counter(this.pidOfSystem(system), 'events dispatched /ms', this.windowStartUs, { perMs: Math.round((n * 1000 * 10) / windowUs) / 10 });
      this.dispatched.set(system, 0);
    }
    this.windowStartUs = nowUs;
  }

  /**
   * Journal backlog: entries and bytes the source of the journal's pair still holds for its destination.
   * A destination's journal keeps what it applied (its own log information), which is no backlog: 0.
   */
  private sampleJournals(nowUs: number): void {
    const w = this.world;
    const present = new Set<string>();
    for (const s of w.topology.systems) {
      if (!w.isUp(s.name)) continue; // a powered-off controller's counters keep their last value
      const pid = this.pidOfSystem(s.name);
      const pairs = w.definitionInformation(s.name);
      for (const j of w.journals(s.name)) {
        const source = pairs.find((p) => p.pairId === j.pairId)?.role === 'source';
        const name = `backlog ${s.lvols[j.journalLvol]?.name ?? `${s.name} LVOL ${j.journalLvol}`}`;
        present.add(`${pid}|${name}`);
        this.journalsSeen.set(`${pid}|${name}`, pid);
        this.counter(pid, name, nowUs, source ? { entries: j.entries, bytes: j.usedBytes } : { entries: 0, bytes: 0 });
      }
      // A journal released (its pair deleted): back to 0.
      for (const [key, p] of this.journalsSeen) {
        if (p === pid && !present.has(key)) { this.counter(pid, key.slice(key.indexOf('|') + 1), nowUs, { entries: 0, bytes: 0 }); this.journalsSeen.delete(key); }
      }
    }
  }

  private stopSampler(): void {
    if (this.samplerTimer) clearInterval(this.samplerTimer);
    this.samplerTimer = null;
  }

  // ───────────────────────────── output ─────────────────────────────

  /** Stops recording and closes every open slice at the last time seen. Idempotent. */
  finish(): void {
    if (this.finished) return;
    try { this.sample(this.lastSeenUs); } catch { /* a closed world: the counters keep their last values */ }
    this.finished = true;
    this.stopSampler();
    for (const d of this.detach) d();
    const endUs = this.lastSeenUs;
    for (const host of [...this.openRoutineOfHost.keys()]) this.closeImplicit(host);
    for (const r of [...this.routines.values()]) this.endRoutine(r.host, r.routine, endUs, { outcome: 'still running at the end of the trace' });
    for (const s of this.pairSlices.values()) this.close(s, endUs);
    this.pairSlices.clear();
    for (const list of this.frames.values()) for (const o of list) this.close(o.slice, endUs, { inFlightAtEnd: true });
    this.frames.clear();
  }

  private metadata(): Record<string, unknown> {
    const w = this.world;
    return {
      tool: 'remote-copy-lab TraceRecorder',
      topology: w.topology.name,
      runtime: w.runtime,
      seed: w.seed,
      timeUnit: `ts in microseconds of emulated time (${w.runtime === 'sim' ? 'virtual' : 'real, since the world was built'})`,
      lastTimeUs: this.lastSeenUs,
      traceHash: w.traceHash(),
      framesAndLinks: this.sim
        ? 'frames in flight (async slices, cat frame) and link utilisation counters from the sim scheduler'
        : `not available on the ${w.runtime} runtime: World offers only onEvent and the timeline (no frames in flight, no link utilisation, no events dispatched)`,
      counterSamplePeriodUs: TRACE_SAMPLE_PERIOD_US,
      maxEvents: this.maxEvents,
      recordedEvents: this.events.length,
      droppedEvents: this.dropped,
    };
  }

  /** Events in time order (metadata first); stable, so a B and the E at the same ts keep their order. */
  private sorted(): TraceEvent[] {
    return this.events.slice().sort((a, b) => (a.ph === 'M' ? -1 : 0) - (b.ph === 'M' ? -1 : 0) || a.ts - b.ts);
  }

  toJson(): { traceEvents: object[]; displayTimeUnit: 'ms'; metadata: Record<string, unknown> } {
    this.finish();
    return { traceEvents: this.sorted(), displayTimeUnit: 'ms', metadata: this.metadata() };
  }

  /** finish(), then the JSON written in chunks (one JSON.stringify of 2 M events could pass V8's string limit). */
  write(path: string): void {
    this.finish();
    const events = this.sorted();
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, '{"displayTimeUnit":"ms","traceEvents":[\n');
      const CHUNK = 10_000;
      for (let i = 0; i < events.length; i += CHUNK) {
        const part = events.slice(i, i + CHUNK).map((e) => JSON.stringify(e)).join(',\n');
        writeSync(fd, (i > 0 ? ',\n' : '') + part);
      }
      writeSync(fd, `\n],"metadata":${JSON.stringify(this.metadata())}}\n`);
    } finally {
      closeSync(fd);
    }
  }
}
