// Consistency groups (journal groups, as real arrays call them): one pair may cover several data volumes of one
// application. The pair then copies the concatenation of its members' address spaces — the "group address" of
// block `lba` of member i is offsetBlocks(i) + lba, each member starting on a track boundary — so one journal,
// one sequence-number space, one difference bitmap and one pair state cover them all, and the destination is
// prefix-consistent across the members together. Pure functions: shared by the firmware and any reader.

import { BLOCKS_PER_TRACK } from './constants.ts';

/** One member of a group as definition information lists it: its LVOL here and its partner LVOL there. */
export interface GroupMember {
  localLvol: number;
  remoteLvol: number;
}

/** A member placed in the group's address space. */
export interface PlacedMember extends GroupMember {
  offsetBlocks: number;
  blocks: number;
}

export interface GroupLayout {
  members: PlacedMember[];
  /** Blocks of the group address space (the last member's end; gaps to track boundaries included). */
  blocks: number;
}

/**
 * Places the members one after another, each on a track boundary, so that a track (the unit of the difference
 * bitmap and of formation copying) never spans two members. `lvolBlocks` gives a local LVOL's size.
 */
export function groupLayout(members: GroupMember[], lvolBlocks: (lvol: number) => number): GroupLayout {
  const placed: PlacedMember[] = [];
  let at = 0;
  for (const m of members) {
    const blocks = lvolBlocks(m.localLvol);
    placed.push({ ...m, offsetBlocks: at, blocks });
    at += Math.ceil(blocks / BLOCKS_PER_TRACK) * BLOCKS_PER_TRACK;
  }
  const last = placed[placed.length - 1];
  return { members: placed, blocks: last ? last.offsetBlocks + last.blocks : 0 };
}

/** The member and member LBA of `blocks` blocks at group address `groupLba`, or null when they are not all inside one member. */
export function locateInGroup(g: GroupLayout, groupLba: number, blocks: number): { member: PlacedMember; lba: number } | null {
  for (const m of g.members) {
    if (groupLba < m.offsetBlocks || groupLba >= m.offsetBlocks + m.blocks) continue;
    const lba = groupLba - m.offsetBlocks;
    return lba + blocks <= m.blocks ? { member: m, lba } : null;
  }
  return null;
}

/** The member a track of the group belongs to (tracks in a member's end gap belong to that member), or null past the end. */
export function memberOfTrack(g: GroupLayout, track: number): PlacedMember | null {
  const lba = track * BLOCKS_PER_TRACK;
  for (let i = g.members.length - 1; i >= 0; i--) if (lba >= g.members[i]!.offsetBlocks) return lba < g.blocks ? g.members[i]! : null;
  return null;
}

/** Checks the shape of a member list as given in a create command (numbers, count, no LVOL twice); throws naming the problem. */
export function checkMembers(members: unknown, maxMembers: number): asserts members is GroupMember[] {
  if (!Array.isArray(members) || members.length < 1 || members.length > maxMembers) {
    throw new Error(`create: volumes must list 1..${maxMembers} members, not ${members === undefined ? 'none' : JSON.stringify(members)}`);
  }
  const seenLocal = new Set<number>(), seenRemote = new Set<number>();
  members.forEach((m: { localLvol?: unknown; remoteLvol?: unknown }, i) => {
    if (!m || typeof m !== 'object' || !isLvol(m.localLvol) || !isLvol(m.remoteLvol)) {
      throw new Error(`create: member ${i} of volumes must be { localLvol, remoteLvol } with LVOL numbers ≥ 0, not ${JSON.stringify(m)}`);
    }
    if (seenLocal.has(m.localLvol)) throw new Error(`create: LVOL ${m.localLvol} is listed twice as a local member`);
    if (seenRemote.has(m.remoteLvol)) throw new Error(`create: LVOL ${m.remoteLvol} is listed twice as a remote member`);
    seenLocal.add(m.localLvol);
    seenRemote.add(m.remoteLvol);
  });
}

const isLvol = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffff;
