// One step being recorded: the write-ahead half of the undo log. Before the caller first changes
// a path, its preimage is captured into the step's in-progress folder: content as a gzip blob,
// then its metadata file (temp + rename). The metadata file is written last, so a path counts as
// captured only once it exists; both are flushed to disk before beforeModify returns, and the
// caller changes the path only after that. close() records postimages, writes the manifest and
// promotes the folder; a crash before that leaves an in-progress folder that UndoLog.open rolls back.
//
// Captures of different paths run concurrently (the apply step announces a batch's changes from
// several workers): indexes, byte counts and deletion counts are updated synchronously; only
// the same path (and the recording of a shared parent) is serialized, as is asking safeguards;
// and one fsync round (group commit) serves every capture waiting at the time.
import { createHash, randomBytes } from 'node:crypto';
import { close as closeFd, createReadStream, createWriteStream, fdatasync, lstatSync, openSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { constants as zlibConstants, createGzip, gzip, gzipSync } from 'node:zlib';
import { writeJsonAtomic } from '../atomicFile';
import { lstatOrUndefined } from '../sync/fsEntry';
import { joinBytes, nameFromBytes } from '../sync/pathCodec';
import { currentPostimage, describeDifference, identityOf, kindOf, nonFolderAncestor, permissions, readTarget } from './fsState';
import type { Manifest, Preimage, StepRecord } from './records';
import { blobName, isUnder, keyDepth, MANIFEST, metaName, parentKey, UNDO_FORMAT_VERSION, UNPROTECTED } from './records';
import { removeTree, restoreRecords } from './restore';
import type { ModifyAction, SafeguardAsk, SafeguardKind, SafeguardQuestion, SafeguardThresholds, StepSummary, UndoLimits } from './types';
import { SafeguardDenied } from './types';
import { readXattrs } from './xattrs';

export interface StepMeta {
  /** The sync this step belongs to (SyncReport.id). */
  syncId: string;
  policy: string;
  /** The host tree root the step's paths are relative to. */
  root: string;
  /** Asked when the step crosses a safeguard. Without it, safeguards allow. */
  ask?: SafeguardAsk;
  thresholds?: Partial<SafeguardThresholds>;
}

/** What the log hands a writer. */
export interface WriterContext {
  id: string;
  /** The in-progress folder of this step (created at the first capture). */
  directory: string;
  /** False when the log is disabled: safeguards still apply, nothing is recorded. */
  persist: boolean;
  captureXattrs: boolean;
  notes: string[];
  limits: UndoLimits;
  thresholds: SafeguardThresholds;
  /** Renames the closed step into the log and applies the limits. */
  promote(manifest: Manifest): Promise<StepSummary>;
  /** The step is over, whatever the outcome: the log may open another. */
  finished(): void;
  beforePromote?: (stepId: string) => void | Promise<void>;
}

interface Captured {
  index: number;
  pre: Preimage;
  /** The flush round after which its files are on disk. */
  round: number;
}

/** A preimage captured ahead by prefetch(): it counts only once the path is announced and found unchanged. */
interface Speculation extends Captured {
  stats: Stats | undefined;
  bytes: number;
}

class StepTooLarge extends Error {}

const gzipAsync = promisify(gzip);
const GZIP_OPTIONS = { level: zlibConstants.Z_BEST_SPEED };
/** Files below this are read and gzipped in memory, in one call each; larger ones are streamed. */
const IN_MEMORY_BYTES = 1024 ** 2;
/** Below this, gzip runs on the main thread: cheaper than a trip to the thread pool. */
const SYNC_GZIP_BYTES = 64 * 1024;
/** How many paths of a folder's subtree are captured at once. */
const SUBTREE_CONCURRENCY = 16;
const PREFETCH_CONCURRENCY = 32;
const MAX_UNSYNCED = 1024;
/** How long prefetch works synchronously before it lets the event loop run. */
const SLICE_MS = 10;

function gzipInMemory(content: Buffer): Promise<Buffer> {
  return content.length < SYNC_GZIP_BYTES ? Promise.resolve(gzipSync(content, GZIP_OPTIONS)) : gzipAsync(content, GZIP_OPTIONS);
}

/** Whether nothing changed at a path between two lstat calls (ctime moves on any change of content, mode, owner or xattrs). */
function sameState(before: Stats | undefined, now: Stats | undefined): boolean {
  if (!before || !now) return before === now;
  return kindOf(before) === kindOf(now) && before.ino === now.ino && before.dev === now.dev && before.size === now.size && before.mtimeMs === now.mtimeMs && before.ctimeMs === now.ctimeMs && before.mode === now.mode && before.uid === now.uid && before.gid === now.gid;
}

export class StepWriter {
  private state: 'open' | 'denied' | 'closed' | 'rolled-back' = 'open';
  private readonly records = new Map<string, Captured>();
  private readonly speculative = new Map<string, Speculation>();
  private speculativeBytes = 0;
  /** Kind of each path the caller announced, as it was before the step (also kept when nothing is captured). */
  private readonly touched = new Map<string, ReturnType<typeof kindOf>>();
  private readonly deletions = new Set<string>();
  private readonly allowed = new Set<SafeguardKind>();
  private readonly startedAt = new Date().toISOString();
  private nextIndex = 1;
  private bytes = 0;
  private folderCreated = false;
  private unprotectedReason?: string;
  private xattrFailures = 0;
  private denial?: SafeguardDenied;
  /** Set the moment a safeguard is denied; settles once the step is rolled back. */
  private denying?: Promise<SafeguardDenied>;
  /** Set the moment the step goes over its limit; settles once its preimages are gone. */
  private unprotecting?: Promise<void>;
  /** forget, close and rollback run one at a time, after every beforeModify under way. */
  private queue: Promise<unknown> = Promise.resolve();
  private exclusivePending = 0;
  private readonly active = new Set<Promise<unknown>>();
  /** Captures (writing into the step folder) under way. */
  private readonly capturesRunning = new Set<Promise<unknown>>();
  /** Per announced path, and per captured path: the last operation on it. */
  private readonly pathLocks = new Map<string, Promise<unknown>>();
  private readonly captureLocks = new Map<string, Promise<unknown>>();
  /** Asking is one question at a time. */
  private asking: Promise<unknown> = Promise.resolve();
  private folderReady?: Promise<void>;
  /** Files (open handles or paths) and folders written since the last flush began. */
  private unsynced: Array<FileHandle | string | number> = [];
  private flushRunning?: Promise<void>;
  private roundsStarted = 0;
  private roundsDone = 0;
  private flushNext?: Promise<void>;
  /** A failed fsync leaves unknown what reached the disk: every later flush fails too. */
  private flushFailure?: { error: unknown };

  constructor(
    private readonly context: WriterContext,
    private readonly meta: StepMeta,
  ) {}

  get id(): string {
    return this.context.id;
  }

  /** Set once a safeguard was denied: the caller must stop and treat none of this sync's changes as applied. */
  get denied(): SafeguardDenied | undefined {
    return this.denial;
  }

  /**
   * Call before the first write, delete, rename, truncate or chmod of `relativePath` (a snapshot
   * key) in this step, and change the path only after it returned; calling it again for a path
   * is cheap. Checks the safeguards (it may wait for `ask`) and throws SafeguardDenied when one
   * is denied, after rolling the step back.
   */
  beforeModify(relativePath: string, action: ModifyAction): Promise<void> {
    const start = (): Promise<void> => {
      const run = this.withLock(this.pathLocks, relativePath, () => this.modify(relativePath, action));
      this.active.add(run);
      const done = () => this.active.delete(run);
      run.then(done, done);
      return run;
    };
    // Behind a forget, close or rollback already asked for, as if all were queued.
    return this.exclusivePending > 0 ? this.queue.then(start) : start();
  }

  /**
   * Optional, before announcing many paths: captures ahead, concurrently and with one flush, the
   * preimages of those among `keys` that are files (under 1 MiB), links or absent. A path's
   * capture counts only when beforeModify later announces it and finds it unchanged since (same
   * inode, size, times, mode, owner); otherwise it is captured again then. Captures of paths
   * never announced are deleted by forget(), close() and rollback(); a crash recovery restores
   * them as well, which leaves them as they were before the step.
   */
  prefetch(keys: readonly string[]): Promise<void> {
    if (this.state !== 'open' || !this.capturing || this.denying || this.exclusivePending > 0) return Promise.resolve();
    const run = (async () => {
      // Folders found on the way (or absent): each is checked once for the whole prefetch.
      const folders = new Set<string>();
      const slice = { started: performance.now() };
      await forEachLimited(keys, PREFETCH_CONCURRENCY, (key) => this.speculate(key, folders, slice).catch(() => {}));
      await this.flush().catch(() => {});
    })();
    this.active.add(run);
    const done = () => this.active.delete(run);
    run.then(done, done);
    return run;
  }

  /**
   * A capture ahead. Small files in the page cache are read, gzipped and written fastest without
   * a trip to the thread pool per call, so this works synchronously, yielding to the event loop
   * every few milliseconds; getfattr (batched) and parents go the usual asynchronous way.
   */
  private async speculate(key: string, folders: Set<string>, slice: { started: number }): Promise<void> {
    if (key === '' || this.records.has(key) || this.speculative.has(key)) return;
    if (performance.now() - slice.started > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      slice.started = performance.now();
    }
    return this.track(
      this.withLock(this.captureLocks, key, async () => {
        if (!this.capturing || this.denying || this.records.has(key) || this.speculative.has(key)) return;
        const parts = key.split('/');
        for (let depth = 1; depth < parts.length; depth += 1) {
          const ancestor = parts.slice(0, depth).join('/');
          if (folders.has(ancestor)) continue;
          const stats = lstatSync(joinBytes(this.meta.root, ancestor), { throwIfNoEntry: false });
          if (stats && !stats.isDirectory()) return;
          folders.add(ancestor);
        }
        const target = joinBytes(this.meta.root, key);
        const stats = lstatSync(target, { throwIfNoEntry: false });
        const kind = kindOf(stats);
        if (kind === 'directory' || kind === 'other' || (stats?.size ?? 0) >= IN_MEMORY_BYTES) return;
        if (this.bytes + this.speculativeBytes + (stats?.size ?? 0) > this.context.limits.maxStepBytes) return;
        let blob: { index: number; bytes: number; content: Buffer } | undefined;
        if (stats && kind === 'file') {
          const content = readFileSync(target);
          if (content.length >= IN_MEMORY_BYTES) return;
          const compressed = gzipSync(content, GZIP_OPTIONS);
          await this.ensureFolder();
          const index = this.nextIndex++;
          const fd = openSync(path.join(this.context.directory, blobName(index)), 'w', 0o600);
          this.unsynced.push(fd);
          writeFileSync(fd, compressed);
          blob = { index, bytes: compressed.length, content };
        }
        const removeBlob = () => blob && unlink(path.join(this.context.directory, blobName(blob.index))).catch(() => {});
        const [xattrs] = await Promise.all([stats ? this.xattrs(target, kind === 'symlink') : null, this.ensureFolder().then(() => this.recordParents(key))]).catch(async (error: unknown) => {
          await removeBlob();
          throw error;
        });
        if (!this.capturing) return void (await removeBlob());
        const index = blob ? blob.index : this.nextIndex++;
        const inode = stats && { mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs, xattrs };
        let pre: Preimage;
        if (!stats || !inode) pre = { kind: 'absent' };
        else if (blob) pre = { kind: 'file', ...inode, size: blob.content.length, hash: createHash('sha256').update(blob.content).digest('hex'), blob: blobName(blob.index) };
        else pre = { kind: 'symlink', ...inode, target: nameFromBytes(readlinkSync(target, { encoding: 'buffer' })) };
        const content = this.metaContent(index, key, pre);
        const final = path.join(this.context.directory, metaName(index));
        const temporary = `${final}.${randomBytes(6).toString('hex')}.tmp`;
        const fd = openSync(temporary, 'w', 0o600);
        this.unsynced.push(fd);
        writeFileSync(fd, content);
        renameSync(temporary, final);
        const bytes = (blob?.bytes ?? 0) + Buffer.byteLength(content);
        this.speculativeBytes += bytes;
        this.speculative.set(key, { index, pre, round: this.roundsStarted + 1, stats, bytes });
        // Each file waiting for a flush holds a descriptor: a large prefetch flushes as it goes.
        if (this.unsynced.length >= MAX_UNSYNCED && !this.flushRunning) void this.flush().catch(() => {});
      }),
    );
  }

  /** Deletes the capture of a path that was not announced as it was (metadata first, as drop()). */
  private async discardSpeculation(key: string): Promise<void> {
    const speculation = this.speculative.get(key);
    if (!speculation) return;
    this.speculative.delete(key);
    this.speculativeBytes -= speculation.bytes;
    for (const name of [metaName(speculation.index), ...(speculation.pre.kind === 'file' ? [speculation.pre.blob] : [])]) await unlink(path.join(this.context.directory, name)).catch(() => {});
  }

  private async discardAllSpeculation(): Promise<void> {
    await forEachLimited([...this.speculative.keys()], SUBTREE_CONCURRENCY, (key) => this.discardSpeculation(key));
  }

  private async modify(relativePath: string, action: ModifyAction): Promise<void> {
    await this.throwIfStopped();
    if (relativePath === '') throw new Error('the root of the tree cannot be modified through the undo log');
    const target = joinBytes(this.meta.root, relativePath);
    const [blocked, stats] = await Promise.all([nonFolderAncestor(this.meta.root, relativePath), lstatOrUndefined(target)]);
    if (blocked) throw new Error(`${relativePath}: its parent ${blocked} is not a folder`);
    // A folder deleted, renamed away or replaced takes its content with it: capture all of it.
    const inside = stats?.isDirectory() && action !== 'chmod' ? await subtree(this.meta.root, relativePath) : [];
    await this.throwIfStopped();
    await this.checkSafeguards(relativePath, action, stats, inside);
    for (const [key, keyStats] of [[relativePath, stats] as const, ...inside]) if (!this.touched.has(key)) this.touched.set(key, kindOf(keyStats));
    if (this.capturing) {
      // Registered synchronously with the check above: an unprotection or a denial waits for it.
      const capture = this.track(
        (async () => {
          await this.capture(relativePath, stats);
          await forEachLimited(inside, SUBTREE_CONCURRENCY, ([key, keyStats]) => this.capture(key, keyStats));
        })(),
      );
      try {
        await capture;
        // Durable before the caller may change the path (a capture made ahead may already be).
        const round = Math.max(0, ...[relativePath, ...inside.map(([key]) => key)].map((key) => this.records.get(key)?.round ?? 0));
        while (this.roundsDone < round) await this.flush();
      } catch (error) {
        if (!(error instanceof StepTooLarge)) throw error;
        await this.becomeUnprotected(error.message);
      }
    }
    // Another path's capture may have gone over the limit, or a safeguard may have been denied,
    // meanwhile: the caller proceeds only once the step's state on disk says so.
    if (this.denying) throw await this.denying;
    if (this.unprotecting) await this.unprotecting;
  }

  private async throwIfStopped(): Promise<void> {
    if (this.denying) throw await this.denying;
    if (this.state !== 'open') throw new Error(`undo step ${this.id} is ${this.state}`);
  }

  /**
   * The change announced for `relativePath` was not carried out: drop its preimage (and those of
   * paths below it), but only where the disk still holds exactly the preimage. Returns whether
   * the path's own preimage was dropped.
   */
  forget(relativePath: string): Promise<boolean> {
    return this.serialized(async () => {
      if (this.state !== 'open') return false;
      for (const key of [...this.speculative.keys()]) if (key === relativePath || isUnder(key, relativePath)) await this.discardSpeculation(key);
      const own = this.records.get(relativePath);
      if (!this.capturing) {
        this.touched.delete(relativePath);
        this.deletions.delete(relativePath);
        return false;
      }
      if (!own || (own.pre.kind === 'directory' && own.pre.metadataOnly)) return false;
      const keys = [...this.records.keys()].filter((key) => key === relativePath || isUnder(key, relativePath)).sort((a, b) => keyDepth(b) - keyDepth(a));
      let dropped = false;
      for (const key of keys) {
        const captured = this.records.get(key)!;
        if (captured.pre.kind === 'directory' && captured.pre.metadataOnly) continue;
        if (describeDifference(identityOf(captured.pre), identityOf(await currentPostimage(joinBytes(this.meta.root, key)))) !== undefined) continue;
        await this.drop(key, captured);
        if (key === relativePath) dropped = true;
      }
      return dropped;
    });
  }

  /**
   * Ends the step: records what it left at every path, writes the manifest and moves the step
   * into the log (evicting old steps over the limits). Returns undefined when nothing was
   * recorded: no path changed, the log is disabled, or a denied safeguard rolled the step back.
   * If it throws, the step stays in progress: call rollback() (or the next open() rolls it back).
   */
  close(): Promise<StepSummary | undefined> {
    return this.serialized(async () => {
      if (this.state === 'closed' || this.state === 'rolled-back') return undefined;
      if (this.state === 'denied' && this.denial?.rolledBack) return this.finish('closed', undefined);
      if (!this.context.persist || !this.folderCreated) return this.finish('closed', undefined);
      if (this.unprotectedReason) return this.finish('closed', await this.context.promote(await this.writeUnprotectedManifest()));

      await this.discardAllSpeculation();
      await this.addContentOfCreatedFolders();
      await this.pruneUnchanged();
      const changed = [...this.records.values()].filter(({ pre }) => !(pre.kind === 'directory' && pre.metadataOnly)).length;
      if (changed === 0) {
        await removeTree(Buffer.from(this.context.directory));
        return this.finish('closed', undefined);
      }
      const records: StepRecord[] = [];
      for (const [key, { pre }] of [...this.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const post = await currentPostimage(joinBytes(this.meta.root, key)).catch(() => undefined);
        records.push({ path: key, pre, ...(post && post.kind !== 'other' && { post }) });
      }
      const manifest = this.manifest({ closedAt: new Date().toISOString(), records, files: changed });
      manifest.bytes = this.bytes + Buffer.byteLength(JSON.stringify(manifest)) + 16;
      if (manifest.bytes > this.context.limits.maxStepBytes) {
        await this.becomeUnprotected(`the step needs ${formatBytes(manifest.bytes)}, over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
        return this.finish('closed', await this.context.promote(await this.writeUnprotectedManifest()));
      }
      await writeJsonAtomic(path.join(this.context.directory, MANIFEST), manifest);
      await this.context.beforePromote?.(this.id);
      return this.finish('closed', await this.context.promote(manifest));
    });
  }

  /**
   * Puts every captured path back and discards the step (after a failure, or to abandon it).
   * Returns problems; with problems the step stays in progress so the next open() retries it.
   */
  rollback(): Promise<string[]> {
    return this.serialized(async () => {
      if (this.state === 'closed' || this.state === 'rolled-back') return [];
      if (this.state === 'denied' && this.denial?.rolledBack) return this.finish('rolled-back', []);
      if (this.context.persist && this.unprotectedReason) {
        await this.context.promote(await this.writeUnprotectedManifest());
        this.finish('closed', undefined);
        throw new Error(`undo step ${this.id} cannot be rolled back: ${this.unprotectedReason}`);
      }
      return this.finish('rolled-back', await this.restoreAll());
    });
  }

  private get capturing(): boolean {
    return this.context.persist && this.unprotectedReason === undefined;
  }

  private finish<T>(state: 'closed' | 'rolled-back', value: T): T {
    this.state = state;
    this.context.finished();
    return value;
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    this.exclusivePending += 1;
    const exclusive = async () => {
      try {
        // Every beforeModify under way finishes first, as when they were queued too.
        while (this.active.size > 0) await Promise.allSettled([...this.active]);
        if (this.unprotecting) await this.unprotecting;
        if (this.denying) await this.denying.catch(() => {});
        return await work();
      } finally {
        this.exclusivePending -= 1;
      }
    };
    const run = this.queue.then(exclusive, exclusive);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Runs `work` after every earlier operation on `key` in `locks` settled. */
  private withLock<T>(locks: Map<string, Promise<unknown>>, key: string, work: () => Promise<T>): Promise<T> {
    const previous = locks.get(key);
    const run = previous ? previous.then(work, work) : work();
    const settled = run.catch(() => {});
    locks.set(key, settled);
    void settled.then(() => {
      if (locks.get(key) === settled) locks.delete(key);
    });
    return run;
  }

  private track<T>(capture: Promise<T>): Promise<T> {
    this.capturesRunning.add(capture);
    const done = () => this.capturesRunning.delete(capture);
    capture.then(done, done);
    return capture;
  }

  /** Waits until no capture writes into the step folder. */
  private async capturesSettled(): Promise<void> {
    while (this.capturesRunning.size > 0) await Promise.allSettled([...this.capturesRunning]);
  }

  private async checkSafeguards(key: string, action: ModifyAction, stats: Stats | undefined, inside: ReadonlyArray<readonly [string, Stats]>): Promise<void> {
    const thresholds = this.context.thresholds;
    const firstTouch = !this.touched.has(key);
    if (action === 'delete' && stats) {
      // Files that existed before the step; deleting what the step itself created is no loss.
      const preKind = (candidate: string, candidateStats: Stats) => this.touched.get(candidate) ?? kindOf(candidateStats);
      const newly = [[key, stats] as const, ...inside].filter(([candidate, candidateStats]) => !this.deletions.has(candidate) && ['file', 'symlink'].includes(preKind(candidate, candidateStats))).map(([candidate]) => candidate);
      // Counted synchronously, so concurrent deletions all count.
      const count = this.deletions.size + newly.length;
      for (const candidate of newly) this.deletions.add(candidate);
      if (count > thresholds.maxDeletions) await this.ask({ kind: 'many-deletions', path: key, detail: `${count} files deleted in this sync (limit ${thresholds.maxDeletions})` });
    }
    if ((action === 'write' || action === 'truncate' || action === 'rename-target') && firstTouch && stats?.isFile() && stats.size > thresholds.largeFileBytes) {
      await this.ask({ kind: 'large-overwrite', path: key, detail: `overwrites ${key}, a file of ${formatBytes(stats.size)} (limit ${formatBytes(thresholds.largeFileBytes)})` });
    }
    if (action === 'rename-target' && firstTouch && stats && thresholds.askRenameOver) {
      await this.ask({ kind: 'rename-over', path: key, detail: `renames over the existing ${kindOf(stats)} ${key}` });
    }
  }

  /** One question at a time; a kind once allowed is not asked again (also not by a question that waited meanwhile). */
  private ask(question: SafeguardQuestion): Promise<void> {
    if (this.allowed.has(question.kind)) return Promise.resolve();
    const run = this.asking.then(() => this.askNow(question));
    this.asking = run.catch(() => {});
    return run;
  }

  private async askNow(question: SafeguardQuestion): Promise<void> {
    if (this.denying) throw await this.denying;
    if (this.allowed.has(question.kind)) return;
    const answer = this.meta.ask ? await this.meta.ask(question).catch(() => 'deny' as const) : 'allow';
    if (answer === 'allow') {
      this.allowed.add(question.kind);
      return;
    }
    if (this.unprotecting) await this.unprotecting;
    const canRollBack = this.capturing;
    this.state = 'denied';
    this.denying = (async () => {
      // Captures under way finish first: their callers get the denial, never the go-ahead.
      await this.capturesSettled();
      const problems = canRollBack ? await this.restoreAll() : [];
      this.denial = new SafeguardDenied(question, canRollBack, problems);
      if (canRollBack) this.context.finished();
      return this.denial;
    })();
    throw await this.denying;
  }

  private async restoreAll(): Promise<string[]> {
    if (!this.context.persist || !this.folderCreated) return [];
    await this.discardAllSpeculation();
    const problems = await restoreRecords({ root: this.meta.root, stepDir: this.context.directory, records: [...this.records].map(([key, { pre }]) => ({ path: key, pre })), checkPostimages: false });
    // With problems the folder stays in progress, so the next open() tries again.
    if (problems.length === 0) await removeTree(Buffer.from(this.context.directory));
    return problems;
  }

  private capture(key: string, stats: Stats | undefined): Promise<void> {
    const known = this.records.get(key);
    if (known && !(known.pre.kind === 'directory' && known.pre.metadataOnly)) return Promise.resolve();
    return this.withLock(this.captureLocks, key, async () => {
      const existing = this.records.get(key);
      if (existing && !(existing.pre.kind === 'directory' && existing.pre.metadataOnly)) return;
      const speculation = this.speculative.get(key);
      if (speculation) {
        if (!sameState(speculation.stats, stats)) {
          await this.discardSpeculation(key);
        } else {
          this.speculative.delete(key);
          this.speculativeBytes -= speculation.bytes;
          this.records.set(key, { index: speculation.index, pre: speculation.pre, round: speculation.round });
          this.bytes += speculation.bytes;
          if (this.bytes > this.context.limits.maxStepBytes) throw new StepTooLarge(`the step's saved content went over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
          return;
        }
      }
      await this.ensureFolder();
      await this.recordParents(key);
      const target = joinBytes(this.meta.root, key);
      if (existing) {
        // Known so far only as the parent of a changed path: its mode and times are still the
        // ones from before the step; now it changes itself and needs its attributes too.
        const pre = existing.pre as Extract<Preimage, { kind: 'directory' }>;
        await this.writeMeta(existing.index, key, { ...pre, metadataOnly: false, xattrs: await this.xattrs(target, false) });
        return;
      }
      const index = this.nextIndex++;
      await this.writeMeta(index, key, await this.preimage(index, key, target, stats));
    });
  }

  private async preimage(index: number, key: string, target: Buffer, stats: Stats | undefined): Promise<Preimage> {
    if (!stats) return { kind: 'absent' };
    const inode = { mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs };
    switch (kindOf(stats)) {
      case 'directory':
        return { kind: 'directory', ...inode, xattrs: await this.xattrs(target, false), metadataOnly: false };
      case 'symlink':
        return { kind: 'symlink', ...inode, target: await readTarget(target), xattrs: await this.xattrs(target, true) };
      case 'file': {
        const [{ hash, size }, xattrs] = await Promise.all([this.saveBlob(index, target, stats.size), this.xattrs(target, false)]);
        return { kind: 'file', ...inode, size, hash, blob: blobName(index), xattrs };
      }
      default:
        throw new Error(`${key} is neither a file, a folder nor a link; the undo log cannot capture it`);
    }
  }

  /**
   * Gzips the content into `<index>.gz`, hashing what it read; flush() makes it durable. No
   * temporary name: until its metadata file exists, a blob means nothing to recovery.
   */
  private async saveBlob(index: number, source: Buffer, expectedSize: number): Promise<{ hash: string; size: number }> {
    const final = path.join(this.context.directory, blobName(index));
    const limit = this.context.limits.maxStepBytes;
    const tooLarge = () => new StepTooLarge(`the step's saved content went over the ${formatBytes(limit)} limit of one step`);
    if (expectedSize < IN_MEMORY_BYTES) {
      const content = await readFile(source);
      if (content.length < IN_MEMORY_BYTES) {
        const compressed = await gzipInMemory(content);
        // Reserved before writing, so concurrent captures cannot overrun the limit together.
        if (this.bytes + compressed.length > limit) throw tooLarge();
        this.bytes += compressed.length;
        try {
          await this.writeBlob(final, compressed, false);
        } catch (error) {
          this.bytes -= compressed.length;
          throw error;
        }
        return { hash: createHash('sha256').update(content).digest('hex'), size: content.length };
      }
    }
    const hash = createHash('sha256');
    let size = 0;
    let written = 0;
    const reserve = (bytes: number): boolean => {
      if (this.bytes + bytes > limit) return false;
      this.bytes += bytes;
      written += bytes;
      return true;
    };
    try {
      await pipeline(
        createReadStream(source),
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            hash.update(chunk);
            size += chunk.length;
            callback(null, chunk);
          },
        }),
        createGzip(GZIP_OPTIONS),
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            if (!reserve(chunk.length)) callback(tooLarge());
            else callback(null, chunk);
          },
        }),
        createWriteStream(final, { mode: 0o600 }),
      );
      this.unsynced.push(final);
    } catch (error) {
      this.bytes -= written;
      await unlink(final).catch(() => {});
      throw error;
    }
    return { hash: hash.digest('hex'), size };
  }

  /** Writes a blob (gzipping `content` first when `compress`) without waiting for the disk; returns its size. */
  private async writeBlob(final: string, content: Buffer, compress: boolean): Promise<number> {
    const compressed = compress ? await gzipInMemory(content) : content;
    try {
      const handle = await open(final, 'w', 0o600);
      this.unsynced.push(handle);
      await handle.writeFile(compressed);
    } catch (error) {
      await unlink(final).catch(() => {});
      throw error;
    }
    return compressed.length;
  }

  private async xattrs(target: Buffer, isSymlink: boolean): Promise<Array<[string, string]> | null> {
    if (!this.context.captureXattrs) return null;
    const attributes = await readXattrs(target, isSymlink).catch(() => undefined);
    if (attributes === undefined) this.xattrFailures += 1;
    return attributes ?? null;
  }

  /** Parents are recorded before children: an existing folder by its mode and times, a missing one as created by the step. */
  private async recordParents(key: string): Promise<void> {
    const parent = parentKey(key);
    if (this.records.has(parent)) return;
    // Children of one folder are captured concurrently: the first records it, the others wait.
    await this.withLock(this.captureLocks, parent, async () => {
      if (this.records.has(parent)) return;
      const stats = await lstatOrUndefined(joinBytes(this.meta.root, parent));
      if (stats?.isDirectory()) {
        const index = this.nextIndex++;
        await this.writeMeta(index, parent, { kind: 'directory', mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs, xattrs: null, metadataOnly: true });
        return;
      }
      if (parent === '') throw new Error(`the tree root ${this.meta.root} is not a folder`);
      if (stats) throw new Error(`parent ${parent} of ${key} is not a folder`);
      await this.recordParents(parent);
      const index = this.nextIndex++;
      await this.writeMeta(index, parent, { kind: 'absent' });
    });
  }

  private metaContent(index: number, key: string, pre: Preimage): string {
    return JSON.stringify({ version: UNDO_FORMAT_VERSION, stepId: this.id, root: this.meta.root, index, path: key, pre });
  }

  private async writeMeta(index: number, key: string, pre: Preimage): Promise<void> {
    const content = this.metaContent(index, key, pre);
    await this.writeUnsynced(path.join(this.context.directory, metaName(index)), content);
    this.records.set(key, { index, pre, round: this.roundsStarted + 1 });
    this.bytes += Buffer.byteLength(content);
    if (this.bytes > this.context.limits.maxStepBytes) throw new StepTooLarge(`the step's records went over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
  }

  private ensureFolder(): Promise<void> {
    this.folderReady ??= (async () => {
      await mkdir(this.context.directory, { recursive: true });
      await this.writeUnsynced(path.join(this.context.directory, MANIFEST), JSON.stringify(this.manifest({ records: [], files: 0 })));
      this.unsynced.push(path.dirname(this.context.directory));
      this.folderCreated = true;
    })();
    return this.folderReady;
  }

  /**
   * Temp + rename without waiting for the disk: flush() then makes everything written so far
   * durable at once. A power cut before that can only lose captures of paths the caller has not
   * touched yet, which open() ignores. The handle stays open until the flush syncs it.
   */
  private async writeUnsynced(file: string, content: string): Promise<void> {
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(content);
      await rename(temporary, file);
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(temporary).catch(() => {});
      throw error;
    }
    this.unsynced.push(handle);
  }

  /**
   * Group commit: makes everything written before the call durable. Callers arriving while a
   * round runs share the next round, which covers all of them.
   */
  private flush(): Promise<void> {
    if (!this.flushRunning) {
      const round = this.flushRound().finally(() => {
        if (this.flushRunning === round) this.flushRunning = undefined;
      });
      this.flushRunning = round;
      return round;
    }
    this.flushNext ??= this.flushRunning
      .catch(() => {})
      .then(() => {
        this.flushNext = undefined;
        return this.flush();
      });
    return this.flushNext;
  }

  private async flushRound(): Promise<void> {
    if (this.flushFailure) throw this.flushFailure.error;
    const round = ++this.roundsStarted;
    const items = this.unsynced;
    this.unsynced = [];
    if (items.length === 0) {
      this.roundsDone = round;
      return;
    }
    const results = await Promise.allSettled([
      ...items.map((item) => (typeof item === 'string' ? fsyncPath(item) : typeof item === 'number' ? fdatasyncAndClose(item) : item.datasync().finally(() => item.close()))),
      fsyncPath(this.context.directory),
    ]);
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) {
      this.flushFailure = { error: failed.reason };
      throw failed.reason;
    }
    this.roundsDone = round;
  }

  private manifest(fields: Pick<Manifest, 'records' | 'files'> & { closedAt?: string }): Manifest {
    const notes = [...this.context.notes];
    if (this.xattrFailures > 0) notes.push(`extended attributes of ${this.xattrFailures} path(s) could not be captured`);
    return { version: UNDO_FORMAT_VERSION, id: this.id, syncId: this.meta.syncId, policy: this.meta.policy, root: this.meta.root, startedAt: this.startedAt, protected: true, bytes: this.bytes, notes, ...fields };
  }

  /** Over the single-step limit: keep going without preimages; the step will be listed but cannot be undone. */
  private becomeUnprotected(reason: string): Promise<void> {
    this.unprotectedReason ??= reason;
    this.unprotecting ??= (async () => {
      // Captures under way (started before the limit was crossed) finish first: their files go too.
      await this.capturesSettled();
      await this.flush().catch(() => {});
      await writeJsonAtomic(path.join(this.context.directory, UNPROTECTED), { reason: this.unprotectedReason!, files: this.touched.size });
      for (const name of await readdir(this.context.directory)) {
        if (name !== MANIFEST && name !== UNPROTECTED) await unlink(path.join(this.context.directory, name)).catch(() => {});
      }
      this.records.clear();
      this.speculative.clear();
      this.speculativeBytes = 0;
      this.bytes = 0;
    })();
    return this.unprotecting;
  }

  private async writeUnprotectedManifest(): Promise<Manifest> {
    const manifest: Manifest = { ...this.manifest({ closedAt: new Date().toISOString(), records: [], files: this.touched.size }), protected: false, unprotectedReason: this.unprotectedReason };
    await writeJsonAtomic(path.join(this.context.directory, MANIFEST), manifest);
    manifest.bytes = await folderBytes(this.context.directory);
    return manifest;
  }

  private async drop(key: string, captured: Captured): Promise<void> {
    // The metadata goes first: without it the path no longer counts as captured.
    for (const name of [metaName(captured.index), ...(captured.pre.kind === 'file' ? [captured.pre.blob] : [])]) {
      const file = path.join(this.context.directory, name);
      this.bytes -= (await stat(file).catch(() => undefined))?.size ?? 0;
      await unlink(file).catch(() => {});
    }
    this.records.delete(key);
    this.touched.delete(key);
    this.deletions.delete(key);
  }

  /** Whatever is inside a folder the step created was created by the step too. */
  private async addContentOfCreatedFolders(): Promise<void> {
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind !== 'absent' || !(await lstatOrUndefined(joinBytes(this.meta.root, key)))?.isDirectory()) continue;
      for (const [inner] of await subtree(this.meta.root, key)) {
        if (!this.records.has(inner)) this.records.set(inner, { index: -1, pre: { kind: 'absent' }, round: 0 });
      }
    }
  }

  /** Paths announced but left as they were (created nothing), and parents with no changed path left below them. */
  private async pruneUnchanged(): Promise<void> {
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind === 'absent' && !(await lstatOrUndefined(joinBytes(this.meta.root, key)))) this.records.delete(key);
    }
    const changed = [...this.records].filter(([, { pre }]) => !(pre.kind === 'directory' && pre.metadataOnly)).map(([key]) => key);
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind === 'directory' && pre.metadataOnly && !changed.some((other) => isUnder(other, key))) this.records.delete(key);
    }
  }
}

/** Every entry below `key`, parents first, with its stats. */
async function subtree(root: string, key: string): Promise<Array<readonly [string, Stats]>> {
  const names = await readdir(joinBytes(root, key), { encoding: 'buffer' }).catch(() => [] as Buffer[]);
  const children = await Promise.all(
    names.sort(Buffer.compare).map(async (name): Promise<Array<readonly [string, Stats]>> => {
      const child = key === '' ? nameFromBytes(name) : `${key}/${nameFromBytes(name)}`;
      const stats = await lstatOrUndefined(joinBytes(root, child));
      if (!stats) return [];
      return [[child, stats] as const, ...(stats.isDirectory() ? await subtree(root, child) : [])];
    }),
  );
  return children.flat();
}

/** Runs `work` on every item, at most `limit` at once; throws the first failure once all settled. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
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

function fdatasyncAndClose(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(fd, (error) => {
      closeFd(fd, () => (error ? reject(error) : resolve()));
    });
  });
}

async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function folderBytes(directory: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(directory).catch(() => [] as string[])) total += (await stat(path.join(directory, name)).catch(() => undefined))?.size ?? 0;
  return total;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
