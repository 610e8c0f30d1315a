// `rclab serve` as an operator runs it: a process with NBD and control ports, the operator verbs as separate
// commands, a clear message when a port is taken, and a clean stop on SIGINT that releases both ports.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const RCLAB = ['harness/rclab.mjs'];
const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) c.kill('SIGKILL'); });

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function startServe(args: string[]): { child: ChildProcess; out: () => string; ready: Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [...RCLAB, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const ready = new Promise<void>((resolve, reject) => {
    const t = setInterval(() => { if (/rclab serve: .*NBD on/.test(out)) { clearInterval(t); resolve(); } }, 20);
    void exited.then((code) => { clearInterval(t); reject(new Error(`serve exited (${code}) before it was ready: ${out}`)); });
  });
  return { child, out: () => out, ready, exited };
}

describe('rclab serve process and operator commands', () => {
  it('serves, refuses a taken port with a clear message, answers pairdisplay/paircreate from the CLI, and stops on SIGINT releasing its ports', async () => {
    const nbdPort = await freePort(), controlPort = await freePort();
    const control = `127.0.0.1:${controlPort}`;
    const s = startServe(['--nbd-port', String(nbdPort), '--control-port', String(controlPort), '--data-mib', '8', '--journal-mib', '8']);
    await s.ready;
    expect(s.out()).toContain(`nbd://127.0.0.1:${nbdPort}/<export> (exports P/vol0, P/vol1, I/vol0, I/vol1, R/vol0, R/vol1)`); // vol1: the log volume

    const second = startServe(['--nbd-port', String(nbdPort), '--control-port', String(await freePort())]);
    second.ready.catch(() => {}); // it is meant never to be ready
    expect(await second.exited).toBe(2);
    expect(second.out()).toMatch(new RegExp(`NBD port 127\\.0\\.0\\.1:${nbdPort} is already in use`));

    expect((await run(process.execPath, [...RCLAB, 'pairdisplay', '--control', control])).stdout).toMatch(/no pairs defined/);
    const created = await run(process.execPath, [...RCLAB, 'paircreate', '--system', 'P', '--pair', '1', '--remote', 'I', '--type', 'sync', '--control', control]);
    expect(created.stdout).toMatch(/pair 1 initial copying/);
    const refused = await run(process.execPath, [...RCLAB, 'pairsplit', '--system', 'P', '--pair', '5', '--control', control]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/rclab pairsplit: P: .*pair 5/);
    const shown = JSON.parse((await run(process.execPath, [...RCLAB, 'pairdisplay', '--json', '--control', control])).stdout) as { pairs: Array<{ system: string; pairId: number; copyType: string }> };
    expect(shown.pairs.map((p) => `${p.system}:${p.pairId}:${p.copyType}`)).toEqual(['P:1:sync', 'I:1:sync']);
    // A consistency group over the data and log volumes (LVOLs 0 and 2): one row per side names both.
    // (With inflow control: host writes paced while the journal is over its high-water mark.)
    const group = await run(process.execPath, [...RCLAB, 'paircreate', '--system', 'I', '--pair', '2', '--remote', 'R', '--type', 'async', '--volumes', '0:0,2:2',
      '--inflow-control', '--control', control]);
    expect(group.stdout).toMatch(/pair 2 initial copying/);
    const paced = JSON.parse((await run(process.execPath, [...RCLAB, 'pairdisplay', '--json', '--control', control])).stdout) as { pairs: Array<{ system: string; pairId: number; inflowControl: boolean }> };
    expect(paced.pairs.filter((p) => p.pairId === 2).map((p) => `${p.system}:${p.inflowControl}`)).toEqual(['I:true', 'R:true']);
    const badInflow = await run(process.execPath, [...RCLAB, 'paircreate', '--system', 'P', '--pair', '4', '--remote', 'I', '--type', 'sync', '--inflow-control', '--control', control])
      .then(() => null, (e: { code: number; stderr: string }) => e);
    expect(badInflow?.stderr).toMatch(/inflow control paces host writes against a journal: for asynchronous pairs in journal mode only/);
    expect((await run(process.execPath, [...RCLAB, 'pairdisplay', '--control', control])).stdout).toMatch(/^I\s+2\s+0\+2\s+P-VOL\s+async/m);
    const badGroup = await run(process.execPath, [...RCLAB, 'paircreate', '--system', 'I', '--pair', '3', '--remote', 'R', '--type', 'async', '--volumes', '0-0', '--control', control])
      .then(() => null, (e: { code: number; stderr: string }) => e);
    expect(badGroup?.stderr).toMatch(/--volumes: '0-0' is not source:destination LVOL numbers/);

    // Writes in flight when SIGINT arrives are finished and answered; then the process ends and the ports are free.
    const writing = run('qemu-io', ['-f', 'raw', ...Array.from({ length: 200 }, (_, k) => ['-c', `write -P 7 ${k * 4096} 4k`]).flat(), `nbd://127.0.0.1:${nbdPort}/P/vol0`])
      .then((r) => r.stdout, (e: { stdout: string }) => e.stdout);
    await new Promise((r) => setTimeout(r, 100));
    s.child.kill('SIGINT');
    expect(await s.exited).toBe(0);
    expect(s.out()).toMatch(/SIGINT: finishing acknowledged writes/);
    expect(s.out()).toMatch(/stopped; ports released/);
    await writing;
    for (const port of [nbdPort, controlPort]) {
      const probe = net.createServer();
      await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.listen(port, '127.0.0.1', () => resolve()); });
      await new Promise((r) => probe.close(r));
    }
    const gone = await run(process.execPath, [...RCLAB, 'pairdisplay', '--control', control]).then(() => null, (e: { stderr: string }) => e);
    expect(gone?.stderr).toMatch(/no rclab serve is listening on/);
  });
});
