// Replacing or deleting one file or link so that no version that was ever complete at the path
// can be lost to a writer racing us (an editor's write-temp-and-rename, or an in-place
// truncate-and-write). A check followed by a rename cannot promise that: a writer between the two
// loses its version. Instead, the version that is there is first moved aside (a rename captures
// exactly the inode that was at the name), then checked, and the new version is linked into place
// (link refuses to replace anything that appeared meanwhile). Whatever was moved aside ends up in
// exactly one of three places: back at the path, in the kept folder, or removed only once it is
// known to be the expected version (which the caller has already saved, e.g. as the undo step's
// preimage, or may drop, e.g. an unchanged version already on the other side). docs/ARCHITECTURE.md
// (Apply) gives the argument and its limits. Every write of the sync, resolve, backup restore and
// undo goes through here; nothing else replaces a file the user may be editing.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, futimesSync, linkSync, lstatSync, openSync, read, readlinkSync, renameSync, unlinkSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { chmod, lstat, lutimes, mkdir, open, readlink, symlink, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { permissionBits } from './entry';
import { copyContents, isRacy, lstatSyncOrUndefined, writeWhole } from './fsEntry';
import { joinBytes, nameFromBytes } from './pathCodec';

/** What the caller found at the target and decided may be replaced. */
export interface Expectation {
  /** The lstat the decision was based on; undefined: nothing was there (a creation). */
  found: Stats | undefined;
  /**
   * The clock before the look the decision was based on (the lstat that gave `found`, or the scan
   * whose metadata it matched): a file rewritten since within the tick of its mtime shows no
   * other metadata, so an mtime within a tick of this (isRacy) needs the content compared.
   */
  foundAt: number;
  /** The content the displaced file must have (sha256, hex); without it, only metadata is compared. */
  hash?: string;
  /** The target the displaced link must have. */
  linkTarget?: string;
}

/** Where a displaced version the caller may not drop is copied; returns the kept copy's path. */
export type KeepAside = (aside: Buffer, stats: Stats, reason: KeepReason) => Promise<string>;

/**
 * Why a displaced version was kept: the caller asked (`requested`, a conflict's loser); it was not
 * the expected version and the path was taken meanwhile (`displaced`); or someone wrote into it
 * through a descriptor opened before it was moved aside (`written-after`).
 */
export type KeepReason = 'requested' | 'displaced' | 'written-after';

export type ReplaceResult =
  | { ok: true; kept: KeptCopy[] }
  /** Nothing at the path changed for good: the change is not carried out (what was there is back, or kept). */
  | { ok: false; reason: string; kept: KeptCopy[] };

export interface KeptCopy {
  keptAt: string;
  reason: KeepReason;
}

export interface ReplaceOptions {
  /** Keep the displaced version even when it is the expected one (a conflict's losing version). */
  keepDisplaced?: boolean;
  keep: KeepAside;
  /**
   * Called at each point where another writer could interleave (for tests, which put a real
   * writer there): after the target was moved aside, and after the moved-aside version was
   * verified (and kept, if asked).
   */
  between?: (point: 'moved-aside' | 'verified', aside: Buffer) => Promise<void> | void;
}

// Errors of link() on file systems without hard links: there, the old check-then-rename is used.
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'ENOSYS', 'EMLINK']);

// As the apply's source reads: never follow a link, never block on a FIFO.
const ASIDE_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A sibling name matching the built-in exclude `.clud-sync-*.tmp`: the scan never syncs it, a rollback removes it. */
export function temporarySibling(target: Buffer): Buffer {
  const directory = target.subarray(0, target.lastIndexOf(0x2f) + 1);
  return Buffer.concat([directory, Buffer.from(`.clud-sync-${randomBytes(6).toString('hex')}.tmp`)]);
}

/**
 * The mode and times a staged file gets before it is linked into place. One function, so that
 * everything written takes the same attributes. Through a descriptor (the writer's, or one opened
 * with O_NOFOLLOW): chmod and utimes by path would follow a symlink swapped in for the staged
 * name, onto whatever it points at. Synchronous, like the rest of a small file's apply (apply.ts).
 */
export function setStagedAttributes(staged: Buffer | number, attributes: { mode: number; mtimeMs: number; atimeMs?: number }): void {
  const fd = Buffer.isBuffer(staged) ? openSync(staged, ASIDE_OPEN_FLAGS) : staged;
  try {
    fchmodSync(fd, attributes.mode);
    futimesSync(fd, (attributes.atimeMs ?? attributes.mtimeMs) / 1000, attributes.mtimeMs / 1000);
  } finally {
    if (fd !== staged) closeSync(fd);
  }
}

/**
 * Puts `staged` (a file or link next to `target`, consumed either way) at `target`, or deletes
 * what is at `target` when `staged` is undefined, provided what is there is `expect`'s version.
 * Folders are not handled here: mkdir (EEXIST) and rmdir (ENOTEMPTY) are already atomic.
 */
export async function replaceChecked(target: Buffer, staged: Buffer | undefined, expect: Expectation, options: ReplaceOptions): Promise<ReplaceResult> {
  try {
    if (!expect.found) {
      if (!staged) return { ok: true, kept: [] };
      return linkInto(staged, target) ? { ok: true, kept: [] } : { ok: false, reason: 'created since the scan', kept: [] };
    }
    if (expect.found.isDirectory()) throw new Error('replaceChecked does not replace folders');
    const aside = temporarySibling(target);
    // From the rename to the link the path does not exist (a reader gets ENOENT): every call in
    // between is synchronous, so no other work of the apply runs there, unless a content check
    // or a kept copy is needed.
    try {
      renameSync(target, aside);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { ok: false, reason: 'deleted since the scan', kept: [] };
      throw error;
    }
    // From here the displaced inode has only the aside name: every path below ends by putting it
    // back, keeping it, or removing it once verified.
    return await settleAside(target, aside, staged, expect, options);
  } finally {
    if (staged) removeStaged(staged);
  }
}

async function settleAside(target: Buffer, aside: Buffer, staged: Buffer | undefined, expect: Expectation, options: ReplaceOptions): Promise<ReplaceResult> {
  const kept: KeptCopy[] = [];
  let descriptor: number | undefined;
  try {
    if (expect.found!.isFile()) {
      // The descriptor sees the inode whatever happens to its names: it tells afterwards whether
      // a writer that opened the file before it was moved aside wrote into it.
      try {
        descriptor = openSync(aside, ASIDE_OPEN_FLAGS);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ELOOP' && code !== 'ENXIO') throw error; // not a regular file: verify says so
      }
    }
    if (options.between) await options.between('moved-aside', aside);
    const checked = verifyAside(aside, descriptor, expect);
    const verified = checked instanceof Promise ? await checked : checked;
    if (!verified.ok) {
      // Not the version the decision was about: back where it was, or kept if the path is taken.
      if (await putBack(aside, target)) return { ok: false, reason: verified.reason, kept };
      const seenAt = Date.now();
      const stats = await lstat(aside);
      kept.push({ keptAt: await options.keep(aside, stats, 'displaced'), reason: 'displaced' });
      await removeAside(aside, descriptor, { stats, seenAt }, options, kept);
      return { ok: false, reason: `${verified.reason}, and the path was taken meanwhile`, kept };
    }
    if (options.keepDisplaced) {
      try {
        kept.push({ keptAt: await options.keep(aside, verified.stats, 'requested'), reason: 'requested' });
      } catch (error) {
        if (!(await putBack(aside, target))) {
          // Neither kept nor back: leave the aside in place rather than remove it (a rollback or the user finds it).
          throw new Error(`${(error as Error).message}; the replaced version is left at ${nameFromBytes(aside)}`);
        }
        throw error;
      }
    }
    if (options.between) await options.between('verified', aside);
    if (staged && !linkInto(staged, target)) {
      // Someone created the path meanwhile: theirs stays, the change is skipped, and the
      // displaced version (the expected one) cannot go back, so it is kept.
      if (!options.keepDisplaced) kept.push({ keptAt: await options.keep(aside, verified.stats, 'displaced'), reason: 'displaced' });
      await removeAside(aside, descriptor, verified, options, kept);
      return { ok: false, reason: 'created since the scan', kept };
    }
    await removeAside(aside, descriptor, verified, options, kept);
    return { ok: true, kept };
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

/** `seenAt`: the clock read before `stats` were taken, for telling a later same-tick write (isRacy). */
type Verified = { ok: true; stats: Stats; seenAt: number; hash?: string } | { ok: false; reason: string };

/**
 * Whether the moved-aside inode is the one found, unchanged: same inode, type, size, mtime and
 * mode, and the expected content or link target. Synchronous (see replaceChecked) but for the
 * content comparison a racy mtime needs, which returns a promise.
 */
function verifyAside(aside: Buffer, descriptor: number | undefined, expect: Expectation): Verified | Promise<Verified> {
  const found = expect.found!;
  const seenAt = Date.now();
  const stats = descriptor !== undefined ? fstatSync(descriptor) : lstatSync(aside);
  if (found.isFile() !== stats.isFile() || found.isSymbolicLink() !== stats.isSymbolicLink()) return { ok: false, reason: 'type changed since the scan' };
  if (stats.ino !== found.ino || stats.dev !== found.dev) return { ok: false, reason: 'replaced since the scan' };
  if (stats.isSymbolicLink()) {
    if (expect.linkTarget !== undefined && nameFromBytes(readlinkSync(aside, { encoding: 'buffer' })) !== expect.linkTarget) return { ok: false, reason: 'link retargeted since the scan' };
    return { ok: true, stats, seenAt };
  }
  if (descriptor === undefined) return { ok: false, reason: 'type changed since the scan' };
  if (stats.size !== found.size || stats.mtimeMs !== found.mtimeMs || (stats.mode & 0o7777) !== (found.mode & 0o7777)) return { ok: false, reason: 'modified since the scan' };
  if (expect.hash !== undefined && isRacy(found.mtimeMs, expect.foundAt)) {
    return hashDescriptor(descriptor).then((hash): Verified => (hash === expect.hash ? { ok: true, stats, seenAt, hash } : { ok: false, reason: 'modified since the scan' }));
  }
  return { ok: true, stats, seenAt, hash: expect.hash };
}

/**
 * Removes the aside name. For a file, the descriptor is checked afterwards: a writer that opened
 * the file before it was moved aside may have written into it since it was verified (or kept);
 * then what it wrote is salvaged into the kept folder, read through the descriptor.
 */
async function removeAside(aside: Buffer, descriptor: number | undefined, verified: { stats: Stats; seenAt: number; hash?: string }, options: ReplaceOptions, kept: KeptCopy[]): Promise<void> {
  await unlink(aside);
  if (descriptor === undefined) return;
  const now = fstatSync(descriptor);
  // unlink moves ctime; a write moves mtime (or, in the same tick, possibly only the content).
  let changed = now.size !== verified.stats.size || now.mtimeMs !== verified.stats.mtimeMs;
  // Without a verified hash there is nothing to compare a same-tick rewrite with.
  if (!changed && verified.hash !== undefined && isRacy(verified.stats.mtimeMs, verified.seenAt)) changed = (await hashDescriptor(descriptor)) !== verified.hash;
  if (!changed) return;
  const salvage = temporarySibling(aside);
  try {
    await copyFromDescriptor(descriptor, salvage, now);
    kept.push({ keptAt: await options.keep(salvage, await lstat(salvage), 'written-after'), reason: 'written-after' });
  } finally {
    await unlink(salvage).catch(() => {});
  }
}

const readAt = promisify(read);

async function hashDescriptor(descriptor: number): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 16);
  for (let position = 0; ; ) {
    const { bytesRead } = await readAt(descriptor, buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest('hex');
}

async function copyFromDescriptor(descriptor: number, destination: Buffer, stats: Stats): Promise<void> {
  const out = await open(destination, 'wx', 0o600);
  try {
    const buffer = Buffer.allocUnsafe(1 << 16);
    for (let position = 0; ; ) {
      const { bytesRead } = await readAt(descriptor, buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      await writeWhole(out, buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    setStagedAttributes(out.fd, { mode: permissionBits(stats.mode), mtimeMs: stats.mtimeMs });
  } finally {
    await out.close();
  }
}

/**
 * link(), which refuses an existing name; false when the name is taken. Synchronous, like the
 * rest of a small file's apply (see apply.ts): one call whose hop through libuv's pool costs more
 * than the call.
 */
function linkInto(source: Buffer, target: Buffer): boolean {
  try {
    linkSync(source, target);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!LINK_UNSUPPORTED.has(code)) throw error;
    // No hard links on this file system (some network and FUSE mounts): the old way, check then
    // rename, which leaves a window between the two where a version created meanwhile is lost.
    if (lstatSyncOrUndefined(target)) return false;
    renameSync(source, target);
    return true;
  }
}

/** Removes a staged name that was not consumed (or was, by a link: the file stays at the target). */
export function removeStaged(staged: Buffer): void {
  try {
    unlinkSync(staged);
  } catch {
    // Gone already (consumed by a rename), or never made: nothing to remove.
  }
}

/** The aside back at the target when the target is free; false when it is taken (the aside stays). */
async function putBack(aside: Buffer, target: Buffer): Promise<boolean> {
  if (!linkInto(aside, target)) return false;
  await unlink(aside).catch(() => {}); // gone already when linkInto fell back to a rename
  return true;
}

/**
 * A KeepAside that copies into `<keepRoot>/<key>` (a second copy of one key gets `~2`, `~3`, …),
 * with the version's mode and mtime. Kept copies live outside both trees, usually on another
 * mount, so they are copies, not links.
 */
export function keepUnder(keepRoot: string, key: string): KeepAside {
  return async (aside, stats) => {
    const base = joinBytes(keepRoot, key);
    await mkdir(base.subarray(0, base.lastIndexOf(0x2f)), { recursive: true });
    for (let attempt = 1; ; attempt += 1) {
      const kept = attempt === 1 ? base : Buffer.concat([base, Buffer.from(`~${attempt}`)]);
      try {
        if (stats.isSymbolicLink()) {
          await symlink(await readlink(aside, { encoding: 'buffer' }), kept);
        } else {
          await copyContents(aside, kept, { exclusive: true });
          await chmod(kept, permissionBits(stats.mode));
        }
        await lutimes(kept, stats.atimeMs / 1000, stats.mtimeMs / 1000);
        return nameFromBytes(kept);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 1000) throw error;
      }
    }
  };
}
