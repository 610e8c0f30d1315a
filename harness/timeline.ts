// The human-readable timeline of a run: time, step number, where, what (pair state changes with the journal
// backlog, routine steps, reports, notes).

import { styleText } from 'node:util';
import type { TimelineEntry } from './scenarios.ts';
import type { World } from './world.ts';

type Style = Parameters<typeof styleText>[0];

export function timelineFormatter(color: boolean): (e: TimelineEntry) => string | null {
  const paint = (s: Style, t: string) => (color ? styleText(s, t) : t);
  return (e) => {
    const time = paint('dim', `${(e.timeUs / 1000).toFixed(3).padStart(10)} ms`);
    switch (e.kind) {
      case 'step':
        return `${time}  ${paint('cyan', e.step.padEnd(5))} ${e.host.padEnd(5)} ${paint('dim', `${e.routine}:`)} ${e.message}`;
      case 'report':
        return `${time}  ${paint('cyan', e.step.padEnd(5))} ${e.host.padEnd(5)} ${paint(['bold', e.dataLoss ? 'red' : 'green'], `*** ${e.dataLoss ? 'DATA LOSS' : 'NO DATA LOSS'} ***`)} ${e.message}`;
      case 'note':
        return `${time}  ${paint('yellow', '---- ' + e.message)}`;
      case 'routine':
        return e.phase === 'start' ? `${time}  ${paint('dim', `      ${e.host.padEnd(5)} ${e.routine} starts`)}` : null;
      case 'event': {
        const ev = e.event;
        const step = (ev.step ?? '').padEnd(5);
        if (ev.type === 'pair-state') {
          const arrow = `${ev.from} → ${ev.to}`;
          const cause = ev.cause !== 'none' ? paint('red', ` (${ev.cause})`) : '';
          const backlog = e.backlog ? paint('dim', `  [journal: ${e.backlog}]`) : '';
          return `${time}  ${paint('cyan', step)} ${e.system.padEnd(5)} pair ${ev.pairId}${e.pairLabel ? ` ${e.pairLabel}` : ''}: ${paint('bold', arrow)}${cause}${backlog}`;
        }
        if (ev.type === 'formation-copy-done') return `${time}  ${paint('cyan', step)} ${e.system.padEnd(5)} pair ${ev.pairId}: ${ev.kind} formation copy done, ${ev.tracksCopied} track(s) copied`;
        if (ev.type === 'log' && ev.level !== 'info') return `${time}  ${paint('cyan', step)} ${e.system.padEnd(5)} ${paint(ev.level === 'error' ? 'red' : 'yellow', ev.message)}`;
        return null;
      }
    }
  };
}

/** "(sync P→I)": a pair's type and direction as seen from `system`, for timeline lines. */
export function pairLabelOf(world: World, system: string, pairId: number): string | undefined {
  const r = world.definitionInformation(system).find((p) => p.pairId === pairId);
  if (!r) return undefined;
  const remote = world.topology.systems.find((s) => s.id === r.remoteStorageId)?.name ?? `#${r.remoteStorageId}`;
  return `(${r.copyType} ${r.role === 'source' ? `${system}→${remote}` : `${remote}→${system}`})`;
}

/** "232I 80 entries": the journal entries every async source holds, for timeline lines. */
export function backlogOf(world: World): string {
  const parts: string[] = [];
  for (const s of world.topology.systems) {
    if (!world.isUp(s.name)) continue;
    for (const j of world.journals(s.name)) {
      const pair = world.definitionInformation(s.name).find((p) => p.pairId === j.pairId);
      if (pair?.role === 'source' && j.entries > 0) parts.push(`232${s.name} ${j.entries} entries`);
    }
  }
  return parts.join(', ');
}

/** A firmware event as a timeline entry, with the pair's label and the journal backlog. */
export function eventEntry(world: World, e: { timeUs: number; system: string; event: Extract<TimelineEntry, { kind: 'event' }>['event'] }): TimelineEntry {
  const ev = e.event;
  return { kind: 'event', timeUs: e.timeUs, system: e.system, event: ev,
    backlog: ev.type === 'pair-state' ? backlogOf(world) : undefined,
    pairLabel: ev.type === 'pair-state' ? pairLabelOf(world, e.system, ev.pairId) : undefined };
}
