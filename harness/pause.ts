// `--pause I@S230:2000`: when the operations log first records step S230, storage system I is paused for 2000 ms
// as a debugger breakpoint would pause it — its CPU holds between two firmware events while the other storage
// systems run on, and frames sent to it wait in its rings with their delivery times (so the senders' timeouts
// see the silence and I, once resumed, sees them late). Threads runtime only: the sim runtime has `rclab debug`.

import type { OperationsLog } from './copy-control.ts';
import { systemSpec, type World } from './world.ts';

export interface PauseSpec {
  /** The storage system to pause (P, I, R …). */
  system: string;
  /** The step number whose first log entry starts the pause (S230). */
  step: string;
  forMs: number;
}

const SYNTAX = 'expected SYSTEM@STEP:MILLISECONDS, e.g. I@S230:2000';

/** Parses `I@S230:2000` (system I, at step S230, for 2000 ms). */
export function parsePauseSpec(text: string): PauseSpec {
  const t = String(text).trim();
  const bad = (why: string): never => { throw new Error(`pause '${t}': ${why} (${SYNTAX})`); };
  const at = t.indexOf('@');
  if (at < 0) bad(`no '@' between the storage system and the step`);
  if (t.indexOf('@', at + 1) >= 0) bad(`more than one '@'`);
  const system = t.slice(0, at);
  const rest = t.slice(at + 1);
  const colon = rest.lastIndexOf(':');
  if (colon < 0) bad(`no ':' before the duration in milliseconds`);
  const step = rest.slice(0, colon).toUpperCase();
  const ms = rest.slice(colon + 1);
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(system)) bad(system === '' ? 'the storage system is missing' : `'${system}' is not a storage system name`);
  if (!/^S\d+$/.test(step)) bad(step === '' ? 'the step is missing' : `'${rest.slice(0, colon)}' is not a step number like S230`);
  const forMs = /^\d+(\.\d+)?$/.test(ms) ? Number(ms) : NaN;
  if (!(forMs > 0)) bad(ms === '' ? 'the duration is missing' : `the duration '${ms}' is not a number of milliseconds > 0`);
  return { system, step, forMs };
}

/** What a runtime needs to pause a storage system (the threads runtime's ThreadsWorld has it). */
interface PausableWorld {
  pauseSystem(name: string, forMs?: number): Promise<void>;
  resumeSystem(name: string): Promise<void>;
}

function pausable(world: World): world is World & PausableWorld {
  const w = world as Partial<PausableWorld>;
  return typeof w.pauseSystem === 'function' && typeof w.resumeSystem === 'function';
}

/**
 * Arms a pause: the first time `log` records `spec.step` (a step log or a report), storage system `spec.system` is
 * paused for `spec.forMs` and resumed. `note` is told when it is paused and when it is resumed (or why the pause
 * failed). Throws at once on the sim runtime (its virtual clock would only stop with it: use `rclab debug`) and for
 * a storage system the world does not have.
 */
export function armPause(world: World, log: OperationsLog, spec: PauseSpec, note: (message: string) => void): void {
  if (world.runtime !== 'threads' || !pausable(world)) {
    throw new Error(`pause ${spec.system}@${spec.step}:${spec.forMs}: pausing one storage system while the others run needs the threads runtime `
      + `(--runtime threads); on the sim runtime, use \`rclab debug\` to stop at a step or event instead`);
  }
  systemSpec(world.topology, spec.system); // unknown system: an error naming the systems there are
  if (!(Number.isFinite(spec.forMs) && spec.forMs > 0)) throw new Error(`pause ${spec.system}@${spec.step}: the duration must be > 0 ms (got ${spec.forMs})`);
  const step = spec.step.toUpperCase();
  let fired = false;
  const run = async (): Promise<void> => {
    const { system, forMs } = spec;
    try {
      await world.pauseSystem(system);
      const t0 = world.nowUs();
      note(`${step}: storage system ${system} paused for ${forMs} ms (debugger-style), the others run on`);
      // Timers may fire a little early against the world's clock: wait until the clock says forMs has passed.
      for (let leftMs = forMs; leftMs > 0; leftMs = forMs - (world.nowUs() - t0) / 1000) {
        await new Promise<void>((r) => setTimeout(r, Math.max(1, Math.ceil(leftMs))).unref());
      }
      await world.resumeSystem(system);
      note(`${step}: storage system ${system} resumed after ${((world.nowUs() - t0) / 1000).toFixed(0)} ms paused; what waited for it is dispatched late`);
    } catch (e) {
      note(`${step}: pause of storage system ${system} failed: ${(e as Error).message}`);
    }
  };
  log.on((ev) => {
    if (fired || ev.e.step.toUpperCase() !== step) return;
    fired = true;
    void run();
  });
}
