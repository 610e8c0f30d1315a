// A storage system's worker thread: the management plane (maintenance port) of one controller, exposed to
// the main thread with comlink, and the CPU loop (thread-cpu.ts) that runs the firmware. Nothing on the
// data path goes through here: host I/O and frames travel through shared-memory rings.
//
// Keep-alive: a pending Atomics.waitAsync does not keep a worker's event loop alive on Node 20; the
// parentPort listener that comlink installs does, until stop() lets the main thread terminate us.

import { parentPort, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import * as nodeAdapter from 'comlink/dist/umd/node-adapter.js';
import type { Command, CommandReply } from '../firmware/commands.ts';
import { ThreadCpu, type CpuReport, type LinkModelChange, type ThreadCpuConfig, type ThreadCpuStats } from './thread-cpu.ts';

// comlink has no "exports" map: its Node adapter is the UMD build, a CommonJS module whose module.exports
// is the function, which Node's ESM interop exposes as `default` (the typings see one `default` more).
const adapter: unknown = nodeAdapter.default;
const nodeEndpoint = (typeof adapter === 'function' ? adapter : (adapter as { default: unknown }).default) as (port: MessagePort) => Comlink.Endpoint;

let cpu: ThreadCpu | null = null;
let reportPort: MessagePort | null = null;

function theCpu(): ThreadCpu {
  if (!cpu) throw new Error('storage-system worker: init() first');
  return cpu;
}

const api = {
  /** Attaches the system's memory and rings and starts the CPU loop (the controller stays off until powerOn). */
  init(config: ThreadCpuConfig, reports: MessagePort): void {
    if (cpu) throw new Error(`storage-system worker ${config.name}: init() twice`);
    reportPort = reports;
    cpu = new ThreadCpu(config, (batch: CpuReport[]) => reportPort?.postMessage(batch));
    cpu.start();
  },
  command(requestId: number, cmd: Command): Promise<CommandReply> {
    return theCpu().command(requestId, cmd);
  },
  powerOn(): void {
    theCpu().powerOn();
  },
  powerOff(): void {
    theCpu().powerOff();
  },
  linkState(peerStorageId: number, up: boolean): void {
    theCpu().linkState(peerStorageId, up);
  },
  /** Path cuts and link conditions change the latency model of the direction this worker sends on. */
  changeLinkModel(peerStorageId: number, change: LinkModelChange): void {
    theCpu().changeLinkModel(peerStorageId, change);
  },
  stats(): ThreadCpuStats {
    return theCpu().snapshotStats();
  },
  /** Stops the loop (the controller is dropped without a power-loss report); the main thread then terminates us. */
  async stop(): Promise<void> {
    if (cpu) {
      cpu.powerOff();
      await cpu.stop();
    }
    reportPort?.close();
    reportPort = null;
  },
};

export type ThreadWorkerApi = typeof api;

if (!parentPort) throw new Error('thread-worker.ts must run in a worker thread');
Comlink.expose(api, nodeEndpoint(parentPort));

