// Latency model of one direction of an inter-site link. Pure arithmetic on microseconds, no timers,
// no threads: the real-time runtime and the virtual-time simulator both ask it "when does this
// frame arrive?", so they agree on timing and (given the same random()) on every draw.

export const FIBRE_US_PER_KM = 5; // one way, light in glass ≈ 200,000 km/s
/**
 * A path's transmit queue holds at most this much serialisation time (a WAN extender's buffer): a frame handed
 * over while more is queued is tail-dropped. Without the bound a bandwidth drop queued frames for minutes and
 * every go-back-N resend added to the queue. Two seconds holds a whole formation-copy window (1 MiB) even at
 * 1 MB/s, so a control frame behind one still gets through.
 */
export const TRANSMIT_QUEUE_MAX_US = 2_000_000;

export interface LinkPathConfig { extraDelayUs: number }
export interface LinkConfig {
  name: string;
  distanceKm: number;
  bandwidthMBps: number;
  jitterUs: number;
  paths: LinkPathConfig[];
  lossRate?: number;
  duplicateRate?: number;
  /**
   * A circuit (route) over the topology's common line (hardware/common-line.ts): its frames carry a routing header
   * and pass the switching devices between its ends; distanceKm is then the sum of the segments it crosses.
   */
  overLine?: boolean;
}
export interface Delivery { deliverAtUs: number; path: number; drop: boolean; duplicateAtUs?: number }

/**
 * What a fault can change on one direction of a link while it runs (a latency spike, jitter, loss,
 * duplication, a bandwidth drop); unset fields keep the link's configured value.
 */
export interface LinkConditions {
  extraLatencyUs?: number;
  jitterUs?: number;
  lossRate?: number;
  duplicateRate?: number;
  bandwidthMBps?: number;
}

/** Which fibre of a link: a→b, b→a (a and b as the topology names them), or both. */
export type LinkDirection = 'both' | 'a-to-b' | 'b-to-a';

export function directionsOf(d: LinkDirection | undefined): Array<0 | 1> {
  if (d === undefined || d === 'both') return [0, 1];
  if (d === 'a-to-b') return [0];
  if (d === 'b-to-a') return [1];
  throw new Error(`unknown link direction '${d as string}' (use both, a-to-b or b-to-a)`);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export class LinkModel {
  /** Per path: time its transmitter finishes the last frame handed to it. */
  private readonly busyUntil: Float64Array;
  private nextPath = 0;
  private serialisedUs = 0;
  private lossRate: number;
  private duplicateRate: number;
  private jitterUs: number;
  private bandwidthMBps: number;
  private extraLatencyUs = 0;
  /** Per path: false while that path is cut (frames go round-robin over the paths that are up). */
  readonly pathUp: boolean[];

  constructor(readonly config: LinkConfig, private readonly random: () => number) {
    const c = config, where = `link ${c.name}`;
    if (!finite(c.distanceKm) || c.distanceKm < 0) throw new Error(`${where}: distanceKm must be >= 0, got ${c.distanceKm}`);
    if (!finite(c.bandwidthMBps) || c.bandwidthMBps <= 0) throw new Error(`${where}: bandwidthMBps must be > 0, got ${c.bandwidthMBps}`);
    if (!finite(c.jitterUs) || c.jitterUs < 0) throw new Error(`${where}: jitterUs must be >= 0, got ${c.jitterUs}`);
    if (!Array.isArray(c.paths) || c.paths.length < 1) throw new Error(`${where}: paths must list at least one path`);
    c.paths.forEach((p, i) => {
      if (!finite(p.extraDelayUs) || p.extraDelayUs < 0) throw new Error(`${where}: paths[${i}].extraDelayUs must be >= 0, got ${p.extraDelayUs}`);
    });
    for (const f of ['lossRate', 'duplicateRate'] as const) {
      const v = c[f];
      if (v !== undefined && (!finite(v) || v < 0 || v >= 1)) throw new Error(`${where}: ${f} must be in [0, 1), got ${v}`);
    }
    this.lossRate = c.lossRate ?? 0;
    this.duplicateRate = c.duplicateRate ?? 0;
    this.jitterUs = c.jitterUs;
    this.bandwidthMBps = c.bandwidthMBps;
    this.busyUntil = new Float64Array(c.paths.length);
    this.pathUp = c.paths.map(() => true);
  }

  /** Applies a fault's conditions (validated like the configuration); `reset` restores the configured link. */
  setConditions(k: LinkConditions | 'reset'): void {
    const c = this.config, where = `link ${c.name}`;
    if (k === 'reset') k = { extraLatencyUs: 0, jitterUs: c.jitterUs, lossRate: c.lossRate ?? 0, duplicateRate: c.duplicateRate ?? 0, bandwidthMBps: c.bandwidthMBps };
    for (const [f, v] of Object.entries(k)) {
      const ok = finite(v) && v >= 0 && (f === 'lossRate' || f === 'duplicateRate' ? v < 1 : true) && (f === 'bandwidthMBps' ? v > 0 : true);
      if (!['extraLatencyUs', 'jitterUs', 'lossRate', 'duplicateRate', 'bandwidthMBps'].includes(f) || !ok) throw new Error(`${where}: bad condition ${f}=${v}`);
    }
    if (k.extraLatencyUs !== undefined) this.extraLatencyUs = k.extraLatencyUs;
    if (k.jitterUs !== undefined) this.jitterUs = k.jitterUs;
    if (k.lossRate !== undefined) this.lossRate = k.lossRate;
    if (k.duplicateRate !== undefined) this.duplicateRate = k.duplicateRate;
    if (k.bandwidthMBps !== undefined) this.bandwidthMBps = k.bandwidthMBps;
  }

  /** Cuts or heals one path of this direction. */
  setPathUp(path: number, up: boolean): void {
    if (!Number.isInteger(path) || path < 0 || path >= this.pathUp.length) throw new Error(`link ${this.config.name}: no path ${path} (has ${this.pathUp.length})`);
    this.pathUp[path] = up;
  }

  propagationUs(): number {
    return this.config.distanceKm * FIBRE_US_PER_KM;
  }

  roundTripUs(): number {
    return 2 * this.propagationUs();
  }

  /**
   * One direction of the link. Frames go round-robin over paths; each path serialises at
   * bandwidthMBps (1 MB/s = 1 byte/µs) behind its own earlier frames, then the frame flies for
   * propagation + the path's extra delay + jitter in [0, jitterUs). Random numbers are drawn in a
   * fixed order and only for features that are on (jitter, loss, duplication), so enabling one
   * feature doesn't shift the others' draws in runs that don't use it.
   */
  schedule(nowUs: number, sizeBytes: number): Delivery {
    if (!finite(nowUs) || !finite(sizeBytes) || sizeBytes < 0) throw new Error(`link ${this.config.name}: bad schedule(${nowUs}, ${sizeBytes})`);
    let path = this.nextPath;
    for (let i = 0; i < this.pathUp.length && !this.pathUp[path]; i++) path = (path + 1) % this.pathUp.length;
    this.nextPath = (path + 1) % this.busyUntil.length;
    if (!this.pathUp[path]) return { deliverAtUs: nowUs, path, drop: true }; // every path of this direction is cut
    const txUs = sizeBytes / this.bandwidthMBps;
    if (this.busyUntil[path]! - nowUs > TRANSMIT_QUEUE_MAX_US) return { deliverAtUs: nowUs, path, drop: true }; // queue full: tail drop
    const sent = Math.max(nowUs, this.busyUntil[path]!) + txUs;
    this.busyUntil[path] = sent; // a lost frame still used the wire
    this.serialisedUs += txUs;
    const jitter = this.jitterUs > 0 ? this.random() * this.jitterUs : 0;
    const deliverAtUs = sent + this.propagationUs() + this.extraLatencyUs + this.config.paths[path]!.extraDelayUs + jitter;
    const drop = this.lossRate > 0 && this.random() < this.lossRate;
    const dup = this.duplicateRate > 0 && this.random() < this.duplicateRate;
    const d: Delivery = { deliverAtUs, path, drop };
    // The copy trails the original by one serialisation time (e.g. a retransmitting repeater).
    if (dup && !drop) d.duplicateAtUs = deliverAtUs + txUs;
    return d;
  }

  /** How long a frame handed over at nowUs would wait before its path starts sending it. */
  backlogUs(nowUs: number): number {
    return Math.max(0, this.busyUntil[this.nextPath]! - nowUs);
  }

  /** Everything that changes as the link runs (a debugger's world snapshot and digest). */
  dynamicState(): { busyUntilUs: number[]; nextPath: number; serialisedUs: number; pathUp: boolean[]; lossRate: number; duplicateRate: number; jitterUs: number; bandwidthMBps: number; extraLatencyUs: number } {
    return { busyUntilUs: [...this.busyUntil], nextPath: this.nextPath, serialisedUs: this.serialisedUs, pathUp: [...this.pathUp],
      lossRate: this.lossRate, duplicateRate: this.duplicateRate, jitterUs: this.jitterUs, bandwidthMBps: this.bandwidthMBps, extraLatencyUs: this.extraLatencyUs };
  }

  /** Total serialisation time scheduled so far over all paths; utilisation over a window is
   *  Δ(busyUs) / (Δt × paths.length). */
  busyUs(): number {
    return this.serialisedUs;
  }
}
