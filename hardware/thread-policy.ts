// The host OS's scheduling policy for the emulator's threads (Linux).
//
// Under the default policy (SCHED_OTHER) a thread that rings a sleeping peer's doorbell (a futex wake) is often
// preempted by it on the spot: the peer has slept, so the scheduler owes it time. With four busy threads on two cores
// (host, P, I, R) that is a context switch per wake-up, in the middle of the ringer's loop turn. Under SCHED_BATCH a
// woken thread waits for a core that is free or for the running thread's turn to end; nothing else changes (same
// nice level, same share of the cores). Measured with `npm run bench:cascade`, alternated: 59,697–64,172 against
// 53,304–56,764 replicated writes/s (three pairs), 25–26 against 27.5–30 CPU µs per write, half the kernel time
// (2.5–2.9 against 4.6–4.8 µs per write); the whole process under `chrt -b 0` before this module, six more pairs,
// went the same way every time.
//
// A thread inherits its creator's policy, so the thread that creates a world's workers sets its own first
// (`chrt -p`, on its thread id) and every worker it starts after that runs under the same policy.
//
// Timer slack, likewise inherited: how late the kernel may fire a thread's timers so as to batch their wake-ups
// (50 µs by default for every thread not under a real-time policy). Each timed `Atomics.wait` (a CPU's sleep up to its
// next deadline) and each timeout of the main thread's event loop pays it on top of waking the thread. Measured here
// (2-vCPU VM, a worker's timed waits of 50, 200 and 500 µs, 2,000 each, two runs each way): late by 72–90 µs at p50
// with the default slack, 21–40 µs with 1 ns. The threads runtime sets 1 ns (the least the kernel takes: 0 means
// "back to the default") for the thread that creates a world, so its workers and that thread sleep to the µs asked.

import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';

export const SCHEDULING_POLICIES = ['batch', 'normal'] as const;
export type SchedulingPolicy = (typeof SCHEDULING_POLICIES)[number];

/** What the last applySchedulingPolicy call in this thread answered (null: none yet, the OS default). */
let last: { policy: SchedulingPolicy; note?: string } | null = null;

/** What the last world created by this thread runs under (for reports); null when none asked yet. */
export const schedulingInEffect = (): { policy: SchedulingPolicy; note?: string } | null => last;

/** Checks a policy given by name (an option, RCLAB_SCHEDULING); the error names the value and the choices. */
export function parseSchedulingPolicy(value: string, source: string): SchedulingPolicy {
  const p = SCHEDULING_POLICIES.find((x) => x === value);
  if (!p) throw new Error(`${source} must be one of ${SCHEDULING_POLICIES.join(', ')}, got '${value}'`);
  return p;
}

/** The calling thread's id as the kernel knows it (Linux). */
const ownTid = (): string => readlinkSync('/proc/thread-self').split('/')[2]!; // "<pid>/task/<tid>"

/**
 * Puts the calling thread (and so the threads it starts afterwards) under `want`. Returns what it runs under now and,
 * when that is not what was asked for, why (not Linux; `chrt` missing or refused).
 */
export function applySchedulingPolicy(want: SchedulingPolicy): { policy: SchedulingPolicy; note?: string } {
  const now = last?.policy ?? 'normal'; // (a failed attempt leaves the policy it found)
  if (want === now) return (last = { policy: now });
  if (process.platform !== 'linux') return (last = { policy: now, note: `${want} scheduling is for Linux; this is ${process.platform}` });
  try {
    execFileSync('chrt', [want === 'batch' ? '--batch' : '--other', '--pid', '0', ownTid()], { stdio: ['ignore', 'ignore', 'pipe'] });
    return (last = { policy: want });
  } catch (e) {
    const why = (e as { code?: string }).code === 'ENOENT' ? 'chrt (util-linux) is not installed' : `chrt failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
    return (last = { policy: now, note: `${want} scheduling not applied: ${why}` });
  }
}

/** The slack the threads runtime asks for unless told otherwise (ThreadsWorldOptions.timerSlackNs, RCLAB_TIMER_SLACK_NS). */
export const DEFAULT_TIMER_SLACK_NS = 1;
/** Linux's own default for a thread not under a real-time policy. */
export const KERNEL_DEFAULT_TIMER_SLACK_NS = 50_000;

/** Checks a timer slack given as an option or from the environment; the error names the value and the range. */
export function parseTimerSlackNs(value: unknown, source: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1e9)
    throw new Error(`${source} must be a whole number of nanoseconds from 1 to 1000000000 (the kernel's default is ${KERNEL_DEFAULT_TIMER_SLACK_NS}), got '${String(value)}'`);
  return n;
}

/**
 * Sets the calling thread's timer slack (`/proc/<tid>/timerslack_ns`; threads it starts afterwards inherit it) and
 * reads it back. Returns the slack in effect (null where it cannot be read) and, when that is not what was asked for,
 * why (not Linux; the file missing or refused).
 */
export function applyTimerSlack(wantNs: number): TimerSlack {
  if (process.platform !== 'linux') return (lastSlack = { timerSlackNs: null, note: `timer slack is set on Linux only; this is ${process.platform}` });
  const file = `/proc/${ownTid()}/timerslack_ns`;
  const read = (): number | null => { try { return Number(readFileSync(file, 'utf8').trim()); } catch { return null; } };
  try {
    writeFileSync(file, String(wantNs));
  } catch (e) {
    return (lastSlack = { timerSlackNs: read(), note: `timer slack of ${wantNs} ns not applied: ${(e as Error).message}` });
  }
  const now = read();
  return (lastSlack = now === wantNs ? { timerSlackNs: now } : { timerSlackNs: now, note: `asked for a timer slack of ${wantNs} ns, the kernel reports ${now}` });
}

export interface TimerSlack { timerSlackNs: number | null; note?: string }

/** What the last applyTimerSlack call in this thread answered (null: none yet). */
let lastSlack: TimerSlack | null = null;

/** The timer slack of the last world created by this thread (for reports); null when none was set yet. */
export const timerSlackInEffect = (): TimerSlack | null => lastSlack;
