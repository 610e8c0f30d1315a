// SVG charts of the study, drawn by vega-lite (compiled to a vega spec and rendered headless by vega's View).

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BandwidthLimitedRun, LinkSweepPoint, OfferedLoadPoint } from './bandwidth.ts';
import { SCHEME_LABEL, type CellResult } from './cells.ts';
import { modelFor } from './model.ts';

export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const DISTANCE_AXIS = { field: 'distanceKm', type: 'ordinal' as const, title: 'link length (km)', sort: null };

/** One panel per scheme: a line per queue depth against link length, dashed by `dash` (model, percentile). */
function perSchemePanels(title: string, rows: object[], y: { field: string; title: string }, dash: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: rows },
    facet: { column: { field: 'scheme', type: 'nominal', title: null } },
    spec: {
      width: 220, height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: DISTANCE_AXIS,
        y: { field: y.field, type: 'quantitative', scale: { type: 'log' }, title: y.title },
        color: { field: 'qd', type: 'nominal', title: 'queue depth', sort: ['QD 1', 'QD 8', 'QD 32'] },
        strokeDash: { field: dash, type: 'nominal', title: null },
      },
    },
  } as TopLevelSpec;
}

/** IOPS against distance, one panel per scheme, a line per queue depth; the model dashed. */
export function iopsVsDistance(cells: CellResult[], runtime: string, blockBytes: number): TopLevelSpec {
  const rows = cells.filter((c) => c.runtime === runtime && c.blockBytes === blockBytes).flatMap((c) => {
    const m = modelFor(c, cells);
    return [
      { scheme: SCHEME_LABEL[c.scheme], distanceKm: c.distanceKm, qd: `QD ${c.queueDepth}`, iops: c.iops, series: 'measured' },
      ...(m ? [{ scheme: SCHEME_LABEL[c.scheme], distanceKm: c.distanceKm, qd: `QD ${c.queueDepth}`, iops: m.iops, series: 'model' }] : []),
    ];
  });
  return perSchemePanels(`Host write IOPS against link length (${runtime} runtime, ${blockBytes / 1024} KiB writes; model dashed)`, rows,
    { field: 'iops', title: 'IOPS' }, 'series');
}

/** Host write latency (p50 solid, p99 dashed) against distance, one panel per scheme. */
export function latencyVsDistance(cells: CellResult[], runtime: string, blockBytes: number): TopLevelSpec {
  const rows = cells.filter((c) => c.runtime === runtime && c.blockBytes === blockBytes).flatMap((c) => [
    { scheme: SCHEME_LABEL[c.scheme], distanceKm: c.distanceKm, qd: `QD ${c.queueDepth}`, latencyMs: c.latencyUs.p50 / 1000, percentile: 'p50' },
    { scheme: SCHEME_LABEL[c.scheme], distanceKm: c.distanceKm, qd: `QD ${c.queueDepth}`, latencyMs: c.latencyUs.p99 / 1000, percentile: 'p99' },
  ]);
  return perSchemePanels(`Host write latency against link length (${runtime} runtime, ${blockBytes / 1024} KiB writes)`, rows,
    { field: 'latencyMs', title: 'latency (ms)' }, 'percentile');
}

/** Recovery point against offered load (fraction of the asynchronous link's bandwidth). */
export function rpoVsOfferedLoad(points: OfferedLoadPoint[], caption: string): TopLevelSpec {
  const rows = points.flatMap((p) => [
    { runtime: p.runtime, offered: p.offeredFraction * 100, rpoMs: Math.max(0.01, p.rpoMsP50), what: `${p.runtime} p50` },
    { runtime: p.runtime, offered: p.offeredFraction * 100, rpoMs: Math.max(0.01, p.rpoMsMax), what: `${p.runtime} max` },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Recovery point against offered load', subtitle: caption },
    data: { values: rows },
    width: 480, height: 260,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'offered', type: 'quantitative', title: 'offered load (% of the link\'s bandwidth)' },
      y: { field: 'rpoMs', type: 'quantitative', scale: { type: 'log' }, title: 'recovery point (ms behind the host)' },
      color: { field: 'what', type: 'nominal', title: null },
    },
  } as TopLevelSpec;
}

/** The link sweep: recovery point against the link's bandwidth, one colour per loss rate, p50 solid and max dashed. */
export function rpoVsLinkBandwidth(points: LinkSweepPoint[], caption: string): TopLevelSpec {
  const rows = points.flatMap((p) => [
    { bandwidth: p.bandwidthMBps, loss: `${p.lossRate * 100} % loss`, stat: 'p50', rpoMs: Math.max(0.01, p.rpoMsP50) },
    { bandwidth: p.bandwidthMBps, loss: `${p.lossRate * 100} % loss`, stat: 'max', rpoMs: Math.max(0.01, p.rpoMsMax) },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Recovery point against the link\'s bandwidth and loss', subtitle: caption },
    data: { values: rows },
    width: 480, height: 260,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'bandwidth', type: 'quantitative', scale: { type: 'log' }, title: 'link bandwidth (MB/s)' },
      y: { field: 'rpoMs', type: 'quantitative', scale: { type: 'log' }, title: 'recovery point (ms behind the host)' },
      color: { field: 'loss', type: 'nominal', title: null },
      strokeDash: { field: 'stat', type: 'nominal', title: null },
    },
  } as TopLevelSpec;
}

/** The bandwidth-limited case over time: recovery point and journal usage, the pair's state as colour. */
export function rpoOverTime(run: BandwidthLimitedRun): TopLevelSpec {
  const step = Math.max(1, Math.floor(run.series.length / 600)); // at most ~600 points per line
  const rows = run.series.filter((_, i) => i % step === 0);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Offered ${run.offeredMBps} MB/s over a ${run.bandwidthMBps} MB/s link, ${run.journalMiB} MiB journal (${run.runtime} runtime)`,
      subtitle: 'journal fills → failure suspend (journal full) → writes go to the bitmap → load stops → resync → duplex',
    },
    data: { values: rows },
    vconcat: [
      {
        width: 560, height: 200,
        mark: { type: 'point', filled: true, size: 12 },
        encoding: {
          x: { field: 'tMs', type: 'quantitative', title: 'time (ms)' },
          y: { field: 'rpoMs', type: 'quantitative', title: 'recovery point (ms)' },
          color: { field: 'state', type: 'nominal', title: 'pair 2 at I' },
        },
      },
      {
        width: 560, height: 120,
        mark: { type: 'area', opacity: 0.6 },
        encoding: {
          x: { field: 'tMs', type: 'quantitative', title: 'time (ms)' },
          y: { field: 'journalPercent', type: 'quantitative', title: 'journal 232I used (%)', scale: { domain: [0, 100] } },
        },
      },
    ],
  } as TopLevelSpec;
}
