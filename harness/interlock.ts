// Claim 3 interlock, checked independently of the routines: R must never copy to I while I copies to P, and
// I never to P while R copies to I. A pair copies while both its sides say so (from their pair-state events).

import { isCopyingState, parsePairState } from '../firmware/pair-state.ts';
import type { World } from './world.ts';

export class InterlockMonitor {
  /** Latest state of each pair as each storage system reports it: pairId → system → state. */
  private readonly states = new Map<number, Map<string, string>>();
  private readonly found: string[] = [];
  samples = 0;

  /** `intermediate` is I; `syncPair` copies I→P in reverse operation, `asyncPair` R→I. */
  constructor(private readonly world: World, private readonly intermediate: string, private readonly syncPair: number, private readonly asyncPair: number) {
    world.onEvent((e) => {
      const ev = e.event;
      if (ev.type !== 'pair-state' || (ev.pairId !== syncPair && ev.pairId !== asyncPair)) return;
      const m = this.states.get(ev.pairId) ?? new Map<string, string>();
      if (ev.to === 'deleted') m.delete(e.system); else m.set(e.system, ev.to);
      this.states.set(ev.pairId, m);
      this.samples++;
      this.evaluate(e.timeUs, ev.step);
    });
  }

  /**
   * A pair copies only while both its sides are in a copying state: the source sends and the destination
   * applies (a destination in failure suspend refuses what its source still sends). Returns its source.
   */
  private copying(pairId: number): { source: string; state: string } | null {
    const m = this.states.get(pairId);
    if (!m || m.size < 2) return null;
    let source: string | null = null;
    for (const [system, state] of m) {
      if (state === 'none' || !isCopyingState(parsePairState(state))) return null;
      if (this.world.definitionInformation(system).find((p) => p.pairId === pairId)?.role === 'source') source = system;
    }
    return source ? { source, state: m.get(source)! } : null;
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
