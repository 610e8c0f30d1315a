// The work application: a host writing verifiable blocks to its data volume, queue depth N, never two
// writes to the same block at once (as a real application's writes to one block are ordered).

import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import { writePattern, type WriteHistory } from './history.ts';
import { hostSpec, systemSpec, type World } from './world.ts';
import type { TransactionLog } from './checkers.ts';

export interface WorkloadOptions {
  host: string;
  lvol: number;
  /** Stop after this many writes have been issued (whichever of writes/durationUs comes first). */
  writes?: number;
  durationUs?: number;
  queueDepth?: number;
  blocksPerWrite?: number;
  /** Blocks 0..regionBlocks-1 of the volume are written. */
  regionBlocks?: number;
  /** Pause between a completion and the next issue on each queue slot (think time). */
  thinkUs?: number;
  /**
   * random: each write picks a free block at random (from the world's PRNG).
   * stride: write k goes to block k × stride mod region — the same writes in the same order on any runtime,
   * so the final contents do not depend on timing (used to compare runtimes).
   */
  pattern?: 'random' | 'stride';
  /** The host is up (a crashed host's application stops issuing writes). */
  alive?: () => boolean;
}

export interface WorkloadResult {
  issued: number;
  acknowledged: number;
  refused: Record<string, number>;
  latenciesUs: number[];
  elapsedUs: number;
}

export class Workload {
  private stopped = false;
  readonly done: Promise<WorkloadResult>;

  constructor(private readonly world: World, private readonly history: WriteHistory, readonly o: WorkloadOptions) {
    this.done = this.run();
  }

  stop(): void { this.stopped = true; }

  private async run(): Promise<WorkloadResult> {
    const w = this.world, o = this.o;
    const h = hostSpec(w.topology, o.host);
    const system = systemSpec(w.topology, h.storage);
    const volBlocks = system.lvols[o.lvol]!.sizeBytes / BLOCK_SIZE_BYTES;
    const bpw = o.blocksPerWrite ?? 1;
    const region = Math.min(o.regionBlocks ?? volBlocks, volBlocks);
    const slots = Math.floor(region / bpw);
    const busy = new Set<number>();
    const res: WorkloadResult = { issued: 0, acknowledged: 0, refused: {}, latenciesUs: [], elapsedUs: 0 };
    const start = w.nowUs();
    const more = () => !this.stopped && (o.alive === undefined || o.alive()) && (o.writes === undefined || res.issued < o.writes)
      && (o.durationUs === undefined || w.nowUs() - start < o.durationUs);
    const worker = async () => {
      while (more()) {
        // Another workload on the same volume (a journal-fill burst) may hold a block: wait or pick another.
        const taken = (s: number) => busy.has(s) || this.history.inFlight(s * bpw, bpw);
        let slot: number;
        if (o.pattern === 'stride') {
          slot = (res.issued * strideFor(slots)) % slots;
          while (this.history.inFlight(slot * bpw, bpw)) await w.sleep(100);
          if (!more()) break;
        } else {
          slot = Math.floor(w.random() * slots);
          for (let tries = 0; taken(slot); tries++) {
            slot = (slot + 1) % slots;
            if (tries >= slots) { await w.sleep(100); tries = 0; }
          }
        }
        busy.add(slot);
        const lba = slot * bpw;
        const rec = this.history.issue(o.host, h.storage, o.lvol, lba, bpw, w.nowUs());
        res.issued++;
        const r = await w.hostIo(o.host, { op: 'write', lvol: o.lvol, lba, blocks: bpw, data: writePattern(rec.id, lba, bpw) });
        this.history.complete(rec, r.status, w.nowUs());
        busy.delete(slot);
        if (r.status === 'ok') { res.acknowledged++; res.latenciesUs.push(w.nowUs() - rec.issuedUs); }
        else {
          res.refused[r.status] = (res.refused[r.status] ?? 0) + 1;
          if (r.status === 'not-ready') return; // the storage system is gone: this application stops
          await w.sleep(1000);
        }
        if (o.thinkUs) await w.sleep(o.thinkUs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.queueDepth ?? 1, slots) }, worker));
    res.elapsedUs = w.nowUs() - start;
    return res;
  }
}

export interface DatabaseOptions {
  host: string;
  dataLvol: number;
  logLvol: number;
  /** Stop after this many transactions have begun. */
  transactions?: number;
  /** Data blocks dataBaseBlock .. dataBaseBlock + dataBlocks - 1 hold the table; the log is the whole log volume. */
  dataBaseBlock?: number;
  dataBlocks?: number;
  alive?: () => boolean;
}

export interface DatabaseResult {
  begun: number;
  committed: number;
  refused: Record<string, number>;
}

/**
 * A work application that behaves like a database with a write-ahead log: transaction n writes its log record
 * (log volume, block n mod logBlocks) and only once that write is acknowledged writes its data block (data
 * volume, a block chosen by n). So a data write depends on its log write: a copy that holds the data without the
 * log record is one the application cannot recover from. One transaction at a time (a single committing writer),
 * so the same transactions produce the same blocks on either runtime. Which transaction (and log block) each
 * write carries is recorded in `transactions`; the blocks carry the write's id (history.ts) as every write does.
 */
export class DatabaseWorkload {
  private stopped = false;
  readonly done: Promise<DatabaseResult>;

  constructor(private readonly world: World, private readonly history: WriteHistory, private readonly transactions: TransactionLog, readonly o: DatabaseOptions) {
    this.done = this.run();
  }

  stop(): void { this.stopped = true; }

  private async run(): Promise<DatabaseResult> {
    const w = this.world, o = this.o;
    const system = systemSpec(w.topology, hostSpec(w.topology, o.host).storage);
    const logBlocks = system.lvols[o.logLvol]!.sizeBytes / BLOCK_SIZE_BYTES;
    const dataBlocks = o.dataBlocks ?? 1024, base = o.dataBaseBlock ?? 0, stride = strideFor(dataBlocks);
    const res: DatabaseResult = { begun: 0, committed: 0, refused: {} };
    const more = () => !this.stopped && (o.alive === undefined || o.alive()) && (o.transactions === undefined || res.begun < o.transactions);
    /** One write of a transaction; its status. */
    const write = async (lvol: number, member: number, lba: number, record: (id: number) => void) => {
      while (this.history.inFlight(lba, 1, member)) await w.sleep(100); // another application (a burst) holds the block
      const rec = this.history.issue(o.host, system.name, lvol, lba, 1, w.nowUs(), member);
      record(rec.id);
      const r = await w.hostIo(o.host, { op: 'write', lvol, lba, blocks: 1, data: writePattern(rec.id, lba, 1) });
      this.history.complete(rec, r.status, w.nowUs());
      if (r.status !== 'ok') res.refused[r.status] = (res.refused[r.status] ?? 0) + 1;
      return r.status;
    };
    while (more()) {
      const n = this.transactions.begin();
      res.begun++;
      const logBlock = n % logBlocks, dataBlock = base + ((n * stride) % dataBlocks);
      let status = await write(o.logLvol, 1, logBlock, (id) => this.transactions.logWritten(id, n));
      // The data write only after the log record is acknowledged: write-ahead logging.
      if (status === 'ok') status = await write(o.dataLvol, 0, dataBlock, (id) => this.transactions.dataWritten(id, n, logBlock, dataBlock));
      if (status === 'ok') res.committed++;
      else if (status === 'not-ready') break; // the storage system is gone: the database stops
      else await w.sleep(1000);
    }
    return res;
  }
}

/** A stride coprime with `slots`, so k × stride mod slots visits every slot before repeating. */
function strideFor(slots: number): number {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let s = Math.max(1, Math.floor(slots * 0.618));
  while (gcd(s, slots) !== 1) s++;
  return s;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
