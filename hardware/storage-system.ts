// One storage system's hardware (200x): disk array 230x carved into LVOLs, cache memory, control
// memory 220x — all in SharedArrayBuffers, allocated once when the system is built. Its `state` is plain
// data that can be posted to a worker thread, which attaches to the same memory.

import { BLOCK_SIZE_BYTES, MAX_IO_BYTES } from '../firmware/constants.ts';
import { controlMemoryWords, formatControlMemory } from '../firmware/definition-info.ts';
import { DifferenceBitmap } from '../firmware/difference-bitmap.ts';
import { CacheMemory } from './cache-memory.ts';
import { DiskArray, type DiskArrayState, type LvolSpec } from './disk-array.ts';

export interface StorageSystemMemoryState {
  storageId: number;
  name: string;
  disk: DiskArrayState;
  cache: CacheMemory['state'];
  controlMemory: SharedArrayBuffer;
}

export class StorageSystemMemory {
  private constructor(
    readonly storageId: number,
    readonly name: string,
    readonly disk: DiskArray,
    readonly cache: CacheMemory,
    readonly controlMemory: Int32Array,
  ) {}

  /** Builds fresh hardware: zeroed disks, empty cache, formatted control memory. */
  static build(storageId: number, name: string, lvols: LvolSpec[], cacheSlots: number): StorageSystemMemory {
    const disk = DiskArray.create(lvols);
    const cache = CacheMemory.create(cacheSlots, MAX_IO_BYTES);
    // A pair's bitmap covers its whole consistency group, and a group at most all data volumes (track-aligned).
    const tracks = (l: LvolSpec) => DifferenceBitmap.tracksFor(l.sizeBytes / BLOCK_SIZE_BYTES);
    const groupTracks = Math.max(...lvols.map(tracks), lvols.filter((l) => l.kind === 'data').reduce((n, l) => n + tracks(l), 0));
    const geometry = { bitmapWords: Math.ceil(groupTracks / 32) };
    const cm = new Int32Array(new SharedArrayBuffer(controlMemoryWords(geometry) * 4));
    formatControlMemory(cm, storageId, geometry);
    return new StorageSystemMemory(storageId, name, disk, cache, cm);
  }

  static attach(s: StorageSystemMemoryState): StorageSystemMemory {
    return new StorageSystemMemory(s.storageId, s.name, DiskArray.attach(s.disk), CacheMemory.attach(s.cache), new Int32Array(s.controlMemory));
  }

  get state(): StorageSystemMemoryState {
    return { storageId: this.storageId, name: this.name, disk: this.disk.state, cache: this.cache.state, controlMemory: this.controlMemory.buffer as SharedArrayBuffer };
  }
}
