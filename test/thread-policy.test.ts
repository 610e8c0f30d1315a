// The host OS's scheduling policy for the emulator's threads (hardware/thread-policy.ts): a threads world's workers
// run under SCHED_BATCH unless asked otherwise, and a bad policy is refused by name before any worker starts. Their
// timer slack likewise: 1 ns unless asked otherwise, a bad value refused by name.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ThreadsWorld } from '../harness/runtime-threads.ts';
import { embodiment1Topology } from '../harness/topology.ts';
import { parseSchedulingPolicy, parseTimerSlackNs, timerSlackInEffect, type SchedulingPolicy } from '../hardware/thread-policy.ts';

const topology = () => embodiment1Topology({ s1DistanceKm: 0, s2DistanceKm: 0, dataVolumeBytes: 1 << 20, journalVolumeBytes: 1 << 20, paths: 1, jitterUs: 0 });

/** Every thread of this process, by its scheduling policy as the kernel reports it (field 41 of its stat). */
function threadPolicies(): Map<string, string> {
  const names: Record<string, string> = { 0: 'SCHED_OTHER', 3: 'SCHED_BATCH' };
  return new Map(readdirSync('/proc/self/task').map((tid) => {
    const policy = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[38]!; // fields from 3 on
    return [tid, names[policy] ?? `policy ${policy}`];
  }));
}

/** A world created with `name=value` in the environment is refused with `message`, and starts no thread. */
async function refusedFromEnv(name: string, value: string, message: string): Promise<void> {
  const before = readdirSync('/proc/self/task').length;
  process.env[name] = value;
  try {
    await expect(ThreadsWorld.create(topology(), 1)).rejects.toThrow(message);
  } finally {
    delete process.env[name];
  }
  expect(readdirSync('/proc/self/task').length).toBe(before); // no worker was started
}

const hasChrt = process.platform === 'linux' && (() => { try { execFileSync('chrt', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

describe('scheduling policy of the threads runtime', () => {
  it('a bad policy is refused by name, from the option or from RCLAB_SCHEDULING, before any worker starts', async () => {
    expect(() => parseSchedulingPolicy('fast', 'RCLAB_SCHEDULING')).toThrow("RCLAB_SCHEDULING must be one of batch, normal, got 'fast'");
    await expect(ThreadsWorld.create(topology(), 1, { schedulingPolicy: 'fifo' as SchedulingPolicy })).rejects.toThrow("schedulingPolicy must be one of batch, normal, got 'fifo'");
    await refusedFromEnv('RCLAB_SCHEDULING', 'realtime', "RCLAB_SCHEDULING must be one of batch, normal, got 'realtime'");
  });

  it('the workers of a world run under SCHED_BATCH by default, and under SCHED_OTHER when asked for normal (without chrt: the default, said why)', async () => {
    for (const [asked, wanted] of [[undefined, 'SCHED_BATCH'], ['normal', 'SCHED_OTHER'], ['batch', 'SCHED_BATCH']] as const) {
      const before = new Set(readdirSync('/proc/self/task'));
      const w = await ThreadsWorld.create(topology(), 1, asked ? { schedulingPolicy: asked } : {});
      // A machine without chrt (the CI's has it: util-linux) cannot leave the OS default; the world says so.
      const expected = hasChrt ? wanted : 'SCHED_OTHER';
      try {
        if (hasChrt || asked === 'normal') expect(w.scheduling).toEqual({ policy: asked ?? 'batch' });
        else expect(w.scheduling).toEqual({ policy: 'normal', note: expect.stringMatching(/batch scheduling (not applied|is for Linux)/) });
        // The threads the world started (its three storage systems' workers among them) run under the policy.
        const started = [...threadPolicies()].filter(([tid]) => !before.has(tid));
        expect(started.length).toBeGreaterThanOrEqual(3);
        expect(started.map(([, p]) => p)).toEqual(started.map(() => expected));
      } finally {
        await w.close();
      }
    }
  });

  it('without chrt on the PATH a world still starts, under the OS default, and says why', () => {
    // A child whose PATH has no chrt: the same world creation, its answer printed. (From a file: a worker started
    // from an -e script inherits --input-type and does not start.)
    const dir = mkdtempSync(join(tmpdir(), 'rclab-policy-'));
    const at = (f: string) => pathToFileURL(resolve(f)).href;
    writeFileSync(join(dir, 'child.mjs'), `
      import { ThreadsWorld } from '${at('harness/runtime-threads.ts')}';
      import { embodiment1Topology } from '${at('harness/topology.ts')}';
      const w = await ThreadsWorld.create(embodiment1Topology({ s1DistanceKm: 0, s2DistanceKm: 0, dataVolumeBytes: 1 << 20, journalVolumeBytes: 1 << 20, paths: 1, jitterUs: 0 }), 1);
      console.log(JSON.stringify(w.scheduling));
      await w.close();`);
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(dir, 'child.mjs')], { env: { ...process.env, PATH: '/nonexistent' }, encoding: 'utf8' });
    const scheduling = JSON.parse(out.trim().split('\n').pop()!) as { policy: string; note?: string };
    expect(scheduling.policy).toBe('normal');
    expect(scheduling.note).toMatch(process.platform === 'linux' ? /^batch scheduling not applied: chrt \(util-linux\) is not installed$/ : /batch scheduling is for Linux/);
  }, 30_000);
});

/** Every thread of this process, by its timer slack in ns as the kernel reports it. */
function threadSlacks(): Map<string, number> {
  return new Map(readdirSync('/proc/self/task').map((tid) => [tid, Number(readFileSync(`/proc/${tid}/timerslack_ns`, 'utf8').trim())]));
}

describe('timer slack of the threads runtime', () => {
  it('a bad slack is refused by name, from the option or from RCLAB_TIMER_SLACK_NS, before any worker starts', async () => {
    for (const bad of [0, -5, 1.5, 2e9, 'soon']) expect(() => parseTimerSlackNs(bad, 'timerSlackNs')).toThrow(`timerSlackNs must be a whole number of nanoseconds from 1 to 1000000000 (the kernel's default is 50000), got '${bad}'`);
    expect(parseTimerSlackNs(' 2000 ', 'RCLAB_TIMER_SLACK_NS')).toBe(2000);
    await expect(ThreadsWorld.create(topology(), 1, { timerSlackNs: 0 })).rejects.toThrow("timerSlackNs must be a whole number of nanoseconds from 1 to 1000000000 (the kernel's default is 50000), got '0'");
    await refusedFromEnv('RCLAB_TIMER_SLACK_NS', '50us', "RCLAB_TIMER_SLACK_NS must be a whole number of nanoseconds from 1 to 1000000000 (the kernel's default is 50000), got '50us'");
  });

  it.runIf(process.platform === 'linux')('the workers of a world sleep with 1 ns of timer slack by default, and with the slack asked for by option or RCLAB_TIMER_SLACK_NS', async () => {
    for (const [option, env, wanted] of [[undefined, undefined, 1], [50_000, undefined, 50_000], [undefined, '2000', 2000]] as const) {
      const before = new Set(readdirSync('/proc/self/task'));
      if (env) process.env.RCLAB_TIMER_SLACK_NS = env;
      let w: ThreadsWorld;
      try {
        w = await ThreadsWorld.create(topology(), 1, option ? { timerSlackNs: option } : {});
      } finally {
        delete process.env.RCLAB_TIMER_SLACK_NS;
      }
      try {
        expect(w.timerSlack).toEqual({ timerSlackNs: wanted });
        expect(timerSlackInEffect()).toEqual({ timerSlackNs: wanted }); // what a report names
        // The threads the world started (its three storage systems' workers among them) inherited the slack.
        const started = [...threadSlacks()].filter(([tid]) => !before.has(tid));
        expect(started.length).toBeGreaterThanOrEqual(3);
        expect(started.map(([, ns]) => ns)).toEqual(started.map(() => wanted));
      } finally {
        await w.close();
      }
    }
  });
});
