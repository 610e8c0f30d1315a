// The nemesis: faults on a schedule — at a virtual time or when a routine reaches a step number — each with
// its repair, drawn at random from a seed or given exactly (for replays and shrunk schedules). It acts only
// through the world's hardware faults and the hosts.

import type { LinkConditions } from '../hardware/link-model.ts';
import type { OperationsLog } from './copy-control.ts';
import type { Host } from './host.ts';
import { Prng } from './prng.ts';
import type { Topology } from './topology.ts';
import { directionsOf, faultLink, faultLinks, systemSpec, type Fault, type LinkDirection, type World } from './world.ts';

/** A fault the nemesis can inject: a hardware fault, or one of the hosts'. */
export type NemesisFault = Fault
  | { kind: 'host-crash'; host: string } | { kind: 'host-recover'; host: string }
  | { kind: 'host-partition'; host: string }
  /** The routine running now stops before its next command and is run again from the start. */
  | { kind: 'interrupt-routine' }
  /** Every inter-site link of a storage system's site cut both ways (the site is an island); heal-site undoes it. */
  | { kind: 'partition-site'; system: string } | { kind: 'heal-site'; system: string }
  /**
   * A journal volume filling up, as it does in the field: the link throttled to a trickle
   * (JOURNAL_FILL_BANDWIDTH_MBPS) while the application's host writes a burst larger than the journal volumes
   * at its ends.
   * Its repair restores the link's bandwidth.
   */
  | { kind: 'journal-fill'; link: string };

/** The trickle a journal-fill fault leaves of a link (1 MB/s: a 20 MiB burst needs 20 s to drain). */
export const JOURNAL_FILL_BANDWIDTH_MBPS = 1;
/** The burst of a journal-fill fault, as a multiple of the bigger journal volume at the link's ends. */
export const JOURNAL_FILL_BURST_FACTOR = 1.25;

export interface ScheduledFault {
  /** Virtual time after the scenario's start (µs), or a step number that triggers it (e.g. "S230"). */
  atUs?: number;
  atStep?: string;
  fault: NemesisFault;
  /** Repaired this long after it was injected (always before the liveness phase). */
  repairAfterUs: number;
}

export const FAULT_PROFILES = ['none', 'links', 'default', 'aggressive'] as const;
export type FaultProfile = (typeof FAULT_PROFILES)[number];

export function parseProfile(p: string): FaultProfile {
  if (!(FAULT_PROFILES as readonly string[]).includes(p)) throw new Error(`unknown fault profile '${p}' (use ${FAULT_PROFILES.join(', ')})`);
  return p as FaultProfile;
}

/** The repair of a fault (what puts the hardware back as it was). */
export function repairOf(f: NemesisFault): NemesisFault | null {
  switch (f.kind) {
    case 'cut-link': return { kind: 'heal-link', link: f.link, direction: f.direction };
    case 'cut-path': return { kind: 'heal-path', link: f.link, path: f.path, direction: f.direction };
    case 'link-conditions': return { kind: 'link-conditions', link: f.link, conditions: 'reset', direction: f.direction };
    case 'power-loss': return { kind: 'power-on', system: f.system };
    case 'drive-failure': return { kind: 'drive-repair', system: f.system, lvol: f.lvol };
    case 'host-crash': return { kind: 'host-recover', host: f.host };
    case 'host-partition': return null;
    case 'partition-site': return { kind: 'heal-site', system: f.system };
    case 'journal-fill': return { kind: 'link-conditions', link: f.link, conditions: 'reset' };
    default: return null;
  }
}

/** Throws an error naming the problem when a fault names no storage system, link, path, LVOL or host of `t`. */
export function validateFault(t: Topology, f: NemesisFault): void {
  const hostNames = t.hosts.map((h) => h.name);
  switch (f.kind) {
    case 'cut-link': case 'heal-link': case 'link-conditions': directionsOf(f.direction); faultLink(t, f.link); return;
    case 'journal-fill': faultLink(t, f.link); return;
    case 'cut-path': case 'heal-path': {
      directionsOf(f.direction);
      const l = faultLink(t, f.link);
      if (!Number.isInteger(f.path) || f.path < 0 || f.path >= l.paths) throw new Error(`link ${l.name} has no path ${f.path} (it has ${l.paths})`);
      return;
    }
    case 'power-loss': case 'power-on': case 'partition-site': case 'heal-site': systemSpec(t, f.system); return;
    case 'drive-failure': case 'drive-repair': {
      const s = systemSpec(t, f.system);
      if (!Number.isInteger(f.lvol) || f.lvol < 0 || f.lvol >= s.lvols.length) throw new Error(`storage system ${s.name} has no LVOL ${f.lvol} (it has ${s.lvols.length})`);
      return;
    }
    case 'host-crash': case 'host-recover': case 'host-partition':
      if (!hostNames.includes(f.host)) throw new Error(`unknown host '${f.host}' (this topology has ${hostNames.join(', ')})`);
      return;
    case 'interrupt-routine': return;
    default: throw new Error(`unknown fault kind '${(f as { kind: unknown }).kind}'`);
  }
}

export function describeFault(f: NemesisFault): string {
  switch (f.kind) {
    case 'cut-link': case 'heal-link': return `${f.kind} ${f.link}${f.direction && f.direction !== 'both' ? ` ${f.direction}` : ''}`;
    case 'cut-path': case 'heal-path': return `${f.kind} ${f.link} path ${f.path}${f.direction && f.direction !== 'both' ? ` ${f.direction}` : ''}`;
    case 'link-conditions': return `link-conditions ${f.link} ${f.conditions === 'reset' ? 'reset' : Object.entries(f.conditions).map(([k, v]) => `${k}=${v}`).join(',')}`;
    case 'power-loss': case 'power-on': return `${f.kind} ${f.system}`;
    case 'drive-failure': case 'drive-repair': return `${f.kind} ${f.system} LVOL ${f.lvol}`;
    case 'host-crash': case 'host-recover': case 'host-partition': return `${f.kind} ${f.host}`;
    case 'interrupt-routine': return 'interrupt-routine';
    case 'partition-site': case 'heal-site': return `${f.kind} ${f.system}`;
    case 'journal-fill': return `journal-fill over ${f.link} (${JOURNAL_FILL_BANDWIDTH_MBPS} MB/s and a burst of ${JOURNAL_FILL_BURST_FACTOR}× the journal)`;
  }
}

/**
 * Draws a schedule from a seed. The nemesis has its own PRNG stream (derived from the seed), so a schedule
 * can be shrunk or replaced without changing the run's other random choices.
 *  links:      link flaps (both ways, one way), path cuts, a partitioned site, loss, duplication, jitter (which
 *              reorders frames across paths), latency spikes, bandwidth drops
 *  default:    links + controller crash and restart of I or R, drive failures, a journal volume filling up
 *  aggressive: default + host crash and recovery, a routine interrupted half-way and run again, and a
 *              partitioned host P (heartbeat lost while P runs on: split brain)
 */
export function drawSchedule(t: Topology, profile: FaultProfile, seed: number, windowUs = 1_400_000, startUs = 100_000): ScheduledFault[] {
  if (profile === 'none') return [];
  const r = new Prng((seed ^ 0x5bd1e995) >>> 0);
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)]!;
  const between = (lo: number, hi: number) => Math.round(lo + r.next() * (hi - lo));
  const out: ScheduledFault[] = [];
  const count = 1 + r.int(4);
  for (let i = 0; i < count; i++) {
    const link = pick(faultLinks(t)); // with a common line, its segments too
    const dir: LinkDirection = pick(['both', 'a-to-b', 'b-to-a'] as const);
    const kinds = ['flap', 'one-way', 'path', 'partition-site', 'loss', 'duplicate', 'jitter', 'latency', 'bandwidth'];
    if (profile !== 'links') kinds.push('crash', 'crash', 'drive', 'journal-fill');
    if (profile === 'aggressive') kinds.push('host-crash', 'interrupt', 'partition-host');
    const kind = pick(kinds);
    let fault: NemesisFault;
    let repairAfterUs = between(20_000, 400_000);
    switch (kind) {
      case 'flap': fault = { kind: 'cut-link', link: link.name }; break;
      case 'one-way': fault = { kind: 'cut-link', link: link.name, direction: dir === 'both' ? 'a-to-b' : dir }; break;
      case 'path': fault = { kind: 'cut-path', link: link.name, path: r.int(link.paths), direction: dir }; break;
      case 'loss': fault = cond(link.name, { lossRate: round(0.02 + r.next() * 0.2) }, dir); break;
      case 'duplicate': fault = cond(link.name, { duplicateRate: round(0.05 + r.next() * 0.3) }, dir); break;
      case 'jitter': fault = cond(link.name, { jitterUs: between(200, 5000) }, dir); break;
      case 'latency': fault = cond(link.name, { extraLatencyUs: between(1000, 40_000) }, dir); break;
      case 'bandwidth': fault = cond(link.name, { bandwidthMBps: between(2, 40) }, dir); repairAfterUs = between(100_000, 800_000); break;
      case 'partition-site': fault = { kind: 'partition-site', system: pick(t.systems).name }; break;
      case 'journal-fill': fault = { kind: 'journal-fill', link: link.name }; repairAfterUs = between(200_000, 800_000); break;
      case 'crash': fault = { kind: 'power-loss', system: pick(t.systems.filter((s) => s.name !== 'P')).name }; break;
      case 'drive': {
        const s = pick(t.systems.filter((x) => x.name !== 'P'));
        fault = { kind: 'drive-failure', system: s.name, lvol: r.int(s.lvols.length) };
        break;
      }
      case 'host-crash': fault = { kind: 'host-crash', host: pick(t.hosts).name }; repairAfterUs = between(20_000, 300_000); break;
      case 'interrupt': fault = { kind: 'interrupt-routine' }; break;
      default: fault = { kind: 'host-partition', host: t.hosts[0]!.name }; break;
    }
    out.push({ atUs: startUs + between(0, windowUs), fault, repairAfterUs });
  }
  return out.sort((a, b) => (a.atUs ?? 0) - (b.atUs ?? 0));
}

function cond(link: string, conditions: LinkConditions, direction: LinkDirection): NemesisFault {
  return { kind: 'link-conditions', link, conditions, direction };
}
const round = (x: number) => Math.round(x * 1000) / 1000;

export interface InjectedFault {
  atUs: number;
  fault: NemesisFault;
  repairedAtUs: number | null;
}

/** Runs a schedule against a world: injects each fault at its time or step, repairs it after its duration. */
export class Nemesis {
  readonly injected: InjectedFault[] = [];
  private readonly active = new Set<InjectedFault>();
  private readonly tasks: Promise<void>[] = [];
  private stopped = false;
  private readonly startUs: number;
  private readonly crashedAt = new Map<string, number>();

  /**
   * @param burst has the host running the application write `bytes` as fast as it can (recorded in the
   *   run's history like any write); a journal-fill fault calls it.
   */
  constructor(private readonly world: World, private readonly hosts: Record<string, Host>, readonly schedule: ScheduledFault[],
    private readonly log: OperationsLog, private readonly note: (m: string) => void,
    private readonly burst: (bytes: number) => Promise<unknown> = async () => {}) {
    this.startUs = world.nowUs();
    for (const s of schedule) validateFault(world.topology, s.fault); // all or nothing: a bad schedule injects no fault
    for (const s of schedule) {
      if (s.atStep !== undefined) {
        let fired = false;
        log.on((e) => {
          if (fired || e.kind !== 'step' || e.e.step !== s.atStep || this.stopped) return;
          fired = true;
          this.tasks.push(this.run(s, 0));
        });
      } else {
        this.tasks.push(this.run(s, s.atUs ?? 0));
      }
    }
  }

  private async run(s: ScheduledFault, atUs: number): Promise<void> {
    const wait = this.startUs + atUs - this.world.nowUs();
    if (wait > 0) await this.world.sleep(wait);
    if (this.stopped) return;
    const rec: InjectedFault = { atUs: this.world.nowUs(), fault: s.fault, repairedAtUs: null };
    this.injected.push(rec);
    this.active.add(rec);
    this.note(`nemesis: ${describeFault(s.fault)}${s.atStep ? ` (at ${s.atStep})` : ''}`);
    await this.apply(s.fault);
    if (repairOf(s.fault)) {
      await this.world.sleep(s.repairAfterUs);
      await this.repair(rec);
    }
  }

  private async apply(f: NemesisFault): Promise<void> {
    if (f.kind === 'host-crash') { const h = this.host(f.host); h.crash(); this.crashedAt.set(f.host, h.crashes); return; }
    if (f.kind === 'host-recover') {
      // Only undo our own crash: a host the scenario crashed since (a site disaster) stays down.
      const h = this.host(f.host);
      if (!h.alive && this.crashedAt.get(f.host) === h.crashes) h.recover();
      return;
    }
    if (f.kind === 'interrupt-routine') { this.log.interruptRequested = true; return; }
    if (f.kind === 'host-partition') return this.host(f.host).partition();
    if (f.kind === 'partition-site' || f.kind === 'heal-site') {
      systemSpec(this.world.topology, f.system);
      for (const l of this.world.topology.links) {
        if (l.a === f.system || l.b === f.system) await this.world.fault({ kind: f.kind === 'partition-site' ? 'cut-link' : 'heal-link', link: l.name });
      }
      return;
    }
    if (f.kind === 'journal-fill') {
      const l = faultLink(this.world.topology, f.link);
      await this.world.fault({ kind: 'link-conditions', link: l.name, conditions: { bandwidthMBps: JOURNAL_FILL_BANDWIDTH_MBPS } });
      const journalBytes = Math.max(...[l.a, l.b].map((n) => systemSpec(this.world.topology, n).lvols
        .filter((v) => v.kind === 'journal').reduce((m, v) => Math.max(m, v.sizeBytes), 0)));
      const bytes = Math.ceil(journalBytes * JOURNAL_FILL_BURST_FACTOR);
      // The burst runs on while the fault lasts; it is not awaited so the repair comes on time.
      this.burst(bytes).catch((e: unknown) => this.note(`nemesis: burst failed: ${(e as Error).message}`));
      return;
    }
    // The scenario's own script may have powered a system on or off meanwhile: nothing left to do then.
    if (f.kind === 'power-on' && this.world.isUp(f.system)) return;
    if (f.kind === 'power-loss' && !this.world.isUp(f.system)) return;
    await this.world.fault(f);
  }

  /** Injects one fault now, outside any schedule (an operator's `rclab fault`); it stays until its repair is injected. */
  async inject(f: NemesisFault): Promise<void> {
    validateFault(this.world.topology, f);
    this.injected.push({ atUs: this.world.nowUs(), fault: f, repairedAtUs: null });
    this.note(`nemesis: ${describeFault(f)}`);
    await this.apply(f);
  }

  private host(name: string): Host {
    const h = this.hosts[name];
    if (!h) throw new Error(`nemesis: unknown host '${name}'`);
    return h;
  }

  private async repair(rec: InjectedFault): Promise<void> {
    if (!this.active.delete(rec)) return;
    const r = repairOf(rec.fault);
    rec.repairedAtUs = this.world.nowUs();
    if (!r) return;
    this.note(`nemesis: repair — ${describeFault(r)}`);
    await this.apply(r);
  }

  /** Stops injecting and repairs everything still broken (the liveness phase starts from a healed world). */
  async healAll(): Promise<void> {
    this.stopped = true;
    this.log.interruptRequested = false;
    for (const rec of [...this.active]) await this.repair(rec);
    for (const [, h] of Object.entries(this.hosts)) h.heal();
    for (const s of this.world.topology.systems) if (!this.world.isUp(s.name)) await this.world.fault({ kind: 'power-on', system: s.name });
    for (const l of faultLinks(this.world.topology)) {
      await this.world.fault({ kind: 'heal-link', link: l.name });
      await this.world.fault({ kind: 'link-conditions', link: l.name, conditions: 'reset' });
      for (let p = 0; p < l.paths; p++) await this.world.fault({ kind: 'heal-path', link: l.name, path: p });
      for (const d of ['a-to-b', 'b-to-a'] as const) await this.world.fault({ kind: 'heal-link', link: l.name, direction: d });
    }
    for (const s of this.world.topology.systems) for (let v = 0; v < s.lvols.length; v++) await this.world.fault({ kind: 'drive-repair', system: s.name, lvol: v });
  }

  countsByKind(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const i of this.injected) {
      const k = i.fault.kind === 'link-conditions' && i.fault.conditions !== 'reset' ? `link-conditions:${Object.keys(i.fault.conditions).join('+')}` : i.fault.kind;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }
}
