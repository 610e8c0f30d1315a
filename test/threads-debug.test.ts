// The threads runtime under a real debugger: Node's inspector reaches firmware in a storage system's worker
// (a breakpoint set on a line of firmware/controller.ts, through tsx's inline source map, stops that worker only);
// pauseSystem holds one storage system's CPU while the others run on and their links keep real time; and the
// flight recorder's dump reaches the harness when the firmware fails in a worker.

import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import type { PairRecord } from '../firmware/definition-info.ts';
import { PairState } from '../firmware/pair-state.ts';
import { OperationsLog } from '../harness/copy-control.ts';
import { armPause, parsePauseSpec } from '../harness/pause.ts';
import { ThreadsWorld } from '../harness/runtime-threads.ts';
import { DATA_LVOL, embodiment1Topology } from '../harness/topology.ts';
import type { TimedEvent, World } from '../harness/world.ts';
import { withinWallMs } from '../harness/within-wall-ms.ts';

const I_ID = 1;

// ───────────── source maps (tsx inlines one in every module it compiles) ─────────────

interface Mapping { genLine: number; genCol: number; src: number; line: number; col: number }

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Decodes a source map's `mappings` (base64 VLQ; lines and columns 0-based). */
function decodeMappings(mappings: string): Mapping[] {
  const out: Mapping[] = [];
  let src = 0, line = 0, col = 0;
  mappings.split(';').forEach((group, genLine) => {
    let genCol = 0;
    for (const seg of group.split(',')) {
      if (!seg) continue;
      const v: number[] = [];
      let value = 0, shift = 0;
      for (const ch of seg) {
        const digit = B64.indexOf(ch);
        if (digit < 0) throw new Error(`bad base64 VLQ digit '${ch}'`);
        value += (digit & 31) << shift;
        if (digit & 32) { shift += 5; continue; }
        v.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0; shift = 0;
      }
      genCol += v[0]!;
      if (v.length >= 4) {
        src += v[1]!; line += v[2]!; col += v[3]!;
        out.push({ genLine, genCol, src, line, col });
      }
    }
  });
  return out;
}

interface SourceMap { sources: string[]; mappings: Mapping[] }

function parseInlineSourceMap(url: string): SourceMap {
  const m = /^data:application\/json;(?:charset=[^;,]+;)?base64,(.*)$/.exec(url);
  if (!m) throw new Error(`not an inline source map: ${url.slice(0, 60)}`);
  const json = JSON.parse(Buffer.from(m[1]!, 'base64').toString('utf8')) as { sources: string[]; mappings: string };
  return { sources: json.sources, mappings: decodeMappings(json.mappings) };
}

/** The first generated position of an original line (0-based), or null. */
function generatedFor(map: SourceMap, src: number, line: number): { line: number; col: number } | null {
  let best: Mapping | null = null;
  for (const m of map.mappings) {
    if (m.src !== src || m.line !== line) continue;
    if (!best || m.genLine < best.genLine || (m.genLine === best.genLine && m.genCol < best.genCol)) best = m;
  }
  return best && { line: best.genLine, col: best.genCol };
}

/** The original line (0-based) of a generated position: the mapping segment that covers it. */
function originalFor(map: SourceMap, genLine: number, genCol: number): { src: number; line: number } | null {
  let best: Mapping | null = null;
  for (const m of map.mappings) {
    if (m.genLine !== genLine || m.genCol > genCol) continue;
    if (!best || m.genCol >= best.genCol) best = m;
  }
  return best && { src: best.src, line: best.line };
}

// ───────────── an inspector session on one worker (NodeWorker domain) ─────────────

type Params = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

class WorkerDebugger {
  private nextId = 1;
  private readonly replies = new Map<number, { resolve: (r: Params) => void; reject: (e: Error) => void }>();
  private readonly waiters = new Set<{ method: string; test: (p: Params) => boolean; resolve: (p: Params) => void }>();
  readonly scripts: Array<{ scriptId: string; url: string; sourceMapURL: string }> = [];

  constructor(private readonly session: Session, readonly sessionId: string) {
    session.on('NodeWorker.receivedMessageFromWorker', (m: { params: { sessionId: string; message: string } }) => {
      if (m.params.sessionId !== this.sessionId) return;
      const msg = JSON.parse(m.params.message) as { id?: number; result?: Params; error?: { message: string }; method?: string; params?: Params };
      if (msg.id !== undefined) {
        const r = this.replies.get(msg.id);
        this.replies.delete(msg.id);
        if (msg.error) r?.reject(new Error(`worker inspector: ${msg.error.message}`));
        else r?.resolve(msg.result ?? {});
        return;
      }
      if (msg.method === 'Debugger.scriptParsed') this.scripts.push(msg.params as WorkerDebugger['scripts'][number]);
      for (const w of [...this.waiters]) {
        if (w.method === msg.method && w.test(msg.params ?? {})) { this.waiters.delete(w); w.resolve(msg.params ?? {}); }
      }
    });
  }

  send(method: string, params: Params = {}): Promise<Params> {
    const id = this.nextId++;
    const reply = new Promise<Params>((resolve, reject) => this.replies.set(id, { resolve, reject }));
    void this.session.post('NodeWorker.sendMessageToWorker', { sessionId: this.sessionId, message: JSON.stringify({ id, method, params }) });
    return reply;
  }

  next(method: string, test: (p: Params) => boolean = () => true, timeoutMs = 5_000): Promise<Params> {
    return new Promise<Params>((resolve, reject) => {
      const w = { method, test, resolve: (p: Params) => { clearTimeout(timer); resolve(p); } };
      const timer = setTimeout(() => { this.waiters.delete(w); reject(new Error(`no ${method} within ${timeoutMs} ms`)); }, timeoutMs);
      this.waiters.add(w);
    });
  }
}

/** Attaches to the worker whose title is "[worker <threadId>] …" (Node names workers by thread id). */
async function attachToWorker(session: Session, threadId: number): Promise<WorkerDebugger> {
  const found = new Promise<string>((resolve) => {
    session.on('NodeWorker.attachedToWorker', (m: { params: { sessionId: string; workerInfo: { title: string } } }) => {
      if (m.params.workerInfo.title.startsWith(`[worker ${threadId}]`)) resolve(m.params.sessionId);
    });
  });
  await session.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
  return new WorkerDebugger(session, await withTimeout(found, 5_000, `worker ${threadId} to attach`));
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => withinWallMs(p, ms, () => `timed out waiting for ${what}`);

// ───────────── helpers ─────────────

const pair = (w: World, system: string, pairId: number): PairRecord | undefined =>
  w.definitionInformation(system).find((p) => p.pairId === pairId);

async function until(w: World, what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const start = w.nowUs();
  while (!cond()) {
    if (w.nowUs() - start > timeoutMs * 1000) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await w.sleep(2_000);
  }
}

function block(seed: number): Uint8Array {
  const b = new Uint8Array(BLOCK_SIZE_BYTES);
  for (let i = 0; i < b.length; i += 4) new DataView(b.buffer).setUint32(i, Math.imul(seed + 1, 2654435761) + i, true);
  return b;
}

const blockOf = (w: World, system: string, lba: number) =>
  w.volume(system, DATA_LVOL).slice(lba * BLOCK_SIZE_BYTES, (lba + 1) * BLOCK_SIZE_BYTES);

// ───────────── the tests ─────────────

describe.sequential('threads runtime under a debugger (embodiment 1: P–I–R, one worker each)', () => {
  let w: ThreadsWorld;
  const events: TimedEvent[] = [];

  beforeAll(async () => {
    w = await ThreadsWorld.create(embodiment1Topology(), 1);
    w.onEvent((e) => events.push(e));
  }, 20_000);

  afterAll(async () => {
    await w?.close();
  });

  it('a breakpoint on a line of firmware/controller.ts stops only storage system I\'s worker there; P and R keep answering', async () => {
    // The original line: the first line of the body of Controller.onCommand.
    const source = readFileSync(new URL('../firmware/controller.ts', import.meta.url), 'utf8').split('\n');
    const header = source.findIndex((l) => /^\s+onCommand\(requestId: number, command: Command\): void \{$/.test(l));
    expect(header).toBeGreaterThan(0);
    const bodyLine = header + 1; // 0-based
    expect(source[bodyLine]).toMatch(/this\.execute\(command/);

    const session = new Session();
    session.connect();
    try {
      const dbg = await attachToWorker(session, w.workerThreadId('I'));
      await dbg.send('Debugger.enable'); // replays Debugger.scriptParsed for every script the worker has
      const script = dbg.scripts.find((s) => s.url.endsWith('/firmware/controller.ts'));
      expect(script, 'firmware/controller.ts among the scripts of I\'s worker').toBeDefined();
      expect(script!.sourceMapURL).toMatch(/^data:application\/json/); // tsx's inline source map
      const map = parseInlineSourceMap(script!.sourceMapURL);
      const src = map.sources.length === 1 ? 0 : map.sources.findIndex((s) => s.endsWith('controller.ts'));
      expect(src).toBeGreaterThanOrEqual(0);
      const gen = generatedFor(map, src, bodyLine);
      expect(gen, `a mapping for controller.ts:${bodyLine + 1}`).not.toBeNull();

      const bp = await dbg.send('Debugger.setBreakpointByUrl', { url: script!.url, lineNumber: gen!.line, columnNumber: gen!.col });
      expect(bp.locations.length).toBeGreaterThan(0);

      const paused = dbg.next('Debugger.paused');
      let iAnswered = false;
      const reply = w.command('I', { op: 'status', step: 'S999' }).then((r) => { iAnswered = true; return r; });
      const at = await paused;
      const frame = at.callFrames[0];
      expect(frame.functionName).toBe('onCommand');
      expect(frame.location.scriptId).toBe(script!.scriptId);
      const original = originalFor(map, frame.location.lineNumber, frame.location.columnNumber);
      expect(original).toEqual({ src, line: bodyLine }); // stopped at the line we chose, in the original TypeScript

      const evalOn = async (expression: string) =>
        (await dbg.send('Debugger.evaluateOnCallFrame', { callFrameId: frame.callFrameId, expression, returnByValue: true })).result.value;
      expect(await evalOn('command.op')).toBe('status');
      expect(await evalOn('command.step')).toBe('S999');
      expect(await evalOn('this.hw.name')).toBe('I'); // the firmware's hardware: storage system I's CPU

      // Only I's worker is stopped: the other storage systems answer while it is.
      const others = await withTimeout(Promise.all([w.command('P', { op: 'status' }), w.command('R', { op: 'status' })]), 3_000, 'P and R to answer');
      expect(others.map((r) => r.ok)).toEqual([true, true]);
      await new Promise((r) => setTimeout(r, 50));
      expect(iAnswered).toBe(false);

      await dbg.send('Debugger.removeBreakpoint', { breakpointId: bp.breakpointId });
      await dbg.send('Debugger.resume');
      expect(await withTimeout(reply, 3_000, 'I to answer after resume')).toMatchObject({ ok: true, message: 'status' });
      await dbg.send('Debugger.disable');
      await session.post('NodeWorker.detach', { sessionId: dbg.sessionId });
    } finally {
      session.disconnect();
    }
    expect(w.controllerErrors).toEqual([]);
  }, 20_000);

  it('sync pair P→I (fence data) is duplex', async () => {
    const r = await w.command('P', {
      op: 'create', initialCopy: 'none', step: 'S100',
      pair: { pairId: 1, localLvol: DATA_LVOL, remoteStorageId: I_ID, remoteLvol: DATA_LVOL, copyType: 'sync', fence: 'data' },
    });
    expect(r).toMatchObject({ ok: true });
    await until(w, 'pair 1 duplex on P and I', () => pair(w, 'P', 1)?.state === PairState.Duplex && pair(w, 'I', 1)?.state === PairState.Duplex, 3_000);
    expect((await w.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba: 1, blocks: 1, data: block(1) })).status).toBe('ok');
  }, 10_000);

  it('pauseSystem I (150 ms, under the 300 ms partner timeout): a synchronous write waits for it, completes after the resume; the frames that waited arrive late, none lost', async () => {
    const PAUSE_MS = 150;
    await w.pauseSystem('I');
    const t0 = w.nowUs();
    expect(w.isPaused('I')).toBe(true);
    const i0 = w.stats('I'), p0 = w.stats('P');
    let doneAt: number | undefined;
    const write = w.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba: 7, blocks: 1, data: block(7) }).then((r) => { doneAt = w.nowUs(); return r; });
    let iAnswered = false;
    const iStatus = w.command('I', { op: 'status' }).then((r) => { iAnswered = true; return r; });
    // The others run on: P answers at once.
    const p = await w.command('P', { op: 'query', pairId: 1 });
    expect(p).toMatchObject({ ok: true, pair: { state: 'duplex' } });
    await w.sleep(PAUSE_MS * 1000 - (w.nowUs() - t0));
    expect(doneAt).toBeUndefined(); // not while I is paused
    expect(iAnswered).toBe(false); // commands to I wait too
    const i1 = w.stats('I'), p1 = w.stats('P');
    expect(i1.eventsDispatched).toBe(i0.eventsDispatched); // I's CPU dispatched nothing
    expect(p1.framesOut).toBeGreaterThan(p0.framesOut); // P sent the copy (and keepalives) to I meanwhile
    const sentDuringPause = p1.framesOut - p0.framesOut;

    await w.resumeSystem('I');
    const tResume = w.nowUs();
    expect(w.isPaused('I')).toBe(false);
    expect((await write).status).toBe('ok');
    expect(doneAt!).toBeGreaterThanOrEqual(tResume);
    expect(doneAt! - t0).toBeGreaterThanOrEqual(PAUSE_MS * 1000);
    expect(await iStatus).toMatchObject({ ok: true });
    await w.sleep(20_000);

    const i2 = w.stats('I');
    expect(i2.framesLost).toBe(i0.framesLost); // nothing lost …
    expect(i2.framesIn - i0.framesIn).toBeGreaterThanOrEqual(sentDuringPause); // … everything P sent arrived …
    expect(i2.frameLateUsMax).toBeGreaterThanOrEqual((PAUSE_MS - 60) * 1000); // … late, once I was resumed
    expect(i2.pauses - i0.pauses).toBe(1);
    expect(i2.pausedUs - i0.pausedUs).toBeGreaterThanOrEqual(PAUSE_MS * 1000 * 0.9);
    // Under the partner timeout nothing failed: the write is on I (synchronous), the pair still duplex.
    expect(Buffer.compare(blockOf(w, 'I', 7), block(7))).toBe(0);
    expect(pair(w, 'P', 1)?.state).toBe(PairState.Duplex);
    expect(w.controllerErrors).toEqual([]);
  }, 10_000);

  it('pauseSystem I for 700 ms: P\'s partner timeout (300 ms) sees the silence — the write is fenced (fence level data) while I is still paused', async () => {
    const PAUSE_MS = 700;
    const t0 = w.nowUs(); // before the pause begins in I's worker, so "resumed after 700 ms" is measured from no later
    await w.pauseSystem('I', PAUSE_MS); // resumes by itself
    let doneAt: number | undefined, pausedWhenDone: boolean | undefined;
    const write = w.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba: 9, blocks: 1, data: block(9) })
      .then((r) => { doneAt = w.nowUs(); pausedWhenDone = w.isPaused('I'); return r; });
    const r = await write;
    // The firmware's rules: P hears nothing from I for partnerTimeoutUs → pair 1 failure suspend (partner lost),
    // the synchronous copy in flight fails, and with fence level data the host write is refused ('fenced').
    expect(r.status).toBe('fenced');
    expect(pausedWhenDone).toBe(true);
    expect(doneAt! - t0).toBeGreaterThanOrEqual(250_000);
    expect(doneAt! - t0).toBeLessThan(PAUSE_MS * 1000);
    expect(pair(w, 'P', 1)).toMatchObject({ state: PairState.FailureSuspend, failureCause: 'partner lost' });
    await until(w, 'I to resume by itself', () => !w.isPaused('I'), 2_000);
    expect(w.nowUs() - t0).toBeGreaterThanOrEqual(PAUSE_MS * 1000);
    expect(await w.command('I', { op: 'status' })).toMatchObject({ ok: true });
    expect(w.controllerErrors).toEqual([]);
  }, 10_000);

  it('pauseSystem and resumeSystem check their arguments', async () => {
    await expect(w.pauseSystem('X')).rejects.toThrow(/unknown storage system 'X' \(this topology has P, I, R\)/);
    await expect(w.pauseSystem('I', -5)).rejects.toThrow(/milliseconds > 0/);
    await expect(w.resumeSystem('Q')).rejects.toThrow(/unknown storage system 'Q'/);
    await w.resumeSystem('P'); // not paused: nothing to do
    expect(w.isPaused('P')).toBe(false);
  });

  it('parsePauseSpec reads SYSTEM@STEP:MS and names the bad part', () => {
    expect(parsePauseSpec('I@S230:2000')).toEqual({ system: 'I', step: 'S230', forMs: 2000 });
    expect(parsePauseSpec(' R@s510:12.5 ')).toEqual({ system: 'R', step: 'S510', forMs: 12.5 });
    expect(() => parsePauseSpec('IS230:2000')).toThrow(/no '@'/);
    expect(() => parsePauseSpec('@S230:2000')).toThrow(/storage system is missing/);
    expect(() => parsePauseSpec('I@230:2000')).toThrow(/'230' is not a step number like S230/);
    expect(() => parsePauseSpec('I@S230')).toThrow(/no ':'/);
    expect(() => parsePauseSpec('I@S230:0')).toThrow(/duration '0'/);
    expect(() => parsePauseSpec('I@S230:2s')).toThrow(/duration '2s' is not a number of milliseconds/);
  });

  it('armPause: the first S230 step pauses I for the given time and notes pause and resume; the sim runtime is refused', async () => {
    const log = new OperationsLog();
    const notes: string[] = [];
    armPause(w, log, parsePauseSpec('I@S230:120'), (m) => notes.push(m));
    const step = (s: string) => log.step({ timeUs: w.nowUs(), host: '100R', routine: 'failover', step: s, message: 'x' });
    step('S210');
    await w.sleep(20_000);
    expect(w.isPaused('I')).toBe(false);
    const t0 = w.nowUs();
    step('S230');
    await until(w, 'the pause note', () => notes.length >= 1, 1_000);
    expect(notes[0]).toBe('S230: storage system I paused for 120 ms (debugger-style), the others run on');
    expect(w.isPaused('I')).toBe(true);
    expect(await w.command('P', { op: 'status' })).toMatchObject({ ok: true });
    await until(w, 'the resume note', () => notes.length >= 2, 2_000);
    expect(w.isPaused('I')).toBe(false);
    expect(w.nowUs() - t0).toBeGreaterThanOrEqual(120_000);
    expect(notes[1]).toMatch(/^S230: storage system I resumed after 1[2-9]\d ms paused/);
    step('S230'); // only the first time
    await w.sleep(20_000);
    expect(w.isPaused('I')).toBe(false);
    expect(notes).toHaveLength(2);

    expect(() => armPause(w, log, parsePauseSpec('X@S230:10'), () => {})).toThrow(/unknown storage system 'X'/);
    const sim = { runtime: 'sim', topology: w.topology } as unknown as World;
    expect(() => armPause(sim, log, parsePauseSpec('I@S230:10'), () => {})).toThrow(/threads runtime.*rclab debug/);
  }, 10_000);

  it('flight recorder: when I\'s firmware fails (control memory magic corrupted), its recent events reach the harness as an error log after "controller stopped"', async () => {
    const cm = w.hardware('I').controlMemory;
    await w.fault({ kind: 'power-loss', system: 'I' });
    expect(cm[0]).toBe(0x52434c32); // word 0: the layout's magic, "RCL2" (firmware/definition-info.ts)
    Atomics.store(cm, 0, 0);
    const from = events.length;
    await w.fault({ kind: 'power-on', system: 'I' }); // the controller's constructor checks the magic
    const logsOfI = () => events.slice(from).filter((e) => e.system === 'I' && e.event.type === 'log')
      .map((e) => e.event as Extract<TimedEvent['event'], { type: 'log' }>);
    await until(w, 'the flight recorder dump of I', () => logsOfI().some((l) => l.message.startsWith('last ')), 2_000);
    const logs = logsOfI();
    const stopped = logs.findIndex((l) => l.level === 'error' && /^controller stopped: .*bad magic/.test(l.message));
    expect(stopped).toBeGreaterThanOrEqual(0);
    const dump = logs[stopped + 1]!; // right after "controller stopped"
    expect(dump.level).toBe('error');
    const lines = dump.message.split('\n');
    expect(lines[0]).toMatch(/^last (\d+) event\(s\) of storage system I, oldest first:$/);
    expect(lines).toHaveLength(Number(/^last (\d+)/.exec(lines[0]!)![1]) + 1);
    expect(lines.length - 1).toBeLessThanOrEqual(256);
    for (const l of lines.slice(1)) expect(l).toMatch(/^ +\d+\.\d{3} ms {2}\S/);
    expect(lines.at(-1)).toMatch(/ms {2}power on \(boot, power epoch \d+\)$/); // the event that failed
    expect(lines.at(-2)).toMatch(/ms {2}power off$/);
    const body = lines.slice(1).join('\n');
    expect(body).toMatch(/timer tick 0/);
    expect(body).toMatch(/command \d+ status/);
    expect(body).toMatch(/paused by the harness \(debugger-style\)/);
    expect(body).toMatch(/resumed after 1[2-9]\d\.\d ms paused/);
    expect(w.controllerErrors).toEqual([{ system: 'I', message: 'control memory is not formatted (bad magic)' }]);
    expect(w.isUp('I')).toBe(false);
  }, 10_000);
});

describe('rclab run --pause (threads runtime, a whole scenario)', () => {
  it('embodiment1-cycle with I paused 150 ms at S210: A3\'s S230 retrieval waits for I, is logged after the resume, and the cycle still ends without data loss', async () => {
    const { runScenario } = await import('../harness/scenarios.ts');
    const lines: Array<{ timeUs: number; text: string }> = [];
    const result = await runScenario('embodiment1-cycle', {
      runtime: 'threads', seed: 3, scale: 0.25, pause: parsePauseSpec('I@S210:150'),
      timeline: (e) => {
        if (e.kind === 'note') lines.push({ timeUs: e.timeUs, text: `note ${e.message}` });
        if (e.kind === 'step' && e.host === '100R') lines.push({ timeUs: e.timeUs, text: `${e.step} ${e.message}` });
      },
    });
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(true);
    const paused = lines.findIndex((l) => l.text === 'note S210: storage system I paused for 150 ms (debugger-style), the others run on');
    const resumed = lines.findIndex((l) => /^note S210: storage system I resumed after 1[5-9]\d ms paused/.test(l.text));
    const retrieved = lines.findIndex((l) => /^S230 retrieved all log information/.test(l.text));
    expect(paused).toBeGreaterThanOrEqual(0);
    expect(resumed).toBeGreaterThan(paused);
    expect(retrieved).toBeGreaterThan(resumed); // I's drain could only answer once I ran again
    expect(lines[retrieved]!.timeUs - lines[paused]!.timeUs).toBeGreaterThanOrEqual(150_000);
    expect(result.reports.map((r) => `${r.step} ${r.dataLoss ? 'data loss' : 'no data loss'}`)).toEqual(['S250 no data loss', 'S540 no data loss']);
    expect(result.notes.filter((n) => /paused|resumed/.test(n))).toHaveLength(2);
  }, 60_000);

  it('a pause is refused by name before any world is built: on the sim runtime, for a system the topology lacks, and as a malformed option', async () => {
    const { runScenario } = await import('../harness/scenarios.ts');
    await expect(runScenario('embodiment1-cycle', { runtime: 'sim', seed: 1, pause: parsePauseSpec('I@S230:100') }))
      .rejects.toThrow(/needs the threads runtime .*rclab debug/);
    await expect(runScenario('embodiment1-cycle', { runtime: 'threads', seed: 1, pause: parsePauseSpec('J@S230:100') }))
      .rejects.toThrow(/unknown storage system 'J' \(this topology has P, I, R\)/);
    const { execFile } = await import('node:child_process');
    const cli = (args: string[]) => new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, ['harness/rclab.mjs', 'run', 'embodiment1-cycle', ...args], (err, _out, stderr) =>
        resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }));
    });
    const [sim, bad, unknown] = await Promise.all([
      cli(['--runtime', 'sim', '--pause', 'I@S230:100']),
      cli(['--pause', 'I@230:100']),
      cli(['--pause', 'X@S230:100']),
    ]);
    expect(sim.code).toBe(2);
    expect(sim.stderr).toMatch(/--pause needs --runtime threads/);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/'230' is not a step number like S230/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown storage system 'X'/);
  }, 30_000);
});
