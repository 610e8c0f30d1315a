// The server side of the NBD protocol, for real block clients (qemu, fio's nbd engine, nbdcopy, nbdsh):
// fixed newstyle handshake, option haggling, and a transmission phase that runs a client's requests
// concurrently (bounded) and answers with simple replies. What an export does with a request is the
// backend's business (serve.ts sends it through a host port into the firmware); this file only speaks NBD.
// A client that breaks the protocol is disconnected; nothing it sent is applied.

import net from 'node:net';
import {
  CMD, CMD_FLAG, commandName, FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, IHAVEOPT, INFO, MAX_PAYLOAD_BYTES,
  NBD_ERR, NBDMAGIC, OPT, OPTION_DISCONNECT_BYTES, OPTION_MAX_BYTES, optionName, optionReply, parseRequest, REP, REQUEST_HEADER_BYTES,
  simpleReply, TF, type NbdErrorName,
} from './protocol.ts';

export interface NbdIoResult {
  /** null: done; otherwise the NBD error to answer with, and why (logged). */
  error: NbdErrorName | null;
  why?: string;
  data?: Uint8Array;
}

export interface NbdExport {
  /** e.g. "P/vol0". */
  name: string;
  description: string;
  sizeBytes: number;
  /** Requests must be multiples of this and aligned to it (the array's block size). */
  blockSizeBytes: number;
  /** Largest request the backend takes in one piece; larger ones are split by the server. */
  maxRequestBytes: number;
  read(offsetBytes: number, lengthBytes: number): Promise<NbdIoResult>;
  write(offsetBytes: number, data: Uint8Array): Promise<NbdIoResult>;
}

export interface NbdServerOptions {
  /** Requests of one connection in flight at once (reading stops while this many are outstanding). */
  maxInFlight?: number;
  log?: (line: string) => void;
}

/** Reads exact byte counts from a socket. */
class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => { this.chunks.push(d); this.buffered += d.length; this.pump(); });
    socket.on('end', () => this.fail(new Error('client closed the connection')));
    socket.on('close', () => this.fail(new Error('connection closed')));
    socket.on('error', (e) => this.fail(e));
  }

  private fail(e: Error): void {
    if (!this.ended) this.ended = e;
    const w = this.waiter;
    if (w) { this.waiter = null; w.reject(e); }
  }

  private pump(): void {
    const w = this.waiter;
    if (!w || this.buffered < w.n) {
      // Hold at most one big payload in memory: stop reading while a large backlog waits.
      if (this.buffered > 2 * MAX_PAYLOAD_BYTES) this.socket.pause();
      return;
    }
    this.waiter = null;
    // Take exactly n bytes from the front, touching only the chunks needed (a 28-byte header must not copy
    // the 100 KiB of writes queued behind it).
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= w.n) {
      out = first.subarray(0, w.n); // a view: socket chunks are never reused, and the host port copies what it keeps
      if (first.length === w.n) this.chunks.shift(); else this.chunks[0] = first.subarray(w.n);
    } else {
      out = Buffer.allocUnsafe(w.n);
      let at = 0;
      while (at < w.n) {
        const c = this.chunks[0]!;
        const take = Math.min(c.length, w.n - at);
        c.copy(out, at, 0, take);
        at += take;
        if (take === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(take);
      }
    }
    this.buffered -= w.n;
    this.socket.resume();
    w.resolve(out);
  }

  read(n: number): Promise<Buffer> {
    if (this.waiter) throw new Error('SocketReader: one read at a time');
    if (n === 0) return Promise.resolve(Buffer.alloc(0));
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      if (this.buffered >= n) this.pump();
      else if (this.ended) this.fail(this.ended);
      else this.socket.resume();
    });
  }
}

class ProtocolError extends Error {}

// The cache is write-through: every acknowledged write is on the disk array, so FLUSH and FUA cost nothing and
// connections to one export can share it (multi-conn).
const TRANSMISSION_FLAGS = TF.HAS_FLAGS | TF.SEND_FLUSH | TF.SEND_FUA | TF.SEND_WRITE_ZEROES | TF.CAN_MULTI_CONN;

export class NbdServer {
  private readonly server: net.Server;
  private readonly exports = new Map<string, NbdExport>();
  private readonly sockets = new Set<net.Socket>();
  private readonly connections = new Set<Promise<void>>();
  private readonly inFlightIo = new Set<Promise<unknown>>();
  private closing = false;
  private nextConnection = 1;
  /** Counters a test or pairdisplay can read. */
  readonly stats = { connections: 0, requests: 0, errors: 0, protocolErrors: 0 };

  constructor(exports: NbdExport[], private readonly o: NbdServerOptions = {}) {
    for (const e of exports) {
      if (e.sizeBytes % e.blockSizeBytes !== 0) throw new Error(`export ${e.name}: size ${e.sizeBytes} is not a multiple of ${e.blockSizeBytes}`);
      this.exports.set(e.name, e);
    }
    this.server = net.createServer((s) => this.accept(s));
  }

  private log(line: string): void { this.o.log?.(line); }

  /** Listens on host:port; rejects with a clear message when the port is taken. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        reject(e.code === 'EADDRINUSE' ? new Error(`NBD port ${host}:${port} is already in use (another rclab serve or nbd server?); choose another with --nbd-port`) : e);
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting, lets requests in flight finish (acknowledged writes are answered), then closes every connection. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    await Promise.allSettled([...this.inFlightIo]);
    for (const s of this.sockets) s.end();
    await Promise.race([Promise.allSettled([...this.connections]), new Promise((r) => setTimeout(r, 2000))]);
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private accept(socket: net.Socket): void {
    const id = this.nextConnection++;
    this.stats.connections++;
    socket.setNoDelay(true);
    this.sockets.add(socket);
    const done = this.session(socket, id).catch((e: Error) => {
      if (e instanceof ProtocolError) {
        this.stats.protocolErrors++;
        this.log(`nbd #${id}: protocol error, disconnecting: ${e.message}`);
      }
    }).finally(() => {
      socket.destroy();
      this.sockets.delete(socket);
      this.connections.delete(done);
    });
    this.connections.add(done);
  }

  private async session(socket: net.Socket, id: number): Promise<void> {
    const r = new SocketReader(socket);
    const hello = Buffer.alloc(18);
    hello.writeBigUInt64BE(NBDMAGIC, 0);
    hello.writeBigUInt64BE(IHAVEOPT, 8);
    hello.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
    socket.write(hello);
    const clientFlags = (await r.read(4)).readUInt32BE(0);
    if (!(clientFlags & FLAG_C_FIXED_NEWSTYLE)) throw new ProtocolError(`client flags 0x${clientFlags.toString(16)} lack NBD_FLAG_C_FIXED_NEWSTYLE (only fixed newstyle is served)`);
    if (clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) throw new ProtocolError(`unknown client flags 0x${clientFlags.toString(16)}`);
    const noZeroes = (clientFlags & FLAG_C_NO_ZEROES) !== 0;
    const exp = await this.haggle(socket, r, noZeroes, id);
    if (!exp) return;
    this.log(`nbd #${id}: ${socket.remoteAddress}:${socket.remotePort} attached to ${exp.name}`);
    await this.transmission(socket, r, exp, id);
  }

  /** Option haggling; returns the export to serve, or null when the client aborted. */
  private async haggle(socket: net.Socket, r: SocketReader, noZeroes: boolean, id: number): Promise<NbdExport | null> {
    for (;;) {
      const head = await r.read(16);
      if (head.readBigUInt64BE(0) !== IHAVEOPT) throw new ProtocolError('option without the IHAVEOPT magic');
      const opt = head.readUInt32BE(8), len = head.readUInt32BE(12);
      if (len > OPTION_DISCONNECT_BYTES) throw new ProtocolError(`${optionName(opt)} carries ${len} bytes of data`);
      const data = await r.read(len);
      if (len > OPTION_MAX_BYTES) { socket.write(optionReply(opt, REP.ERR_TOO_BIG)); continue; }
      switch (opt) {
        case OPT.EXPORT_NAME: {
          const name = data.toString('utf8');
          const e = this.exports.get(name);
          if (!e || this.closing) throw new ProtocolError(`NBD_OPT_EXPORT_NAME of unknown export '${name}'`); // the protocol's only answer: hang up
          const b = Buffer.alloc(10 + (noZeroes ? 0 : 124));
          b.writeBigUInt64BE(BigInt(e.sizeBytes), 0);
          b.writeUInt16BE(TRANSMISSION_FLAGS, 8);
          socket.write(b);
          return e;
        }
        case OPT.ABORT:
          socket.write(optionReply(opt, REP.ACK));
          this.log(`nbd #${id}: client aborted the handshake`);
          return null;
        case OPT.LIST: {
          if (len !== 0) { socket.write(optionReply(opt, REP.ERR_INVALID)); continue; }
          for (const e of this.exports.values()) {
            const name = Buffer.from(e.name), desc = Buffer.from(e.description);
            const d = Buffer.alloc(4 + name.length + desc.length);
            d.writeUInt32BE(name.length, 0);
            name.copy(d, 4);
            desc.copy(d, 4 + name.length);
            socket.write(optionReply(opt, REP.SERVER, d));
          }
          socket.write(optionReply(opt, REP.ACK));
          continue;
        }
        case OPT.INFO: case OPT.GO: {
          const e = this.infoOrGo(socket, opt, data);
          if (e && opt === OPT.GO) return e;
          continue;
        }
        default:
          // STARTTLS, structured replies, meta contexts, extended headers: not offered; the client carries on without.
          socket.write(optionReply(opt, REP.ERR_UNSUP, Buffer.from(`${optionName(opt)} is not supported by rclab serve`)));
      }
    }
  }

  private infoOrGo(socket: net.Socket, opt: number, data: Buffer): NbdExport | null {
    const invalid = (why: string) => { socket.write(optionReply(opt, REP.ERR_INVALID, Buffer.from(why))); return null; };
    if (data.length < 6) return invalid('NBD_OPT_INFO/GO data too short');
    const nameLen = data.readUInt32BE(0);
    if (4 + nameLen + 2 > data.length) return invalid('export name length runs past the option data');
    const name = data.subarray(4, 4 + nameLen).toString('utf8');
    const nInfo = data.readUInt16BE(4 + nameLen);
    if (data.length !== 4 + nameLen + 2 + 2 * nInfo) return invalid('information request count does not match the option length');
    const e = this.exports.get(name);
    if (!e) { socket.write(optionReply(opt, REP.ERR_UNKNOWN, Buffer.from(`no export '${name}' (try NBD_OPT_LIST)`))); return null; }
    if (this.closing) { socket.write(optionReply(opt, REP.ERR_SHUTDOWN)); return null; }
    const requested = new Set<number>();
    for (let i = 0; i < nInfo; i++) requested.add(data.readUInt16BE(4 + nameLen + 2 + 2 * i));
    const info = (type: number, body: Buffer) => { const b = Buffer.alloc(2 + body.length); b.writeUInt16BE(type, 0); body.copy(b, 2); socket.write(optionReply(opt, REP.INFO, b)); };
    const ex = Buffer.alloc(10);
    ex.writeBigUInt64BE(BigInt(e.sizeBytes), 0);
    ex.writeUInt16BE(TRANSMISSION_FLAGS, 8);
    info(INFO.EXPORT, ex);
    if (requested.has(INFO.NAME)) info(INFO.NAME, Buffer.from(e.name));
    if (requested.has(INFO.DESCRIPTION)) info(INFO.DESCRIPTION, Buffer.from(e.description));
    // Always sent: the array addresses whole blocks, so clients must know the minimum.
    const bs = Buffer.alloc(12);
    bs.writeUInt32BE(e.blockSizeBytes, 0);
    bs.writeUInt32BE(Math.max(e.blockSizeBytes, 64 * 1024), 4);
    bs.writeUInt32BE(MAX_PAYLOAD_BYTES, 8);
    info(INFO.BLOCK_SIZE, bs);
    socket.write(optionReply(opt, REP.ACK));
    return e;
  }

  private async transmission(socket: net.Socket, r: SocketReader, e: NbdExport, id: number): Promise<void> {
    const max = this.o.maxInFlight ?? 64;
    const outstanding = new Set<Promise<void>>();
    // Replies finished in one turn of the event loop leave in one write (one system call, not one per reply).
    let corked = false;
    const send = (b: Buffer) => {
      if (socket.destroyed) return;
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(() => { corked = false; socket.uncork(); });
      }
      socket.write(b);
    };
    try {
      for (;;) {
        while (outstanding.size >= max) await Promise.race(outstanding);
        const req = parseRequest(await r.read(REQUEST_HEADER_BYTES));
        if (!req) throw new ProtocolError('request without the request magic');
        this.stats.requests++;
        if (req.type === CMD.DISC) { this.log(`nbd #${id}: ${e.name}: client disconnected`); return; }
        let payload: Buffer | undefined;
        if (req.type === CMD.WRITE) {
          if (req.length > MAX_PAYLOAD_BYTES) throw new ProtocolError(`WRITE of ${req.length} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte maximum`);
          payload = await r.read(req.length);
        }
        const p = this.handle(e, req.type, req.flags, req.offset, req.length, payload)
          .then((res) => {
            if (res.error) {
              this.stats.errors++;
              this.log(`nbd #${id}: ${e.name}: ${commandName(req.type)} offset ${req.offset} length ${req.length} → ${res.error}${res.why ? `: ${res.why}` : ''}`);
            }
            send(simpleReply(res.error ? NBD_ERR[res.error] : 0, req.handle, res.error ? undefined : res.data));
          });
        const tracked = p.finally(() => { outstanding.delete(tracked); this.inFlightIo.delete(tracked); });
        outstanding.add(tracked);
        this.inFlightIo.add(tracked);
      }
    } finally {
      await Promise.allSettled([...outstanding]);
    }
  }

  /** Checks a request against the export and runs it (split into backend-sized pieces). */
  private async handle(e: NbdExport, type: number, flags: number, offset64: bigint, length: number, payload: Buffer | undefined): Promise<NbdIoResult> {
    const known = CMD_FLAG.FUA | CMD_FLAG.NO_HOLE | CMD_FLAG.DF | CMD_FLAG.FAST_ZERO;
    if (flags & ~known) return { error: 'EINVAL', why: `unknown command flags 0x${flags.toString(16)}` };
    if (type === CMD.FLUSH) return { error: null }; // write-through: every acknowledged write is already on disk
    if (type !== CMD.READ && type !== CMD.WRITE && type !== CMD.WRITE_ZEROES) return { error: 'EINVAL', why: `${commandName(type)} is not supported` };
    if (flags & CMD_FLAG.FAST_ZERO) return { error: 'ENOTSUP', why: 'fast zero: zeroes are written like data' };
    if (offset64 + BigInt(length) > BigInt(e.sizeBytes)) {
      return { error: type === CMD.READ ? 'EINVAL' : 'ENOSPC', why: `offset ${offset64} + length ${length} is beyond the export's ${e.sizeBytes} bytes` };
    }
    const offset = Number(offset64);
    if (offset % e.blockSizeBytes !== 0 || length % e.blockSizeBytes !== 0) {
      return { error: 'EINVAL', why: `offset ${offset} / length ${length} not aligned to the ${e.blockSizeBytes}-byte block` };
    }
    if (length === 0) return { error: null, data: new Uint8Array(0) };
    if (type === CMD.READ && length > MAX_PAYLOAD_BYTES) return { error: 'EINVAL', why: `READ of ${length} bytes exceeds the ${MAX_PAYLOAD_BYTES}-byte maximum` };
    const out = type === CMD.READ ? new Uint8Array(length) : undefined;
    // Pieces go one after another: the array sees a large write as its ordered parts, as from a real HBA.
    for (let at = 0; at < length; at += e.maxRequestBytes) {
      const n = Math.min(e.maxRequestBytes, length - at);
      let res: NbdIoResult;
      if (type === CMD.READ) res = await e.read(offset + at, n);
      else res = await e.write(offset + at, type === CMD.WRITE ? payload!.subarray(at, at + n) : new Uint8Array(n));
      if (res.error) return res;
      if (out && res.data) out.set(res.data, at);
    }
    return { error: null, data: out };
  }
}
