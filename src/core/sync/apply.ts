// The apply step: carries out reconcile's changes on disk. Before touching a path it checks the
// path is still what the scan saw; if someone changed it since, the change is skipped and
// reported, never clobbered. Files are staged under a temporary name and put in place by
// replaceChecked, which moves the old version aside and checks it first, so that a writer racing
// the apply never loses a version (see replaceChecked.ts). Every operation names its path through
// the parent folder pinned by beneath.ts, so a folder swapped for a symlink meanwhile is never
// followed out of the tree.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { lchown, mkdir, open, rmdir, symlink, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { permissionBits } from '../files/entry';
import type { CapturedVersion, Entry, FileEntry } from '../files/entry';
import { PinnedFolders } from './beneath';
import { SOURCE_CHANGED_CODES, SOURCE_OPEN_FLAGS, STAGED_OPEN_FLAGS, stageSmallFile } from './stageSmallFile';
import type { StageRequest, StageResult } from './stageSmallFile';
import { STAGING_THREADS_MIN_FILES, stagingThreads } from './stagingThreads';
import type { PinFailure } from './beneath';
import { lstatOrUndefined, matchesExpected, writeWhole } from '../files/fsEntry';
import { bytesFromName } from '../files/pathCodec';
import { forEachLimited, Limiter } from '../limited';
import type { SkipCode } from '../protocol';
import { otherSide } from './reconcile';
import type { Change, Side } from './reconcile';
import { keepUnder, removeStaged, replaceChecked, setStagedAttributes, temporarySibling } from '../files/replaceChecked';
import type { Expectation, ReplaceResult } from '../files/replaceChecked';

export interface ApplyOptions {
  /** Absolute roots of the two trees. */
  roots: Record<Side, string>;
  /** Where losing versions are kept (outside both trees): `<keepDir>/<side>/<path>`. */
  keepDir: string;
  /** The tree a change to each side copies from; by default the other side's root (a restore copies from a backup). */
  sources?: Record<Side, string>;
  /**
   * The clock before the scan the changes were decided on. A file rewritten since within the
   * tick of its last change keeps its size and times, so a target whose mtime is within a tick of
   * this has its content compared before it is replaced (see replaceChecked). Without it, each
   * target's own lstat at its change stands for the decision.
   */
  decidedAt?: number;
  /**
   * Called before anything is written for a change, staging included (the undo log checks here
   * that the preimage it captured is still what is at the path), with what the apply found at the
   * path just before (its lstat; undefined: nothing), so the hook need not look again. It returns
   * the version it saved, if any: the change goes ahead only if that is the version the scan saw.
   * An error it throws that `isFatal` accepts stops the whole apply.
   */
  beforeModify?: (change: Change, found: Stats | undefined) => Promise<CapturedVersion | void>;
  /** Called once a change is carried out, before anything else touches its path (the undo log notes what the change left). */
  afterModify?: (change: Change) => void;
  /** Errors that must stop applying instead of skipping one change (e.g. a cancelled sync). */
  isFatal?: (error: unknown) => boolean;
  /**
   * Who gets what the apply creates on a side (files, links, folders), before it is linked into
   * place; a side without an owner keeps the running user's. The agent gives what it writes in
   * /workspace to the workspace user, and writes to the host as the folder's owner.
   */
  owners?: Partial<Record<Side, { uid: number; gid: number }>>;
}

/**
 * Gives an entry the apply made its owner (a chown clears setuid/setgid too), then its permission
 * bits. The mode goes through a descriptor opened with O_NOFOLLOW: chmod by path would follow a
 * symlink put in the entry's place meanwhile.
 */
async function ownAndMode(entry: Buffer, mode: number | undefined, owner: { uid: number; gid: number } | undefined): Promise<void> {
  if (mode === undefined) {
    if (owner) await lchown(entry, owner.uid, owner.gid);
    return;
  }
  const handle = await open(entry, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (owner) await handle.chown(owner.uid, owner.gid);
    await handle.chmod(permissionBits(mode));
  } finally {
    await handle.close();
  }
}

export interface SkippedChange {
  change: Change;
  /** Stable: what callers decide on (e.g. whether another cycle may carry the change). */
  code: SkipCode;
  reason: string;
}

interface Skip {
  code: SkipCode;
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

/**
 * How many changes of one batch are under way at once. File system latency, not CPU, bounds a
 * sync, and the staging threads get their work in batches as big as this allows: with 16 under
 * way, two threads applied 1,000 new files no faster than the agent's thread alone; with 256,
 * in 0.6 times its time (bench/profileApply.ts).
 */
const CONCURRENCY = 256;

/**
 * The longest the apply keeps the event loop to itself: a small file is copied with synchronous
 * calls (stageSmallFile), and a batch of them would otherwise hold off watcher events, clients'
 * requests and timers until it ends.
 */
const YIELD_AFTER_MS = 20;

/**
 * Applies changes in the order reconcile gave them (deletions deepest-first, then creations
 * shallowest-first). Consecutive changes of the same kind and depth never contain one another, so
 * each such batch runs concurrently; batches run one after the other, keeping the order's promise
 * that a folder is empty before it goes and exists before its children arrive.
 */
export async function applyChanges(changes: readonly Change[], options: ApplyOptions): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = { applied: [], skipped: [], kept: [], bytesCopied: 0 };
  const results = new Map<Change, Skip | undefined>();
  // One turn of the event loop for all the batch's workers at once: each awaiting its own would
  // run its next stretch in the same turn as the others'.
  let yieldedAt = performance.now();
  let turn: Promise<void> | undefined;
  const yieldIfDue = (): Promise<void> | undefined => {
    if (!turn && performance.now() - yieldedAt >= YIELD_AFTER_MS) {
      turn = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        turn = undefined;
        yieldedAt = performance.now();
      });
    }
    return turn;
  };
  const stageSmall = smallFileStager(changes);
  for (const batch of batches(changes)) {
    const pins = new PinnedFolders();
    const run: BatchRun = { outcome, pins, stageSmall, yieldIfDue };
    try {
      // Every change under way finishes before a fatal error is passed on; none starts after it.
      await forEachLimited(
        batch,
        CONCURRENCY,
        async (change) => {
          await yieldIfDue();
          try {
            results.set(change, await applyOne(change, options, run));
          } catch (error) {
            if (options.isFatal?.(error)) throw error;
            results.set(change, { code: 'failed', reason: (error as Error).message });
          }
        },
        { stopOnFailure: true },
      );
    } finally {
      pins.close();
    }
  }
  // Reported in the given order, whatever order the batch finished in.
  for (const change of changes) {
    const skip = results.get(change);
    if (skip) outcome.skipped.push({ change, ...skip });
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

/** Why a change whose parent folder could not be pinned is skipped. */
function pinSkip(failure: PinFailure, change: Change): Skip {
  if (failure.code === 'parent-replaced') return { code: 'parent-replaced', reason: `parent ${failure.at} is no longer a folder` };
  return { code: 'changed-since-scan', reason: change.expected ? 'deleted since the scan' : `parent ${failure.at} deleted since the scan` };
}

/** What the changes of one batch share: the apply's outcome, the batch's pinned folders, how small files are staged, the turn they give way in. */
interface BatchRun {
  outcome: ApplyOutcome;
  pins: PinnedFolders;
  stageSmall: SmallFileStager;
  /** Lets the event loop turn when the apply has run long without: awaited before each synchronous stretch. */
  yieldIfDue: () => Promise<void> | undefined;
}

/** Returns why the change was skipped, or undefined when it was applied. */
async function applyOne(change: Change, options: ApplyOptions, run: BatchRun): Promise<Skip | undefined> {
  // A parent replaced by a symlink since the scan would send this change outside the tree: every
  // name below is resolved in the parent folder as it was reached, without following a symlink.
  const pinned = run.pins.pinParent(options.roots[change.side], change.path);
  if (!pinned.ok) return pinSkip(pinned, change);
  return applyPinned(change, pinned.path, options, run);
}

/** applyOne with the target named inside its pinned parent folder. */
async function applyPinned(change: Change, target: Buffer, options: ApplyOptions, { outcome, pins, stageSmall, yieldIfDue }: BatchRun): Promise<Skip | undefined> {
  // What a displaced version's mtime is judged against (see ApplyOptions.decidedAt).
  const decidedAt = options.decidedAt ?? Date.now();
  const current = await matchesExpected(target, change.expected);
  if (!current.ok) return { code: current.code, reason: current.reason };
  // Before staging: the temporary sibling already changes the parent folder's mtime.
  const captured = await options.beforeModify?.(change, current.stats);
  // The version the undo step saved must be the one the scan saw, or replacing it would lose
  // the one in between (a same-tick rewrite the metadata could not tell).
  if (captured && !sameVersion(captured, change.expected)) return { code: 'changed-since-scan', reason: 'modified since the scan' };

  let staged: Buffer | undefined;
  if (change.next?.kind === 'file') {
    // Copy first, then check what was copied is what reconcile decided on: the source may have
    // changed since the scan, and then this change is skipped and the next sync sees the edit.
    // The source is read through its own pinned parent: a folder of /workspace swapped for a link
    // must not make the agent read (and carry to the host) what the link points at.
    const source = pins.pinParent(options.sources?.[change.side] ?? options.roots[otherSide(change.side)], change.path);
    if (!source.ok) return { code: 'source-changed', reason: 'source changed since the scan' };
    staged = await stageFile(source.path, target, change.next, options.owners?.[change.side], stageSmall);
    if (!staged) return { code: 'source-changed', reason: 'source changed since the scan' };
    outcome.bytesCopied += change.next.size;
  } else if (change.next?.kind === 'symlink') {
    staged = temporarySibling(target);
    await symlink(bytesFromName(change.next.target), staged);
    await ownAndMode(staged, undefined, options.owners?.[change.side]);
  }

  // Every worker whose staging ended in this turn goes on to its synchronous replace: the turn is
  // let go first if it has run long.
  await yieldIfDue();
  const expected = change.expected;
  const keep = keepUnder(path.join(options.keepDir, change.side), change.path);
  const record = (kept: ReplaceResult['kept']) => {
    for (const copy of kept) outcome.kept.push({ path: change.path, side: change.side, keptAt: copy.keptAt });
  };
  try {
    // A folder goes by rmdir, which refuses if something new appeared inside; one that stays a
    // folder only changes mode. Reconcile has removed its children before (deletions come first).
    if (expected?.kind === 'directory' && change.next?.kind !== 'directory') await rmdir(target);
    const replacesContent = expected !== undefined && expected.kind !== 'directory';
    if (change.next?.kind === 'directory') {
      if (replacesContent) {
        const removed = await replaceChecked(target, undefined, expectation(current.stats, decidedAt, expected), { keep, keepDisplaced: change.keepLoser });
        record(removed.kept);
        if (!removed.ok) return { code: 'changed-since-scan', reason: removed.reason };
      }
      // Made private, then given to the side's owner with its mode: never reachable by the
      // workspace user before it is theirs.
      const made = await mkdir(target, { mode: 0o700 }).then(
        () => 'created' as const,
        async (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
          // A folder that appeared meanwhile is merged into; anything else is someone's new file.
          return (await lstatOrUndefined(target))?.isDirectory() === true ? ('existing' as const) : ('taken' as const);
        },
      );
      if (made === 'taken') return { code: 'changed-since-scan', reason: 'created since the scan' };
      try {
        await ownAndMode(target, change.next.mode, made === 'created' ? options.owners?.[change.side] : undefined);
      } catch (error) {
        // Moved away, or replaced by a link, since it was made or found: the next sync sees why.
        if (['ENOENT', 'ELOOP'].includes((error as NodeJS.ErrnoException).code ?? '')) return { code: 'changed-since-scan', reason: 'replaced since the scan' };
        throw error;
      }
    } else if (staged || replacesContent) {
      const written = await replaceChecked(target, staged, expectation(replacesContent ? current.stats : undefined, decidedAt, expected), { keep, keepDisplaced: change.keepLoser });
      staged = undefined; // consumed
      record(written.kept);
      if (!written.ok) return { code: 'changed-since-scan', reason: written.reason };
    }
    options.afterModify?.(change);
    return undefined;
  } finally {
    if (staged) removeStaged(staged);
  }
}

/** What replaceChecked checks the displaced version against: the lstat the apply made (the scan's metadata), and the scan's content. */
function expectation(found: Stats | undefined, decidedAt: number, expected: Entry | undefined): Expectation {
  return { found, foundAt: decidedAt, hash: expected?.kind === 'file' ? expected.hash : undefined, linkTarget: expected?.kind === 'symlink' ? expected.target : undefined };
}

function sameVersion(captured: CapturedVersion, expected: Entry | undefined): boolean {
  if (!expected) return captured.kind === 'absent';
  if (captured.kind !== expected.kind) return false;
  if (captured.kind === 'file' && expected.kind === 'file') return captured.hash === expected.hash;
  if (captured.kind === 'symlink' && expected.kind === 'symlink') return captured.target === expected.target;
  return true;
}

/**
 * Files up to this size are staged with one read, one write and synchronous calls (stageSmallFile.ts):
 * a larger file's copy through two handles and a chunk of its own costs more than the copy of a
 * small file, and a burst of small files is the common case.
 */
const WHOLE_READ_MAX_BYTES = 64 * 1024;
/** Bytes of a larger file read and written at a time. */
const LARGE_CHUNK_BYTES = 256 * 1024;

/** Large files copied at once: each holds two descriptors and a chunk of LARGE_CHUNK_BYTES. */
const streamedCopies = new Limiter(16);

/** How an apply stages its small files: on its own thread, or on the staging threads. */
type SmallFileStager = (request: StageRequest) => StageResult | Promise<StageResult>;

function smallFileStager(changes: readonly Change[]): SmallFileStager {
  const small = changes.filter(({ next }) => next?.kind === 'file' && next.size <= WHOLE_READ_MAX_BYTES).length;
  return small >= STAGING_THREADS_MIN_FILES ? (request) => stagingThreads.stage(request) : stageSmallFile;
}

/**
 * Copies `source` to a new temporary sibling of `target`, if it still has the content reconcile
 * chose; undefined when it changed since the scan. Its owner, mode and mtime are set through the
 * descriptor: the staged name may have been swapped since it was created.
 */
async function stageFile(source: Buffer, target: Buffer, next: FileEntry, owner: { uid: number; gid: number } | undefined, stageSmall: SmallFileStager): Promise<Buffer | undefined> {
  if (next.size <= WHOLE_READ_MAX_BYTES) {
    const staged = temporarySibling(target);
    const result = await stageSmall({ source, staged, size: next.size, hash: next.hash, mode: permissionBits(next.mode), mtimeMs: next.mtimeMs, ...(owner && { owner }) });
    return result === 'staged' ? staged : undefined;
  }
  return streamedCopies.run(() => stageLargeFile(source, target, next, owner));
}

/** stageFile for a file over WHOLE_READ_MAX_BYTES: streamed, and hashed on the way. */
async function stageLargeFile(source: Buffer, target: Buffer, next: FileEntry, owner: { uid: number; gid: number } | undefined): Promise<Buffer | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(source, SOURCE_OPEN_FLAGS);
  } catch (error) {
    if (SOURCE_CHANGED_CODES.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw error;
  }
  const staged = temporarySibling(target);
  try {
    if (!(await handle.stat()).isFile()) return undefined;
    const hash = createHash('sha256');
    // Read and written through the two handles alone: a stream given a descriptor closes it when
    // it fails (ENOSPC), whatever autoClose says, and the handle's own close after it would close
    // whichever file has since been given that number.
    const out = await open(staged, STAGED_OPEN_FLAGS, 0o600);
    try {
      const buffer = Buffer.allocUnsafe(LARGE_CHUNK_BYTES);
      // One byte past the expected size is enough to tell a grown file from the one we chose.
      for (let position = 0; position <= next.size; ) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, next.size + 1 - position), position);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        await writeWhole(out, buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
      if (hash.digest('hex') !== next.hash) {
        await unlink(staged);
        return undefined;
      }
      if (owner) await out.chown(owner.uid, owner.gid);
      setStagedAttributes(out.fd, { mode: permissionBits(next.mode), mtimeMs: next.mtimeMs });
    } finally {
      await out.close();
    }
    return staged;
  } catch (error) {
    await unlink(staged).catch(() => {});
    throw error;
  } finally {
    await handle.close();
  }
}
