// Micro benchmarks of the firmware's and hardware's hot paths (tinybench), and the formation copy's speed per
// MiB on the sim runtime. Prints figures; asserts nothing. Part of the study (bench/study.ts); alone:
//   node --import tsx bench/hot-paths.ts [--quick]

import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import { ControlMemoryLayout } from '../firmware/definition-info.ts';
import { DifferenceBitmap } from '../firmware/difference-bitmap.ts';
import { decodeFrame, decodeJournalBatch, encodeFrame, encodeJournalBatch, FrameType } from '../firmware/frames.ts';
import { FrameBundler } from '../firmware/frame-bundler.ts';
import { Journal } from '../firmware/journal.ts';
import { SpscRing } from '../hardware/spsc-ring.ts';
import { StorageSystemMemory } from '../hardware/storage-system.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { studyTopology } from './study/cells.ts';

export interface HotPath { task: string; nsPerOp: number; opsPerS: number }

/** tinybench over the hot paths: ns per operation and operations per second. */
export async function measureHotPaths(quick: boolean): Promise<HotPath[]> {
  const block = new Uint8Array(BLOCK_SIZE_BYTES).fill(7);
  const memory = StorageSystemMemory.build(0, 'P', [
    { name: 'data', kind: 'data', sizeBytes: 64 * 1024 * 1024 }, { name: 'journal', kind: 'journal', sizeBytes: 64 * 1024 * 1024 }], 16);
  const journal = Journal.open(memory.disk, new ControlMemoryLayout(memory.controlMemory), 1, 1);
  const bitmap = new DifferenceBitmap(new Int32Array(512), 16384);
  const ring = SpscRing.create(16 * 1024 * 1024);
  const syncFrame = encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 1, tag: 1, lba: 5, blocks: 1 }, block);
  const batch = { entries: Array.from({ length: 64 }, (_, i) => ({ seq: i + 1, tsUs: i, lba: i, data: block })) };
  const batchFrame = encodeJournalBatch(1, batch);
  const bundler = new FrameBundler(() => true, () => undefined);
  let seq = 0, lba = 0;

  const bench = new Bench({ time: quick ? 100 : 300 });
  bench
    .add('4 KiB write into the disk array (SharedArrayBuffer)', () => { memory.disk.write(0, (lba = (lba + 1) & 16383), block); })
    .add('bitmap: mark a block', () => { bitmap.markBlocks((lba = (lba + 7) & 16383) * 16, 1); })
    .add('bitmap: scan 16384 tracks for the next set bit', () => { bitmap.clearAll(); bitmap.set(16000); bitmap.nextSet(0); })
    .add('journal: append a 4 KiB entry and free it', () => { seq++; journal.append(seq, seq, 0, seq & 1023, block); journal.freeThrough(seq); })
    .add('journal: apply an entry (read it from the journal, write it to the data volume)', () => {
      // The destination's restore: the entry is journaled (232R) and its data written to the data volume (231R).
      seq++; journal.append(seq, seq, 0, seq & 1023, block);
      const e = journal.entryAt(seq);
      memory.disk.write(0, e.lba, e.data);
      journal.freeThrough(seq);
    })
    .add('frame: encode a 4 KiB synchronous copy', () => { encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 1, tag: seq, lba: 5, blocks: 1 }, block); })
    .add('frame: decode a 4 KiB synchronous copy', () => { decodeFrame(syncFrame); })
    .add('frame: bundle 32 synchronous copies and flush them (FrameBundler)', () => { for (let i = 0; i < 32; i++) bundler.offer(1, syncFrame); bundler.flush(); })
    .add('journal batch of 64 × 4 KiB: encode (binary, into a new buffer)', () => { encodeJournalBatch(1, batch); })
    .add('journal batch of 64 × 4 KiB: decode (binary)', () => { decodeJournalBatch(decodeFrame(batchFrame)); })
    .add('ring hop: push and pop a 4 KiB record (one thread)', () => { ring.tryPush(block); ring.peek(); ring.pop(); });

  await bench.run();
  return bench.tasks.map((t) => {
    const r = t.result as unknown as { latency?: { mean: number }; throughput?: { mean: number } } | undefined;
    return { task: t.name, nsPerOp: r?.latency ? r.latency.mean * 1e6 : NaN, opsPerS: r?.throughput ? r.throughput.mean : NaN };
  });
}

/**
 * Formation copy (initial copying) of a whole volume on the sim runtime, 0 km, 1000 MB/s: wall-clock ms per MiB
 * copied — what a full resynchronisation costs the emulator itself (the copy's virtual time is the link's).
 */
export async function formationCopyMsPerMiB(): Promise<{ mib: number; wallMs: number; msPerMiB: number; virtualMs: number }> {
  const w = new SimWorld(studyTopology('sync', { distanceKm: 0 }), 1);
  const volume = w.volume('P', 0);
  for (let i = 0; i < volume.length; i += 4096) volume[i] = (i >>> 12) & 0xff; // every track dirty, none empty
  const t0 = performance.now(), v0 = w.nowUs();
  const r = await w.command('P', { op: 'create', initialCopy: 'full', pair: { pairId: 1, localLvol: 0, remoteStorageId: 1, remoteLvol: 0, copyType: 'sync', fence: 'data' } });
  if (!r.ok) throw new Error(r.error);
  while (w.definitionInformation('P')[0]?.state !== 2) await w.sleep(1_000);
  const wallMs = performance.now() - t0, mib = volume.length / 1024 / 1024;
  const virtualMs = (w.nowUs() - v0) / 1000;
  await w.close();
  return { mib, wallMs, msPerMiB: wallMs / mib, virtualMs };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  console.table((await measureHotPaths(quick)).map((r) => ({ task: r.task, 'ns/op': Math.round(r.nsPerOp), 'ops/s': Math.round(r.opsPerS).toLocaleString('en') })));
  const f = await formationCopyMsPerMiB();
  console.log(`formation copy (sim, 0 km): ${f.mib} MiB in ${f.wallMs.toFixed(0)} ms wall (${f.msPerMiB.toFixed(2)} ms/MiB), ${f.virtualMs.toFixed(1)} ms virtual`);
}
