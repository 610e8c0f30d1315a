// Named limits of the emulated controller. Everything bounded is bounded here.

/** Host I/O is addressed in blocks of this size (logical block address = LBA). */
export const BLOCK_SIZE_BYTES = 4096;
/** One bit of a difference bitmap covers one track. */
export const TRACK_SIZE_BYTES = 64 * 1024;
export const BLOCKS_PER_TRACK = TRACK_SIZE_BYTES / BLOCK_SIZE_BYTES;
/** Largest single host write or read (one journal entry holds at most this much data). */
export const MAX_IO_BYTES = 1024 * 1024;

/** Pair slots in definition information (per storage system). */
export const MAX_PAIRS = 16;
/** Journal slots in control memory (per storage system). */
export const MAX_JOURNALS = 4;
/** Data volumes one pair (a consistency group) may cover; each is a [local, remote] LVOL pair in definition information. */
export const MAX_GROUP_MEMBERS = 8;
/** LVOLs one disk array can be carved into. */
export const MAX_LVOLS = 32;

/** Formation copying: tracks in flight at once per pair. */
export const FORMATION_COPY_WINDOW_TRACKS = 16;
/**
 * Synchronous copying (destination): tags of applied copies remembered per pair, to recognise duplicates. A
 * duplicate trails its original by one serialisation time, in which far fewer copies than this can arrive.
 */
export const SYNC_DUPLICATE_WINDOW_TAGS = 4096;
/** Journal shipping: entries sent but not yet acknowledged, per pair. */
export const JOURNAL_SHIP_WINDOW_ENTRIES = 512;
/**
 * Journal shipping: bytes of write data sent but not yet acknowledged, per pair (the window is whichever limit is
 * reached first). 512 entries of 64 KiB were 32 MiB in flight, which the destination must hold while it restores;
 * 16 MiB still fills a 1000 MB/s link over 1000 km (one batch and a 10 ms round trip per window: 1,450 MB/s).
 */
export const JOURNAL_SHIP_WINDOW_BYTES = 16 * 1024 * 1024;
/**
 * Journal shipping: acknowledgements in a row that do not move, while entries are in flight past them, before the
 * first batch after the gap is sent again (fast resend). Three, as TCP's fast retransmit: one or two come from
 * frames reordered across paths or duplicated on the wire.
 */
export const FAST_RESEND_DUPLICATE_ACKS = 3;
/**
 * Loss recovery by time (S110 journal batches, S100 formation copy tracks, synchronous copies): the shortest wait
 * for an answer after which what it answers is sent again, however short the round trip (as TCP's minimum
 * retransmission timeout): a destination whose CPU thread was held a few ms (a busy 2-core machine) must not look
 * like a loss. Two ticks.
 */
export const LOSS_TIMER_MIN_US = 20_000;
/**
 * Synchronous copies: the wait before a copy goes again while the pair has no round-trip sample yet (its first
 * copies). Later waits follow the measured round trip (smoothed, plus four times its variation, as TCP's RFC 6298).
 */
export const SYNC_RESEND_FIRST_WAIT_US = 200_000;
/** Journal shipping: entries per batch frame. */
export const JOURNAL_BATCH_MAX_ENTRIES = 64;
/** Journal shipping: bytes of write data per batch frame. */
export const JOURNAL_BATCH_MAX_BYTES = 1024 * 1024;
/** Bundles (firmware/frame-bundler.ts): the largest body, a batch of writes well inside one link ring record. */
export const BUNDLE_MAX_BODY_BYTES = 256 * 1024;
/** Bundles: the most frames one carries. */
export const BUNDLE_MAX_FRAMES = 64;
/** Journal usage (percent) at which the journal reports "almost full" (Hitachi's high-water mark). */
export const JOURNAL_HIGH_WATER_PERCENT = 80;
/**
 * Inflow control: a journal is "over the mark" (pacing, and the watch time running) from when it passes the
 * high-water mark until it falls below this; held writes are released whenever it is under the high-water mark.
 */
export const JOURNAL_LOW_WATER_PERCENT = 70;
/**
 * Inflow control (write pacing, OPERATORS.md §1): host writes whose completion one pair holds back at once while its
 * journal is over the high-water mark. A host has at most its queue depth outstanding, so this is never reached in
 * practice; past it a write completes at once and the journal fills as it would without pacing.
 */
export const INFLOW_HELD_MAX_WRITES = 4096;
/** Destination: entries received out of order and held until their predecessors arrive. */
export const RESTORE_PENDING_MAX_ENTRIES = JOURNAL_SHIP_WINDOW_ENTRIES * 2;

/** Snapshot mode (SPEC §5): default interval between difference snapshots, and the range a definition may set. */
export const DEFAULT_SNAPSHOT_INTERVAL_US = 20_000;
export const MIN_SNAPSHOT_INTERVAL_US = 1_000;
export const MAX_SNAPSHOT_INTERVAL_US = 600_000_000;

/** Default timing of the firmware, all overridable per storage system. */
export interface FirmwareTiming {
  /** Batching window: journal entries appended within it ship in one frame. */
  journalShipDelayUs: number;
  /** Go-back-N resend (journal entries, formation copies) when no acknowledgement has arrived for this long. */
  journalResendTimeoutUs: number;
  /** Period of the keepalive a controller sends to the partners of its active pairs. */
  keepaliveIntervalUs: number;
  /** A partner silent for this long is lost: its active pairs go to failure suspend. */
  partnerTimeoutUs: number;
  /** A synchronous copy not acknowledged within this time fails the pair. */
  syncCopyTimeoutUs: number;
  /** A command that needs the partner's answer fails after this long. */
  commandTimeoutUs: number;
  /**
   * Inflow control: a journal that stays over the high-water mark this long (host writes paced all the while)
   * suspends its pair (journal full), as Hitachi's data overflow watch does (default 60 s).
   */
  journalWatchTimeUs: number;
}

export const DEFAULT_FIRMWARE_TIMING: FirmwareTiming = {
  journalShipDelayUs: 200,
  journalResendTimeoutUs: 1_000_000,
  keepaliveIntervalUs: 50_000,
  partnerTimeoutUs: 300_000,
  syncCopyTimeoutUs: 1_000_000,
  commandTimeoutUs: 2_000_000,
  journalWatchTimeUs: 60_000_000,
};

/**
 * Test-only build flags: deliberately broken behaviour, so a test can prove the checkers and sweeps find it.
 * Never set outside such a test.
 *  sync-ack-before-copy: a host write on a duplex synchronous pair is acknowledged before the destination stored it;
 *  restore-out-of-order: journal entries that arrive early are written to the destination at once.
 */
export type PlantedBug = 'sync-ack-before-copy' | 'restore-out-of-order';
export const PLANTED_BUGS: PlantedBug[] = ['sync-ack-before-copy', 'restore-out-of-order'];

export interface FirmwareOptions {
  plantedBug?: PlantedBug;
}
