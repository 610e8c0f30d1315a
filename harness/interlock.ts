// Claim 3 interlock, checked independently of the routines: R must never copy to I while I copies to P, and
// I never to P while R copies to I. Whether a pair copies is decided by its source, so each pair's state is
// taken from the pair-state events of the system that is its source at that moment.

import { isCopyingState, parsePairState } from '../firmware/pair-state.ts';
import type { World } from './world.ts';

export class InterlockMonitor {
  private readonly sourceState = new Map<number, { source: string; state: string }>();
  private readonly found: string[] = [];
  samples = 0;

  /** `intermediate` is I; `syncPair` copies I→P in reverse operation, `asyncPair` R→I. */
  constructor(private readonly world: World, private readonly intermediate: string, private readonly syncPair: number, private readonly asyncPair: number) {
    world.onEvent((e) => {
      const ev = e.event;
      if (ev.type !== 'pair-state' || (ev.pairId !== syncPair && ev.pairId !== asyncPair)) return;
      if (ev.to === 'deleted') { this.sourceState.delete(ev.pairId); return; }
      const rec = world.definitionInformation(e.system).find((p) => p.pairId === ev.pairId);
      if (!rec || rec.role !== 'source') return;
      this.sourceState.set(ev.pairId, { source: e.system, state: ev.to });
      this.samples++;
      this.evaluate(e.timeUs, ev.step);
    });
  }

  private copying(pairId: number): { source: string; state: string } | null {
    const s = this.sourceState.get(pairId);
    return s && s.state !== 'none' && isCopyingState(parsePairState(s.state)) ? s : null;
  }

  private evaluate(timeUs: number, step?: string): void {
    const sync = this.copying(this.syncPair), async_ = this.copying(this.asyncPair);
    if (!sync || !async_) return;
    // I copies to P (I is the sync pair's source) while something copies into I (I is not the async pair's source).
    if (sync.source === this.intermediate && async_.source !== this.intermediate) {
      this.found.push(`at ${Math.round(timeUs)} µs (${step ?? 'no step'}): ${this.intermediate} copies to P (pair ${this.syncPair} ${sync.state}) while ${async_.source} copies to ${this.intermediate} (pair ${this.asyncPair} ${async_.state})`);
    }
  }

  violations(): string[] {
    return [...this.found];
  }
}
