// The stepping debugger on the sim runtime: one event per step, breakpoints of every kind, going back by
// replay to the identical world, snapshots that continue exactly as the original run, and `rclab debug`
// driven by a script of commands through a failover (S230 → S250).

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../firmware/frames.ts';
import { PairState } from '../firmware/pair-state.ts';
import { SimDebugger } from '../harness/debugger.ts';
import { parseBreakpoint } from '../harness/debug-repl.ts';
import { runScenario } from '../harness/scenarios.ts';
import { digestWorldState, type SnapshotFile } from '../harness/world-state.ts';

const run = promisify(execFile);
const RECIPE = { scenario: 'embodiment1-cycle', seed: 1, scale: 0.25, faults: 'none' };
const dir = mkdtempSync(join(tmpdir(), 'rclab-debug-'));

describe('stepping debugger API (sim runtime)', () => {
  it('step() dispatches exactly one event, and a stepped run ends with the same trace hash as a plain run', async () => {
    const plain = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 3, scale: 0.25 });
    const d = await SimDebugger.start({ ...RECIPE, seed: 3 });
    expect(d.eventIndex).toBe(0);
    let lastSeq = -1, lastTime = 0;
    for (let i = 1; i <= 300; i++) {
      const next = d.pendingEvents()[0]!;
      await d.step();
      expect(d.eventIndex).toBe(i);
      expect(d.lastEvent!.seq).toBe(next.seq); // the earliest scheduled event, and only it
      expect(d.lastEvent!.seq).not.toBe(lastSeq);
      expect(d.nowUs).toBeGreaterThanOrEqual(lastTime);
      lastSeq = d.lastEvent!.seq; lastTime = d.nowUs;
    }
    const r = await d.finish();
    expect(r.ok).toBe(true);
    expect(r.traceHash).toBe(plain.traceHash);
    expect(r.firmwareEvents).toBe(plain.firmwareEvents);
  });

  it('breakpoints stop where their condition first holds: S230, pair state, journal sequence, frame arrival, routine start', async () => {
    const d = await SimDebugger.start(RECIPE);
    try {
      const seq = d.addBreakpoint({ kind: 'seq', seq: 300, system: 'I' });
      let r = await d.continue();
      expect(r.breakpoint?.id).toBe(seq.id);
      expect(Math.max(...d.journals('I').map((j) => j.newestSeq))).toBeGreaterThanOrEqual(300);
      d.deleteBreakpoint(seq.id);

      const frame = d.addBreakpoint({ kind: 'frame', frameType: FrameType.JournalBatch, system: 'R' });
      r = await d.continue();
      expect(r.breakpoint?.id).toBe(frame.id);
      expect(d.lastEvent!.frame).toMatchObject({ frameType: FrameType.JournalBatch, to: 'R', from: 'I' });
      d.deleteBreakpoint(frame.id);

      const routine = d.addBreakpoint({ kind: 'routine', routine: 'A3' });
      r = await d.continue();
      expect(r.breakpoint?.id).toBe(routine.id);
      expect(r.detail).toContain('A3 failover');

      const s230 = d.addBreakpoint({ kind: 'step', step: 'S230' });
      r = await d.continue();
      expect(r.breakpoint?.id).toBe(s230.id);
      d.deleteBreakpoint(s230.id);

      const state = d.addBreakpoint({ kind: 'state', state: 'suspend', system: 'R', pairId: 2 });
      r = await d.continue();
      expect(r.breakpoint?.id).toBe(state.id);
      expect(d.pairs('R').find((p) => p.pairId === 2)!.state).toBe(PairState.Suspend);
    } finally {
      await d.close();
    }
  });

  it('bad input is refused by name and changes nothing', async () => {
    const d = await SimDebugger.start(RECIPE);
    try {
      await d.step(50);
      const before = d.digest();
      expect(() => d.addBreakpoint({ kind: 'state', state: 'sleeping' })).toThrow(/unknown pair state 'sleeping'/);
      expect(() => d.addBreakpoint({ kind: 'frame', frameType: FrameType.SyncWrite, system: 'Q' })).toThrow(/unknown storage system 'Q'/);
      expect(() => d.addBreakpoint({ kind: 'step', step: '230' })).toThrow(/not a step number/);
      expect(() => d.deleteBreakpoint(99)).toThrow(/no breakpoint 99/);
      expect(() => d.volume('P', 0, 4096, 1)).toThrow(/outside LVOL 0 of P/);
      expect(() => d.bitmap('P', 9)).toThrow(/no pair 9/);
      expect(() => parseBreakpoint(['frame', 'Telegram'])).toThrow(/unknown frame type 'Telegram'/);
      expect(() => parseBreakpoint(['state'])).toThrow(/break state <name>/);
      await expect(d.back(0)).rejects.toThrow(/back takes a number of events ≥ 1/);
      expect(d.breakpoints).toHaveLength(0);
      expect(d.eventIndex).toBe(50);
      expect(d.digest()).toBe(before);
    } finally {
      await d.close();
    }
  });

  it('back and goto replay to the identical world (digests of every volume, control memory, cache, link, frame in flight, clock, PRNG)', async () => {
    const d = await SimDebugger.start(RECIPE);
    try {
      await d.step(2000);
      const at2000 = d.digest();
      const state2000 = d.state();
      await d.step(1500);
      const at3500 = d.digest();
      const b = await d.back(1500);
      expect(b).toMatchObject({ eventIndex: 2000, digest: at2000, verified: true });
      expect(d.state().pending).toEqual(state2000.pending);
      const f = await d.goto(3500);
      expect(f).toMatchObject({ eventIndex: 3500, digest: at3500, verified: true });
      // A digest that is wrong is noticed: it covers the volumes.
      d.world.systems.get('R')!.memory.disk.lvolBytes(0)[100] ^= 1;
      expect(() => d.digest()).toThrow(/differs from when it was first reached/);
    } finally {
      await d.close();
    }
  });

  it('a snapshot continues exactly as the original run; a damaged or foreign one is refused by name', async () => {
    const plain = await runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1, scale: 0.25 });
    const d = await SimDebugger.start(RECIPE);
    await d.next('S250');
    const file = join(dir, 's250.snap');
    d.save(file);
    const digest = d.digest();
    await d.close();

    const loaded = await SimDebugger.load(file);
    expect(loaded.digest()).toBe(digest);
    const r = await loaded.finish();
    expect(r.traceHash).toBe(plain.traceHash);

    const f = unpack(gunzipSync(readFileSync(file))) as SnapshotFile;
    const damaged = join(dir, 'damaged.snap');
    f.state.systems[2]!.disk[7] ^= 1;
    writeFileSync(damaged, gzipSync(pack(f)));
    await expect(SimDebugger.load(damaged)).rejects.toThrow(/is damaged: its world state does not match its digest/);

    // Consistent file, but the world in it is not the one its run reaches (as with another firmware build).
    f.digest = digestWorldState(f.state);
    const foreign = join(dir, 'foreign.snap');
    writeFileSync(foreign, gzipSync(pack(f)));
    await expect(SimDebugger.load(foreign)).rejects.toThrow(/cannot be continued: .*differs in R\.disk/);
    writeFileSync(join(dir, 'junk.snap'), 'not a snapshot');
    await expect(SimDebugger.load(join(dir, 'junk.snap'))).rejects.toThrow(/is not a remote-copy-lab snapshot/);
  });
});

describe('rclab debug, scripted', () => {
  it('S230 → S250 through a failover: break at S230, print the journal, step to S250, back 3 to the recorded world, save, load, same final trace hash', async () => {
    const plain = JSON.parse((await run(process.execPath, ['harness/rclab.mjs', 'run', 'embodiment1-cycle', '--runtime', 'sim', '--scale', '0.25', '--json'])).stdout);
    const snap = join(dir, 'cli.snap');
    const script = join(dir, 'failover.rcdbg');
    writeFileSync(script, [
      'break S230', 'continue', 'print journal', 'delete 1', 'next S250',
      'digest', 'step', 'step', 'step', 'back 3', `save ${snap}`, 'finish',
    ].join('\n'));
    const first = (await run(process.execPath, ['harness/rclab.mjs', 'debug', 'embodiment1-cycle', '--scale', '0.25', '--commands', script, '--no-color'])).stdout;
    expect(first).toMatch(/■ breakpoint 1 \(step S230\)/);
    expect(first).toMatch(/journal 232R \(LVOL 1, pair 2\): \d+ entries/);
    expect(first).toMatch(/■ reached S250/);
    const recorded = /world digest at event #(\d+): ([0-9a-f]{16})/.exec(first)!;
    expect(recorded).not.toBeNull();
    const back = new RegExp(`at event #${recorded[1]} .*world digest ${recorded[2]} — identical to when this event was first reached`);
    expect(first).toMatch(back);
    expect(first).toContain(`trace hash ${plain.traceHash}`);

    const rest = join(dir, 'rest.rcdbg');
    writeFileSync(rest, 'time\nfinish\n');
    const second = (await run(process.execPath, ['harness/rclab.mjs', 'debug', '--load', snap, '--commands', rest, '--no-color'])).stdout;
    expect(second).toContain(`loaded ${snap}: event #${recorded[1]}`);
    expect(second).toMatch(new RegExp(`world digest ${recorded[2]} matches the file`));
    expect(second).toContain(`trace hash ${plain.traceHash}`);
  });
});

describe('rclab debug prompt helpers', () => {
  it('tab completion offers commands, print subjects, systems, state names and frame types', async () => {
    const { DebugRepl } = await import('../harness/debug-repl.ts');
    const d = await SimDebugger.start(RECIPE);
    try {
      const repl = new DebugRepl(d, { color: false, out: () => {} });
      expect(repl.complete('br')).toEqual([['break', 'breaks'], 'br']);
      expect(repl.complete('ba')).toEqual([['back'], 'ba']);
      expect(repl.complete('print jo')).toEqual([['journal'], 'jo']);
      expect(repl.complete('print journal ')[0]).toEqual(['P', 'I', 'R']);
      expect(repl.complete('break state fail')[0]).toEqual(['failure']);
      expect(repl.complete('break frame Jour')[0]).toEqual(['JournalBatch', 'JournalAck']);
      const lines: string[] = [];
      const quiet = new DebugRepl(d, { color: false, out: (l) => lines.push(l) });
      expect(await quiet.execute('frobnicate')).toBe(true);
      expect(lines.at(-1)).toBe("error: unknown command 'frobnicate' (type help)");
      expect(quiet.failedCommands).toBe(1);
      expect(await quiet.execute('quit')).toBe(false);
    } finally {
      await d.close();
    }
  });
});
