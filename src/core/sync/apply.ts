// The apply step: carries out reconcile's changes on disk. Before touching a path it checks the
// path is still what the scan saw; if someone changed it since, the change is skipped and
// reported, never clobbered. Files are written to a temporary name and renamed into place.
import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, open, rename, rmdir, symlink, unlink, utimes } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { permissionBits } from './entry';
import type { Entry, FileEntry } from './entry';
import { copyContents, matchesExpected, nonFolderAncestor } from './fsEntry';
import { bytesFromName, joinBytes, nameFromBytes } from './pathCodec';
import type { Change, Side } from './reconcile';

export interface ApplyOptions {
  /** Absolute roots of the two trees. */
  roots: Record<Side, string>;
  /** Where losing versions are kept (outside both trees): `<keepDir>/<side>/<path>`. */
  keepDir: string;
  /** The tree a change to each side copies from; by default the other side's root (a restore copies from a backup). */
  sources?: Record<Side, string>;
  /**
   * Called before anything is written for a change, staging included (the undo log captures the
   * path's preimage here), with what the apply found at the path just before (its lstat; undefined:
   * nothing), so the hook need not look again. An error it throws that `isFatal` accepts stops
   * the whole apply.
   */
  beforeModify?: (change: Change, found: Stats | undefined) => Promise<void>;
  /** Called once a change is carried out, before anything else touches its path (the undo log notes what the change left). */
  afterModify?: (change: Change) => void;
  /** Errors that must stop applying instead of skipping one change (e.g. a denied safeguard). */
  isFatal?: (error: unknown) => boolean;
  /**
   * Who gets what the apply creates on a side (files, links, folders), before it is linked into
   * place; a side without an owner keeps the running user's. The agent gives what it writes in
   * /workspace to the workspace user, and writes to the host as the folder's owner.
   */
  owners?: Partial<Record<Side, { uid: number; gid: number }>>;
}

/** Gives a staged entry its owner (lchown clears setuid/setgid too), then its permission bits. */
async function ownAndMode(staged: Buffer, mode: number | undefined, owner: { uid: number; gid: number } | undefined): Promise<void> {
  if (owner) await lchown(staged, owner.uid, owner.gid);
  if (mode !== undefined) await chmod(staged, permissionBits(mode));
}

export interface SkippedChange {
  change: Change;
  reason: string;
}

export interface KeptVersion {
  path: string;
  side: Side;
  /** Absolute path of the kept copy. */
  keptAt: string;
}

export interface ApplyOutcome {
  applied: Change[];
  skipped: SkippedChange[];
  kept: KeptVersion[];
  bytesCopied: number;
}

const otherSide = (side: Side): Side => (side === 'host' ? 'container' : 'host');

/** How many changes of one batch run at once: file system latency, not CPU, bounds a sync. */
const CONCURRENCY = 16;

/**
 * Applies changes in the order reconcile gave them (deletions deepest-first, then creations
 * shallowest-first). Consecutive changes of the same kind and depth never contain one another, so
 * each such batch runs concurrently; batches run one after the other, keeping the order's promise
 * that a folder is empty before it goes and exists before its children arrive.
 */
export async function applyChanges(changes: readonly Change[], options: ApplyOptions): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = { applied: [], skipped: [], kept: [], bytesCopied: 0 };
  const results = new Map<Change, string | undefined>();
  let fatal: { error: unknown } | undefined;
  for (const batch of batches(changes)) {
    let next = 0;
    const worker = async () => {
      while (next < batch.length && !fatal) {
        const change = batch[next++]!;
        try {
          results.set(change, await applyOne(change, options, outcome));
        } catch (error) {
          if (options.isFatal?.(error)) fatal ??= { error };
          else results.set(change, (error as Error).message);
        }
      }
    };
    // Every worker finishes its current change before a fatal error is passed on.
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, batch.length) }, worker));
    if (fatal) throw fatal.error;
  }
  // Reported in the given order, whatever order the batch finished in.
  for (const change of changes) {
    const reason = results.get(change);
    if (reason) outcome.skipped.push({ change, reason });
    else outcome.applied.push(change);
  }
  return outcome;
}

function batches(changes: readonly Change[]): Change[][] {
  const result: Change[][] = [];
  let key = '';
  for (const change of changes) {
    const changeKey = `${change.next === undefined ? 'delete' : 'write'}:${change.path.split('/').length}`;
    if (changeKey !== key || result.length === 0) {
      result.push([]);
      key = changeKey;
    }
    result[result.length - 1]!.push(change);
  }
  return result;
}

/** Returns why the change was skipped, or undefined when it was applied. */
async function applyOne(change: Change, options: ApplyOptions, outcome: ApplyOutcome): Promise<string | undefined> {
  const target = joinBytes(options.roots[change.side], change.path);
  // A parent replaced by a symlink since the scan would send this write outside the tree.
  const blocked = nonFolderAncestor(options.roots[change.side], change.path);
  if (blocked) return `parent ${blocked} is no longer a folder`;
  const current = await matchesExpected(target, change.expected);
  if (!current.ok) return current.reason;
  // Before staging: the temporary sibling already changes the parent folder's mtime.
  await options.beforeModify?.(change, current.stats);

  let staged: Buffer | undefined;
  if (change.next?.kind === 'file') {
    // Copy first, then check what was copied is what reconcile decided on: the source may have
    // changed since the scan, and then this change is skipped and the next sync sees the edit.
    const source = joinBytes(options.sources?.[change.side] ?? options.roots[otherSide(change.side)], change.path);
    staged = await stageFile(source, target, change.next, options.owners?.[change.side]);
    if (!staged) return 'source changed since the scan';
    outcome.bytesCopied += change.next.size;
  } else if (change.next?.kind === 'symlink') {
    staged = temporarySibling(target);
    await symlink(bytesFromName(change.next.target), staged);
    await ownAndMode(staged, undefined, options.owners?.[change.side]);
  }

  try {
    if (change.keepLoser && change.expected && change.expected.kind !== 'directory') {
      outcome.kept.push(await keepVersion(target, change, options.keepDir));
    }
    await removeExisting(target, change.expected, change.next);
    if (change.next?.kind === 'directory') {
      const created = await mkdir(target, { mode: 0o700 }).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
          return false;
        },
      );
      await ownAndMode(target, change.next.mode, created ? options.owners?.[change.side] : undefined);
    } else if (staged) {
      await rename(staged, target);
      staged = undefined;
    }
    options.afterModify?.(change);
    return undefined;
  } finally {
    if (staged) await unlink(staged).catch(() => {});
  }
}


/** Removes what is at the target unless the next state can replace it in place. */
async function removeExisting(target: Buffer, expected: Entry | undefined, next: Entry | undefined): Promise<void> {
  if (!expected) return;
  if (expected.kind === 'directory') {
    // A directory stays when it stays a directory; otherwise reconcile already removed its
    // children (deletions come first), and rmdir refuses if something new appeared inside.
    if (next?.kind !== 'directory') await rmdir(target);
    return;
  }
  // Files and links are replaced by rename; only a deletion or a change to a directory unlinks.
  if (!next || next.kind === 'directory') await unlink(target);
}

// O_NOFOLLOW and O_NONBLOCK as in the scan: a source swapped for a symlink is not followed and one
// swapped for a FIFO does not block; only a regular file is read, and never past the size we expect.
const SOURCE_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

async function stageFile(source: Buffer, target: Buffer, next: FileEntry, owner: { uid: number; gid: number } | undefined): Promise<Buffer | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(source, SOURCE_OPEN_FLAGS);
  } catch (error) {
    // Gone, or now a symlink (ELOOP): a change for the next sync, not a failure.
    if (['ENOENT', 'ELOOP', 'ENOTDIR', 'ENXIO'].includes((error as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw error;
  }
  const staged = temporarySibling(target);
  try {
    if (!(await handle.stat()).isFile()) return undefined;
    const hash = createHash('sha256');
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    // One byte past the expected size is enough to tell a grown file from the one we chose.
    await pipeline(handle.createReadStream({ start: 0, end: next.size, autoClose: false }), hasher, createWriteStream(staged, { mode: 0o600 }));
    if (hash.digest('hex') !== next.hash) {
      await unlink(staged);
      return undefined;
    }
    await ownAndMode(staged, next.mode, owner);
    await utimes(staged, next.mtimeMs / 1000, next.mtimeMs / 1000);
    return staged;
  } catch (error) {
    await unlink(staged).catch(() => {});
    throw error;
  } finally {
    await handle.close();
  }
}

function temporarySibling(target: Buffer): Buffer {
  // Matches the built-in exclude `.clud-sync-*.tmp`, so a crash's leftovers are never synced.
  const directory = target.subarray(0, target.lastIndexOf(0x2f) + 1);
  return Buffer.concat([directory, Buffer.from(`.clud-sync-${randomBytes(6).toString('hex')}.tmp`)]);
}

/** Copies the version about to be overwritten or deleted to `<keepDir>/<side>/<path>`. */
async function keepVersion(target: Buffer, change: Change, keepDir: string): Promise<KeptVersion> {
  const keptBytes = joinBytes(path.join(keepDir, change.side), change.path);
  await mkdir(keptBytes.subarray(0, keptBytes.lastIndexOf(0x2f)), { recursive: true });
  if (change.expected?.kind === 'symlink') {
    await symlink(bytesFromName(change.expected.target), keptBytes);
  } else {
    await copyContents(target, keptBytes);
    if (change.expected?.kind === 'file') {
      await chmod(keptBytes, permissionBits(change.expected.mode));
      await lutimes(keptBytes, change.expected.mtimeMs / 1000, change.expected.mtimeMs / 1000);
    }
  }
  return { path: change.path, side: change.side, keptAt: nameFromBytes(keptBytes) };
}
