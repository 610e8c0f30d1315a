// The common line of embodiment 3 (¶0124, claims 6 and 7): one line P — 300I(I) — 300J(J) — R. Stations sit along
// it in order; the two ends are storage systems, each inner station a switching device (hardware/switching-device.ts)
// with its intermediate storage system behind it; segments of known length join neighbouring stations.
//
// A circuit over the line (S1 P–I, S2 I–R, … : a topology link with `overLine`) is a route: its frames cross every
// segment between its ends, so its latency model's distance is their sum (`lineRoute`). Each frame is carried by
// `CommonLine.carry`, run per frame in the sending hardware as a stage before the circuit's latency model: the
// sender's line port puts the frame onto the line towards its destination, and at every switching device it
// reaches, the device's own code decides from the routing header whether the frame leaves the line there or goes
// on; an end station takes only frames addressed to it. The receiving port checks the address once more, so a
// controller is never handed a frame not addressed to it (`receive`).
//
// Faults: a segment can be cut, lose paths or change conditions like a link; `LineFaults` turns that into the same
// fault on every circuit crossing it (and keeps a circuit cut while any segment it crosses is), so both runtimes
// act on circuits exactly as they did on point-to-point links.
//
// Counters sit in one Float64Array (a SharedArrayBuffer on the threads runtime, written by the workers, read by the
// main thread): per switching device one row per sending system, then one row per system's line port.

import { directionsOf, type LinkConditions, type LinkDirection } from './link-model.ts';
import { MAX_LINE_ADDRESS, routingDestination, routingSource, SWITCH_STAT_WORDS, SwitchingDevice, type SwitchingDeviceStats } from './switching-device.ts';

export interface LineStationSpec {
  /** The storage system at this station: an end of the line, or the intermediate behind the switching device. */
  system: string;
  /** The switching device of an inner station (300I, 300J); the two ends have none. */
  switchingDevice?: string;
}

export interface LineSegmentSpec {
  /** E.g. "300I-300J": what a link fault names to cut the line there. */
  name: string;
  distanceKm: number;
}

export interface CommonLineSpec {
  name: string;
  /** In order along the line, from one end to the other. */
  stations: LineStationSpec[];
  /** segments[i] joins stations[i] and stations[i + 1]. */
  segments: LineSegmentSpec[];
}

/** Counters of a storage system's port on the line (the receiving side's check, and frames no station took). */
export const LINE_PORT_STAT = {
  /** Frames (bytes) addressed to this system that reached its port and were handed on to its controller. */
  framesIn: 0, bytesIn: 1,
  /** Frames that reached the port addressed to another system: dropped, never handed to the controller. */
  framesRefused: 2,
  /** Frames this system sent that no station took (they fell off the end of the line). */
  framesUnclaimed: 3,
} as const;
export const LINE_PORT_STAT_WORDS = 4;
export type LinePortStats = { -readonly [K in keyof typeof LINE_PORT_STAT]: number };

export interface CommonLineStats {
  switchingDevices: Record<string, SwitchingDeviceStats>;
  ports: Record<string, LinePortStats>;
}

/** The segments a circuit between systems a and b crosses, the switching devices it passes on the way, its length. */
export interface LineRoute {
  segments: string[];
  /** Switching devices between the ends (not the ones in front of a or b themselves). */
  passes: string[];
  distanceKm: number;
  /** True when a→b runs in station order (a segment's a-to-b direction is the circuit's a-to-b). */
  alongLine: boolean;
}

function stationOf(line: CommonLineSpec, system: string): number {
  const i = line.stations.findIndex((s) => s.system === system);
  if (i < 0) throw new Error(`${line.name}: storage system '${system}' is not on the line (its stations are ${line.stations.map((s) => s.system).join(', ')})`);
  return i;
}

export function lineRoute(line: CommonLineSpec, a: string, b: string): LineRoute {
  const i = stationOf(line, a), j = stationOf(line, b);
  if (i === j) throw new Error(`${line.name}: a circuit needs two different stations, got ${a} at both ends`);
  const lo = Math.min(i, j), hi = Math.max(i, j);
  const segments = line.segments.slice(lo, hi);
  const passes = line.stations.slice(lo + 1, hi).map((s) => s.switchingDevice!);
  return { segments: segments.map((s) => s.name), passes: i < j ? passes : passes.reverse(), distanceKm: segments.reduce((n, s) => n + s.distanceKm, 0), alongLine: i < j };
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Checks a line against the storage systems and circuits of its topology, naming the problem: every station a
 * known system, once; switching devices exactly at the inner stations, with names unique among systems, devices
 * and segments; one segment of length ≥ 0 between each pair of neighbours; every circuit over the line between two
 * stations and exactly as long as the segments it crosses.
 */
export function validateCommonLine(line: CommonLineSpec, systems: ReadonlyArray<{ name: string; id: number }>,
  circuits: ReadonlyArray<{ name: string; a: string; b: string; distanceKm: number; overLine?: boolean }>): void {
  const where = `common line '${line?.name}'`;
  if (!line || !Array.isArray(line.stations) || !Array.isArray(line.segments)) throw new Error(`${where} must have stations and segments arrays`);
  if (line.stations.length < 2) throw new Error(`${where} needs at least two stations, got ${line.stations.length}`);
  if (line.segments.length !== line.stations.length - 1) throw new Error(`${where}: ${line.stations.length} stations need ${line.stations.length - 1} segments, got ${line.segments.length}`);
  const names = new Set<string>(systems.map((s) => s.name));
  const seen = new Set<string>();
  line.stations.forEach((st, i) => {
    const sys = systems.find((s) => s.name === st?.system);
    if (!sys) throw new Error(`${where}: station ${i} names unknown storage system '${st?.system}' (this topology has ${systems.map((s) => s.name).join(', ')})`);
    if (seen.has(st.system)) throw new Error(`${where}: storage system ${st.system} is on the line twice`);
    seen.add(st.system);
    if (!Number.isInteger(sys.id) || sys.id < 0 || sys.id > MAX_LINE_ADDRESS) throw new Error(`${where}: storage id ${sys.id} of ${sys.name} does not fit a routing header (0–${MAX_LINE_ADDRESS})`);
    const inner = i > 0 && i < line.stations.length - 1;
    if (inner && !st.switchingDevice) throw new Error(`${where}: inner station ${i} (${st.system}) needs a switchingDevice: a frame passing it must be switched`);
    if (!inner && st.switchingDevice !== undefined) throw new Error(`${where}: end station ${st.system} cannot have a switching device (${st.switchingDevice}): nothing lies beyond it`);
    if (st.switchingDevice !== undefined) {
      if (typeof st.switchingDevice !== 'string' || st.switchingDevice === '' || names.has(st.switchingDevice)) throw new Error(`${where}: switching device name '${st.switchingDevice}' is empty or already used`);
      names.add(st.switchingDevice);
    }
  });
  line.segments.forEach((seg, i) => {
    const between = `${line.stations[i]!.switchingDevice ?? line.stations[i]!.system}–${line.stations[i + 1]!.switchingDevice ?? line.stations[i + 1]!.system}`;
    if (typeof seg?.name !== 'string' || seg.name === '' || names.has(seg.name)) throw new Error(`${where}: segment ${i} (${between}) has an empty or already used name '${seg?.name}'`);
    names.add(seg.name);
    if (!finite(seg.distanceKm) || seg.distanceKm < 0) throw new Error(`${where}: segment ${seg.name} (${between}) distanceKm must be >= 0, got ${seg.distanceKm}`);
  });
  const lineNames = new Set([...line.segments.map((x) => x.name), ...line.stations.flatMap((x) => x.switchingDevice ?? [])]);
  for (const c of circuits) {
    // A fault names a circuit or a segment: the two must not be confused.
    if (lineNames.has(c.name)) throw new Error(`${where}: circuit ${c.name} has the name of a segment or switching device of the line`);
    if (!c.overLine) continue;
    const r = lineRoute(line, c.a, c.b);
    if (c.distanceKm !== r.distanceKm) {
      throw new Error(`${where}: circuit ${c.name} (${c.a}–${c.b}) crosses ${r.segments.join(', ')} (${r.distanceKm} km) but has distanceKm ${c.distanceKm}`);
    }
  }
}

/** Float64 words of a line's counters in a world of `systems` storage systems. */
export function lineStatsWords(line: CommonLineSpec, systems: number): number {
  return line.stations.filter((s) => s.switchingDevice).length * systems * SWITCH_STAT_WORDS + systems * LINE_PORT_STAT_WORDS;
}

/**
 * One hardware instance's view of the line (the sim world has one; on threads every worker has its own over the
 * shared counters). `row` arguments are the world index of the system whose hardware runs the code.
 */
export class CommonLine {
  private readonly addresses: Int32Array;
  private readonly devices: Array<SwitchingDevice | null>;
  private readonly positionOf = new Map<number, number>();
  private readonly ports: Float64Array;

  constructor(readonly spec: CommonLineSpec, private readonly systems: ReadonlyArray<{ name: string; id: number }>, readonly counters: Float64Array) {
    validateCommonLine(spec, systems, []);
    if (counters.length !== lineStatsWords(spec, systems.length)) throw new Error(`${spec.name}: counters must hold ${lineStatsWords(spec, systems.length)} words, got ${counters.length}`);
    const rowWords = systems.length * SWITCH_STAT_WORDS;
    let k = 0;
    this.addresses = Int32Array.from(spec.stations, (st) => systems.find((s) => s.name === st.system)!.id);
    this.devices = spec.stations.map((st, i) => st.switchingDevice
      ? new SwitchingDevice(st.switchingDevice, this.addresses[i]!, counters.subarray(rowWords * k, rowWords * ++k), systems.length)
      : null);
    this.addresses.forEach((a, i) => this.positionOf.set(a, i));
    this.ports = counters.subarray(rowWords * k);
  }

  /**
   * Carries one frame whose routing header is at `off` of `dv`, sent by the system of world index `row`: it
   * enters the line at the sender's station (through its switching device, if it has one) and travels towards the
   * destination's station; every switching device on the way decides by the header's destination whether the frame
   * leaves the line there; an end station takes it only if addressed to it. Returns the address (storage id) of
   * the station that took it, or -1 when none did (counted as unclaimed at the sender's port).
   */
  carry(row: number, dv: DataView, off: number): number {
    const src = routingSource(dv, off), dest = routingDestination(dv, off);
    const from = this.positionOf.get(src), to = this.positionOf.get(dest);
    if (from !== undefined && to !== undefined && to !== from) {
      const step = to > from ? 1 : -1; // the sender's port knows which way along the line the destination lies
      this.devices[from]?.fromIntermediate(row, dv, off);
      for (let i = from + step; i >= 0 && i < this.addresses.length; i += step) {
        const device = this.devices[i];
        if (device) {
          if (device.switchFrame(row, dv, off)) return device.intermediateAddress;
          continue;
        }
        if (this.addresses[i] === dest) return dest; // an end station takes what is addressed to it
        break;
      }
    }
    this.ports[row * LINE_PORT_STAT_WORDS + LINE_PORT_STAT.framesUnclaimed]!++;
    return -1;
  }

  /**
   * The receiving port of the system of world index `row` (address `ownAddress`): true for a frame addressed to
   * it (counted in), false — and counted refused — for any other, which its controller must never see.
   */
  receive(row: number, ownAddress: number, destAddress: number, frameBytes: number): boolean {
    const p = this.ports, base = row * LINE_PORT_STAT_WORDS;
    if (destAddress !== ownAddress) { p[base + LINE_PORT_STAT.framesRefused]!++; return false; }
    p[base + LINE_PORT_STAT.framesIn]!++;
    p[base + LINE_PORT_STAT.bytesIn]! += frameBytes;
    return true;
  }

  stats(): CommonLineStats {
    const switchingDevices: Record<string, SwitchingDeviceStats> = {};
    for (const d of this.devices) if (d) switchingDevices[d.name] = d.stats();
    const ports: Record<string, LinePortStats> = {};
    this.systems.forEach((s, row) => {
      if (!this.positionOf.has(s.id)) return;
      const out = {} as LinePortStats;
      for (const [k, i] of Object.entries(LINE_PORT_STAT)) out[k as keyof typeof LINE_PORT_STAT] = this.ports[row * LINE_PORT_STAT_WORDS + i]!;
      ports[s.name] = out;
    });
    return { switchingDevices, ports };
  }
}

// ───────────────────────────── faults on the line ─────────────────────────────

/** The link faults (harness/world.ts `Fault`) that can name a circuit or a segment. */
export type LineLinkFault =
  | { kind: 'cut-link' | 'heal-link'; link: string; direction?: LinkDirection }
  | { kind: 'cut-path' | 'heal-path'; link: string; path: number; direction?: LinkDirection }
  | { kind: 'link-conditions'; link: string; conditions: LinkConditions | 'reset'; direction?: LinkDirection };

interface CutState { up: boolean; dirUp: [boolean, boolean] }
const allUp = (): CutState => ({ up: true, dirUp: [true, true] });
const DIRECTION: Record<0 | 1, LinkDirection> = { 0: 'a-to-b', 1: 'b-to-a' };

/**
 * Which circuits and segments of a line are cut, and the circuit faults that make the hardware match. A circuit
 * is up (both ways, or one way) only while it and every segment it crosses are; so cutting 300I-300J and then S2
 * itself, then healing the segment, leaves S2 cut. Path cuts and link conditions on a segment apply to every
 * circuit crossing it (the last one set on a circuit holds).
 */
export class LineFaults {
  private readonly circuits: Array<{ name: string; route: LineRoute }>;
  private readonly own = new Map<string, CutState>();
  /** What the hardware's circuits were last told. */
  private readonly applied = new Map<string, CutState>();

  constructor(readonly line: CommonLineSpec, circuits: ReadonlyArray<{ name: string; a: string; b: string; overLine?: boolean }>) {
    this.circuits = circuits.filter((c) => c.overLine).map((c) => ({ name: c.name, route: lineRoute(line, c.a, c.b) }));
    for (const n of [...this.circuits.map((c) => c.name), ...line.segments.map((s) => s.name)]) this.own.set(n, allUp());
    for (const c of this.circuits) this.applied.set(c.name, allUp());
  }

  /** True for a circuit over the line or a segment of it. */
  knows(name: string): boolean {
    return this.own.has(name);
  }

  isSegment(name: string): boolean {
    return this.line.segments.some((s) => s.name === name);
  }

  /** The circuits crossing a segment (a circuit: itself). */
  circuitsCrossing(name: string): string[] {
    if (!this.knows(name)) throw new Error(`${this.line.name}: no circuit or segment '${name}'`);
    return this.isSegment(name) ? this.circuits.filter((c) => c.route.segments.includes(name)).map((c) => c.name) : [name];
  }

  /** The circuit faults that carry out `f` (on a circuit or a segment), given everything cut before. */
  expand(f: LineLinkFault): LineLinkFault[] {
    if (!this.knows(f.link)) throw new Error(`${this.line.name}: no circuit or segment '${f.link}'`);
    const dirs = directionsOf(f.direction);
    if (f.kind === 'cut-link' || f.kind === 'heal-link') {
      const s = this.own.get(f.link)!, up = f.kind === 'heal-link';
      if (dirs.length === 2) s.up = up;
      else s.dirUp[dirs[0]!] = up;
      return this.reconcile();
    }
    if (!this.isSegment(f.link)) return [f];
    return this.circuits.filter((c) => c.route.segments.includes(f.link)).map((c) => {
      const direction = f.direction === undefined || f.direction === 'both' ? f.direction : DIRECTION[(c.route.alongLine ? dirs[0]! : 1 - dirs[0]!) as 0 | 1];
      return { ...f, link: c.name, direction };
    });
  }

  private reconcile(): LineLinkFault[] {
    const out: LineLinkFault[] = [];
    for (const c of this.circuits) {
      const parts = [this.own.get(c.name)!, ...c.route.segments.map((s) => this.own.get(s)!)];
      const want: CutState = {
        up: parts.every((p) => p.up),
        // A segment's a-to-b runs in station order; the circuit's runs from its a to its b.
        dirUp: ([0, 1] as const).map((d) => parts.every((p, i) => p.dirUp[i === 0 || c.route.alongLine ? d : 1 - d])) as [boolean, boolean],
      };
      const had = this.applied.get(c.name)!;
      if (want.up !== had.up) out.push({ kind: want.up ? 'heal-link' : 'cut-link', link: c.name });
      for (const d of [0, 1] as const) {
        if (want.dirUp[d] !== had.dirUp[d]) out.push({ kind: want.dirUp[d] ? 'heal-link' : 'cut-link', link: c.name, direction: DIRECTION[d] });
      }
      this.applied.set(c.name, want);
    }
    return out;
  }
}
