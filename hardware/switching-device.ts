// Switching device 300I / 300J (embodiment 3, claims 6 and 7): it sits on the common line in front of one
// intermediate storage system. Each frame that reaches it along the line is switched by the destination address
// in the frame's routing header: addressed to its intermediate, it is handed to it; anything else is passed on
// along the line untouched (the device reads the header, never writes the frame). Frames its intermediate sends
// enter the line through it.
//
// Pure code on a routing header and counters, no timers, no threads (like link-model.ts): both runtimes run it
// per frame in the sending storage system's hardware (hardware/common-line.ts). Its counters live in a
// Float64Array (shared memory on the threads runtime) with one row per sending system, so several sender threads
// count without atomics and without losing increments; readers sum the rows.

/**
 * The routing header the line carries before each frame (little-endian):
 *   0 u16 destination address (storage id)   2 u16 source address   4 u32 frame bytes
 * On the threads runtime it sits in the pad of the link ring's record header; on sim it travels with the frame.
 */
export const ROUTING_HEADER_BYTES = 8;
const RH_DEST = 0, RH_SRC = 2, RH_BYTES = 4;

/** Largest storage id a routing header can address. */
export const MAX_LINE_ADDRESS = 0xffff;

export function writeRoutingHeader(dv: DataView, off: number, destAddress: number, srcAddress: number, frameBytes: number): void {
  dv.setUint16(off + RH_DEST, destAddress, true);
  dv.setUint16(off + RH_SRC, srcAddress, true);
  dv.setUint32(off + RH_BYTES, frameBytes, true);
}

export const routingDestination = (dv: DataView, off: number): number => dv.getUint16(off + RH_DEST, true);
export const routingSource = (dv: DataView, off: number): number => dv.getUint16(off + RH_SRC, true);
export const routingFrameBytes = (dv: DataView, off: number): number => dv.getUint32(off + RH_BYTES, true);

/** Word offsets of one row of a switching device's counters. */
export const SWITCH_STAT = {
  /** Frames (and their bytes) addressed to the intermediate, handed to it. */
  framesDelivered: 0, bytesDelivered: 1,
  /** Frames addressed elsewhere, passed on along the line untouched. */
  framesPassed: 2, bytesPassed: 3,
  /** Frames the intermediate sent, put onto the line. */
  framesFromIntermediate: 4, bytesFromIntermediate: 5,
} as const;
export const SWITCH_STAT_WORDS = 6;
export type SwitchingDeviceStats = { -readonly [K in keyof typeof SWITCH_STAT]: number };

export class SwitchingDevice {
  /**
   * @param counters rows of SWITCH_STAT_WORDS, one per sending system (row = the sender's world index)
   */
  constructor(readonly name: string, readonly intermediateAddress: number, private readonly counters: Float64Array, readonly rows: number) {
    if (counters.length !== rows * SWITCH_STAT_WORDS) throw new Error(`switching device ${name}: counters must hold ${rows} rows of ${SWITCH_STAT_WORDS} words, got ${counters.length} words`);
  }

  /**
   * A frame reaching the device along the line (routing header at `off`), counted in `row`: true when it is
   * addressed to the intermediate (it leaves the line here), false when it is passed on.
   */
  switchFrame(row: number, dv: DataView, off: number): boolean {
    const c = this.counters, base = row * SWITCH_STAT_WORDS;
    const bytes = routingFrameBytes(dv, off);
    if (routingDestination(dv, off) === this.intermediateAddress) {
      c[base + SWITCH_STAT.framesDelivered]!++;
      c[base + SWITCH_STAT.bytesDelivered]! += bytes;
      return true;
    }
    c[base + SWITCH_STAT.framesPassed]!++;
    c[base + SWITCH_STAT.bytesPassed]! += bytes;
    return false;
  }

  /** A frame of the intermediate enters the line through the device. */
  fromIntermediate(row: number, dv: DataView, off: number): void {
    const c = this.counters, base = row * SWITCH_STAT_WORDS;
    c[base + SWITCH_STAT.framesFromIntermediate]!++;
    c[base + SWITCH_STAT.bytesFromIntermediate]! += routingFrameBytes(dv, off);
  }

  /** The counters summed over every sender's row. */
  stats(): SwitchingDeviceStats {
    const out = {} as SwitchingDeviceStats;
    for (const [k, i] of Object.entries(SWITCH_STAT)) {
      let n = 0;
      for (let r = 0; r < this.rows; r++) n += this.counters[r * SWITCH_STAT_WORDS + i]!;
      out[k as keyof typeof SWITCH_STAT] = n;
    }
    return out;
  }
}
