// The package's main entry, used the way a script or another test suite would.

import { describe, expect, it } from 'vitest';
import * as rcl from '../harness/index.ts';

describe('programmatic API', () => {
  it('builds a world, runs A2, writes, reads a volume and queries pairs, without the CLI', async () => {
    const world = await rcl.createWorld('sim', rcl.embodiment1Topology({ dataVolumeBytes: 4 * 1024 * 1024 }), 3);
    const log = new rcl.OperationsLog();
    const hostP = new rcl.Host(world, '100P');
    await rcl.embodiment1.initialCopying(new rcl.CopyControlProgram(world, hostP, log, 'A2'));
    expect(log.steps.map((s) => s.step)).toContain('S110');
    const history = new rcl.WriteHistory();
    const r = await new rcl.Workload(world, history, { host: '100P', lvol: rcl.DATA_LVOL, writes: 50, queueDepth: 4 }).done;
    expect(r.acknowledged).toBe(50);
    expect(history.missingAcknowledged(world.volume('I', rcl.DATA_LVOL))).toEqual([]);
    const reply = await world.command('I', { op: 'query', pairId: rcl.embodiment1.PAIR_IR });
    expect(reply.ok && reply.pair?.state).toBe('duplex');
    expect(world.definitionInformation('R')[0]!.role).toBe('destination');
    await world.close();
  });
  it('a run\'s result lists each routine with the step numbers it went through and its data-loss verdict (rclab run --json)', async () => {
    const r = await rcl.runScenario('embodiment1-double-failure', { runtime: 'sim', seed: 2, scale: 0.25 });
    expect(r.ok).toBe(true);
    const a3 = r.routines.find((x) => x.routine === 'A3 failover')!;
    expect(a3.host).toBe('100R');
    expect(a3.steps[0]).toBe('S200');
    expect(a3.steps).toContain('S220');
    expect(a3.steps).not.toContain('S250');
    expect(a3.verdict).toEqual({ step: 'S220', dataLoss: true });
    expect(r.routines.find((x) => x.routine === 'A2 initial copying')).toMatchObject({ steps: ['S100', 'S110'] });
    expect(r.routines.find((x) => x.routine === 'A2 initial copying')!.verdict).toBeUndefined();
    expect(Object.keys(r.volumes).sort()).toEqual(['I', 'P', 'R']);
  });
  it('lists its scenarios and refuses an unknown one by name', () => {
    expect(rcl.SCENARIOS.map((s) => s.name)).toContain('embodiment1-cycle');
    expect(() => rcl.findScenario('nope')).toThrow(/unknown scenario 'nope'/);
  });
});
