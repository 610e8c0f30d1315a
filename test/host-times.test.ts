// When a host issued an I/O and when its completion reached it (HostIoRequest.issuedAtUs, HostIoResult.completedAtUs):
// a host program that answers a completion with its next I/O issues it at that completion's time, so the emulator's
// lateness in resuming the program is not the emulated host's. The checks on the time, on both runtimes.

import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { hostIssuedAtUs, type HostIoRequest } from '../harness/world.ts';
import { twoSystems } from './fixtures.ts';

const write = (lba: number, issuedAtUs?: number): HostIoRequest =>
  ({ op: 'write', lvol: 0, lba, blocks: 1, data: new Uint8Array(BLOCK_SIZE_BYTES).fill(lba), ...(issuedAtUs === undefined ? {} : { issuedAtUs }) });

describe('host I/O issue times (HostIoRequest.issuedAtUs)', () => {
  it('now when not given; as given up to maxBackUs back; later than now, or not a finite number, refused by name', () => {
    expect(hostIssuedAtUs(write(1), 5_000, 10_000)).toBe(5_000);
    expect(hostIssuedAtUs(write(1, 4_200), 5_000, 10_000)).toBe(4_200);
    expect(hostIssuedAtUs(write(1, 5_000), 5_000, 10_000)).toBe(5_000);
    expect(hostIssuedAtUs(write(1, 100), 50_000, 10_000)).toBe(40_000); // a stall of the emulator is not the host's reaction
    expect(() => hostIssuedAtUs(write(1, 5_001), 5_000, 10_000)).toThrow('host I/O: issuedAtUs 5001 is later than now (5000 µs): a host cannot issue an I/O in the future');
    for (const bad of [Number.NaN, Infinity, '7' as unknown as number]) expect(() => hostIssuedAtUs(write(1, bad), 5_000, 10_000)).toThrow(/host I\/O: issuedAtUs must be a finite world time in µs, got/);
  });

  it('sim: a completion reaches the program at its completedAtUs (the host line after the answer); an issue time in the future is refused and nothing is sent', async () => {
    const w = new SimWorld(twoSystems({ distanceKm: 10 }), 1);
    try {
      await w.sleep(1_000);
      const t0 = w.nowUs();
      const r = await w.hostIo('hostA', write(3, t0));
      expect(r.status).toBe('ok');
      expect(r.completedAtUs).toBe(w.nowUs()); // sim resumes the program exactly then
      expect(r.completedAtUs - t0).toBeGreaterThanOrEqual(2 * w.topology.hostLinkUs);
      expect(() => w.hostIo('hostA', write(4, w.nowUs() + 1))).toThrow(/is later than now/);
      await w.sleep(1_000);
      const read = await w.hostIo('hostA', { op: 'read', lvol: 0, lba: 4, blocks: 1 });
      expect(read.status).toBe('ok');
      expect(read.data!.every((b) => b === 0)).toBe(true); // the refused write never reached A
    } finally {
      await w.close();
    }
  });
});
