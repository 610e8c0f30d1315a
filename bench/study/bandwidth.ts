// The asynchronous pair against its link's bandwidth.
// - RPO against offered load: an open-loop host at a fraction of the link's bandwidth; the recovery point stays
//   near the round trip while the link keeps up and grows once it cannot.
// - The link sweep: the same at half the bandwidth, over links from 0.25 to 64 MB/s that lose 0, 0.1 or 1 % of
//   their frames (sim runtime: the link's physics and the firmware's protocol, exactly).
// - The bandwidth-limited case: offered load above the bandwidth fills the journal, the pair goes to failure
//   suspend (journal full) while the host's writes go on into the bitmap, then a resynchronisation copies the
//   differences and the pair is duplex again — with the recovery point over the whole time.

import { isConsistentDestination } from '../../firmware/definition-info.ts';
import { PairState, pairStateName } from '../../firmware/pair-state.ts';
import { createWorld } from '../../harness/runtimes.ts';
import type { RuntimeName } from '../../harness/world.ts';
import { formPairs, HostLoad, percentiles, RpoSampler, studyTopology, type Percentiles, type RpoSample } from './cells.ts';

export interface OfferedLoadPoint {
  runtime: RuntimeName;
  offeredFraction: number;
  offeredMBps: number;
  achievedMBps: number;
  latencyUs: Percentiles;
  rpoMsP50: number;
  rpoMsMax: number;
  rpoWritesMax: number;
  journalUsagePercentMax: number;
  endState: string;
  /** What the destination applied in the window, MB/s: at a load beyond the link, what the link delivers (loss recovery included). */
  deliveredMBps?: number;
}

export interface OfferedLoadCase { distanceKm: number; bandwidthMBps: number; blockBytes: number; journalBytes: number; lossRate?: number; inflowControl?: boolean }

export const OFFERED_LOAD_CASE: OfferedLoadCase = { distanceKm: 1000, bandwidthMBps: 16, blockBytes: 64 * 1024, journalBytes: 32 * 1024 * 1024 };

/**
 * The link sweep: bandwidths and loss rates, 4 KiB writes over 100 km; at `offeredFraction` of the bandwidth (the
 * recovery point), and at `saturatingFraction` with inflow control on (what the link delivers when the ship window
 * is full, as it is whenever the load reaches the link: a loss can then only be found by its answer not coming).
 */
export const LINK_SWEEP = {
  distanceKm: 100, blockBytes: 4096, journalBytes: 32 * 1024 * 1024, offeredFraction: 0.5, saturatingFraction: 1.5,
  full: { bandwidthsMBps: [0.25, 1, 4, 16, 64], lossRates: [0, 0.001, 0.01, 0.05] },
  quick: { bandwidthsMBps: [0.25, 4, 16], lossRates: [0, 0.01] },
};

export interface LinkSweepPoint extends OfferedLoadPoint {
  bandwidthMBps: number;
  lossRate: number;
  /** At LINK_SWEEP.saturatingFraction of the bandwidth: what the destination applied, MB/s (absent in results from before it was measured). */
  saturatedDeliveredMBps?: number;
}

/** One point of the link sweep (sim runtime). */
export async function linkSweepPoint(bandwidthMBps: number, lossRate: number, measureUs: number): Promise<LinkSweepPoint> {
  const c = LINK_SWEEP;
  const at = (fraction: number, inflowControl: boolean) => rpoAtOfferedLoad('sim', fraction, measureUs,
    { distanceKm: c.distanceKm, bandwidthMBps, blockBytes: c.blockBytes, journalBytes: c.journalBytes, lossRate, inflowControl });
  const p = await at(c.offeredFraction, false);
  const saturated = await at(c.saturatingFraction, true);
  return { ...p, bandwidthMBps, lossRate, saturatedDeliveredMBps: saturated.deliveredMBps! };
}

/** One point of RPO against offered load. */
export async function rpoAtOfferedLoad(runtime: RuntimeName, fraction: number, measureUs: number, c: OfferedLoadCase = OFFERED_LOAD_CASE): Promise<OfferedLoadPoint> {
  const world = await createWorld(runtime, studyTopology('async', { distanceKm: c.distanceKm, bandwidthMBps: c.bandwidthMBps, journalVolumeBytes: c.journalBytes, lossRate: c.lossRate }), 1,
    { maxVirtualUs: 3_600_000_000 });
  try {
    await formPairs(world, 'async', { inflowControl: c.inflowControl });
    const ratePerS = (fraction * c.bandwidthMBps * 1e6) / c.blockBytes;
    const load = new HostLoad(world, '100I', 16, c.blockBytes, ratePerS);
    const sampler = new RpoSampler(world, 'I', 'R', () => load.completedTotal, runtime === 'sim' ? 500 : 2_000);
    const fromUs = world.nowUs() + Math.min(500_000, measureUs / 4);
    load.fromUs = fromUs;
    await world.sleep(fromUs + measureUs - world.nowUs());
    load.toUs = world.nowUs();
    load.stop();
    sampler.stop();
    await Promise.all([load.done, sampler.done]);
    const s = sampler.summary(fromUs, load.toUs);
    const state = world.definitionInformation('I').find((p) => p.pairId === 2)!;
    return {
      runtime, offeredFraction: fraction, offeredMBps: fraction * c.bandwidthMBps,
      achievedMBps: (load.completed * c.blockBytes) / (load.toUs - fromUs),
      latencyUs: percentiles(load.histogram), rpoMsP50: s.rpoMsP50, rpoMsMax: s.rpoMsMax, rpoWritesMax: s.rpoWritesMax,
      journalUsagePercentMax: s.usagePercentMax,
      endState: pairStateName(state.state) + (state.failureCause && state.failureCause !== 'none' ? ` (${state.failureCause})` : ''),
      deliveredMBps: sampler.deliveredMBps(fromUs, load.toUs, c.blockBytes),
    };
  } finally {
    await world.close();
  }
}

export interface BandwidthLimitedRun {
  runtime: RuntimeName;
  offeredMBps: number;
  bandwidthMBps: number;
  journalMiB: number;
  /** Sampled every few ms from the start of the load (times in ms from then). */
  series: Array<{ tMs: number; rpoMs: number; rpoWrites: number; journalPercent: number; state: string }>;
  events: Array<{ tMs: number; what: string }>;
  journalFullAtMs: number | null;
  resyncStartMs: number | null;
  duplexAgainAtMs: number | null;
  tracksCopied: number;
  refusedWrites: number;
}

export const BANDWIDTH_CASE = { distanceKm: 100, bandwidthMBps: 8, offeredMBps: 24, blockBytes: 64 * 1024, journalBytes: 8 * 1024 * 1024, loadUs: 2_000_000 };

/** Offered load above the bandwidth: journal full → failure suspend → load stops → resync → duplex. */
export async function bandwidthLimited(runtime: RuntimeName): Promise<BandwidthLimitedRun> {
  const c = BANDWIDTH_CASE;
  const world = await createWorld(runtime, studyTopology('async', { distanceKm: c.distanceKm, bandwidthMBps: c.bandwidthMBps, journalVolumeBytes: c.journalBytes }), 1,
    { maxVirtualUs: 3_600_000_000 });
  const events: BandwidthLimitedRun['events'] = [];
  try {
    await formPairs(world, 'async');
    const t0 = world.nowUs();
    const ms = (t: number) => (t - t0) / 1000;
    const load = new HostLoad(world, '100I', 16, c.blockBytes, (c.offeredMBps * 1e6) / c.blockBytes);
    load.fromUs = t0;
    const sampler = new RpoSampler(world, 'I', 'R', () => load.completedTotal, runtime === 'sim' ? 1_000 : 5_000);
    const stateOf = () => world.definitionInformation('I').find((p) => p.pairId === 2)!;
    let journalFullAtMs: number | null = null;
    events.push({ tMs: 0, what: `host I starts writing ${c.offeredMBps} MB/s of ${c.blockBytes / 1024} KiB writes; link S2 carries ${c.bandwidthMBps} MB/s` });
    while (world.nowUs() - t0 < c.loadUs) {
      await world.sleep(5_000);
      const p = stateOf();
      if (journalFullAtMs === null && p.state === PairState.FailureSuspend) {
        journalFullAtMs = ms(world.nowUs());
        events.push({ tMs: journalFullAtMs, what: `pair 2 failure suspend (${p.failureCause}): the journal is full; writes go on into the difference bitmap` });
      }
    }
    load.stop();
    await load.done;
    events.push({ tMs: ms(world.nowUs()), what: `host I stops writing (${load.completedTotal} writes acknowledged)` });
    let resyncStartMs: number | null = null, duplexAgainAtMs: number | null = null;
    if (stateOf().state === PairState.FailureSuspend) {
      resyncStartMs = ms(world.nowUs());
      const r = await world.command('I', { op: 'resync', pairId: 2, step: 'S270' });
      events.push({ tMs: resyncStartMs, what: r.ok ? `resync pair 2: ${stateOf().dirtyTracks} dirty track(s) to copy` : `resync refused: ${r.error}` });
      const deadline = world.nowUs() + 120_000_000;
      while (world.nowUs() < deadline) {
        await world.sleep(5_000);
        const src = stateOf(), dst = world.definitionInformation('R').find((x) => x.pairId === 2)!;
        if (src.state === PairState.Duplex && dst.state === PairState.Duplex && isConsistentDestination(dst)) {
          duplexAgainAtMs = ms(world.nowUs());
          events.push({ tMs: duplexAgainAtMs, what: `pair 2 duplex again after a differential copy of ${src.lastFormationTracksCopied} track(s)` });
          break;
        }
      }
    }
    await world.sleep(50_000); // the recovery point back at zero on the chart
    sampler.stop();
    await sampler.done;
    // At most ~2000 points (every state change kept), so the results file stays small.
    const all = sampler.samples.filter((x) => x.timeUs >= t0);
    const every = Math.max(1, Math.ceil(all.length / 2000));
    const series = all.filter((x, i) => i % every === 0 || i === all.length - 1 || x.state !== all[i - 1]?.state).map((x: RpoSample) => ({
      tMs: ms(x.timeUs), rpoMs: x.rpoMs, rpoWrites: x.rpoWrites, journalPercent: x.usagePercent, state: pairStateName(x.state),
    }));
    return {
      runtime, offeredMBps: c.offeredMBps, bandwidthMBps: c.bandwidthMBps, journalMiB: c.journalBytes / 1024 / 1024, series, events,
      journalFullAtMs, resyncStartMs, duplexAgainAtMs, tracksCopied: stateOf().lastFormationTracksCopied,
      refusedWrites: Object.values(load.refused).reduce((a, b) => a + b, 0),
    };
  } finally {
    await world.close();
  }
}
