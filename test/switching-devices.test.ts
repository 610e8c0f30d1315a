// Embodiment 3's common line and its switching devices 300I and 300J (claims 6 and 7, [0124]): the line
// P —P-300I— 300I(I) —300I-300J— 300J(J) —300J-R— R; each switching device hands its intermediate only the frames
// addressed to it and passes every other frame on untouched; all of embodiment 3's traffic goes over the line.
// Frames are followed from the firmware that sends them (SimStorageSystem.send) to the controller that receives
// them (Controller.onFrame), by content hash, so "untouched" and "never sees" are checked on the bytes themselves.

import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../firmware/controller.ts';
import { encodeFrame, FrameType } from '../firmware/frames.ts';
import { CommonLine, LineFaults, lineRoute, lineStatsWords, validateCommonLine, type CommonLineSpec } from '../hardware/common-line.ts';
import { FIBRE_US_PER_KM } from '../hardware/link-model.ts';
import { SimStorageSystem } from '../hardware/sim-machine.ts';
import { ROUTING_HEADER_BYTES, writeRoutingHeader } from '../hardware/switching-device.ts';
import { CopyControlProgram, OperationsLog } from '../harness/copy-control.ts';
import { Host } from '../harness/host.ts';
import { drawSchedule, validateFault } from '../harness/nemesis.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { runScenario } from '../harness/scenarios.ts';
import { createWorld } from '../harness/runtimes.ts';
import * as e1 from '../harness/routines/embodiment1.ts';
import * as e3 from '../harness/routines/embodiment3.ts';
import { embodiment3Topology } from '../harness/topology.ts';

const E3 = embodiment3Topology();
const LINE = E3.line!;
const ID: Record<string, number> = Object.fromEntries(E3.systems.map((s) => [s.name, s.id]));
const NAME = Object.fromEntries(E3.systems.map((s) => [s.id, s.name])) as Record<number, string>;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Every frame handed to a line port by a firmware (send returned true) and every frame a controller was given. */
interface Traffic { sent: Array<{ from: string; to: string; hash: string }>; received: Array<{ at: string; from: string; hash: string }> }

/** Taps SimStorageSystem.send and Controller.onFrame (sim runtime: one thread, so the taps see every frame in order). */
function tapFrames(): { traffic: Traffic; restore: () => void } {
  const traffic: Traffic = { sent: [], received: [] };
  const send = SimStorageSystem.prototype.send, onFrame = Controller.prototype.onFrame;
  SimStorageSystem.prototype.send = function (this: SimStorageSystem, dest: number, frame: Uint8Array) {
    const hash = sha(frame); // before the hardware sees it
    const ok = send.call(this, dest, frame);
    if (ok) traffic.sent.push({ from: this.name, to: NAME[dest]!, hash });
    return ok;
  };
  Controller.prototype.onFrame = function (this: Controller, from: number, frame: Uint8Array) {
    traffic.received.push({ at: NAME[(this as unknown as { hw: { storageId: number } }).hw.storageId]!, from: NAME[from]!, hash: sha(frame) });
    return onFrame.call(this, from, frame);
  };
  return { traffic, restore: () => { SimStorageSystem.prototype.send = send; Controller.prototype.onFrame = onFrame; } };
}

/** Multiset of hashes; `within(a, b)`: every element of a is in b as often. */
const bag = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
function within(a: string[], b: string[]): boolean {
  const mb = bag(b);
  for (const [k, n] of bag(a)) if ((mb.get(k) ?? 0) < n) return false;
  return true;
}

describe('claims 6, 7: the common line P — 300I(I) — 300J(J) — R and its switching devices', () => {
  it('claim 6: embodiment 3 is one common line of segments P-300I 100 km, 300I-300J 900 km, 300J-R 100 km; every circuit is a route over it, as long as the segments it crosses', () => {
    expect(LINE.stations.map((s) => s.switchingDevice ? `${s.switchingDevice}(${s.system})` : s.system)).toEqual(['P', '300I(I)', '300J(J)', 'R']);
    expect(LINE.segments.map((s) => `${s.name} ${s.distanceKm} km`)).toEqual(['P-300I 100 km', '300I-300J 900 km', '300J-R 100 km']);
    expect(E3.links.every((l) => l.overLine)).toBe(true);
    const routes = Object.fromEntries(E3.links.map((l) => { const r = lineRoute(LINE, l.a, l.b); return [l.name, `${l.a}→${l.b} via [${r.passes.join(' ')}] ${r.segments.join('+')} ${l.distanceKm} km`]; }));
    expect(routes).toEqual({
      S1: 'P→I via [] P-300I 100 km',
      S2: 'I→R via [300J] 300I-300J+300J-R 1000 km',
      S7: 'J→R via [] 300J-R 100 km',
      S8: 'P→J via [300I] P-300I+300I-300J 1000 km',
      S5: 'P→R via [300I 300J] P-300I+300I-300J+300J-R 1100 km',
      S6: 'I→J via [] 300I-300J 900 km',
    });
    expect(lineRoute(LINE, 'R', 'J').passes).toEqual([]); // R to J: only through 300J, which delivers it
    expect(lineRoute(LINE, 'R', 'P').passes).toEqual(['300J', '300I']);
  });

  it('claim 7 (per frame): each switching device reads the routing header\'s destination — its intermediate\'s frames leave the line there, all others pass, and are counted', () => {
    const line = new CommonLine(LINE, E3.systems, new Float64Array(lineStatsWords(LINE, E3.systems.length)));
    const hdr = new DataView(new ArrayBuffer(ROUTING_HEADER_BYTES));
    const takenBy = (from: string, to: string, bytes = 100) => {
      writeRoutingHeader(hdr, 0, ID[to]!, ID[from]!, bytes);
      const before = new Uint8Array(hdr.buffer.slice(0));
      const at = line.carry(E3.systems.findIndex((s) => s.name === from), hdr, 0);
      expect(new Uint8Array(hdr.buffer)).toEqual(before); // the header (and so the frame) is never written by a switch
      return NAME[at] ?? 'nobody';
    };
    for (const from of ['P', 'I', 'J', 'R']) for (const to of ['P', 'I', 'J', 'R']) if (from !== to) expect(takenBy(from, to), `${from}→${to}`).toBe(to);
    const st = line.stats().switchingDevices;
    // 12 frames: 300I delivers the 3 for I, passes P↔J, P↔R, J→P, R→P (P→J, P→R, J→P, R→P); I's 3 enter through it.
    expect(st['300I']).toEqual({ framesDelivered: 3, bytesDelivered: 300, framesPassed: 4, bytesPassed: 400, framesFromIntermediate: 3, bytesFromIntermediate: 300 });
    expect(st['300J']).toEqual({ framesDelivered: 3, bytesDelivered: 300, framesPassed: 4, bytesPassed: 400, framesFromIntermediate: 3, bytesFromIntermediate: 300 });
    // An address no station has falls off the end of the line: lost, counted at the sender's port, never delivered.
    writeRoutingHeader(hdr, 0, 9, ID.P!, 10);
    expect(line.carry(0, hdr, 0)).toBe(-1);
    expect(line.stats().ports.P!.framesUnclaimed).toBe(1);
    // The receiving port refuses (and counts) a frame addressed to someone else.
    expect(line.receive(1, ID.I!, ID.R!, 10)).toBe(false);
    expect(line.receive(1, ID.I!, ID.I!, 10)).toBe(true);
    expect(line.stats().ports.I).toEqual({ framesIn: 1, bytesIn: 10, framesRefused: 1, framesUnclaimed: 0 });
  });

  it('claim 7 (firmware to firmware): frames P sends R pass 300I and 300J byte for byte, arrive after the whole line\'s flight time, and neither I\'s nor J\'s controller sees one', async () => {
    const tap = tapFrames();
    const world = new SimWorld(E3, 5);
    try {
      const flights: number[] = [];
      world.frameListeners.add((f) => { if (f.from === 'P' && f.to === 'R') flights.push(f.deliverAtUs - f.sentUs); });
      const p = world.systems.get('P')!;
      const n = 40;
      for (let i = 0; i < n; i++) {
        const body = new Uint8Array(64 + 97 * i).map((_, k) => (k * 31 + i) & 0xff);
        expect(p.send(ID.R!, encodeFrame({ type: FrameType.Keepalive, status: 0, pairId: 0, tag: i, lba: 0, blocks: 0 }, body))).toBe(true);
      }
      await world.sleep(50_000);
      const { sent, received } = tap.traffic;
      const toR = sent.filter((x) => x.from === 'P' && x.to === 'R').map((x) => x.hash);
      expect(toR).toHaveLength(n);
      const atR = received.filter((x) => x.at === 'R' && x.from === 'P').map((x) => x.hash);
      expect(atR.slice().sort()).toEqual(toR.slice().sort()); // byte-identical, every one
      expect(received.filter((x) => x.at === 'I' || x.at === 'J')).toEqual([]);
      const st = world.commonLineStats()!;
      expect(st.switchingDevices['300I']).toMatchObject({ framesDelivered: 0, framesPassed: n });
      expect(st.switchingDevices['300J']).toMatchObject({ framesDelivered: 0, framesPassed: n });
      expect(st.ports.I).toMatchObject({ framesIn: 0, framesRefused: 0 });
      expect(st.ports.R).toMatchObject({ framesIn: n, framesRefused: 0 });
      // The delivery time is the sum of the three segments (1100 km at 5 µs/km) plus serialisation, path delay and jitter.
      expect(Math.min(...flights)).toBeGreaterThanOrEqual(1100 * FIBRE_US_PER_KM);
      expect(Math.max(...flights)).toBeLessThan(1100 * FIBRE_US_PER_KM + 200);
    } finally {
      tap.restore();
      await world.close();
    }
  });

  describe('embodiment3-cycle (seed 1): all traffic over the line', () => {
    let traffic: Traffic;
    let r: Awaited<ReturnType<typeof runScenario>>;
    beforeAll(async () => {
      const tap = tapFrames();
      try {
        r = await runScenario('embodiment3-cycle', { runtime: 'sim', seed: 1 });
      } finally {
        tap.restore();
      }
      traffic = tap.traffic;
    }, 120_000);

    it('claim 6: every frame of the cycle crossed a switching device, each counted exactly once per device it reached, with traffic in every flow', () => {
      expect(r.failures).toEqual([]);
      const st = r.switchingDevices!;
      const count = (f: (x: Traffic['sent'][number]) => boolean) => traffic.sent.filter(f).length;
      // 300I sits between P and everyone else: it sees every frame P sends, every frame I sends, and every frame for P or I.
      const at300I = count((x) => x.from === 'P' || x.from === 'I' || x.to === 'P' || x.to === 'I');
      const at300J = count((x) => x.from === 'R' || x.from === 'J' || x.to === 'R' || x.to === 'J');
      expect(st['300I']!.framesDelivered + st['300I']!.framesPassed + st['300I']!.framesFromIntermediate).toBe(at300I);
      expect(st['300J']!.framesDelivered + st['300J']!.framesPassed + st['300J']!.framesFromIntermediate).toBe(at300J);
      expect(at300I + at300J).toBeGreaterThanOrEqual(traffic.sent.length); // no frame went round the line
      // The right flows: to I (S1 sync writes of P, S2 acks of R) and to J (S7 sync writes of R, S8 acks of P) are
      // delivered; J↔P (S8) passes 300I, I↔R (S2) passes 300J.
      expect(st['300I']!.framesDelivered).toBe(count((x) => x.to === 'I'));
      expect(st['300J']!.framesDelivered).toBe(count((x) => x.to === 'J'));
      expect(st['300I']!.framesPassed).toBe(count((x) => (x.from === 'P' && x.to !== 'I') || (x.to === 'P' && x.from !== 'I')));
      expect(st['300J']!.framesPassed).toBe(count((x) => (x.from === 'R' && x.to !== 'J') || (x.to === 'R' && x.from !== 'J')));
      for (const [device, k] of [['300I', 'framesDelivered'], ['300I', 'framesPassed'], ['300J', 'framesDelivered'], ['300J', 'framesPassed']] as const) {
        expect(st[device]![k], `${device} ${k}`).toBeGreaterThan(100);
      }
      expect(count((x) => x.from === 'J' && x.to === 'P')).toBeGreaterThan(100); // S810's async J→P copy went through 300I
      expect(count((x) => x.from === 'I' && x.to === 'R')).toBeGreaterThan(100); // S110's async I→R copy went through 300J
    });

    it('claim 7: J→P and P→J frames pass 300I byte-identical; I\'s controller receives only frames addressed to it, and its port refused none', () => {
      const hashes = (from: string, to: string, list: 'sent' | 'received') => list === 'sent'
        ? traffic.sent.filter((x) => x.from === from && x.to === to).map((x) => x.hash)
        : traffic.received.filter((x) => x.from === from && x.at === to).map((x) => x.hash);
      for (const [from, to] of [['J', 'P'], ['P', 'J']]) {
        const got = hashes(from, to, 'received');
        expect(got.length, `${from}→${to} received`).toBeGreaterThan(100);
        expect(within(got, hashes(from, to, 'sent')), `${from}→${to} arrived exactly as sent`).toBe(true);
      }
      for (const at of ['I', 'J']) {
        const got = traffic.received.filter((x) => x.at === at);
        const forIt = traffic.sent.filter((x) => x.to === at);
        expect(got.length).toBeGreaterThan(0);
        for (const from of ['P', 'I', 'J', 'R']) {
          expect(within(got.filter((x) => x.from === from).map((x) => x.hash), forIt.filter((x) => x.from === from).map((x) => x.hash)), `${at} from ${from}`).toBe(true);
        }
        expect(r.linePorts![at]).toMatchObject({ framesRefused: 0, framesIn: got.length });
      }
    });

    it('claims 6, 7 on the threads runtime: embodiment3-cycle ends as on sim (same digests), its frames went through both switching devices, and no port refused a frame', async () => {
      const threads = await runScenario('embodiment3-cycle', { runtime: 'threads', seed: 1 });
      expect(threads.failures).toEqual([]);
      expect(threads.volumes).toEqual(r.volumes);
      for (const device of ['300I', '300J']) {
        for (const k of ['framesDelivered', 'framesPassed', 'framesFromIntermediate'] as const) expect(threads.switchingDevices![device]![k], `${device} ${k}`).toBeGreaterThan(100);
        // Every flow's data went the same way as on sim (frame counts differ with timing: batching, keepalives, and
        // resends when a loaded machine makes a timeout fire, which only add bytes).
        for (const k of ['bytesDelivered', 'bytesPassed'] as const) {
          expect(threads.switchingDevices![device]![k], `${device} ${k}`).toBeGreaterThan(0.9 * r.switchingDevices![device]![k]);
        }
      }
      for (const [name, port] of Object.entries(threads.linePorts!)) expect(port.framesRefused, name).toBe(0);
      expect(threads.linePorts!.I!.framesIn).toBeLessThanOrEqual(threads.switchingDevices!['300I']!.framesDelivered);
    }, 180_000);
  });

  for (const runtime of ['sim', 'threads'] as const) {
    it(`S110/S100 with a cut of segment 300I-300J (${runtime}): the async pair I→R (crossing it) fails, the sync pair P→I (not crossing it) stays duplex; healing it lets I→R resynchronise`, async () => {
      const world = await createWorld(runtime, embodiment3Topology({ dataVolumeBytes: 2 * 1024 * 1024 }), 3);
      try {
        const log = new OperationsLog();
        const hostP = new Host(world, '100P');
        await e3.initialCopying(new CopyControlProgram(world, hostP, log, 'A2'));
        const state = async (system: string, pairId: number) => { const q = await world.command(system, { op: 'query', pairId }); return q.ok ? q.pair?.state : q.error; };
        expect(await state('I', e1.PAIR_IR)).toBe('duplex');
        await world.fault({ kind: 'cut-link', link: '300I-300J' });
        await world.sleep(200_000);
        expect(await state('I', e1.PAIR_IR)).toBe('failure suspend');
        expect(await state('R', e1.PAIR_IR)).toBe('failure suspend');
        expect(await state('P', e1.PAIR_PI)).toBe('duplex');
        if (world instanceof SimWorld) {
          // Every circuit crossing the segment is cut (S2, S8, S5, S6); S1 and S7 are not.
          expect(['S1', 'S2', 'S5', 'S6', 'S7', 'S8'].filter((l) => !world.links.get(l)!.up)).toEqual(['S2', 'S5', 'S6', 'S8']);
        }
        await world.fault({ kind: 'heal-link', link: '300I-300J' });
        if (world instanceof SimWorld) expect(['S1', 'S2', 'S5', 'S6', 'S7', 'S8'].filter((l) => !world.links.get(l)!.up)).toEqual([]);
        await world.sleep(100_000);
        await new CopyControlProgram(world, hostP, log, 'A2').resyncToDuplex('I', e1.PAIR_IR, 'S110');
        expect(await state('I', e1.PAIR_IR)).toBe('duplex');
        await hostP.stop();
      } finally {
        await world.close();
      }
    }, 120_000);
  }

  it('segment faults: a circuit stays cut while any segment it crosses is; one-way cuts, path cuts and conditions map onto each circuit\'s own direction', () => {
    const f = new LineFaults(LINE, E3.links);
    expect(f.expand({ kind: 'cut-link', link: '300J-R' })).toEqual(['S2', 'S7', 'S5'].map((link) => ({ kind: 'cut-link', link })));
    expect(f.expand({ kind: 'cut-link', link: 'S2' })).toEqual([]); // already cut by the segment
    expect(f.expand({ kind: 'heal-link', link: '300J-R' })).toEqual(['S7', 'S5'].map((link) => ({ kind: 'heal-link', link }))); // S2 itself still cut
    expect(f.expand({ kind: 'heal-link', link: 'S2' })).toEqual([{ kind: 'heal-link', link: 'S2' }]);
    expect(f.expand({ kind: 'cut-link', link: 'P-300I', direction: 'b-to-a' })).toEqual(['S1', 'S8', 'S5'].map((link) => ({ kind: 'cut-link', link, direction: 'b-to-a' })));
    const reversed = new LineFaults(LINE, [{ name: 'X', a: 'I', b: 'P', overLine: true }]);
    expect(reversed.expand({ kind: 'cut-path', link: 'P-300I', path: 1, direction: 'a-to-b' })).toEqual([{ kind: 'cut-path', link: 'X', path: 1, direction: 'b-to-a' }]);
    expect(reversed.expand({ kind: 'link-conditions', link: 'P-300I', conditions: { lossRate: 0.1 } })).toEqual([{ kind: 'link-conditions', link: 'X', conditions: { lossRate: 0.1 } }]);
    expect(() => f.expand({ kind: 'cut-link', link: 'S9' })).toThrow(/no circuit or segment 'S9'/);
  });

  it('the nemesis draws segment faults on embodiment 3 and refuses a name that is neither a circuit nor a segment', () => {
    const named = new Set<string>();
    for (let seed = 1; seed <= 200; seed++) for (const s of drawSchedule(E3, 'links', seed)) if ('link' in s.fault) named.add(s.fault.link);
    expect([...named].filter((n) => LINE.segments.some((s) => s.name === n)).sort()).toEqual(['300I-300J', '300J-R', 'P-300I']);
    expect(() => validateFault(E3, { kind: 'cut-path', link: '300I-300J', path: 1 })).not.toThrow();
    expect(() => validateFault(E3, { kind: 'cut-link', link: '300X-R' })).toThrow(/unknown link '300X-R' \(this topology has S1, S2, S7, S8, S5, S6; segments of the common line: P-300I, 300I-300J, 300J-R\)/);
  });

  it('bad lines are refused naming the problem', () => {
    const sys = E3.systems;
    const line = (o: Partial<CommonLineSpec>): CommonLineSpec => ({ ...structuredClone(LINE), ...o });
    expect(() => validateCommonLine(line({ segments: LINE.segments.slice(1) }), sys, [])).toThrow(/4 stations need 3 segments, got 2/);
    expect(() => validateCommonLine(line({ stations: [{ system: 'P' }, { system: 'I' }, { system: 'J', switchingDevice: '300J' }, { system: 'R' }] }), sys, []))
      .toThrow(/inner station 1 \(I\) needs a switchingDevice/);
    expect(() => validateCommonLine(line({ stations: [{ system: 'P', switchingDevice: '300P' }, ...LINE.stations.slice(1)] }), sys, [])).toThrow(/end station P cannot have a switching device/);
    expect(() => validateCommonLine(line({ stations: [{ system: 'P' }, { system: 'X', switchingDevice: '300X' }, ...LINE.stations.slice(2)] }), sys, [])).toThrow(/unknown storage system 'X'/);
    expect(() => validateCommonLine(line({ segments: [{ name: 'P-300I', distanceKm: -1 }, ...LINE.segments.slice(1)] }), sys, [])).toThrow(/segment P-300I .* distanceKm must be >= 0, got -1/);
    expect(() => validateCommonLine(LINE, sys, [{ name: 'S2', a: 'I', b: 'R', distanceKm: 900, overLine: true }])).toThrow(/circuit S2 \(I–R\) crosses 300I-300J, 300J-R \(1000 km\) but has distanceKm 900/);
    expect(() => validateCommonLine(LINE, sys, [{ name: '300I-300J', a: 'P', b: 'I', distanceKm: 100 }])).toThrow(/circuit 300I-300J has the name of a segment/);
    const t = embodiment3Topology();
    t.links[0]!.distanceKm = 5;
    expect(() => new SimWorld(t, 1)).toThrow(/circuit S1 \(P–I\) crosses P-300I \(100 km\) but has distanceKm 5/);
  });
});
