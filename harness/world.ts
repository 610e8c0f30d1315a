// The world as the harness sees it, the same on both runtimes: a management interface to every storage
// system, host ports, hardware reads (volumes and control memory, without asking the firmware), faults,
// and a clock. Routines, workloads and checkers are written against this and nothing else.

import type { Command, CommandReply } from '../firmware/commands.ts';
import type { PairRecord, JournalRecord } from '../firmware/definition-info.ts';
import type { FirmwareEvent, IoStatus } from '../firmware/hardware-interface.ts';
import type { Topology } from './topology.ts';
import type { LinkConditions } from '../hardware/link-model.ts';
import type { CopyDeviceStats } from '../hardware/copy-device.ts';

export type RuntimeName = 'threads' | 'sim';

export interface TimedEvent {
  timeUs: number;
  system: string;
  event: FirmwareEvent;
}

/** Which fibre of a link: a→b, b→a (a and b as the topology names them), or both. */
export type LinkDirection = 'both' | 'a-to-b' | 'b-to-a';

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

export function directionsOf(d: LinkDirection | undefined): Array<0 | 1> {
  if (d === undefined || d === 'both') return [0, 1];
  if (d === 'a-to-b') return [0];
  if (d === 'b-to-a') return [1];
  throw new Error(`unknown link direction '${d as string}' (use both, a-to-b or b-to-a)`);
}

export interface HostIoRequest {
  op: 'read' | 'write';
  lvol: number;
  lba: number;
  blocks: number;
  data?: Uint8Array;
}

export interface HostIoResult {
  status: IoStatus;
  data?: Uint8Array;
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
  if (!l) throw new Error(`unknown link '${name}' (this topology has ${t.links.map((x) => x.name).join(', ')})`);
  return l;
}

export function hostSpec(t: Topology, name: string) {
  const h = t.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`unknown host '${name}' (this topology has ${t.hosts.map((x) => x.name).join(', ')})`);
  return h;
}
