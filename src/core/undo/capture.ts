// Small helpers of the step writer: whether a path is as a capture saw it, and bounded concurrency.
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

/** Runs `work` on every item, at most `limit` at once; throws the first failure once all settled. */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item).catch((error: unknown) => {
        failure ??= { error };
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
