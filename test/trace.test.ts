// The Perfetto trace (harness/trace.ts): a valid Chrome Trace Event file with a process per storage system,
// host and link; routines with their step numbers; pair-state instants; frames in flight; counters; and the
// flight recorder's dump when a firmware assertion stops a controller.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ControlMemoryLayout, J } from '../firmware/definition-info.ts';
import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { runScenario, type ScenarioResult, type TimelineEntry } from '../harness/scenarios.ts';
import { DATA_LVOL, JOURNAL_LVOL, embodiment1Topology } from '../harness/topology.ts';
import { TraceRecorder, type TraceEvent } from '../harness/trace.ts';
import type { TimedEvent, World } from '../harness/world.ts';

type Trace = { traceEvents: TraceEvent[]; displayTimeUnit: string; metadata: Record<string, unknown> };

/** Everything that would make Perfetto refuse or misdraw the file; [] when it is well formed. */
function structureProblems(t: Trace): string[] {
  const problems: string[] = [];
  const say = (e: TraceEvent, why: string) => { if (problems.length < 20) problems.push(`${why}: ${JSON.stringify(e).slice(0, 200)}`); };
  if (!Array.isArray(t.traceEvents) || t.displayTimeUnit !== 'ms' || typeof t.metadata !== 'object') return ['not a trace object'];
  const stacks = new Map<string, string[]>();      // pid/tid → names of open B slices
  const async = new Map<string, number>();         // cat/id → ts of the open b
  let lastTs = -Infinity;
  for (const e of t.traceEvents) {
    if (typeof e.ph !== 'string' || typeof e.name !== 'string' || !Number.isInteger(e.pid)) { say(e, 'no ph, name or pid'); continue; }
    if (e.ph === 'M') continue;
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) { say(e, 'bad ts'); continue; }
    if (e.ts < lastTs) say(e, 'not in time order');
    lastTs = e.ts;
    const thread = `${e.pid}/${e.tid}`;
    switch (e.ph) {
      case 'B': { if (!Number.isInteger(e.tid)) say(e, 'B without tid'); const s = stacks.get(thread) ?? []; s.push(e.name); stacks.set(thread, s); break; }
      case 'E': { const s = stacks.get(thread); if (!s?.length) say(e, 'E without B'); else if (s.pop() !== e.name) say(e, 'E closes another slice'); break; }
      case 'b': { const k = `${e.cat}/${e.id}`; if (e.cat === undefined || e.id === undefined) say(e, 'b without cat/id'); if (async.has(k)) say(e, 'id reused while open'); async.set(k, e.ts); break; }
      case 'e': { const k = `${e.cat}/${e.id}`; const b = async.get(k); if (b === undefined) say(e, 'e without b'); else if (e.ts < b) say(e, 'e before its b'); async.delete(k); break; }
      case 'i': if (!['t', 'p', 'g'].includes(e.s!)) say(e, 'instant without scope'); break;
      case 'C': if (!e.args || !Object.values(e.args).every((v) => typeof v === 'number')) say(e, 'counter with non-numeric args'); break;
      default: say(e, 'unknown ph');
    }
  }
  for (const [thread, s] of stacks) if (s.length) problems.push(`${s.length} B slice(s) never ended on ${thread}: ${s.join(', ')}`);
  if (async.size) problems.push(`${async.size} async slice(s) never ended`);
  return problems;
}

/** B/E pairs as intervals (the file is checked to be balanced and ordered first). */
function sliceIntervals(t: Trace): Array<{ pid: number; tid: number; name: string; startUs: number; endUs: number }> {
  const open = new Map<string, TraceEvent[]>();
  const out: Array<{ pid: number; tid: number; name: string; startUs: number; endUs: number }> = [];
  for (const e of t.traceEvents) {
    const k = `${e.pid}/${e.tid}`;
    if (e.ph === 'B') open.set(k, [...(open.get(k) ?? []), e]);
    if (e.ph === 'E') { const b = open.get(k)!.pop()!; out.push({ pid: b.pid, tid: b.tid!, name: b.name, startUs: b.ts, endUs: e.ts }); }
  }
  return out;
}

function processNames(t: Trace): Map<string, number> {
  return new Map(t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => [String(e.args!.name), e.pid]));
}

/** Step numbers of the run's routines (steps and reports). */
function stepNumbers(entries: TimelineEntry[]): Set<string> {
  return new Set(entries.flatMap((e) => (e.kind === 'step' || e.kind === 'report' ? [e.step] : [])));
}

function namesWithStep(t: Trace, step: string): TraceEvent[] {
  const re = new RegExp(`(^|\\W)${step}(\\W|$)`);
  return t.traceEvents.filter((e) => e.ph !== 'M' && re.test(e.name));
}

async function tracedRun(runtime: 'sim' | 'threads'): Promise<{ result: ScenarioResult; entries: TimelineEntry[]; trace: Trace; rec: TraceRecorder; onDisk: Trace }> {
  let rec: TraceRecorder | null = null;
  const entries: TimelineEntry[] = [];
  const result = await runScenario('embodiment1-cycle', {
    runtime, seed: 1, scale: 0.25,
    onWorld: (w: World) => { rec = new TraceRecorder(w); },
    timeline: (e) => { entries.push(e); rec!.timeline(e); },
  });
  const r = rec as TraceRecorder | null;
  if (!r) throw new Error('onWorld was not called');
  r.finish();
  const dir = mkdtempSync(join(tmpdir(), 'rclab-trace-'));
  try {
    r.write(join(dir, 'trace.json'));
    const onDisk = JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8')) as Trace;
    return { result, entries, trace: r.toJson() as Trace, rec: r, onDisk };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkCommonStructure(run: Awaited<ReturnType<typeof tracedRun>>): void {
  const { trace, onDisk, entries, rec } = run;
  expect(structureProblems(onDisk)).toEqual([]);
  expect(onDisk.traceEvents.length).toBe(trace.traceEvents.length);
  expect(rec.eventCount).toBe(trace.traceEvents.length);
  expect(trace.metadata.droppedEvents).toBe(0);

  const procs = processNames(trace);
  for (const p of ['storage system P', 'storage system I', 'storage system R', 'host 100P', 'host 100R']) expect(procs.has(p), p).toBe(true);
  expect(new Set(procs.values()).size).toBe(procs.size); // one pid each

  // Every step number of the run appears in an event name (S100 … S570 of this cycle).
  const steps = stepNumbers(entries);
  expect(steps.size).toBeGreaterThan(10);
  for (const s of ['S200', 'S230', 'S250', 'S540']) expect(steps.has(s), s).toBe(true);
  const missing = [...steps].filter((s) => namesWithStep(trace, s).length === 0);
  expect(missing).toEqual([]);

  // Routines are slices on their host's process; each step and report is an instant inside its routine's slice.
  const hostP = procs.get('host 100P')!, hostR = procs.get('host 100R')!;
  const routineSlices = sliceIntervals(trace).filter((x) => x.pid === hostP || x.pid === hostR);
  expect(new Set(routineSlices.map((x) => x.name).filter((n) => /^A[2-6] /.test(n))))
    .toEqual(new Set(['A2 initial copying', 'A3 failover', 'A4 reverse copying', 'A5 reverse copy control', 'A6 failback']));
  const stepEvents = trace.traceEvents.filter((e) => e.cat === 'step' || e.cat === 'report');
  expect(stepEvents.length).toBe(entries.filter((e) => e.kind === 'step' || e.kind === 'report').length);
  for (const e of stepEvents) {
    expect(e.ph).toBe('i');
    const within = routineSlices.find((x) => x.pid === e.pid && x.tid === e.tid && x.name === e.args!.routine && x.startUs <= e.ts && e.ts <= x.endUs);
    expect(within, `${e.name} inside its routine's slice`).toBeDefined();
  }
  const s230 = namesWithStep(trace, 'S230').find((e) => e.cat === 'step' && e.pid === hostR);
  expect(s230?.args).toMatchObject({ step: 'S230', routine: 'A3 failover' });
  expect(typeof s230?.args?.message).toBe('string');
  const reports = trace.traceEvents.filter((e) => e.cat === 'report');
  expect(reports.map((e) => e.name.split(' ')[0])).toEqual(run.result.reports.map((r) => r.step));

  // Every pair-state change is an instant (scope t) on its storage system's process, with its arguments.
  const changes = entries.filter((e): e is Extract<TimelineEntry, { kind: 'event' }> => e.kind === 'event' && e.event.type === 'pair-state');
  const instants = trace.traceEvents.filter((e) => e.cat === 'pair-state');
  expect(changes.length).toBeGreaterThan(10);
  expect(instants.length).toBe(changes.length);
  for (const i of instants) {
    expect(i.ph).toBe('i');
    expect(i.s).toBe('t');
    expect(Object.keys(i.args!)).toEqual(expect.arrayContaining(['pairId', 'from', 'to', 'cause', 'step']));
  }
  const failover = instants.find((e) => e.pid === procs.get('storage system I') && e.args!.to === 'suspending');
  expect(failover?.name).toMatch(/^S230 pair 2: duplex → suspending/);
  // …and the state between changes is a slice on the pair's track.
  expect(trace.traceEvents.some((e) => e.ph === 'B' && e.pid === procs.get('storage system R') && e.name === 'duplex')).toBe(true);

  // Journal backlog on I while host P writes.
  const backlogI = trace.traceEvents.filter((e) => e.ph === 'C' && e.name === 'backlog 232I' && e.pid === procs.get('storage system I'));
  expect(backlogI.some((e) => (e.args!.entries as number) > 0 && (e.args!.bytes as number) > 0)).toBe(true);
  // Counters at most once per ms per counter.
  const counterTs = new Map<string, number>();
  for (const c of trace.traceEvents.filter((e) => e.ph === 'C' && e.name.startsWith('backlog'))) {
    const k = `${c.pid}/${c.name}`;
    if (counterTs.has(k)) expect(c.ts - counterTs.get(k)!).toBeGreaterThanOrEqual(999);
    counterTs.set(k, c.ts);
  }
}

describe('Perfetto trace of embodiment1-cycle (sim, seed 1, scale 0.25)', () => {
  it('processes per system, host and link; every step number (S100 … S540) in an event name; pair-state instants (S230 suspending); frames; backlog and utilisation counters', async () => {
    const run = await tracedRun('sim');
    expect(run.result.ok, run.result.failures.join('\n')).toBe(true);
    checkCommonStructure(run);
    const { trace } = run;
    const procs = processNames(trace);
    expect(procs.has('link S1 P–I (100 km)')).toBe(true);
    expect(procs.has('link S2 I–R (1000 km)')).toBe(true);
    expect(trace.metadata.runtime).toBe('sim');

    // Frames in flight: async slices on the link's process, begin at send and end at delivery.
    const begins = trace.traceEvents.filter((e) => e.ph === 'b' && e.cat === 'frame');
    const ends = new Map(trace.traceEvents.filter((e) => e.ph === 'e' && e.cat === 'frame').map((e) => [e.id, e]));
    expect(begins.length).toBeGreaterThan(1000);
    expect(ends.size).toBe(begins.length);
    for (const b of begins) expect(ends.get(b.id)!.ts).toBeGreaterThanOrEqual(b.ts);
    const names = new Set(begins.map((e) => e.name));
    for (const n of ['SyncWrite P→I', 'SyncAck I→P', 'JournalBatch I→R', 'JournalAck R→I', 'FormationCopy P→I', 'Control I→R', 'JournalBatch R→I']) expect(names.has(n), n).toBe(true);
    const s2 = procs.get('link S2 I–R (1000 km)')!;
    const batch = begins.find((e) => e.name === 'JournalBatch I→R')!;
    expect(batch.pid).toBe(s2);
    expect(ends.get(batch.id)!.ts - batch.ts).toBeGreaterThanOrEqual(5000); // 1000 km ≈ 5 ms one way
    // Frames sent to P after its power loss, or over a cut link, end as lost.
    expect(trace.traceEvents.some((e) => e.ph === 'i' && e.cat === 'frame' && e.name.startsWith('lost ') && e.pid === procs.get('link S1 P–I (100 km)'))).toBe(true);

    // Link utilisation per direction.
    for (const n of ['utilisation P→I %', 'utilisation I→R %', 'utilisation R→I %']) {
      const c = trace.traceEvents.filter((e) => e.ph === 'C' && e.name === n);
      expect(c.some((e) => (e.args!.percent as number) > 0), n).toBe(true);
    }
  });

  it('threads runtime: the same processes, steps and pair-state instants, journal backlog; no frames or link counters (said in metadata)', async () => {
    const run = await tracedRun('threads');
    expect(run.result.ok, run.result.failures.join('\n')).toBe(true);
    checkCommonStructure(run);
    const { trace } = run;
    expect(trace.metadata.runtime).toBe('threads');
    expect(String(trace.metadata.framesAndLinks)).toMatch(/not available on the threads runtime/);
    expect(trace.traceEvents.some((e) => e.cat === 'frame' || e.name.startsWith('utilisation') || e.name.startsWith('link '))).toBe(false);
  });
});

describe('flight recorder in the trace', () => {
  it('a firmware assertion on I (journal entry out of sequence) publishes the "last N event(s) of storage system I" dump to onEvent and the trace', async () => {
    const world = new SimWorld(embodiment1Topology(), 1);
    const rec = new TraceRecorder(world);
    const small = new TraceRecorder(world, { maxEvents: 60 }); // the cap: same run, most events dropped
    const seen: TimedEvent[] = [];
    world.onEvent((e) => seen.push(e));
    try {
      // An asynchronous pair P→I (duplex at once), and host P writes three blocks that I applies and keeps in 232I.
      const created = await world.command('P', { op: 'create', initialCopy: 'none', pair: {
        pairId: 7, localLvol: DATA_LVOL, remoteStorageId: 1, remoteLvol: DATA_LVOL, copyType: 'async', fence: 'never',
        journalLvol: JOURNAL_LVOL, remoteJournalLvol: JOURNAL_LVOL } });
      expect(created.ok, JSON.stringify(created)).toBe(true);
      const write = (lba: number) => world.hostIo('100P', { op: 'write', lvol: DATA_LVOL, lba, blocks: 1, data: new Uint8Array(BLOCK_SIZE_BYTES).fill(lba + 1) });
      for (let lba = 0; lba < 3; lba++) expect((await write(lba)).status).toBe('ok');
      await world.sleep(20_000);
      const j = world.journals('I').find((x) => x.pairId === 7)!;
      expect(j).toMatchObject({ entries: 3, newestSeq: 3 });
      expect(world.controllerErrors).toEqual([]);

      // Corrupt I's control memory: its journal's newest sequence number two behind. The next entry I applies
      // no longer follows it, and the journal's invariant stops the controller.
      new ControlMemoryLayout(world.systems.get('I')!.controlMemory).setJournalWord(j.slot, J.newestSeq, j.newestSeq - 2);
      expect((await write(3)).status).toBe('ok');
      await world.sleep(20_000);
      expect(world.controllerErrors).toHaveLength(1);
      expect(world.controllerErrors[0]!.message).toMatch(/firmware invariant violated: journal 1: entry 4 does not follow 1/);
      expect(world.isUp('I')).toBe(false);

      const dump = seen.find((e) => e.system === 'I' && e.event.type === 'log' && /^last \d+ event\(s\) of storage system I/.test(e.event.message));
      expect(dump, 'the flight recorder dump reaches world.onEvent').toBeDefined();
      const text = (dump!.event as { message: string }).message;
      expect(text).toMatch(/frame t5 from P/); // the journal batch that tripped the assertion is in it

      const trace = rec.toJson() as Trace;
      expect(structureProblems(trace)).toEqual([]);
      const procs = processNames(trace);
      const inTrace = trace.traceEvents.find((e) => e.cat === 'flight-recorder');
      expect(inTrace).toMatchObject({ ph: 'i', pid: procs.get('storage system I'), args: { text } });
      expect(inTrace!.name).toMatch(/^flight recorder: last \d+ event\(s\) of storage system I$/);
      expect(trace.traceEvents.some((e) => e.cat === 'log.error' && e.pid === procs.get('storage system I') && /controller stopped: firmware invariant violated/.test(e.name))).toBe(true);

      // The capped recorder stayed within its bound, balanced, and says how much it dropped.
      const capped = small.toJson() as Trace;
      expect(structureProblems(capped)).toEqual([]);
      expect(small.eventCount).toBeLessThanOrEqual(60 + capped.traceEvents.filter((e) => e.ph === 'M').length);
      expect(capped.metadata.droppedEvents as number).toBeGreaterThan(0);
      expect(capped.metadata.droppedEvents as number).toBe(trace.traceEvents.length - capped.traceEvents.length);
    } finally {
      await world.close();
    }
  });
});
