// NBD throughput against a peer: fio (4 KiB random writes, nbd ioengine, queue depth 1 and 32) in one run against
//   1. nbdkit's memory plugin (the reference),
//   2. an `rclab serve` export with no pair,
//   3. an `rclab serve` export with a synchronous pair P→I at 0 km,
//   4. an `rclab serve` export with a synchronous pair P→I at 100 km,
// and prints IOPS, mean and p99 completion latency (µs), and IOPS as a ratio of nbdkit's at the same queue depth.
// Prints figures; asserts nothing. Needs fio and nbdkit (Debian packages fio, nbdkit).
// Run: npm run bench:nbd [-- --seconds N] [-- --json]     (default 5 s per fio run, plus 1 s ramp)

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { controlRequest } from '../harness/operator.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const argv = process.argv.slice(2);
const seconds = argv.includes('--seconds') ? Number(argv[argv.indexOf('--seconds') + 1]) : 5;
const asJson = argv.includes('--json');
if (!(seconds > 0)) { console.error('--seconds must be a number > 0'); process.exit(2); }

// ─────────────── child processes: every one is stopped on exit, even on error ───────────────

const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

function launch(cmd: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';   // kept short; the pipes are always drained so that a chatty child never blocks
  const keep = (b: Buffer) => { out = (out + b.toString('utf8')).slice(-4000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => out };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) return;
  child.kill('SIGKILL');
  await exited;
}

/** Resolves once `ready()` holds; rejects (with the child's output) if the child exits first or 30 s pass. */
async function waitReady(name: string, p: ReturnType<typeof launch>, ready: () => Promise<boolean> | boolean): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < 30_000; await sleep(50)) {
    if (p.child.exitCode !== null) throw new Error(`${name} exited with status ${p.child.exitCode}:\n${p.output()}`);
    if (await ready()) return;
  }
  throw new Error(`${name} did not become ready within 30 s:\n${p.output()}`);
}

const accepts = (port: number) => new Promise<boolean>((resolve) => {
  const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

// ─────────────────────────────────────────── targets ───────────────────────────────────────────

interface Target { name: string; uri: string; close: () => Promise<void> }

async function startNbdkit(port: number): Promise<Target> {
  const p = launch('nbdkit', ['-f', '-p', String(port), '-i', '127.0.0.1', 'memory', '64M']);
  await waitReady('nbdkit', p, () => accepts(port));
  return { name: 'nbdkit memory 64M', uri: `nbd://127.0.0.1:${port}`, close: () => stop(p.child) };
}

/** `rclab serve`, optionally with a synchronous pair P→I at s1Km (in duplex before it returns). */
async function startServe(name: string, nbdPort: number, controlPort: number, s1Km?: number): Promise<Target> {
  const args = ['harness/rclab.mjs', 'serve', '--nbd-port', String(nbdPort), '--control-port', String(controlPort),
    '--data-mib', '64', '--journal-mib', '64', ...(s1Km === undefined ? [] : ['--s1-km', String(s1Km)])];
  const p = launch(process.execPath, args);
  await waitReady('rclab serve', p, () => /rclab serve:.*NBD on nbd:\/\//.test(p.output()));
  const target = { name, uri: `nbd://127.0.0.1:${nbdPort}/P/vol0`, close: () => stop(p.child) };
  if (s1Km === undefined) return target;
  const control = `127.0.0.1:${controlPort}`;
  try {
    await controlRequest(control, 'paircreate', { system: 'P', pairId: 1, remote: 'I', copyType: 'sync' });
    await waitReady('pair P→I', p, async () => {
      const { pairs } = await controlRequest(control, 'pairdisplay') as { pairs: { system: string; pairId: number; state: string }[] };
      return pairs.some((x) => x.system === 'P' && x.pairId === 1 && x.state === 'duplex');
    });
  } catch (e) {
    await target.close();
    throw e;
  }
  return target;
}

// ───────────────────────────────────────────── fio ─────────────────────────────────────────────

interface Row { target: string; qd: number; iops: number; meanUs: number; p99Us: number; ratio: number }

async function fio(uri: string, qd: number): Promise<{ iops: number; meanUs: number; p99Us: number }> {
  const { stdout } = await run('fio', ['--name=bench', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k',
    `--iodepth=${qd}`, '--size=64M', '--time_based', `--runtime=${seconds}`, '--ramp_time=1', '--output-format=json'],
  { maxBuffer: 16 * 1024 * 1024 });
  const w = JSON.parse(stdout.slice(stdout.indexOf('{'))).jobs[0].write;   // the nbd engine prints a line before the JSON
  return { iops: w.iops, meanUs: w.clat_ns.mean / 1000, p99Us: w.clat_ns.percentile['99.000000'] / 1000 };
}

// ───────────────────────────────────────────── main ────────────────────────────────────────────

const version = async (cmd: string) => (await run(cmd, ['--version'])).stdout.split('\n')[0].trim();
let fioVersion: string, nbdkitVersion: string;
try {
  [fioVersion, nbdkitVersion] = await Promise.all([version('fio'), version('nbdkit')]);
} catch {
  console.error('bench:nbd needs fio and nbdkit on the PATH: sudo apt-get install fio nbdkit');
  process.exit(1);
}

const started = Date.now();
const targets: [string, () => Promise<Target>][] = [
  ['nbdkit', () => startNbdkit(13809)],
  ['no pair', () => startServe('rclab serve, no pair', 13810, 13811)],
  ['sync 0 km', () => startServe('rclab serve, sync pair 0 km', 13812, 13813, 0)],
  ['sync 100 km', () => startServe('rclab serve, sync pair 100 km', 13814, 13815, 100)],
];
const rows: Row[] = [];
const reference = new Map<number, number>();   // nbdkit's IOPS per queue depth
try {
  for (const [label, start] of targets) {
    if (!asJson) process.stderr.write(`${label}: starting … `);
    const t = await start();
    try {
      for (const qd of [1, 32]) {
        const r = await fio(t.uri, qd);
        if (!reference.has(qd)) reference.set(qd, r.iops);
        rows.push({ target: t.name, qd, ...r, ratio: r.iops / reference.get(qd)! });
        if (!asJson) process.stderr.write(`QD ${qd} ${Math.round(r.iops)} IOPS … `);
      }
    } finally {
      await t.close();
      if (!asJson) process.stderr.write('stopped\n');
    }
  }
} catch (e) {
  console.error(`\nbench:nbd: ${(e as Error).message}`);
  process.exit(1);
}

const noPairQd32 = rows.find((r) => r.target === 'rclab serve, no pair' && r.qd === 32)!.ratio;
const machine = { cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?', node: process.version, fio: fioVersion, nbdkit: nbdkitVersion,
  secondsPerRun: seconds, wallSeconds: Math.round((Date.now() - started) / 100) / 10 };
if (asJson) {
  console.log(JSON.stringify({ machine, rows, target: { text: "without a pair, at least half of nbdkit's IOPS at QD 32", ratio: noPairQd32, met: noPairQd32 >= 0.5 } }, null, 2));
} else {
  console.log(`\nfio 4 KiB random writes over NBD, ${seconds} s per run (+1 s ramp); ${machine.cores} cores (${machine.cpu}), node ${machine.node}, ${machine.fio}, ${machine.nbdkit}\n`);
  const head = ['target', 'QD', 'IOPS', 'mean µs', 'p99 µs', 'vs nbdkit'];
  const body = rows.map((r) => [r.target, String(r.qd), r.iops.toFixed(0), r.meanUs.toFixed(1), r.p99Us.toFixed(1), r.ratio.toFixed(2)]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  for (const line of [head, width.map((w) => '-'.repeat(w)), ...body]) console.log(line.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  '));
  console.log(`\ntarget: without a pair, at least half of nbdkit's IOPS at QD 32 — ${noPairQd32 >= 0.5 ? 'met' : 'NOT met'} (ratio ${noPairQd32.toFixed(2)}); whole run ${machine.wallSeconds} s`);
}
