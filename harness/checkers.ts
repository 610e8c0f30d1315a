// The checkers of a run, independent of the firmware's bookkeeping: they read only the hosts' write history,
// the volumes' bytes and pair states from control memory (hardware state), and they run while the scenario
// runs (sim runtime: between events, so every sample is exact).
//  1. every write acknowledged on a duplex synchronous pair is on its destination (at the acknowledgement);
//  2. every asynchronous destination holding a consistent image is prefix-consistent (sampled);
//  3. every "no data loss" report is true, and every real loss is reported (at the report);
//  4. the claim-3 interlock never breaks (InterlockMonitor);
//  5. liveness — after every fault is repaired, pairs converge to duplex and the volumes end identical
//     (runLiveness);
//  6. dependent writes — after every failover and failback report, and at the end, no site holds a database
//     transaction's data write without its log write (the consistency group keeps them in order together).
// Checks 2, 3 and 6 read the application's volumes as one group: its data volume and its log volume.

import { isConsistentDestination, type PairRecord } from '../firmware/definition-info.ts';
import { PairState } from '../firmware/pair-state.ts';
import type { OperationsLog, Report } from './copy-control.ts';
import { blockWriteId, type WriteHistory, type WriteRecord } from './history.ts';
import { InterlockMonitor } from './interlock.ts';
import { applicationLvols } from './topology.ts';
import type { World } from './world.ts';

/** The application's volumes on a system as they are now (data volume, log volume): what checks 2, 3 and 6 read. */
export function applicationVolumes(world: World, system: string): Uint8Array[] {
  return applicationLvols(world.topology, system).map((lvol) => world.volume(system, lvol));
}

/** Whether a system holds a consistent image of the application: no pair copying into its volumes is mid-formation-copy. */
function holdsConsistentImage(pairs: PairRecord[], lvols: number[]): boolean {
  return pairs.filter((p) => p.role === 'destination' && p.members.some((m) => lvols.includes(m.localLvol))).every(isConsistentDestination);
}

/**
 * The database workload's transactions (workload.ts), by the id of the write that carried each part: which
 * transaction a log write recorded, and which transaction and log block a data write depends on.
 */
export class TransactionLog {
  private next = 1;
  private readonly logTxn = new Map<number, number>();
  private readonly dataTxn = new Map<number, { txn: number; logBlock: number }>();
  private readonly dataBlocks = new Set<number>();

  begin(): number { return this.next++; }
  get begun(): number { return this.next - 1; }
  logWritten(writeId: number, txn: number): void { this.logTxn.set(writeId, txn); }
  dataWritten(writeId: number, txn: number, logBlock: number, dataBlock: number): void {
    this.dataTxn.set(writeId, { txn, logBlock });
    this.dataBlocks.add(dataBlock);
  }

  /**
   * One site's copy of the application: every data block that holds transaction n must find, in its log block,
   * transaction n or a later one (a log block's transaction only grows, so this holds even when the log wraps).
   */
  check(data: Uint8Array, log: Uint8Array, limit = 20): { transactions: number; broken: number; violations: string[] } {
    let transactions = 0, broken = 0;
    const violations: string[] = [];
    for (const block of this.dataBlocks) {
      const dep = this.dataTxn.get(blockWriteId(data, block));
      if (!dep) continue; // never written here, or overwritten by another application's write
      transactions++;
      const logId = blockWriteId(log, dep.logBlock);
      const logged = logId === 0 ? 0 : this.logTxn.get(logId);
      if (logged !== undefined && logged >= dep.txn) continue;
      broken++;
      if (violations.length < limit) {
        violations.push(`data block ${block} holds transaction ${dep.txn}, but its log block ${dep.logBlock} holds ${logged === undefined ? 'no log record' : logged === 0 ? 'nothing' : `only transaction ${logged}`}`);
      }
    }
    return { transactions, broken, violations };
  }
}

export interface CheckViolation {
  check: 'acknowledged-on-destination' | 'prefix-consistent' | 'report-true' | 'interlock' | 'liveness' | 'dependent-writes';
  timeUs: number;
  message: string;
  write?: WriteRecord;
}

export class Checkers {
  readonly violations: CheckViolation[] = [];
  readonly performed: Record<string, number> = { 'acknowledged-on-destination': 0, 'prefix-consistent': 0, 'report-true': 0, interlock: 0, liveness: 0, 'dependent-writes': 0 };
  /** Check 6, one line per site checked: when, where, how many dependent transactions, how many broken. */
  readonly dependentWriteChecks: string[] = [];
  private readonly pendingChecks: Promise<void>[] = [];
  private readonly interlock: InterlockMonitor;
  private readonly transactions?: TransactionLog;
  private sampling = true;
  private readonly sampler: Promise<void> | null;
  /** Per destination volume, its write count when last checked. */
  private readonly checkedAtWrites = new Map<string, number>();

  constructor(private readonly world: World, private readonly history: WriteHistory, private readonly log: OperationsLog,
    o: { sampleUs?: number; transactions?: TransactionLog } = {}) {
    this.transactions = o.transactions;
    this.interlock = new InterlockMonitor(world, 'I', 1, 2);
    history.onComplete.push((w) => this.acknowledged(w));
    log.on((e) => { if (e.kind === 'report') this.reported(e.e); });
    // Sampling needs exact snapshots between events: only on the sim runtime.
    this.sampler = world.runtime === 'sim' && o.sampleUs ? this.sample(o.sampleUs) : null;
  }

  private violation(v: CheckViolation): void {
    this.violations.push(v);
    if (!this.log.abortReason) this.log.abortReason = `${v.check} violated: ${v.message}`;
  }

  /** Check 1, at the moment a host sees the acknowledgement. */
  private acknowledged(w: WriteRecord): void {
    if (w.status !== 'ok') return;
    for (const p of this.world.definitionInformation(w.system)) {
      const member = p.members.find((m) => m.localLvol === w.lvol);
      if (p.role !== 'source' || p.copyType !== 'sync' || !member || p.state !== PairState.Duplex) continue;
      const dest = this.world.topology.systems.find((s) => s.id === p.remoteStorageId);
      if (!dest) continue;
      this.performed['acknowledged-on-destination']!++;
      if (!this.history.holds(this.world.volume(dest.name, member.remoteLvol), w)) {
        this.violation({ check: 'acknowledged-on-destination', timeUs: this.world.nowUs(), write: w,
          message: `write ${w.id} (LBA ${w.lba}) acknowledged to ${w.host} on duplex sync pair ${p.pairId} but not on ${dest.name}` });
      }
    }
  }

  private async sample(everyUs: number): Promise<void> {
    while (this.sampling) {
      await this.world.sleep(everyUs);
      if (!this.sampling) break;
      this.checkPrefixConsistency();
    }
  }

  /**
   * Check 2 over every site whose application volumes are the destination of an asynchronous pair and that the
   * firmware says hold a consistent image — of every pair copying into them (a volume receiving a formation copy
   * on any pair, e.g. I during a resynchronisation from P, holds no consistent image meanwhile). The data and log
   * volumes are checked together: their group is prefix-consistent as a whole.
   */
  checkPrefixConsistency(): void {
    for (const s of this.world.topology.systems) {
      const pairs = this.world.definitionInformation(s.name);
      const lvols = applicationLvols(this.world.topology, s.name);
      const into = pairs.filter((p) => p.role === 'destination' && p.members.some((m) => lvols.includes(m.localLvol)));
      if (!into.some((p) => p.copyType === 'async') || !into.every(isConsistentDestination)) continue;
      // An unchanged group needs no new look: a write acknowledged since completed after every write the
      // volumes hold was issued, so it cannot make them torn.
      const key = s.name, writes = lvols.reduce((n, lvol) => n + this.world.volumeWriteCount(s.name, lvol), 0);
      if (this.checkedAtWrites.get(key) === writes) continue;
      this.checkedAtWrites.set(key, writes);
      this.performed['prefix-consistent']!++;
      const v = this.history.prefixViolations(applicationVolumes(this.world, s.name), 1);
      if (v.length) {
        const p = into.find((x) => x.copyType === 'async')!;
        this.violation({ check: 'prefix-consistent', timeUs: this.world.nowUs(), message: `${s.name} (destination of pair ${p.pairId}, ${stateName(p.state)}): ${v[0]!.message}` });
      }
    }
  }

  /** Check 3: a "no data loss" report must be true; a real loss must be reported. A loss is then final. */
  private reported(r: Report): void {
    this.performed['report-true']!++;
    const volumes = applicationVolumes(this.world, r.subject.system);
    const missing = this.history.missingAcknowledged(volumes, 1);
    if (!r.dataLoss && missing.length > 0) {
      this.violation({ check: 'report-true', timeUs: r.timeUs, message: `${r.step} said no data loss, but ${r.subject.system}: ${missing[0]!.message}` });
    }
    if (r.dataLoss) this.history.markLost(volumes);
    // Check 6 at the instant of the report (on sim the read below happens before anything else runs).
    this.pendingChecks.push(this.checkDependentWrites(r.subject.system, `${r.step} (${r.routine})`));
  }

  /**
   * Check 6 on one site: reads its application volumes and definition information at one instant and, if it
   * holds a consistent image, demands that no data write of a transaction is there without its log write.
   */
  async checkDependentWrites(system: string, when: string): Promise<void> {
    const lvols = applicationLvols(this.world.topology, system);
    const tx = this.transactions;
    if (!tx || tx.begun === 0 || lvols.length < 2) return;
    const snap = await this.world.betweenEvents(system, () => ({
      pairs: this.world.definitionInformation(system), data: this.world.volume(system, lvols[0]!).slice(), log: this.world.volume(system, lvols[1]!).slice(),
    }));
    if (!holdsConsistentImage(snap.pairs, lvols)) {
      this.dependentWriteChecks.push(`${when} at ${system}: not checked (no consistent image: a formation copy into it is unfinished)`);
      return;
    }
    this.performed['dependent-writes']!++;
    const { transactions, broken, violations } = tx.check(snap.data, snap.log, 1);
    this.dependentWriteChecks.push(`${when} at ${system}: ${transactions} dependent transaction(s) checked, ${broken} data write(s) without their log write`);
    if (violations.length) this.violation({ check: 'dependent-writes', timeUs: this.world.nowUs(), message: `${when} at ${system}: ${violations[0]}` });
  }

  /** Check 6 on every site at the end of a run. */
  async checkDependentWritesEverywhere(when: string): Promise<void> {
    for (const s of this.world.topology.systems) await this.checkDependentWrites(s.name, when);
  }

  async stop(): Promise<void> {
    this.sampling = false;
    await this.sampler;
    await Promise.all(this.pendingChecks);
    for (const v of this.interlock.violations()) this.violation({ check: 'interlock', timeUs: this.world.nowUs(), message: v });
    this.performed.interlock = this.interlock.samples;
  }

  recordLiveness(ok: boolean, message: string): void {
    this.performed.liveness!++;
    if (!ok) this.violation({ check: 'liveness', timeUs: this.world.nowUs(), message });
  }
}

function stateName(s: PairState): string {
  return ['simplex', 'initial copying', 'duplex', 'suspending', 'suspend', 'failure suspend', 'duplex pending'][s]!;
}

