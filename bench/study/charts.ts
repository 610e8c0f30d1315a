// SVG charts of the study, drawn by vega-lite (compiled to a vega spec and rendered headless by vega's View).

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BandwidthLimitedRun, LinkSweepPoint, OfferedLoadPoint } from './bandwidth.ts';
import { SCHEME_LABEL, type CellResult } from './cells.ts';
import { modelFor } from './model.ts';
import { HALF_SHARE, syncVsAsync } from './sync-vs-async.ts';
import type { RuntimeName } from '../../harness/world.ts';

export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const DISTANCE_AXIS = { field: 'distanceKm', type: 'ordinal' as const, title: 'link length (km)', sort: null };
/** Queue-depth legend in numeric order, whatever depths the matrix has. */
const qdOrder = (rows: object[]): string[] =>
  [...new Set(rows.map((r) => (r as { qd: string }).qd))].sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));

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
        color: { field: 'qd', type: 'nominal', title: 'queue depth', sort: qdOrder(rows) },
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

/**
 * Synchronous IOPS as a share of asynchronous (journal) IOPS against link length: one panel per block size, a line per
 * queue depth, the share on a log scale, a rule at one half (see bench/study/sync-vs-async.ts).
 */
export function syncShareVsDistance(cells: CellResult[], runtime: RuntimeName): TopLevelSpec | null {
  const blocks = [...new Set(cells.map((c) => c.blockBytes))].sort((a, b) => a - b);
  const rows = blocks.flatMap((bs) => (syncVsAsync(cells, runtime, bs)?.rows ?? []).flatMap((row) =>
    row.cells.flatMap((c) => (c ? [{ block: `${bs / 1024} KiB writes`, qd: `QD ${row.queueDepth}`, distanceKm: c.distanceKm, share: Math.max(0.001, c.share) }] : []))));
  if (rows.length === 0) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Synchronous IOPS as a share of asynchronous (journal) IOPS against link length (${runtime} runtime)`,
    data: { values: rows },
    facet: { column: { field: 'block', type: 'nominal', title: null } },
    spec: {
      width: 260, height: 220,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: DISTANCE_AXIS,
            y: { field: 'share', type: 'quantitative', scale: { type: 'log' }, title: 'synchronous ÷ asynchronous IOPS' },
            color: { field: 'qd', type: 'nominal', title: 'queue depth', sort: qdOrder(rows) },
          },
        },
        { mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { datum: HALF_SHARE } } },
      ],
    },
  } as TopLevelSpec;
}

/**
 * A recovery point chart: p50 and max of each point, one line per series, the RPO on a log scale. The x axis and the
 * series differ per chart; `dash` draws the max dashed when the colour already names something else.
 */
function rpoLines(o: {
  text: string; caption: string; x: { title: string; log?: boolean }; dash?: boolean;
  points: Array<{ x: number; series: string; p50Ms: number; maxMs: number }>;
}): TopLevelSpec {
  const rows = o.points.flatMap((p) => (['p50', 'max'] as const).map((stat) => ({
    x: p.x, rpoMs: Math.max(0.01, stat === 'p50' ? p.p50Ms : p.maxMs), stat, series: o.dash ? p.series : `${p.series} ${stat}`,
  })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: o.text, subtitle: o.caption },
    data: { values: rows },
    width: 480, height: 260,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', ...(o.x.log ? { scale: { type: 'log' } } : {}), title: o.x.title },
      y: { field: 'rpoMs', type: 'quantitative', scale: { type: 'log' }, title: 'recovery point (ms behind the host)' },
      color: { field: 'series', type: 'nominal', title: null },
      ...(o.dash ? { strokeDash: { field: 'stat', type: 'nominal', title: null } } : {}),
    },
  } as TopLevelSpec;
}

/** Recovery point against offered load (fraction of the asynchronous link's bandwidth), one line per runtime and statistic. */
export function rpoVsOfferedLoad(points: OfferedLoadPoint[], caption: string): TopLevelSpec {
  return rpoLines({
    text: 'Recovery point against offered load', caption, x: { title: 'offered load (% of the link\'s bandwidth)' },
    points: points.map((p) => ({ x: p.offeredFraction * 100, series: p.runtime, p50Ms: p.rpoMsP50, maxMs: p.rpoMsMax })),
  });
}

/** The link sweep: recovery point against the link's bandwidth, one colour per loss rate, p50 solid and max dashed. */
export function rpoVsLinkBandwidth(points: LinkSweepPoint[], caption: string): TopLevelSpec {
  return rpoLines({
    text: 'Recovery point against the link\'s bandwidth and loss', caption, x: { title: 'link bandwidth (MB/s)', log: true }, dash: true,
    points: points.map((p) => ({ x: p.bandwidthMBps, series: `${p.lossRate * 100} % loss`, p50Ms: p.rpoMsP50, maxMs: p.rpoMsMax })),
  });
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
