// Builds a world on either runtime; the harness above this line cannot tell them apart.

import { SimWorld } from './runtime-sim.ts';
import type { Topology } from './topology.ts';
import type { RuntimeName, World } from './world.ts';

export const RUNTIMES: RuntimeName[] = ['threads', 'sim'];

export async function createWorld(runtime: RuntimeName, topology: Topology, seed: number): Promise<World> {
  if (runtime === 'sim') return new SimWorld(topology, seed);
  if (runtime === 'threads') {
    const { ThreadsWorld } = await import('./runtime-threads.ts');
    return ThreadsWorld.create(topology, seed);
  }
  throw new Error(`unknown runtime '${runtime as string}' (use threads or sim)`);
}
