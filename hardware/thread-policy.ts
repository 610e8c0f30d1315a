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

import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';

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

/**
 * Puts the calling thread (and so the threads it starts afterwards) under `want`. Returns what it runs under now and,
 * when that is not what was asked for, why (not Linux; `chrt` missing or refused).
 */
export function applySchedulingPolicy(want: SchedulingPolicy): { policy: SchedulingPolicy; note?: string } {
  const now = last?.policy ?? 'normal'; // (a failed attempt leaves the policy it found)
  if (want === now) return (last = { policy: now });
  if (process.platform !== 'linux') return (last = { policy: now, note: `${want} scheduling is for Linux; this is ${process.platform}` });
  try {
    const tid = readlinkSync('/proc/thread-self').split('/')[2]!; // "<pid>/task/<tid>"
    execFileSync('chrt', [want === 'batch' ? '--batch' : '--other', '--pid', '0', tid], { stdio: ['ignore', 'ignore', 'pipe'] });
    return (last = { policy: want });
  } catch (e) {
    const why = (e as { code?: string }).code === 'ENOENT' ? 'chrt (util-linux) is not installed' : `chrt failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
    return (last = { policy: now, note: `${want} scheduling not applied: ${why}` });
  }
}
