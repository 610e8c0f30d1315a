// SPEC §7 guarantees, checked from the hosts' write history and the volumes' bytes (not the firmware's own
// bookkeeping), over several seeds on the sim runtime, with links that reorder (several paths, jitter).

import { describe, expect, it } from 'vitest';
import { blockWriteId, WriteHistory } from '../harness/history.ts';
import { initialCopying } from '../harness/routines/embodiment1.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { embodiment1Topology, DATA_LVOL } from '../harness/topology.ts';
import { Workload } from '../harness/workload.ts';
import { CopyControlProgram, OperationsLog } from '../harness/copy-control.ts';
import { Host } from '../harness/host.ts';

function world(seed: number) {
  const w = new SimWorld(embodiment1Topology({ paths: 3, jitterUs: 300, s2DistanceKm: 1000 }), seed);
  const log = new OperationsLog();
  return { w, program: new CopyControlProgram(w, new Host(w, '100P'), log, 'A2 initial copying') };
}

describe('SPEC §7 guarantees on the sim runtime', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`§7.1: every write acknowledged on a duplex synchronous pair is on I at the moment of the acknowledgement (seed ${seed})`, async () => {
      const { w, program } = world(seed);
      await initialCopying(program);
      const history = new WriteHistory();
      const wl = new Workload(w, history, { host: '100P', lvol: DATA_LVOL, queueDepth: 8, writes: 1500, regionBlocks: 512 });
      let checked = 0;
      // Check each acknowledgement as it happens: the workload records completion, then we look at I.
      const orig = history.complete.bind(history);
      history.complete = (rec, status, now) => {
        orig(rec, status, now);
        if (status === 'ok') {
          expect(blockWriteId(w.volume('I', DATA_LVOL), rec.lba), `write ${rec.id} acknowledged but not on I`).toBe(rec.id);
          checked++;
        }
      };
      await wl.done;
      expect(checked).toBe(1500);
      await w.close();
    });

    it(`§7.2: R is prefix-consistent at every sample while the journal ships over a reordering link (seed ${seed})`, async () => {
      const { w, program } = world(seed);
      await initialCopying(program);
      const history = new WriteHistory();
      const wl = new Workload(w, history, { host: '100P', lvol: DATA_LVOL, queueDepth: 8, writes: 2000, regionBlocks: 512 });
      let samples = 0, sawLag = false;
      const sampler = (async () => {
        let finished = false;
        wl.done.then(() => { finished = true; });
        while (!finished) {
          await w.sleep(2000);
          const r = w.volume('R', DATA_LVOL);
          expect(history.prefixViolations(r)).toEqual([]);
          if (history.missingAcknowledged(r, 1).length > 0) sawLag = true;
          samples++;
        }
      })();
      await wl.done;
      await sampler;
      expect(samples).toBeGreaterThan(40);
      expect(sawLag).toBe(true); // asynchronous: R really was behind at some samples
      await w.sleep(200_000);
      expect(history.missingAcknowledged(w.volume('R', DATA_LVOL))).toEqual([]);
      await w.close();
    });
  }
});
