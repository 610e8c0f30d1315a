// Micro benchmarks of the firmware's and hardware's hot paths (tinybench). Prints figures; asserts nothing.
// Run: npm run bench

import { Bench } from 'tinybench';
import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import { ControlMemoryLayout } from '../firmware/definition-info.ts';
import { DifferenceBitmap } from '../firmware/difference-bitmap.ts';
import { decodeFrame, decodeJournalBatch, encodeFrame, encodeJournalBatch, FrameType } from '../firmware/frames.ts';
import { Journal } from '../firmware/journal.ts';
import { SpscRing } from '../hardware/spsc-ring.ts';
import { StorageSystemMemory } from '../hardware/storage-system.ts';

const block = new Uint8Array(BLOCK_SIZE_BYTES).fill(7);
const memory = StorageSystemMemory.build(0, 'P', [
  { name: 'data', kind: 'data', sizeBytes: 64 * 1024 * 1024 }, { name: 'journal', kind: 'journal', sizeBytes: 64 * 1024 * 1024 }], 16);
const journal = Journal.open(memory.disk, new ControlMemoryLayout(memory.controlMemory), 1, 1);
const bitmap = new DifferenceBitmap(new Int32Array(512), 16384);
const ring = SpscRing.create(16 * 1024 * 1024);
const syncFrame = encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 1, tag: 1, lba: 5, blocks: 1 }, block);
const batch = { entries: Array.from({ length: 64 }, (_, i) => ({ seq: i + 1, tsUs: i, lba: i, data: block })) };
const batchFrame = encodeJournalBatch(1, batch);
let seq = 0, lba = 0;

const bench = new Bench({ time: 300 });
bench
  .add('4 KiB write into the disk array (SharedArrayBuffer)', () => { memory.disk.write(0, (lba = (lba + 1) & 16383), block); })
  .add('bitmap: mark a block', () => { bitmap.markBlocks((lba = (lba + 7) & 16383) * 16, 1); })
  .add('bitmap: scan 16384 tracks for the next set bit', () => { bitmap.clearAll(); bitmap.set(16000); bitmap.nextSet(0); })
  .add('journal: append a 4 KiB entry and free it', () => { seq++; journal.append(seq, seq, 0, seq & 1023, block); journal.freeThrough(seq); })
  .add('frame: encode a 4 KiB synchronous copy', () => { encodeFrame({ type: FrameType.SyncWrite, status: 0, pairId: 1, tag: seq, lba: 5, blocks: 1 }, block); })
  .add('frame: decode a 4 KiB synchronous copy', () => { decodeFrame(syncFrame); })
  .add('journal batch of 64 × 4 KiB: encode (msgpackr)', () => { encodeJournalBatch(1, batch); })
  .add('journal batch of 64 × 4 KiB: decode (msgpackr)', () => { decodeJournalBatch(decodeFrame(batchFrame)); })
  .add('ring hop: push and pop a 4 KiB record (one thread)', () => { ring.tryPush(block); ring.peek(); ring.pop(); });

await bench.run();
console.table(bench.tasks.map((t) => {
  const r = t.result as unknown as { latency?: { mean: number }; throughput?: { mean: number } } | undefined;
  return { task: t.name, 'ns/op': r?.latency ? Math.round(r.latency.mean * 1e6) : '?', 'ops/s': r?.throughput ? Math.round(r.throughput.mean).toLocaleString('en') : '?' };
}));
