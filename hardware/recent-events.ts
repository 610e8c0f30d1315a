// A storage system's flight recorder: its most recent firmware events in a bounded ring (ring-buffer-ts),
// allocated up front and dumped when a firmware assertion stops the controller.

import * as ringBufferTs from 'ring-buffer-ts';

// The package is UMD: Node's ESM loader sees only a default export, bundlers (vitest) see named ones.
const { RingBuffer } = ((ringBufferTs as unknown as { default?: typeof ringBufferTs }).default ?? ringBufferTs);

/** Events each storage system remembers (oldest dropped first). */
export const RECENT_EVENTS_CAPACITY = 256;

export interface RecentEvent {
  timeUs: number;
  what: string;
}

export class RecentEvents {
  private readonly ring = new RingBuffer<RecentEvent>(RECENT_EVENTS_CAPACITY);

  record(timeUs: number, what: string): void {
    this.ring.add({ timeUs, what });
  }

  /** Oldest first. */
  toArray(): RecentEvent[] {
    return this.ring.toArray();
  }

  /** The dump printed with an assertion: one line per event, oldest first. */
  dump(system: string): string {
    const events = this.ring.toArray();
    return [`last ${events.length} event(s) of storage system ${system}, oldest first:`,
      ...events.map((e) => `  ${(e.timeUs / 1000).toFixed(3).padStart(12)} ms  ${e.what}`)].join('\n');
  }
}
