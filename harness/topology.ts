// A world's shape: storage systems with their LVOLs, the links between them, the hosts.

import type { FirmwareTiming } from '../firmware/constants.ts';
import type { LinkConfig } from '../hardware/link-model.ts';
import type { LvolSpec } from '../hardware/disk-array.ts';
import type { CopyDeviceConfig } from '../hardware/copy-device.ts';
import { lineRoute, type CommonLineSpec } from '../hardware/common-line.ts';
import type { GroupMember } from '../firmware/consistency-group.ts';

export interface StorageSystemSpec {
  /** The source's name: P, I, J or R. */
  name: string;
  /** Numeric storage id used in definition information. */
  id: number;
  lvols: LvolSpec[];
  cacheSlots: number;
  timing?: Partial<FirmwareTiming>;
  /** A copy device (¶0168, claim 13) that does this system's copying instead of its CPU (hardware/copy-device.ts). */
  copyDevice?: CopyDeviceConfig;
}

export interface LinkSpec extends LinkConfig {
  /** The source's name of the communication circuit: S1, S2, S5 … */
  name: string;
  a: string;
  b: string;
}

export interface HostSpec {
  /** 100P, 100R */
  name: string;
  /** The storage system this host is attached to (S3, S4). */
  storage: string;
  port: number;
}

export interface Topology {
  name: string;
  systems: StorageSystemSpec[];
  links: LinkSpec[];
  hosts: HostSpec[];
  /** Latency of a host's own line to its storage system (S3/S4), one way. */
  hostLinkUs: number;
  /** Embodiment 3's common line with its switching devices; the links with `overLine` are circuits over it. */
  line?: CommonLineSpec;
}

export interface Embodiment1Options {
  s1DistanceKm?: number;
  s2DistanceKm?: number;
  bandwidthMBps?: number;
  dataVolumeBytes?: number;
  journalVolumeBytes?: number;
  paths?: number;
  jitterUs?: number;
  /** The application's log volume (231x-log) on every system, next to its data volume. */
  logVolumeBytes?: number;
}

export const DATA_LVOL = 0;
export const JOURNAL_LVOL = 1;

/**
 * Every system gets the application's log volume `231<name>-log` as its LAST LVOL (so the numbers of the others
 * stay): the data volume and the log volume form the application's consistency group (one pair, one journal).
 */
function withLogVolumes(t: Topology, o: Embodiment1Options): Topology {
  for (const s of t.systems) s.lvols.push({ name: `231${s.name}-log`, kind: 'data', sizeBytes: o.logVolumeBytes ?? 1024 * 1024 });
  return t;
}

/** The LVOL of a system's log volume, or -1 when its topology gives it none. */
export function logLvol(t: Topology, system: string): number {
  return t.systems.find((s) => s.name === system)?.lvols.findIndex((l) => l.name === `231${system}-log`) ?? -1;
}

/** The application's volumes on a system, in group order: its data volume, then its log volume if it has one. */
export function applicationLvols(t: Topology, system: string): number[] {
  const log = logLvol(t, system);
  return log < 0 ? [DATA_LVOL] : [DATA_LVOL, log];
}

/** The members of the consistency group a routine forms from `source` to `dest`: data with data, log with log. */
export function groupVolumes(t: Topology, source: string, dest: string): GroupMember[] {
  const [src, dst] = [applicationLvols(t, source), applicationLvols(t, dest)];
  return src.slice(0, Math.min(src.length, dst.length)).map((localLvol, i) => ({ localLvol, remoteLvol: dst[i]! }));
}

/** P–I–R in series: S1 (P–I, synchronous, 100 km), S2 (I–R, asynchronous, 1000 km). */
export function embodiment1Topology(o: Embodiment1Options = {}): Topology {
  return withLogVolumes(embodiment1Base(o), o);
}

function embodiment1Base(o: Embodiment1Options): Topology {
  const data = o.dataVolumeBytes ?? 16 * 1024 * 1024;
  const journal = o.journalVolumeBytes ?? 16 * 1024 * 1024;
  const system = (name: string, id: number): StorageSystemSpec => ({
    name, id, cacheSlots: 256,
    lvols: [
      { name: `231${name}`, kind: 'data', sizeBytes: data },
      { name: `232${name}`, kind: 'journal', sizeBytes: journal },
    ],
  });
  const paths = Array.from({ length: o.paths ?? 2 }, (_, i) => ({ extraDelayUs: i * 50 }));
  const link = (name: string, a: string, b: string, distanceKm: number): LinkSpec => ({
    name, a, b, distanceKm, bandwidthMBps: o.bandwidthMBps ?? 1000, jitterUs: o.jitterUs ?? 20, paths,
  });
  return {
    name: 'embodiment 1 (P–I–R)',
    systems: [system('P', 0), system('I', 1), system('R', 3)],
    links: [link('S1', 'P', 'I', o.s1DistanceKm ?? 100), link('S2', 'I', 'R', o.s2DistanceKm ?? 1000)],
    hosts: [{ name: '100P', storage: 'P', port: 0 }, { name: '100R', storage: 'R', port: 1 }],
    hostLinkUs: 20,
  };
}

export interface Embodiment2Options extends Embodiment1Options {
  /** S5 (P–R). The source gives no distance; by default that of S2, since R is the remote site. */
  s5DistanceKm?: number;
}

/**
 * Embodiment 2 (¶0111): embodiment 1 plus communication circuit S5 directly between P and R, over which
 * reverse operation copies R→P asynchronously. Journal volume 232P is required: every system has one (LVOL 1).
 */
export function embodiment2Topology(o: Embodiment2Options = {}): Topology {
  const t = embodiment1Topology(o);
  const s2 = t.links.find((l) => l.name === 'S2')!;
  t.links.push({ ...s2, name: 'S5', a: 'P', b: 'R', distanceKm: o.s5DistanceKm ?? s2.distanceKm, paths: s2.paths.map((x) => ({ ...x })) });
  t.name = 'embodiment 2 (P–I–R, S5 P–R)';
  return t;
}

export interface Embodiment4Options extends Embodiment1Options {
  /** I–J: the long-haul asynchronous circuit between the two intermediate sites (embodiment 1's S2 role). */
  s6DistanceKm?: number;
  /** J–R: the secondary intermediate site near R; synchronous R→J in reverse operation (S1's mirror image). */
  s7DistanceKm?: number;
}

/** LVOL 2 of I and J: their second journal volume (each is at once an async destination and an async source). */
export const SECOND_JOURNAL_LVOL = 2;

/**
 * Embodiment 4 (¶0140–0161): P, I, J, R in series, the same scheme in both directions — P →sync I →async J
 * →async R in normal operation, R →sync J →async I →async P in reverse operation.
 *
 * The source names no circuits beyond S1–S5 and gives no distances for this embodiment, so the links continue
 * the numbering: S1 P–I (100 km, synchronous, as in embodiment 1), S6 I–J (1000 km: the long haul between the
 * regions, embodiment 1's S2 distance, since I is near P and J near R) and S7 J–R (100 km: J must be near
 * enough to R for the synchronous pair R→J of S1070, the mirror image of S1).
 *
 * A system that is at once the destination of one asynchronous pair and the source of another keeps one
 * journal volume per pair (one journal per LVOL): J in normal operation (232J for I→J, 232J-2 for J→R) and I in
 * reverse operation (232I for J→I, 232I-2 for I→P). P and R are never both, so they have one.
 */
export function embodiment4Topology(o: Embodiment4Options = {}): Topology {
  const t = embodiment1Base(o);
  const journalBytes = o.journalVolumeBytes ?? 16 * 1024 * 1024;
  const [sP, sI, sR] = t.systems as [StorageSystemSpec, StorageSystemSpec, StorageSystemSpec];
  const sJ: StorageSystemSpec = { ...sI, name: 'J', id: 2, lvols: sI.lvols.map((l) => ({ ...l, name: l.name.replace(/I$/, 'J') })) };
  for (const s of [sI, sJ]) s.lvols.push({ name: `232${s.name}-2`, kind: 'journal', sizeBytes: journalBytes });
  const s1 = t.links.find((l) => l.name === 'S1')!;
  const link = (name: string, a: string, b: string, distanceKm: number): LinkSpec => ({ ...s1, name, a, b, distanceKm, paths: s1.paths.map((x) => ({ ...x })) });
  return withLogVolumes({
    ...t,
    name: 'embodiment 4 (P–I–J–R)',
    systems: [sP, sI, sJ, sR],
    links: [s1, link('S6', 'I', 'J', o.s6DistanceKm ?? 1000), link('S7', 'J', 'R', o.s7DistanceKm ?? 100)],
  }, o);
}

export interface Embodiment3Options extends Embodiment1Options {
  /** Segment 300I–300J of the common line: the long haul (I is near P, J near R). */
  ijDistanceKm?: number;
  /** Segment 300J–R of the common line: short, for the synchronous pair R→J of S800. */
  s7DistanceKm?: number;
  /**
   * Fig. 18 (claim 8): R also copies asynchronously to J in normal operation, and ([0139]) P to I in reverse
   * operation, so R, P and I get a second journal volume.
   */
  variation?: boolean;
}

/**
 * Embodiment 3 (¶0123–0139): P (0), I (1), J (2), R (3). Normal operation as embodiment 1 over S1 (P–I, sync) and
 * S2 (I–R, async); J is not used ([0125]) except in the variation. Reverse operation: R →sync J →async P.
 *
 * All four sit on one common line ([0124], claims 6–7; hardware/common-line.ts), in this order:
 *   P ──P-300I 100 km── 300I(I) ──300I-300J 900 km── 300J(J) ──300J-R 100 km── R
 * The switching devices 300I and 300J hand their intermediate the frames addressed to it and pass the rest on.
 * The circuits are routes over the line, each as long as the segments it crosses: S1 P–I 100 km, S2 I–R 1000 km
 * (as in embodiment 1), S7 J–R 100 km and S8 P–J 1000 km (not named in the source; S7 as in embodiment 4), and,
 * since every station on a line can reach every other, S5 P–R 1100 km (P–R as in embodiment 2) and S6 I–J 900 km
 * (I–J as in embodiment 4), which the routines do not use. A link fault may name a circuit (that circuit alone)
 * or a segment (every circuit crossing it).
 *
 * Journal volumes: J is never at once an async destination and an async source (the variation's async pair R→J
 * is replaced at S800 before J→P is formed), so it has one. In the variation R is (destination of I→R, source of
 * R→J): it gets `232R-2` (LVOL 2, SECOND_JOURNAL_LVOL) for the pair R→J. Its reverse half ([0139]) copies P→I
 * asynchronously while P is the destination of J→P (232P) and I the source of the suspended I→R (232I): P and I
 * get `232P-2` and `232I-2` (LVOL 2) for the pair P→I.
 */
export function embodiment3Topology(o: Embodiment3Options = {}): Topology {
  const t = embodiment1Base(o);
  const journalBytes = o.journalVolumeBytes ?? 16 * 1024 * 1024;
  const [sP, sI, sR] = t.systems as [StorageSystemSpec, StorageSystemSpec, StorageSystemSpec];
  const sJ: StorageSystemSpec = { ...sI, name: 'J', id: 2, lvols: sI.lvols.map((l) => ({ ...l, name: l.name.replace(/I$/, 'J') })) };
  if (o.variation) for (const s of [sP, sI, sR]) s.lvols.push({ name: `232${s.name}-2`, kind: 'journal', sizeBytes: journalBytes });
  const s1 = t.links.find((l) => l.name === 'S1')!, s2 = t.links.find((l) => l.name === 'S2')!;
  const jr = o.s7DistanceKm ?? 100, ij = o.ijDistanceKm ?? s2.distanceKm - jr;
  const line: CommonLineSpec = {
    name: 'common line',
    stations: [{ system: 'P' }, { system: 'I', switchingDevice: '300I' }, { system: 'J', switchingDevice: '300J' }, { system: 'R' }],
    segments: [{ name: 'P-300I', distanceKm: s1.distanceKm }, { name: '300I-300J', distanceKm: ij }, { name: '300J-R', distanceKm: jr }],
  };
  const circuit = (name: string, a: string, b: string): LinkSpec =>
    ({ ...s1, name, a, b, distanceKm: lineRoute(line, a, b).distanceKm, overLine: true, paths: s1.paths.map((x) => ({ ...x })) });
  return withLogVolumes({
    ...t,
    name: `embodiment 3 (P–300I/I–300J/J–R on a common line${o.variation ? ', variation: R→J async backup' : ''})`,
    systems: [sP, sI, sJ, sR],
    links: [circuit('S1', 'P', 'I'), circuit('S2', 'I', 'R'), circuit('S7', 'J', 'R'), circuit('S8', 'P', 'J'), circuit('S5', 'P', 'R'), circuit('S6', 'I', 'J')],
    line,
  }, o);
}

/** The circuits over a common line get their lengths from its segments again (after a segment's length changed). */
export function lineCircuitLengths(t: Topology): void {
  if (!t.line) return;
  for (const l of t.links) if (l.overLine) l.distanceKm = lineRoute(t.line, l.a, l.b).distanceKm;
}
