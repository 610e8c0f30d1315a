// The sim runtime's hardware: every storage system in one thread, a virtual clock, and a scheduler that
// delivers one event at a time in (time, sequence) order. Links are the same latency model as on the
// threads runtime, drawing from the run's one PRNG, so the same seed gives the same run event for event.

import { createHash, type Hash } from 'node:crypto';
import { DEFAULT_FIRMWARE_TIMING, type FirmwareOptions, type FirmwareTiming } from '../firmware/constants.ts';
import { Controller } from '../firmware/controller.ts';
import type { Command, CommandReply } from '../firmware/commands.ts';
import type { FirmwareEvent, Hardware, HostIo, IoStatus, TimerKind } from '../firmware/hardware-interface.ts';
import { LinkModel, type LinkConfig } from './link-model.ts';
import { StorageSystemMemory } from './storage-system.ts';
import { RecentEvents } from './recent-events.ts';
import { CopyDevice, isCopyFrame, type CopyDeviceConfig, type CopyDeviceState } from './copy-device.ts';
import type { CommonLine } from './common-line.ts';
import { ROUTING_HEADER_BYTES, routingDestination, writeRoutingHeader } from './switching-device.ts';

/** A frame on a link: sent at `sentUs`, arrives with the event that carries it. */
export interface FrameInFlight {
  from: string;
  to: string;
  frameType: number;
  bytes: number;
  path: number;
  sentUs: number;
  duplicate: boolean;
  /** When the firmware handed it over, if that was earlier than `sentUs` (it went through the copy device first). */
  handedUs?: number;
}

/** A sim copy device as data (debugger digests, snapshots): its frames with their destination, and its event bookkeeping. */
export interface SimCopyDeviceState extends CopyDeviceState<{ dest: number; handedUs: number; frame: Uint8Array }> {
  epoch: number;
  eventPending: boolean;
}

/** What a debugger or trace sees of a scheduled event (everything but the closure that runs it). */
export interface SimEventView {
  timeUs: number;
  seq: number;
  label: string;
  /** The storage system whose firmware the event runs; absent for host-side events (a sleep ends, a reply arrives). */
  system?: string;
  frame?: FrameInFlight;
}

interface SimEvent extends SimEventView {
  run: () => void;
}

/** Binary min-heap on (timeUs, seq): ties break by scheduling order, which is deterministic. */
export class SimScheduler {
  private heap: SimEvent[] = [];
  private seq = 0;
  private dispatched = 0;
  private readonly hash: Hash = createHash('sha256');
  nowUs = 0;

  /** Called after every dispatched event (debugger, trace); empty in plain runs. */
  readonly observers: Array<(e: SimEventView) => void> = [];
  /** The event dispatched last. */
  last: SimEventView | null = null;

  at(timeUs: number, label: string, run: () => void, where: { system?: string; frame?: FrameInFlight } = {}): void {
    const e: SimEvent = { timeUs: Math.max(timeUs, this.nowUs), seq: this.seq++, label, run, system: where.system, frame: where.frame };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  get pending(): number { return this.heap.length; }
  get eventCount(): number { return this.dispatched; }
  peekTimeUs(): number { return this.heap.length ? this.heap[0]!.timeUs : Infinity; }
  /** Sequence number the next scheduled event will get (part of the world's state). */
  get nextSeq(): number { return this.seq; }

  /** Every scheduled event in dispatch order, without their closures. */
  pendingEvents(): SimEventView[] {
    return this.heap.slice().sort((a, b) => (less(a, b) ? -1 : 1)).map(viewOf);
  }

  /** Dispatches the earliest event; false when there is none. */
  step(): boolean {
    const h = this.heap;
    if (h.length === 0) return false;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    this.nowUs = top.timeUs;
    this.dispatched++;
    this.hash.update(`${top.timeUs}|${top.label}\n`);
    top.run();
    this.last = top;
    if (this.observers.length) { const v = viewOf(top); for (const o of this.observers) o(v); }
    return true;
  }

  /** Mixes something that happened into the trace hash (firmware events, host completions). */
  record(line: string): void {
    this.hash.update(line);
    this.hash.update('\n');
  }

  traceHash(): string {
    return this.hash.copy().digest('hex').slice(0, 16);
  }
}

function viewOf(e: SimEvent): SimEventView {
  return { timeUs: e.timeUs, seq: e.seq, label: e.label, system: e.system, frame: e.frame };
}

function less(a: SimEvent, b: SimEvent): boolean {
  return a.timeUs < b.timeUs || (a.timeUs === b.timeUs && a.seq < b.seq);
}

export interface SimMachineHooks {
  completeHostIo(system: SimStorageSystem, io: HostIo, status: IoStatus, data?: Uint8Array): void;
  replyCommand(system: SimStorageSystem, requestId: number, reply: CommandReply): void;
  emit(system: SimStorageSystem, event: FirmwareEvent): void;
  controllerStopped(system: SimStorageSystem, error: Error): void;
  /** A frame handed to a link (`drop`: lost on the wire, it will never arrive). */
  frameSent?(frame: FrameInFlight & { deliverAtUs: number; drop: boolean }): void;
}

/** A link between two storage systems: one latency model per direction, a cut flag, and an epoch so frames in flight at a cut are lost. */
export class SimLink {
  readonly ab: LinkModel;
  readonly ba: LinkModel;
  /** Both fibres: false after a cut both ways (loss of light, which both ends' ports notice). */
  up = true;
  epoch = 0;
  /** Per direction (0: a→b, 1: b→a): false while one fibre is cut — frames vanish and only timeouts tell. */
  readonly dirUp: [boolean, boolean] = [true, true];
  readonly dirEpoch: [number, number] = [0, 0];
  constructor(readonly config: LinkConfig & { a: string; b: string }, random: () => number) {
    this.ab = new LinkModel(config, random);
    this.ba = new LinkModel(config, random);
  }
}

export class SimStorageSystem implements Hardware {
  readonly storageId: number;
  readonly disk;
  readonly cache;
  readonly controlMemory: Int32Array;
  readonly timing: FirmwareTiming;
  readonly links = new Map<number, { link: SimLink; model: LinkModel; peer: SimStorageSystem; dir: 0 | 1 }>();
  controller: Controller | null = null;
  powerEpoch = 0;
  stoppedBy: string | null = null;
  /** Flight recorder, dumped when an assertion stops the controller. */
  readonly recent = new RecentEvents();
  /** The copy device (¶0168), when the topology gives this system one: copy-data frames go through it. */
  readonly copyDevice: CopyDevice<{ dest: number; frame: Uint8Array; handedUs: number }> | null;
  /** The common line this system's circuits over it run on (embodiment 3), and this system's row in its counters. */
  line: { line: CommonLine; row: number } | null = null;
  /** An event is scheduled for the device's oldest frame; bumped by a power loss (that event then does nothing). */
  private copyEventPending = false;
  private copyEpoch = 0;

  constructor(
    readonly name: string,
    readonly memory: StorageSystemMemory,
    private readonly sched: SimScheduler,
    private readonly hooks: SimMachineHooks,
    timing: Partial<FirmwareTiming> = {},
    readonly options: FirmwareOptions = {},
    copyDevice?: CopyDeviceConfig,
  ) {
    this.copyDevice = copyDevice ? new CopyDevice(copyDevice, `storage system ${name}: copyDevice`) : null;
    this.storageId = memory.storageId;
    this.disk = memory.disk;
    this.cache = memory.cache;
    this.controlMemory = memory.controlMemory;
    this.timing = { ...DEFAULT_FIRMWARE_TIMING, ...timing };
  }

  get up(): boolean { return this.controller !== null; }

  powerOn(): void {
    if (this.controller) throw new Error(`storage system ${this.name} is already powered on`);
    this.powerEpoch++;
    this.stoppedBy = null;
    this.controller = new Controller(this);
    this.guard('boot', (c) => c.boot());
  }

  /** Power loss: the controller stops; cache memory (volatile) is lost; disks and control memory survive. */
  powerOff(): void {
    this.controller = null;
    this.powerEpoch++;
    this.cache.clear();
    if (this.copyDevice) { this.copyDevice.clear(); this.copyEpoch++; this.copyEventPending = false; }
  }

  /** Runs a firmware entry point; a broken invariant stops this controller loudly. */
  guard(what: string, f: (c: Controller) => void): void {
    const c = this.controller;
    if (!c) return;
    try {
      f(c);
    } catch (e) {
      this.stoppedBy = `${what}: ${(e as Error).message}`;
      (e as Error & { recentEvents?: string }).recentEvents = this.recent.dump(this.name);
      this.powerOff();
      this.hooks.controllerStopped(this, e as Error);
    }
  }

  /** Schedules an event for this controller that is discarded if the controller lost power meanwhile. */
  deliver(atUs: number, label: string, f: (c: Controller) => void): void {
    const epoch = this.powerEpoch;
    this.sched.at(atUs, `${this.name}:${label}`, () => {
      if (this.powerEpoch !== epoch) return;
      this.recent.record(this.sched.nowUs, label);
      this.guard(label, f);
    }, { system: this.name });
  }

  nowUs(): number { return this.sched.nowUs; }

  setTimer(delayUs: number, kind: TimerKind, arg: number): void {
    this.deliver(this.sched.nowUs + delayUs, `timer ${kind} ${arg}`, (c) => c.onTimer(kind, arg));
  }

  send(destStorageId: number, lentFrame: Uint8Array): boolean {
    const l = this.links.get(destStorageId);
    if (!l || !l.link.up) return false;
    const frame = lentFrame.slice(); // lent for the call only (Hardware.send): it waits in the event queue
    if (this.copyDevice && isCopyFrame(frame)) {
      // Copy data goes through the copy device first; it enters the link when the device is done with it.
      this.copyDevice.offer(this.sched.nowUs, frame.length, { dest: destStorageId, frame, handedUs: this.sched.nowUs });
      this.armCopyDevice();
      return true;
    }
    this.toLink(destStorageId, frame, this.sched.nowUs);
    return true;
  }

  /** The copy device's state (null without one); frames are the live ones, which nobody writes once sent. */
  copyDeviceState(): SimCopyDeviceState | null {
    if (!this.copyDevice) return null;
    return { ...this.copyDevice.dynamicState((i) => ({ dest: i.dest, handedUs: i.handedUs, frame: i.frame })), epoch: this.copyEpoch, eventPending: this.copyEventPending };
  }

  /** Schedules the event that hands the copy device's oldest frame on to its link once the device is done with it. */
  private armCopyDevice(): void {
    const dev = this.copyDevice!;
    const atUs = dev.nextDoneUs();
    if (this.copyEventPending || atUs === Infinity) return;
    this.copyEventPending = true;
    const epoch = this.copyEpoch;
    this.sched.at(atUs, `${this.name}:copy device done`, () => {
      if (epoch !== this.copyEpoch) return; // power lost meanwhile: the device's frames are gone
      this.copyEventPending = false;
      for (let f = dev.takeDone(this.sched.nowUs); f; f = dev.takeDone(this.sched.nowUs)) this.toLink(f.item.dest, f.item.frame, f.item.handedUs);
      this.armCopyDevice();
    }, { system: this.name });
  }

  /** Puts a frame on the link to `destStorageId` now (a link cut meanwhile loses it, as frames in flight at a cut are). */
  private toLink(destStorageId: number, frame: Uint8Array, handedUs: number): void {
    let l = this.links.get(destStorageId)!;
    if (!l.link.up) return;
    if (!l.link.dirUp[l.dir]) return; // this fibre is cut: the sender cannot tell
    let route: DataView | null = null;
    if (this.line && l.link.config.overLine) {
      // Onto the common line: the switching devices on the way decide, per frame, where it leaves the line.
      route = new DataView(new ArrayBuffer(ROUTING_HEADER_BYTES));
      writeRoutingHeader(route, 0, destStorageId, this.storageId, frame.length);
      const taken = this.links.get(this.line.line.carry(this.line.row, route, 0));
      if (!taken) return; // no station took it: lost (the line counts it)
      l = taken;
    }
    const d = l.model.schedule(this.sched.nowUs, frame.length);
    const info: FrameInFlight = { from: this.name, to: l.peer.name, frameType: frame[0]!, bytes: frame.length, path: d.path, sentUs: this.sched.nowUs, duplicate: false };
    if (handedUs < this.sched.nowUs) info.handedUs = handedUs;
    this.hooks.frameSent?.({ ...info, deliverAtUs: d.deliverAtUs, drop: d.drop });
    if (d.drop) return; // lost on the wire: only the sender's timeouts will tell
    const epoch = l.link.epoch, dir = l.dir, dirEpoch = l.link.dirEpoch[dir];
    const from = this.storageId;
    const label = `frame ${this.name}>${l.peer.name} t${frame[0]} ${frame.length}B p${d.path}`;
    const peer = l.peer;
    const arrive = () => {
      if (l.link.epoch === epoch && l.link.up && l.link.dirEpoch[dir] === dirEpoch && l.link.dirUp[dir]) {
        // The receiving port of a line circuit hands its controller only frames addressed to it.
        if (route && peer.line && !peer.line.line.receive(peer.line.row, peer.storageId, routingDestination(route, 0), frame.length)) return;
        peer.recent.record(this.sched.nowUs, `frame t${info.frameType} from ${info.from} ${info.bytes}B`);
        peer.guard('frame', (c) => c.onFrame(from, frame));
      }
    };
    const peerEpoch = peer.powerEpoch;
    this.sched.at(d.deliverAtUs, label, () => { if (peer.powerEpoch === peerEpoch) arrive(); }, { system: peer.name, frame: info });
    if (d.duplicateAtUs !== undefined) {
      this.sched.at(d.duplicateAtUs, `${label} dup`, () => { if (peer.powerEpoch === peerEpoch) arrive(); }, { system: peer.name, frame: { ...info, duplicate: true } });
    }
  }

  completeHostIo(io: HostIo, status: IoStatus, data?: Uint8Array): void {
    this.hooks.completeHostIo(this, io, status, data ? data.slice() : undefined);
  }

  replyCommand(requestId: number, reply: CommandReply): void {
    this.hooks.replyCommand(this, requestId, reply);
  }

  emit(event: FirmwareEvent): void {
    this.hooks.emit(this, event);
  }

  command(atUs: number, requestId: number, cmd: Command): void {
    this.deliver(atUs, `command ${requestId} ${cmd.op}`, (c) => c.onCommand(requestId, cmd));
  }
}
