// What the capture worker found, as the recorder saves and compares it (stepWriter.ts): the
// preimage of each path, the version it saved, and whether a path is still as its capture found
// it when its change begins. Pure, a table of cases each (test/unit/undoCaptures.test.ts).
import type { CapturedVersion } from '../files/entry';
import { nameFromBytes } from '../files/pathCodec';
import { permissions } from './fsState';
import type { CapturedPath, CapturedStats } from './packWorker';
import type { Preimage } from './records';

/** What an lstat says now, as unchangedSince compares it (a node:fs Stats is one). */
export type StatsNow = CapturedStats & { isDirectory(): boolean };

export const modeOwnerTimes = (stats: CapturedStats) => ({ mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs });

/** The preimage of what the capture worker found at `key` (its attributes still to read); throws what cannot be captured. */
export function preimageOf(key: string, found: CapturedPath): Preimage {
  switch (found.kind) {
    case 'absent':
      return { kind: 'absent' };
    case 'file':
      return { kind: 'file', ...modeOwnerTimes(found.stats), xattrs: null, size: found.blob.size, hash: found.hash, blob: found.blob };
    case 'symlink':
      return { kind: 'symlink', ...modeOwnerTimes(found.stats), xattrs: null, target: nameFromBytes(found.target) };
    case 'directory':
      return { kind: 'directory', ...modeOwnerTimes(found.stats), xattrs: null, metadataOnly: false };
    case 'error':
      throw new Error(`${key}: ${found.message}`);
    default:
      throw new Error(`${key} is neither a file, a folder nor a link; the undo log cannot capture it`);
  }
}

/** The version a preimage saved, as the apply compares it with the one the scan saw. */
export function versionOf(pre: Preimage): CapturedVersion {
  if (pre.kind === 'file') return { kind: 'file', hash: pre.hash };
  if (pre.kind === 'symlink') return { kind: 'symlink', target: pre.target };
  return { kind: pre.kind };
}

/**
 * Whether a path is still as its capture found it: nothing changed between the two lstat calls
 * (ctime moves on any change of content, mode, owner or xattrs); a folder, whose times the step's
 * own changes inside it move, only needs to be the same folder with the same mode and owner.
 */
export function unchangedSince(capture: { pre: Preimage; stats?: CapturedStats }, now: StatsNow | undefined): boolean {
  const before = capture.stats;
  if (!before || !now) return before === undefined && now === undefined && capture.pre.kind === 'absent';
  const sameInode = before.ino === now.ino && before.dev === now.dev && before.mode === now.mode && before.uid === now.uid && before.gid === now.gid;
  if (capture.pre.kind === 'directory') return sameInode && now.isDirectory();
  return sameInode && before.size === now.size && before.mtimeMs === now.mtimeMs && before.ctimeMs === now.ctimeMs;
}
