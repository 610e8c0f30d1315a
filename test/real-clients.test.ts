// Hardware in the loop: `rclab serve` (threads runtime) driven by real block clients nobody on this project
// wrote — qemu-io, fio's nbd engine, nbdcopy, nbdinfo — and by the operator's verbs over the control API.
// .ci/run installs them (fio, qemu-utils, libnbd-bin); a missing client fails these tests, it does not skip them.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest, formatPairDisplay } from '../harness/operator.ts';
import { ServeSession, type PairDisplayRow } from '../harness/serve.ts';
import { embodiment1Topology } from '../harness/topology.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'rclab-clients-'));

let session: ServeSession | null = null;
afterEach(async () => { await session?.stop(); session = null; });

async function serve(dataMib = 16, journalMib = 32): Promise<{ s: ServeSession; uri: (e: string) => string; ctl: (verb: string, body?: unknown) => Promise<Record<string, unknown>> }> {
  const lines: string[] = [];
  const s = await ServeSession.start({ topology: embodiment1Topology({ dataVolumeBytes: dataMib * MiB, journalVolumeBytes: journalMib * MiB }),
    nbdPort: 0, controlPort: 0, formPairs: true, log: (l) => { lines.push(l); if (process.env.RCLAB_TEST_LOG) console.error(l); } });
  session = s;
  const control = `127.0.0.1:${s.controlPort}`;
  return { s, uri: (e) => `nbd://127.0.0.1:${s.nbdPort}/${e}`, ctl: (verb, body = {}) => controlRequest(control, verb, body) };
}

async function pairs(ctl: (v: string) => Promise<Record<string, unknown>>): Promise<PairDisplayRow[]> {
  return (await ctl('pairdisplay')).pairs as PairDisplayRow[];
}

/** Waits until I's journal has been applied at R (lag 0 entries on the async source). */
async function drained(ctl: (v: string) => Promise<Record<string, unknown>>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const src = (await pairs(ctl)).find((p) => p.copyType === 'async' && p.role === 'source');
    if (src && src.state === 'duplex' && src.lagEntries === 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('journal did not drain within 10 s');
}

/** Site P disaster through the control interface: storage P and host P fail. */
async function failSiteP(ctl: (v: string, b?: unknown) => Promise<Record<string, unknown>>): Promise<void> {
  await ctl('fault', { fault: { kind: 'power-loss', system: 'P' } });
  await ctl('fault', { fault: { kind: 'host-crash', host: '100P' } });
}

/** fio's JSON output (it prints "fio: connected to NBD server" before it). */
const fioJson = (stdout: string) => JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: Array<{ error: number; write: { io_bytes: number; iops: number }; read: { io_bytes: number } }> };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('rclab serve with real NBD clients (threads runtime)', () => {
  it('nbdinfo lists every data volume as <system>/vol<k> (vol0 the data volume, vol1 the application\'s log volume) with the 4 KiB block size; a protocol breaker is disconnected without harm', async () => {
    const { s, uri } = await serve();
    const { stdout } = await run('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${s.nbdPort}`]);
    const list = JSON.parse(stdout) as { exports: Array<{ 'export-name': string; 'export-size': number; block_size_minimum: number; can_flush: boolean; can_fua: boolean }> };
    expect(list.exports.map((e) => e['export-name'])).toEqual(['P/vol0', 'P/vol1', 'I/vol0', 'I/vol1', 'R/vol0', 'R/vol1']);
    for (const e of list.exports) {
      expect(e['export-size']).toBe(e['export-name'].endsWith('/vol1') ? MiB : 16 * MiB);
      expect(e.block_size_minimum).toBe(4096);
      expect(e.can_flush && e.can_fua).toBe(true);
    }
    await expect(run('nbdinfo', [uri('Q/vol0')])).rejects.toThrow(/Q\/vol0|export/);
    // Garbage instead of the client flags: that connection ends, the next client is served as before.
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const c = net.connect(s.nbdPort, '127.0.0.1', () => c.write(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
      c.on('data', () => {}); // read the server's greeting, so its hang-up is seen
      c.on('close', () => resolve());
      c.on('error', () => resolve());
    });
    expect(s.nbd.stats.protocolErrors).toBe(1);
    const again = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4k', '-c', 'read -P 0x5a 0 4k', uri('P/vol0')]);
    expect(again.stdout).toMatch(/read 4096\/4096/);
  });

  it('test 1 (S200–S250): qemu-io writes patterns to P/vol0; site P fails through the control interface; takeover reports no data loss; R/vol0 holds every pattern', async () => {
    const { uri, ctl } = await serve();
    const writes = Array.from({ length: 24 }, (_, k) => ({ pattern: 0x10 + k, offset: k * 5 * 64 * 1024 + (k % 16) * 4096, len: 4096 * (1 + (k % 4)) }));
    const { stdout } = await run('qemu-io', ['-f', 'raw', ...writes.flatMap((w) => ['-c', `write -P ${w.pattern} ${w.offset} ${w.len}`]), uri('P/vol0')]);
    expect(stdout.match(/^wrote /gm)?.length).toBe(writes.length);
    // The secondary in duplex refuses writes with the error a real array's DATA PROTECT maps to.
    const refused = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', uri('I/vol0')]).then(() => null, (e: { stdout: string }) => e);
    expect(refused?.stdout).toMatch(/write failed: Operation not permitted/);
    await failSiteP(ctl);
    const r = await ctl('routine', { name: 'takeover' });
    const reports = r.reports as Array<{ step: string; dataLoss: boolean; message: string }>;
    expect(reports.map((x) => [x.step, x.dataLoss])).toEqual([['S250', false]]);
    const reads = await run('qemu-io', ['-f', 'raw', '-r', ...writes.flatMap((w) => ['-c', `read -P ${w.pattern} ${w.offset} ${w.len}`]), uri('R/vol0')]);
    expect(reads.stdout).not.toMatch(/verification failed/i);
    expect(reads.stdout.match(/^read /gm)?.length).toBe(writes.length);
    // After the takeover R is the source: host R writes to R/vol0 are taken.
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 4k', uri('R/vol0')]);
    const shown = await ctl('pairdisplay');
    expect(shown.down).toEqual(['P']);
    const table = formatPairDisplay(shown.pairs as PairDisplayRow[], shown.down as string[]);
    expect(table).toMatch(/R\s+2\s+0\+2\s+P-VOL\s+async\s+R→I\s+duplex\s+PAIR/);
    expect(table).toMatch(/^P: powered off/m);
  });

  it('test 2: fio (ioengine=nbd) random 4 KiB writes with verify=crc32c to P/vol0, then verify-only passes on I/vol0 and R/vol0 after the journal drained', async () => {
    const { uri, ctl } = await serve();
    const job = (u: string) => ['--name=rclab', '--ioengine=nbd', `--uri=${u}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=8M',
      '--verify=crc32c', '--randseed=4242', '--output-format=json'];
    const w = fioJson((await run('fio', [...job(uri('P/vol0')), '--do_verify=0'])).stdout);
    expect(w.jobs[0]!.error).toBe(0);
    expect(w.jobs[0]!.write.io_bytes).toBe(8 * MiB);
    await drained(ctl);
    for (const target of ['I/vol0', 'R/vol0']) {
      // verify_only reads and checks every block the write pass wrote (a write to I or R would be refused: EPERM).
      const v = fioJson((await run('fio', [...job(uri(target)), '--verify_only'])).stdout);
      expect(v.jobs[0]!.error, target).toBe(0);
      expect(v.jobs[0]!.read.io_bytes, target).toBe(8 * MiB);
    }
  });

  it('test 3: nbdcopy of a 64 MiB file into P/vol0, then out of R/vol0 after the takeover: identical checksums', async () => {
    // A journal that holds the whole copy: nbdcopy writes faster than 1000 km of S2 drains, and a full journal
    // would (rightly) make the takeover report data loss — that path is nemesis-faults.test.ts's.
    const { uri, ctl } = await serve(64, 96);
    const file = join(dir, 'in.img'), out = join(dir, 'out.img');
    const data = randomBytes(64 * MiB);
    writeFileSync(file, data);
    await run('nbdcopy', [file, uri('P/vol0')]);
    await failSiteP(ctl);
    const r = await ctl('routine', { name: 'A3' });
    expect((r.reports as Array<{ dataLoss: boolean }>).map((x) => x.dataLoss)).toEqual([false]);
    await run('nbdcopy', [uri('R/vol0'), out]);
    expect(sha(readFileSync(out))).toBe(sha(data));
  });

  it('test 4 (S220): site P and storage I fail together; takeover reports data loss; R/vol0 is a consistent older image (a prefix of the writes)', async () => {
    const { uri, ctl } = await serve();
    // 300 writes in order, one at a time: block k gets pattern k+1, so a prefix of them is blocks 0..m-1.
    const n = 300;
    const cmds = Array.from({ length: n }, (_, k) => ['-c', `write -P ${(k % 255) + 1} ${k * 4096} 4k`]).flat();
    const writing = run('qemu-io', ['-f', 'raw', ...cmds, uri('P/vol0')]);
    await new Promise((r) => setTimeout(r, 150));
    await ctl('fault', { fault: { kind: 'power-loss', system: 'I' } });
    await failSiteP(ctl);
    await writing.catch(() => {}); // writes after the failure fail: the array is gone
    const r = await ctl('routine', { name: 'takeover' });
    expect((r.reports as Array<{ step: string; dataLoss: boolean }>).map((x) => [x.step, x.dataLoss])).toEqual([['S220', true]]);
    const out = join(dir, 'r.img');
    await run('nbdcopy', [uri('R/vol0'), out]);
    const img = readFileSync(out);
    const holds = (k: number) => img.subarray(k * 4096, (k + 1) * 4096).every((b) => b === (k % 255) + 1);
    const zero = (k: number) => img.subarray(k * 4096, (k + 1) * 4096).every((b) => b === 0);
    let m = 0;
    while (m < n && holds(m)) m++;
    for (let k = m; k < n; k++) expect(zero(k), `block ${k} after the prefix of ${m} writes`).toBe(true);
    expect(m).toBeGreaterThan(0); // the pairs were duplex: R received some of the writes
  });

  it('nbdsh (libnbd, strict mode off) sends misaligned, short, out-of-range and unsupported requests: each gets the protocol\'s error and no volume byte changes; then FUA write, WRITE_ZEROES and FLUSH work', async () => {
    const { s, uri } = await serve();
    const script = join(dir, 'bad.py');
    writeFileSync(script, [
      'import nbd, errno',
      'h.set_strict_mode(0)',
      'def err(f):',
      '    try:',
      '        f(); return "ok"',
      '    except nbd.Error as e:',
      '        return errno.errorcode.get(e.errno, str(e.errno))',
      'size = h.get_size()',
      'print("misaligned-write", err(lambda: h.pwrite(b"x" * 4096, 1)))',
      'print("short-write", err(lambda: h.pwrite(b"x" * 512, 0)))',
      'print("beyond-read", err(lambda: h.pread(4096, size)))',
      'print("beyond-write", err(lambda: h.pwrite(b"x" * 4096, size)))',
      'print("trim", err(lambda: h.trim(4096, 0)))',
    ].join('\n'));
    // libnbd's Python module is Debian's (/usr/lib/python3): put Debian's python3 first.
    const env = { ...process.env, PATH: `/usr/bin:${process.env.PATH}` };
    const before = sha(s.world.volume('P', 0));
    const bad = await run('nbdsh', ['-u', uri('P/vol0'), '-c', `exec(open(${JSON.stringify(script)}).read())`], { env });
    expect(bad.stdout.trim().split('\n')).toEqual(['misaligned-write EINVAL', 'short-write EINVAL', 'beyond-read EINVAL', 'beyond-write ENOSPC', 'trim EINVAL']);
    expect(sha(s.world.volume('P', 0))).toBe(before);
    const good = await run('nbdsh', ['-u', uri('P/vol0'), '-c', [
      'h.pwrite(b"y" * 8192, 4096, nbd.CMD_FLAG_FUA)', 'h.zero(4096, 8192)', 'h.flush()',
      'print(h.pread(4096, 4096) == b"y" * 4096, h.pread(4096, 8192) == bytes(4096))'].join('; ')], { env });
    expect(good.stdout.trim()).toBe('True True');
    // Both writes went through the firmware's full path: the synchronous copy carried them to I.
    expect(sha(s.world.volume('I', 0))).toBe(sha(s.world.volume('P', 0)));
  });

  it('operator verbs: pairdisplay shows PAIR states with copy and journal figures; pairsplit/pairresync change state; bad input names the problem and changes nothing', async () => {
    const { ctl } = await serve();
    // A2 ends when I reports duplex; R hears of it a link's latency later.
    for (let i = 0; i < 500 && !(await pairs(ctl)).every((p) => p.state === 'duplex'); i++) await new Promise((r) => setTimeout(r, 10));
    const before = await pairs(ctl);
    expect(before.map((p) => `${p.system}:${p.pairId}:${p.state}`)).toEqual(['P:1:duplex', 'I:1:duplex', 'I:2:duplex', 'R:2:duplex']);
    expect(formatPairDisplay(before)).toMatch(/^System\s+Pair\s+LVOL\s+Role\s+Type\s+Copy\s+State\s+Status\s+Fence\s+Copy%\s+Jnl%\s+Lag/);
    await expect(ctl('pairsplit', { system: 'P', pairId: 9 })).rejects.toThrow(/pair 9/);
    await expect(ctl('pairsplit', { system: 'Q', pairId: 1 })).rejects.toThrow(/unknown storage system 'Q'/);
    await expect(ctl('fault', { fault: { kind: 'cut-link', link: 'S7' } })).rejects.toThrow(/unknown link 'S7'/);
    await expect(ctl('routine', { name: 'A9' })).rejects.toThrow(/unknown routine 'A9'/);
    await expect(ctl('routine', { name: 'takeover' })).rejects.toThrow(/host 100P is up and its heartbeat is present/);
    expect((await pairs(ctl)).map((p) => p.state)).toEqual(before.map((p) => p.state));
    await ctl('pairsplit', { system: 'P', pairId: 1 });
    expect((await pairs(ctl)).find((p) => p.system === 'P' && p.pairId === 1)!.state).toBe('suspend');
    await ctl('pairresync', { system: 'P', pairId: 1 });
    // A differential copy on the threads runtime: allow for a loaded machine.
    for (let i = 0; i < 1000 && (await pairs(ctl)).find((p) => p.system === 'P' && p.pairId === 1)!.state !== 'duplex'; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await pairs(ctl)).find((p) => p.system === 'P' && p.pairId === 1)!.state).toBe('duplex');
  });
});
