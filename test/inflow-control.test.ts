// Inflow control (write pacing, OPERATORS.md §1): an asynchronous journal-mode pair whose journal is over its
// high-water mark holds host write completions until the destination's acknowledgements bring it back under, so
// the host slows to the link's rate instead of filling the journal; over the mark for the journal watch time, the
// pair still suspends. On the sim runtime: A → B over a 2 MB/s link, 16 MiB journals.

import { describe, expect, it } from 'vitest';
import type { Command, PairView } from '../firmware/commands.ts';
import { JOURNAL_HIGH_WATER_PERCENT } from '../firmware/constants.ts';
import { formatPairDisplay } from '../harness/operator.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { withinWallMs } from '../harness/within-wall-ms.ts';
import { createCommand, ok, PAIR, query, twoSystems, waitFor, write } from './fixtures.ts';

const same = (w: SimWorld) => Buffer.compare(w.volume('A', 0), w.volume('B', 0)) === 0;
const withInflow = (cmd: Command, inflowControl: unknown): Command => ({ ...cmd, pair: { ...(cmd as Extract<Command, { op: 'create' }>).pair, inflowControl } } as Command);

/** `lanes` hosts lanes writing `perLane` 4 KiB writes each (lane k writes blocks k, k + lanes, …); resolves with what each saw. */
async function writeLanes(w: SimWorld, lanes: number, perLane: number, onSample?: () => Promise<void>) {
  const statuses: Record<string, number> = {};
  let done = 0;
  const sampler = (async () => { while (done < lanes) { await onSample?.(); await w.sleep(5_000); } })();
  await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
    for (let i = 0; i < perLane; i++) {
      const r = await write(w, 'hostA', (lane + i * lanes) % 256, ((lane * 7 + i) % 250) + 1);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }
    done++;
  }));
  await sampler;
  return statuses;
}

const LINK_MBPS = 2, JOURNAL_BYTES = 16 * 1024 * 1024, LANES = 8, PER_LANE = 550; // 18 MB written: more than the journal holds

/**
 * A–B with journals large enough that one acknowledged batch (≤ 64 entries, 256 KiB) is well under the gap between
 * the high- and low-water marks, and a window (512 entries, 2 MiB) the 2 MB/s link's 2 s transmit queue holds.
 */
async function duplexPair(inflowControl: boolean, timing?: { journalWatchTimeUs: number }) {
  const topo = twoSystems({ bandwidthMBps: LINK_MBPS });
  for (const s of topo.systems) {
    s.lvols[1]!.sizeBytes = JOURNAL_BYTES;
    if (timing) s.timing = timing;
  }
  const w = new SimWorld(topo, 11);
  await ok(w, 'A', inflowControl ? withInflow(createCommand('async', 'full'), true) : createCommand('async', 'full'));
  await waitFor(w, 'A', 'duplex');
  return w;
}

describe('inflow control (OPERATORS.md §1, journal full is two-stage)', () => {
  it('S110 duplex: paces host writes to the link\'s rate, keeps the pair in duplex, logs once, and B ends equal to A', async () => {
    const w = await duplexPair(true);
    const logs: string[] = [];
    w.onEvent((e) => { if (e.event.type === 'log') logs.push(e.event.message); });
    expect((await query(w, 'A')).inflowControl).toBe(true);
    expect((await query(w, 'B')).inflowControl).toBe(true); // definition information on both sides
    let maxUsage = 0, maxHeld = 0, pacedView: PairView | undefined;
    const states = new Set<string>();
    const t0 = w.nowUs();
    const statuses = await writeLanes(w, LANES, PER_LANE, async () => {
      const v = await query(w, 'A');
      maxUsage = Math.max(maxUsage, v.journalUsagePercent);
      maxHeld = Math.max(maxHeld, v.inflowHeldWrites);
      if (v.inflowHeldWrites > 0) pacedView ??= v;
      states.add(v.state);
    });
    const elapsedS = (w.nowUs() - t0) / 1e6;
    expect(statuses).toEqual({ ok: LANES * PER_LANE });
    expect([...states]).toEqual(['duplex']);
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(LANES); // at most what the host has outstanding
    // Just over the mark: by the writes in flight (8 × 4 KiB) and entry descriptors, never near full.
    expect(maxUsage).toBeGreaterThanOrEqual(JOURNAL_HIGH_WATER_PERCENT);
    expect(maxUsage).toBeLessThan(JOURNAL_HIGH_WATER_PERCENT + 3);
    // The host went at the link's pace: what did not fit under the mark crossed the link at its rate.
    const pacedS = (LANES * PER_LANE * 4096 - (JOURNAL_HIGH_WATER_PERCENT / 100) * JOURNAL_BYTES) / (LINK_MBPS * 1e6);
    expect(elapsedS).toBeGreaterThan(0.9 * pacedS);
    expect(elapsedS).toBeLessThan(1.2 * pacedS);
    expect(logs.filter((m) => /host writes paced \(inflow control\)/.test(m))).toHaveLength(1);
    // pairdisplay's Jnl% says so while it paces.
    expect(formatPairDisplay([{ ...pacedView!, system: 'A', remoteSystem: 'B', lagEntries: 0, lagMs: 0 }])).toMatch(/\s8\d\.\d paced [1-8]\s/);
    // The backlog left (about the journal's 80 %) drains at the link's rate.
    const drain0 = w.nowUs();
    let v = await query(w, 'A');
    while (v.journalNewestSeq > v.journalAppliedSeq && w.nowUs() - drain0 < 30_000_000) { await w.sleep(10_000); v = await query(w, 'A'); }
    expect([v.state, v.inflowHeldWrites, v.journalNewestSeq - v.journalAppliedSeq]).toEqual(['duplex', 0, 0]);
    expect(same(w)).toBe(true);
    await w.close();
  });

  it('without it the same load fills the journal and the pair suspends (journal full)', async () => {
    const w = await duplexPair(false);
    expect((await query(w, 'A')).inflowControl).toBe(false);
    const statuses = await writeLanes(w, LANES, PER_LANE);
    expect(statuses).toEqual({ ok: LANES * PER_LANE });
    const v = await query(w, 'A');
    expect([v.state, v.failureCause]).toEqual(['failure suspend', 'journal full']);
    await w.close();
  });

  it('over the mark for the journal watch time, the pair suspends (journal full), the held writes complete, and resync makes B equal A', async () => {
    const w = await duplexPair(true, { journalWatchTimeUs: 500_000 });
    const logs: string[] = [];
    w.onEvent((e) => { if (e.event.type === 'log') logs.push(e.event.message); });
    const statuses = await writeLanes(w, LANES, PER_LANE);
    expect(statuses).toEqual({ ok: LANES * PER_LANE }); // every write acknowledged: journaled, or in the bitmap after the suspend
    const v = await query(w, 'A');
    expect([v.state, v.failureCause, v.inflowHeldWrites]).toEqual(['failure suspend', 'journal full', 0]);
    expect(logs.some((m) => /over the high-water mark: host writes paced \(inflow control\)/.test(m))).toBe(true);
    expect(logs.some((m) => /over the high-water mark for \d+ ms \(watch time 500 ms\)/.test(m))).toBe(true);
    await ok(w, 'A', { op: 'resync', pairId: PAIR });
    await waitFor(w, 'A', 'duplex', 600_000_000);
    await w.sleep(10_000_000);
    expect(same(w)).toBe(true);
    await w.close();
  });

  it('a pair deleted while it paces completes the writes it held: every one acknowledged, none lost', async () => {
    const w = await duplexPair(true);
    let deleted = false;
    // (Held writes never completed would leave the lanes waiting for ever: fail within seconds instead.)
    const statuses = await withinWallMs(writeLanes(w, LANES, PER_LANE, async () => {
      if (deleted) return;
      const v = await query(w, 'A');
      if (v.inflowHeldWrites > 0) { await ok(w, 'A', { op: 'delete', pairId: PAIR }); deleted = true; }
    }), 10_000, () => 'host writes held by the deleted pair never completed');
    expect(deleted).toBe(true);
    expect(statuses).toEqual({ ok: LANES * PER_LANE });
    expect(w.definitionInformation('A')).toEqual([]);
    await w.close();
  });

  it('cascade (embodiment 1, P →sync I →async R): I holds the synchronous copies\' acknowledgements, so P\'s host is paced to the I→R link and both pairs stay in duplex', async () => {
    const sys = (name: string, id: number) => ({ name, id, cacheSlots: 64,
      lvols: [{ name: `data${name}`, kind: 'data' as const, sizeBytes: 1024 * 1024 }, { name: `jnl${name}`, kind: 'journal' as const, sizeBytes: JOURNAL_BYTES }] });
    const link = (name: string, a: string, b: string, bandwidthMBps: number) => ({ name, a, b, distanceKm: 10, bandwidthMBps, jitterUs: 0, paths: [{ extraDelayUs: 0 }] });
    const w = new SimWorld({ name: 'P–I–R', systems: [sys('P', 0), sys('I', 1), sys('R', 2)],
      links: [link('S1', 'P', 'I', 100), link('S2', 'I', 'R', LINK_MBPS)], hosts: [{ name: 'hostA', storage: 'P', port: 0 }], hostLinkUs: 10 }, 11);
    await ok(w, 'P', { op: 'create', initialCopy: 'none', step: 'S100', pair: { pairId: 1, localLvol: 0, remoteStorageId: 1, remoteLvol: 0, copyType: 'sync', fence: 'data' } });
    await ok(w, 'I', { op: 'create', initialCopy: 'none', step: 'S110', pair: { pairId: PAIR, localLvol: 0, remoteStorageId: 2, remoteLvol: 0, copyType: 'async', fence: 'never',
      journalLvol: 1, remoteJournalLvol: 1, inflowControl: true } });
    const view = async (system: string, pairId: number) => (await ok(w, system, { op: 'query', pairId })).pair!;
    let maxUsage = 0, maxHeld = 0;
    const states = new Set<string>();
    const t0 = w.nowUs();
    const statuses = await writeLanes(w, LANES, PER_LANE, async () => {
      const [sync, async] = [await view('P', 1), await view('I', PAIR)];
      states.add(`${sync.state}/${async.state}`);
      maxUsage = Math.max(maxUsage, async.journalUsagePercent);
      maxHeld = Math.max(maxHeld, async.inflowHeldWrites);
    });
    const elapsedS = (w.nowUs() - t0) / 1e6;
    expect(statuses).toEqual({ ok: LANES * PER_LANE });
    expect([...states]).toEqual(['duplex/duplex']); // no synchronous copy timed out while its acknowledgement was held
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(LANES);
    expect(maxUsage).toBeLessThan(JOURNAL_HIGH_WATER_PERCENT + 3);
    const pacedS = (LANES * PER_LANE * 4096 - (JOURNAL_HIGH_WATER_PERCENT / 100) * JOURNAL_BYTES) / (LINK_MBPS * 1e6);
    expect(elapsedS).toBeGreaterThan(0.9 * pacedS);
    expect(elapsedS).toBeLessThan(1.2 * pacedS);
    const drain0 = w.nowUs();
    let v = await view('I', PAIR);
    while (v.journalNewestSeq > v.journalAppliedSeq && w.nowUs() - drain0 < 30_000_000) { await w.sleep(10_000); v = await view('I', PAIR); }
    expect(v.journalNewestSeq - v.journalAppliedSeq).toBe(0);
    expect(Buffer.compare(w.volume('P', 0), w.volume('R', 0))).toBe(0);
    await w.close();
  });

  it('bad input: inflow control on a synchronous pair, in snapshot mode, or not a boolean is refused by name and creates nothing', async () => {
    const w = new SimWorld(twoSystems(), 3);
    const tries: Array<[Command, RegExp]> = [
      [withInflow(createCommand('sync', 'full'), true), /inflow control .* journal mode only/],
      [{ ...withInflow(createCommand('async', 'full'), true), pair: { ...(withInflow(createCommand('async', 'full'), true) as Extract<Command, { op: 'create' }>).pair, asyncMode: 'snapshot' } } as Command, /inflow control .* journal mode only/],
      [withInflow(createCommand('async', 'full'), 'yes'), /inflow control must be true or false, not 'yes'/],
    ];
    for (const [cmd, why] of tries) {
      const r = await w.command('A', cmd);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toMatch(why);
      expect(w.definitionInformation('A')).toEqual([]);
      expect(w.definitionInformation('B')).toEqual([]);
    }
    await w.close();
  });
});
