// `rclab debug`: the command line of the stepping debugger (harness/debugger.ts). Interactive on a terminal
// (history, tab completion, colours); otherwise it reads commands from a file or stdin, one per line, and
// echoes each, so a session can be scripted and tested.

import { readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { styleText } from 'node:util';
import { PAIR_STATE_NAMES, PRODUCT_STATE_NAMES } from '../firmware/pair-state.ts';
import { FRAME_TYPE_NAMES, SimDebugger, describeBreakpoint, describeEvent, parseFrameType, type BreakpointSpec, type StopReason } from './debugger.ts';
import { formatRunSummary, timelineFormatter } from './timeline.ts';
import { copyDevicesArgs } from './copy-devices.ts';
import { FrameType } from '../firmware/frames.ts';
import type { TimelineEntry } from './scenarios.ts';

type Style = Parameters<typeof styleText>[0];

export const DEBUG_COMMANDS: Record<string, string> = {
  step: 'step [n]                 dispatch exactly n events (default 1), ignoring breakpoints',
  next: 'next <S###>              run until that step number is logged (stops earlier at a breakpoint)',
  continue: 'continue                 run until a breakpoint or the end of the run',
  break: 'break <S###> | state <name> [sys[:pair]] | seq <n> [sys] | frame <type> [sys] | routine <name>',
  delete: 'delete <id>|all          remove breakpoints',
  breaks: 'breaks                   list breakpoints',
  print: 'print pairs [sys] | bitmap <sys> <pair> | journal [sys] | links | devices [sys] | volume <sys> <lvol> <lba> [blocks] | cache [sys] | recent <sys> | events [n]',
  time: 'time                     virtual time and event number',
  where: 'where                    the last event, the next one, the routine step in progress',
  digest: 'digest                   digest of the whole world (volumes, control memory, cache, links, frames, clock, PRNG)',
  back: 'back [n]                 return n events (default 1) by replaying the run; checks the world is identical',
  goto: 'goto <event#>            go to an event number, forward or back',
  save: 'save <file>              save the whole world to a snapshot file',
  load: 'load <file>              load a snapshot file (replays its run to it and checks every byte)',
  finish: 'finish                   run to the end ignoring breakpoints, and print the result',
  help: 'help                     this list',
  quit: 'quit                     leave (the run stops where it is)',
};

const ALIASES: Record<string, string> = { s: 'step', n: 'next', c: 'continue', b: 'break', d: 'delete', p: 'print', q: 'quit', exit: 'quit', bt: 'where', info: 'breaks', h: 'help', '?': 'help' };
const PRINT_SUBJECTS = ['pairs', 'bitmap', 'journal', 'links', 'devices', 'volume', 'cache', 'recent', 'events'];

export interface ReplOptions {
  color: boolean;
  /** Where output goes (stdout by default). */
  out?: (line: string) => void;
  /** Chrome Trace JSON written when the session ends (the current world's whole history). */
  writeTrace?: () => void;
}

export class DebugRepl {
  private readonly out: (line: string) => void;
  private readonly fmt: (e: TimelineEntry) => string | null;
  failedCommands = 0;

  constructor(private dbg: SimDebugger, private readonly o: ReplOptions) {
    this.out = o.out ?? ((l) => console.log(l));
    this.fmt = timelineFormatter(o.color);
  }

  /** Timeline lines of the running world, printed as they happen. */
  timeline(e: TimelineEntry): void {
    const line = this.fmt(e);
    if (line) this.out(line);
  }

  private paint(s: Style, t: string): string { return this.o.color ? styleText(s, t) : t; }

  banner(): void {
    const r = this.dbg.recipe;
    this.out(this.paint('bold', `rclab debug: ${r.scenario}, seed ${r.seed}${r.scale !== 1 ? `, scale ${r.scale}` : ''}${r.faults !== 'none' ? `, faults ${r.faults}` : ''}${copyDevicesArgs(r.copyDevices) ? `, copy devices (${copyDevicesArgs(r.copyDevices).trim()})` : ''} (sim runtime)`));
    this.out(`held before event #${this.dbg.eventIndex + 1}; type help for commands`);
  }

  /** Runs one command line; false when the session should end. */
  async execute(line: string): Promise<boolean> {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0 || words[0]!.startsWith('#')) return true;
    const cmd = ALIASES[words[0]!] ?? words[0]!;
    const args = words.slice(1);
    try {
      return await this.dispatch(cmd, args);
    } catch (e) {
      this.failedCommands++;
      this.out(this.paint('red', `error: ${(e as Error).message}`));
      return true;
    }
  }

  private async dispatch(cmd: string, args: string[]): Promise<boolean> {
    const d = this.dbg;
    switch (cmd) {
      case 'step': return this.stopped(await d.step(count(args[0], 1, 'step')));
      case 'next': {
        if (!args[0] || !/^S\d+$/.test(args[0])) throw new Error('next needs a step number, like next S250');
        return this.stopped(await d.next(args[0]));
      }
      case 'continue': return this.stopped(await d.continue());
      case 'finish': {
        const r = await d.finish();
        this.out(formatRunSummary(r, this.o.color));
        return true;
      }
      case 'break': {
        const b = d.addBreakpoint(parseBreakpoint(args));
        this.out(`breakpoint ${b.id}: ${describeBreakpoint(b)}`);
        return true;
      }
      case 'delete': {
        if (args[0] === 'all') { for (const b of [...d.breakpoints]) d.deleteBreakpoint(b.id); this.out('every breakpoint deleted'); return true; }
        d.deleteBreakpoint(count(args[0], undefined, 'delete'));
        this.out(`breakpoint ${args[0]} deleted`);
        return true;
      }
      case 'breaks':
        if (d.breakpoints.length === 0) this.out('no breakpoints');
        for (const b of d.breakpoints) this.out(`  ${String(b.id).padStart(3)}  ${describeBreakpoint(b)}`);
        return true;
      case 'print': this.print(args); return true;
      case 'time': this.out(`${ms(d.nowUs)} virtual, event #${d.eventIndex}${d.finished ? ' (the run has finished)' : ''}`); return true;
      case 'where': this.where(); return true;
      case 'digest': this.out(`world digest at event #${d.eventIndex}: ${d.digest()}`); return true;
      case 'back':
      case 'goto': {
        const r = cmd === 'back' ? await d.back(count(args[0], 1, 'back')) : await d.goto(count(args[0], undefined, 'goto'));
        this.out(`at event #${r.eventIndex} (${ms(d.nowUs)}), replayed in ${r.replayMs.toFixed(0)} ms; world digest ${r.digest}` +
          (r.verified ? this.paint('green', ' — identical to when this event was first reached') : ' (this event was not visited before: nothing to compare)'));
        this.where();
        return true;
      }
      case 'save': {
        if (!args[0]) throw new Error('save needs a file name');
        const bytes = d.save(args[0]);
        this.out(`saved event #${d.eventIndex} (${ms(d.nowUs)}) to ${args[0]}: ${(bytes / 1024).toFixed(0)} KiB, world digest ${d.digest()}`);
        return true;
      }
      case 'load': {
        if (!args[0]) throw new Error('load needs a file name');
        const next = await SimDebugger.load(args[0], d.options);
        for (const b of d.breakpoints) next.addBreakpoint(b);
        await d.close();
        this.dbg = next;
        this.out(`loaded ${args[0]}: ${next.recipe.scenario} seed ${next.recipe.seed} at event #${next.eventIndex} (${ms(next.nowUs)}); world digest ${next.digest()} matches the file`);
        return true;
      }
      case 'help':
        for (const h of Object.values(DEBUG_COMMANDS)) this.out(`  ${h}`);
        this.out('  aliases: s n c b d p q; lines starting with # are comments');
        return true;
      case 'quit': return false;
      default: throw new Error(`unknown command '${cmd}' (type help)`);
    }
  }

  private stopped(r: StopReason): boolean {
    const d = this.dbg;
    if (r.kind === 'finished') {
      this.out(this.paint('bold', `■ ${r.detail}`));
      if (d.result) this.out(formatRunSummary(d.result, this.o.color));
      return true;
    }
    const head = r.kind === 'breakpoint' ? this.paint(['bold', 'yellow'], `■ breakpoint ${r.breakpoint!.id} (${describeBreakpoint(r.breakpoint!)}): ${r.detail}`) : this.paint('bold', `■ ${r.detail}`);
    this.out(head);
    this.where();
    return true;
  }

  private where(): void {
    const d = this.dbg;
    const last = d.lastEvent;
    const next = d.pendingEvents()[0];
    this.out(`  #${d.eventIndex}  ${ms(d.nowUs)}  last: ${last ? this.paint('cyan', describeEvent(last)) : '(none yet)'}`);
    if (next) this.out(`  next: ${ms(next.timeUs)}  ${describeEvent(next)}`);
    if (d.lastStep) this.out(`  routine: ${d.lastStep.host} ${d.lastStep.routine} at ${this.paint('cyan', d.lastStep.step)}: ${d.lastStep.message}`);
  }

  private systems(arg: string | undefined): string[] {
    return arg ? [arg] : [...this.dbg.world.systems.keys()];
  }

  private print(args: string[]): void {
    const d = this.dbg;
    const what = args[0];
    switch (what) {
      case 'pairs':
        for (const sys of this.systems(args[1])) {
          const up = d.world.isUp(sys);
          const rows = d.pairs(sys);
          this.out(this.paint('bold', `storage system ${sys}${up ? '' : ' (powered off)'}`) + (rows.length ? '' : ': no pairs'));
          for (const p of rows) {
            const state = `${p.stateName} (${PRODUCT_STATE_NAMES[p.state]})`;
            const copy = p.copyTracksTotal ? ` copy ${p.copyTracksDone}/${p.copyTracksTotal}` : '';
            this.out(`  pair ${p.pairId} ${p.copyType.padEnd(5)} ${p.role.padEnd(11)} ${p.direction.padEnd(7)} remote ${p.remote}:${p.remoteLvol}  ${this.paint(p.failureCause !== 'none' ? 'red' : 'green', state.padEnd(24))}` +
              ` dirty ${p.dirtyTracks}${copy} applied #${p.appliedSeq}${p.copyType === 'sync' ? ` fence ${p.fence}` : ''}${p.failureCause !== 'none' ? ` cause ${p.failureCause}` : ''}`);
          }
        }
        return;
      case 'bitmap': {
        if (!args[1] || !args[2]) throw new Error('print bitmap <system> <pairId>');
        const b = d.bitmap(args[1], count(args[2], undefined, 'pairId'));
        this.out(`difference bitmap of pair ${b.pairId} on ${b.system}: ${b.dirtyTracks} of ${b.tracks} tracks dirty${b.dirtyRanges.length ? `: ${b.dirtyRanges.join(', ')}${b.dirtyRanges.length === 32 ? ' …' : ''}` : ''}`);
        return;
      }
      case 'journal':
        for (const sys of this.systems(args[1])) {
          const js = d.journals(sys);
          if (js.length === 0) this.out(`${sys}: no journal`);
          for (const j of js) {
            this.out(`journal 232${sys} (LVOL ${j.journalLvol}, pair ${j.pairId}): ${j.entries} entries, sequence ${j.entries ? `#${j.oldestSeq}…#${j.newestSeq}` : `none (next #${j.newestSeq + 1})`}, ` +
              `${j.usedBytes} of ${j.capacityBytes} bytes used (${((100 * j.usedBytes) / j.capacityBytes).toFixed(1)} %), head ${j.headOffset} tail ${j.tailOffset}`);
          }
        }
        return;
      case 'links': {
        const l = d.links();
        for (const x of l.links) {
          const frames = l.inFlight.filter((f) => f.link === x.name);
          this.out(`${this.paint('bold', x.name)} ${x.a}–${x.b} ${x.distanceKm} km ${x.up ? this.paint('green', 'up') : this.paint('red', 'down')}: ${frames.length} frame(s) in flight`);
          for (const f of frames) this.out(`  ${f.from}→${f.to} ${f.frameType.padEnd(13)} ${String(f.bytes).padStart(8)} B path ${f.path}  sent ${ms(f.sentUs)} arrives ${ms(f.arrivesUs)}${f.duplicate ? ' (duplicate)' : ''}`);
        }
        return;
      }
      case 'devices':
        for (const sys of this.systems(args[1])) {
          const c = d.copyDevice(sys);
          if (!c) { this.out(`${sys}: no copy device (copies go from the CPU straight to the link)`); continue; }
          const st = c.stats;
          this.out(`copy device of ${sys}: ${c.config.throughputMBps} MB/s, ${c.config.queueDepth} deep, ${c.config.setupUs} µs set-up; ${c.queue.length} frame(s) in it, ${c.backlog.length} waiting; ` +
            `done ${st.frames} frame(s) / ${st.bytes} B, busy ${ms(st.busyUs)}, max queue ${st.maxQueue}, queue-full waits ${st.queueFullWaits}, lost ${st.framesLost}`);
          const name = (t: number) => FrameType[t] ?? `t${t}`;
          const dest = (id: number) => d.world.topology.systems.find((x) => x.id === id)?.name ?? `#${id}`;
          for (const f of c.queue) this.out(`  →${dest(f.item.dest)} ${name(f.item.frame[0]!).padEnd(13)} ${String(f.bytes).padStart(8)} B  handed ${ms(f.item.handedUs)} done ${ms(f.doneUs)}`);
          for (const f of c.backlog) this.out(`  →${dest(f.item.dest)} ${name(f.item.frame[0]!).padEnd(13)} ${String(f.bytes).padStart(8)} B  handed ${ms(f.item.handedUs)} waiting for a slot`);
        }
        return;
      case 'volume': {
        if (args.length < 4) throw new Error('print volume <system> <lvol> <lba> [blocks]');
        const blocks = count(args[4], 1, 'blocks');
        const bytes = d.volume(args[1]!, count(args[2], undefined, 'lvol'), count(args[3], undefined, 'lba'), blocks);
        for (let b = 0; b < blocks; b++) {
          const block = bytes.subarray(b * 4096, (b + 1) * 4096);
          const zero = block.every((x) => x === 0);
          this.out(`  ${args[1]} LVOL ${args[2]} block ${count(args[3], undefined, 'lba') + b}: ${zero ? 'zeros' : hex(block.subarray(0, 32)) + ' …'}`);
        }
        return;
      }
      case 'cache':
        for (const sys of this.systems(args[1])) {
          const c = d.cache(sys);
          this.out(`cache of ${sys}: ${c.slotsInUse} of ${c.slots} slots in use (${c.slotBytes / 1024} KiB each)`);
        }
        return;
      case 'recent': {
        if (!args[1]) throw new Error('print recent <system>');
        for (const e of d.recentEvents(args[1]).slice(-20)) this.out(`  ${ms(e.timeUs)}  ${e.what}`);
        return;
      }
      case 'events': {
        const n = count(args[1], 10, 'events');
        for (const e of d.pendingEvents().slice(0, n)) this.out(`  ${ms(e.timeUs)}  ${describeEvent(e)}`);
        return;
      }
      default: throw new Error(`print what? (${PRINT_SUBJECTS.join(', ')})`);
    }
  }

  /** Tab completion: commands, print subjects, systems, state names, frame types. */
  complete(line: string): [string[], string] {
    const words = line.split(/\s+/);
    const cur = words[words.length - 1] ?? '';
    let pool: string[];
    if (words.length <= 1) pool = Object.keys(DEBUG_COMMANDS);
    else {
      const cmd = ALIASES[words[0]!] ?? words[0]!;
      const systems = [...this.dbg.world.systems.keys()];
      if (cmd === 'print' && words.length === 2) pool = PRINT_SUBJECTS;
      else if (cmd === 'break' && words.length === 2) pool = ['state', 'seq', 'frame', 'routine', 'S210', 'S230', 'S250'];
      else if (cmd === 'break' && words[1] === 'state') pool = [...Object.values(PAIR_STATE_NAMES).map((s) => s.split(' ')[0]!), ...systems];
      else if (cmd === 'break' && words[1] === 'frame') pool = [...FRAME_TYPE_NAMES, ...systems];
      else pool = systems;
    }
    return [pool.filter((p) => p.startsWith(cur)), cur];
  }

  /** Reads commands from a script (file or piped stdin), echoing each; returns when they end or one says quit. */
  async runScript(text: string): Promise<void> {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      this.out(this.paint('dim', `(rclab) ${line.trim()}`));
      if (!(await this.execute(line))) break;
    }
    this.o.writeTrace?.();
  }

  /** The interactive prompt, with history (~/.rclab_debug_history) and tab completion. */
  async interactive(): Promise<void> {
    const historyFile = join(homedir(), '.rclab_debug_history');
    let history: string[] = [];
    try { history = readFileSync(historyFile, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 1000); } catch { /* first session */ }
    const rl: Interface = createInterface({ input: process.stdin, output: process.stdout, prompt: this.paint('bold', '(rclab) '),
      completer: (l: string) => this.complete(l), history, historySize: 1000, terminal: true });
    rl.prompt();
    for await (const line of rl) {
      if (!(await this.execute(line))) break;
      rl.prompt();
    }
    const h = (rl as unknown as { history: string[] }).history;
    try { writeFileSync(historyFile, [...h].reverse().join('\n') + '\n'); } catch { /* read-only home */ }
    rl.close();
    this.o.writeTrace?.();
  }

  get debugger(): SimDebugger { return this.dbg; }
}

/** "S230", "state failure suspend I:1", "seq 500 R", "frame JournalBatch R", "routine A3". */
export function parseBreakpoint(args: string[]): BreakpointSpec {
  const [kind, ...rest] = args;
  if (!kind) throw new Error('break what? (S###, state, seq, frame, routine)');
  if (/^S\d+$/.test(kind)) return { kind: 'step', step: kind };
  const target = (w: string | undefined) => {
    if (w === undefined) return {};
    const m = /^([A-Z])(?::(\d+))?$/.exec(w);
    if (!m) throw new Error(`'${w}' is not a storage system (like I) or a pair on one (like I:1)`);
    return { system: m[1], pairId: m[2] === undefined ? undefined : Number(m[2]) };
  };
  switch (kind) {
    case 'state': {
      const last = rest[rest.length - 1];
      const hasTarget = last !== undefined && /^[A-Z](:\d+)?$/.test(last);
      const name = (hasTarget ? rest.slice(0, -1) : rest).join(' ');
      if (!name) throw new Error(`break state <name> [system[:pair]] (names: ${Object.values(PAIR_STATE_NAMES).join(', ')})`);
      return { kind: 'state', state: name, ...target(hasTarget ? last : undefined) };
    }
    case 'seq': return { kind: 'seq', seq: count(rest[0], undefined, 'seq'), system: target(rest[1]).system };
    case 'frame': {
      if (!rest[0]) throw new Error(`break frame <type> [system] (types: ${FRAME_TYPE_NAMES.join(', ')})`);
      return { kind: 'frame', frameType: parseFrameType(rest[0]), system: target(rest[1]).system };
    }
    case 'routine':
      if (!rest.length) throw new Error('break routine <name>, like break routine A3');
      return { kind: 'routine', routine: rest.join(' ') };
    default: throw new Error(`unknown breakpoint kind '${kind}' (use S###, state, seq, frame or routine)`);
  }
}

function count(v: string | undefined, dflt: number | undefined, what: string): number {
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`${what} needs a number`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: '${v}' is not a whole number ≥ 0`);
  return n;
}

function ms(us: number): string {
  return `${(us / 1000).toFixed(3)} ms`;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
