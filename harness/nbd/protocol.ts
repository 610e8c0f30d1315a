// The NBD protocol's numbers (doc/proto.md of the NBD project): the fixed newstyle handshake, option haggling
// with NBD_OPT_GO/INFO/LIST/EXPORT_NAME/ABORT, and simple replies in the transmission phase.

export const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;

/** Handshake flags (server) and client flags. */
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

/** Transmission flags. */
export const TF = {
  HAS_FLAGS: 1 << 0, READ_ONLY: 1 << 1, SEND_FLUSH: 1 << 2, SEND_FUA: 1 << 3, ROTATIONAL: 1 << 4, SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6, SEND_DF: 1 << 7, CAN_MULTI_CONN: 1 << 8,
} as const;

export const OPT = {
  EXPORT_NAME: 1, ABORT: 2, LIST: 3, PEEK_EXPORT: 4, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9, SET_META_CONTEXT: 10, EXTENDED_HEADERS: 11,
} as const;

const ERR = 2 ** 31;
export const REP = {
  ACK: 1, SERVER: 2, INFO: 3,
  ERR_UNSUP: ERR + 1, ERR_POLICY: ERR + 2, ERR_INVALID: ERR + 3, ERR_PLATFORM: ERR + 4, ERR_TLS_REQD: ERR + 5,
  ERR_UNKNOWN: ERR + 6, ERR_SHUTDOWN: ERR + 7, ERR_BLOCK_SIZE_REQD: ERR + 8, ERR_TOO_BIG: ERR + 9,
} as const;

export const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 } as const;
export const CMD_FLAG = { FUA: 1 << 0, NO_HOLE: 1 << 1, DF: 1 << 2, REQ_ONE: 1 << 3, FAST_ZERO: 1 << 4 } as const;

/** Error values on the wire (Linux errno numbers, as the protocol fixes them). */
export const NBD_ERR = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;
export type NbdErrorName = keyof typeof NBD_ERR;

/** Option data longer than this is refused (NBD_REP_ERR_TOO_BIG) and, past OPTION_DISCONNECT_BYTES, ends the connection. */
export const OPTION_MAX_BYTES = 4096;
export const OPTION_DISCONNECT_BYTES = 64 * 1024;
/** Largest request payload the server accepts (the protocol's customary 32 MiB); larger ends the connection. */
export const MAX_PAYLOAD_BYTES = 32 * 1024 * 1024;
export const REQUEST_HEADER_BYTES = 28;
export const SIMPLE_REPLY_HEADER_BYTES = 16;

export function optionName(opt: number): string {
  return Object.entries(OPT).find(([, v]) => v === opt)?.[0] ?? `option ${opt}`;
}

export function commandName(type: number): string {
  return Object.entries(CMD).find(([, v]) => v === type)?.[0] ?? `command ${type}`;
}

/** An option reply: magic, option, reply type, length, data. */
export function optionReply(option: number, type: number, data: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  b.set(data, 20);
  return b;
}

export function simpleReply(error: number, handle: bigint, data?: Uint8Array): Buffer {
  const b = Buffer.alloc(SIMPLE_REPLY_HEADER_BYTES + (error === 0 && data ? data.length : 0));
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  b.writeBigUInt64BE(handle, 8);
  if (error === 0 && data) b.set(data, SIMPLE_REPLY_HEADER_BYTES);
  return b;
}

export interface Request {
  flags: number;
  type: number;
  handle: bigint;
  offset: bigint;
  length: number;
}

export function parseRequest(h: Buffer): Request | null {
  if (h.readUInt32BE(0) !== REQUEST_MAGIC) return null;
  return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), handle: h.readBigUInt64BE(8), offset: h.readBigUInt64BE(16), length: h.readUInt32BE(24) };
}
