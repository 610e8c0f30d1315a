// The benchmark study's machinery on the sim runtime (virtual time, so the figures are exact, not noisy):
// cells agree with the physics of the links, the recovery point means what it says, the bandwidth-limited case
// fills the journal and resynchronises, and the charts render. No wall-clock time is asserted.

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { bandwidthLimited, rpoAtOfferedLoad } from '../bench/study/bandwidth.ts';
import { formPairs, hungCellState, roundTripUs, runCell, studyTopology, type CellResult } from '../bench/study/cells.ts';
import { createWorld } from '../harness/runtimes.ts';
import { DATA_LVOL } from '../harness/topology.ts';
import { iopsVsDistance, rpoOverTime, syncShareVsDistance, toSvg } from '../bench/study/charts.ts';
import { compare, modelFor } from '../bench/study/model.ts';
import { withinWallMs } from '../harness/within-wall-ms.ts';
import { main as bench, runCells, type StudyResult } from '../bench/study.ts';

const SIM_WINDOW = { warmupUs: 20_000, measureUs: 50_000, maxWrites: 600, minWrites: 200 };

describe('benchmark study (sim runtime)', () => {
  it('S100 sync pair: QD 1 latency is the 0 km service time plus 2 × 5 µs/km × distance, and IOPS follow QD / (service + round trip)', async () => {
    const cells: CellResult[] = [];
    for (const distanceKm of [0, 100, 1000]) for (const queueDepth of [1, 8]) {
      cells.push(await runCell({ runtime: 'sim', scheme: 'sync', distanceKm, queueDepth, blockBytes: 4096 }, SIM_WINDOW));
    }
    const at = (d: number, qd: number) => cells.find((c) => c.distanceKm === d && c.queueDepth === qd)!;
    const serviceUs = at(0, 1).latencyUs.p50;
    expect(serviceUs).toBeGreaterThanOrEqual(40); // the host line, 20 µs each way, at least
    expect(serviceUs).toBeLessThan(100);
    for (const d of [100, 1000]) {
      expect(roundTripUs(d)).toBe(10 * d);
      const expectedUs = serviceUs + roundTripUs(d);
      expect(Math.abs(at(d, 1).latencyUs.p50 - expectedUs)).toBeLessThanOrEqual(2 + expectedUs / 1000); // HdrHistogram keeps 3 digits
      for (const qd of [1, 8]) {
        const cmp = compare(at(d, qd), cells)!;
        expect(cmp.model.bound).toBe('round trip');
        expect(Math.abs(cmp.iopsError)).toBeLessThan(0.05);
      }
    }
    expect(Math.abs(compare(at(0, 8), cells)!.iopsError)).toBeLessThan(0.05); // on sim 0 km is physics too
    expect(modelFor(at(1000, 8), cells)!.latencyUs).toBeCloseTo(serviceUs + roundTripUs(1000), -1);
    expect(cells.every((c) => Object.keys(c.refused).length === 0)).toBe(true);
  }, 60_000);

  it('S110 async pair: host latency does not depend on distance; the recovery point grows with the round trip', async () => {
    const near = await runCell({ runtime: 'sim', scheme: 'async', distanceKm: 0, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW);
    const far = await runCell({ runtime: 'sim', scheme: 'async', distanceKm: 1000, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW);
    expect(far.latencyUs.p50).toBe(near.latencyUs.p50);
    expect(Math.abs(compare(far, [near, far])!.iopsError)).toBeLessThan(0.01);
    // An entry reaches R one way (5 ms) after it was journaled: the oldest unapplied entry is about that old.
    expect(far.journal!.rpoMsMax).toBeGreaterThanOrEqual(4.5);
    expect(far.journal!.rpoMsMax).toBeLessThan(12);
    expect(near.journal!.rpoMsMax).toBeLessThan(1);
    expect(far.journal!.rpoWritesMax).toBeGreaterThan(near.journal!.rpoWritesMax);
  }, 60_000);

  it('SPEC §5 snapshot pair: host latency does not depend on distance either; the recovery point is about the snapshot interval plus the transfer', async () => {
    const spec = { runtime: 'sim', queueDepth: 1, blockBytes: 4096 } as const;
    const near = await runCell({ ...spec, scheme: 'snapshot', distanceKm: 0 }, SIM_WINDOW);
    const far = await runCell({ ...spec, scheme: 'snapshot', distanceKm: 1000 }, SIM_WINDOW);
    const journal = await runCell({ ...spec, scheme: 'async', distanceKm: 1000 }, SIM_WINDOW);
    expect(far.latencyUs.p50).toBe(near.latencyUs.p50);
    expect(far.latencyUs.p50).toBe(journal.latencyUs.p50); // marking a track costs what journaling a write does here
    expect(Math.abs(compare(far, [near, far])!.iopsError)).toBeLessThan(0.01);
    // The image is of the moment the last applied snapshot was taken: up to one interval (20 ms), plus the
    // transfer (5 ms one way at 1000 km) before the next one lands.
    expect(near.journal!.rpoMsMax).toBeGreaterThanOrEqual(19);
    expect(near.journal!.rpoMsMax).toBeLessThan(25);
    expect(far.journal!.rpoMsMax).toBeGreaterThanOrEqual(near.journal!.rpoMsMax + 4);
    expect(far.journal!.rpoMsMax).toBeGreaterThan(2 * journal.journal!.rpoMsMax); // journal mode: ≈ one way
    expect(far.journal!.rpoWritesMax).toBeGreaterThan(journal.journal!.rpoWritesMax);
  }, 60_000);

  it('SPEC §5 snapshot pair at 64 KiB: a snapshot of the whole data volume fits the study\'s difference volume, so the pair stays in duplex', async () => {
    const c = await runCell({ runtime: 'sim', scheme: 'snapshot', distanceKm: 100, queueDepth: 8, blockBytes: 65536 }, SIM_WINDOW);
    expect(c.journal!.leftDuplexAtMs).toBeNull(); // (with a 64 MiB difference volume: failure suspend, journal full)
    expect(c.journal!.duplexPercent).toBe(100);
    expect(c.journal!.usagePercentMax).toBeGreaterThan(25); // whole snapshots of most of the volume
    expect(c.journal!.usagePercentMax).toBeLessThanOrEqual(60);
  }, 60_000);

  it('S110 async pair with inflow control, offered more than it can drain: it stays in duplex, paced, at the link\'s bandwidth (64 KiB) or one ship window per round trip (4 KiB, far)', async () => {
    const window = { warmupUs: 60_000, measureUs: 200_000, maxWrites: 3_000, minWrites: 1_000 };
    const cells = [
      await runCell({ runtime: 'sim', scheme: 'async', distanceKm: 0, queueDepth: 8, blockBytes: 65536 }, window),
      await runCell({ runtime: 'sim', scheme: 'async', distanceKm: 300, queueDepth: 32, blockBytes: 4096 }, window),
      await runCell({ runtime: 'sim', scheme: 'async', distanceKm: 1000, queueDepth: 32, blockBytes: 4096 }, window),
    ];
    for (const c of cells) {
      expect(c.inflowControl).toBe(true);
      expect([c.journal!.duplexPercent, c.journal!.leftDuplexAtMs]).toEqual([100, null]); // never suspended: paced instead
      expect(c.journal!.overMarkPercent).toBeGreaterThan(50);
      expect(c.journal!.usagePercentMax).toBeLessThan(85);
      const cmp = compare(c, cells)!;
      expect(cmp.model.bound).toBe(c.blockBytes === 65536 ? 'bandwidth' : 'ship window');
      expect(Math.abs(cmp.iopsError)).toBeLessThan(0.05);
      expect(cmp.note).toMatch(/inflow control paced the host for \d+ % of the window/);
    }
    expect(cells[0]!.mbPerS).toBeGreaterThan(950); // of the 1000 MB/s link
    expect(cells[2]!.iops).toBeLessThan(cells[1]!.iops / 2); // 3.3× the round trip: a third of the rate
  }, 60_000);

  it('a pair lost to a stalled emulator thread says so: the cell records each CPU\'s worst lateness (threads), and the note names the stall', async () => {
    const sim = await runCell({ runtime: 'sim', scheme: 'sync', distanceKm: 10, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW);
    expect(sim.cpuLateMaxUs).toBeUndefined(); // virtual time is never late
    const threads = await runCell({ runtime: 'threads', scheme: 'sync', distanceKm: 10, queueDepth: 1, blockBytes: 4096 }, { warmupUs: 200_000, measureUs: 300_000 });
    expect(Object.keys(threads.cpuLateMaxUs ?? {}).sort()).toEqual(['I', 'P']); // the synchronous scheme's two systems
    expect(Object.values(threads.cpuLateMaxUs!).every((us) => Number.isFinite(us) && us >= 0)).toBe(true);
    // The cell a full study measured: R's thread silent for 353 ms, so I declared it lost in the warm-up.
    const journal = { entriesP50: 0, entriesMax: 0, bytesMax: 0, rpoWritesP50: 0, rpoWritesMax: 0, rpoMsP50: 0, rpoMsMax: 0, usagePercentMax: 1,
      duplexPercent: 0, overMarkPercent: 0, leftDuplexAtMs: -815, leftDuplexCause: 'partner lost' };
    const lost = { ...threads, scheme: 'async' as const, journal, cpuLateMaxUs: { P: 9_000, I: 14_602, R: 353_510 } };
    expect(compare(lost, [lost])!.note).toMatch(/left duplex 815 ms before the window .*partner lost.*the emulator stalled: R's CPU dispatched an event 354 ms late, longer than the 300 ms partner timeout/);
    const notStalled = { ...lost, cpuLateMaxUs: { P: 9_000, I: 14_602, R: 120_000 } };
    expect(compare(notStalled, [notStalled])!.note).not.toMatch(/stalled/);
  }, 60_000);

  it('the error of a cell whose host writes never complete names what it left behind: every system\'s pairs, journals and (threads) CPU', async () => {
    for (const runtime of ['sim', 'threads'] as const) {
      const world = await createWorld(runtime, studyTopology('async', { distanceKm: 10 }), 1, { prefaultMemory: false });
      try {
        await formPairs(world, 'async', { inflowControl: true });
        for (let i = 0; i < 20; i++) expect((await world.hostIo('100I', { op: 'write', lvol: DATA_LVOL, lba: i, blocks: 1, data: new Uint8Array(4096) })).status).toBe('ok');
        const state = hungCellState(world);
        expect(state).toMatch(/^I: pair 2 source duplex applied \d+, journal 1: \d+ entries( \(\d+–\d+\))?, \d+ % full/);
        expect(state).toMatch(/R: pair 2 destination duplex applied \d+, journal 1: /);
        if (runtime === 'threads') expect(state).toMatch(/R: .*CPU late max \d+ ms, \d+ frames lost, \d+ ring-full retries, host I\/Os \d+ taken \d+ answered/);
        else expect(state).not.toMatch(/CPU late|hosts:/);
        if (runtime === 'threads') {
          // And the hosts' side, with one write outstanding (its completion cannot be taken before this returns).
          const write = world.hostIo('100I', { op: 'write', lvol: DATA_LVOL, lba: 99, blocks: 1, data: new Uint8Array(4096) });
          expect(hungCellState(world)).toMatch(/; hosts: (.*; )?100I: 1 outstanding, 0 submissions waiting, submission ring \d+ B, completion ring \d+ B \((no completion queued|oldest completion visible -?\d+ µs from now)\)(; .*)?; pump (running|asleep for \d+ ms), rescued 0 times by its watchdog, main doorbell \d+$/);
          expect((await write).status).toBe('ok');
        }
      } finally {
        await world.close();
      }
    }
  }, 30_000);

  it('a cell that fails is listed with its error, the others still run, and the report says which did not finish', async () => {
    const spec = (distanceKm: number) => ({ runtime: 'sim' as const, scheme: 'sync' as const, distanceKm, queueDepth: 1, blockBytes: 4096 });
    const ran: number[] = [];
    const { cells, failed } = await runCells([spec(10), spec(100), spec(1000)], async (s) => {
      ran.push(s.distanceKm);
      if (s.distanceKm === 100) throw new Error('study: cell sim sync 100 km QD 1 4 KiB: host writes still outstanding 60 s after the load stopped; I: pair 1 destination duplex applied 0');
      return runCell(s, SIM_WINDOW);
    });
    expect(ran).toEqual([10, 100, 1000]);
    expect(cells.map((c) => c.distanceKm)).toEqual([10, 1000]);
    expect(failed).toEqual([{ ...spec(100), error: expect.stringMatching(/host writes still outstanding .* I: pair 1 destination duplex/) }]);
    const dir = mkdtempSync(join(tmpdir(), 'rclab-failed-'));
    const file = join(dir, 'in.json');
    const committed = JSON.parse(readFileSync('bench/results/2026-12-07-linux-x64-2cpu-quick.json', 'utf8'));
    writeFileSync(file, JSON.stringify({ ...committed, failedCells: failed }));
    expect(await bench(['--from', file, '--out', dir])).toBe(0);
    expect(readFileSync(join(dir, '2026-12-07-linux-x64-2cpu-quick.md'), 'utf8'))
      .toMatch(/\*\*1 cell\(s\) did not finish\*\*, and are left out of the tables, the model and the charts:\n\n- sim sync 100 km QD 1 4 KiB: study: cell .*host writes still outstanding/);
  }, 60_000);

  it('a synchronous cell slower than the model by its last hop\'s lateness says so, with the lateness the CPUs and the host measured (threads)', async () => {
    const threads = await runCell({ runtime: 'threads', scheme: 'sync', distanceKm: 100, queueDepth: 1, blockBytes: 4096 }, { warmupUs: 200_000, measureUs: 300_000 });
    expect(Object.keys(threads.dispatchLateUs ?? {}).sort()).toEqual(['I', 'P']);
    expect(threads.dispatchLateUs!.I!.frame).toBeGreaterThanOrEqual(0);
    expect(threads.dispatchLateUs!.P!.host).toBeGreaterThanOrEqual(0);
    expect(threads.hostPickupLateUs).toBeGreaterThanOrEqual(0); // the host's own lateness, measured by the world
    // A full study's cells (threads, sync, 4 KiB, QD 1): 10 km fits the service time (90 µs), 100 km is 10 % slow.
    const cell = (distanceKm: number, iops: number, ackLate: number, pickup: number): CellResult => ({
      ...threads, distanceKm, iops, latencyUs: { ...threads.latencyUs, mean: 1e6 / iops }, cpuUsPerWrite: 500, cores: 2, // 0.4 of 2 cores
      dispatchLateUs: { P: { frame: ackLate, host: 300 }, I: { frame: 300, host: 0 } }, hostPickupLateUs: pickup,
    });
    expect(threads.hostTimes).toBe(true); // the host issued each write at its previous completion's time
    const near = cell(10, 5_263, 5, 5), far = cell(100, 812, 120, 40); // 1,232 µs per write against the model's 1,090
    const why = compare(far, [near, far])!;
    expect(why.model.bound).toBe('round trip');
    expect(why.iopsError).toBeLessThan(-0.05);
    // The host's own pickup (40 µs) is in neither this write nor the next: only the acknowledgement's lateness counts.
    expect(why.why).toMatch(/late last hop: the acknowledgement reached P's CPU 120 µs after it was due, on average: 100 µs per write that no flight absorbs \(the host line takes 20\), against 142 µs per write over the model/);
    expect(compare(cell(100, 812, 30, 200), [near, cell(100, 812, 30, 200)])!.why).not.toMatch(/late last hop/);
    // Results from before hostTimes: the host's pickup was in every write, and is counted with the acknowledgement's.
    const { hostTimes: _, ...before } = cell(100, 812, 70, 40);
    expect(compare(before, [near, before])!.why).toMatch(/late last hop: the acknowledgement reached P's CPU 70 µs after it was due and the host took the completion 40 µs after it was visible, on average: 90 µs per write that no flight absorbs \(the host line takes 20\), against 142 µs per write over the model/);
    // The request's lateness at P and the copy's at I (300 µs each here) are absorbed in flight: they are not the reason.
    const punctual = cell(100, 812, 30, 20); // 10 µs of 142
    expect(compare(punctual, [near, punctual])!.why).not.toMatch(/late last hop/);
    // With the cores full, frames wait for a busy CPU: that is named, and their lateness is not called the last hop's.
    const busy = { ...far, cpuUsPerWrite: 2_200 }; // 1.8 of 2 cores
    expect(compare(busy, [near, busy])!.why).toMatch(/the cores were full \(1\.8 of 2 cores busy/);
    expect(compare(busy, [near, busy])!.why).not.toMatch(/late last hop/);
    // An asynchronous cell under its distance-independent figure while the process kept the cores full says so.
    expect(threads.cores).toBeGreaterThan(0);
    const async = (distanceKm: number, iops: number, cpuUsPerWrite: number): CellResult =>
      ({ ...threads, scheme: 'async', distanceKm, iops, cpuUsPerWrite, cores: 2, journal: undefined, dispatchLateUs: undefined });
    const others = [async(10, 10_000, 150), async(100, 10_000, 150)];
    const full = async(1000, 8_000, 230); // 1.84 of 2 cores
    expect(compare(full, [...others, full])!.why).toMatch(/the cores were full \(1\.8 of 2 cores busy, 230 CPU µs per write, every thread together\): the emulator itself limited this cell/);
    // Snapshot cells with the cores full in the whole row: IOPS follow the CPU each host write costs.
    const snap = (distanceKm: number, iops: number, cpuUsPerWrite: number): CellResult =>
      ({ ...threads, scheme: 'snapshot', blockBytes: 65536, queueDepth: 8, distanceKm, iops, cpuUsPerWrite, cores: 2, journal: undefined, dispatchLateUs: undefined });
    const row = [snap(10, 10_300, 187), snap(100, 13_100, 147), snap(300, 19_700, 97), snap(1000, 25_000, 76)];
    expect(compare(row[3]!, row)!.why).toMatch(/CPU per write: this cell spent 76 CPU µs per host write against the median 122 of its row \(the distances at this queue depth\), and with the cores full the same cores did more writes/);
    expect(compare(row[0]!, row)!.why).toMatch(/the cores were full .*CPU per write: this cell spent 187 CPU µs per host write against the median 122 .* did fewer writes/);
    const unexplained = snap(1000, 25_000, 150); // faster, yet no cheaper per write: not the reason
    expect(compare(unexplained, [...row.slice(0, 3), unexplained])!.why).not.toMatch(/CPU per write/);
    const idle = async(1000, 8_000, 100); // 0.8 of 2 cores: something else
    expect(compare(idle, [...others, idle])!.why).not.toMatch(/cores were full/);
    // A cell in which the host path's watchdog had to wake the host names it (none did in the cell measured here).
    expect(threads.hostPumpRescues).toBeUndefined();
    expect(compare(idle, [...others, idle])!.why).not.toMatch(/wake-up/);
    const rescued = { ...idle, hostPumpRescues: 2 };
    expect(compare(rescued, [...others, rescued])!.why).toMatch(/the host missed 2 wake-ups of its completions' doorbell, each ended by its watchdog/);
  }, 60_000);

  it('--from re-renders a results file with this build\'s model; cells from before cores were recorded get the study machine\'s', async () => {
    const committed = JSON.parse(readFileSync('bench/results/2026-12-07-linux-x64-2cpu-quick.json', 'utf8')) as { cpus: string; cells: CellResult[] };
    for (const c of committed.cells) delete c.cores;
    const dir = mkdtempSync(join(tmpdir(), 'rclab-rerender-'));
    const file = join(dir, 'in.json');
    writeFileSync(file, JSON.stringify(committed));
    expect(await bench(['--from', file, '--out', dir])).toBe(0);
    const out = JSON.parse(readFileSync(join(dir, '2026-12-07-linux-x64-2cpu-quick.json'), 'utf8')) as { cells: CellResult[] };
    const threads = out.cells.filter((c) => c.runtime === 'threads');
    expect(threads.length).toBeGreaterThan(0);
    expect(threads.every((c) => c.cores === Number.parseInt(committed.cpus, 10))).toBe(true);
    const md = readFileSync(join(dir, '2026-12-07-linux-x64-2cpu-quick.md'), 'utf8');
    expect(md).toMatch(/of 2 cores busy, \d+ CPU µs per write/);
    // Synchronous against asynchronous, from the same cells: the fitted µs per km on each runtime, the share tables.
    expect(md.match(/^\*\*(threads|sim)\*\*: latency a synchronous pair adds per km \(QD 1 p50 over 0, 10, 100, 1000 km, least squares\): 4 KiB \*\*\d+\.\d\d µs\/km\*\*/gm)).toHaveLength(2);
    expect(md.match(/^\| 32 \| [\d.]+ \([+−][\d.]+ ms\) \| [\d.]+ \([+−][\d.]+ ms\) \| [\d.]+ \([+−][\d.]+ ms\) \| [\d.]+ \([+−][\d.]+ ms\) \| (≈ [\d,]+ km|beyond [\d,]+ km|under half already at \d+ km) \|$/gm)).toHaveLength(2);
    // The link sweep: its table (the committed quick run swept 3 bandwidths × 2 loss rates) and its chart.
    expect(md).toMatch(/## The link sweep: 4 KiB writes at 50 % of the link's bandwidth, 100 km, 32 MiB journal \(sim\)/);
    // (The last column, delivered at 150 % of the link, is – in results from before it was measured.)
    expect(md.match(/^\| (0\.25|4|16) \| (0\.0|1\.0) \| [\d.]+ \| [\d.]+ \| .* \| duplex \| (–|[\d.]+ \(\d+ %\)) \|$/gm)).toHaveLength(6);
    expect(readFileSync(join(dir, '2026-12-07-linux-x64-2cpu-quick-rpo-link-sweep.svg'), 'utf8')).toMatch(/series: 1 % loss; stat: max/);
    expect(await bench(['--from'])).toBe(2); // refused by name: no file
  }, 60_000);

  it('a matrix of one\'s own (--distances, --queue-depths, --schemes, --matrix-only): only those cells, files named -custom, the comparison at those distances', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rclab-custom-'));
    const argv = ['--quick', '--runtimes', 'sim', '--distances', '35,0', '--queue-depths', '1', '--schemes', 'sync,async', '--matrix-only', '--out', dir];
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await bench(argv)).toBe(0);
    } finally {
      log.mockRestore();
    }
    const named = (suffix: string) => join(dir, readdirSync(dir).find((f) => f.endsWith(suffix))!);
    const out = JSON.parse(readFileSync(named('-custom-quick.json'), 'utf8')) as StudyResult;
    expect(out.custom).toBe(true);
    expect(out.matrix).toMatchObject({ distancesKm: [0, 35], queueDepths: [1], blockBytes: [4096], schemes: ['sync', 'async'] });
    expect(out.cells.map((c) => `${c.scheme} ${c.distanceKm}`).sort()).toEqual(['async 0', 'async 35', 'sync 0', 'sync 35']);
    expect(out.emulator).toBeUndefined();
    expect(out.offeredLoad).toEqual([]);
    expect(out.bandwidthLimited).toEqual([]);
    const md = readFileSync(named('-custom-quick.md'), 'utf8');
    expect(md).toMatch(/^# Benchmark study, .*, a matrix of one's own, the matrix only \(quick\)$/m);
    expect(md).toMatch(/QD 1 p50 over 0, 35 km, least squares\): 4 KiB \*\*10\.0\d µs\/km\*\*/);
    expect(md).toMatch(/^\| QD \| 0 km \| 35 km \| half the IOPS at \|$/m);
    expect(md).toMatch(/A matrix-only run/);
    expect(md).not.toMatch(/## The emulator's own speed|## Recovery point against offered load|## Bandwidth-limited/);
    // The study's own matrix with --matrix-only is named -custom too: it never replaces a full study's files.
    const again = mkdtempSync(join(tmpdir(), 'rclab-custom-'));
    const { custom: _custom, ...matrixOnly } = out;
    writeFileSync(join(again, 'in.json'), JSON.stringify(matrixOnly));
    expect(await bench(['--from', join(again, 'in.json'), '--out', again])).toBe(0);
    expect(readdirSync(again).filter((f) => f.endsWith('.md'))).toEqual([expect.stringMatching(/-custom-quick\.md$/)]);
    expect(readFileSync(join(again, readdirSync(again).find((f) => f.endsWith('.md'))!), 'utf8')).toMatch(/^# Benchmark study, [^,]+, [^,]+, the matrix only \(quick\)$/m);
  }, 60_000);

  it('a matrix of one\'s own over slower links (--link-mbps): every link at that bandwidth, and the model bounds 64 KiB writes by it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rclab-custom-'));
    const argv = ['--quick', '--runtimes', 'sim', '--distances', '0,100', '--queue-depths', '1,8', '--blocks', '64', '--schemes', 'sync,async', '--link-mbps', '12.5', '--matrix-only', '--out', dir];
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await bench(argv)).toBe(0);
    } finally {
      log.mockRestore();
    }
    const json = readdirSync(dir).find((f) => f.endsWith('-custom-quick.json'))!;
    const out = JSON.parse(readFileSync(join(dir, json), 'utf8')) as StudyResult;
    expect(out.cells).toHaveLength(8);
    const linkIops = 12.5e6 / 65536; // 190.7 writes of 64 KiB per second
    for (const c of out.cells.filter((x) => x.queueDepth === 8)) {
      expect(c.linkMBps).toBe(12.5);
      expect(Math.abs(c.iops / linkIops - 1)).toBeLessThan(0.05);
    }
    // The synchronous cells are held to the link's bandwidth, not to the round trip (8 / (S + 1 ms) would be ~7,000/s).
    for (const c of out.cells.filter((x) => x.scheme === 'sync' && x.queueDepth === 8)) {
      expect(c.model!.iops).toBeLessThanOrEqual(linkIops * 1.000001); // not the round trip's 8 / (S + RTT), thousands a second
      // The model's bandwidth term is this link's: a cell that had somehow done more is held to it.
      const { model: _m, ...cell } = c;
      expect(modelFor({ ...cell, iops: 10 * linkIops }, out.cells.map((x) => (x === c ? { ...cell, iops: 10 * linkIops } : x)))).toMatchObject({ bound: 'bandwidth', iops: expect.closeTo(linkIops, 6) });
    }
    const md = readFileSync(join(dir, json.replace(/\.json$/, '.md')), 'utf8');
    expect(md).toMatch(/^Links: one path, no jitter, 12\.5 MB\/s, 5 µs\/km one way;/m);
  }, 60_000);

  it('a matrix of one\'s own refuses a bad axis by name and runs nothing', async () => {
    const errors: string[] = [];
    const err = vi.spyOn(console, 'error').mockImplementation((m: string) => { errors.push(m); });
    try {
      for (const [argv, message] of [
        [['--distances', '-5'], /--distances: '-5' is not a distance in km from 0 to 20000/],
        [['--distances', '30000'], /--distances: '30000' is not a distance in km/],
        [['--distances', '10,,20'], /--distances needs a comma-separated list, got '10,,20'/],
        [['--distances'], /--distances needs a comma-separated list, got ''/],
        [['--queue-depths', '0'], /--queue-depths: '0' is not a queue depth from 1 to 256/],
        [['--queue-depths', '1.5'], /--queue-depths: '1.5' is not a queue depth/],
        [['--blocks', '6'], /--blocks: '6' is not a block size in KiB: a multiple of 4 from 4 to 1024/],
        [['--blocks', '2048'], /--blocks: '2048' is not a block size in KiB/],
        [['--schemes', 'sync,mirror'], /--schemes: 'mirror' is not a scheme \(sync, async, snapshot, cascade\)/],
        [['--queue-depths', '8,8'], /--queue-depths: '8' is given twice/],
        [['--link-mbps', '0'], /--link-mbps: '0' is not a link bandwidth in MB\/s from 1 to 100,000/],
        [['--link-mbps', '10,20'], /--link-mbps takes one bandwidth \(one run per bandwidth\), got 2/],
      ] as const) {
        errors.length = 0;
        expect(await bench([...argv])).toBe(2);
        expect(errors.join('\n')).toMatch(message);
      }
    } finally {
      err.mockRestore();
    }
  });

  it('RPO against offered load: below the link\'s bandwidth the journal stays nearly empty; above it the journal and the RPO grow', async () => {
    const below = await rpoAtOfferedLoad('sim', 0.5, 1_000_000);
    const above = await rpoAtOfferedLoad('sim', 1.25, 1_000_000);
    expect(below.journalUsagePercentMax).toBeLessThan(2);
    expect(below.rpoMsMax).toBeLessThan(20);
    expect(above.journalUsagePercentMax).toBeGreaterThan(5);
    expect(above.rpoMsMax).toBeGreaterThan(5 * below.rpoMsMax);
    expect(Math.abs(below.achievedMBps - below.offeredMBps) / below.offeredMBps).toBeLessThan(0.05);
  }, 60_000);

  it('bandwidth-limited: the journal fills, the pair goes to failure suspend (journal full) without refusing a write, the resync copies the differences, duplex again, RPO back to 0', async () => {
    const run = await bandwidthLimited('sim');
    expect(run.journalFullAtMs).not.toBeNull();
    expect(run.resyncStartMs).not.toBeNull();
    expect(run.duplexAgainAtMs).toBeGreaterThan(run.resyncStartMs!);
    expect(run.tracksCopied).toBeGreaterThan(0);
    expect(run.refusedWrites).toBe(0);
    expect(run.events.map((e) => e.what).join('\n')).toMatch(/failure suspend \(journal full\)/);
    const during = run.series.filter((s) => s.tMs >= run.journalFullAtMs! && s.state !== 'duplex');
    expect(during.length).toBeGreaterThan(10);
    for (let i = 1; i < during.length; i++) expect(during[i]!.rpoMs).toBeGreaterThanOrEqual(during[i - 1]!.rpoMs); // frozen image: RPO only grows
    expect(run.series.at(-1)!.rpoMs).toBe(0);
    expect(run.series.at(-1)!.state).toBe('duplex');
    const svg = await toSvg(rpoOverTime(run));
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('failure suspend');
  }, 60_000);

  it('a cell whose host writes never complete stops the study with its name instead of leaving it idle', async () => {
    await expect(withinWallMs(new Promise(() => {}), 20, () => 'study: cell sim async 0 km: host writes still outstanding')).rejects.toThrow(/cell sim async 0 km: host writes still outstanding/);
    await expect(withinWallMs(Promise.resolve(7), 20, () => 'never')).resolves.toBe(7);
  });

  it('charts: IOPS against distance renders the measured and the model series', async () => {
    const cells = [
      await runCell({ runtime: 'sim', scheme: 'sync', distanceKm: 0, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW),
      await runCell({ runtime: 'sim', scheme: 'sync', distanceKm: 100, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW),
    ];
    const svg = await toSvg(iopsVsDistance(cells, 'sim', 4096));
    expect(svg).toMatch(/^<svg/);
    for (const text of ['Host write IOPS against link length', 'synchronous P→I only', 'model', 'measured']) expect(svg).toContain(text);
    // The synchronous share needs asynchronous cells at the same distances: none here, so no chart.
    expect(syncShareVsDistance(cells, 'sim')).toBeNull();
    cells.push(await runCell({ runtime: 'sim', scheme: 'async', distanceKm: 0, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW));
    cells.push(await runCell({ runtime: 'sim', scheme: 'async', distanceKm: 100, queueDepth: 1, blockBytes: 4096 }, SIM_WINDOW));
    const share = syncShareVsDistance(cells, 'sim')!;
    const points = (share as unknown as { data: { values: Array<{ qd: string; distanceKm: number; share: number }> } }).data.values;
    expect(points.map((p) => [p.qd, p.distanceKm])).toEqual([['QD 1', 0], ['QD 1', 100]]);
    expect(points[1]!.share).toBeCloseTo(cells[1]!.iops / cells[3]!.iops, 10);
    const shareSvg = await toSvg(share);
    for (const text of ['Synchronous IOPS as a share of asynchronous (journal) IOPS', '4 KiB writes', 'QD 1', 'synchronous ÷ asynchronous IOPS']) expect(shareSvg).toContain(text);
  }, 30_000);
});
