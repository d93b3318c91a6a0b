// One step being recorded: the write-ahead half of the undo log. Before the caller first changes
// a path, its preimage is captured into the step's journal (see stepJournal.ts) and made durable;
// the caller changes the path only after beforeModify returned. close() records postimages,
// writes the manifest and promotes the folder; a crash before that leaves an in-progress folder
// that UndoLog.open rolls back.
//
// Captures of different paths run concurrently (the apply step announces a batch's changes from
// several workers): byte counts and deletion counts are updated synchronously; only the same
// path (and the recording of a shared parent) is serialized, as is asking safeguards; and one
// flush round (group commit) serves every capture waiting at the time.
import type { Stats } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { writeJsonAtomic } from '../atomicFile';
import type { CapturedVersion } from '../sync/apply';
import type { Entry } from '../sync/entry';
import { lstatSyncOrUndefined, nonFolderAncestor } from '../sync/fsEntry';
import { bytesFromName, joinBytes, nameFromBytes } from '../sync/pathCodec';
import { forEachLimited, sameFolder, sameState } from './capture';
import type { CapturedPath, CapturedStats } from './packWorker';
import { currentPostimage, describeDifference, identityOf, kindOf, permissions, readTarget, subtree, writtenPostimage } from './fsState';
import type { Manifest, Postimage, Preimage, PreimageOf, StepRecord } from './records';
import { isUnder, keyDepth, manifestText, MANIFEST, parentKey, UNDO_FORMAT_VERSION, UNPROTECTED } from './records';
import { removeTree, restoreRecords } from './restore';
import { formatBytes, SafeguardCounter } from './safeguards';
import { StepJournal } from './stepJournal';
import type { ModifyAction, SafeguardAsk, SafeguardQuestion, SafeguardThresholds, StepSummary, UndoLimits } from './types';
import { SafeguardDenied } from './types';
import { readXattrsOf } from './xattrs';
import type { Xattrs } from './xattrs';

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
  /** Where a rollback keeps a version it finds that it may not drop (see restoreRecords). */
  keptDirectory: string;
  /** Renames the closed step into the log and applies the limits. */
  promote(manifest: Manifest): Promise<StepSummary>;
  /** The step is over, whatever the outcome: the log may open another. */
  finished(): void;
  beforePromote?: (stepId: string) => void | Promise<void>;
}

interface Captured {
  pre: Preimage;
  /** The flush round after which its journal line is on disk. */
  round: number;
}

/** A preimage captured ahead by prefetch(): it counts only once the path is announced and found unchanged. */
interface Speculation extends Captured {
  stats: CapturedStats | undefined;
  /** For a folder: the record of it as a parent that its preimage was built on (undefined: there was none). */
  parentRecord?: Preimage;
}

class StepTooLarge extends Error {}

/** How many paths of a folder's subtree are captured at once. */
const SUBTREE_CONCURRENCY = 16;
/** How many paths prefetch captures in its first chunk (the apply's concurrency) and at most in one, and how many chunks are under way at once. */
const FIRST_CHUNK = 16;
const MAX_CHUNK = 128;
const CHUNKS_UNDER_WAY = 2;

const isMetadataOnly = (pre: Preimage): boolean => pre.kind === 'directory' && pre.metadataOnly;

const inodeOf = (stats: CapturedStats) => ({ mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs });

export class StepWriter {
  private state: 'open' | 'denied' | 'closed' | 'rolled-back' = 'open';
  private readonly records = new Map<string, Captured>();
  private readonly speculative = new Map<string, Speculation>();
  /** What the caller reported writing at a path (see applied()): the step's postimage there. */
  private readonly written = new Map<string, Postimage>();
  /**
   * Folders above announced paths found to be real folders (or absent), each checked once per
   * step. The writer only reads through them; the apply checks a path's parents itself, right
   * before it writes.
   */
  private readonly realFolders = new Set<string>();
  private readonly rootBytes: Buffer;
  private readonly paths = new Map<string, Buffer>();
  /** Kind of each path the caller announced, as it was before the step (also kept when nothing is captured). */
  private readonly touched = new Map<string, ReturnType<typeof kindOf>>();
  private readonly safeguards: SafeguardCounter;
  private readonly journal: StepJournal;
  private readonly startedAt = new Date().toISOString();
  /** Bytes of journal lines written so far; with the saved content (journal.contentBytes), checked against the step limit. */
  private bytes = 0;
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

  constructor(
    private readonly context: WriterContext,
    private readonly meta: StepMeta,
  ) {
    this.safeguards = new SafeguardCounter(context.thresholds);
    this.rootBytes = bytesFromName(meta.root);
    this.journal = new StepJournal(context.directory, { stepId: context.id, root: meta.root }, (bytes, what) => this.reserve(bytes, what));
  }

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
   * is denied, after rolling the step back. `seen`: what the caller found at the path just now
   * (its lstat; stats undefined: nothing), so the writer need not look again.
   */
  beforeModify(relativePath: string, action: ModifyAction, seen?: { stats: Stats | undefined }): Promise<void> {
    // Most announcements of a sync find their path captured ahead: those take no lock and no
    // await (a sync announces a thousand paths, and each await is an allocation and a turn).
    if (seen && this.exclusivePending === 0 && !this.pathLocks.has(relativePath) && this.settledAtOnce(relativePath, action, seen.stats)) return Promise.resolve();
    const start = (): Promise<void> => {
      const run = this.withLock(this.pathLocks, relativePath, () => this.modify(relativePath, action, seen));
      this.active.add(run);
      const done = () => this.active.delete(run);
      run.then(done, done);
      return run;
    };
    // Behind a forget, close or rollback already asked for, as if all were queued.
    return this.exclusivePending > 0 ? this.queue.then(start) : start();
  }

  /**
   * Optional, when many paths will be announced: captures ahead, in the order given and with
   * few flushes, the preimages of those among `keys` that are files (within the step's room),
   * links, folders or absent. The caller may announce paths meanwhile (beforeModify of a path
   * being captured ahead waits for that capture); the promise never rejects. A path's capture
   * counts only when beforeModify later announces it and finds it unchanged since (same inode,
   * size, times, mode, owner; for a folder, whose times the step's own changes inside it move:
   * same inode, mode and owner, with nothing left inside to capture); otherwise it is captured
   * again then. Captures of paths never announced are forgotten by forget(), close() and
   * rollback(); a crash recovery restores them as well, which leaves them as they were before
   * the step.
   */
  prefetch(keys: readonly string[]): Promise<void> {
    if (this.state !== 'open' || !this.capturing || this.denying || this.exclusivePending > 0) return Promise.resolve();
    const run = (async () => {
      // In chunks, each made durable by a round of its own, so that the caller's first changes
      // wait only for the first small chunk; later chunks grow. Two chunks are under way at a
      // time, so the worker reads the next while this thread records the last. The first chunk's
      // paths are locked before this returns: the caller's first announcements wait for the
      // chunk rather than capture the same paths again.
      const underWay: Array<Promise<void>> = [];
      let chunkSize = FIRST_CHUNK;
      for (let index = 0; index < keys.length && this.capturing && !this.denying; ) {
        const chunk: string[] = [];
        for (; index < keys.length && chunk.length < chunkSize; index += 1) {
          const key = keys[index]!;
          // A folder recorded so far only as the parent of captured paths still needs its own preimage.
          const known = this.records.get(key);
          if (key === '' || (known && !isMetadataOnly(known.pre)) || this.speculative.has(key) || this.captureLocks.has(key)) continue;
          if (!nonFolderAncestor(this.meta.root, key, this.realFolders)) chunk.push(key);
        }
        if (chunk.length === 0) continue;
        const work = this.track(this.ensureFolder().then(() => this.speculate(chunk))).then(() => void this.journal.flush().catch(() => {}));
        // beforeModify of a path in the chunk waits for the chunk.
        for (const key of chunk) void this.withLock(this.captureLocks, key, () => work);
        underWay.push(work);
        if (underWay.length >= CHUNKS_UNDER_WAY) await underWay.shift();
        chunkSize = Math.min(MAX_CHUNK, chunkSize * 2);
      }
      await Promise.all(underWay);
      await this.journal.flush();
    })().catch(() => {}); // a capture made ahead is only a head start: beforeModify captures what it lacks
    this.active.add(run);
    const done = () => this.active.delete(run);
    run.then(done, done);
    return run;
  }

  /**
   * Captures ahead: the worker reads, hashes and saves the chunk's files; then the attributes of
   * everything it found are read in one batch (after the worker looked at each path, so they are
   * at least as new as its stats), and the chunk is journaled. Files over the room left in the
   * step and paths that cannot be read are left for beforeModify.
   */
  private async speculate(keys: readonly string[]): Promise<void> {
    const found = await this.journal.capture(keys.map((key) => this.pathOf(key)), this.contentRoom());
    const ahead: Array<{ key: string; pre: Preimage; stats: CapturedStats | undefined; parentRecord?: Preimage }> = [];
    keys.forEach((key, index) => {
      const result = found[index]!;
      const pre = this.preimageOf(result);
      if (!pre) return;
      try {
        this.recordParents(key);
      } catch {
        return; // its parent is no folder: beforeModify reports that
      }
      // A folder's mode and times must be those from before the step: when one of its paths was
      // captured already (children go first, and change its times), its record as a parent.
      const parentRecord = this.records.get(key)?.pre;
      if (parentRecord && !isMetadataOnly(parentRecord)) return;
      ahead.push({ key, pre: pre.kind === 'directory' && parentRecord?.kind === 'directory' ? { ...parentRecord, metadataOnly: false } : pre, stats: 'stats' in result ? result.stats : undefined, parentRecord });
    });
    const withAttributes = ahead.filter(({ pre }) => pre.kind !== 'absent');
    const attributes = await this.xattrsOf(withAttributes.map(({ key, pre }) => ({ target: this.pathOf(key), isSymlink: pre.kind === 'symlink' })));
    withAttributes.forEach(({ pre }, index) => {
      if (pre.kind !== 'absent') pre.xattrs = attributes[index]!;
    });
    if (!this.capturing || this.denying) return;
    for (const { key, pre, stats, parentRecord } of ahead) {
      // Captured meanwhile by beforeModify, or (a folder) recorded as a parent since: this capture is not needed, or out of date.
      if (this.records.get(key)?.pre !== parentRecord) continue;
      this.speculative.set(key, { pre, round: this.journal.record({ path: key, pre }), stats, ...(pre.kind === 'directory' && { parentRecord }) });
    }
  }

  /** The preimage of what the worker found (attributes not read yet), or undefined for what it leaves to beforeModify. */
  private preimageOf(found: CapturedPath): Preimage | undefined {
    switch (found.kind) {
      case 'absent':
        return { kind: 'absent' };
      case 'file':
        return { kind: 'file', ...inodeOf(found.stats), xattrs: null, size: found.blob.size, hash: found.hash, blob: found.blob };
      case 'symlink':
        return { kind: 'symlink', ...inodeOf(found.stats), xattrs: null, target: nameFromBytes(found.target) };
      case 'directory':
        return { kind: 'directory', ...inodeOf(found.stats), xattrs: null, metadataOnly: false };
      default:
        return undefined;
    }
  }

  /** The capture of a path that was not announced as it was no longer counts. */
  private discardSpeculation(key: string): void {
    const speculation = this.speculative.get(key);
    if (!speculation) return;
    this.speculative.delete(key);
    if (!this.capturing) return;
    // A folder's line replaced its record as a parent in the journal: that record is stated again.
    const own = this.records.get(key);
    this.journal.record(own ? { path: key, pre: own.pre } : { forget: key });
  }

  private async modify(relativePath: string, action: ModifyAction, seen: { stats: Stats | undefined } | undefined): Promise<void> {
    if (this.stopped) await this.throwIfStopped();
    if (relativePath === '') throw new Error('the root of the tree cannot be modified through the undo log');
    const blocked = nonFolderAncestor(this.meta.root, relativePath, this.realFolders);
    const stats = seen ? seen.stats : lstatSyncOrUndefined(this.pathOf(relativePath));
    if (blocked) throw new Error(`${relativePath}: its parent ${blocked} is not a folder`);
    // A folder deleted, renamed away or replaced takes its content with it: capture all of it.
    const inside = stats?.isDirectory() && action !== 'chmod' ? await subtree(this.meta.root, relativePath) : [];
    if (this.stopped) await this.throwIfStopped();
    for (const question of this.safeguards.questionsFor(relativePath, action, stats, inside, (key) => this.touched.get(key))) await this.ask(question);
    if (!this.touched.has(relativePath)) this.touched.set(relativePath, kindOf(stats));
    for (const [key, keyStats] of inside) if (!this.touched.has(key)) this.touched.set(key, kindOf(keyStats));
    if (this.capturing) {
      // The common case, a file captured ahead and unchanged since, takes no trip through a lock.
      // Otherwise the capture is registered synchronously with the check above: an unprotection or
      // a denial waits for it.
      const capture = inside.length === 0 && !this.captureLocks.has(relativePath) && this.adoptSpeculation(relativePath, stats) ? undefined : this.track(this.captureWithInside(relativePath, stats, inside));
      try {
        await capture;
        // Durable before the caller may change the path (a capture made ahead may already be).
        let round = this.records.get(relativePath)?.round ?? 0;
        for (const [key] of inside) round = Math.max(round, this.records.get(key)?.round ?? 0);
        if (!this.journal.isDurable(round)) await this.journal.durable(round);
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

  /**
   * What modify() does for a path captured ahead and unchanged (or captured already), whose
   * capture is durable and which raises no question: done here at once, without waiting. Returns
   * false for anything else, for modify() to handle; a capture made ahead that no longer matches
   * the path is dropped then, as modify() would drop it.
   */
  private settledAtOnce(key: string, action: ModifyAction, stats: Stats | undefined): boolean {
    if (this.stopped || !this.capturing || this.unprotecting || key === '' || (stats?.isDirectory() && action !== 'chmod')) return false;
    if (this.captureLocks.has(key) || nonFolderAncestor(this.meta.root, key, this.realFolders) !== undefined) return false;
    // Counting a deletion twice is harmless: modify() counts the same paths into the same set.
    if (this.safeguards.questionsFor(key, action, stats, [], (path) => this.touched.get(path)).length > 0) return false;
    const known = this.records.get(key);
    if (!(known && !isMetadataOnly(known.pre)) && !this.adoptSpeculation(key, stats)) return false;
    if (!this.journal.isDurable(this.records.get(key)!.round)) return false;
    if (!this.touched.has(key)) this.touched.set(key, kindOf(stats));
    return true;
  }

  private async captureWithInside(key: string, stats: Stats | undefined, inside: ReadonlyArray<readonly [string, Stats]>): Promise<void> {
    await this.capture(key, stats);
    if (inside.length > 0) await forEachLimited(inside, SUBTREE_CONCURRENCY, ([innerKey, innerStats]) => this.capture(innerKey, innerStats));
  }

  /** Whether a denial or the end of the step stops announcements (throwIfStopped says how). */
  private get stopped(): boolean {
    return this.denying !== undefined || this.state !== 'open';
  }

  private async throwIfStopped(): Promise<void> {
    if (this.denying) throw await this.denying;
    if (this.state !== 'open') throw new Error(`undo step ${this.id} is ${this.state}`);
  }

  /**
   * Optional: the change announced for `relativePath` was carried out and left `next` there
   * (undefined: deleted). close() then takes that as the step's postimage instead of reading the
   * path back, so an edit someone makes afterwards counts as a barrier rather than as part of
   * the step; and a file the caller verified while writing is not hashed again.
   */
  applied(relativePath: string, next: Entry | undefined): void {
    if (this.state !== 'open' || !this.capturing) return;
    try {
      const post = writtenPostimage(this.pathOf(relativePath), next);
      if (post) this.written.set(relativePath, post);
    } catch {
      // Unreadable now: close() reads it back as it would without this call.
    }
  }

  /**
   * The change announced for `relativePath` was not carried out: drop its preimage (and those of
   * paths below it), but only where the disk still holds exactly the preimage. Returns whether
   * the path's own preimage was dropped.
   */
  /**
   * The version of a path whose preimage this step saved (undefined: none saved, e.g. the step is
   * unprotected), for the caller to check it is the version it is about to replace.
   */
  savedVersion(relativePath: string): CapturedVersion | undefined {
    if (!this.capturing || this.unprotecting) return undefined;
    const pre = this.records.get(relativePath)?.pre;
    if (!pre || isMetadataOnly(pre)) return undefined;
    if (pre.kind === 'file') return { kind: 'file', hash: pre.hash };
    if (pre.kind === 'symlink') return { kind: 'symlink', target: pre.target };
    return { kind: pre.kind };
  }

  forget(relativePath: string): Promise<boolean> {
    return this.serialized(async () => {
      if (this.state !== 'open') return false;
      for (const key of [...this.speculative.keys()]) if (key === relativePath || isUnder(key, relativePath)) this.discardSpeculation(key);
      this.written.delete(relativePath);
      const own = this.records.get(relativePath);
      if (!this.capturing) {
        this.touched.delete(relativePath);
        this.safeguards.uncount(relativePath);
        return false;
      }
      if (!own || isMetadataOnly(own.pre)) return false;
      const keys = [...this.records.keys()].filter((key) => key === relativePath || isUnder(key, relativePath)).sort((a, b) => keyDepth(b) - keyDepth(a));
      let dropped = false;
      for (const key of keys) {
        const captured = this.records.get(key)!;
        if (isMetadataOnly(captured.pre)) continue;
        if (describeDifference(identityOf(captured.pre), identityOf(await currentPostimage(this.pathOf(key)))) !== undefined) continue;
        // Its saved content stays in the pack (bytes on disk, still counted); the journal no longer counts the path.
        this.journal.record({ forget: key });
        this.records.delete(key);
        this.touched.delete(key);
        this.safeguards.uncount(key);
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
      if (!this.context.persist || !this.journal.created) return this.finish('closed', undefined);
      if (this.unprotectedReason) return this.finish('closed', await this.context.promote(await this.writeUnprotectedManifest()));

      // Every capture that counts is durable by now (beforeModify waited for it).
      for (const key of [...this.speculative.keys()]) this.discardSpeculation(key);
      await this.addContentOfCreatedFolders();
      this.pruneUnchanged();
      const changed = [...this.records.values()].filter(({ pre }) => !isMetadataOnly(pre)).length;
      if (changed === 0) {
        await this.journal.close();
        await removeTree(Buffer.from(this.context.directory));
        return this.finish('closed', undefined);
      }
      // Nothing more is journaled: the files close while the postimages are gathered.
      const closing = this.journal.close();
      const records: StepRecord[] = [];
      for (const [key, { pre }] of [...this.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const post = this.written.get(key) ?? (await currentPostimage(this.pathOf(key)).catch(() => undefined));
        records.push({ path: key, pre, ...(post && post.kind !== 'other' && { post }) });
      }
      await closing;
      const manifest = this.manifest({ closedAt: new Date().toISOString(), records, files: changed });
      const text = manifestText(manifest, this.journal.filesBytes);
      if (manifest.bytes > this.context.limits.maxStepBytes) {
        await this.becomeUnprotected(`the step needs ${formatBytes(manifest.bytes)}, over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
        return this.finish('closed', await this.context.promote(await this.writeUnprotectedManifest()));
      }
      await this.journal.writeManifest(text);
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

  /** One question at a time; a kind once allowed is not asked again (also not by a question that waited meanwhile). */
  private ask(question: SafeguardQuestion): Promise<void> {
    if (this.safeguards.isAllowed(question.kind)) return Promise.resolve();
    const run = this.asking.then(() => this.askNow(question));
    this.asking = run.catch(() => {});
    return run;
  }

  private async askNow(question: SafeguardQuestion): Promise<void> {
    if (this.denying) throw await this.denying;
    if (this.safeguards.isAllowed(question.kind)) return;
    const answer = this.meta.ask ? await this.meta.ask(question).catch(() => 'deny' as const) : 'allow';
    if (answer === 'allow') {
      this.safeguards.allow(question.kind);
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
    if (!this.context.persist || !this.journal.created) return [];
    for (const key of [...this.speculative.keys()]) this.discardSpeculation(key);
    // Contents still in an open frame get their blobs (a path whose capture never became durable
    // was not changed, and restoring it finds the same content and leaves it).
    await this.journal.flush().catch(() => {});
    await this.journal.close();
    // What the caller wrote is the step's postimage: a rollback may replace it, and keeps anything else it finds.
    const records = [...this.records].map(([key, { pre }]) => ({ path: key, pre, post: this.written.get(key) }));
    const problems = await restoreRecords({ root: this.meta.root, stepDir: this.context.directory, records, checkPostimages: false, keepRoot: this.context.keptDirectory });
    // With problems the folder stays in progress, so the next open() tries again.
    if (problems.length === 0) await removeTree(Buffer.from(this.context.directory));
    return problems;
  }

  private capture(key: string, stats: Stats | undefined): Promise<void> {
    const known = this.records.get(key);
    if (known && !isMetadataOnly(known.pre)) return Promise.resolve();
    return this.withLock(this.captureLocks, key, async () => {
      const existing = this.records.get(key);
      if (existing && !isMetadataOnly(existing.pre)) return;
      if (this.adoptSpeculation(key, stats)) return;
      await this.ensureFolder();
      this.recordParents(key);
      const target = this.pathOf(key);
      if (existing) {
        // Known so far only as the parent of a changed path: its mode and times are still the
        // ones from before the step; now it changes itself and needs its attributes too.
        const pre = existing.pre as Extract<Preimage, { kind: 'directory' }>;
        this.addRecord(key, { ...pre, metadataOnly: false, xattrs: await this.xattrs(target, false) });
        return;
      }
      this.addRecord(key, await this.preimage(key, target, stats));
    });
  }

  /**
   * Takes the capture made ahead as the path's preimage when it is ready and the path is as it
   * was then (see prefetch()); a capture of a path that changed since is dropped (the path is
   * captured again). Returns whether the path now has its preimage. Call it while no capture of
   * the path runs: outside its lock only when the lock is free, or holding it.
   */
  private adoptSpeculation(key: string, stats: Stats | undefined): boolean {
    const speculation = this.speculative.get(key);
    if (!speculation || this.records.get(key)?.pre !== speculation.parentRecord) return false;
    this.speculative.delete(key);
    // A folder's own times change as the step changes what is inside it: it must be the same folder.
    const unchanged = speculation.pre.kind === 'directory' ? sameFolder(speculation.stats, stats) : sameState(speculation.stats, stats);
    if (!unchanged) return false;
    this.records.set(key, { pre: speculation.pre, round: speculation.round });
    return true;
  }

  private async preimage(key: string, target: Buffer, stats: Stats | undefined): Promise<Preimage> {
    if (!stats) return { kind: 'absent' };
    const inode = inodeOf(stats);
    switch (kindOf(stats)) {
      case 'directory':
        return { kind: 'directory', ...inode, xattrs: await this.xattrs(target, false), metadataOnly: false };
      case 'symlink':
        return { kind: 'symlink', ...inode, target: await readTarget(target), xattrs: await this.xattrs(target, true) };
      case 'file': {
        const [[found], xattrs] = await Promise.all([this.journal.capture([target], this.contentRoom()), this.xattrs(target, false)]);
        if (found!.kind === 'too-large') throw this.tooLarge('saved content');
        if (found!.kind === 'error') throw new Error(`${key}: ${found!.message}`);
        if (found!.kind !== 'file') throw new Error(`${key} changed while its preimage was captured`);
        return { ...(this.preimageOf(found!) as PreimageOf<'file'>), xattrs };
      }
      default:
        throw new Error(`${key} is neither a file, a folder nor a link; the undo log cannot capture it`);
    }
  }

  /** The attributes of several paths, in one request to the reader. */
  private async xattrsOf(paths: ReadonlyArray<{ target: Buffer; isSymlink: boolean }>): Promise<Array<Xattrs | null>> {
    if (!this.context.captureXattrs || paths.length === 0) return paths.map(() => null);
    const attributes = await readXattrsOf(paths).catch(() => paths.map(() => undefined));
    return attributes.map((found) => {
      if (found === undefined) this.xattrFailures += 1;
      return found ?? null;
    });
  }

  private async xattrs(target: Buffer, isSymlink: boolean): Promise<Xattrs | null> {
    return (await this.xattrsOf([{ target, isSymlink }]))[0]!;
  }

  /**
   * Parents are recorded before children: an existing folder by its mode and times, a missing one
   * as created by the step. Synchronous (the folders were just scanned), so children of one folder
   * captured concurrently find it recorded by whichever came first.
   */
  private recordParents(key: string): void {
    const parent = parentKey(key);
    if (this.records.has(parent)) return;
    const stats = lstatSyncOrUndefined(this.pathOf(parent));
    if (stats?.isDirectory()) {
      this.addRecord(parent, { kind: 'directory', ...inodeOf(stats), xattrs: null, metadataOnly: true });
      return;
    }
    if (parent === '') throw new Error(`the tree root ${this.meta.root} is not a folder`);
    if (stats) throw new Error(`parent ${parent} of ${key} is not a folder`);
    this.recordParents(parent);
    this.addRecord(parent, { kind: 'absent' });
  }

  /** The path of a key under the root, as bytes; kept for the step, which asks for most keys more than once. */
  private pathOf(key: string): Buffer {
    let target = this.paths.get(key);
    if (!target) {
      target = joinBytes(this.rootBytes, key);
      this.paths.set(key, target);
    }
    return target;
  }

  /** Journals a path's preimage (its content, if any, is written or packed already); it counts once the line is durable. */
  private addRecord(key: string, pre: Preimage): void {
    this.records.set(key, { pre, round: this.journal.record({ path: key, pre }) });
  }

  /** Counts bytes against the step limit; past it the step becomes unprotected (the caller catches StepTooLarge). */
  private reserve(bytes: number, what: 'saved content' | 'records'): void {
    this.bytes += bytes;
    if (this.bytes + this.journal.contentBytes > this.context.limits.maxStepBytes) throw this.tooLarge(what);
  }

  /** Bytes of content the step may still save. */
  private contentRoom(): number {
    return Math.max(0, this.context.limits.maxStepBytes - this.bytes);
  }

  private tooLarge(what: string): StepTooLarge {
    return new StepTooLarge(`the step's ${what} went over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
  }

  private ensureFolder(): Promise<void> {
    return this.journal.create(JSON.stringify(this.manifest({ records: [], files: 0 })));
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
      await this.journal.flush().catch(() => {});
      await this.journal.close();
      await writeJsonAtomic(path.join(this.context.directory, UNPROTECTED), { reason: this.unprotectedReason!, files: this.touched.size });
      for (const name of await readdir(this.context.directory)) {
        if (name !== MANIFEST && name !== UNPROTECTED) await unlink(path.join(this.context.directory, name)).catch(() => {});
      }
      this.records.clear();
      this.speculative.clear();
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

  /** Whatever is inside a folder the step created was created by the step too. */
  private async addContentOfCreatedFolders(): Promise<void> {
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind !== 'absent' || this.written.has(key) || !lstatSyncOrUndefined(this.pathOf(key))?.isDirectory()) continue;
      for (const [inner] of await subtree(this.meta.root, key)) {
        if (!this.records.has(inner)) this.records.set(inner, { pre: { kind: 'absent' }, round: 0 });
      }
    }
  }

  /** Paths announced but left as they were (created nothing), and parents with no changed path left below them. */
  private pruneUnchanged(): void {
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind !== 'absent') continue;
      const written = this.written.get(key);
      if (written ? written.kind === 'absent' : !lstatSyncOrUndefined(this.pathOf(key))) this.records.delete(key);
    }
    // A folder is a parent of a changed path when some changed path lies below it.
    const parentsOfChanges = new Set<string>();
    for (const [key, { pre }] of this.records) {
      if (isMetadataOnly(pre)) continue;
      for (let parent = parentKey(key); parent !== ''; parent = parentKey(parent)) parentsOfChanges.add(parent);
      parentsOfChanges.add('');
    }
    for (const [key, { pre }] of [...this.records]) if (isMetadataOnly(pre) && !parentsOfChanges.has(key)) this.records.delete(key);
  }
}

async function folderBytes(directory: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(directory).catch(() => [] as string[])) total += (await stat(path.join(directory, name)).catch(() => undefined))?.size ?? 0;
  return total;
}

export { formatBytes };
