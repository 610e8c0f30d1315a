// S110 ship pacing (firmware/ship-pacing.ts): the journal's ship window and batch size follow the delivery rate
// and round trip the destination's acknowledgements show. First the estimator alone against a modelled link,
// then the firmware on the sim runtime over real slow links, where a fixed window and 1 MiB batches made the
// destination declare the source lost (one batch outlasted the 300 ms partner timeout) and tail-dropped frames
// stalled go-back-N.

import { describe, expect, it } from 'vitest';
import { InvariantError } from '../firmware/invariant.ts';
import { JOURNAL_BATCH_MAX_BYTES, JOURNAL_SHIP_WINDOW_BYTES } from '../firmware/constants.ts';
import {
  SHIP_BATCH_SERIALISE_US, SHIP_INITIAL_BATCH_BYTES, SHIP_INITIAL_WINDOW_BYTES, SHIP_QUEUE_TARGET_US, SHIP_RATE_FILTER_US, ShipPacing,
} from '../firmware/ship-pacing.ts';
import { TRANSMIT_QUEUE_MAX_US } from '../hardware/link-model.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { linkSweepPoint, rpoAtOfferedLoad } from '../bench/study/bandwidth.ts';
import { createCommand, ok, PAIR, query, twoSystems, waitFor, write } from './fixtures.ts';

/**
 * A source with an endless backlog of `entryBytes` entries, shipping through `p` over a link that serialises at
 * `rateOf(t)` bytes/µs and flies `oneWayUs` each way; acknowledgements come back at once. Returns, per
 * acknowledgement, the time, the window and batch the pacing then gives, and the queue the batch waited behind.
 */
function pipe(p: ShipPacing, o: { oneWayUs: number; rateOf: (tUs: number) => number; untilUs: number; entryBytes?: number }) {
  const entry = o.entryBytes ?? 4096;
  const acks: Array<{ atUs: number; seq: number; sentUs: number; bytes: number; queuedUs: number }> = [];
  const samples: Array<{ tUs: number; windowBytes: number; batchBytes: number; queuedUs: number }> = [];
  let now = 0, seq = 0, inFlight = 0, busyUntil = 0;
  while (now < o.untilUs) {
    while (inFlight < p.windowBytes()) {
      const bytes = Math.max(entry, Math.floor(p.batchBytes() / entry) * entry);
      seq += bytes / entry;
      p.onSent(seq, bytes, now);
      inFlight += bytes;
      const queuedUs = Math.max(0, busyUntil - now);
      busyUntil = Math.max(now, busyUntil) + bytes / o.rateOf(now);
      acks.push({ atUs: busyUntil + 2 * o.oneWayUs, seq, sentUs: now, bytes, queuedUs });
    }
    acks.sort((a, b) => a.atUs - b.atUs);
    const a = acks.shift()!;
    now = a.atUs;
    inFlight -= a.bytes;
    p.onAcknowledged(a.seq, now);
    samples.push({ tUs: now, windowBytes: p.windowBytes(), batchBytes: p.batchBytes(), queuedUs: a.queuedUs });
  }
  return samples;
}

describe('S110 ship pacing: the estimator', () => {
  it('starts with a 64 KiB window and one 4 KiB entry per batch, before any acknowledgement', () => {
    const p = new ShipPacing();
    expect([p.windowBytes(), p.batchBytes(), p.rateBytesPerUs, p.roundTripUs]).toEqual([SHIP_INITIAL_WINDOW_BYTES, SHIP_INITIAL_BATCH_BYTES, 0, Infinity]);
  });

  for (const [mbps, km] of [[0.1, 10], [1, 100], [10, 1000], [1000, 1000]] as const) {
    it(`${mbps} MB/s over ${km} km: the window settles at rate × (round trip + ${SHIP_QUEUE_TARGET_US / 1000} ms), batches at ${SHIP_BATCH_SERIALISE_US / 1000} ms of the link`, () => {
      const p = new ShipPacing();
      const oneWayUs = km * 5;
      const s = pipe(p, { oneWayUs, rateOf: () => mbps, untilUs: 30_000_000 });
      const late = s.filter((x) => x.tUs > 20_000_000);
      expect(late.length).toBeGreaterThan(10);
      expect(p.rateBytesPerUs).toBeCloseTo(mbps, 5);
      const want = Math.min(JOURNAL_SHIP_WINDOW_BYTES, mbps * (p.roundTripUs + SHIP_QUEUE_TARGET_US));
      for (const x of late) {
        expect(x.windowBytes).toBeCloseTo(want, -3);
        const batch = Math.min(JOURNAL_BATCH_MAX_BYTES, Math.max(4096, mbps * SHIP_BATCH_SERIALISE_US));
        expect(x.batchBytes).toBeCloseTo(batch, 3);
        // What a batch waited behind at the link: the target and one batch more, never near the link's 2 s transmit queue.
        expect(x.queuedUs).toBeLessThan(SHIP_QUEUE_TARGET_US + (2 * batch) / mbps);
      }
      // The round trip seen is the link's: propagation plus one batch's time on the wire.
      expect(p.roundTripUs).toBeGreaterThanOrEqual(2 * oneWayUs);
      expect(p.roundTripUs).toBeLessThanOrEqual(2 * oneWayUs + Math.max(4096, mbps * SHIP_BATCH_SERIALISE_US) / mbps + 1);
    });
  }

  it('a bandwidth drop (10 → 2.5 MB/s) shrinks the window within about two filter periods, and the queue stays under the link\'s 2 s', () => {
    const p = new ShipPacing();
    const s = pipe(p, { oneWayUs: 50, rateOf: (t) => (t < 5_000_000 ? 10 : 2.5), untilUs: 12_000_000 });
    expect(s.filter((x) => x.tUs < 5_000_000).at(-1)!.windowBytes).toBeGreaterThan(1_900_000); // 10 MB/s × 0.2 s
    // The 2 MB in flight at the drop take 0.8 s at the new rate; then the filter forgets 10 MB/s within two periods.
    const after = s.filter((x) => x.tUs > 5_000_000 + 800_000 + 2 * SHIP_RATE_FILTER_US);
    expect(after.length).toBeGreaterThan(10);
    for (const x of after) expect(x.windowBytes).toBeLessThan(2.5 * (p.roundTripUs + SHIP_QUEUE_TARGET_US) * 1.05);
    expect(Math.max(...s.map((x) => x.queuedUs))).toBeLessThan(TRANSMIT_QUEUE_MAX_US);
  });

  it('go-back-N (rewind) forgets the batches in flight but not the link; batches out of order are an invariant error', () => {
    const p = new ShipPacing();
    pipe(p, { oneWayUs: 500, rateOf: () => 1, untilUs: 2_000_000 });
    const rate = p.rateBytesPerUs, rtt = p.roundTripUs;
    p.onSent(1_000_000, 4096, 2_000_000);
    expect(p.batchesInFlight).toBeGreaterThan(0);
    p.rewind();
    expect([p.batchesInFlight, p.rateBytesPerUs, p.roundTripUs]).toEqual([0, rate, rtt]);
    p.onSent(10, 4096, 2_000_000);
    expect(() => p.onSent(10, 4096, 2_000_001)).toThrow(InvariantError);
    expect(() => p.onSent(9, 4096, 2_000_001)).toThrow(/batch ending at 9 sent after one ending at 10/);
  });
  it('go-back-N: batches sent again (through the seq given to rewind) sample no rate, since the destination may hold them and answer a whole window at once', () => {
    const p = new ShipPacing();
    pipe(p, { oneWayUs: 500, rateOf: () => 1, untilUs: 2_000_000 });
    const rate = p.rateBytesPerUs;
    expect(rate).toBeCloseTo(1, 5);
    // 16 batches of 64 KiB were in flight (ending at seq 1,000,016 … 1,000,256); go-back-N sends them all again at
    // once, and the destination, which held all but the first, answers them together 1.1 ms later: 1 MiB in 1.1 ms.
    for (let i = 1; i <= 16; i++) p.onSent(1_000_000 + i * 16, 65536, 2_000_000);
    p.rewind(1_000_000 + 16 * 16);
    for (let i = 1; i <= 16; i++) p.onSent(1_000_000 + i * 16, 65536, 3_000_000);
    p.onAcknowledged(1_000_000 + 16 * 16, 3_001_100);
    expect(p.rateBytesPerUs).toBeCloseTo(rate, 5); // it was 950 × the link
    expect(p.batchesInFlight).toBe(0);
    // New batches sample again.
    p.onSent(1_000_000 + 17 * 16, 65536, 3_001_100);
    p.onAcknowledged(1_000_000 + 17 * 16, 3_001_100 + 66_536);
    expect(p.rateBytesPerUs).toBeCloseTo(rate, 1);
  });
});

describe('S110 ship pacing: the firmware over slow links (sim runtime)', () => {
  /** A burst of `writes` 4 KiB writes into an async pair A → B over `mbps`; how long its journal takes to drain. */
  async function burst(mbps: number, writes: number, distanceKm = 10) {
    const topo = twoSystems({ bandwidthMBps: mbps, distanceKm, dataBytes: 8 * 1024 * 1024 });
    for (const s of topo.systems) s.lvols[1]!.sizeBytes = 8 * 1024 * 1024;
    const w = new SimWorld(topo, 5);
    const states = new Set<string>();
    w.onEvent((e) => { if (e.event.type === 'pair-state') states.add(`${e.event.to}${e.event.cause === 'none' ? '' : ` (${e.event.cause})`}`); });
    await ok(w, 'A', createCommand('async', 'none'));
    await waitFor(w, 'A', 'duplex');
    const t0 = w.nowUs();
    await Promise.all(Array.from({ length: 8 }, async (_, lane) => {
      for (let i = lane; i < writes; i += 8) expect((await write(w, 'hostA', i % 2048, (i % 250) + 1)).status).toBe('ok');
    }));
    const idealUs = (writes * 4096) / mbps;
    let v = await query(w, 'A');
    while (v.journalNewestSeq > v.journalAppliedSeq && w.nowUs() - t0 < 3 * idealUs) { await w.sleep(Math.max(1000, idealUs / 200)); v = await query(w, 'A'); }
    const drainedUs = w.nowUs() - t0;
    const same = Buffer.compare(w.volume('A', 0), w.volume('B', 0)) === 0;
    await w.close();
    return { drainedUs, idealUs, state: v.state, states: [...states], same };
  }

  for (const mbps of [0.1, 0.25, 0.5]) {
    it(`S110 a 3.7 MB burst over a ${mbps} MB/s link drains at the link's rate and the pair stays duplex (it went to failure suspend, partner lost)`, async () => {
      const r = await burst(mbps, 900);
      expect(r.states).toEqual(['simplex', 'duplex']);
      expect(r.state).toBe('duplex');
      expect(r.same).toBe(true);
      // Frame headers and 1-entry batches at these rates cost about 9 %; a stall of the 1 s resend timeout would show.
      expect(r.drainedUs / r.idealUs).toBeLessThan(1.15);
    }, 60_000);
  }

  it('S110 over 1000 km at 100 MB/s the window opens to the bandwidth-delay product within a few round trips', async () => {
    const r = await burst(100, 1500, 1000);
    expect(r.state).toBe('duplex');
    expect(r.same).toBe(true);
    // 6.1 MB at 100 MB/s is 61 ms on the wire; the 64 KiB initial window and its growth add about three 10 ms round trips.
    expect(r.drainedUs).toBeLessThan(r.idealUs + 6 * 10_000);
  }, 60_000);

  for (const mbps of [0.25, 0.5, 1]) {
    it(`S100 a formation copy over a ${mbps} MB/s link keeps few tracks queued: a suspend reaches the destination within 0.3 s (1-2 s behind 16 queued tracks before), and a new copy runs at the link's rate`, async () => {
      const topo = twoSystems({ bandwidthMBps: mbps, distanceKm: 10, dataBytes: 2 * 1024 * 1024 });
      const w = new SimWorld(topo, 3);
      for (let i = 0; i < 512; i++) await write(w, 'hostA', i, (i % 250) + 1);
      await ok(w, 'A', createCommand('async', 'full'));
      await w.sleep(1_000_000);
      const t = w.nowUs();
      await ok(w, 'A', { op: 'suspend', pairId: PAIR });
      const seen = await waitFor(w, 'B', 'suspend', 5_000_000);
      expect(seen.state).toBe('suspend');
      expect(w.nowUs() - t).toBeLessThan(300_000);
      // The whole volume again (2 MiB: 32 tracks), with the window opened by the first copy's estimate.
      const r0 = w.nowUs();
      await ok(w, 'A', { op: 'resync', pairId: PAIR, full: true });
      await waitFor(w, 'A', 'duplex', 60_000_000);
      const idealUs = (2 * 1024 * 1024) / mbps;
      expect((w.nowUs() - r0) / idealUs).toBeLessThan(1.12);
      await w.close();
    }, 60_000);
  }
});

describe('S110 and S100 loss recovery over lossy links (sim runtime; the first five are the study\'s link sweep points)', () => {
  for (const [mbps, loss] of [[4, 0.01], [64, 0.001], [64, 0.01], [16, 0.05], [64, 0.05]] as const) {
    it(`${mbps} MB/s, ${loss * 100} % of frames lost: a lost batch, and a lost copy of it, goes again within a round trip or so: the recovery point stays near the one-way delay (it reached 1 s, the resend timeout), and a saturated link stays busy`, async () => {
      const p = await linkSweepPoint(mbps, loss, 1_000_000);
      expect(p.endState).toBe('duplex');
      expect(p.achievedMBps).toBeCloseTo(mbps / 2, 1);
      expect(p.rpoMsMax).toBeLessThan(100);
      expect(p.journalUsagePercentMax).toBeLessThan(5);
      // Offered beyond the link, the window full: a lost copy is found by its overdue answer, and the link stays
      // busy (1 s stalls left 1-8 % of it at 5 % loss).
      expect(p.saturatedDeliveredMBps).toBeGreaterThan(0.8 * mbps);
    }, 60_000);
  }
  for (const [mbps, loss, before, bound] of [[16, 0.01, 1.5, 1.2], [16, 0.05, 3.03, 1.6]] as const) {
    it(`S100 a formation copy over ${mbps} MB/s (100 km) losing ${loss * 100} % of its frames: a lost track, or its lost answer, goes again once the destination has been silent for the answer's due time, and the copy takes under ${bound} × the data's time on the wire (${before} × when it waited for the 1 s resend timeout) and leaves the volumes equal`, async () => {
      const bytes = 32 << 20;
      const w = new SimWorld(twoSystems({ bandwidthMBps: mbps, distanceKm: 100, dataBytes: bytes, lossRate: loss }), 3);
      for (let i = 0; i < 64; i++) await write(w, 'hostA', i * (bytes / 4096 / 64), (i % 250) + 1);
      const t0 = w.nowUs();
      await ok(w, 'A', createCommand('sync', 'full'));
      await waitFor(w, 'A', 'duplex', 60_000_000);
      expect((w.nowUs() - t0) / (bytes / mbps)).toBeLessThan(bound);
      expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
      await w.close();
    }, 60_000);
  }
  for (const [writesPerS, loss] of [[2, 0.05], [20, 0.01]] as const) {
    it(`tail loss probe: a writer of ${writesPerS} 4 KiB writes/s (16 MB/s, 100 km, ${loss * 100} % lost): a batch lost with no later one to reveal it goes again within tens of ms: the recovery point stays under 60 ms (it reached ${writesPerS === 2 ? 508 : 203} ms)`, async () => {
      const p = await rpoAtOfferedLoad('sim', (writesPerS * 4096) / 16e6, 30_000_000,
        { distanceKm: 100, bandwidthMBps: 16, blockBytes: 4096, journalBytes: 32 << 20, lossRate: loss, inflowControl: false });
      expect(p.endState).toBe('duplex');
      expect(p.rpoMsMax).toBeLessThan(60);
    }, 60_000);
  }
});
