// The human-readable timeline of a run: time, step number, where, what (pair state changes with the journal
// backlog, routine steps, reports, notes).

import { styleText } from 'node:util';
import type { ScenarioResult, TimelineEntry } from './scenarios.ts';
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
      // (Named by its LVOL: embodiment 4's I and J have a second journal volume, 232I-2 / 232J-2.)
      if (pair?.role === 'source' && j.entries > 0) parts.push(`${s.lvols[j.journalLvol]?.name ?? `232${s.name}`} ${j.entries} entries`);
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

/** The end of `rclab run` (and of a debugged run): reports, checks, digests, the trace hash, the replay command. */
export function formatRunSummary(r: ScenarioResult, color: boolean): string {
  const lines: string[] = [];
  const mark = (ok: boolean) => (ok ? (color ? '\x1b[32m✔\x1b[0m' : 'ok  ') : color ? '\x1b[31m✘\x1b[0m' : 'FAIL');
  lines.push('', `scenario ${r.scenario} on the ${r.runtime} runtime, seed ${r.seed}`);
  for (const rep of r.reports) lines.push(`  report ${rep.step} (${rep.routine}): ${rep.dataLoss ? 'DATA LOSS' : 'no data loss'} — ${rep.message}`);
  for (const c of r.checks) lines.push(`  ${mark(c.ok)} ${c.name}${c.detail && c.detail !== 'ok' ? ` — ${c.detail}` : ''}`);
  lines.push(`  volumes: ${Object.entries(r.volumes).map(([s, v]) => `${s} ${Object.values(v)[0]?.slice(0, 12)}`).join('  ')}`);
  lines.push(`  ${r.acknowledgedWrites} of ${r.issuedWrites} host writes acknowledged; ${r.firmwareEvents} firmware events; ` +
    `${(r.virtualTimeUs / 1e6).toFixed(3)} s emulated in ${(r.wallMs / 1000).toFixed(2)} s; trace hash ${r.traceHash}`);
  if (r.faults.injected.length) lines.push(`  faults injected: ${r.faults.injected.map((f) => `${(f.atUs / 1000).toFixed(1)} ms ${f.fault}`).join('; ')}`);
  if (!r.ok) for (const f of r.failures) lines.push(`  ${color ? '\x1b[31m' : ''}${f}${color ? '\x1b[0m' : ''}`);
  if (!r.ok) lines.push(`  replay: ${r.replay}`);
  lines.push(r.ok ? `${mark(true)} ${r.scenario}: behaved as designed` : `${mark(false)} ${r.scenario}: did NOT behave as designed`);
  return lines.join('\n');
}
