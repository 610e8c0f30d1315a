import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE_BYTES } from '../firmware/constants.ts';
import { CacheMemory } from '../hardware/cache-memory.ts';
import { DiskArray, prefaultPages, type LvolSpec } from '../hardware/disk-array.ts';
import { Doorbell } from '../hardware/doorbell.ts';
import { AddressError, DiskError } from '../hardware/errors.ts';
import { LinkModel, TRANSMIT_QUEUE_MAX_US, type LinkConfig } from '../hardware/link-model.ts';
import { SPSC_RING_LAYOUT, SpscRing } from '../hardware/spsc-ring.ts';
import { FrameBufferPool, OversleepEstimate } from '../hardware/thread-cpu.ts';
import { DUE_CREDIT_HISTORY, DueCredit } from '../hardware/due-credit.ts';

/** Small deterministic PRNG so failures reproduce. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const B = BLOCK_SIZE_BYTES;
const specs: LvolSpec[] = [
  { name: 'P-VOL', kind: 'data', sizeBytes: 64 * B },
  { name: 'S-VOL', kind: 'data', sizeBytes: 64 * B },
  { name: 'JNL', kind: 'journal', sizeBytes: 16 * B },
];
const blocksOf = (n: number, fill: number) => new Uint8Array(n * B).fill(fill);

describe('DiskArray', () => {
  it('lays LVOLs out back to back in one buffer and reports their sizes in blocks', () => {
    expect(DiskArray.bytesNeeded(specs)).toBe(144 * B);
    const disk = DiskArray.create(specs);
    expect(disk.state.data.byteLength).toBe(144 * B);
    expect(disk.state.lvols.map((l) => l.offsetBytes)).toEqual([0, 64 * B, 128 * B]);
    expect([0, 1, 2].map((l) => disk.lvolBlocks(l))).toEqual([64, 64, 16]);
    expect(disk.lvolInfo(2)).toMatchObject({ name: 'JNL', kind: 'journal', blocks: 16, offsetBytes: 128 * B });
  });

  it('rejects LVOL sizes that are not positive whole blocks', () => {
    expect(() => DiskArray.create([{ name: 'x', kind: 'data', sizeBytes: 5000 }])).toThrow(/sizeBytes 5000/);
    expect(() => DiskArray.create([{ name: 'x', kind: 'data', sizeBytes: 0 }])).toThrow(/sizeBytes 0/);
    expect(() => DiskArray.create([])).toThrow();
  });

  it('throws AddressError naming the problem for bad LVOLs, ranges and lengths', () => {
    const disk = DiskArray.create(specs);
    expect(() => disk.read(7, 0, 1)).toThrow(new AddressError('unknown LVOL 7 (array has LVOLs 0..2)'));
    expect(() => disk.lvolBlocks(-1)).toThrow(AddressError);
    expect(() => disk.lvolBlocks(1.5)).toThrow(AddressError);
    expect(() => disk.read(0, 62, 4)).toThrow(/LVOL 0: blocks 62\.\.65 outside 0\.\.63/);
    expect(() => disk.read(0, 63, 1)).not.toThrow();
    expect(() => disk.read(0, -1, 1)).toThrow(AddressError);
    expect(() => disk.read(0, 0.5, 1)).toThrow(AddressError);
    expect(() => disk.read(0, 0, 0)).toThrow(AddressError);
    expect(() => disk.write(2, 15, blocksOf(2, 1))).toThrow(/LVOL 2: blocks 15\.\.16 outside 0\.\.15/);
    expect(() => disk.write(0, 0, new Uint8Array(5000))).toThrow(/5000 bytes/);
    expect(() => disk.write(0, 0, new Uint8Array(0))).toThrow(AddressError);
    try { disk.read(9, 0, 1); } catch (e) { expect((e as Error).name).toBe('AddressError'); }
  });

  it('read returns a view of the shared memory and write copies its input', () => {
    const disk = DiskArray.create(specs);
    const view = disk.read(1, 10, 2);
    expect(view.buffer).toBe(disk.state.data);
    expect(view.length).toBe(2 * B);
    const src = blocksOf(2, 0x5a);
    disk.write(1, 10, src);
    expect(view[0]).toBe(0x5a); // the earlier view sees the write: no copy
    expect(view[2 * B - 1]).toBe(0x5a);
    src.fill(0x11);
    expect(disk.read(1, 10, 2)[0]).toBe(0x5a); // mutating the source later does not reach the disk
    expect(disk.read(1, 9, 1).every((b) => b === 0)).toBe(true);
    expect(disk.read(1, 12, 1).every((b) => b === 0)).toBe(true);
  });

  it('writeWithinBlock rewrites only the given bytes of one block, and refuses bytes that leave the block', () => {
    const disk = DiskArray.create(specs);
    disk.write(1, 5, blocksOf(1, 0x11));
    const before = disk.lvolWriteCount(1);
    disk.writeWithinBlock(1, 5, 64, Uint8Array.of(1, 2, 3));
    const b = disk.read(1, 5, 1);
    expect([...b.subarray(62, 69)]).toEqual([0x11, 0x11, 1, 2, 3, 0x11, 0x11]);
    expect(disk.lvolWriteCount(1)).toBe(before + 1);
    expect(() => disk.writeWithinBlock(1, 5, B - 2, Uint8Array.of(1, 2, 3))).toThrow(/3 bytes at offset 4094 do not fit inside block 5/);
    expect(() => disk.writeWithinBlock(1, 5, -1, Uint8Array.of(1))).toThrow(AddressError);
    expect(() => disk.writeWithinBlock(1, 5, 0, new Uint8Array(0))).toThrow(AddressError);
    expect(() => disk.writeWithinBlock(1, 64, 0, Uint8Array.of(1))).toThrow(/outside/);
    expect([...disk.read(1, 5, 1).subarray(62, 69)]).toEqual([0x11, 0x11, 1, 2, 3, 0x11, 0x11]); // refused: nothing changed
    disk.failDrive(1);
    expect(() => disk.writeWithinBlock(1, 5, 0, Uint8Array.of(9))).toThrow(DiskError);
  });

  it('prefault commits the memory without changing a byte', () => {
    const disk = DiskArray.create(specs);
    disk.write(0, 3, blocksOf(1, 0x77));
    const before = new Uint8Array(disk.state.data).slice();
    disk.prefault();
    expect(Buffer.compare(new Uint8Array(disk.state.data), before)).toBe(0);
  });

  it('keeps LVOLs apart: filling one leaves its neighbours untouched', () => {
    const disk = DiskArray.create(specs);
    disk.write(0, 0, blocksOf(64, 0xaa));
    expect(disk.lvolBytes(0).every((b) => b === 0xaa)).toBe(true);
    expect(disk.lvolBytes(1).every((b) => b === 0)).toBe(true);
    expect(disk.lvolBytes(1).length).toBe(64 * B);
  });

  it('throws DiskError for a failed LVOL only, until it is repaired', () => {
    const disk = DiskArray.create(specs);
    disk.write(1, 0, blocksOf(1, 7));
    disk.failDrive(1);
    expect(disk.lvolHealthy(1)).toBe(false);
    expect(disk.lvolHealthy(0)).toBe(true);
    expect(() => disk.read(1, 0, 1)).toThrow(DiskError);
    expect(() => disk.write(1, 0, blocksOf(1, 9))).toThrow(/LVOL 1 \(S-VOL\): drives failed/);
    expect(() => disk.read(0, 0, 1)).not.toThrow();
    expect(() => disk.read(1, 999, 1)).toThrow(AddressError); // address checked before health
    disk.repairDrive(1);
    expect(disk.lvolHealthy(1)).toBe(true);
    expect(disk.read(1, 0, 1)[0]).toBe(7);
  });

  it('attach from a structured clone of state shares data and drive health', () => {
    const disk = DiskArray.create(specs);
    const other = DiskArray.attach(structuredClone(disk.state));
    other.write(2, 3, blocksOf(1, 0x42));
    expect(disk.read(2, 3, 1)[B - 1]).toBe(0x42);
    disk.failDrive(0);
    expect(other.lvolHealthy(0)).toBe(false);
    expect(other.lvols.map((l) => l.name)).toEqual(['P-VOL', 'S-VOL', 'JNL']);
  });

  it('prefaultPages commits every page of a SharedArrayBuffer up front (benchmarks: no first-write faults in a window), bytes unchanged', () => {
    // A SharedArrayBuffer is anonymous memory of this process (its threads share the address space): the pages it has
    // touched show in RssAnon (Linux); pages never written take none.
    const residentKiB = (): number => Number(/RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    const sab = new SharedArrayBuffer(16 << 20);
    new Uint8Array(sab)[12345] = 7;
    const before = residentKiB();
    prefaultPages(sab);
    expect(residentKiB() - before).toBeGreaterThanOrEqual(15 * 1024);
    expect(new Uint8Array(sab)[12345]).toBe(7);
    expect(new Uint8Array(sab).reduce((n, b) => n + b, 0)).toBe(7);
  });
});

describe('CacheMemory', () => {
  it('hands out every slot once, then reports exhaustion with -1', () => {
    const cache = CacheMemory.create(4, 1024);
    const got = [cache.allocate(), cache.allocate(), cache.allocate(), cache.allocate()];
    expect(new Set(got)).toEqual(new Set([0, 1, 2, 3]));
    expect(cache.inUse).toBe(4);
    expect(cache.allocate()).toBe(-1);
    cache.release(got[2]!);
    expect(cache.inUse).toBe(3);
    expect(cache.allocate()).toBe(got[2]);
  });

  it('rejects double release, bad indices and oversized views', () => {
    const cache = CacheMemory.create(2, 64);
    const s = cache.allocate();
    cache.release(s);
    expect(() => cache.release(s)).toThrow(/released twice/);
    expect(() => cache.release(1)).toThrow(); // never allocated
    expect(() => cache.release(2)).toThrow(/outside/);
    expect(() => cache.release(-1)).toThrow();
    expect(() => cache.slot(0, 65)).toThrow(/65/);
    expect(cache.slot(1, 64).length).toBe(64);
  });

  it('slots are disjoint views of the shared buffer, visible through attach', () => {
    const cache = CacheMemory.create(3, 16);
    const a = cache.allocate(), b = cache.allocate();
    cache.slot(a, 16).fill(1);
    cache.slot(b, 16).fill(2);
    expect(cache.slot(a, 16).every((x) => x === 1)).toBe(true);
    const peer = CacheMemory.attach(cache.state);
    expect(peer.slot(b, 16).every((x) => x === 2)).toBe(true);
    expect(cache.slot(b, 4).buffer).toBe(cache.state.data);
  });

  it('clear() frees every slot and zeroes the bytes (power loss)', () => {
    const cache = CacheMemory.create(2, 8);
    cache.slot(cache.allocate(), 8).fill(9);
    cache.allocate();
    cache.clear();
    expect(cache.inUse).toBe(0);
    expect(new Uint8Array(cache.state.data).every((x) => x === 0)).toBe(true);
    expect(cache.allocate()).not.toBe(-1);
    expect(cache.allocate()).not.toBe(-1);
    expect(cache.allocate()).toBe(-1);
  });
});

describe('SpscRing', () => {
  const footprint = (len: number) => (4 + len + 7) & ~7;

  it('validates capacity and caps one record at capacity/2 - 8 bytes', () => {
    expect(() => SpscRing.create(60)).toThrow(RangeError);
    expect(() => SpscRing.create(100)).toThrow(RangeError);
    const ring = SpscRing.create(1024);
    expect(ring.capacityBytes).toBe(1024);
    expect(ring.maxRecordBytes).toBe(504);
    expect(() => ring.tryPush(new Uint8Array(505))).toThrow(/505 bytes/);
    expect(() => ring.reserve(505)).toThrow(RangeError);
    expect(ring.tryPush(new Uint8Array(504).fill(3))).toBe(true);
    expect(ring.peek()!.length).toBe(504);
  });

  it('detects full, leaving one slot of slack, and accepts again after a pop', () => {
    const ring = SpscRing.create(256);
    const rec = (i: number) => new Uint8Array(24).fill(i);
    let n = 0;
    while (n < 100 && ring.tryPush(rec(n))) n++; // bounded so a broken full check fails instead of hanging
    expect(n).toBe(7); // 8 × 32-byte records would make tail == head
    expect(ring.usedBytes()).toBe(224);
    ring.pop();
    expect(ring.tryPush(rec(7))).toBe(true); // ends exactly at the end: tail wraps to 0
    expect(ring.tryPush(rec(8))).toBe(false); // tail 0 would reach head 32
    for (let i = 1; i <= 7; i++) {
      expect(ring.peek()).toEqual(rec(i));
      ring.pop();
    }
    expect(ring.isEmpty()).toBe(true);
  });

  it('starts every payload 8-byte aligned in the shared buffer, whatever the lengths before it and across the wrap', () => {
    // V8 copies to and from shared memory word by word only when both sides are equally aligned: a payload at
    // 4 mod 8 made every 4 KiB copy byte by byte (6x slower).
    const ring = SpscRing.create(1024);
    for (let i = 0; i < 200; i++) {
      const len = 1 + ((i * 37) % 200);
      expect(ring.tryPush(new Uint8Array(len).fill(i & 255))).toBe(true);
      const view = ring.peek()!;
      expect(view.byteOffset % 8).toBe(0);
      expect(view.length).toBe(len);
      expect(view[len - 1]).toBe(i & 255);
      ring.pop();
    }
  });

  it('carries payloads from sources at any alignment intact (a misaligned source is staged), across several staging buffers', () => {
    const ring = SpscRing.create(512 * 1024);
    const backing = Uint8Array.from({ length: 140_000 }, (_, i) => (i * 131 + 7) & 255);
    for (const len of [1, 255, 256, 4096, 65_536, 65_537, 131_072 + 100]) {
      for (const off of [0, 1, 3, 4, 7, 8]) {
        const src = backing.subarray(off, off + len);
        const header = Uint8Array.of(off, len & 255, 9);
        expect(ring.tryPushParts(header, src)).toBe(true);
        const view = ring.peek()!;
        expect(view.length).toBe(3 + len);
        expect(view.subarray(0, 3)).toEqual(header);
        expect(Buffer.compare(view.subarray(3), src)).toBe(0);
        ring.pop();
        expect(ring.tryPush(src)).toBe(true);
        expect(Buffer.compare(ring.peek()!, src)).toBe(0);
        ring.pop();
      }
    }
  });

  it('writes a wrap marker and places a record that would straddle the end at offset 0', () => {
    const ring = SpscRing.create(128);
    const data = Uint8Array.from({ length: 40 }, (_, i) => i + 1);
    ring.tryPush(data); ring.tryPush(data);
    ring.pop(); ring.pop();
    expect(ring.isEmpty()).toBe(true);
    expect(ring.tryPush(data)).toBe(true); // tail 96: 32 bytes left, needs 48
    const view = ring.peek()!;
    expect(view.byteOffset).toBe(SPSC_RING_LAYOUT.headerBytes + SPSC_RING_LAYOUT.recordHeaderBytes);
    expect(view).toEqual(data);
    expect(new Uint32Array(ring.sab, SPSC_RING_LAYOUT.headerBytes + 96, 1)[0]).toBe(0xffffffff);
    expect(ring.usedBytes()).toBe(80); // the skipped gap counts as used until popped
    ring.pop();
    expect(ring.usedBytes()).toBe(0);
  });

  it('reserve/commit publishes nothing before commit and exactly the reserved bytes after', () => {
    const ring = SpscRing.create(256);
    const view = ring.reserve(10)!;
    expect(view.length).toBe(10);
    expect(view.buffer).toBe(ring.sab);
    view.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(ring.peek()).toBeNull();
    expect(ring.isEmpty()).toBe(true);
    expect(() => ring.reserve(4)).toThrow(/before commit/);
    ring.commit();
    expect(() => ring.commit()).toThrow(/without reserve/);
    expect(Array.from(ring.peek()!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const full = SpscRing.create(64); // max record 24
    expect(full.reserve(24)).not.toBeNull(); full.commit();
    expect(full.reserve(24)).toBeNull();
  });

  it('tryPushParts stores header then body as one record', () => {
    const ring = SpscRing.create(256);
    expect(ring.tryPushParts(Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5))).toBe(true);
    expect(ring.tryPushParts(Uint8Array.of(9), undefined)).toBe(true);
    expect(Array.from(ring.peek()!)).toEqual([1, 2, 3, 4, 5]);
    ring.pop();
    expect(Array.from(ring.peek()!)).toEqual([9]);
  });

  it('peek returns the same oldest record until pop, and pop on empty throws', () => {
    const ring = SpscRing.create(256);
    expect(ring.peek()).toBeNull();
    expect(() => ring.pop()).toThrow(/empty/);
    ring.tryPush(Uint8Array.of(1)); ring.tryPush(Uint8Array.of(2)); ring.tryPush(new Uint8Array(0));
    expect(ring.peek()![0]).toBe(1);
    expect(ring.peek()![0]).toBe(1);
    ring.pop();
    ring.pop(); // pop without peek frees the oldest too
    expect(ring.peek()!.length).toBe(0);
    ring.pop();
    expect(ring.isEmpty()).toBe(true);
  });

  it('an attached instance sees the same queue', () => {
    const prod = SpscRing.create(128);
    const cons = SpscRing.attach(prod.sab);
    prod.tryPush(Uint8Array.of(42));
    expect(cons.peek()![0]).toBe(42);
    cons.pop();
    expect(prod.isEmpty()).toBe(true);
    expect(() => SpscRing.attach(new SharedArrayBuffer(256))).toThrow(/not an SpscRing/);
  });

  it('matches a reference queue over 50,000 random operations with many wrap-arounds', () => {
    const rnd = mulberry32(0xc0ffee);
    const ring = SpscRing.create(1024);
    const end = ring.sab.byteLength;
    const ref: Uint8Array[] = [];
    let seq = 0, wraps = 0, fulls = 0, lastOffset = -1;
    const check = () => {
      const v = ring.peek();
      if (ref.length === 0) { if (v !== null) throw new Error('record out of an empty queue'); return; }
      const want = ref.shift()!;
      // Plain comparisons in the hot loop: expect() per record would dominate the run time.
      if (v === null) throw new Error(`record of ${want.length} bytes missing`);
      if (v.byteOffset + v.length > end) throw new Error('record straddles the end of the ring');
      if (v.length !== want.length || v.some((b, i) => b !== want[i])) throw new Error(`record differs: ${v.length} vs ${want.length} bytes`);
      if (v.byteOffset < lastOffset) wraps++;
      lastOffset = v.byteOffset;
      ring.pop();
    };
    for (let op = 0; op < 50_000; op++) {
      if (rnd() < 0.55) {
        const len = rnd() < 0.05 ? ring.maxRecordBytes : Math.floor(rnd() * 200);
        const data = Uint8Array.from({ length: len }, (_, i) => (seq * 31 + i) & 0xff);
        const wasEmpty = ring.isEmpty(), freeBefore = ring.capacityBytes - ring.usedBytes();
        let ok: boolean;
        switch (seq % 3) {
          case 0: ok = ring.tryPush(data); break;
          case 1: { const cut = Math.floor(len / 2); ok = ring.tryPushParts(data.subarray(0, cut), data.subarray(cut)); break; }
          default: { const v = ring.reserve(len); ok = v !== null; if (v) { v.set(data); ring.commit(); } }
        }
        if (ok) { ref.push(data); seq++; }
        else {
          fulls++;
          if (wasEmpty) throw new Error(`empty ring refused ${len} bytes`); // an empty ring accepts any legal record
          if (freeBefore > 2 * footprint(len)) throw new Error(`refused ${len} bytes with ${freeBefore} free`); // only when really short of room
        }
      } else check();
      if (ring.isEmpty() !== (ref.length === 0)) throw new Error(`isEmpty() wrong at op ${op}`);
    }
    while (ref.length) check();
    expect(ring.peek()).toBeNull();
    expect(wraps).toBeGreaterThan(100);
    expect(fulls).toBeGreaterThan(100);
  });

  it('carries 100,000 records in order from a producer worker thread', async () => {
    const N = 100_000;
    const ring = SpscRing.create(4096);
    const dataBell = Doorbell.create(), spaceBell = Doorbell.create();
    // Plain-JS producer re-implementing only the layout contract (SPSC_RING_LAYOUT).
    const code = `
      const { workerData } = require('node:worker_threads');
      const { ring, dataBell, spaceBell, N, L } = workerData;
      const cap = ring.byteLength - L.headerBytes;
      const ctl = new Int32Array(ring, 0, L.headerBytes / 4);
      const u8 = new Uint8Array(ring, L.headerBytes, cap), u32 = new Uint32Array(ring, L.headerBytes, cap / 4);
      const db = new Int32Array(dataBell), sb = new Int32Array(spaceBell);
      function tryPush(seq) {
        const len = 4 + ((seq * 7919) % 300);
        const R = L.recordHeaderBytes;
        const need = (R + len + 7) & ~7;
        const t = Atomics.load(ctl, L.tailIndex), h = Atomics.load(ctl, L.headIndex);
        let pos;
        if (t >= h) {
          if (need < cap - t || (need === cap - t && h > 0)) pos = t;
          else if (need < h) { u32[t >> 2] = L.wrapMarker; pos = 0; }
          else return false;
        } else if (need < h - t) pos = t; else return false;
        u32[pos >> 2] = len;
        u32[(pos + R) >> 2] = seq;
        for (let i = 4; i < len; i++) u8[pos + R + i] = (seq + i) & 255;
        Atomics.store(ctl, L.tailIndex, (pos + need) % cap);
        return true;
      }
      for (let seq = 0; seq < N; seq++) {
        for (;;) {
          const seen = Atomics.load(sb, 0);
          if (tryPush(seq)) break;
          Atomics.wait(sb, 0, seen, 100);
        }
        Atomics.add(db, 0, 1); Atomics.notify(db, 0);
      }`;
    const worker = new Worker(code, {
      eval: true,
      workerData: { ring: ring.sab, dataBell: dataBell.sab, spaceBell: spaceBell.sab, N, L: { ...SPSC_RING_LAYOUT } },
    });
    let failure: unknown;
    worker.on('error', (e) => { failure = e; });
    let got = 0;
    const deadline = Date.now() + 30_000;
    try {
      while (got < N && failure === undefined) {
        if (Date.now() > deadline) throw new Error(`stalled after ${got} records`);
        const seen = dataBell.value();
        let rec: Uint8Array | null, drained = 0;
        while ((rec = ring.peek()) !== null) {
          const seq = new DataView(rec.buffer, rec.byteOffset, rec.length).getUint32(0, true);
          if (seq !== got) throw new Error(`record ${got}: got sequence ${seq}`);
          if (rec.length !== 4 + ((seq * 7919) % 300)) throw new Error(`record ${seq}: length ${rec.length}`);
          for (let i = 4; i < rec.length; i++)
            if (rec[i] !== ((seq + i) & 255)) throw new Error(`record ${seq}: byte ${i} is ${rec[i]}`);
          ring.pop();
          got++; drained++;
        }
        if (drained) spaceBell.ring();
        else await dataBell.waitAsync(seen, 1000);
      }
    } finally {
      await worker.terminate();
    }
    expect(failure).toBeUndefined();
    expect(got).toBe(N);
    expect(ring.isEmpty()).toBe(true);
  }, 60_000);
});

describe('Doorbell', () => {
  it('waitAsync wakes when ring() is called, well before its timeout', async () => {
    const bell = Doorbell.create();
    const seen = bell.value();
    const t0 = Date.now();
    setTimeout(() => Doorbell.attach(bell.sab).ring(), 20);
    await bell.waitAsync(seen, 10_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(bell.value()).toBe(seen + 1);
  });

  it('waitAsync resolves at once when the value already moved, and after the timeout otherwise', async () => {
    const bell = Doorbell.create();
    bell.ring();
    const t0 = Date.now();
    await bell.waitAsync(0, 10_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    const t1 = Date.now();
    await bell.waitAsync(1, 50);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(40);
    expect(bell.value()).toBe(1);
  });

  it('waitSync reports a timeout and returns at once when the value differs', () => {
    const bell = Doorbell.create();
    expect(bell.waitSync(0, 10)).toBe(false);
    bell.ring();
    expect(bell.waitSync(0, 10_000)).toBe(true);
  });
});

describe('OversleepEstimate', () => {
  it('allows for a quantile of the recent lateness, forgets older samples and is capped', () => {
    const e = new OversleepEstimate(0.9, 300, 500, 10);
    expect(e.us).toBe(300); // the initial guess is capped too
    for (let i = 1; i <= 10; i++) e.add(i * 10);
    expect(e.us).toBe(100); // 0.9 of 10 samples: the largest
    e.add(-5); // a wake before the timeout counts as no lateness
    expect(e.us).toBe(100);
    for (let i = 0; i < 10; i++) e.add(20); // the window holds the last 10 only
    expect(e.us).toBe(20);
    for (let i = 0; i < 10; i++) e.add(5_000); // a preempted thread's lateness is capped
    expect(e.us).toBe(300);
    expect(() => new OversleepEstimate(1.5, 300, 100)).toThrow(/quantile/);
  });
});

describe('DueCredit (ThreadTuning.maxDueCreditUs)', () => {
  it('credits an event the lateness past its due time while the CPU was not running its own events, not its queueing behind them', () => {
    const c = new DueCredit(1_000);
    expect(c.dispatch(150, 100)).toBe(50); // woke 50 µs late with nothing else to do
    expect(c.stamp(170)).toBe(120); // a frame sent 20 µs into the handler leaves as if dispatched when due
    c.clear();
    expect(c.stamp(180)).toBe(180); // between events: the wall clock
    c.busyUntil(200); // that event's handler (and the turn) ended at 200
    expect(c.dispatch(210, 190)).toBe(10); // due at 190 while the CPU was busy until 200: only 200 → 210 is credited
    c.busyUntil(215);
    expect(c.dispatch(230, 240)).toBe(0); // dispatched early (a host request held for its line time): nothing
    expect(c.stamp(235)).toBe(235);
    c.busyUntil(240);
    expect(c.dispatch(5_300, 215)).toBe(1_000); // a stall beyond the cap is the emulator's: the rest is not credited
    expect(c.stamp(5_310)).toBe(4_310);
    c.busyUntil(5_320);
    c.held(6_000, 9_000); // a debugger's pause from 6,000 to 9,000: what waited for it gets no credit for the pause
    expect(c.dispatch(9_020, 8_900)).toBe(20); // 120 late: 8,900 → 9,000 held, 9,000 → 9,020 the CPU's idle time
    c.busyUntil(9_030);
    expect(new DueCredit(0).dispatch(500, 100)).toBe(0); // 0 turns it off
    expect(() => new DueCredit(-1)).toThrow(/maxDueCreditUs/);
    expect(() => new DueCredit(Number.NaN)).toThrow(/maxDueCreditUs/);
  });

  it('events that fell due while the CPU slept are each credited their sleep, less the events run before them in the turn', () => {
    const c = new DueCredit(1_000);
    c.dispatch(0, 0);
    c.busyUntil(10); // the last event before the CPU slept
    // It slept until 200 (woken late). Three frames fell due during the sleep, at 100, 150 and 190.
    expect(c.dispatch(200, 100)).toBe(100);
    c.busyUntil(205);
    expect(c.dispatch(206, 150)).toBe(51); // 56 late, 5 of them behind the first frame's handler
    c.busyUntil(215);
    expect(c.dispatch(216, 190)).toBe(12); // 26 late, 14 of them behind the two before
    c.busyUntil(220);
    // One due in the middle of the turn: credited only what it waited after the turn's events (3 + 4 µs of them since 212).
    expect(c.dispatch(240, 212)).toBe(21); // 28 late: 212 → 215 and 216 → 220 busy
    c.busyUntil(241);
  });

  it('credits what a walk over every busy interval would, on random schedules of events', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 20; round++) {
      const c = new DueCredit(500);
      const busy: [number, number][] = [];
      let t = 0;
      for (let e = 0; e < 100; e++) {
        t += rand() < 0.3 ? rand() * 400 : rand() * 5; // asleep now and then, else back to back
        const due = t - rand() * 300;
        const waited = Math.min(t - due, 500), since = t - waited;
        const overlap = busy.reduce((sum, [a, b]) => sum + Math.max(0, Math.min(b, t) - Math.max(a, since)), 0);
        expect(c.dispatch(t, due)).toBeCloseTo(waited > 0 ? Math.max(0, waited - overlap) : 0, 6);
        const end = t + rand() * 20;
        c.busyUntil(end);
        if (end > t) busy.push([t, end]);
        t = end;
      }
    }
  });

  it(`remembers the last ${DUE_CREDIT_HISTORY} busy intervals; what waited longer than that back is not credited for the time before them`, () => {
    const c = new DueCredit(10_000);
    for (let i = 0; i < DUE_CREDIT_HISTORY + 10; i++) { c.dispatch(1_000 + 10 * i, 1_000 + 10 * i); c.busyUntil(1_000 + 10 * i + 5); }
    const lastEnd = 1_000 + 10 * (DUE_CREDIT_HISTORY + 9) + 5, oldestStart = 1_000 + 10 * 10;
    // Due at 0: the remembered intervals are half busy; everything before the oldest one counts as busy.
    const busy = 5 * DUE_CREDIT_HISTORY + oldestStart;
    expect(c.dispatch(lastEnd + 100, 0)).toBe(lastEnd + 100 - busy);
  });
});

describe('FrameBufferPool', () => {
  it('recycles small buffers by power-of-two class, up to its byte budget for them', () => {
    const pool = new FrameBufferPool(0, 4096);
    const a = pool.take(1000), b = pool.take(1500);
    expect([a.length, a.buffer.byteLength, b.buffer.byteLength, pool.allocated]).toEqual([1000, 1024, 2048, 2]);
    pool.give(a);
    pool.give(b);
    expect(pool.kept()).toEqual({ large: 0, smallBytes: 3072 });
    const c = pool.take(600); // a 1 KiB class buffer again: the one a had
    expect([c.buffer, c.length, pool.allocated]).toEqual([a.buffer, 600, 2]);
    pool.give(pool.take(4000)); // 4 KiB would pass the 4 KiB budget with b's 2 KiB kept: dropped
    expect(pool.kept()).toEqual({ large: 0, smallBytes: 2048 });
    pool.give(new Uint8Array(3000)); // not one of its buffers (3000 is no class): left to the collector
    pool.give(new Uint8Array(new SharedArrayBuffer(1024)));
    expect(pool.kept().smallBytes).toBe(2048);
  });
  it('serves every frame over 256 KiB from one large class and keeps maxLarge free ones; a frame larger than any is not pooled', () => {
    const pool = new FrameBufferPool(2, 1 << 20);
    const x = pool.take(300 * 1024), y = pool.take(FrameBufferPool.LARGE_BYTES), z = pool.take(1 << 20);
    expect([x.buffer.byteLength, y.buffer.byteLength, z.buffer.byteLength]).toEqual(Array(3).fill(FrameBufferPool.LARGE_BYTES));
    expect(pool.allocated).toBe(3);
    for (const v of [x, y, z]) pool.give(v);
    expect(pool.kept().large).toBe(2); // maxLarge
    const again = pool.take(700 * 1024); // any large buffer serves any large frame
    expect([again.buffer === y.buffer || again.buffer === x.buffer, again.length, pool.allocated]).toEqual([true, 700 * 1024, 3]);
    const over = pool.take(FrameBufferPool.LARGE_BYTES + 1); // larger than any frame: exact, unpooled
    expect(over.buffer.byteLength).toBe(FrameBufferPool.LARGE_BYTES + 1);
    pool.give(over);
    expect(pool.kept()).toEqual({ large: 1, smallBytes: 0 });
  });
});

describe('LinkModel', () => {
  const cfg = (over: Partial<LinkConfig> = {}): LinkConfig =>
    ({ name: 't', distanceKm: 0, bandwidthMBps: 100, jitterUs: 0, paths: [{ extraDelayUs: 0 }], ...over });
  const never = () => { throw new Error('random() must not be called'); };

  it('propagates 5 µs per km one way: 100 km is 500 µs, 1000 µs round trip', () => {
    const link = new LinkModel(cfg({ distanceKm: 100 }), never);
    expect(link.propagationUs()).toBe(500);
    expect(link.roundTripUs()).toBe(1000);
    expect(link.schedule(0, 0).deliverAtUs).toBe(500);
  });

  it('serialises 1 MiB at 1000 MB/s in about 1048.6 µs', () => {
    const link = new LinkModel(cfg({ bandwidthMBps: 1000 }), never);
    expect(link.schedule(0, 1024 * 1024).deliverAtUs).toBeCloseTo(1048.6, 1);
  });

  it('queues back-to-back frames behind each other on one path, and not after it idles', () => {
    const link = new LinkModel(cfg({ distanceKm: 10 }), never); // 1000 B = 10 µs, +50 µs flight
    expect(link.schedule(0, 1000).deliverAtUs).toBe(60);
    expect(link.schedule(0, 1000).deliverAtUs).toBe(70);
    expect(link.schedule(5, 1000).deliverAtUs).toBe(80);
    expect(link.backlogUs(5)).toBe(25);
    expect(link.schedule(1000, 1000).deliverAtUs).toBe(1060);
    expect(link.busyUs()).toBe(40);
  });

  it('tail-drops a frame handed over while more than TRANSMIT_QUEUE_MAX_US is queued on its path, and accepts again once it drains', () => {
    const link = new LinkModel(cfg({ bandwidthMBps: 1 }), never); // 1 byte/µs
    const size = TRANSMIT_QUEUE_MAX_US / 4 + 1; // a little over a quarter of the bound each
    const sent = Array.from({ length: 6 }, () => link.schedule(0, size));
    expect(sent.map((d) => d.drop)).toEqual([false, false, false, false, true, true]); // the fifth finds 4 × size > bound queued
    expect(link.backlogUs(0)).toBe(4 * size);
    const drained = 4 * size - TRANSMIT_QUEUE_MAX_US;
    expect(link.schedule(drained - 1, size).drop).toBe(true);
    expect(link.schedule(drained, size).drop).toBe(false); // exactly the bound queued: room again
  });

  it('spreads frames round-robin, so paths with different extra delay reorder them', () => {
    const link = new LinkModel(cfg({ paths: [{ extraDelayUs: 0 }, { extraDelayUs: 500 }] }), never);
    const d = [0, 1, 2].map(() => link.schedule(0, 100));
    expect(d.map((x) => x.path)).toEqual([0, 1, 0]);
    expect(d.map((x) => x.deliverAtUs)).toEqual([1, 501, 2]);
    expect(d[2]!.deliverAtUs).toBeLessThan(d[1]!.deliverAtUs); // third frame overtakes the second
  });

  it('keeps each path FIFO without jitter under random sizes and send times', () => {
    const rnd = mulberry32(7);
    const link = new LinkModel(cfg({ distanceKm: 30, paths: [{ extraDelayUs: 0 }, { extraDelayUs: 300 }, { extraDelayUs: 7 }] }), never);
    const last = [-Infinity, -Infinity, -Infinity];
    let now = 0;
    for (let i = 0; i < 5000; i++) {
      now += rnd() * 20;
      const d = link.schedule(now, Math.floor(rnd() * 4000));
      expect(d.deliverAtUs).toBeGreaterThanOrEqual(last[d.path]!);
      expect(d.deliverAtUs).toBeGreaterThanOrEqual(now + 150);
      last[d.path] = d.deliverAtUs;
    }
  });

  it('adds jitter uniformly within [0, jitterUs)', () => {
    const link = new LinkModel(cfg({ distanceKm: 1, jitterUs: 100 }), mulberry32(3));
    const extra: number[] = [];
    for (let i = 0; i < 2000; i++) extra.push(link.schedule(i * 1000, 0).deliverAtUs - i * 1000 - 5);
    expect(Math.min(...extra)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...extra)).toBeLessThan(100);
    expect(Math.min(...extra)).toBeLessThan(5);
    expect(Math.max(...extra)).toBeGreaterThan(95);
  });

  it('draws loss and duplication only when enabled, at about the configured rates', () => {
    let calls = 0;
    const counting = mulberry32(11);
    const off = new LinkModel(cfg({ jitterUs: 10 }), () => { calls++; return counting(); });
    for (let i = 0; i < 100; i++) expect(off.schedule(i, 10).drop).toBe(false);
    expect(calls).toBe(100); // jitter only
    const lossy = new LinkModel(cfg({ lossRate: 0.5, duplicateRate: 0.2 }), mulberry32(5));
    let drops = 0, dups = 0;
    for (let i = 0; i < 4000; i++) {
      const d = lossy.schedule(i * 10, 100);
      if (d.drop) { drops++; expect(d.duplicateAtUs).toBeUndefined(); }
      if (d.duplicateAtUs !== undefined) { dups++; expect(d.duplicateAtUs).toBeGreaterThan(d.deliverAtUs); }
    }
    expect(drops / 4000).toBeGreaterThan(0.45);
    expect(drops / 4000).toBeLessThan(0.55);
    expect(dups / 4000).toBeGreaterThan(0.07); // 0.2 of the ~half not dropped
    expect(dups / 4000).toBeLessThan(0.13);
  });

  it('rejects invalid configuration with an error naming the field', () => {
    const bad: Array<[Partial<LinkConfig>, RegExp]> = [
      [{ distanceKm: -1 }, /distanceKm/],
      [{ bandwidthMBps: 0 }, /bandwidthMBps/],
      [{ jitterUs: -0.5 }, /jitterUs/],
      [{ jitterUs: NaN }, /jitterUs/],
      [{ paths: [] }, /paths/],
      [{ paths: [{ extraDelayUs: -3 }] }, /extraDelayUs/],
      [{ lossRate: 1 }, /lossRate/],
      [{ duplicateRate: -0.1 }, /duplicateRate/],
    ];
    for (const [over, re] of bad) expect(() => new LinkModel(cfg(over), Math.random)).toThrow(re);
    expect(() => new LinkModel(cfg({ lossRate: 0, duplicateRate: 0.99 }), Math.random)).not.toThrow();
  });
});
