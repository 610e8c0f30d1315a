// The sim runtime as a World: virtual time advances only while some host task is waiting on the world
// (a sleep, a command, a host I/O), one firmware event at a time. Host code runs between events, in
// promise continuations, so everything — firmware and hosts — is ordered by the one scheduler and PRNG.

import type { Command, CommandReply } from '../firmware/commands.ts';
import { readDefinitionInformation as readDefinition, readJournalRecords as readJournals } from '../firmware/definition-info.ts';
import type { HostIo, IoStatus } from '../firmware/hardware-interface.ts';
import type { FirmwareOptions } from '../firmware/constants.ts';
import { SimLink, SimScheduler, SimStorageSystem, type FrameInFlight } from '../hardware/sim-machine.ts';
import { StorageSystemMemory } from '../hardware/storage-system.ts';
import type { CopyDeviceStats } from '../hardware/copy-device.ts';
import { CommonLine, LineFaults, lineStatsWords, validateCommonLine, type CommonLineStats } from '../hardware/common-line.ts';
import { Prng } from './prng.ts';
import type { Topology } from './topology.ts';
import { directionsOf, hostIssuedAtUs, hostSpec, linkSpec, systemSpec, type Fault, type HostIoRequest, type HostIoResult, type TimedEvent, type World } from './world.ts';

/** Latency of a command on a storage system's maintenance port, one way. */
const MANAGEMENT_US = 100;

export class SimWorld implements World {
  readonly runtime = 'sim' as const;
  readonly sched = new SimScheduler();
  readonly prng: Prng;
  readonly systems = new Map<string, SimStorageSystem>();
  readonly links = new Map<string, SimLink>();
  readonly controllerErrors: Array<{ system: string; message: string }> = [];
  /** Embodiment 3's common line (its switching devices' and ports' counters), when the topology has one. */
  readonly line: CommonLine | null = null;
  private readonly lineFaults: LineFaults | null = null;
  private readonly listeners = new Set<(e: TimedEvent) => void>();
  /** Told of every frame handed to a link (trace). */
  readonly frameListeners = new Set<(f: FrameInFlight & { deliverAtUs: number; drop: boolean }) => void>();
  /**
   * The debugger's gate: called before every event (so also right after the previous one and the host
   * continuations it woke have run). A returned promise holds the whole world until it settles.
   */
  gate: (() => Promise<void> | void) | null = null;
  private readonly pendingCommands = new Map<number, { system: string; resolve: (r: CommandReply) => void }>();
  private readonly pendingIo = new Map<number, { system: string; resolve: (r: HostIoResult) => void }>();
  private nextRequestId = 1;
  private nextTag = 1;
  private waiting = 0;
  private resolvedSinceYield = false;
  private wake: (() => void) | null = null;
  private closed = false;
  private expired = false;
  private readonly loopDone: Promise<void>;
  /** Settles at close(), so a world held by the debugger's gate can still close. */
  private readonly closing: Promise<void>;
  private closed$: () => void = () => {};

  /** `maxVirtualUs`: past it every wait on the world fails, so a run that would go on forever unwinds. */
  constructor(readonly topology: Topology, readonly seed: number, readonly maxVirtualUs = Infinity, readonly firmwareOptions: FirmwareOptions = {}) {
    this.prng = new Prng(seed);
    const random = () => this.prng.next();
    for (const s of topology.systems) {
      const memory = StorageSystemMemory.build(s.id, s.name, s.lvols, s.cacheSlots);
      this.systems.set(s.name, new SimStorageSystem(s.name, memory, this.sched, {
        completeHostIo: (sys, io, status, data) => this.settleIo(sys, io, status, data),
        replyCommand: (sys, id, reply) => this.settleCommand(id, reply),
        emit: (sys, event) => this.publish(sys.name, event),
        controllerStopped: (sys, error) => this.controllerStopped(sys.name, error),
        frameSent: (f) => { for (const l of this.frameListeners) l(f); },
      }, s.timing, firmwareOptions, s.copyDevice));
    }
    if (topology.line) {
      validateCommonLine(topology.line, topology.systems, topology.links);
      this.line = new CommonLine(topology.line, topology.systems, new Float64Array(lineStatsWords(topology.line, topology.systems.length)));
      this.lineFaults = new LineFaults(topology.line, topology.links);
      topology.systems.forEach((s, row) => { this.systems.get(s.name)!.line = { line: this.line!, row }; });
    }
    for (const l of topology.links) {
      const link = new SimLink(l, random);
      const a = this.system(l.a), b = this.system(l.b);
      a.links.set(b.storageId, { link, model: link.ab, peer: b, dir: 0 });
      b.links.set(a.storageId, { link, model: link.ba, peer: a, dir: 1 });
      this.links.set(l.name, link);
    }
    for (const s of this.systems.values()) s.powerOn();
    this.closing = new Promise<void>((r) => { this.closed$ = r; });
    this.loopDone = this.loop();
  }

  private system(name: string): SimStorageSystem {
    systemSpec(this.topology, name);
    return this.systems.get(name)!;
  }

  nowUs(): number { return this.sched.nowUs; }
  random(): number { return this.prng.next(); }
  eventCount(): number { return this.sched.eventCount; }
  traceHash(): string { return this.sched.traceHash(); }

  /** Runs the scheduler while any host task waits on the world. */
  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.waiting === 0 || this.sched.pending === 0) {
        if (this.waiting > 0 && this.sched.pending === 0) throw new Error('sim deadlock: hosts wait but no event is scheduled');
        await new Promise<void>((r) => { this.wake = r; });
        this.wake = null;
        continue;
      }
      if (this.gate) {
        const held = this.gate();
        if (held) await Promise.race([held, this.closing]);
        if (this.closed) break;
      }
      if (!this.expired && this.sched.peekTimeUs() > this.maxVirtualUs) this.expired = true;
      this.sched.step();
      if (this.resolvedSinceYield) {
        this.resolvedSinceYield = false;
        // Let every host continuation woken by this event run before the next event.
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  }

  /** Wraps a host-side wait so the scheduler knows someone is waiting, and yields after it resolves. */
  private wait<T>(register: (resolve: (v: T) => void) => void): Promise<T> {
    if (this.closed) return Promise.reject(new Error('world is closed'));
    if (this.expired) return Promise.reject(new Error(`virtual time limit of ${this.maxVirtualUs} µs reached`));
    this.waiting++;
    const p = new Promise<T>((resolve) => register((v) => {
      this.waiting--;
      this.resolvedSinceYield = true;
      resolve(v);
    }));
    this.wake?.();
    return p;
  }

  sleep(us: number): Promise<void> {
    return this.wait<void>((resolve) => this.sched.at(this.sched.nowUs + us, 'host sleep', () => resolve()));
  }

  command(system: string, cmd: Command): Promise<CommandReply> {
    const sys = this.system(system);
    return this.wait<CommandReply>((resolve) => {
      const id = this.nextRequestId++;
      if (!sys.up) {
        this.sched.at(this.sched.nowUs + MANAGEMENT_US, `command ${id} to down ${system}`, () =>
          resolve({ ok: false, error: `storage system ${system} does not answer: it is powered off` }));
        return;
      }
      this.pendingCommands.set(id, { system, resolve });
      sys.command(this.sched.nowUs + MANAGEMENT_US, id, cmd);
    });
  }

  private settleCommand(id: number, reply: CommandReply): void {
    const p = this.pendingCommands.get(id);
    if (!p) return;
    this.pendingCommands.delete(id);
    this.sched.at(this.sched.nowUs + MANAGEMENT_US, `reply ${id}`, () => p.resolve(reply));
  }

  hostIo(host: string, req: HostIoRequest): Promise<HostIoResult> {
    const h = hostSpec(this.topology, host);
    const sys = this.system(h.storage);
    const lineUs = this.topology.hostLinkUs;
    hostIssuedAtUs(req, this.sched.nowUs, 0); // checked only: a program here runs when its cause happened, never late
    return this.wait<HostIoResult>((resolve) => {
      const tag = this.nextTag++;
      if (!sys.up) {
        this.sched.at(this.sched.nowUs + lineUs, `io ${tag} to down ${sys.name}`, () => resolve({ status: 'not-ready', completedAtUs: this.sched.nowUs }));
        return;
      }
      this.pendingIo.set(tag, { system: sys.name, resolve });
      const io: HostIo = { tag, op: req.op, lvol: req.lvol, lba: req.lba, blocks: req.blocks, data: req.data?.slice(), port: h.port };
      sys.deliver(this.sched.nowUs + lineUs, `io ${tag} ${req.op} ${req.lvol}:${req.lba}+${req.blocks}`, (c) => c.onHostIo(io));
    });
  }

  private settleIo(sys: SimStorageSystem, io: HostIo, status: IoStatus, data: Uint8Array | undefined): void {
    const p = this.pendingIo.get(io.tag);
    if (!p) return;
    this.pendingIo.delete(io.tag);
    this.sched.record(`${sys.name} io ${io.tag} ${status}`);
    this.sched.at(this.sched.nowUs + this.topology.hostLinkUs, `io ${io.tag} done`, () => p.resolve({ status, data, completedAtUs: this.sched.nowUs }));
  }

  /** Requests a powered-off controller will never answer are failed, as a host's timeout would. */
  private failOutstanding(system: string): void {
    for (const [id, p] of [...this.pendingCommands]) {
      if (p.system !== system) continue;
      this.pendingCommands.delete(id);
      this.sched.at(this.sched.nowUs + MANAGEMENT_US, `reply ${id} lost`, () => p.resolve({ ok: false, error: `storage system ${system} lost power before answering` }));
    }
    for (const [tag, p] of [...this.pendingIo]) {
      if (p.system !== system) continue;
      this.pendingIo.delete(tag);
      this.sched.at(this.sched.nowUs + this.topology.hostLinkUs, `io ${tag} lost`, () => p.resolve({ status: 'not-ready', completedAtUs: this.sched.nowUs }));
    }
  }

  volume(system: string, lvol: number): Uint8Array {
    return this.system(system).memory.disk.lvolBytes(lvol);
  }

  volumeWriteCount(system: string, lvol: number): number {
    return this.system(system).memory.disk.lvolWriteCount(lvol);
  }

  async betweenEvents<T>(system: string, read: () => T): Promise<T> {
    this.system(system); // an unknown system is refused by name
    return read(); // host code runs only between events here
  }

  definitionInformation(system: string) {
    return readDefinition(this.system(system).controlMemory);
  }

  journals(system: string) {
    return readJournals(this.system(system).controlMemory);
  }

  isUp(system: string): boolean {
    return this.system(system).up;
  }

  copyDeviceStats(system: string): CopyDeviceStats | null {
    const d = this.system(system).copyDevice;
    return d ? { ...d.stats } : null;
  }

  commonLineStats(): CommonLineStats | null {
    return this.line ? this.line.stats() : null;
  }

  async fault(f: Fault): Promise<void> {
    this.sched.record(`fault ${JSON.stringify(f)}`);
    switch (f.kind) {
      case 'power-loss': {
        const sys = this.system(f.system);
        sys.powerOff();
        this.failOutstanding(f.system);
        this.publish(f.system, { type: 'log', level: 'warn', message: 'power loss: controller stopped, cache lost' });
        return;
      }
      case 'power-on':
        this.publish(f.system, { type: 'log', level: 'info', message: 'power on' });
        return this.system(f.system).powerOn();
      case 'cut-link':
      case 'heal-link':
      case 'cut-path':
      case 'heal-path':
      case 'link-conditions':
        // A segment of the common line acts on every circuit crossing it.
        if (this.lineFaults?.knows(f.link)) { for (const g of this.lineFaults.expand(f)) this.circuitFault(g); return; }
        return this.circuitFault(f);
      case 'drive-failure':
        return this.system(f.system).memory.disk.failDrive(f.lvol);
      case 'drive-repair':
        return this.system(f.system).memory.disk.repairDrive(f.lvol);
    }
  }

  /** A link fault on one circuit (a point-to-point link, or a route over the common line). */
  private circuitFault(f: Extract<Fault, { link: string }>): void {
    switch (f.kind) {
      case 'cut-link':
      case 'heal-link': {
        const spec = linkSpec(this.topology, f.link);
        const link = this.links.get(f.link)!;
        const up = f.kind === 'heal-link';
        const dirs = directionsOf(f.direction);
        if (dirs.length === 1) {
          // One fibre: frames in that direction vanish; no port notices, only the firmware's timeouts.
          const d = dirs[0]!;
          if (link.dirUp[d] !== up) { link.dirUp[d] = up; link.dirEpoch[d]++; }
          return;
        }
        if (link.up === up) return;
        link.up = up;
        link.epoch++;
        const a = this.system(spec.a), b = this.system(spec.b);
        a.deliver(this.sched.nowUs, `link ${f.link} ${up ? 'up' : 'down'}`, (c) => c.onLinkState(b.storageId, up));
        b.deliver(this.sched.nowUs, `link ${f.link} ${up ? 'up' : 'down'}`, (c) => c.onLinkState(a.storageId, up));
        return;
      }
      case 'cut-path':
      case 'heal-path': {
        linkSpec(this.topology, f.link);
        const link = this.links.get(f.link)!;
        for (const d of directionsOf(f.direction)) (d === 0 ? link.ab : link.ba).setPathUp(f.path, f.kind === 'heal-path');
        return;
      }
      case 'link-conditions': {
        linkSpec(this.topology, f.link);
        const link = this.links.get(f.link)!;
        for (const d of directionsOf(f.direction)) (d === 0 ? link.ab : link.ba).setConditions(f.conditions);
        return;
      }
    }
  }

  onEvent(listener: (e: TimedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private publish(system: string, event: TimedEvent['event']): void {
    this.sched.record(`${system} ${JSON.stringify(event)}`);
    const e = { timeUs: this.sched.nowUs, system, event };
    for (const l of this.listeners) l(e);
  }

  private controllerStopped(system: string, error: Error): void {
    this.controllerErrors.push({ system, message: error.message });
    this.failOutstanding(system);
    this.publish(system, { type: 'log', level: 'error', message: `controller stopped: ${error.message}` });
    const recent = (error as Error & { recentEvents?: string }).recentEvents;
    if (recent) this.publish(system, { type: 'log', level: 'error', message: recent });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.closed$();
    await this.loopDone;
  }
}
