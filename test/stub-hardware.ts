// A hand-cranked Hardware for driving one controller directly: a manual clock, captured frames, host
// completions and command replies. Uses the real emulated memory (disk array, cache, control memory).

import { DEFAULT_FIRMWARE_TIMING } from '../firmware/constants.ts';
import type { CommandReply } from '../firmware/commands.ts';
import type { FirmwareEvent, Hardware, HostIo, IoStatus, TimerKind } from '../firmware/hardware-interface.ts';
import { StorageSystemMemory } from '../hardware/storage-system.ts';

export class StubHardware implements Hardware {
  readonly memory: StorageSystemMemory;
  readonly storageId: number;
  readonly disk; readonly cache; readonly controlMemory: Int32Array;
  readonly timing = { ...DEFAULT_FIRMWARE_TIMING };
  now = 0;
  readonly sent: Array<{ to: number; frame: Uint8Array }> = [];
  readonly completions: Array<{ io: HostIo; status: IoStatus }> = [];
  readonly replies = new Map<number, CommandReply>();
  readonly events: FirmwareEvent[] = [];
  readonly timers: Array<{ at: number; kind: TimerKind; arg: number }> = [];

  constructor(storageId: number, dataBytes = 1024 * 1024, journalBytes = 1024 * 1024) {
    this.memory = StorageSystemMemory.build(storageId, `S${storageId}`, [
      { name: 'data', kind: 'data', sizeBytes: dataBytes }, { name: 'journal', kind: 'journal', sizeBytes: journalBytes }], 16);
    this.storageId = storageId;
    this.disk = this.memory.disk;
    this.cache = this.memory.cache;
    this.controlMemory = this.memory.controlMemory;
  }
  nowUs() { return this.now; }
  setTimer(delayUs: number, kind: TimerKind, arg: number) { this.timers.push({ at: this.now + delayUs, kind, arg }); }
  send(to: number, frame: Uint8Array) { this.sent.push({ to, frame: frame.slice() }); return true; }
  completeHostIo(io: HostIo, status: IoStatus) { this.completions.push({ io, status }); }
  replyCommand(id: number, r: CommandReply) { this.replies.set(id, r); }
  emit(e: FirmwareEvent) { this.events.push(e); }
}
