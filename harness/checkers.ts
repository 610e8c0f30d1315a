// The checkers of a run, independent of the firmware's bookkeeping: they read only the hosts' write history,
// the volumes' bytes and pair states from control memory (hardware state), and they run while the scenario
// runs (sim runtime: between events, so every sample is exact).
//  1. every write acknowledged on a duplex synchronous pair is on its destination (at the acknowledgement);
//  2. every asynchronous destination holding a consistent image is prefix-consistent (sampled);
//  3. every "no data loss" report is true, and every real loss is reported (at the report);
//  4. the claim-3 interlock never breaks (InterlockMonitor);
//  5. liveness — after every fault is repaired, pairs converge to duplex and the volumes end identical
//     (runLiveness).

import { isConsistentDestination } from '../firmware/definition-info.ts';
import { PairState } from '../firmware/pair-state.ts';
import type { OperationsLog, Report } from './copy-control.ts';
import type { WriteHistory, WriteRecord } from './history.ts';
import { InterlockMonitor } from './interlock.ts';
import type { World } from './world.ts';

export interface CheckViolation {
  check: 'acknowledged-on-destination' | 'prefix-consistent' | 'report-true' | 'interlock' | 'liveness';
  timeUs: number;
  message: string;
  write?: WriteRecord;
}

export class Checkers {
  readonly violations: CheckViolation[] = [];
  readonly performed: Record<string, number> = { 'acknowledged-on-destination': 0, 'prefix-consistent': 0, 'report-true': 0, interlock: 0, liveness: 0 };
  private readonly interlock: InterlockMonitor;
  private sampling = true;
  private readonly sampler: Promise<void> | null;
  /** Per destination volume, its write count when last checked. */
  private readonly checkedAtWrites = new Map<string, number>();

  constructor(private readonly world: World, private readonly history: WriteHistory, private readonly log: OperationsLog, o: { sampleUs?: number } = {}) {
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
      if (p.role !== 'source' || p.copyType !== 'sync' || p.localLvol !== w.lvol || p.state !== PairState.Duplex) continue;
      const dest = this.world.topology.systems.find((s) => s.id === p.remoteStorageId);
      if (!dest) continue;
      this.performed['acknowledged-on-destination']!++;
      if (!this.history.holds(this.world.volume(dest.name, p.remoteLvol), w)) {
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
   * Check 2 over every volume that is the destination of an asynchronous pair and that the firmware says
   * holds a consistent image — of every pair copying into it (a volume receiving a formation copy on any
   * pair, e.g. I during a resynchronisation from P, holds no consistent image meanwhile).
   */
  checkPrefixConsistency(): void {
    for (const s of this.world.topology.systems) {
      const pairs = this.world.definitionInformation(s.name);
      for (const lvol of new Set(pairs.filter((p) => p.role === 'destination' && p.copyType === 'async').map((p) => p.localLvol))) {
        const into = pairs.filter((p) => p.role === 'destination' && p.localLvol === lvol);
        if (!into.every(isConsistentDestination)) continue;
        // An unchanged volume needs no new look: a write acknowledged since completed after every write the
        // volume holds was issued, so it cannot make the volume torn.
        const key = `${s.name}/${lvol}`, writes = this.world.volumeWriteCount(s.name, lvol);
        if (this.checkedAtWrites.get(key) === writes) continue;
        this.checkedAtWrites.set(key, writes);
        this.performed['prefix-consistent']!++;
        const v = this.history.prefixViolations(this.world.volume(s.name, lvol), 1);
        if (v.length) {
          const p = into.find((x) => x.copyType === 'async')!;
          this.violation({ check: 'prefix-consistent', timeUs: this.world.nowUs(), message: `${s.name} (destination of pair ${p.pairId}, ${stateName(p.state)}): ${v[0]!.message}` });
        }
      }
    }
  }

  /** Check 3: a "no data loss" report must be true; a real loss must be reported. A loss is then final. */
  private reported(r: Report): void {
    this.performed['report-true']!++;
    const volume = this.world.volume(r.subject.system, r.subject.lvol);
    const missing = this.history.missingAcknowledged(volume, 1);
    if (!r.dataLoss && missing.length > 0) {
      this.violation({ check: 'report-true', timeUs: r.timeUs, message: `${r.step} said no data loss, but ${r.subject.system}: ${missing[0]!.message}` });
    }
    if (r.dataLoss) this.history.markLost(volume);
  }

  async stop(): Promise<void> {
    this.sampling = false;
    await this.sampler;
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

