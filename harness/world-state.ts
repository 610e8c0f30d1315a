// The whole emulated world of the sim runtime as plain data: every volume, control memory (definition
// information, journals, bitmaps), cache, link state, the events in flight (frames on links, timers), the
// clock and the PRNG. The debugger digests it to prove `back` and `load` reach the identical world, and
// saves it to snapshot files (msgpackr, gzip).

import type { CopyControlConfig } from './copy-control.ts';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import type { SimCopyDeviceState, SimEventView, SimStorageSystem } from '../hardware/sim-machine.ts';
import type { RecentEvent } from '../hardware/recent-events.ts';
import type { LinkModel } from '../hardware/link-model.ts';
import type { CacheMemory } from '../hardware/cache-memory.ts';
import type { SimWorld } from './runtime-sim.ts';
import type { CopyDevicesOption } from './copy-devices.ts';

export interface SystemState {
  name: string;
  up: boolean;
  powerEpoch: number;
  /** Every LVOL of the disk array, back to back. */
  disk: Uint8Array;
  /** Drive health and write counters. */
  diskHealth: Uint8Array;
  controlMemory: Uint8Array;
  /** Allocated cache slots only (a free slot's stale bytes are never read before being written). */
  cacheSlots: Array<{ slot: number; bytes: Uint8Array }>;
  cacheFreeStack: number[];
  recentEvents: RecentEvent[];
  /**
   * The copy device (¶0168), absent without one (so worlds without devices keep their digests): the frames it
   * holds with their done times, its counters and its event bookkeeping.
   */
  copyDevice?: SimCopyDeviceState;
}

export interface LinkState {
  name: string;
  up: boolean;
  epoch: number;
  dirUp: boolean[];
  dirEpoch: number[];
  aToB: ReturnType<LinkModel['dynamicState']>;
  bToA: ReturnType<LinkModel['dynamicState']>;
}

export interface WorldState {
  eventIndex: number;
  nowUs: number;
  nextSeq: number;
  traceHash: string;
  prng: number[];
  systems: SystemState[];
  links: LinkState[];
  /** Scheduled events in dispatch order: frames in flight, timers, host wake-ups. */
  pending: SimEventView[];
  /** The common line's switching-device and port counters (embodiment 3; absent without a line). */
  line?: number[];
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function allocatedSlots(cache: CacheMemory, take: (b: Uint8Array) => Uint8Array): SystemState['cacheSlots'] {
  const free = new Set(cache.allocation.freeStack);
  const out: SystemState['cacheSlots'] = [];
  for (let slot = 0; slot < cache.slotCount; slot++) if (!free.has(slot)) out.push({ slot, bytes: take(cache.slot(slot, cache.slotBytes)) });
  return out;
}

function copyDeviceState(s: SimStorageSystem, take: (b: Uint8Array) => Uint8Array): Pick<SystemState, 'copyDevice'> {
  const d = s.copyDeviceState();
  if (!d) return {};
  const frames = <X extends { item: { frame: Uint8Array } }>(xs: X[]) => xs.map((x) => ({ ...x, item: { ...x.item, frame: take(x.item.frame) } }));
  return { copyDevice: { ...d, queue: frames(d.queue), backlog: frames(d.backlog) } };
}

/** `copy: false` gives views of the live memory (for a digest, without copying ~100 MB); the default copies. */
export function captureWorldState(world: SimWorld, o: { copy?: boolean } = {}): WorldState {
  const take = o.copy === false ? (b: Uint8Array) => b : (b: Uint8Array) => b.slice();
  return {
    eventIndex: world.eventCount(),
    nowUs: world.nowUs(),
    nextSeq: world.sched.nextSeq,
    traceHash: world.traceHash(),
    prng: world.prng.state,
    systems: [...world.systems.values()].map((s) => {
      const d = s.memory.disk.state;
      return {
        name: s.name, up: s.up, powerEpoch: s.powerEpoch,
        disk: take(new Uint8Array(d.data)), diskHealth: take(new Uint8Array(d.health)),
        controlMemory: take(bytesOf(s.controlMemory)), cacheSlots: allocatedSlots(s.memory.cache, take),
        cacheFreeStack: s.memory.cache.allocation.freeStack, recentEvents: s.recent.toArray(),
        ...copyDeviceState(s, take),
      };
    }),
    links: [...world.links.entries()].map(([name, l]) => ({
      name, up: l.up, epoch: l.epoch, dirUp: [...l.dirUp], dirEpoch: [...l.dirEpoch], aToB: l.ab.dynamicState(), bToA: l.ba.dynamicState(),
    })),
    pending: world.sched.pendingEvents(),
    ...(world.line ? { line: [...world.line.counters] } : {}),
  };
}

/** A digest over every part of the state; identical worlds, identical digests. */
export function digestWorldState(s: WorldState): string {
  const h = createHash('sha256');
  const { systems, links, pending, ...scalars } = s;
  h.update(pack(scalars));
  for (const x of systems) {
    const { disk, diskHealth, controlMemory, cacheSlots, ...rest } = x;
    h.update(pack(rest)).update(disk).update(diskHealth).update(controlMemory);
    for (const c of cacheSlots) h.update(pack(c.slot)).update(c.bytes);
  }
  h.update(pack(links)).update(pack(pending));
  return h.digest('hex').slice(0, 16);
}

/** The digest of the live world (no copies). */
export function digestWorld(world: SimWorld): string {
  return digestWorldState(captureWorldState(world, { copy: false }));
}

/** The parts that differ between two states (empty: identical), named so a mismatch can be read. */
export function diffWorldStates(a: WorldState, b: WorldState): string[] {
  const out: string[] = [];
  const same = (x: unknown, y: unknown) => Buffer.from(pack(x)).equals(Buffer.from(pack(y)));
  for (const k of ['eventIndex', 'nowUs', 'nextSeq', 'traceHash', 'prng', 'pending', 'line'] as const) if (!same(a[k], b[k])) out.push(k);
  for (const sa of a.systems) {
    const sb = b.systems.find((x) => x.name === sa.name);
    if (!sb) { out.push(`system ${sa.name} missing`); continue; }
    // Keys of both: a copy device present on one side only is a difference too.
    for (const k of new Set([...Object.keys(sa), ...Object.keys(sb)]) as Set<keyof SystemState>) if (!same(sa[k], sb[k])) out.push(`${sa.name}.${k}`);
  }
  for (const la of a.links) {
    const lb = b.links.find((x) => x.name === la.name);
    if (!lb || !same(la, lb)) out.push(`link ${la.name}`);
  }
  return out;
}

/** 2: journal batches in flight are in the binary layout of firmware/frames.ts (1 had them as msgpackr). */
export const SNAPSHOT_FORMAT = 'remote-copy-lab snapshot 2';

/** Where a run came from: enough to build it again event for event (with the copy control program's asyncMode). */
export interface RunRecipe extends CopyControlConfig {
  scenario: string;
  seed: number;
  scale: number;
  faults: string;
  schedule?: unknown[];
  plantedBug?: string;
  /** Copy devices on every storage system (¶0168): `true` for the defaults, or the device; absent: none. */
  copyDevices?: CopyDevicesOption;
}

export interface SnapshotFile {
  format: typeof SNAPSHOT_FORMAT;
  savedAt: string;
  recipe: RunRecipe;
  digest: string;
  state: WorldState;
}

export function encodeSnapshot(recipe: RunRecipe, state: WorldState): Uint8Array {
  const file: SnapshotFile = { format: SNAPSHOT_FORMAT, savedAt: new Date().toISOString(), recipe, digest: digestWorldState(state), state };
  return gzipSync(pack(file), { level: 1 });
}

export function decodeSnapshot(bytes: Uint8Array, what = 'snapshot'): SnapshotFile {
  let f: SnapshotFile;
  try {
    f = unpack(gunzipSync(bytes)) as SnapshotFile;
  } catch (e) {
    throw new Error(`${what} is not a remote-copy-lab snapshot (${(e as Error).message})`);
  }
  if (f?.format !== SNAPSHOT_FORMAT) throw new Error(`${what} has format '${String(f?.format)}', expected '${SNAPSHOT_FORMAT}'`);
  if (digestWorldState(f.state) !== f.digest) throw new Error(`${what} is damaged: its world state does not match its digest ${f.digest}`);
  return f;
}
