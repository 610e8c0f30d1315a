// SPEC §5 (¶0163–0167): asynchronous copying by difference snapshots. The source takes the tracks written since
// the last snapshot into its difference volume at a set interval and ships them; the destination keeps what it
// receives in its own difference volume and applies a snapshot only whole; host writes never wait for a transfer.

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Command, PairView } from '../firmware/commands.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { runScenario } from '../harness/scenarios.ts';
import { SimDebugger } from '../harness/debugger.ts';
import { allScenarioNames, formatSummary, sweep, type SweepOptions } from '../harness/sweep.ts';
import { A as A_ID, B, ok, PAIR, query, twoSystems, waitFor, write } from './fixtures.ts';
import { Controller } from '../firmware/controller.ts';
import { isConsistentDestination, readDefinitionInformation } from '../firmware/definition-info.ts';
import { PairState } from '../firmware/pair-state.ts';
import { StubHardware } from './stub-hardware.ts';

const BLOCK = 4096, TRACK_BLOCKS = 16;

function snapshotCreate(extra: Record<string, unknown> = {}): Command {
  return {
    op: 'create', initialCopy: 'full',
    pair: { pairId: PAIR, localLvol: 0, remoteStorageId: B, remoteLvol: 0, copyType: 'async', fence: 'never', journalLvol: 1, remoteJournalLvol: 1,
      asyncMode: 'snapshot', snapshotIntervalUs: 50_000, ...extra },
  } as Command;
}

async function duplexWorld(mode: 'journal' | 'snapshot', o: Parameters<typeof twoSystems>[0] = {}, extra: Record<string, unknown> = {}): Promise<SimWorld> {
  const w = new SimWorld(twoSystems(o), 1);
  await ok(w, 'A', snapshotCreate({ asyncMode: mode, ...(mode === 'journal' ? { snapshotIntervalUs: undefined } : {}), ...extra }));
  await waitFor(w, 'A', 'duplex');
  await waitFor(w, 'B', 'duplex');
  return w;
}

const fillOf = (vol: Uint8Array, block: number) => vol[block * BLOCK]!;

describe('SPEC §5 difference snapshots', () => {
  it('§5 a snapshot is applied whole: B never holds one of its writes without the other (journal mode does, for a while)', async () => {
    // A slow link (1 MB/s): each 64 KiB track takes 65 ms on the wire, so a two-track transfer is long under way.
    const halfSeen: Record<string, number> = {};
    for (const mode of ['journal', 'snapshot'] as const) {
      // Written right after the snapshot the formation copy ended with: the next snapshot, 50 ms on, holds both.
      const w = await duplexWorld(mode, { bandwidthMBps: 1 });
      expect((await write(w, 'hostA', 0, 0x11, TRACK_BLOCKS)).status).toBe('ok');
      await w.sleep(1_000); // (journal mode: past the batching window, so each write ships in a frame of its own)
      expect((await write(w, 'hostA', 5 * TRACK_BLOCKS, 0x22, TRACK_BLOCKS)).status).toBe('ok');
      let half = 0, both = false;
      for (let waitedUs = 0; waitedUs < 2_000_000 && !both; waitedUs += 500) {
        await w.sleep(500);
        const vol = w.volume('B', 0);
        const first = fillOf(vol, 0) === 0x11, second = fillOf(vol, 5 * TRACK_BLOCKS) === 0x22;
        if (first !== second) half++;
        both = first && second;
      }
      expect(both, `${mode}: B got both writes`).toBe(true);
      halfSeen[mode] = half;
      await w.close();
    }
    expect(halfSeen.snapshot).toBe(0);
    expect(halfSeen.journal).toBeGreaterThan(50); // ≈ 65 ms of 0.5 ms samples with only the first write applied
  });

  it('§5 host writes never wait for a transfer: at 1000 km a write completes in the host line time, as in journal mode', async () => {
    const w = await duplexWorld('snapshot', { distanceKm: 1000, bandwidthMBps: 100 });
    const t0 = w.nowUs();
    expect((await write(w, 'hostA', 3, 0x33)).status).toBe('ok');
    const latencyUs = w.nowUs() - t0;
    expect(latencyUs).toBeLessThan(1_000); // round trip to B is 10,000 µs
    const v = await query(w, 'A');
    expect(v.snapshotTracksMarked).toBe(1); // only marked: the next snapshot carries it
    expect(v.journalEntries).toBe(0);
    await w.sleep(200_000);
    expect(fillOf(w.volume('B', 0), 3)).toBe(0x33);
    expect((await query(w, 'A')).snapshotTracksMarked).toBe(0);
    await w.close();
  });

  it('§5 the interval is configurable: 10 ms snapshots are taken 10× as often as 100 ms ones, and the recovery point is shorter', async () => {
    const measured: Record<number, { snapshots: number; maxLagUs: number }> = {};
    for (const intervalUs of [10_000, 100_000]) {
      const w = await duplexWorld('snapshot', { bandwidthMBps: 100 }, { snapshotIntervalUs: intervalUs });
      const before = (await query(w, 'A')).snapshots;
      let maxLagUs = 0;
      for (let i = 0; i < 200; i++) { // 1 s of writes, one every 5 ms, over the first 8 tracks
        expect((await write(w, 'hostA', (i * 7) % 128, i & 0xff)).status).toBe('ok');
        maxLagUs = Math.max(maxLagUs, (await query(w, 'A')).journalOldestUnappliedUs);
        await w.sleep(5_000);
      }
      measured[intervalUs] = { snapshots: (await query(w, 'A')).snapshots - before, maxLagUs };
      expect((await query(w, 'A')).asyncMode).toBe('snapshot');
      await w.close();
    }
    expect(measured[10_000]!.snapshots).toBeGreaterThan(80);
    expect(measured[100_000]!.snapshots).toBeLessThanOrEqual(11);
    expect(measured[100_000]!.snapshots).toBeGreaterThanOrEqual(9);
    expect(measured[100_000]!.maxLagUs).toBeGreaterThan(measured[10_000]!.maxLagUs * 3);
  });

  it('§5 a snapshot larger than the difference volume fails the pair (journal full); resync brings every acknowledged write over', async () => {
    // 4 MiB of data volume, 2 MiB of difference volume: a snapshot of every track cannot be frozen whole.
    const w = await duplexWorld('snapshot', { dataBytes: 4 * 1024 * 1024, bandwidthMBps: 100 }, { snapshotIntervalUs: 200_000 });
    for (let t = 0; t < 64; t++) expect((await write(w, 'hostA', t * TRACK_BLOCKS, 0x40 + (t & 0x3f), TRACK_BLOCKS)).status).toBe('ok');
    const failed = await waitFor(w, 'A', 'failure suspend');
    expect(failed.failureCause).toBe('journal full');
    expect(failed.dirtyTracks).toBe(64);
    expect(fillOf(w.volume('B', 0), 0)).not.toBe(0x40); // not one track of the snapshot was applied
    await ok(w, 'A', { op: 'resync', pairId: PAIR });
    await waitFor(w, 'A', 'duplex');
    await ok(w, 'A', { op: 'suspend', pairId: PAIR }); // drain: everything over, then suspend
    await waitFor(w, 'A', 'suspend');
    expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
    await w.close();
  });

  it('§5 S230-style drain with a snapshot in flight: the last snapshot follows it, and B ends identical to A', async () => {
    const w = await duplexWorld('snapshot', { bandwidthMBps: 2 });
    for (let t = 0; t < 4; t++) await write(w, 'hostA', t * TRACK_BLOCKS, 0x50 + t, TRACK_BLOCKS);
    await w.sleep(55_000); // the snapshot of those four tracks, taken at 50 ms, is in flight (≈ 130 ms on this link)
    const inFlight = await query(w, 'A');
    expect(inFlight.snapshotInFlight).toBe(true);
    for (let t = 8; t < 10; t++) await write(w, 'hostA', t * TRACK_BLOCKS, 0x60 + t, TRACK_BLOCKS); // for the last snapshot
    const drained = (await ok(w, 'B', { op: 'drain', pairId: PAIR })).pair as PairView;
    expect(drained.state).toBe('suspending');
    const done = await waitFor(w, 'A', 'suspend', 5_000_000);
    expect(done.dirtyTracks).toBe(0);
    expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
    await w.close();
  });

  it('§5 seed 72 (a snapshot-mode sweep of seeds 61-200): a snapshot whose group has a failed member is not applied in part; the destination keeps the one before, and every check holds', async () => {
    // I's log member (LVOL 2) fails; R's drain at S310 then ships a snapshot to I. The data member took its writes
    // and the log member refused the rest, so I held half a snapshot (a data write without its log write) while
    // its definition information still called it consistent.
    const r = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 72, scale: 0.25, asyncMode: 'snapshot',
      schedule: [{ atUs: 713_339, fault: { kind: 'drive-failure', system: 'I', lvol: 2 }, repairAfterUs: 350_776 }] });
    expect(r.failures).toEqual([]);
    expect(new Set(['P', 'I', 'R'].map((x) => r.volumes[x]![`231${x}`])).size).toBe(1);
  }, 60_000);

  it('§5 a volume that fails in the middle of applying a snapshot (on threads a fault can land mid-event): the destination no longer calls its image consistent', () => {
    const hwA = new StubHardware(A_ID, 4 * 1024 * 1024, 4 * 1024 * 1024), hwB = new StubHardware(B, 4 * 1024 * 1024, 4 * 1024 * 1024);
    const A = new Controller(hwA), Bc = new Controller(hwB);
    A.boot();
    Bc.boot();
    const carry = () => {
      for (let i = 0; i < 20 && hwA.sent.length + hwB.sent.length > 0; i++) {
        for (const f of hwA.sent.splice(0)) Bc.onFrame(A_ID, f.frame);
        for (const f of hwB.sent.splice(0)) A.onFrame(B, f.frame);
      }
    };
    const runTimers = (hw: StubHardware, c: Controller) => { for (const t of hw.timers.splice(0).filter((x) => x.at <= hw.now)) c.onTimer(t.kind, t.arg); };
    A.onCommand(1, { ...snapshotCreate({ snapshotIntervalUs: 20_000 }), initialCopy: 'none' } as Command);
    carry();
    const dB = () => readDefinitionInformation(hwB.controlMemory)[0]!;
    expect(dB().state).toBe(PairState.Duplex);
    expect(isConsistentDestination(dB())).toBe(true);
    // Eight writes on eight tracks make one snapshot; B's data volume fails after taking three of them.
    for (let t = 0; t < 8; t++) A.onHostIo({ tag: t + 1, op: 'write', lvol: 0, lba: t * TRACK_BLOCKS, blocks: 1, data: new Uint8Array(BLOCK).fill(t + 1), port: 0 });
    const write = hwB.disk.write.bind(hwB.disk);
    let applied = 0;
    (hwB.disk as { write: typeof write }).write = (lvol, lba, data) => {
      if (lvol === 0 && ++applied === 4) hwB.disk.failDrive(0);
      write(lvol, lba, data);
    };
    for (let i = 0; i < 10 && dB().state === PairState.Duplex; i++) {
      hwA.now += 20_000;
      hwB.now = hwA.now;
      runTimers(hwA, A);
      carry();
    }
    expect(applied).toBe(4);
    expect(dB().state).toBe(PairState.FailureSuspend);
    expect(dB().failureCause).toBe('drive failure');
    expect(isConsistentDestination(dB())).toBe(false); // three tracks of the snapshot are in it, five are not
  });

  it('§5 bad input: a wrong mode, snapshot mode on a synchronous pair, an interval out of range — refused, nothing defined', async () => {
    const w = new SimWorld(twoSystems(), 1);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ asyncMode: 'bogus' }, /async mode must be journal or snapshot, not 'bogus'/],
      [{ copyType: 'sync', journalLvol: undefined, remoteJournalLvol: undefined }, /snapshot mode is for asynchronous pairs only/],
      [{ snapshotIntervalUs: 10 }, /snapshot interval must be 1000\.\.600000000 µs, not 10/],
      [{ snapshotIntervalUs: 2.5e3 + 0.5 }, /snapshot interval must be/],
    ];
    for (const [extra, re] of cases) {
      const r = await w.command('A', snapshotCreate(extra));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(re);
      expect(w.definitionInformation('A')).toEqual([]);
      expect(w.definitionInformation('B')).toEqual([]);
    }
    await w.close();
  });

  it('§5 every -cycle scenario runs in snapshot mode on sim with every check (prefix consistency included) and all sites identical', async () => {
    for (const name of ['embodiment1-cycle', 'embodiment2-cycle', 'embodiment3-cycle', 'embodiment3-variation-cycle', 'embodiment4-cycle']) {
      const r = await runScenario(name, { runtime: 'sim', seed: 1, asyncMode: 'snapshot' });
      expect(r.failures, name).toEqual([]);
      expect(r.ok, name).toBe(true);
      expect(r.asyncMode).toBe('snapshot');
      expect(r.replay).toContain('--async-mode snapshot');
      expect(r.reports.every((q) => !q.dataLoss), name).toBe(true);
      expect(new Set(Object.values(r.volumes).map((v) => Object.values(v)[0])).size, name).toBe(1);
      // Every asynchronous pair at the end is in snapshot mode.
      const asyncPairs = Object.values(r.pairs).flat().filter((p) => p.copyType === 'async');
      expect(asyncPairs.length, name).toBeGreaterThan(0);
      expect(asyncPairs.every((p) => p.asyncMode === 'snapshot'), name).toBe(true);
    }
  }, 120_000);

  it('§5 embodiment1-cycle in snapshot mode on threads ends with the volumes of the journal-mode run on sim', async () => {
    const threads = await runScenario('embodiment1-cycle', { runtime: 'threads', seed: 1, asyncMode: 'snapshot' });
    expect(threads.failures).toEqual([]);
    expect(threads.reports.map((q) => `${q.step} ${q.dataLoss}`)).toEqual(['S250 false', 'S540 false']);
    const sim = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1 });
    expect(threads.volumes).toEqual(sim.volumes);
  }, 60_000);

  it('§5 rclab debug in snapshot mode: back 200 reaches the recorded digest, and the stepped run ends as a plain one', async () => {
    const recipe = { scenario: 'embodiment1-cycle', seed: 3, scale: 0.25, faults: 'none', asyncMode: 'snapshot' as const, snapshotIntervalUs: 5_000 };
    const plain = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 3, scale: 0.25, asyncMode: 'snapshot', snapshotIntervalUs: 5_000 });
    const d = await SimDebugger.start(recipe);
    try {
      await d.next('S110');
      await d.step(3000);
      const at = d.eventIndex, digest = d.digest();
      await d.step(200);
      expect(await d.back(200)).toMatchObject({ eventIndex: at, digest, verified: true });
      const r = await d.finish();
      expect(r.asyncMode).toBe('snapshot');
      expect(r.traceHash).toBe(plain.traceHash);
      expect(r.replay).toContain('--async-mode snapshot --snapshot-interval-us 5000');
    } finally {
      await d.close();
    }
  }, 120_000);

  it('§5 a sweep in snapshot mode under the default fault profile: 0 violations; the summary and replays carry the mode', async () => {
    const o: SweepOptions = { scenarios: allScenarioNames(), seeds: 6, from: 700, workers: 1, faults: 'default', scale: 0.25, progress: false, asyncMode: 'snapshot' };
    const s = await sweep(o);
    expect(s.seedsRun).toBe(6);
    expect(s.failures.map((f) => `${f.scenario} ${f.seed}: ${f.failures[0]}`)).toEqual([]);
    expect(s.checksPerformed['prefix-consistent']).toBeGreaterThan(0);
    expect(formatSummary(s, o)).toContain('--async-mode snapshot');
  }, 300_000);

  it('§5 rclab run: --snapshot-interval-us needs --async-mode snapshot; a bad mode is refused by name', () => {
    const run = (...args: string[]) => {
      try {
        execFileSync('node', ['harness/rclab.mjs', 'run', 'embodiment1-cycle', '--runtime', 'sim', '--quiet', ...args], { encoding: 'utf8', stdio: 'pipe' });
        return { code: 0, err: '' };
      } catch (e) {
        const x = e as { status: number; stderr: string };
        return { code: x.status, err: x.stderr };
      }
    };
    expect(run('--snapshot-interval-us', '5000')).toMatchObject({ code: 2, err: expect.stringMatching(/--snapshot-interval-us needs --async-mode snapshot/) });
    expect(run('--async-mode', 'both')).toMatchObject({ code: 1, err: expect.stringMatching(/--async-mode.*both.*journal, snapshot/s) });
    expect(run('--async-mode', 'snapshot', '--snapshot-interval-us', '5')).toMatchObject({ code: 2, err: expect.stringMatching(/must be 1000\.\.600000000, not 5/) });
  }, 60_000);
});
