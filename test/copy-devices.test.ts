// Copy devices (¶0168, claim 13): with `copyDevices`, every storage system's copy-data frames (synchronous copies,
// formation copies, journal batches) go through a dedicated device of the hardware — its own bounded queue and
// throughput — before they enter the link; control frames, keepalives and acknowledgements bypass it. The firmware
// is unchanged, so every scenario must behave exactly as designed, and the devices must have done the copying.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../firmware/frames.ts';
import { CopyDevice, COPY_FRAME_TYPES, DEFAULT_COPY_DEVICE } from '../hardware/copy-device.ts';
import type { FrameInFlight } from '../hardware/sim-machine.ts';
import { applyCopyDevices } from '../harness/copy-devices.ts';
import { SimDebugger } from '../harness/debugger.ts';
import { allScenarioNames, formatSummary, shrink, sweep, type SweepOptions } from '../harness/sweep.ts';
import type { SnapshotFile } from '../harness/world-state.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { runScenario, SCENARIOS } from '../harness/scenarios.ts';
import { embodiment1Topology } from '../harness/topology.ts';
import type { World } from '../harness/world.ts';
import { createCommand, ok, twoSystems, waitFor } from './fixtures.ts';

const run = promisify(execFile);
const reportsOf = (r: { reports: Array<{ step: string; dataLoss: boolean }> }) => r.reports.map((x) => `${x.step} ${x.dataLoss ? 'data loss' : 'no data loss'}`);
type Sent = FrameInFlight & { deliverAtUs: number; drop: boolean };

/** Every frame a sim world hands to a link, per sending system. */
function recordFrames(w: World, into: Sent[]): void {
  (w as SimWorld).frameListeners.add((f) => into.push(f));
}

describe('copy devices on the sim runtime: every embodiment 1 and 2 scenario', () => {
  const names = SCENARIOS.map((s) => s.name).filter((n) => n.startsWith('embodiment1-') || n.startsWith('embodiment2-'));
  it('covers the ten scenarios of embodiments 1 and 2', () => expect(names.length).toBe(10));
  for (const name of names) {
    it(`${name}: the same reports as without devices, every check passes, and the devices did all the copying`, async () => {
      // (Scale 0.25, as the sweeps and the claims coverage run them: the same routines and faults, shorter workloads.)
      const plain = await runScenario(name, { runtime: 'sim', seed: 1, scale: 0.25 });
      const sent: Sent[] = [];
      const r = await runScenario(name, { runtime: 'sim', seed: 1, scale: 0.25, copyDevices: true, onWorld: (w) => recordFrames(w, sent) });
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.checks.every((c) => c.ok)).toBe(true);
      expect(reportsOf(r)).toEqual(reportsOf(plain));
      expect(r.replay).toContain('--copy-devices');
      const devices = r.copyDevices!;
      expect(Object.keys(devices).sort()).toEqual(['I', 'P', 'R']);
      // Each copy-data frame on a link went through its sender's device first (handedUs: when the firmware gave it);
      // no control frame, keepalive or acknowledgement did.
      for (const f of sent) expect([f.frameType, f.handedUs !== undefined]).toEqual([f.frameType, COPY_FRAME_TYPES.has(f.frameType)]);
      for (const [system, d] of Object.entries(devices)) {
        const copies = sent.filter((f) => f.from === system && COPY_FRAME_TYPES.has(f.frameType));
        // What the device finished is what entered the links, but for frames whose link was cut while in the device.
        expect(d.frames).toBeGreaterThanOrEqual(copies.length);
        expect(d.bytes).toBeGreaterThanOrEqual(copies.reduce((n, f) => n + f.bytes, 0));
        expect(d.frames - copies.length).toBeLessThanOrEqual(d.frames * 0.05);
        expect(d.busyUs).toBeGreaterThanOrEqual(d.frames * DEFAULT_COPY_DEVICE.setupUs); // R's stays idle where R never copies
        expect(d.maxQueue).toBeLessThanOrEqual(DEFAULT_COPY_DEVICE.queueDepth);
      }
      // P sources the synchronous pair and I the journal: both devices copied.
      expect(devices.P!.frames).toBeGreaterThan(0);
      expect(devices.P!.bytes).toBeGreaterThan(1024 * 1024);
      expect(devices.I!.frames + devices.R!.frames).toBeGreaterThan(0);
    }, 60_000);
  }

  it('embodiment1-cycle: the device at P carried the synchronous copies of every write acknowledged to host P', async () => {
    const sent: Sent[] = [];
    const r = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1, copyDevices: true, onWorld: (w) => recordFrames(w, sent) });
    const syncFromP = sent.filter((f) => f.from === 'P' && f.frameType === FrameType.SyncWrite);
    expect(syncFromP.length).toBeGreaterThan(1000);
    expect(syncFromP.every((f) => f.handedUs !== undefined && f.sentUs > f.handedUs)).toBe(true);
    const journalFromI = sent.filter((f) => f.from === 'I' && f.frameType === FrameType.JournalBatch);
    expect(journalFromI.length).toBeGreaterThan(0);
    expect(r.copyDevices!.I!.bytes).toBeGreaterThanOrEqual(journalFromI.reduce((n, f) => n + f.bytes, 0));
  }, 60_000);

  it('determinism: the same seed gives the same trace hash with devices on, and the devices change the run', async () => {
    const a = await runScenario('embodiment1-double-failure', { runtime: 'sim', seed: 42, copyDevices: true });
    const b = await runScenario('embodiment1-double-failure', { runtime: 'sim', seed: 42, copyDevices: true });
    const plain = await runScenario('embodiment1-double-failure', { runtime: 'sim', seed: 42 });
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.firmwareEvents).toBe(a.firmwareEvents);
    expect(b.volumes).toEqual(a.volumes);
    expect(b.copyDevices).toEqual(a.copyDevices);
    expect(a.traceHash).not.toBe(plain.traceHash);
  }, 60_000);
});

describe('a slow copy device', () => {
  /** A formation copy of 4 MiB (64 tracks) A→B over a fast link (1000 MB/s, 10 km); returns its virtual duration. */
  async function formationCopy(copyDevice?: { throughputMBps: number; queueDepth: number; setupUs?: number }) {
    const t = twoSystems({ bandwidthMBps: 1000, dataBytes: 4 * 1024 * 1024 });
    if (copyDevice) t.systems[0]!.copyDevice = copyDevice;
    const w = new SimWorld(t, 3);
    const sent: Sent[] = [];
    recordFrames(w, sent);
    const start = w.nowUs();
    await ok(w, 'A', createCommand('sync', 'full'));
    const v = await waitFor(w, 'A', 'duplex');
    const durationUs = w.nowUs() - start;
    const stats = w.copyDeviceStats('A');
    await waitFor(w, 'B', 'duplex');
    expect(Buffer.compare(w.volume('A', 0), w.volume('B', 0))).toBe(0);
    await w.close();
    return { durationUs, v, sent, stats };
  }

  it('5 MB/s lengthens a formation copy in virtual time (≥ 4 MiB / 5 MB/s) while control frames are not delayed', async () => {
    const fast = await formationCopy();
    const slow = await formationCopy({ throughputMBps: 5, queueDepth: 8, setupUs: 10 });
    expect(fast.v.lastFormationTracksCopied).toBe(64);
    expect(slow.v.lastFormationTracksCopied).toBe(64);
    expect(fast.stats).toBeNull();
    // 4 MiB at 5 MB/s is 839 ms of serialisation on the device alone; without it the copy takes a few ms.
    expect(slow.durationUs).toBeGreaterThan(839_000);
    expect(slow.durationUs).toBeGreaterThan(20 * fast.durationUs);
    const st = slow.stats!;
    expect(st.frames).toBeGreaterThanOrEqual(64);
    expect(st.bytes).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(st.busyUs).toBeGreaterThan(839_000);
    expect(st.maxQueue).toBeLessThanOrEqual(8);
    expect(st.queueFullWaits).toBeGreaterThan(0); // a 16-track window does not fit a queue of 8: the rest waited
    // Formation-copy frames waited in the device; control frames (state, keepalive, acks) went straight to the link.
    const copies = slow.sent.filter((f) => f.from === 'A' && f.frameType === FrameType.FormationCopy);
    expect(Math.max(...copies.map((f) => f.sentUs - f.handedUs!))).toBeGreaterThan(100_000);
    const control = slow.sent.filter((f) => !COPY_FRAME_TYPES.has(f.frameType));
    const duringCopy = control.filter((f) => f.from === 'A' && f.sentUs > copies[0]!.sentUs && f.sentUs < copies[copies.length - 1]!.sentUs);
    expect(duringCopy.length).toBeGreaterThan(3); // keepalives and state announcements while the device was busy
    for (const f of control) {
      expect(f.handedUs).toBeUndefined();
      expect(f.deliverAtUs - f.sentUs).toBeLessThan(1000); // 10 km: 50 µs of flight, a header's serialisation
    }
  }, 60_000);

  it('the device model: FIFO in order, serialised at its throughput plus set-up, bounded queue with a backlog', () => {
    const d = new CopyDevice<string>({ throughputMBps: 2, queueDepth: 2, setupUs: 5 });
    expect(d.offer(0, 100, 'a')).toBe(55);
    expect(d.offer(10, 100, 'b')).toBe(110);
    expect(d.offer(20, 100, 'c')).toBe(-1); // queue full: waits in the backlog
    expect(d.stats).toMatchObject({ queueFullWaits: 1, maxQueue: 2, queued: 3 });
    expect(d.takeDone(54)).toBeUndefined();
    expect(d.takeDone(55)).toEqual({ item: 'a', doneUs: 55 });
    expect(d.nextDoneUs()).toBe(110);
    expect(d.takeDone(200)).toEqual({ item: 'b', doneUs: 110 });
    expect(d.takeDone(200)).toEqual({ item: 'c', doneUs: 165 }); // admitted at 55, started when b was done
    expect(d.stats).toMatchObject({ frames: 3, bytes: 300, busyUs: 165, queued: 0 });
    d.offer(300, 10, 'x');
    d.clear();
    expect(d.stats).toMatchObject({ framesLost: 1, queued: 0 });
    expect(d.nextDoneUs()).toBe(Infinity);
  });
});

describe('copy devices on the threads runtime', () => {
  it('embodiment1-cycle once with copy devices on: S250, S540 no data loss, every check, and the devices copied', async () => {
    const r = await runScenario('embodiment1-cycle', { runtime: 'threads', seed: 1, copyDevices: true });
    expect(r.failures).toEqual([]);
    expect(reportsOf(r)).toEqual(['S250 no data loss', 'S540 no data loss']);
    const d = r.copyDevices!;
    expect(d.P!.frames).toBeGreaterThan(100);
    expect(d.P!.bytes).toBeGreaterThan(1024 * 1024);
    expect(d.I!.frames).toBeGreaterThan(0);
    expect(d.P!.busyUs).toBeGreaterThan(0);
    expect(d.P!.queued + d.I!.queued).toBe(0);
  }, 120_000);
});

describe('copy device options are refused by name', () => {
  it('runScenario: a bad copyDevices value, and a topology with devices of its own', async () => {
    await expect(runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1, copyDevices: 'yes' as never })).rejects.toThrow(/copyDevices must be true, false or/);
    await expect(runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1, copyDevices: { throughputMBps: 0, queueDepth: 4 } })).rejects.toThrow(/copyDevices\.throughputMBps must be a number > 0/);
    await expect(runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1, copyDevices: { throughputMBps: 10, queueDepth: 0.5 } })).rejects.toThrow(/copyDevices\.queueDepth/);
    const t = embodiment1Topology();
    t.systems[1]!.copyDevice = { throughputMBps: 50, queueDepth: 4 };
    expect(() => applyCopyDevices(t, true)).toThrow(/copyDevices: storage system I .* already has a copy device of its own/);
    const bad = twoSystems();
    bad.systems[0]!.copyDevice = { throughputMBps: 10, queueDepth: -1 };
    expect(() => new SimWorld(bad, 1)).toThrow(/storage system A: copyDevice\.queueDepth must be a whole number ≥ 1/);
  });

  it('rclab run --copy-devices: bad values refused naming the option; a good one runs and replays with it', async () => {
    for (const v of ['fast', '0', '100:0', '1:2:3:4']) {
      const e = await run(process.execPath, ['harness/rclab.mjs', 'run', 'embodiment1-cycle', '--runtime', 'sim', '--copy-devices', v]).then(() => null, (x: { code: number; stderr: string }) => x);
      expect(e, v).not.toBeNull();
      expect(e!.code).toBeGreaterThan(0);
      expect(e!.stderr).toContain('--copy-devices');
    }
    // --save-at keeps the devices in the snapshot's recipe, so `rclab debug --load` replays with them.
    const snap = join(mkdtempSync(join(tmpdir(), 'rclab-cdev-')), 's250.snap');
    await run(process.execPath, ['harness/rclab.mjs', 'run', 'embodiment1-cycle', '--runtime', 'sim', '--scale', '0.25', '--copy-devices', '--save-at', 'S250', snap, '--quiet']);
    expect((unpack(gunzipSync(readFileSync(snap))) as SnapshotFile).recipe.copyDevices).toBe(true);
    const out = JSON.parse((await run(process.execPath, ['harness/rclab.mjs', 'run', 'embodiment1-failback-variant', '--runtime', 'sim', '--scale', '0.25', '--copy-devices', '200', '--json'])).stdout);
    expect(out.ok).toBe(true);
    expect(out.copyDevices.P.frames).toBeGreaterThan(0);
    expect(out.replay).toContain('--copy-devices 200:64:2');
  }, 60_000);
});

describe('copy devices in the debugger, snapshots and sweeps', () => {
  // Slow and shallow, so frames really wait in the devices (queue and backlog) at the points the tests stop at.
  const device = { throughputMBps: 20, queueDepth: 4, setupUs: 5 };
  const recipe = { scenario: 'embodiment1-cycle', seed: 2, scale: 0.25, faults: 'none', copyDevices: device };
  const dir = mkdtempSync(join(tmpdir(), 'rclab-cdev-'));

  /** Steps until P's device holds a full queue and a backlog (a formation copy window waiting in it). */
  async function untilDeviceBusy(d: SimDebugger): Promise<void> {
    const r = await d.stepUntil((x) => { const c = x.copyDevice('P'); return c !== null && c.queue.length === device.queueDepth && c.backlog.length > 0; });
    expect(r.kind).toBe('paused');
  }

  it('S100: stepping holds frames in P\'s device; back 20 reaches the same digest; a stepped run ends as a plain one', async () => {
    const plain = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 2, scale: 0.25, copyDevices: device });
    const d = await SimDebugger.start(recipe);
    try {
      await untilDeviceBusy(d);
      const c = d.copyDevice('P')!;
      expect(c.config).toEqual(device);
      expect(c.queue.every((f, i) => i === 0 || f.doneUs > c.queue[i - 1]!.doneUs)).toBe(true); // FIFO, serialised
      expect(c.queue.map((f) => f.item.frame[0])).toContain(FrameType.FormationCopy); // S100's initial copy P→I
      expect(d.copyDevice('I')).not.toBeNull();
      const at = d.eventIndex, digest = d.digest(), state = d.state();
      await d.step(20);
      expect(d.digest()).not.toBe(digest);
      const b = await d.back(20);
      expect(b).toMatchObject({ eventIndex: at, digest, verified: true });
      expect(d.state().systems.find((s) => s.name === 'P')!.copyDevice).toEqual(state.systems.find((s) => s.name === 'P')!.copyDevice);
      const r = await d.finish();
      expect(r.ok).toBe(true);
      expect(r.traceHash).toBe(plain.traceHash);
      expect(r.copyDevices).toEqual(plain.copyDevices);
    } finally {
      await d.close();
    }
  }, 120_000);

  it('S100: save with frames in the devices, load: the same digest, and the loaded world ends exactly as a straight run', async () => {
    const plain = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 2, scale: 0.25, copyDevices: device });
    const d = await SimDebugger.start(recipe);
    await untilDeviceBusy(d);
    const file = join(dir, 'busy.snap');
    d.save(file);
    const digest = d.digest(), queued = d.copyDevice('P')!;
    await d.close();
    const f = unpack(gunzipSync(readFileSync(file))) as SnapshotFile;
    expect(f.recipe.copyDevices).toEqual(device);
    expect(f.state.systems.find((s) => s.name === 'P')!.copyDevice!.backlog.length).toBe(queued.backlog.length);

    const loaded = await SimDebugger.load(file);
    expect(loaded.digest()).toBe(digest);
    expect(loaded.copyDevice('P')).toEqual(queued);
    const r = await loaded.finish();
    expect(r.traceHash).toBe(plain.traceHash);
    expect(r.volumes).toEqual(plain.volumes);
    expect(r.copyDevices).toEqual(plain.copyDevices);

    // The devices' frames are part of the world a snapshot must reach: replayed without devices, it is refused.
    delete f.recipe.copyDevices;
    const without = join(dir, 'without.snap');
    writeFileSync(without, gzipSync(pack(f)));
    await expect(SimDebugger.load(without)).rejects.toThrow(/cannot be continued: .*differs in .*P\.copyDevice/);
  }, 120_000);

  it('rclab debug --copy-devices: print devices, back 3 to the recorded digest, save, then debug --load finishes with the straight run\'s trace hash', async () => {
    const plain = JSON.parse((await run(process.execPath, ['harness/rclab.mjs', 'run', 'embodiment1-cycle', '--runtime', 'sim', '--seed', '2', '--scale', '0.25', '--copy-devices', '20:4:5', '--json'])).stdout);
    const snap = join(dir, 'cli.snap');
    const script = join(dir, 'cdev.rcdbg');
    // 20 events in, the first formation copy's acknowledgement has opened the ship pacing's window to 16 tracks.
    writeFileSync(script, ['step 20', 'print devices P', 'digest', 'step 3', 'back 3', `save ${snap}`, 'quit'].join('\n'));
    const out = (await run(process.execPath, ['harness/rclab.mjs', 'debug', 'embodiment1-cycle', '--seed', '2', '--scale', '0.25', '--copy-devices', '20:4:5', '--commands', script, '--no-color'])).stdout;
    expect(out).toContain('copy devices (--copy-devices 20:4:5)');
    expect(out).toMatch(/copy device of P: 20 MB\/s, 4 deep, 5 µs set-up; 4 frame\(s\) in it, \d+ waiting/);
    expect(out).toMatch(/→I FormationCopy/);
    const recorded = /world digest at event #(\d+): ([0-9a-f]{16})/.exec(out)!;
    expect(out).toMatch(new RegExp(`at event #${recorded[1]} .*world digest ${recorded[2]} — identical to when this event was first reached`));
    writeFileSync(join(dir, 'finish.rcdbg'), 'finish\n');
    const second = (await run(process.execPath, ['harness/rclab.mjs', 'debug', '--load', snap, '--commands', join(dir, 'finish.rcdbg'), '--no-color'])).stdout;
    expect(second).toMatch(new RegExp(`world digest ${recorded[2]} matches the file`));
    expect(second).toContain(`trace hash ${plain.traceHash}`);
    for (const [args, msg] of [
      [['debug', 'embodiment1-cycle', '--copy-devices', '20:x'], /--copy-devices takes MBps\[:queueDepth\[:setupUs\]\]/],
      [['debug', '--load', snap, '--copy-devices'], /--copy-devices and --load cannot be combined/],
      [['sweep', '--seeds', '1', '--copy-devices', '5:0'], /--copy-devices\.queueDepth must be a whole number ≥ 1/],
    ] as const) {
      const e = await run(process.execPath, ['harness/rclab.mjs', ...args]).then(() => null, (x: { code: number; stderr: string }) => x);
      expect(e?.code, args.join(' ')).toBeGreaterThan(0); // commander's own refusal exits 1, ours 2
      expect(e!.stderr).toMatch(msg);
    }
  }, 120_000);

  it('a sweep with copy devices: 0 violations; replay commands (and shrunk ones) carry --copy-devices', async () => {
    const o: SweepOptions = { scenarios: allScenarioNames(), seeds: 4, from: 900, workers: 1, faults: 'default', scale: 0.25, progress: false, copyDevices: { throughputMBps: 200, queueDepth: 16, setupUs: 2 } };
    const s = await sweep(o);
    expect(s.seedsRun).toBe(4);
    expect(s.failures.map((f) => `${f.scenario} ${f.seed}: ${f.failures[0]}`)).toEqual([]);
    expect(s.checksPerformed.liveness).toBe(4);
    expect(formatSummary(s, o)).toContain('copy devices (--copy-devices 200:16:2)');
    // A failing seed (a planted bug) is replayed, and shrunk, with the devices it ran with.
    const bad = await sweep({ ...o, seeds: 3, from: 1, scenarios: ['embodiment1-cycle'], plantedBug: 'sync-ack-before-copy', stopOnFailure: true, shrink: false });
    const f = bad.failures[0]!;
    expect(f.replay).toContain('--copy-devices 200:16:2');
    const shrunk = await shrink(o, f, 2);
    expect(shrunk!.replay).toContain('--copy-devices 200:16:2');
  }, 300_000);
});
