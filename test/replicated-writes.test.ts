// The emulator's own speed workload (bench/replicated-writes.ts, `npm run bench:cascade`): host writes at QD N through
// the cascade P →sync I →async R, the synchronous pair P → I alone, or no pair, so the hops can be measured one at a
// time. Each choice must route the writes through exactly the systems it names (a figure for the wrong path would
// mislead whoever compares them). No time is asserted: the machine is shared.

import { describe, expect, it } from 'vitest';
import { replicatedCascadeWritesPerSecond, type ReplicatedWritesPairs } from '../bench/replicated-writes.ts';
import type { ThreadCpuStats } from '../hardware/thread-cpu.ts';

const QD = 8;

/** Frames each system sent and received in the measured window, and the writes counted there. */
async function framesInWindow(pairs: ReplicatedWritesPairs) {
  const at: Record<'start' | 'end', Record<string, ThreadCpuStats>> = { start: {}, end: {} };
  const r = await replicatedCascadeWritesPerSecond({
    queueDepth: QD, pairs, durationMs: 300, warmupMs: 100,
    onWindow: (w, edge) => { for (const s of ['P', 'I', 'R']) at[edge][s] = w.stats(s); },
  });
  const frames = (s: string, k: 'framesOut' | 'framesIn') => at.end[s]![k] - at.start[s]![k];
  return { r, out: { P: frames('P', 'framesOut'), I: frames('I', 'framesOut') }, in: { I: frames('I', 'framesIn'), R: frames('R', 'framesIn') } };
}

describe('replicated writes (the emulator-speed workload), hop by hop', () => {
  it('cascade: every write goes P → I and on to R; sync: P → I only; none: the host and P alone', async () => {
    const cascade = await framesInWindow('cascade');
    const sync = await framesInWindow('sync');
    const none = await framesInWindow('none');
    for (const x of [cascade, sync, none]) {
      expect(x.r.writes).toBeGreaterThan(0);
      expect(x.r.cpuUsPerWrite).toBeGreaterThan(0);
    }
    // A synchronous copy per write (no coalescing): P sends a frame per write counted, less the writes in flight when
    // the window opened (their copies went before it).
    expect(cascade.out.P).toBeGreaterThanOrEqual(cascade.r.writes - QD);
    expect(sync.out.P).toBeGreaterThanOrEqual(sync.r.writes - QD);
    expect(cascade.in.R).toBeGreaterThan(0); // journal batches reach R
    expect(sync.in.R).toBe(0); // no asynchronous pair: nothing goes to R (keepalives go only between partners)
    expect(sync.out.I).toBeGreaterThanOrEqual(sync.r.writes - QD); // I acknowledges each copy
    expect(none.out.P).toBe(0);
    expect(none.in.I).toBe(0);
  }, 60_000);
});
