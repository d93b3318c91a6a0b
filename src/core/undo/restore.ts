// Puts a step's paths back to their preimages. Pass 1 removes what the step created (and what
// has the wrong type), deepest first; pass 2 recreates folders and restores files and links,
// shallowest first; then the sync's stray temporary files are removed; last, folders get their
// mode and times back, deepest first, so that restoring a child does not move a restored
// parent's mtime again.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, readdir, readlink, rmdir, symlink, unlink, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashFile, lstatOrUndefined, nonFolderAncestor } from '../files/fsEntry';
import { bytesFromName, joinBytes, nameFromBytes } from '../files/pathCodec';
import { keepUnder, replaceChecked, setStagedAttributes, temporarySibling } from '../files/replaceChecked';
import { kindOf, permissions } from './fsState';
import type { Postimage, Preimage, PreimageOf } from './records';
import { keyDepth, parentKey } from './records';
import { BlobReader } from './stepJournal';
import type { KeptVersion } from './types';
import { writeXattrs } from './xattrs';

export interface RestoreItem {
  path: string;
  pre: Preimage;
  post?: Postimage;
}

/** Restored mtimes go through a double of seconds; anything closer than this is the same time. */
export const MTIME_TOLERANCE_MS = 0.01;

const SYNC_TEMP = /^\.clud-sync-.*\.tmp$/;

export interface RestoreOptions {
  root: string;
  stepDir: string;
  records: readonly RestoreItem[];
  checkPostimages: boolean;
  /**
   * Where a file or link found at a restored path is kept when it is neither the preimage, nor
   * the step's postimage, nor a version the caller kept already: e.g. one written after the
   * caller looked.
   */
  keepRoot: string;
  /** Paths whose current version the caller has just kept (a forced undo's barriers, a recovery's differing paths), at the kept copy. */
  alreadyKept?: ReadonlyMap<string, string>;
  /** Told of every version kept under keepRoot. */
  onKept?: (version: KeptVersion) => void;
}

/**
 * `checkPostimages` (undo of a closed step): a folder's mode and times are restored only when
 * nobody changed them since the step (for a folder the step itself changed, its mode always is).
 * A rollback of an open step has no postimages and restores everything. Returns problems; a
 * failure at one path does not stop the others.
 */
export async function restoreRecords(options: RestoreOptions): Promise<string[]> {
  const { root, records } = options;
  const guard = displacedGuard(options);
  const blobs = new BlobReader(options.stepDir);
  const problems: string[] = [];
  const attempt = async (key: string, what: string, action: () => Promise<unknown>) => {
    try {
      const problem = await action();
      if (typeof problem === 'string') problems.push(`${key || '.'}: ${problem}`);
    } catch (error) {
      problems.push(`${key || '.'}: ${what} failed: ${(error as Error).message}`);
    }
  };
  const deepestFirst = [...records].sort((a, b) => keyDepth(b.path) - keyDepth(a.path) || (a.path < b.path ? -1 : 1));
  const shallowestFirst = [...deepestFirst].reverse();

  // Decided before anything moves: whose mode and times are still the step's to restore.
  const folderDecisions = new Map<string, { mode: boolean; times: boolean }>();
  for (const record of records) {
    if (record.pre.kind !== 'directory') continue;
    const stats = await lstatOrUndefined(joinBytes(root, record.path));
    folderDecisions.set(record.path, folderDecision(record, stats, options.checkPostimages));
  }

  // Nothing is touched through a folder that became a symlink: it could lead outside the tree.
  // Pass 1 skips such paths quietly (the symlink may be a record itself, removed later in the
  // pass); pass 2 reports what still cannot be reached.
  let folders = new Set<string>();
  for (const record of deepestFirst) {
    if (record.path === '' || nonFolderAncestor(root, record.path, folders)) continue;
    const target = joinBytes(root, record.path);
    const stats = await lstatOrUndefined(target);
    if (!stats || (record.pre.kind !== 'absent' && kindOf(stats) === record.pre.kind)) continue;
    // A file or link goes through replaceChecked (a version written meanwhile is never lost); a
    // folder the step created goes as a whole (its content is recorded too).
    if (stats.isDirectory()) await attempt(record.path, 'removing', () => removeTree(target));
    else await attempt(record.path, 'removing', () => replaceGuarded(target, undefined, record, guard));
  }

  folders = new Set<string>();
  const unreachable = new Set<string>();
  for (const record of shallowestFirst) {
    if (record.path === '') continue;
    const blocked = nonFolderAncestor(root, record.path, folders);
    if (blocked) {
      unreachable.add(record.path);
      if (record.pre.kind !== 'absent') problems.push(`${record.path}: not restored, its parent ${blocked} is no longer a folder`);
      continue;
    }
    const target = joinBytes(root, record.path);
    const pre = record.pre;
    if (pre.kind === 'directory') {
      await attempt(record.path, 'creating the folder', async () => {
        if (!(await lstatOrUndefined(target))) await mkdir(target, { mode: 0o700 });
      });
    } else if (pre.kind === 'file') {
      await attempt(record.path, 'restoring the file', () => restoreFile(target, record, blobs, guard));
    } else if (pre.kind === 'symlink') {
      await attempt(record.path, 'restoring the link', () => restoreSymlink(target, record, guard));
    }
  }

  const parents = new Set(records.filter((record) => !unreachable.has(record.path)).map((record) => (record.path === '' ? '' : parentKey(record.path))));
  for (const parent of parents) {
    if (parent !== '' && (nonFolderAncestor(root, parent, folders) || !(await lstatOrUndefined(joinBytes(root, parent)))?.isDirectory())) continue;
    await attempt(parent, 'removing temporary files', () => removeSyncTemporaries(joinBytes(root, parent)));
  }

  for (const record of deepestFirst) {
    const pre = record.pre;
    const decision = folderDecisions.get(record.path);
    if (pre.kind !== 'directory' || !decision || unreachable.has(record.path)) continue;
    const target = joinBytes(root, record.path);
    if (pre.metadataOnly) {
      // Only the time (and mode) a child's change moved: best effort, e.g. a root the process does not own.
      if (decision.mode) await chmod(target, pre.mode).catch(() => {});
      if (decision.times) await utimes(target, pre.atimeMs / 1000, pre.mtimeMs / 1000).catch(() => {});
      continue;
    }
    await attempt(record.path, 'restoring the folder', async () => {
      await restoreOwner(target, pre);
      const problem = pre.xattrs ? await writeXattrs(target, false, pre.xattrs) : undefined;
      if (decision.mode) await chmod(target, pre.mode);
      if (decision.times) await utimes(target, pre.atimeMs / 1000, pre.mtimeMs / 1000);
      return problem;
    });
  }
  return problems;
}

function folderDecision(record: RestoreItem, stats: Stats | undefined, checkPostimages: boolean): { mode: boolean; times: boolean } {
  const pre = record.pre as PreimageOf<'directory'>;
  const post = record.post;
  // Not a folder now (so it is recreated), or nothing to compare with: restore everything.
  if (!checkPostimages || !post || !stats?.isDirectory() || post.kind !== 'directory') return { mode: true, times: true };
  const timesUntouched = Math.abs(stats.mtimeMs - post.mtimeMs) <= MTIME_TOLERANCE_MS;
  const modeUntouched = permissions(stats) === post.mode;
  // A parent the step only added to or removed from: leave it alone if anyone changed it since.
  if (pre.metadataOnly) return timesUntouched && modeUntouched ? { mode: true, times: true } : { mode: false, times: false };
  return { mode: true, times: timesUntouched };
}

async function restoreFile(target: Buffer, record: RestoreItem, blobs: BlobReader, guard: DisplacedGuard): Promise<string | undefined> {
  const pre = record.pre as PreimageOf<'file'>;
  const current = await lstatOrUndefined(target);
  if (current?.isFile() && current.size === pre.size && (await hashFile(target)) === pre.hash) {
    // Same content (never changed, or changed back): only the attributes, in place.
    await restoreOwner(target, pre);
    const problem = pre.xattrs ? await writeXattrs(target, false, pre.xattrs) : undefined;
    await chmod(target, pre.mode);
    await utimes(target, pre.atimeMs / 1000, pre.mtimeMs / 1000);
    return problem;
  }
  const temporary = temporarySibling(target);
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  try {
    await pipeline([...(await blobs.streams(pre.blob)), hasher, createWriteStream(temporary, { mode: 0o600, flags: 'wx' })]);
    if (hash.digest('hex') !== pre.hash) throw new Error('the saved content is corrupt (hash mismatch)');
    await restoreOwner(temporary, pre);
    const problem = pre.xattrs ? await writeXattrs(temporary, false, pre.xattrs, true) : undefined;
    setStagedAttributes(temporary, pre);
    return (await replaceGuarded(target, temporary, record, guard)) ?? problem;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

async function restoreSymlink(target: Buffer, record: RestoreItem, guard: DisplacedGuard): Promise<string | undefined> {
  const pre = record.pre as PreimageOf<'symlink'>;
  const temporary = temporarySibling(target);
  try {
    await symlink(bytesFromName(pre.target), temporary);
    await restoreOwner(temporary, pre);
    const problem = pre.xattrs ? await writeXattrs(temporary, true, pre.xattrs, true) : undefined;
    await lutimes(temporary, pre.atimeMs / 1000, pre.mtimeMs / 1000);
    return (await replaceGuarded(target, temporary, record, guard)) ?? problem;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

interface DisplacedGuard {
  keepRoot: string;
  alreadyKept: ReadonlyMap<string, string>;
  onKept: (version: KeptVersion) => void;
}

function displacedGuard(options: RestoreOptions): DisplacedGuard {
  return { keepRoot: options.keepRoot, alreadyKept: options.alreadyKept ?? new Map(), onKept: options.onKept ?? (() => {}) };
}

/**
 * Puts `staged` at `target` (or deletes what is there) through replaceChecked. What it replaces
 * is the version looked at here (hashed now), and it may go only when it is the preimage, the
 * step's postimage, or the copy the caller already kept; anything else (a version written
 * after the caller looked) is kept under keepRoot first. Returns a problem, or undefined.
 */
async function replaceGuarded(target: Buffer, staged: Buffer | undefined, record: RestoreItem, guard: DisplacedGuard): Promise<string | undefined> {
  const foundAt = Date.now();
  const found = await lstatOrUndefined(target);
  if (found?.isDirectory()) throw new Error('a folder is in the way');
  const hash = found?.isFile() ? await hashFile(target) : undefined;
  const linkTarget = found?.isSymbolicLink() ? nameFromBytes(await readlink(target, { encoding: 'buffer' })) : undefined;
  const droppable = !found || (await mayDrop(record, guard, { hash, linkTarget }));
  const result = await replaceChecked(target, staged, { found, foundAt, hash, linkTarget }, { keep: keepUnder(guard.keepRoot, record.path), keepDisplaced: !droppable });
  for (const copy of result.kept) guard.onKept({ path: record.path, keptAt: copy.keptAt });
  return result.ok ? undefined : `${result.reason}; not restored`;
}

async function mayDrop(record: RestoreItem, guard: DisplacedGuard, found: { hash?: string; linkTarget?: string }): Promise<boolean> {
  const matches = (state: Preimage | Postimage | undefined) =>
    (state?.kind === 'file' && found.hash !== undefined && state.hash === found.hash) || (state?.kind === 'symlink' && found.linkTarget !== undefined && state.target === found.linkTarget);
  if (matches(record.pre) || matches(record.post)) return true;
  const keptAt = guard.alreadyKept.get(record.path);
  if (keptAt === undefined) return false;
  const kept = Buffer.from(keptAt);
  const keptStats = await lstatOrUndefined(kept);
  if (found.hash !== undefined) return keptStats?.isFile() === true && (await hashFile(kept)) === found.hash;
  return keptStats?.isSymbolicLink() === true && nameFromBytes(await readlink(kept, { encoding: 'buffer' })) === found.linkTarget;
}

/** Owner back as captured; only root may give a file away, so a refusal elsewhere is expected. */
async function restoreOwner(target: Buffer, pre: { uid: number; gid: number }): Promise<void> {
  const stats = await lstatOrUndefined(target);
  if (!stats || (stats.uid === pre.uid && stats.gid === pre.gid)) return;
  await lchown(target, pre.uid, pre.gid).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPERM') throw error;
  });
}

/** rm -r that keeps names as bytes. */
export async function removeTree(target: Buffer): Promise<void> {
  const stats = await lstatOrUndefined(target);
  if (!stats) return;
  if (!stats.isDirectory()) {
    await unlink(target);
    return;
  }
  for (const name of await readdir(target, { encoding: 'buffer' })) await removeTree(Buffer.concat([target, Buffer.from('/'), name]));
  await rmdir(target);
}

/** The apply step stages `.clud-sync-*.tmp` siblings; a crash can leave them behind. */
async function removeSyncTemporaries(folder: Buffer): Promise<void> {
  const names = await readdir(folder, { encoding: 'buffer' }).catch(() => [] as Buffer[]);
  for (const name of names) {
    if (!SYNC_TEMP.test(name.toString('latin1'))) continue;
    const entry = Buffer.concat([folder, Buffer.from('/'), name]);
    if (!(await lstatOrUndefined(entry))?.isDirectory()) await unlink(entry).catch(() => {});
  }
}
