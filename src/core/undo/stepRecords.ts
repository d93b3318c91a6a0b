// What a step's captures come to when it closes, and what it weighs against its limit: pure
// functions over the captures (no disk, no clock), so each case is a row of a table test.
import type { Preimage } from './records';
import { parentKey } from './records';
import { formatBytes } from '../display';

/** A folder recorded only for its mode and times, because a path inside it changed: not itself a change of the step. */
export const isMetadataOnly = (pre: Preimage): boolean => pre.kind === 'directory' && pre.metadataOnly;

/** Every parent of `key` up to the root (''), nearest first. */
function* parentsOf(key: string): Generator<string> {
  for (let parent = key; parent !== ''; ) {
    parent = parentKey(parent);
    yield parent;
  }
}

/**
 * The records of the paths `keys` (those whose change began, or was carried out) and of their
 * parents, from the step's captures: a parent folder by its mode and times from before the step,
 * a missing one as created by the step. A key without a capture (it could not be captured, so it
 * was not changed) has no record.
 */
export function countedRecords(captures: ReadonlyMap<string, { pre: Preimage }>, keys: Iterable<string>): Map<string, Preimage> {
  const counted = new Map<string, Preimage>();
  for (const key of keys) {
    const pre = captures.get(key)?.pre;
    if (!pre) continue;
    counted.set(key, pre);
    if (isMetadataOnly(pre)) continue;
    for (const parent of parentsOf(key)) {
      const parentPre = captures.get(parent)?.pre;
      if (counted.has(parent) || !parentPre) continue;
      if (parentPre.kind === 'directory') counted.set(parent, { ...parentPre, metadataOnly: true });
      else if (parentPre.kind === 'absent') counted.set(parent, parentPre);
    }
  }
  return counted;
}

/**
 * The records without what the step did not change: a path that was absent and that the step left
 * absent (`leftAbsent`), and a parent folder with no changed path left below it.
 */
export function withoutUnchanged(records: ReadonlyMap<string, Preimage>, leftAbsent: (key: string) => boolean): Map<string, Preimage> {
  const kept = new Map([...records].filter(([key, pre]) => pre.kind !== 'absent' || !leftAbsent(key)));
  const parentsOfChanges = new Set<string>();
  for (const [key, pre] of kept) if (!isMetadataOnly(pre)) for (const parent of parentsOf(key)) parentsOfChanges.add(parent);
  for (const [key, pre] of [...kept]) if (isMetadataOnly(pre) && !parentsOfChanges.has(key)) kept.delete(key);
  return kept;
}

/** The paths a step changed, the manifest's count: every record but the folders recorded only as parents. */
export function changedCount(records: ReadonlyMap<string, Preimage>): number {
  let count = 0;
  for (const pre of records.values()) if (!isMetadataOnly(pre)) count += 1;
  return count;
}

/** Whether a step is over the single-step limit: its journal's lines and the content it saved. */
export const overStepLimit = (size: { recordBytes: number; contentBytes: number }, maxStepBytes: number): boolean => size.recordBytes + size.contentBytes > maxStepBytes;

/** How much content the step may hold in all: its limit less its records. */
export const contentLimit = (recordBytes: number, maxStepBytes: number): number => Math.max(0, maxStepBytes - recordBytes);

/** Why a step that went over the single-step limit cannot be undone. */
export const overLimitReason = (what: 'saved content' | 'records', maxStepBytes: number): string => `the step's ${what} went over the ${formatBytes(maxStepBytes)} limit of one step`;
