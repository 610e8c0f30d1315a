// Builds a world on either runtime; the harness above this line cannot tell them apart.

import { SimWorld } from './runtime-sim.ts';
import type { Topology } from './topology.ts';
import type { FirmwareOptions } from '../firmware/constants.ts';
import type { RuntimeName, World } from './world.ts';

export const RUNTIMES: RuntimeName[] = ['threads', 'sim'];

export interface WorldOptions {
  /** sim: past this virtual time every wait fails, so a run that would go on forever unwinds. */
  maxVirtualUs?: number;
  /** Test-only planted bugs (sim runtime only). */
  firmwareOptions?: FirmwareOptions;
  /** threads: commit the disks' memory before the controllers start, so a benchmark does not measure first touches. */
  prefaultMemory?: boolean;
}

export async function createWorld(runtime: RuntimeName, topology: Topology, seed: number, o: WorldOptions = {}): Promise<World> {
  if (runtime === 'sim') return new SimWorld(topology, seed, o.maxVirtualUs, o.firmwareOptions);
  if (runtime === 'threads') {
    if (o.firmwareOptions?.plantedBug) throw new Error('planted bugs exist on the sim runtime only');
    const { ThreadsWorld } = await import('./runtime-threads.ts');
    return ThreadsWorld.create(topology, seed, { prefaultMemory: o.prefaultMemory });
  }
  throw new Error(`unknown runtime '${runtime as string}' (use threads or sim)`);
}
