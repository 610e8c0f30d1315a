// The threads runtime as a World: one worker thread per storage system (hardware/thread-worker.ts running
// hardware/thread-cpu.ts), real time, latency really waited for. Mirrors SimWorld method by method.
//
// Memory: every system's disks, cache and control memory are built here (SharedArrayBuffers) and attached
// by its worker; the harness reads volumes and definition information straight from them. Data path:
// shared-memory rings with Atomics doorbells — a ring per direction of every link (frames stamped with
// their delivery time by the sender's link model), and per host a submission ring and a completion ring.
// Management plane (commands, faults, stats): comlink over each worker's port; firmware events come back
// in batches on a separate MessagePort.
//
// Debugging: each worker is named "storage system X", so it shows as its own target in an inspector
// (node --inspect, chrome://inspect, VS Code); pauseSystem()/resumeSystem() hold one system's CPU between
// two events, as a breakpoint would, while the others run on and their links keep real time.

import { createHash, type Hash } from 'node:crypto';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import * as nodeAdapter from 'comlink/dist/umd/node-adapter.js';
import type { Command, CommandReply } from '../firmware/commands.ts';
import { MAX_IO_BYTES } from '../firmware/constants.ts';
import { applySchedulingPolicy, applyTimerSlack, DEFAULT_TIMER_SLACK_NS, parseSchedulingPolicy, parseTimerSlackNs, type SchedulingPolicy, type TimerSlack } from '../hardware/thread-policy.ts';
import { readDefinitionInformation as readDefinition, readJournalRecords as readJournals } from '../firmware/definition-info.ts';
import type { FirmwareEvent } from '../firmware/hardware-interface.ts';
import { FRAME_HEADER_BYTES, MAX_FRAME_BODY_BYTES } from '../firmware/frames.ts';
import { Doorbell } from '../hardware/doorbell.ts';
import { SpscRing } from '../hardware/spsc-ring.ts';
import { StorageSystemMemory } from '../hardware/storage-system.ts';
import {
  COMPLETION_HEADER_BYTES, DEFAULT_THREAD_TUNING, FRAME_RECORD_HEADER_BYTES, IO_STATUS_CODES, LINK_WORDS_PER_LINK, LW_EPOCH, LW_UP, lwDirEpoch, lwDirUp,
  PAUSE_HELD, PAUSE_REQUESTED, PAUSE_RUNNING, readCopyDeviceStats, readStats, RingPort, STAT, SW_PAUSE,
  STAT_WORDS, SUB_HAS_DATA, SUB_OP_WRITE, SUBMISSION_HEADER_BYTES, SW_ASLEEP, SW_UP, SYSTEM_WORDS_PER_SYSTEM, WakeLine, mainAsleepIndex,
  systemWordsLength, worldClock,
  type CpuReport, type HostPortConfig, type InboundLinkConfig, type LinkModelChange, type OutboundLinkConfig, type ThreadCpuConfig,
  type ThreadCpuStats, type ThreadTuning,
} from '../hardware/thread-cpu.ts';
import type { ThreadWorkerApi } from '../hardware/thread-worker.ts';
import { Prng } from './prng.ts';
import type { HostSpec, StorageSystemSpec, Topology } from './topology.ts';
import { directionsOf, hostIssuedAtUs, hostSpec, linkSpec, systemSpec, type Fault, type HostIoRequest, type HostIoResult, type TimedEvent, type World } from './world.ts';
import { collectGarbage } from './collect-garbage.ts';
import { setFlagsFromString } from 'node:v8';
import { validateCopyDevice, type CopyDeviceStats } from '../hardware/copy-device.ts';
import { CommonLine, LineFaults, lineStatsWords, validateCommonLine, type CommonLineStats } from '../hardware/common-line.ts';

const adapter: unknown = nodeAdapter.default;
const nodeEndpoint = (typeof adapter === 'function' ? adapter : (adapter as { default: unknown }).default) as (w: Worker) => Comlink.Endpoint;

const WORKER_ENTRY = new URL('../hardware/worker-entry.mjs', import.meta.url);

const roundUpPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(n));
/** A link ring holds at least two of the largest frames (a full journal batch): maxRecordBytes is half the ring. */
const DEFAULT_LINK_RING_BYTES = roundUpPow2(2 * (FRAME_RECORD_HEADER_BYTES + FRAME_HEADER_BYTES + MAX_FRAME_BODY_BYTES + 16));
/** Host rings hold at least two of the largest I/Os (MAX_IO_BYTES). */
const DEFAULT_HOST_RING_BYTES = roundUpPow2(2 * (SUBMISSION_HEADER_BYTES + MAX_IO_BYTES + 16));
/** How often the host path's watchdog looks for a pump asleep with a completion visible (watchPump). */
const PUMP_WATCHDOG_MS = 200;

export interface ThreadsWorldOptions {
  /** Bytes of each direction's frame ring (default fits two largest frames). */
  linkRingBytes?: number;
  /** Bytes of each host's submission and completion rings. */
  hostRingBytes?: number;
  /** CPU loop tuning of every worker. */
  tuning?: Partial<ThreadTuning>;
  /** Main thread: keep polling completions this long after the last one before sleeping on the doorbell. */
  hostIdleSpinUs?: number;
  /** How long close() waits for a worker to stop its loop before terminating it anyway. */
  stopTimeoutMs?: number;
  /** Each worker commits its disk array's pages before its controller starts (benchmarks: see DiskArray.prefault). */
  prefaultMemory?: boolean;
  /**
   * V8's interrupt budget (--interrupt-budget: bytes of bytecode a function runs before V8 considers optimising it),
   * set for the whole process as the world starts: JIT_INTERRUPT_BUDGET unless given (V8's own default is 67584).
   */
  jitInterruptBudget?: number;
  /**
   * The host OS's scheduling policy for the world's threads (hardware/thread-policy.ts): 'batch' (SCHED_BATCH: a woken
   * thread does not preempt the one that woke it) unless RCLAB_SCHEDULING says otherwise; 'normal' is the OS default.
   */
  schedulingPolicy?: SchedulingPolicy;
  /**
   * Timer slack of the world's threads in ns (hardware/thread-policy.ts): how late the kernel may fire a timed wait, so
   * as to batch wake-ups. DEFAULT_TIMER_SLACK_NS (1) unless RCLAB_TIMER_SLACK_NS says otherwise; 50000 is Linux's default.
   */
  timerSlackNs?: number;
}

/**
 * A sixteenth of V8's default. A firmware that handles few events (a synchronous pair at QD 1 over 100 km does 800
 * writes a second) otherwise runs unoptimised for the whole of a study cell: P and I took 45–60 µs from taking a write
 * to sending its copy at 100 km, against 18–20 µs at 10 km, and 20–28 µs with this budget (the mean write 1,300 →
 * 1,165 µs). 2048 and 16384 measured worse, and so did --always-sparkplug; 0 km at QD 32 measured the same.
 */
export const JIT_INTERRUPT_BUDGET = 4096;

interface SystemRt {
  spec: StorageSystemSpec;
  index: number;
  memory: StorageSystemMemory;
  doorbell: Doorbell;
  /** Rung by the main thread after pushing submissions (notifies only when the CPU sleeps). */
  wake: WakeLine;
  /** Submissions were pushed since the last ring (see ringSystems). */
  unrung: boolean;
  stats: Float64Array;
  worker: Worker;
  api: Comlink.Remote<ThreadWorkerApi>;
  reports: MessagePort;
  /** Resolves when the report channel has closed (either end may close it). */
  reportsClosed: Promise<void>;
  alive: boolean;
  exited: Promise<void>;
  /** Ends a pause given a duration (pauseSystem's forMs). */
  resumeTimer: NodeJS.Timeout | null;
}

interface Submission {
  notBeforeUs: number;
  tag: number;
  opBits: number;
  lvol: number;
  lba: number;
  blocks: number;
  data: Uint8Array | undefined;
}

interface HostRt {
  spec: HostSpec;
  system: SystemRt;
  submission: RingPort;
  completion: SpscRing;
  compDv: DataView;
  header: Uint8Array;
  headerView: DataView;
  backlog: Submission[];
}

const immediate = (): Promise<void> => new Promise<void>((r) => setImmediate(r));
// Atomics.waitAsync is in lib ES2024; this project compiles against ES2023 (as in hardware/doorbell.ts).
const waitAsync = (Atomics as unknown as {
  waitAsync: (ta: Int32Array, index: number, value: number, timeoutMs: number) => { async: false } | { async: true; value: Promise<unknown> };
}).waitAsync;

export class ThreadsWorld implements World {
  readonly runtime = 'threads' as const;
  readonly prng: Prng;
  readonly controllerErrors: Array<{ system: string; message: string }> = [];
  /** The world's clock origin on CLOCK_MONOTONIC (process.hrtime.bigint()), shared with every worker. */
  readonly originNs: bigint;
  private readonly clock: () => number;
  private readonly systems = new Map<string, SystemRt>();
  private readonly hosts = new Map<string, HostRt>();
  private readonly hostList: HostRt[] = [];
  private readonly linkIndex = new Map<string, number>();
  /** The common line (embodiment 3): the main thread's view of its counters, which the workers write. */
  private readonly line: CommonLine | null = null;
  private readonly lineFaults: LineFaults | null = null;
  private readonly systemWords: Int32Array;
  private readonly linkWords: Int32Array;
  private readonly mainDoorbell = Doorbell.create();
  private readonly mainWake: WakeLine;
  private readonly listeners = new Set<(e: TimedEvent) => void>();
  private readonly hash: Hash = createHash('sha256');
  private readonly pendingIo = new Map<number, { host: HostRt; resolve: (r: HostIoResult) => void }>();
  private readonly linkRingBytes: number;
  private readonly hostRingBytes: number;
  private readonly hostIdleSpinUs: number;
  /** How far back a host I/O may be issued (HostIoRequest.issuedAtUs): the CPUs' cap on due credit. */
  private readonly maxDueCreditUs: number;
  private readonly stopTimeoutMs: number;
  private nextRequestId = 1;
  private tagSeq = 0;
  private pumping = false;
  /** When the pump went to sleep on the main doorbell (world µs), -1 while it is awake; and how to end that sleep from here. */
  private pumpAsleepSinceUs = -1;
  private rousePump: (() => void) | null = null;
  /** The watchdog's rescues of the host path: a pump asleep with a completion visible, or no pump with I/O outstanding. */
  private pumpRescues = 0;
  /** The sleep (its pumpAsleepSinceUs) the watchdog found suspect at its last look, -1 for none. */
  private pumpSuspectSleepUs = -1;
  private readonly pumpWatchdog: NodeJS.Timeout;
  /** Completions the host took, and the sum of how long after each reached the host (µs): see hostPickup(). */
  private pickups = 0;
  private pickupLateUsSum = 0;
  /** A microtask to ring the doorbells of systems given submissions (SystemRt.unrung) is queued. */
  private ringQueued = false;
  private closed = false;

  /**
   * `scheduling`: the policy the world's threads run under, and why not the one asked for (see schedulingPolicy);
   * `timerSlack`: their timer slack, and why not the one asked for (see timerSlackNs).
   */
  private constructor(readonly topology: Topology, readonly seed: number, private readonly options: ThreadsWorldOptions,
    readonly scheduling: { policy: SchedulingPolicy; note?: string }, readonly timerSlack: TimerSlack) {
    this.prng = new Prng(seed);
    this.originNs = process.hrtime.bigint();
    this.clock = worldClock(this.originNs);
    this.linkRingBytes = options.linkRingBytes ?? DEFAULT_LINK_RING_BYTES;
    this.hostRingBytes = options.hostRingBytes ?? DEFAULT_HOST_RING_BYTES;
    this.hostIdleSpinUs = options.hostIdleSpinUs ?? 0;
    this.maxDueCreditUs = options.tuning?.maxDueCreditUs ?? DEFAULT_THREAD_TUNING.maxDueCreditUs;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 2000;
    this.systemWords = new Int32Array(new SharedArrayBuffer(systemWordsLength(topology.systems.length) * 4));
    this.mainWake = new WakeLine(this.mainDoorbell, this.systemWords, mainAsleepIndex(topology.systems.length));
    this.pumpWatchdog = setInterval(this.watchPump, PUMP_WATCHDOG_MS);
    this.pumpWatchdog.unref();
    this.linkWords = new Int32Array(new SharedArrayBuffer(Math.max(1, topology.links.length) * LINK_WORDS_PER_LINK * 4));
    if (topology.line) {
      validateCommonLine(topology.line, topology.systems, topology.links);
      this.line = new CommonLine(topology.line, topology.systems, new Float64Array(new SharedArrayBuffer(lineStatsWords(topology.line, topology.systems.length) * 8)));
      this.lineFaults = new LineFaults(topology.line, topology.links);
    }
    topology.links.forEach((l, i) => {
      this.linkIndex.set(l.name, i);
      const lw = i * LINK_WORDS_PER_LINK;
      for (const up of [LW_UP, lwDirUp(0), lwDirUp(1)]) Atomics.store(this.linkWords, lw + up, 1);
    });
  }

  /** Builds the hardware, starts one worker per storage system and boots every controller. */
  static async create(topology: Topology, seed: number, options: ThreadsWorldOptions = {}): Promise<ThreadsWorld> {
    const budget = options.jitInterruptBudget ?? JIT_INTERRUPT_BUDGET;
    if (!Number.isInteger(budget) || budget < 1) throw new Error(`jitInterruptBudget must be a positive integer, got ${budget}`);
    // The worlds closed before this one still hold their memory (their SharedArrayBuffers: 0.8 GiB for a study cell)
    // until V8, in no hurry with a small heap, collects: 8 study cells in a row grew the process by 790 MiB of buffers
    // (270 MiB resident) each, and a collection that finally frees GiBs may fall inside a running world. Collected here,
    // the process holds at most the world just closed besides the new one.
    collectGarbage();
    // Process-wide (V8's flags are) and read as code runs: the workers started next, and this thread, tier up sooner.
    setFlagsFromString(`--interrupt-budget=${budget}`);
    const env = process.env.RCLAB_SCHEDULING, slackEnv = process.env.RCLAB_TIMER_SLACK_NS;
    const policy = options.schedulingPolicy !== undefined ? parseSchedulingPolicy(options.schedulingPolicy, 'schedulingPolicy')
      : env ? parseSchedulingPolicy(env, 'RCLAB_SCHEDULING') : 'batch';
    const slackNs = options.timerSlackNs !== undefined ? parseTimerSlackNs(options.timerSlackNs, 'timerSlackNs')
      : slackEnv ? parseTimerSlackNs(slackEnv, 'RCLAB_TIMER_SLACK_NS') : DEFAULT_TIMER_SLACK_NS;
    // Both before the workers start: they inherit this thread's policy and slack.
    const scheduling = applySchedulingPolicy(policy);
    const w = new ThreadsWorld(topology, seed, options, scheduling, applyTimerSlack(slackNs));
    try {
      await w.start();
    } catch (e) {
      await w.close();
      throw e;
    }
    return w;
  }

  private async start(): Promise<void> {
    const t = this.topology;
    const configs: ThreadCpuConfig[] = [];
    const channels: MessagePort[] = [];
    // A bad copy device is refused by name before any worker starts.
    for (const spec of t.systems) if (spec.copyDevice !== undefined) validateCopyDevice(spec.copyDevice, `storage system ${spec.name}: copyDevice`);
    t.systems.forEach((spec, index) => {
      const memory = StorageSystemMemory.build(spec.id, spec.name, spec.lvols, spec.cacheSlots);
      const doorbell = Doorbell.create();
      const stats = new Float64Array(new SharedArrayBuffer(STAT_WORDS * 8));
      // Named: an inspector lists it as "[worker N] storage system X".
      const worker = new Worker(WORKER_ENTRY, { name: `storage system ${spec.name}` });
      worker.setMaxListeners(0); // comlink listens once per call in flight
      const api = Comlink.wrap<ThreadWorkerApi>(nodeEndpoint(worker));
      const { port1, port2 } = new MessageChannel();
      const wake = new WakeLine(doorbell, this.systemWords, index * SYSTEM_WORDS_PER_SYSTEM + SW_ASLEEP);
      const reportsClosed = new Promise<void>((r) => port1.once('close', () => r()));
      const sys: SystemRt = { spec, index, memory, doorbell, wake, unrung: false, stats, worker, api, reports: port1, reportsClosed, alive: true, exited: Promise.resolve(), resumeTimer: null };
      sys.exited = new Promise<void>((resolve) => worker.once('exit', () => { sys.alive = false; resolve(); }));
      worker.on('error', (e: Error) => this.workerFailed(sys, e));
      worker.once('exit', () => { if (!this.closed) this.failPendingIo(sys); });
      port1.on('message', (batch: CpuReport[]) => this.onReports(sys, batch));
      this.systems.set(spec.name, sys);
      channels.push(port2);
      configs.push({
        name: spec.name, index, systems: t.systems.length, memory: memory.state, timing: spec.timing, originNs: this.originNs, hostLinkUs: t.hostLinkUs,
        doorbell: doorbell.sab, mainDoorbell: this.mainDoorbell.sab, systemWords: this.systemWords.buffer as SharedArrayBuffer,
        linkWords: this.linkWords.buffer as SharedArrayBuffer, stats: stats.buffer as SharedArrayBuffer,
        outbound: [], inbound: [], hosts: [], tuning: this.options.tuning, copyDevice: spec.copyDevice, prefaultMemory: this.options.prefaultMemory,
        line: this.line ? { spec: this.line.spec, systems: t.systems.map((x) => ({ name: x.name, id: x.id })), counters: this.line.counters.buffer as SharedArrayBuffer } : undefined,
      });
    });
    const config = (name: string) => configs[this.system(name).index]!;
    t.links.forEach((l, linkIndex) => {
      const a = this.system(l.a), b = this.system(l.b);
      const { a: _a, b: _b, ...link } = l;
      const directions: Array<[SystemRt, SystemRt]> = [[a, b], [b, a]];
      directions.forEach(([from, to], d) => {
        const dir = d as 0 | 1;
        const ring = SpscRing.create(this.linkRingBytes).sab;
        const out: OutboundLinkConfig = {
          peerStorageId: to.spec.id, peerName: to.spec.name, peerIndex: to.index, linkIndex, dir, ring, peerDoorbell: to.doorbell.sab, link: { ...link, name: l.name },
          seed: (this.seed ^ Math.imul(linkIndex * 2 + dir + 1, 0x9e3779b1)) >>> 0,
        };
        const inb: InboundLinkConfig = { peerStorageId: from.spec.id, peerName: from.spec.name, linkIndex, dir, ring, overLine: l.overLine };
        config(from.spec.name).outbound.push(out);
        config(to.spec.name).inbound.push(inb);
      });
    });
    for (const h of t.hosts) {
      const sys = this.system(h.storage);
      const submission = SpscRing.create(this.hostRingBytes).sab;
      const completion = SpscRing.create(this.hostRingBytes).sab;
      const cfg: HostPortConfig = { host: h.name, port: h.port, submission, completion };
      config(h.storage).hosts.push(cfg);
      const header = new Uint8Array(SUBMISSION_HEADER_BYTES);
      const hr: HostRt = {
        spec: h, system: sys, submission: new RingPort(submission), completion: SpscRing.attach(completion), compDv: new DataView(completion),
        header, headerView: new DataView(header.buffer), backlog: [],
      };
      this.hosts.set(h.name, hr);
      this.hostList.push(hr);
    }
    // Workers start concurrently (each compiles the firmware through tsx); controllers boot once all are attached.
    await Promise.all([...this.systems.values()].map((s, i) =>
      this.call(s, () => s.api.init(configs[i]!, Comlink.transfer(channels[i]!, [channels[i]] as unknown as Parameters<typeof Comlink.transfer>[1])),
        () => { throw new Error(`storage system ${s.spec.name}: worker exited during start`); })));
    await Promise.all([...this.systems.values()].map((s) => this.call(s, () => s.api.powerOn(), () => undefined)));
    const dead = [...this.systems.values()].filter((s) => !s.alive).map((s) => s.spec.name);
    if (dead.length > 0) {
      throw new Error(`storage system(s) ${dead.join(', ')}: worker exited during start${this.controllerErrors.length ? ` (${this.controllerErrors.map((e) => e.message).join('; ')})` : ''}`);
    }
  }

  private system(name: string): SystemRt {
    systemSpec(this.topology, name);
    return this.systems.get(name)!;
  }

  /** A management call that also ends (with `dead()`) if the worker exits before answering. */
  private call<T>(s: SystemRt, f: () => Promise<T>, dead: () => T): Promise<T> {
    if (!s.alive) return Promise.resolve().then(dead);
    const reply = f(); // comlink has posted the message by now
    // The worker's CPU loop may be blocked on its doorbell (Atomics.wait): wake it so it yields to its event loop.
    s.wake.ring();
    return Promise.race([reply, s.exited.then(dead)]);
  }

  // ───────────────────────────── clock, randomness ─────────────────────────────

  nowUs(): number { return this.clock(); }
  random(): number { return this.prng.next(); }

  /** Real sleep: setTimeout until about 1 ms before the deadline, then setImmediate turns until it has passed. */
  async sleep(us: number): Promise<void> {
    if (this.closed) throw new Error('world is closed');
    const until = this.clock() + us;
    const coarseMs = Math.floor((us - 1000) / 1000);
    if (coarseMs >= 1) await sleepMs(coarseMs);
    while (this.clock() < until) await immediate();
  }

  // ───────────────────────────── management ─────────────────────────────

  command(system: string, cmd: Command): Promise<CommandReply> {
    const s = this.system(system);
    if (this.closed) return Promise.reject(new Error('world is closed'));
    if (!this.isUp(system)) return Promise.resolve({ ok: false, error: `storage system ${system} does not answer: it is powered off` });
    const id = this.nextRequestId++;
    return this.call<CommandReply>(s, () => s.api.command(id, cmd),
      () => ({ ok: false, error: `storage system ${system} lost power before answering (its worker exited)` }));
  }

  /** Counters of one system's CPU, read from shared memory (no round trip). */
  stats(system: string): ThreadCpuStats {
    return readStats(this.system(system).stats);
  }

  /** Counters of a system's copy device, read from shared memory; null when the topology gives it none. */
  copyDeviceStats(system: string): CopyDeviceStats | null {
    const s = this.system(system);
    return s.spec.copyDevice ? readCopyDeviceStats(s.stats) : null;
  }

  /** Counters of the common line's switching devices and ports, read from shared memory; null without a line. */
  commonLineStats(): CommonLineStats | null {
    return this.line ? this.line.stats() : null;
  }

  /** Workers that have not exited yet. */
  runningWorkers(): number {
    let n = 0;
    for (const s of this.systems.values()) if (s.alive) n++;
    return n;
  }

  /** The thread id of a system's worker (an inspector's NodeWorker domain names workers by it). */
  workerThreadId(system: string): number {
    return this.system(system).worker.threadId;
  }

  /** A system's hardware (disks, cache, control memory), shared with its worker: for debuggers and fault-injection tests. */
  hardware(system: string): StorageSystemMemory {
    return this.system(system).memory;
  }

  // ───────────────────────────── pause (debugger-style) ─────────────────────────────

  /**
   * Pauses one storage system as a debugger breakpoint would: its CPU finishes the loop turn it is in and then
   * blocks between two firmware events (no frame, host I/O, timer or management command is dispatched; commands
   * sent to it wait). The other systems run on. Frames sent to it wait in its inbound rings (or, when a ring is
   * full, in the sender's backlog) stamped with their delivery times, so senders' timeouts see the real silence and
   * the paused system, once resumed, receives them late — its timers that fell due meanwhile fire first, late too.
   * Resolves once the CPU holds. With `forMs`, it resumes by itself after that long (see resumeSystem).
   */
  async pauseSystem(name: string, forMs?: number): Promise<void> {
    const s = this.system(name);
    if (forMs !== undefined && !(Number.isFinite(forMs) && forMs > 0)) {
      throw new Error(`pauseSystem ${name}: the duration must be a number of milliseconds > 0 (got ${forMs})`);
    }
    if (this.closed) throw new Error('world is closed');
    if (!s.alive) throw new Error(`storage system ${name} cannot be paused: its worker has exited`);
    this.clearResumeTimer(s);
    const w = this.systemWords, i = s.index * SYSTEM_WORDS_PER_SYSTEM + SW_PAUSE;
    if (Atomics.load(w, i) === PAUSE_RUNNING) {
      this.record(`pause ${name}`);
      Atomics.store(w, i, PAUSE_REQUESTED);
      s.wake.ring(); // a sleeping CPU loop wakes up to notice
      while (Atomics.load(w, i) === PAUSE_REQUESTED && s.alive && !this.closed) {
        const r = waitAsync(w, i, PAUSE_REQUESTED, 50);
        if (r.async) await r.value;
      }
      if (Atomics.load(w, i) !== PAUSE_HELD) {
        throw new Error(`storage system ${name} was not paused: ${!s.alive ? 'its worker exited' : this.closed ? 'the world closed' : 'it was resumed meanwhile'}`);
      }
    }
    if (forMs !== undefined) {
      // setTimeout may fire a fraction of a millisecond early by the world's clock: re-arm until the pause has lasted.
      const resumeAtUs = this.nowUs() + forMs * 1000;
      const arm = (ms: number) => {
        s.resumeTimer = setTimeout(() => {
          const leftUs = resumeAtUs - this.nowUs();
          if (leftUs > 0) return arm(Math.ceil(leftUs / 1000));
          s.resumeTimer = null;
          this.resumeNow(s);
        }, ms);
      };
      arm(forMs);
    }
  }

  /** Lets a paused storage system's CPU run again (at once; it then dispatches, late, what waited). No-op when not paused. */
  async resumeSystem(name: string): Promise<void> {
    const s = this.system(name);
    this.clearResumeTimer(s);
    this.resumeNow(s);
  }

  /** True while the system is paused (or a pause was asked for and its CPU has not reached it yet). */
  isPaused(name: string): boolean {
    const s = this.system(name);
    return Atomics.load(this.systemWords, s.index * SYSTEM_WORDS_PER_SYSTEM + SW_PAUSE) !== PAUSE_RUNNING;
  }

  private resumeNow(s: SystemRt): void {
    const w = this.systemWords, i = s.index * SYSTEM_WORDS_PER_SYSTEM + SW_PAUSE;
    if (Atomics.exchange(w, i, PAUSE_RUNNING) === PAUSE_RUNNING) return;
    this.record(`resume ${s.spec.name}`);
    Atomics.notify(w, i);
  }

  private clearResumeTimer(s: SystemRt): void {
    if (s.resumeTimer) clearTimeout(s.resumeTimer);
    s.resumeTimer = null;
  }

  // ───────────────────────────── host I/O ─────────────────────────────

  hostIo(host: string, req: HostIoRequest): Promise<HostIoResult> {
    const spec = hostSpec(this.topology, host);
    const h = this.hosts.get(spec.name)!;
    if (this.closed) return Promise.reject(new Error('world is closed'));
    const lineUs = this.topology.hostLinkUs;
    const issuedAtUs = hostIssuedAtUs(req, this.clock(), this.maxDueCreditUs);
    const tooBig = req.data !== undefined && SUBMISSION_HEADER_BYTES + req.data.length > h.submission.ring.maxRecordBytes;
    if (!this.isUp(h.system.spec.name) || tooBig) {
      // Powered off: 'not-ready' after the line's latency (as on sim). Larger than any legal I/O: the firmware would refuse it.
      const status = tooBig ? 'out-of-range' : 'not-ready';
      return this.sleep(tooBig ? 2 * lineUs : lineUs).then(() => ({ status, completedAtUs: this.clock() }));
    }
    let tag = (this.tagSeq = (this.tagSeq + 1) >>> 0 || 1);
    while (this.pendingIo.has(tag)) tag = this.tagSeq = (this.tagSeq + 1) >>> 0 || 1;
    return new Promise<HostIoResult>((resolve) => {
      this.pendingIo.set(tag, { host: h, resolve });
      const sub: Submission = {
        notBeforeUs: issuedAtUs + lineUs, tag, opBits: (req.op === 'write' ? SUB_OP_WRITE : 0) | (req.data ? SUB_HAS_DATA : 0),
        lvol: req.lvol, lba: req.lba, blocks: req.blocks, data: req.data,
      };
      if (h.backlog.length > 0 || !this.pushSubmission(h, sub)) {
        if (sub.data) sub.data = sub.data.slice(); // the host may reuse its buffer once we return
        h.backlog.push(sub);
      }
      if (!this.pumping) void this.pump();
    });
  }

  private pushSubmission(h: HostRt, s: Submission): boolean {
    const v = h.headerView;
    v.setFloat64(0, s.notBeforeUs, true);
    v.setUint32(8, s.tag, true);
    v.setUint8(12, s.opBits);
    v.setFloat64(16, s.lvol, true);
    v.setFloat64(24, s.lba, true);
    v.setFloat64(32, s.blocks, true);
    if (!h.submission.push(h.header, s.data)) return false;
    // One doorbell ring per burst of submissions (the host continuations a batch of completions resumes), after
    // they are all in: the CPU then takes them in one wake-up instead of being woken (and preempting us) for each.
    if (!h.system.unrung) {
      h.system.unrung = true;
      if (!this.ringQueued) { this.ringQueued = true; queueMicrotask(this.ringSystems); }
    }
    return true;
  }

  private readonly ringSystems = (): void => {
    this.ringQueued = false;
    for (const s of this.systems.values()) if (s.unrung) { s.unrung = false; s.wake.ring(); }
  };

  /** Polls the completion rings while host I/Os are outstanding; sleeps on the main doorbell in between. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      let lastWorkUs = this.clock();
      while (!this.closed && this.pendingIo.size > 0) {
        const seen = this.mainWake.value();
        let next = Infinity, backlog = false, work = false;
        const now = this.clock();
        for (const h of this.hostList) {
          if (h.backlog.length > 0) {
            let n = 0;
            while (n < h.backlog.length && this.pushSubmission(h, h.backlog[n]!)) n++;
            if (n > 0) h.backlog.splice(0, n);
            backlog ||= h.backlog.length > 0;
          }
          const before = this.pendingIo.size;
          const due = this.drainCompletions(h, now);
          work ||= this.pendingIo.size !== before;
          if (due < next) next = due;
        }
        if (this.pendingIo.size === 0) break;
        if (work) lastWorkUs = now;
        const waitUs = next - now;
        if (backlog || waitUs < 2000 || now - lastWorkUs < this.hostIdleSpinUs) {
          await immediate();
        } else {
          // Nothing queued: wait for the doorbell alone. An Atomics.waitAsync with a timeout costs a delayed task and a
          // timer on top of the wake-up, at every sleep; every completion rings the doorbell (a ring after `seen` was
          // read returns at once), and so do failPendingIo and close, which may end the loop.
          // The watchdog (watchPump) can end this sleep too: a wake-up lost would otherwise leave the hosts waiting for ever.
          this.pumpAsleepSinceUs = now;
          await Promise.race([
            this.mainWake.sleepAsync(seen, Number.isFinite(waitUs) ? Math.floor((waitUs - 1000) / 1000) : Infinity),
            new Promise<void>((rouse) => { this.rousePump = rouse; }),
          ]);
          this.pumpAsleepSinceUs = -1;
          this.rousePump = null;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * The host path's watchdog, every PUMP_WATCHDOG_MS: with host I/O outstanding, a pump asleep that long while a
   * completion is visible to the host (its doorbell's wake-up lost), or no pump at all, is rescued and counted
   * (hostPathState, pumpRescueCount). A rare hang of the study was host writes still outstanding 60 s after every
   * one had been answered; this turns such a hang into a stall of at most three periods, counted and reported.
   */
  private readonly watchPump = (): void => {
    if (this.closed || this.pendingIo.size === 0) return;
    if (!this.pumping) {
      this.pumpRescues++;
      void this.pump();
      return;
    }
    const now = this.clock();
    const suspect = this.pumpAsleepSinceUs >= 0 && now - this.pumpAsleepSinceUs >= PUMP_WATCHDOG_MS * 1000
      && this.hostList.some((h) => this.completionVisible(h, now));
    // Only on a second look at the same sleep: a main thread that was itself blocked (a long synchronous task) finds
    // this timer and the doorbell's wake-up due together, and the wake-up must not be counted as lost.
    if (!suspect) { this.pumpSuspectSleepUs = -1; return; }
    if (this.pumpSuspectSleepUs !== this.pumpAsleepSinceUs) { this.pumpSuspectSleepUs = this.pumpAsleepSinceUs; return; }
    this.pumpSuspectSleepUs = -1;
    this.pumpRescues++;
    this.rousePump?.();
  };

  private completionVisible(h: HostRt, now: number): boolean {
    const head = h.completion.peek();
    return head !== null && h.compDv.getFloat64(head.byteOffset, true) <= now;
  }

  /** How many times the watchdog has had to rescue the host path (0 unless a wake-up was lost). */
  pumpRescueCount(): number {
    return this.pumpRescues;
  }

  /** Resolves the completions already visible to the host; returns when the next one becomes visible (Infinity: none queued). */
  private drainCompletions(h: HostRt, now: number): number {
    const ring = h.completion, dv = h.compDv;
    for (;;) {
      const v = ring.peek();
      if (!v) return Infinity;
      const off = v.byteOffset;
      const visibleAtUs = dv.getFloat64(off, true);
      if (visibleAtUs > now) return visibleAtUs;
      const tag = dv.getUint32(off + 8, true);
      const status = IO_STATUS_CODES[dv.getUint8(off + 12)] ?? 'medium-error';
      const completedAtUs = Math.max(visibleAtUs, dv.getFloat64(off + 16, true)); // visible, and in the ring
      const data = v.length > COMPLETION_HEADER_BYTES ? v.slice(COMPLETION_HEADER_BYTES) : undefined;
      ring.pop();
      const p = this.pendingIo.get(tag);
      if (!p) continue;
      this.pendingIo.delete(tag);
      this.pickups++;
      this.pickupLateUsSum += now - completedAtUs;
      p.resolve(data ? { status, data, completedAtUs } : { status, completedAtUs });
    }
  }

  /**
   * How late the hosts (this thread) took their completions, since the world started: the count, and the sum of µs
   * from when each reached the host (HostIoResult.completedAtUs: visible, its storage system's answer plus the host
   * line, and in the ring) to the pump's look that found it: the main thread's own wake-up. A host program that issues
   * its next I/O at the completion's time (HostIoRequest.issuedAtUs) has it absorbed by that I/O's flight.
   */
  hostPickup(): { completions: number; lateUsSum: number } {
    return { completions: this.pickups, lateUsSum: this.pickupLateUsSum };
  }

  /**
   * The hosts' side of the I/O path, for a diagnosis when host I/Os seem stuck (the study's hung cells): per host,
   * I/Os outstanding, submissions not yet in the ring, both rings' bytes in use and when the oldest completion
   * becomes visible; whether the pump runs, and the main doorbell.
   */
  hostPathState(): string {
    const now = this.clock();
    const hosts = this.hostList.map((h) => {
      const pending = [...this.pendingIo.values()].filter((p) => p.host === h).length;
      const head = h.completion.peek();
      const visible = head ? `oldest completion visible ${Math.round(h.compDv.getFloat64(head.byteOffset, true) - now)} µs from now` : 'no completion queued';
      return `${h.spec.name}: ${pending} outstanding, ${h.backlog.length} submissions waiting, submission ring ${h.submission.ring.usedBytes()} B, completion ring ${h.completion.usedBytes()} B (${visible})`;
    });
    const pump = this.pumping ? (this.pumpAsleepSinceUs >= 0 ? `asleep for ${Math.round((now - this.pumpAsleepSinceUs) / 1000)} ms` : 'running') : 'stopped';
    return `${hosts.join('; ')}; pump ${pump}, rescued ${this.pumpRescues} times by its watchdog, main doorbell ${this.mainWake.value()}`;
  }

  /** Host I/Os a dead worker will never answer fail, as a host's timeout would. */
  private failPendingIo(s: SystemRt): void {
    for (const [tag, p] of [...this.pendingIo]) {
      if (p.host.system !== s) continue;
      this.pendingIo.delete(tag);
      p.resolve({ status: 'not-ready', completedAtUs: this.clock() });
    }
    this.mainWake.ring(); // the pump may be asleep waiting for these
  }

  // ───────────────────────────── hardware reads ─────────────────────────────

  volume(system: string, lvol: number): Uint8Array {
    return this.system(system).memory.disk.lvolBytes(lvol);
  }

  volumeWriteCount(system: string, lvol: number): number {
    return this.system(system).memory.disk.lvolWriteCount(lvol);
  }

  async betweenEvents<T>(system: string, read: () => T): Promise<T> {
    const s = this.system(system);
    // A worker that has exited writes nothing more; a system already paused (by a debugging pause) is held already.
    if (!s.alive || this.closed) return read();
    const w = this.systemWords, i = s.index * SYSTEM_WORDS_PER_SYSTEM + SW_PAUSE;
    const ours = Atomics.load(w, i) === PAUSE_RUNNING;
    if (ours) await this.pauseSystem(system);
    else while (Atomics.load(w, i) === PAUSE_REQUESTED && s.alive) { const r = waitAsync(w, i, PAUSE_REQUESTED, 50); if (r.async) await r.value; }
    try {
      return read(); // synchronous: the CPU stays held throughout
    } finally {
      if (ours) this.resumeNow(s);
    }
  }

  definitionInformation(system: string) {
    return readDefinition(this.system(system).memory.controlMemory);
  }

  journals(system: string) {
    return readJournals(this.system(system).memory.controlMemory);
  }

  isUp(system: string): boolean {
    const s = this.system(system);
    return s.alive && Atomics.load(this.systemWords, s.index * SYSTEM_WORDS_PER_SYSTEM + SW_UP) === 1;
  }

  // ───────────────────────────── faults ─────────────────────────────

  async fault(f: Fault): Promise<void> {
    this.record(`fault ${JSON.stringify(f)}`);
    switch (f.kind) {
      case 'power-loss': {
        const s = this.system(f.system);
        // The CPU stops the controller, clears the cache and fails what it had outstanding ('not-ready', commands with an error).
        await this.call(s, () => s.api.powerOff(), () => undefined);
        this.publish(f.system, { type: 'log', level: 'warn', message: 'power loss: controller stopped, cache lost' }, this.clock());
        return;
      }
      case 'power-on': {
        const s = this.system(f.system);
        this.publish(f.system, { type: 'log', level: 'info', message: 'power on' }, this.clock());
        return this.call(s, () => s.api.powerOn(), () => { throw new Error(`storage system ${f.system}: its worker has exited`); });
      }
      case 'cut-link':
      case 'heal-link':
      case 'cut-path':
      case 'heal-path':
      case 'link-conditions':
        // A segment of the common line acts on every circuit crossing it.
        if (this.lineFaults?.knows(f.link)) { for (const g of this.lineFaults.expand(f)) await this.circuitFault(g); return; }
        return this.circuitFault(f);
      case 'drive-failure':
        return this.system(f.system).memory.disk.failDrive(f.lvol);
      case 'drive-repair':
        return this.system(f.system).memory.disk.repairDrive(f.lvol);
      default: {
        const unknown: never = f;
        throw new Error(`unknown fault kind '${(unknown as { kind: string }).kind}'`);
      }
    }
  }

  /** A link fault on one circuit (a point-to-point link, or a route over the common line). */
  private async circuitFault(f: Extract<Fault, { link: string }>): Promise<void> {
    switch (f.kind) {
      case 'cut-link':
      case 'heal-link': {
        const spec = linkSpec(this.topology, f.link);
        const lw = this.linkIndex.get(f.link)! * LINK_WORDS_PER_LINK;
        const up = f.kind === 'heal-link';
        const dirs = directionsOf(f.direction);
        if (dirs.length === 1) {
          // One fibre: frames in that direction vanish; no port notices, only the firmware's timeouts.
          const d = dirs[0]!;
          if ((Atomics.load(this.linkWords, lw + lwDirUp(d)) === 1) !== up) {
            Atomics.add(this.linkWords, lw + lwDirEpoch(d), 1);
            Atomics.store(this.linkWords, lw + lwDirUp(d), up ? 1 : 0);
          }
          return;
        }
        if ((Atomics.load(this.linkWords, lw + LW_UP) === 1) === up) return;
        // New epoch first: frames stamped with the old one are lost wherever they are.
        Atomics.add(this.linkWords, lw + LW_EPOCH, 1);
        Atomics.store(this.linkWords, lw + LW_UP, up ? 1 : 0);
        // Both ports notice loss (or return) of light.
        const a = this.system(spec.a), b = this.system(spec.b);
        await Promise.all([
          this.call(a, () => a.api.linkState(b.spec.id, up), () => undefined),
          this.call(b, () => b.api.linkState(a.spec.id, up), () => undefined),
        ]);
        return;
      }
      case 'cut-path':
      case 'heal-path':
        return this.changeLinkModel(f.link, f.direction, { kind: 'path', path: f.path, up: f.kind === 'heal-path' });
      case 'link-conditions':
        return this.changeLinkModel(f.link, f.direction, { kind: 'conditions', conditions: f.conditions });
    }
  }

  /** A direction's latency model lives in the worker that sends on it (a→b: a's, b→a: b's). */
  private async changeLinkModel(link: string, direction: Parameters<typeof directionsOf>[0], change: LinkModelChange): Promise<void> {
    const spec = linkSpec(this.topology, link);
    const ends = [this.system(spec.a), this.system(spec.b)];
    await Promise.all(directionsOf(direction).map((d) => {
      const from = ends[d]!, to = ends[1 - d]!;
      return this.call(from, () => from.api.changeLinkModel(to.spec.id, change), () => undefined);
    }));
  }

  // ───────────────────────────── events ─────────────────────────────

  onEvent(listener: (e: TimedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onReports(s: SystemRt, batch: CpuReport[]): void {
    for (const r of batch) {
      if ('error' in r) {
        this.controllerErrors.push({ system: s.spec.name, message: r.error });
        this.publish(s.spec.name, { type: 'log', level: 'error', message: `controller stopped: ${r.error}` }, r.timeUs);
        // The flight recorder's dump: the events that led there (as on sim).
        if (r.recentEvents) this.publish(s.spec.name, { type: 'log', level: 'error', message: r.recentEvents }, r.timeUs);
      } else {
        this.publish(s.spec.name, r.event, r.timeUs);
      }
    }
  }

  private workerFailed(s: SystemRt, e: Error): void {
    const message = `worker thread of storage system ${s.spec.name} failed: ${e.message}`;
    this.controllerErrors.push({ system: s.spec.name, message });
    this.publish(s.spec.name, { type: 'log', level: 'error', message }, this.clock());
  }

  private record(line: string): void {
    this.hash.update(line);
    this.hash.update('\n');
  }

  private publish(system: string, event: FirmwareEvent, timeUs: number): void {
    this.record(`${system} ${JSON.stringify(event)}`);
    const e = { timeUs, system, event };
    for (const l of this.listeners) l(e);
  }

  /** Hash of the firmware events received so far (not reproducible on threads: real time decides the order). */
  traceHash(): string {
    return this.hash.copy().digest('hex').slice(0, 16);
  }

  /** Firmware events dispatched by all CPUs (host I/Os, frames, timers, commands, link changes, boots). */
  eventCount(): number {
    let n = 0;
    for (const s of this.systems.values()) n += s.stats[STAT.eventsDispatched]!;
    return n;
  }

  // ───────────────────────────── shutdown ─────────────────────────────

  /** Stops every CPU loop, terminates the workers and closes the ports: nothing is left to keep the process alive. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pumpWatchdog);
    const now = this.clock();
    for (const p of this.pendingIo.values()) p.resolve({ status: 'not-ready', completedAtUs: now });
    this.pendingIo.clear();
    this.mainWake.ring(); // ends the pump's sleep
    // A paused CPU cannot hear stop(): let every one run again first.
    for (const s of this.systems.values()) { this.clearResumeTimer(s); this.resumeNow(s); }
    await Promise.all([...this.systems.values()].map(async (s) => {
      if (s.alive) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((r) => { timer = setTimeout(r, this.stopTimeoutMs); });
        try {
          await Promise.race([this.call(s, () => s.api.stop(), () => undefined), timeout]);
        } catch {
          // stopping is best effort: terminate() below ends the thread regardless
        } finally {
          clearTimeout(timer);
        }
      }
      await s.worker.terminate();
      s.reports.close();
      await s.reportsClosed;
    }));
  }
}
