// Puts a step's paths back to their preimages. Pass 1 removes what the step created (and what
// has the wrong type), deepest first; pass 2 recreates folders and restores files and links,
// shallowest first; then the sync's stray temporary files are removed; last, folders get their
// mode and times back, deepest first, so that restoring a child does not move a restored
// parent's mtime again.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, readdir, rename, rmdir, symlink, unlink, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashFile, lstatOrUndefined, nonFolderAncestor } from '../sync/fsEntry';
import { bytesFromName, joinBytes } from '../sync/pathCodec';
import { kindOf, permissions } from './fsState';
import type { Postimage, Preimage, PreimageOf } from './records';
import { keyDepth, parentKey } from './records';
import { BlobReader } from './stepJournal';
import { writeXattrs } from './xattrs';

export interface RestoreItem {
  path: string;
  pre: Preimage;
  post?: Postimage;
}

/** Restored mtimes go through a double of seconds; anything closer than this is the same time. */
export const MTIME_TOLERANCE_MS = 0.01;

const SYNC_TEMP = /^\.clud-sync-.*\.tmp$/;

/**
 * `checkPostimages` (undo of a closed step): a folder's mode and times are restored only when
 * nobody changed them since the step (for a folder the step itself changed, its mode always is).
 * A rollback of an open step has no postimages and restores everything. Returns problems; a
 * failure at one path does not stop the others.
 */
export async function restoreRecords(options: { root: string; stepDir: string; records: readonly RestoreItem[]; checkPostimages: boolean }): Promise<string[]> {
  const { root, records } = options;
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
    if (stats && (record.pre.kind === 'absent' || kindOf(stats) !== record.pre.kind)) await attempt(record.path, 'removing', () => removeTree(target));
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
      await attempt(record.path, 'restoring the file', () => restoreFile(target, pre, blobs));
    } else if (pre.kind === 'symlink') {
      await attempt(record.path, 'restoring the link', () => restoreSymlink(target, pre));
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

async function restoreFile(target: Buffer, pre: PreimageOf<'file'>, blobs: BlobReader): Promise<string | undefined> {
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
    await chmod(temporary, pre.mode);
    await utimes(temporary, pre.atimeMs / 1000, pre.mtimeMs / 1000);
    await rename(temporary, target);
    return problem;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

async function restoreSymlink(target: Buffer, pre: PreimageOf<'symlink'>): Promise<string | undefined> {
  const temporary = temporarySibling(target);
  try {
    await symlink(bytesFromName(pre.target), temporary);
    await restoreOwner(temporary, pre);
    const problem = pre.xattrs ? await writeXattrs(temporary, true, pre.xattrs, true) : undefined;
    await lutimes(temporary, pre.atimeMs / 1000, pre.mtimeMs / 1000);
    await rename(temporary, target);
    return problem;
  } finally {
    await unlink(temporary).catch(() => {});
  }
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

/** Same pattern as the sync's own temporaries, so the scan ignores a crash's leftovers and rollback removes them. */
function temporarySibling(target: Buffer): Buffer {
  const directory = target.subarray(0, target.lastIndexOf(0x2f) + 1);
  return Buffer.concat([directory, Buffer.from(`.clud-sync-${randomBytes(6).toString('hex')}.tmp`)]);
}
