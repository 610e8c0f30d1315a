// A synchronous pair (fence data) over a lossy link, on sim: 2000 host writes of 4 KiB at QD 4 per frame-loss rate
// and seed, with how many completed ok or fenced, writes/s in virtual time, latency p50/p99/max, copies sent again,
// the pair's end state and whether the volumes ended equal. Prints figures; asserts nothing.
//   npm run bench:sync-loss [-- --writes N]
import { SimWorld } from '../harness/runtime-sim.ts';
import { createCommand, ok, query, twoSystems, waitFor } from '../harness/two-systems.ts';

const argv = process.argv.slice(2);
const writes = argv.includes('--writes') ? Number(argv[argv.indexOf('--writes') + 1]) : 2000;
if (!(Number.isInteger(writes) && writes > 0)) { console.error('--writes must be a positive integer'); process.exit(2); }
const QD = 4;

console.log(`sync pair, fence data, 16 MB/s over 100 km (sim), ${writes} writes of 4 KiB at QD ${QD}`);
for (const loss of [0, 0.001, 0.01, 0.05]) {
  for (const seed of [11, 12]) {
    const w = new SimWorld(twoSystems({ bandwidthMBps: 16, distanceKm: 100, dataBytes: 1 << 20, lossRate: loss }), seed);
    let resent = 0, failedAtUs = -1;
    w.onEvent((e) => {
      if (e.event.type === 'log' && /sent again/.test(e.event.message)) resent++;
      if (e.event.type === 'pair-state' && e.event.to === 'failure suspend' && failedAtUs < 0) failedAtUs = e.timeUs;
    });
    await ok(w, 'A', createCommand('sync', 'full', 'data'));
    await waitFor(w, 'A', 'duplex');
    const latencyUs: number[] = [];
    const statuses = new Map<string, number>();
    let next = 0;
    const t0 = w.nowUs();
    await Promise.all(Array.from({ length: QD }, async () => {
      while (next < writes) {
        const k = next++;
        const at = w.nowUs();
        const r = await w.hostIo('hostA', { op: 'write', lvol: 0, lba: (k * 37) % 256, blocks: 1, data: new Uint8Array(4096).fill((k % 250) + 1) });
        latencyUs.push(w.nowUs() - at);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    }));
    const elapsedUs = w.nowUs() - t0;
    latencyUs.sort((a, b) => a - b);
    const ms = (p: number) => (latencyUs[Math.floor(p * (latencyUs.length - 1))]! / 1000).toFixed(2);
    const end = (await query(w, 'A')).state;
    console.log(`loss ${loss * 100} % seed ${seed}: ${JSON.stringify(Object.fromEntries(statuses))}, ${Math.round(writes / (elapsedUs / 1e6))} writes/s, `
      + `latency p50 ${ms(0.5)} p99 ${ms(0.99)} max ${ms(1)} ms, copies sent again ${resent}, end ${end}`
      + `${failedAtUs >= 0 ? ` (failed ${((failedAtUs - t0) / 1000).toFixed(0)} ms in)` : ''}, volumes equal ${Buffer.compare(w.volume('A', 0), w.volume('B', 0)) === 0}`);
    await w.close();
  }
}
