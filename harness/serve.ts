// `rclab serve`: a long-running emulated world on the threads runtime that real hosts talk to. Every data
// volume of every storage system is an NBD export "<system>/vol<k>" whose requests enter the firmware through
// a host port of that system (the full path: cache, synchronous copy, journal). Operators drive the world
// through a control API on loopback HTTP (the operator verbs of operator.ts): pair commands to a storage
// system's management interface, the copy control routines run by hosts 100P/100R, and the nemesis's faults.

import http from 'node:http';
import { BLOCK_SIZE_BYTES, MAX_IO_BYTES } from '../firmware/constants.ts';
import type { Command, CommandReply, FenceLevel, InitialCopy, PairView } from '../firmware/commands.ts';
import type { AsyncMode } from '../firmware/definition-info.ts';
import type { GroupMember } from '../firmware/consistency-group.ts';
import type { IoStatus } from '../firmware/hardware-interface.ts';
import { OperationsLog, CopyControlProgram, RoutineError, type Report } from './copy-control.ts';
import { Host } from './host.ts';
import { NbdServer, type NbdExport, type NbdIoResult } from './nbd/server.ts';
import type { NbdErrorName } from './nbd/protocol.ts';
import { describeFault, Nemesis, repairOf, validateFault, type NemesisFault } from './nemesis.ts';
import { failback, failover, initialCopying, reverseCopyControl, reverseCopying, STORAGE_ID } from './routines/embodiment1.ts';
import { ThreadsWorld } from './runtime-threads.ts';
import { eventEntry, timelineFormatter } from './timeline.ts';
import type { Topology } from './topology.ts';
import { systemSpec, type World } from './world.ts';

export const DEFAULT_NBD_PORT = 10809;
export const DEFAULT_CONTROL_PORT = 10810;

export interface ServeOptions {
  topology: Topology;
  nbdPort?: number;
  controlPort?: number;
  /** Address both listen on (loopback unless told otherwise). */
  listenHost?: string;
  seed?: number;
  /** Run A2 (initial copying) before accepting clients. */
  formPairs?: boolean;
  /** Timeline lines and NBD log lines. */
  log?: (line: string) => void;
  color?: boolean;
}

/** How a refusal of the array reaches an NBD client (the errno a SCSI sense of a real array maps to). */
export const NBD_ERROR_OF_STATUS: Record<Exclude<IoStatus, 'ok'>, NbdErrorName> = {
  'write-protected': 'EPERM',     // DATA PROTECT: the destination of a copying pair
  'fenced': 'EIO',                // fence level data: the copy cannot be made
  'medium-error': 'EIO',
  'not-ready': 'EIO',             // the controller is down
  'busy': 'EIO',                  // only after retries: see BUSY_RETRIES
  'out-of-range': 'EINVAL',
  'invalid-request': 'EINVAL',
  'unknown-lvol': 'EINVAL',
};
/** A host retries BUSY (cache exhausted) this often, 1 ms apart, before it gives up with an I/O error. */
const BUSY_RETRIES = 2000;

/** The names routines are known by (`rclab routine <name>`). */
export const ROUTINES = ['A2', 'A3', 'A4', 'A5', 'A6'] as const;
const ROUTINE_ALIASES: Record<string, (typeof ROUTINES)[number]> = {
  'a2': 'A2', 'initial-copying': 'A2', 'a3': 'A3', 'failover': 'A3', 'takeover': 'A3', 'a4': 'A4', 'reverse-copying': 'A4',
  'a5': 'A5', 'reverse-copy-control': 'A5', 'a6': 'A6', 'failback': 'A6',
};

export class BadRequest extends Error {}

/** A pair as `pairdisplay` shows it: one row per pair and side. */
export interface PairDisplayRow extends PairView {
  system: string;
  remoteSystem: string;
  /** Async source: entries journaled but not yet applied at the destination. */
  lagEntries: number;
  /** Async source: age of the oldest entry not yet applied (ms). */
  lagMs: number;
}

export class ServeSession {
  readonly log = new OperationsLog();
  readonly hosts: Record<string, Host>;
  readonly nemesis: Nemesis;
  readonly nbdPort: number;
  readonly controlPort: number;
  private busyRoutine: string | null = null;
  private stopping: Promise<void> | null = null;
  private markStopped!: () => void;
  /** Resolves once stop() has finished (after SIGINT, or a shutdown request). */
  readonly stopped = new Promise<void>((r) => { this.markStopped = r; });

  private constructor(readonly world: ThreadsWorld, readonly nbd: NbdServer, private readonly control: http.Server, ports: [number, number],
    private readonly print: (line: string) => void) {
    this.nbdPort = ports[0];
    this.controlPort = ports[1];
    const hostP = new Host(world, '100P'), hostR = new Host(world, '100R');
    hostP.pairWith(hostR);
    hostR.pairWith(hostP);
    this.hosts = { '100P': hostP, '100R': hostR };
    // The application is whatever real client writes to the exports: a journal-fill only throttles the link here.
    this.nemesis = new Nemesis(world, this.hosts, [], this.log, (m) => this.note(m),
      async () => this.note('journal-fill: the link is throttled; the burst that fills the journal is your own workload (fio, qemu-img …)'));
  }

  private note(message: string): void { this.print(`${(this.world.nowUs() / 1000).toFixed(3).padStart(10)} ms  ---- ${message}`); }

  static async start(o: ServeOptions): Promise<ServeSession> {
    const print = o.log ?? ((l: string) => console.log(l));
    const topology = withNbdPorts(o.topology);
    const world = await ThreadsWorld.create(topology, o.seed ?? 1);
    const fmt = timelineFormatter(o.color ?? false);
    world.onEvent((e) => { const line = fmt(eventEntry(world, e)); if (line) print(line); });
    const nbd = new NbdServer(nbdExports(world), { log: print });
    let session: ServeSession | null = null;
    const control = http.createServer((req, res) => {
      if (session) return void session.serveHttp(req, res);
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: 'serve is still starting' }));
    });
    const host = o.listenHost ?? '127.0.0.1';
    let ports: [number, number];
    try {
      const nbdPort = await nbd.listen(o.nbdPort ?? DEFAULT_NBD_PORT, host);
      const controlPort = await listen(control, o.controlPort ?? DEFAULT_CONTROL_PORT, host);
      ports = [nbdPort, controlPort];
    } catch (e) {
      await nbd.close().catch(() => {});
      control.close();
      await world.close();
      throw e;
    }
    session = new ServeSession(world, nbd, control, ports, print);
    session.log.on((x) => { const line = fmt(x.kind === 'step' ? { kind: 'step', ...x.e } : { kind: 'report', ...x.e }); if (line) print(line); });
    if (o.formPairs) {
      try {
        await session.routine('A2');
      } catch (e) {
        await session.stop();
        throw new Error(`--form-pairs: ${(e as Error).message}`);
      }
    }
    return session;
  }

  // ───────────────────────────── operator verbs ─────────────────────────────

  async pairdisplay(): Promise<PairDisplayRow[]> {
    const rows: PairDisplayRow[] = [];
    for (const s of this.world.topology.systems) {
      if (!this.world.isUp(s.name)) continue;
      const r = await this.world.command(s.name, { op: 'status' });
      if (!r.ok) continue;
      for (const p of r.pairs ?? []) {
        const remoteSystem = this.world.topology.systems.find((x) => x.id === p.remoteStorageId)?.name ?? `#${p.remoteStorageId}`;
        const asyncSource = p.copyType === 'async' && p.role === 'source';
        rows.push({ ...p, system: s.name, remoteSystem,
          lagEntries: asyncSource ? Math.max(0, p.journalNewestSeq - p.journalAppliedSeq) : 0,
          lagMs: asyncSource && p.journalOldestUnappliedUs > 0 ? Math.round(p.journalOldestUnappliedUs / 100) / 10 : 0 });
      }
    }
    return rows;
  }

  /** A pair command to one storage system's management interface; a refusal throws the array's own message. */
  async pairCommand(system: string, cmd: Command): Promise<CommandReply & { ok: true }> {
    this.checkSystem(system);
    if (!this.world.isUp(system)) throw new BadRequest(`storage system ${system} is powered off (rclab fault --repair power-loss ${system})`);
    const r = await this.world.command(system, cmd);
    if (!r.ok) throw new BadRequest(`${system}: ${r.error}`);
    return r;
  }

  paircreate(a: { system: string; pairId: number; remote: string; copyType: 'sync' | 'async'; fence?: FenceLevel; localLvol?: number; remoteLvol?: number;
    journalLvol?: number; remoteJournalLvol?: number; initialCopy?: InitialCopy; volumes?: GroupMember[]; asyncMode?: AsyncMode; snapshotIntervalUs?: number;
    inflowControl?: boolean }) {
    const remote = this.checkSystem(a.remote);
    const local = this.checkSystem(a.system);
    const journal = (sys: typeof local) => sys.lvols.findIndex((l) => l.kind === 'journal');
    const journalLvol = a.journalLvol ?? journal(local), remoteJournalLvol = a.remoteJournalLvol ?? journal(remote);
    if (a.copyType === 'async' && (journalLvol < 0 || remoteJournalLvol < 0)) throw new BadRequest(`an async pair needs a journal volume on ${a.system} and ${a.remote}`);
    return this.pairCommand(a.system, { op: 'create', initialCopy: a.initialCopy ?? 'full', pair: {
      // A consistency group (volumes) starts with the pair's own LVOLs: they default to its first member.
      pairId: a.pairId, localLvol: a.localLvol ?? a.volumes?.[0]?.localLvol ?? 0, remoteStorageId: remote.id, remoteLvol: a.remoteLvol ?? a.volumes?.[0]?.remoteLvol ?? 0,
      copyType: a.copyType, fence: a.fence ?? (a.copyType === 'sync' ? 'data' : 'never'), ...(a.volumes ? { volumes: a.volumes } : {}),
      ...(a.copyType === 'async' ? { journalLvol, remoteJournalLvol } : {}),
      // (The firmware judges the mode and interval, and names what is wrong.)
      ...(a.asyncMode !== undefined ? { asyncMode: a.asyncMode } : {}), ...(a.snapshotIntervalUs !== undefined ? { snapshotIntervalUs: a.snapshotIntervalUs } : {}),
      ...(a.inflowControl !== undefined ? { inflowControl: a.inflowControl } : {}) } });
  }

  /** Runs a copy control routine by name on the host the source gives it (A2, A6: host P; A3–A5: host R). */
  async routine(name: string, o: { cycles?: number; intervalMs?: number } = {}): Promise<{ routine: string; reports: Report[]; steps: number }> {
    const r = ROUTINE_ALIASES[name.toLowerCase()];
    if (!r) throw new BadRequest(`unknown routine '${name}' (use ${ROUTINES.join(', ')} or ${Object.keys(ROUTINE_ALIASES).filter((k) => !k.startsWith('a')).join(', ')})`);
    for (const s of ['P', 'I', 'R']) if (!this.world.topology.systems.some((x) => x.name === s && x.id === STORAGE_ID[s as 'P' | 'I' | 'R'])) {
      throw new BadRequest(`routine ${r} is embodiment 1's: it needs storage systems P, I and R (ids 0, 1, 3)`);
    }
    if (this.busyRoutine) throw new BadRequest(`routine ${this.busyRoutine} is still running: one routine at a time`);
    const onHostR = r === 'A3' || r === 'A4' || r === 'A5';
    const host = this.hosts[onHostR ? '100R' : '100P']!;
    if (!host.alive) throw new BadRequest(`host ${host.name}, which runs ${r}, is down (rclab fault --repair host-crash ${host.name})`);
    const hostP = this.hosts['100P']!;
    if (r === 'A3' && hostP.alive && !hostP.partitioned) {
      // S200 would wait for a heartbeat loss that never comes.
      throw new BadRequest(`A3 failover is for a failure at the production site, but host 100P is up and its heartbeat is present; fail site P first (rclab fault power-loss P; rclab fault host-crash 100P)`);
    }
    const names = { A2: 'A2 initial copying', A3: 'A3 failover', A4: 'A4 reverse copying', A5: 'A5 reverse copy control', A6: 'A6 failback' };
    const p = new CopyControlProgram(this.world, host, this.log, names[r]);
    const before = { reports: this.log.reports.length, steps: this.log.steps.length };
    this.busyRoutine = names[r];
    try {
      if (r === 'A2') await initialCopying(p);
      else if (r === 'A3') await failover(p);
      else if (r === 'A4') await reverseCopying(p);
      else if (r === 'A5') await reverseCopyControl(p, { cycles: o.cycles ?? 1, intervalUs: (o.intervalMs ?? 100) * 1000 });
      else await failback(p);
    } catch (e) {
      if (e instanceof RoutineError) throw new BadRequest(e.message);
      throw e;
    } finally {
      this.busyRoutine = null;
    }
    return { routine: names[r], reports: this.log.reports.slice(before.reports), steps: this.log.steps.length - before.steps };
  }

  /** Injects a fault of the nemesis, or (repair) the fault that undoes it. */
  async fault(f: NemesisFault, repair = false): Promise<string> {
    try {
      validateFault(this.world.topology, f);
    } catch (e) {
      throw new BadRequest((e as Error).message);
    }
    const what = repair ? repairOf(f) : f;
    if (!what) throw new BadRequest(`${describeFault(f)} has no repair`);
    if (what.kind === 'power-on' && this.world.isUp(what.system)) return `${what.system} is already powered on`;
    if (what.kind === 'power-loss' && !this.world.isUp(what.system)) return `${what.system} is already powered off`;
    await this.nemesis.inject(what);
    return describeFault(what);
  }

  private checkSystem(name: string) {
    try {
      return systemSpec(this.world.topology, name);
    } catch (e) {
      throw new BadRequest((e as Error).message);
    }
  }

  // ───────────────────────────── control API (HTTP on loopback) ─────────────────────────────

  private async serveHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const reply = (code: number, body: unknown) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    try {
      const verb = (req.url ?? '/').replace(/^\/api\//, '').replace(/^\//, '');
      if (req.method === 'GET' && verb === 'health') return reply(200, { ok: true, nbdPort: this.nbdPort, controlPort: this.controlPort, uptimeUs: this.world.nowUs() });
      if (req.method !== 'POST') return reply(405, { ok: false, error: `use POST /api/<verb> (got ${req.method} ${req.url})` });
      const body = await readJson(req);
      const num = (k: string) => {
        const v = body[k];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new BadRequest(`'${k}' must be a whole number ≥ 0, not ${JSON.stringify(v)}`);
        return v;
      };
      const str = (k: string) => {
        if (typeof body[k] !== 'string') throw new BadRequest(`'${k}' must be a string, not ${JSON.stringify(body[k])}`);
        return body[k] as string;
      };
      const bool = (k: string) => {
        if (typeof body[k] !== 'boolean') throw new BadRequest(`'${k}' must be true or false, not ${JSON.stringify(body[k])}`);
        return body[k] as boolean;
      };
      switch (verb) {
        case 'pairdisplay': return reply(200, { ok: true, pairs: await this.pairdisplay(),
          down: this.world.topology.systems.filter((x) => !this.world.isUp(x.name)).map((x) => x.name) });
        case 'paircreate': {
          const copyType = str('copyType');
          if (copyType !== 'sync' && copyType !== 'async') throw new BadRequest(`'copyType' must be sync or async, not '${copyType}'`);
          const fence = body.fence === undefined ? undefined : str('fence');
          if (fence !== undefined && !['data', 'status', 'never'].includes(fence)) throw new BadRequest(`'fence' must be data, status or never, not '${fence}'`);
          const initialCopy = body.initialCopy === undefined ? undefined : str('initialCopy');
          if (initialCopy !== undefined && !['full', 'none', 'defer'].includes(initialCopy)) throw new BadRequest(`'initialCopy' must be full, none or defer`);
          const r = await this.paircreate({ system: str('system'), pairId: num('pairId'), remote: str('remote'), copyType, fence: fence as FenceLevel | undefined,
            localLvol: body.localLvol === undefined ? undefined : num('localLvol'), remoteLvol: body.remoteLvol === undefined ? undefined : num('remoteLvol'),
            initialCopy: initialCopy as InitialCopy | undefined, volumes: body.volumes as GroupMember[] | undefined, // (the firmware checks the members, mode and interval)
            asyncMode: body.asyncMode === undefined ? undefined : str('asyncMode') as AsyncMode,
            snapshotIntervalUs: body.snapshotIntervalUs === undefined ? undefined : num('snapshotIntervalUs'),
            inflowControl: body.inflowControl === undefined ? undefined : bool('inflowControl') });
          return reply(200, r);
        }
        case 'pairsplit': return reply(200, await this.pairCommand(str('system'), { op: body.drain ? 'drain' : 'suspend', pairId: num('pairId') }));
        case 'pairresync': return reply(200, await this.pairCommand(str('system'), { op: 'resync', pairId: num('pairId'), full: body.full === true }));
        case 'pairreverse': return reply(200, await this.pairCommand(str('system'), { op: 'reverse', pairId: num('pairId') }));
        case 'pairdelete': return reply(200, await this.pairCommand(str('system'), { op: 'delete', pairId: num('pairId') }));
        case 'routine': return reply(200, { ok: true, ...(await this.routine(str('name'), {
          cycles: body.cycles === undefined ? undefined : num('cycles'), intervalMs: body.intervalMs === undefined ? undefined : num('intervalMs') })) });
        case 'fault': {
          if (typeof body.fault !== 'object' || body.fault === null) throw new BadRequest(`'fault' must be a fault object such as {"kind": "cut-link", "link": "S1"}`);
          return reply(200, { ok: true, message: await this.fault(body.fault as NemesisFault, body.repair === true) });
        }
        case 'shutdown':
          reply(200, { ok: true, message: 'stopping' });
          void this.stop();
          return;
        default: return reply(404, { ok: false, error: `unknown verb '${verb}' (pairdisplay, paircreate, pairsplit, pairresync, pairreverse, pairdelete, routine, fault, shutdown)` });
      }
    } catch (e) {
      if (e instanceof BadRequest) return reply(409, { ok: false, error: e.message });
      this.print(`control: ${(e as Error).stack ?? e}`);
      return reply(500, { ok: false, error: (e as Error).message });
    }
  }

  /** Stops accepting, answers every request in flight (acknowledged writes are on disk), then stops the world. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.note('serve: stopping — finishing requests in flight');
      await this.nbd.close();
      await new Promise<void>((r) => this.control.close(() => r()));
      this.control.closeAllConnections();
      for (const h of Object.values(this.hosts)) await h.stop();
      await this.world.close();
      this.markStopped();
    })();
    return this.stopping;
  }
}

/** The topology with one NBD host port ("nbd-<system>") per storage system, besides the copy control hosts. */
export function withNbdPorts(t: Topology): Topology {
  const used = new Set(t.hosts.map((h) => h.port));
  let port = 10;
  const extra = t.systems.map((s) => {
    while (used.has(port)) port++;
    used.add(port);
    return { name: `nbd-${s.name}`, storage: s.name, port };
  });
  return { ...t, hosts: [...t.hosts, ...extra] };
}

/** One export per data volume of every system: "<system>/vol<k>", k counting data volumes only. */
export function nbdExports(world: World): NbdExport[] {
  const out: NbdExport[] = [];
  for (const s of world.topology.systems) {
    let k = 0;
    s.lvols.forEach((l, lvol) => {
      if (l.kind !== 'data') return;
      const name = `${s.name}/vol${k++}`;
      const io = async (op: 'read' | 'write', offsetBytes: number, blocks: number, data?: Uint8Array): Promise<NbdIoResult> => {
        for (let attempt = 0; ; attempt++) {
          const r = await world.hostIo(`nbd-${s.name}`, { op, lvol, lba: offsetBytes / BLOCK_SIZE_BYTES, blocks, data });
          if (r.status === 'ok') return { error: null, data: r.data };
          if (r.status === 'busy' && attempt < BUSY_RETRIES) { await world.sleep(1000); continue; }
          return { error: NBD_ERROR_OF_STATUS[r.status], why: `storage ${s.name} answered ${r.status}${r.status === 'write-protected' ? ` (LVOL ${l.name} is the destination of a copying pair)` : ''}` };
        }
      };
      out.push({
        name, description: `data volume ${l.name} (LVOL ${lvol}) of storage system ${s.name}`, sizeBytes: l.sizeBytes, blockSizeBytes: BLOCK_SIZE_BYTES,
        maxRequestBytes: MAX_IO_BYTES,
        read: (off, len) => io('read', off, len / BLOCK_SIZE_BYTES),
        write: (off, data) => io('write', off, data.length / BLOCK_SIZE_BYTES, data),
      });
    });
  }
  return out;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new Error(`control port ${host}:${port} is already in use (another rclab serve?); choose another with --control-port`) : e);
    server.once('error', onError);
    server.listen(port, host, () => { server.off('error', onError); resolve((server.address() as { port: number }).port); });
  });
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > 1024 * 1024) throw new BadRequest('request body larger than 1 MiB');
    chunks.push(c as Buffer);
  }
  if (n === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new BadRequest(`request body is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest('request body must be a JSON object');
  return v as Record<string, unknown>;
}
