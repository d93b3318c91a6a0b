// Reading one path's current state for the apply step's "still what the scan saw?" check, and
// hashing a file the way the scan does, and whether a path is still reached through real folders.
import { createHash } from 'node:crypto';
import { constants, createReadStream, createWriteStream, lstatSync } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Entry } from './entry';
import { ancestorsOf, permissionBits } from './entry';
import { joinBytes, nameFromBytes } from './pathCodec';

/**
 * Copies a file's bytes into a file of the running user's, mode 0600 until the caller sets it.
 * Not fs.copyFile: the libuv the image's Node uses also gives the copy the source's owner and
 * mode, which for a file from /workspace would put the workspace user's UID (the sync agent holds
 * CAP_CHOWN) and any setuid bit into the state folder on the host.
 */
export async function copyContents(source: Buffer, target: Buffer, options: { exclusive?: boolean } = {}): Promise<void> {
  const handle = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await pipeline(handle.createReadStream({ autoClose: false }), createWriteStream(target, { mode: 0o600, flags: options.exclusive ? 'wx' : 'w' }));
  } finally {
    await handle.close();
  }
}

/**
 * Writes all of `bytes`, at `position` or else at the handle's own. A write into a regular file
 * stops short, with no error, when the disk fills: the rest is written again, and the write that
 * finds no room fails with ENOSPC, rather than a file ending short and whole-looking.
 */
export async function writeWhole(handle: FileHandle, bytes: Buffer, position?: number): Promise<void> {
  for (let written = 0; written < bytes.length; ) {
    written += (await handle.write(bytes, written, bytes.length - written, position === undefined ? null : position + written)).bytesWritten;
  }
}

/**
 * File systems stamp times from a clock that advances in ticks: up to 10 ms on Linux before
 * 6.13's fine-grained stamps, about 16 ms on Windows, one second on ext3 and HFS+, two on FAT. A
 * file changed again within the tick of its last change keeps its size and times, so what an
 * lstat said then cannot vouch for the content later: git's "racy clean" problem. True when
 * `timeMs` (a file's ctime or mtime) is within a tick of `seenAt`, the clock read before the
 * lstat that returned it. A time with no fraction of a second is taken to come from a file
 * system that keeps whole seconds.
 */
export function isRacy(timeMs: number, seenAt: number): boolean {
  return timeMs > seenAt - (timeMs % 1000 === 0 ? WHOLE_SECOND_TICK_MS : FILE_TIME_TICK_MS);
}

/** The longest tick of a file system that stamps fractions of a second, with a margin. */
export const FILE_TIME_TICK_MS = 25;
/** Two seconds (FAT) and a margin. */
const WHOLE_SECOND_TICK_MS = 2_100;

/**
 * A ctime a record cannot vouch with (isRacy): it matches no file's, so the next look at the file
 * reads it again instead of trusting the record's hash.
 */
export const UNKNOWN_CTIME = -1;

/**
 * The lstat of a file the caller has just written with this size and mtime, if it still looks
 * so: a record of it with the hash it was written with then vouches for its content, since anyone
 * who writes to it later gives it another mtime. Unless the mtime written is within a tick of now
 * (isRacy): undefined then, as for a file that no longer looks as written.
 */
export function lstatAsWritten(path: Buffer, written: { size: number; mtimeMs: number }): Stats | undefined {
  if (isRacy(written.mtimeMs, Date.now())) return undefined;
  const stats = lstatSyncIfReadable(path);
  return stats?.isFile() && stats.size === written.size && Math.abs(stats.mtimeMs - written.mtimeMs) < 1 ? stats : undefined;
}

/** The ctime a record of a file may keep: its own, or UNKNOWN_CTIME while a change within its tick could go unseen. */
export const vouchingCtime = (ctimeMs: number, seenAt: number): number => (isRacy(ctimeMs, seenAt) ? UNKNOWN_CTIME : ctimeMs);

export async function lstatOrUndefined(path: Buffer): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * The synchronous form, for metadata the scan or the apply has just read (in the page cache): a
 * trip to the thread pool costs far more than the call itself on a busy machine.
 */
export function lstatSyncOrUndefined(path: Buffer): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * lstatSyncOrUndefined for a look that only informs: undefined whatever went wrong (gone,
 * unreadable, a parent replaced), where the caller learns more from its next event or its next
 * scan than from the error.
 */
export function lstatSyncIfReadable(path: Buffer): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

export const sha256 = (content: Buffer): string => createHash('sha256').update(content).digest('hex');

export async function hashFile(path: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Whether what is on disk at `path` is still `expected`. Files are compared by type, size, mtime
 * and mode first (what the scan's cache trusts too) and by content hash only when those match
 * but the caller needs certainty (`verifyContent`), e.g. before taking a file as a sync source.
 */
export async function matchesExpected(path: Buffer, expected: Entry | undefined, options: { verifyContent?: boolean } = {}): Promise<{ ok: true; stats?: Stats } | { ok: false; code: 'changed-since-scan' | 'unsyncable'; reason: string }> {
  const changed = (reason: string) => ({ ok: false as const, code: 'changed-since-scan' as const, reason });
  // Synchronous, as the apply's other calls for a small file are (see apply.ts).
  const stats = lstatSyncOrUndefined(path);
  if (!expected) return stats ? changed('created since the scan') : { ok: true };
  if (!stats) return changed('deleted since the scan');
  switch (expected.kind) {
    case 'file': {
      if (!stats.isFile()) return changed('type changed since the scan');
      if (stats.size !== expected.size || stats.mtimeMs !== expected.mtimeMs || permissionBits(stats.mode) !== expected.mode) return changed('modified since the scan');
      if (options.verifyContent && (await hashFile(path)) !== expected.hash) return changed('modified since the scan');
      return { ok: true, stats };
    }
    case 'directory':
      return stats.isDirectory() ? { ok: true, stats } : changed('type changed since the scan');
    case 'symlink':
      if (!stats.isSymbolicLink()) return changed('type changed since the scan');
      return nameFromBytes(await readlink(path, { encoding: 'buffer' })) === expected.target ? { ok: true, stats } : changed('link retargeted since the scan');
    case 'untracked':
      return { ok: false, code: 'unsyncable', reason: 'cannot be synchronized' };
  }
}

/**
 * The first folder above `key` (below the root) that exists but is not a real folder, e.g. one
 * replaced by a symlink since the scan: going through it would reach outside the tree. `known`
 * caches ancestors found to be real folders (or absent). Synchronous: the folders were just read.
 */
export function nonFolderAncestor(root: string, key: string, known?: Set<string>): string | undefined {
  for (const ancestor of ancestorsOf(key)) {
    if (known?.has(ancestor)) continue;
    const stats = lstatSyncOrUndefined(joinBytes(root, ancestor));
    if (stats && !stats.isDirectory()) return ancestor;
    known?.add(ancestor);
  }
  return undefined;
}
