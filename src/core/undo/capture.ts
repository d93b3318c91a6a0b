// Whether a path is still as a capture saw it: the step writer takes a capture made ahead only then.
import type { CapturedStats } from './packWorker';

/** Whether nothing changed at a path between two lstat calls (ctime moves on any change of content, mode, owner or xattrs). */
export function sameState(before: CapturedStats | undefined, now: CapturedStats | undefined): boolean {
  if (!before || !now) return before === now;
  return sameInodeModeOwner(before, now) && before.size === now.size && before.mtimeMs === now.mtimeMs && before.ctimeMs === now.ctimeMs;
}

/** Whether a path is still the same folder, with the same mode and owner (its times change with what is inside it). */
export function sameFolder(before: CapturedStats | undefined, now: CapturedStats | undefined): boolean {
  if (!before || !now || (now.mode & 0o170000) !== 0o040000) return false;
  return sameInodeModeOwner(before, now);
}

function sameInodeModeOwner(before: CapturedStats, now: CapturedStats): boolean {
  return before.ino === now.ino && before.dev === now.dev && before.mode === now.mode && before.uid === now.uid && before.gid === now.gid;
}
