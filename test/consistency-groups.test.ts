// Consistency groups (issue 3): one pair covers several data volumes — one journal, one sequence-number space, one
// bitmap, one state. The group address mapping, the firmware's validation of member lists, and a group pair
// copying (sync and async, formation copy, journal, resync, reverse) between two systems on the sim runtime.

import { describe, expect, it } from 'vitest';
import { BLOCKS_PER_TRACK, MAX_GROUP_MEMBERS } from '../firmware/constants.ts';
import { groupLayout, locateInGroup, memberOfTrack } from '../firmware/consistency-group.ts';
import type { Command, PairDefinitionInput } from '../firmware/commands.ts';
import { decodeControl, decodeFrame, encodeControl } from '../firmware/frames.ts';
import { Checkers, TransactionLog } from '../harness/checkers.ts';
import { OperationsLog } from '../harness/copy-control.ts';
import { formatPairDisplay } from '../harness/operator.ts';
import { WriteHistory } from '../harness/history.ts';
import { SimWorld } from '../harness/runtime-sim.ts';
import { DatabaseWorkload } from '../harness/workload.ts';
import { A, B, ok, PAIR, query, twoSystems, waitFor } from './fixtures.ts';

/** LVOLs of each system: 0 data (1 MiB), 1 journal, 2 log (40 blocks: 2.5 tracks, so the next member's offset is rounded up), 3 spare data. */
const DATA = 0, JNL = 1, LOG = 2, SPARE = 3;
const LOG_BLOCKS = 40;

function groupWorld(seed = 1, bLogBlocks = LOG_BLOCKS): SimWorld {
  const t = twoSystems({ bandwidthMBps: 100 });
  for (const s of t.systems) {
    s.lvols.push({ name: `log${s.name}`, kind: 'data', sizeBytes: (s.name === 'B' ? bLogBlocks : LOG_BLOCKS) * 4096 });
    s.lvols.push({ name: `spare${s.name}`, kind: 'data', sizeBytes: 64 * 4096 });
  }
  return new SimWorld(t, seed);
}

function groupCreate(copyType: 'sync' | 'async', volumes = [{ localLvol: DATA, remoteLvol: DATA }, { localLvol: LOG, remoteLvol: LOG }],
  extra: Partial<PairDefinitionInput> = {}): Command {
  return {
    op: 'create', initialCopy: 'full',
    pair: { pairId: PAIR, localLvol: DATA, remoteStorageId: B, remoteLvol: DATA, copyType, fence: 'never', volumes,
      ...(copyType === 'async' ? { journalLvol: JNL, remoteJournalLvol: JNL } : {}), ...extra },
  };
}

/** A group pair A→B over [data, log], copied to duplex and then suspended on both sides. */
async function suspendedGroup(copyType: 'sync' | 'async'): Promise<SimWorld> {
  const w = groupWorld();
  await ok(w, 'A', groupCreate(copyType));
  await waitFor(w, 'B', 'duplex');
  await ok(w, 'A', { op: 'suspend', pairId: PAIR });
  await waitFor(w, 'B', 'suspend');
  return w;
}

function block(fill: number): Uint8Array { return new Uint8Array(4096).fill(fill); }
async function put(w: SimWorld, lvol: number, lba: number, fill: number) {
  const r = await w.hostIo('hostA', { op: 'write', lvol, lba, blocks: 1, data: block(fill) });
  expect(r.status).toBe('ok');
}
function same(w: SimWorld, lvol: number): boolean {
  return Buffer.from(w.volume('A', lvol)).equals(Buffer.from(w.volume('B', lvol)));
}

describe('consistency groups: group address mapping', () => {
  const layout = groupLayout([{ localLvol: 4, remoteLvol: 5 }, { localLvol: 2, remoteLvol: 2 }, { localLvol: 7, remoteLvol: 1 }],
    (lvol) => ({ 4: 256, 2: 40, 7: 16 })[lvol]!);

  it('members start on track boundaries, in the order listed; the group ends where its last member ends', () => {
    expect(layout.members.map((m) => m.offsetBlocks)).toEqual([0, 256, 256 + 3 * BLOCKS_PER_TRACK]);
    expect(layout.blocks).toBe(256 + 48 + 16);
  });

  it('a group address maps back to (member, LBA), and a range spanning a member end or a gap maps to nothing', () => {
    expect(locateInGroup(layout, 0, 256)).toMatchObject({ member: { localLvol: 4 }, lba: 0 });
    expect(locateInGroup(layout, 256 + 39, 1)).toMatchObject({ member: { localLvol: 2 }, lba: 39 });
    expect(locateInGroup(layout, 256 + 39, 2)).toBeNull(); // past the log's end
    expect(locateInGroup(layout, 256 + 40, 1)).toBeNull(); // the gap up to the next track boundary
    expect(locateInGroup(layout, 304 + 15, 1)).toMatchObject({ member: { localLvol: 7 }, lba: 15 });
    expect(locateInGroup(layout, 304 + 16, 1)).toBeNull();
    expect(locateInGroup(layout, 255, 2)).toBeNull(); // spans two members
  });

  it('every track belongs to exactly one member', () => {
    const tracks = Math.ceil(layout.blocks / BLOCKS_PER_TRACK);
    expect(Array.from({ length: tracks }, (_, t) => memberOfTrack(layout, t)!.localLvol)).toEqual([...Array(16).fill(4), 2, 2, 2, 7]);
    expect(memberOfTrack(layout, tracks)).toBeNull();
  });
});

describe('consistency groups: the member list on the wire', () => {
  const def = { pairId: PAIR, role: 'destination' as const, localLvol: 0, remoteLvol: 0, direction: 'forward' as const, copyType: 'sync' as const,
    fence: 'never' as const, journalLvol: -1, remoteJournalLvol: -1 };
  const roundTrip = (members: unknown) => decodeControl(decodeFrame(encodeControl(PAIR, { op: 'create', reqId: 1, def: { ...def, members } as never })));

  it('a definition carries [local, remote, blocks] per member; a malformed list is refused as a FrameError naming it', () => {
    expect(roundTrip([[0, 0, 256], [2, 2, 40]])).toMatchObject({ op: 'create', def: { members: [[0, 0, 256], [2, 2, 40]] } });
    for (const bad of [[], [[0, 0]], [[0, -1, 5]], 'x', Array.from({ length: MAX_GROUP_MEMBERS + 1 }, (_, i) => [i, i, 1])]) {
      expect(() => roundTrip(bad)).toThrow(/malformed consistency group members/);
    }
  });
});

describe('consistency groups: validation (bad member lists are refused by name and change nothing)', () => {
  const cases: Array<[string, Command, RegExp]> = [
    ['a member that does not exist', groupCreate('async', [{ localLvol: DATA, remoteLvol: DATA }, { localLvol: 9, remoteLvol: LOG }]), /source LVOL 9 does not exist/],
    ['the journal volume as a member', groupCreate('async', [{ localLvol: DATA, remoteLvol: DATA }, { localLvol: JNL, remoteLvol: LOG }]), /LVOL 1 is the pair's journal volume and cannot be a member/],
    ['the partner\'s journal volume as a member', groupCreate('async', [{ localLvol: DATA, remoteLvol: DATA }, { localLvol: LOG, remoteLvol: JNL }]), /LVOL 1 is the pair's journal volume/],
    ['a volume listed twice', groupCreate('sync', [{ localLvol: DATA, remoteLvol: DATA }, { localLvol: DATA, remoteLvol: LOG }]), /LVOL 0 is listed twice as a local member/],
    ['a first member other than localLvol/remoteLvol', groupCreate('sync', [{ localLvol: LOG, remoteLvol: LOG }, { localLvol: DATA, remoteLvol: DATA }]), /first of volumes must be the pair's own LVOLs 0→0, not 2→2/],
    ['no members', groupCreate('sync', []), /volumes must list 1\.\.8 members/],
    ['more members than a pair slot holds', groupCreate('sync', Array.from({ length: MAX_GROUP_MEMBERS + 1 }, (_, i) => ({ localLvol: i, remoteLvol: i }))), /volumes must list 1\.\.8 members/],
    ['a malformed member', groupCreate('sync', [{ localLvol: DATA, remoteLvol: DATA }, { localLvol: -1 } as never]), /member 1 of volumes must be \{ localLvol, remoteLvol \}/],
  ];
  for (const [what, cmd, re] of cases) {
    it(`refuses ${what}`, async () => {
      const w = groupWorld();
      const r = await w.command('A', cmd);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toMatch(re);
      for (const s of ['A', 'B']) expect(w.definitionInformation(s)).toEqual([]);
    });
  }

  it('refuses a group whose member sizes differ between the two sides (group addresses would not agree)', async () => {
    const w = groupWorld(1, LOG_BLOCKS + 16);
    const r = await w.command('A', groupCreate('async'));
    expect(!r.ok && r.error).toMatch(/refused by storage 1: member 1: LVOL 2 has 56 blocks here but LVOL 2 of storage 0 has 40/);
    for (const s of ['A', 'B']) expect(w.definitionInformation(s)).toEqual([]);
  });

  it('refuses a volume that is already a member of another group to the same partner, or already a destination', async () => {
    const w = groupWorld();
    await ok(w, 'A', groupCreate('sync'));
    const again = await w.command('A', groupCreate('sync', [{ localLvol: SPARE, remoteLvol: SPARE }, { localLvol: LOG, remoteLvol: LOG }], { pairId: PAIR + 1, localLvol: SPARE, remoteLvol: SPARE }));
    expect(!again.ok && again.error).toMatch(/LVOL 2 is already a member of pair 7 to storage 1/);
    await waitFor(w, 'B', 'duplex');
    // At the destination: B's LOG is being written by pair 7.
    const toB = await w.command('A', { op: 'create', initialCopy: 'full', pair: { pairId: PAIR + 2, localLvol: SPARE, remoteStorageId: B, remoteLvol: LOG, copyType: 'sync', fence: 'never' } });
    expect(!toB.ok && toB.error).toMatch(/refused by storage 1: LVOL 2 is already the destination of pair 7/);
    expect(w.definitionInformation('A').map((p) => p.pairId)).toEqual([PAIR]);
    expect(w.definitionInformation('B').map((p) => p.pairId)).toEqual([PAIR]);
  });

  it('allows the same group in a second pair to the same partner (an async pair beside the suspended sync one)', async () => {
    const w = await suspendedGroup('sync');
    const second = groupCreate('async');
    await ok(w, 'A', { ...second, pair: { ...(second as { pair: PairDefinitionInput }).pair, pairId: PAIR + 1 } } as Command);
    expect(w.definitionInformation('B').map((p) => [p.pairId, p.members.map((m) => m.localLvol)])).toEqual([[PAIR, [DATA, LOG]], [PAIR + 1, [DATA, LOG]]]);
  });
});

describe('consistency groups: a group pair between two systems (sim)', () => {
  for (const copyType of ['sync', 'async'] as const) {
    it(`${copyType}: initial copying covers both members, writes to either member are copied, and the view lists the members`, async () => {
      const w = groupWorld();
      await put(w, DATA, 5, 1);
      await put(w, LOG, 39, 2); // last block of the log member
      await ok(w, 'A', groupCreate(copyType));
      const a = await waitFor(w, 'A', 'duplex');
      // 1 MiB data = 16 tracks, a 40-block log = 3 tracks: one formation copy of the whole group.
      expect(a.lastFormationTracksCopied).toBe(19);
      expect(a.members).toEqual([{ localLvol: DATA, remoteLvol: DATA }, { localLvol: LOG, remoteLvol: LOG }]);
      // The pair display: one row per side, naming the group's volumes (data+log) with their one state.
      expect(formatPairDisplay([{ ...a, system: 'A', remoteSystem: 'B', lagEntries: 0, lagMs: 0 }])).toMatch(new RegExp(`^A\\s+7\\s+0\\+2\\s+P-VOL\\s+${copyType}\\s+A→B\\s+duplex\\s+PAIR`, 'm'));
      for (let i = 0; i < 20; i++) { await put(w, LOG, i % LOG_BLOCKS, 10 + i); await put(w, DATA, 100 + i, 50 + i); }
      await w.sleep(200_000);
      expect(same(w, DATA)).toBe(true);
      expect(same(w, LOG)).toBe(true);
      expect(w.volume('B', LOG)[39 * 4096]).toBe(2);
      const b = await query(w, 'B');
      expect(b.members).toEqual([{ localLvol: DATA, remoteLvol: DATA }, { localLvol: LOG, remoteLvol: LOG }]);
      if (copyType === 'async') expect(b.journalAppliedSeq).toBe(40); // one sequence-number space for both volumes
    });
  }

  it('async: suspend, resync and reverse act on the whole group; a resync copies only the tracks written in either member', async () => {
    const w = await suspendedGroup('async');
    await put(w, LOG, 3, 7);           // group track 16
    await put(w, DATA, 0, 8);          // group track 0
    await put(w, DATA, 1, 9);          // group track 0 again
    expect((await query(w, 'A')).dirtyTracks).toBe(2);
    expect(same(w, LOG)).toBe(false);
    await ok(w, 'A', { op: 'resync', pairId: PAIR });
    const a = await waitFor(w, 'A', 'duplex');
    expect(a.lastFormationTracksCopied).toBe(2);
    await w.sleep(100_000);
    expect(same(w, DATA) && same(w, LOG)).toBe(true);
    // Takeover at B: the whole group is reversed; B's writes to its log come back to A at the next resync.
    await ok(w, 'A', { op: 'suspend', pairId: PAIR });
    await waitFor(w, 'B', 'suspend');
    await ok(w, 'B', { op: 'reverse', pairId: PAIR });
    await w.hostIo('hostB', { op: 'write', lvol: LOG, lba: 20, blocks: 1, data: block(33) });
    await ok(w, 'B', { op: 'resync', pairId: PAIR });
    const b = await waitFor(w, 'B', 'duplex');
    expect(b.role).toBe('source');
    expect(b.members).toEqual([{ localLvol: DATA, remoteLvol: DATA }, { localLvol: LOG, remoteLvol: LOG }]);
    expect(b.lastFormationTracksCopied).toBe(1);
    await w.sleep(100_000);
    expect(w.volume('A', LOG)[20 * 4096]).toBe(33);
    expect(same(w, DATA) && same(w, LOG)).toBe(true);
    // A (now the destination) refuses host writes to either member while the group copies.
    const refused = await w.hostIo('hostA', { op: 'write', lvol: LOG, lba: 0, blocks: 1, data: block(1) });
    expect(refused.status).toBe('write-protected');
  });
});

describe('consistency groups: the dependent-write check (a database\'s log and data volumes)', () => {
  /** A and B with data (LVOL 0), journal (1), the application's log volume 231x-log (2) and a second journal (3). */
  function dbWorld(seed: number): SimWorld {
    const t = twoSystems({ bandwidthMBps: 1000 });
    for (const s of t.systems) {
      s.lvols.push({ name: `231${s.name}-log`, kind: 'data', sizeBytes: 64 * 4096 });
      s.lvols.push({ name: `jnl2${s.name}`, kind: 'journal', sizeBytes: 2 * 1024 * 1024 });
    }
    return new SimWorld(t, seed);
  }
  const asyncPair = (pairId: number, volumes: Array<{ localLvol: number; remoteLvol: number }>, journal: number): Command => ({
    op: 'create', initialCopy: 'full',
    pair: { pairId, localLvol: volumes[0]!.localLvol, remoteStorageId: B, remoteLvol: volumes[0]!.remoteLvol, copyType: 'async', fence: 'never', volumes, journalLvol: journal, remoteJournalLvol: journal },
  });

  /**
   * The schedule: the database runs on A; the pair that carries the log is suspended (its shipping stops), the
   * database goes on, then site A is lost. Returns what the checker found at B, as scenarios run it after a failover.
   */
  async function logShippingStopsThenDisaster(grouped: boolean) {
    const w = dbWorld(3);
    const history = new WriteHistory(), transactions = new TransactionLog();
    const checkers = new Checkers(w, history, new OperationsLog(), { transactions });
    if (grouped) {
      await ok(w, 'A', asyncPair(PAIR, [{ localLvol: DATA, remoteLvol: DATA }, { localLvol: 2, remoteLvol: 2 }], JNL));
    } else {
      await ok(w, 'A', asyncPair(PAIR, [{ localLvol: DATA, remoteLvol: DATA }], JNL)); // data volume: its own journal
      await ok(w, 'A', asyncPair(PAIR + 1, [{ localLvol: 2, remoteLvol: 2 }], 3));      // log volume: another journal
    }
    await waitFor(w, 'A', 'duplex');
    const db = new DatabaseWorkload(w, history, transactions, { host: 'hostA', dataLvol: DATA, logLvol: 2, dataBaseBlock: 0, dataBlocks: 200 });
    await w.sleep(10_000);
    const logPair = grouped ? PAIR : PAIR + 1;
    await ok(w, 'A', { op: 'suspend', pairId: logPair });
    const atSuspend = transactions.begun;
    while (transactions.begun < atSuspend + 150) await w.sleep(1_000);
    await w.sleep(20_000); // what A journaled meanwhile is shipped and applied at B
    await w.fault({ kind: 'power-loss', system: 'A' });
    db.stop();
    await db.done;
    await checkers.checkDependentWrites('B', 'takeover');
    await checkers.stop();
    return { checkers, begun: transactions.begun };
  }

  it('log and data volumes in two separate async pairs (two journals): with the log pair suspended, B holds data writes without their log writes and the checker flags them', async () => {
    const { checkers } = await logShippingStopsThenDisaster(false);
    const flagged = checkers.violations.filter((v) => v.check === 'dependent-writes');
    expect(flagged.length).toBe(1);
    expect(flagged[0]!.message).toMatch(/takeover at B: data block \d+ holds transaction \d+, but its log block \d+ holds (only transaction \d+|nothing)/);
    const [, checked, broken] = /(\d+) dependent transaction\(s\) checked, (\d+) data write\(s\) without their log write/.exec(checkers.dependentWriteChecks[0]!)!.map(Number);
    expect(broken).toBeGreaterThan(20); // most transactions after the suspend: their data reached B, their log records did not
    expect(broken).toBeLessThanOrEqual(checked!);
  });

  it('the same schedule with one group pair over [data, log] (one journal): suspending it suspends both, and B is clean', async () => {
    const { checkers, begun } = await logShippingStopsThenDisaster(true);
    expect(checkers.violations).toEqual([]);
    const [line] = checkers.dependentWriteChecks;
    const checked = Number(/(\d+) dependent transaction\(s\) checked/.exec(line!)![1]);
    expect(checked).toBeGreaterThan(20); // transactions before the suspend reached B, all with their log records
    expect(checked).toBeLessThan(begun);
    expect(line).toMatch(/, 0 data write\(s\) without their log write/);
  });
});
