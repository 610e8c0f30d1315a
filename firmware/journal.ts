// Journal volume (232x): a circular log of journal entries (log information) — write data with a
// timestamp and a sequence number. The journal LVOL is split into a metadata region (32-byte entry
// descriptors) and a data region (whole blocks); head/tail live in control memory so they survive a
// controller restart. Entries are contiguous in sequence number, so entry `seq` sits at a computable slot.

import { BLOCK_SIZE_BYTES, JOURNAL_HIGH_WATER_PERCENT } from './constants.ts';
import { ControlMemoryLayout, J } from './definition-info.ts';
import type { DiskArrayPort } from './hardware-interface.ts';
import { assertInvariant } from './invariant.ts';

const DESCRIPTOR_BYTES = 32;
const DESCRIPTORS_PER_BLOCK = BLOCK_SIZE_BYTES / DESCRIPTOR_BYTES;

export interface JournalEntry {
  seq: number;
  tsUs: number;
  lvol: number;
  lba: number;
  blocks: number;
  /** View into the journal volume; copy it to keep it. */
  data: Uint8Array;
}

export class Journal {
  /** One descriptor being written, and a view to fill it in. */
  private readonly descriptor = new Uint8Array(DESCRIPTOR_BYTES);
  private readonly descriptorOut = new DataView(this.descriptor.buffer);
  private readonly metaBlocks: number;
  readonly slotCount: number;
  readonly dataBlocks: number;

  private constructor(
    private readonly disk: DiskArrayPort,
    private readonly l: ControlMemoryLayout,
    readonly slot: number,
    readonly journalLvol: number,
  ) {
    this.slotCount = l.journalWord(slot, J.slotCount);
    this.dataBlocks = l.journalWord(slot, J.dataBlocks);
    this.metaBlocks = Math.ceil(this.slotCount / DESCRIPTORS_PER_BLOCK);
  }

  /** Attaches to the journal kept on `journalLvol`, formatting a control-memory slot for it if it has none. */
  static open(disk: DiskArrayPort, l: ControlMemoryLayout, journalLvol: number, pairId: number): Journal {
    let slot = l.findJournal(journalLvol);
    if (slot < 0) {
      slot = l.freeJournalSlot();
      if (slot < 0) throw new Error('no free journal slot in control memory');
      const total = disk.lvolBlocks(journalLvol);
      // Worst case one data block per entry: data + data/128 descriptor blocks must fit.
      const dataBlocks = Math.floor((total * DESCRIPTORS_PER_BLOCK) / (DESCRIPTORS_PER_BLOCK + 1));
      const slotCount = Math.min(dataBlocks, (total - dataBlocks) * DESCRIPTORS_PER_BLOCK);
      if (dataBlocks < 2 || slotCount < 2) throw new Error(`journal LVOL ${journalLvol} is too small (${total} blocks)`);
      l.clearJournalSlot(slot);
      l.setJournalWord(slot, J.journalLvol, journalLvol);
      l.setJournalWord(slot, J.slotCount, slotCount);
      l.setJournalWord(slot, J.dataBlocks, dataBlocks);
      l.setJournalWord(slot, J.capacityBytes, dataBlocks * BLOCK_SIZE_BYTES);
      l.setJournalWord(slot, J.oldestSeq, 1);
      l.setJournalWord(slot, J.inUse, 1);
    }
    l.setJournalWord(slot, J.pairId, pairId);
    return new Journal(disk, l, slot, journalLvol);
  }

  private w(f: number): number { return this.l.journalWord(this.slot, f); }
  private set(f: number, v: number): void { this.l.setJournalWord(this.slot, f, v); }

  get entries(): number { return this.w(J.entries); }
  get oldestSeq(): number { return this.w(J.oldestSeq); }
  get newestSeq(): number { return this.w(J.newestSeq); }
  get usedBytes(): number { return this.w(J.usedBytes); }
  get capacityBytes(): number { return this.w(J.capacityBytes); }
  get usagePercent(): number {
    const byBytes = this.usedBytes / this.capacityBytes, bySlots = this.entries / this.slotCount;
    return 100 * Math.max(byBytes, bySlots);
  }
  get almostFull(): boolean { return this.usagePercent >= JOURNAL_HIGH_WATER_PERCENT; }

  /** Appends an entry; false (and nothing changed) when the journal has no room. */
  append(seq: number, tsUs: number, lvol: number, lba: number, data: Uint8Array): boolean {
    assertInvariant(seq > this.newestSeq, () => `journal ${this.journalLvol}: sequence number went backwards (${seq} after ${this.newestSeq})`);
    const blocks = data.length / BLOCK_SIZE_BYTES;
    const entries = this.entries;
    if (entries >= this.slotCount) return false;
    const usedBlocks = this.usedBytes / BLOCK_SIZE_BYTES;
    const tail = this.w(J.dataTailBlock);
    const wrap = tail + blocks > this.dataBlocks; // a record never straddles the end of the data region
    const skip = wrap ? this.dataBlocks - tail : 0;
    if (usedBlocks + skip + blocks > this.dataBlocks) return false;
    const pos = wrap ? 0 : tail;
    this.disk.write(this.journalLvol, this.metaBlocks + pos, data);
    const tailEntry = this.w(J.tailOffset);
    this.writeDescriptor(tailEntry, seq, skip + blocks, tsUs, lvol, lba, blocks, pos);
    this.set(J.tailOffset, (tailEntry + 1) % this.slotCount);
    this.set(J.dataTailBlock, pos + blocks);
    this.set(J.usedBytes, (usedBlocks + skip + blocks) * BLOCK_SIZE_BYTES);
    if (entries === 0) this.set(J.oldestSeq, seq);
    else assertInvariant(seq === this.newestSeq + 1, () => `journal ${this.journalLvol}: entry ${seq} does not follow ${this.newestSeq}`);
    this.set(J.newestSeq, seq);
    this.set(J.entries, entries + 1);
    return true;
  }

  entryAt(seq: number): JournalEntry {
    const entries = this.entries, oldest = this.oldestSeq;
    if (entries === 0 || seq < oldest || seq > this.newestSeq) {
      throw new RangeError(`journal ${this.journalLvol}: no entry ${seq} (holds ${entries ? `${oldest}..${this.newestSeq}` : 'none'})`);
    }
    return this.readDescriptor((this.w(J.headOffset) + (seq - oldest)) % this.slotCount);
  }

  /**
   * Bytes of the data region that entries fromSeq..toSeq take, counted from the first one's data to the end of the
   * last one's (a wrap's unused tail between them included: at most one entry's worth more than their data). Only
   * entries the journal holds count; 0 when none of them does.
   */
  spanBytes(fromSeq: number, toSeq: number): number {
    if (this.entries === 0) return 0;
    const oldest = this.oldestSeq, newest = this.newestSeq;
    const from = Math.max(fromSeq, oldest), to = Math.min(toSeq, newest);
    if (from > to) return 0;
    if (from === oldest && to === newest) return this.usedBytes;
    const head = this.w(J.headOffset);
    const first = this.descriptorView((head + (from - oldest)) % this.slotCount);
    const last = this.descriptorView((head + (to - oldest)) % this.slotCount);
    let blocks = last.getUint32(28) + last.getUint32(24) - first.getUint32(28);
    if (blocks <= 0) blocks += this.dataBlocks; // the span wraps around the end of the data region
    return blocks * BLOCK_SIZE_BYTES;
  }

  /** Frees every entry with a sequence number ≤ seq (oldest first). */
  freeThrough(seq: number): number {
    let freed = 0;
    while (this.entries > 0 && this.oldestSeq <= seq) {
      this.freeOldest();
      freed++;
    }
    return freed;
  }

  freeOldest(): void {
    const entries = this.entries;
    assertInvariant(entries > 0, () => `journal ${this.journalLvol}: free of an empty journal`);
    const head = this.w(J.headOffset);
    // One look at the descriptor, no entry built: this runs once per entry acknowledged or restored.
    const v = this.descriptorView(head);
    const seq = v.getUint32(0), reserved = v.getUint32(4);
    this.set(J.headOffset, (head + 1) % this.slotCount);
    this.set(J.usedBytes, this.usedBytes - reserved * BLOCK_SIZE_BYTES);
    this.set(J.entries, entries - 1);
    this.set(J.oldestSeq, seq + 1);
  }

  /** Empties the journal; sequence numbering continues after `newestSeq` (it never goes backwards). */
  reset(newestSeq = this.newestSeq): void {
    assertInvariant(newestSeq >= this.newestSeq, () => `journal ${this.journalLvol}: reset would move sequence backwards`);
    this.set(J.entries, 0);
    this.set(J.headOffset, 0);
    this.set(J.tailOffset, 0);
    this.set(J.usedBytes, 0);
    this.set(J.dataTailBlock, 0);
    this.set(J.newestSeq, newestSeq);
    this.set(J.oldestSeq, newestSeq + 1);
  }

  private descriptorBlock(index: number): number { return Math.floor(index / DESCRIPTORS_PER_BLOCK); }
  private descriptorOffset(index: number): number { return (index % DESCRIPTORS_PER_BLOCK) * DESCRIPTOR_BYTES; }

  private writeDescriptor(index: number, seq: number, reserved: number, tsUs: number, lvol: number, lba: number, blocks: number, pos: number) {
    const v = this.descriptorOut;
    v.setUint32(0, seq);
    v.setUint32(4, reserved);
    v.setFloat64(8, tsUs);
    v.setUint32(16, lvol);
    v.setUint32(20, lba);
    v.setUint32(24, blocks);
    v.setUint32(28, pos);
    this.disk.writeWithinBlock(this.journalLvol, this.descriptorBlock(index), this.descriptorOffset(index), this.descriptor);
  }

  private descriptorView(index: number): DataView {
    const b = this.disk.read(this.journalLvol, this.descriptorBlock(index), 1);
    return new DataView(b.buffer, b.byteOffset + this.descriptorOffset(index), DESCRIPTOR_BYTES);
  }

  private readDescriptor(index: number): JournalEntry {
    const v = this.descriptorView(index);
    const blocks = v.getUint32(24), pos = v.getUint32(28);
    return {
      seq: v.getUint32(0), tsUs: v.getFloat64(8), lvol: v.getUint32(16), lba: v.getUint32(20), blocks,
      data: this.disk.read(this.journalLvol, this.metaBlocks + pos, blocks),
    };
  }
}
