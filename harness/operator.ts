// The operator's side of `rclab serve`: a client of its control API and the pairdisplay table, in the manner
// of array command-line interfaces (paircreate, pairsplit, pairresync, pairdisplay, pairdelete, takeover …).

import http from 'node:http';
import type { PairDisplayRow } from './serve.ts';

export const DEFAULT_CONTROL = process.env.RCLAB_CONTROL ?? '127.0.0.1:10810';

export class ControlError extends Error {}

/** POSTs a verb to a running serve; resolves with its JSON answer, rejects with the server's error message. */
export function controlRequest(address: string, verb: string, body: unknown = {}): Promise<Record<string, unknown>> {
  const m = /^([^:]+):(\d+)$/.exec(address);
  if (!m) return Promise.reject(new ControlError(`--control must be host:port, not '${address}'`));
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({ host: m[1], port: Number(m[2]), method: 'POST', path: `/api/${verb}`,
      headers: { 'content-type': 'application/json', 'content-length': payload.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let v: Record<string, unknown>;
        try {
          v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          return reject(new ControlError(`serve at ${address} answered ${res.statusCode} with no JSON`));
        }
        if (v.ok !== true) return reject(new ControlError(String(v.error ?? `serve answered ${res.statusCode}`)));
        resolve(v);
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(new ControlError(e.code === 'ECONNREFUSED'
      ? `no rclab serve is listening on ${address} (start one with 'npx rclab serve', or point --control / RCLAB_CONTROL at it)` : e.message)));
    req.end(payload);
  });
}

const STATE_SHORT: Record<string, string> = {
  'simplex': 'SMPL', 'initial copying': 'COPY', 'duplex': 'PAIR', 'suspending': 'PSUSING', 'suspend': 'PSUS',
  'failure suspend': 'PSUE', 'duplex pending': 'COPY',
};

/** The pairdisplay table: one line per pair and side, with the states operators know (PAIR, COPY, PSUS, PSUE). */
export function formatPairDisplay(rows: PairDisplayRow[], down: string[] = []): string {
  const off = down.map((s) => `${s}: powered off — its pairs are not shown (rclab fault --repair power-loss ${s})`);
  if (rows.length === 0) return ['no pairs defined (rclab paircreate … or rclab routine A2)', ...off].join('\n');
  const head = ['System', 'Pair', 'LVOL', 'Role', 'Type', 'Copy', 'State', 'Status', 'Fence', 'Copy%', 'Jnl%', 'Lag', 'Cause'];
  const lines = rows.map((r) => [
    // A consistency group's row names all its volumes (data+log …): they share the row's state, journal and lag.
    r.system, String(r.pairId), r.members.map((m) => m.localLvol).join('+'), r.role === 'source' ? 'P-VOL' : 'S-VOL', r.asyncMode === 'snapshot' ? 'async/snap' : r.copyType,
    r.role === 'source' ? `${r.system}→${r.remoteSystem}` : `${r.remoteSystem}→${r.system}`,
    r.state, STATE_SHORT[r.state] ?? '?', r.fence, String(r.copyProgressPercent),
    // The destination's journal (232R) is a ring of entries already applied, always full once wrapped: not shown.
    // "paced N": inflow control is holding N host writes (the journal is over its high-water mark).
    r.copyType === 'async' && r.role === 'source' ? `${r.journalUsagePercent.toFixed(1)}${r.inflowHeldWrites > 0 ? ` paced ${r.inflowHeldWrites}` : ''}` : '-',
    r.copyType === 'async' && r.role === 'source' ? `${r.lagEntries} entries / ${r.lagMs} ms` : '-',
    r.failureCause === 'none' ? '' : r.failureCause,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [fmt(head), ...lines.map(fmt), ...off].join('\n');
}

export interface FaultArgs {
  direction?: string;
  path?: number;
  lvol?: number;
  loss?: number;
  duplicate?: number;
  jitterUs?: number;
  latencyUs?: number;
  bandwidthMbps?: number;
}

/** `rclab fault <kind> <target> [options]` as a nemesis fault (the server validates it against the topology). */
export function faultFromArgs(kind: string, target: string, a: FaultArgs): Record<string, unknown> {
  const dir = a.direction ? { direction: a.direction } : {};
  switch (kind) {
    case 'cut-link': return { kind, link: target, ...dir };
    case 'cut-path':
      if (a.path === undefined) throw new ControlError('cut-path needs --path <n>');
      return { kind, link: target, path: a.path, ...dir };
    case 'link-conditions': {
      const c: Record<string, number> = {};
      if (a.loss !== undefined) c.lossRate = a.loss;
      if (a.duplicate !== undefined) c.duplicateRate = a.duplicate;
      if (a.jitterUs !== undefined) c.jitterUs = a.jitterUs;
      if (a.latencyUs !== undefined) c.extraLatencyUs = a.latencyUs;
      if (a.bandwidthMbps !== undefined) c.bandwidthMBps = a.bandwidthMbps;
      if (Object.keys(c).length === 0) throw new ControlError('link-conditions needs at least one of --loss, --duplicate, --jitter-us, --latency-us, --bandwidth-mbps');
      return { kind, link: target, conditions: c, ...dir };
    }
    case 'power-loss': case 'partition-site': return { kind, system: target };
    case 'drive-failure':
      if (a.lvol === undefined) throw new ControlError('drive-failure needs --lvol <n>');
      return { kind, system: target, lvol: a.lvol };
    case 'journal-fill': return { kind, link: target };
    case 'host-crash': case 'host-partition': return { kind, host: target };
    default:
      throw new ControlError(`unknown fault '${kind}' (cut-link, cut-path, link-conditions, power-loss, partition-site, drive-failure, journal-fill, host-crash, host-partition)`);
  }
}
