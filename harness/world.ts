// The world as the harness sees it, the same on both runtimes: a management interface to every storage
// system, host ports, hardware reads (volumes and control memory, without asking the firmware), faults,
// and a clock. Routines, workloads and checkers are written against this and nothing else.

import type { Command, CommandReply } from '../firmware/commands.ts';
import type { PairRecord, JournalRecord } from '../firmware/definition-info.ts';
import type { FirmwareEvent, IoStatus } from '../firmware/hardware-interface.ts';
import type { Topology } from './topology.ts';
import type { LinkConditions, LinkDirection } from '../hardware/link-model.ts';
import type { CopyDeviceStats } from '../hardware/copy-device.ts';
import { lineRoute, type CommonLineStats } from '../hardware/common-line.ts';

export type RuntimeName = 'threads' | 'sim';

export interface TimedEvent {
  timeUs: number;
  system: string;
  event: FirmwareEvent;
}

export { directionsOf, type LinkDirection } from '../hardware/link-model.ts';

export type Fault =
  | { kind: 'power-loss'; system: string }   // controller stops, volatile cache is lost; disks and control memory survive
  | { kind: 'power-on'; system: string }     // controller boots again from control memory
  /** Both ways: loss of light that both ports notice (link down). One way: frames vanish silently. In flight: lost. */
  | { kind: 'cut-link'; link: string; direction?: LinkDirection }
  | { kind: 'heal-link'; link: string; direction?: LinkDirection }
  /** One path of a multi-path link: frames use the remaining paths (all cut: they are lost). */
  | { kind: 'cut-path'; link: string; path: number; direction?: LinkDirection }
  | { kind: 'heal-path'; link: string; path: number; direction?: LinkDirection }
  /** Latency spike, jitter, loss, duplication, bandwidth drop; 'reset' restores the configured link. */
  | { kind: 'link-conditions'; link: string; conditions: LinkConditions | 'reset'; direction?: LinkDirection }
  | { kind: 'drive-failure'; system: string; lvol: number }
  | { kind: 'drive-repair'; system: string; lvol: number };

export interface HostIoRequest {
  op: 'read' | 'write';
  lvol: number;
  lba: number;
  blocks: number;
  data?: Uint8Array;
  /**
   * World time (µs) the host issued this I/O, when that was before now: a host program that answers a completion with
   * its next I/O issues it at that completion's time (HostIoResult.completedAtUs), so that the emulator's lateness in
   * resuming the program (on threads, the main thread waking) is not the emulated host's, as a storage system's CPU
   * stamps what it sends from when its cause was due (ThreadTuning.maxDueCreditUs). Threads takes back at most
   * maxDueCreditUs; sim resumes programs on time. Later than now is refused.
   */
  issuedAtUs?: number;
}

export interface HostIoResult {
  status: IoStatus;
  data?: Uint8Array;
  /**
   * World time (µs) the completion reached the host: its storage system's answer plus the host line, and on threads
   * not before that system's thread had put it in the completion ring. How much later the host program took it is
   * the emulator's (ThreadsWorld.hostPickup()). A host's latency is completedAtUs less when it issued the I/O.
   */
  completedAtUs: number;
}

export interface World {
  readonly runtime: RuntimeName;
  readonly topology: Topology;
  readonly seed: number;
  /** Microseconds since the world was built (virtual on sim, real on threads). */
  nowUs(): number;
  sleep(us: number): Promise<void>;
  /** A deterministic random number in [0, 1) (the sim runtime's one PRNG; seeded on threads too). */
  random(): number;
  /** The management interface (maintenance port) of one storage system. */
  command(system: string, cmd: Command): Promise<CommandReply>;
  /** Host I/O over a host's line (S3/S4) to its storage system. */
  hostIo(host: string, io: HostIoRequest): Promise<HostIoResult>;
  /** The bytes of an LVOL, read straight from the disk array's shared memory. */
  volume(system: string, lvol: number): Uint8Array;
  /** Writes the disk array completed to an LVOL so far (changes whenever the volume's bytes may have). */
  volumeWriteCount(system: string, lvol: number): number;
  /**
   * Runs `read` while the storage system is between two firmware events, so what it reads of that system's
   * hardware (volume bytes, control memory) is one instant's state, never a block half written by its CPU.
   * On sim every host task already runs between events; on threads the system's CPU is held for the read.
   */
  betweenEvents<T>(system: string, read: () => T): Promise<T>;
  /** Definition information read straight from control memory. */
  definitionInformation(system: string): PairRecord[];
  journals(system: string): JournalRecord[];
  isUp(system: string): boolean;
  /** Counters of a storage system's copy device (¶0168), or null when its topology gives it none. */
  copyDeviceStats(system: string): CopyDeviceStats | null;
  /** Counters of the common line's switching devices and ports (embodiment 3), or null when the topology has no line. */
  commonLineStats(): CommonLineStats | null;
  fault(f: Fault): Promise<void>;
  onEvent(listener: (e: TimedEvent) => void): () => void;
  /** Firmware invariant violations (each stopped its controller). */
  readonly controllerErrors: ReadonlyArray<{ system: string; message: string }>;
  /** Hash over every event dispatched so far (sim: identical for identical seeds). */
  traceHash(): string;
  /** Number of firmware events dispatched. */
  eventCount(): number;
  close(): Promise<void>;
}

export function systemSpec(t: Topology, name: string) {
  const s = t.systems.find((x) => x.name === name);
  if (!s) throw new Error(`unknown storage system '${name}' (this topology has ${t.systems.map((x) => x.name).join(', ')})`);
  return s;
}

export function systemById(t: Topology, id: number) {
  const s = t.systems.find((x) => x.id === id);
  if (!s) throw new Error(`unknown storage id ${id}`);
  return s;
}

export function linkSpec(t: Topology, name: string) {
  const l = t.links.find((x) => x.name === name);
  if (!l) throw new Error(`unknown link '${name}' (this topology has ${linkNames(t)})`);
  return l;
}

function linkNames(t: Topology): string {
  const segments = t.line ? `; segments of the ${t.line.name}: ${t.line.segments.map((s) => s.name).join(', ')}` : '';
  return `${t.links.map((x) => x.name).join(', ')}${segments}`;
}

/** What a link fault may name: a link (circuit), or a segment of the common line, with the storage systems at its ends. */
export interface FaultLink { name: string; a: string; b: string; paths: number }

/**
 * Every link fault target of a topology: its links and, with a common line, the line's segments (a segment's ends
 * are the systems at its stations; its paths are those of the circuits crossing it).
 */
export function faultLinks(t: Topology): FaultLink[] {
  const out: FaultLink[] = t.links.map((l) => ({ name: l.name, a: l.a, b: l.b, paths: l.paths.length }));
  const line = t.line;
  if (!line) return out;
  line.segments.forEach((seg, i) => {
    const a = line.stations[i]!.system, b = line.stations[i + 1]!.system;
    const crossing = t.links.filter((l) => l.overLine && lineRoute(line, l.a, l.b).segments.includes(seg.name));
    out.push({ name: seg.name, a, b, paths: Math.min(...crossing.map((l) => l.paths.length)) });
  });
  return out;
}

/** A link or a segment of the common line, by name; an unknown name is refused, listing both. */
export function faultLink(t: Topology, name: string): FaultLink {
  const l = faultLinks(t).find((x) => x.name === name);
  if (!l) throw new Error(`unknown link '${name}' (this topology has ${linkNames(t)})`);
  return l;
}

export function hostSpec(t: Topology, name: string) {
  const h = t.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`unknown host '${name}' (this topology has ${t.hosts.map((x) => x.name).join(', ')})`);
  return h;
}

/**
 * The time a host I/O was issued (HostIoRequest.issuedAtUs), checked: now when not given, and never later than now
 * nor more than `maxBackUs` before it (a longer delay than that is the emulator's stall, not the host's reaction).
 */
export function hostIssuedAtUs(req: HostIoRequest, nowUs: number, maxBackUs: number): number {
  const at = req.issuedAtUs;
  if (at === undefined) return nowUs;
  if (typeof at !== 'number' || !Number.isFinite(at)) throw new Error(`host I/O: issuedAtUs must be a finite world time in µs, got ${String(at)}`);
  if (at > nowUs) throw new Error(`host I/O: issuedAtUs ${at} is later than now (${nowUs} µs): a host cannot issue an I/O in the future`);
  return Math.max(at, nowUs - maxBackUs);
}
