// One step being recorded: the write-ahead half of the undo log. Before the caller first changes
// a path, its preimage is in the step's journal (see stepJournal.ts) and durable; the caller
// changes the path only after beforeModify returned. close() records postimages, writes the
// manifest and promotes the folder; a crash before that leaves an in-progress folder that
// UndoLog.open rolls back.
//
// A sync plans its step before it changes anything (stepPlan.ts): prepare() asks the plan's
// safeguard questions, then captures every planned path in a few batches (prefetch). During the
// apply, an announcement whose path is as its capture saw it, and that raises no question,
// settles at once, without an await. Anything else (a path that changed since its capture, a
// folder going with its content, a question the plan did not foresee) runs in the step's one
// queue, as do prefetch, forget, close and rollback: one at a time, so they need no locks.
import type { Stats } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { writeJsonAtomic } from '../atomicFile';
import type { CapturedVersion, Entry } from '../files/entry';
import { lstatSyncOrUndefined, nonFolderAncestor } from '../files/fsEntry';
import { bytesFromName, joinBytes, nameFromBytes } from '../files/pathCodec';
import { sameFolder, sameState } from './capture';
import type { CapturedPath, CapturedStats } from './packWorker';
import { currentPostimage, describeDifference, identityOf, kindOf, permissions, subtree, writtenPostimage } from './fsState';
import type { Manifest, Postimage, Preimage, StepRecord } from './records';
import { isUnder, keyDepth, manifestText, MANIFEST, parentKey, UNDO_FORMAT_VERSION, UNPROTECTED } from './records';
import { removeTree, restoreRecords } from './restore';
import { beforeOf, formatBytes, SafeguardCounter } from './safeguards';
import { movedPaths, planStep } from './stepPlan';
import type { PlannedChange, StepPlan } from './stepPlan';
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
  /**
   * Set while the path was captured ahead (or recorded as the parent of one) and not announced:
   * what the capture found there, to tell at the announcement whether the path changed since.
   */
  ahead?: { stats: CapturedStats | undefined };
}

class StepTooLarge extends Error {}

/** Paths per request to the capture worker when capturing ahead. */
const BATCH = 256;

const isMetadataOnly = (pre: Preimage): boolean => pre.kind === 'directory' && pre.metadataOnly;

const modeOwnerTimes = (stats: CapturedStats) => ({ mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs });

export class StepWriter {
  private state: 'open' | 'denied' | 'closed' | 'rolled-back' = 'open';
  /** close() or rollback() was called: announcements no longer settle at once, they queue behind it. */
  private ending = false;
  private readonly records = new Map<string, Captured>();
  /** Kind of each path announced (and of what was inside a folder announced whole), as it was before the step. */
  private readonly announced = new Map<string, ReturnType<typeof kindOf>>();
  /** What the caller reported writing at a path (see applied()): the step's postimage there. */
  private readonly written = new Map<string, Postimage>();
  /**
   * Folders above announced paths found to be real folders (or absent), each checked once per
   * step. The writer only reads through them; the apply checks a path's parents itself, right
   * before it writes.
   */
  private readonly realFolders = new Set<string>();
  private readonly rootBytes: Buffer;
  private readonly safeguards: SafeguardCounter;
  private readonly journal: StepJournal;
  private readonly startedAt = new Date().toISOString();
  /** Bytes of journal lines written so far; with the saved content (journal.contentBytes), checked against the step limit. */
  private bytes = 0;
  private unprotectedReason?: string;
  private xattrFailures = 0;
  private denial?: SafeguardDenied;
  /** Everything that awaits runs here, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

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

  /** The plan of this step for `changes`, in the order they will be made, with the step's thresholds and limits. */
  plan(changes: readonly PlannedChange[]): StepPlan {
    // The apply's announcements count deletions with the same exemptions as the plan.
    this.safeguards.setMoved(movedPaths(changes));
    return planStep(changes, this.context.thresholds, this.context.limits);
  }

  /**
   * Readies the step for its plan before anything changes: asks the plan's questions (a denial
   * throws SafeguardDenied, with nothing to roll back), then captures every planned path, or, when
   * the plan is over the single-step limit, records at once that the step keeps no preimages.
   */
  async prepare(plan: StepPlan): Promise<void> {
    await this.queued(async () => {
      for (const question of plan.questions) await this.ask(question);
      if (plan.unprotectedReason && this.capturing) {
        await this.ensureFolder();
        await this.becomeUnprotected(plan.unprotectedReason);
      }
    });
    if (!plan.unprotectedReason) await this.prefetch(plan.capture);
  }

  /**
   * Call before the first write, delete, rename, truncate or chmod of `relativePath` (a snapshot
   * key) in this step, and change the path only after it returned; calling it again for a path
   * is cheap. Checks the safeguards (it may wait for `ask`) and throws SafeguardDenied when one
   * is denied, after rolling the step back. `seen`: what the caller found at the path just now
   * (its lstat; stats undefined: nothing), so the writer need not look again.
   */
  beforeModify(relativePath: string, action: ModifyAction, seen?: { stats: Stats | undefined }): Promise<void> {
    const stats = seen ? seen.stats : lstatSyncOrUndefined(this.pathOf(relativePath));
    if (this.settle(relativePath, action, stats)) return Promise.resolve();
    return this.queued(() => this.modify(relativePath, action, stats));
  }

  /**
   * Captures the preimages of `keys` ahead of their announcements, in batches (one request to the
   * capture worker and one to the attribute reader each) made durable by one flush round. A
   * capture counts once beforeModify announces its path and finds it as the capture saw it (same
   * inode, size, times, mode, owner; a folder, whose times the step's own changes inside it move:
   * same inode, mode and owner); otherwise the path is captured again then. A path captured ahead
   * and never announced is left out of the step, but as the parent of one that was; a crash
   * recovery restores it too, which leaves it as it was. Never rejects: beforeModify captures what
   * this could not.
   */
  prefetch(keys: readonly string[]): Promise<void> {
    return this.queued(async () => {
      if (this.state !== 'open' || !this.capturing) return;
      const fresh = [...new Set(keys)].filter((key) => {
        const known = this.records.get(key);
        return key !== '' && !(known && !isMetadataOnly(known.pre)) && !nonFolderAncestor(this.meta.root, key, this.realFolders);
      });
      try {
        for (let start = 0; start < fresh.length; start += BATCH) await this.captureBatch(fresh.slice(start, start + BATCH), true);
        await this.journal.flush();
      } catch (error) {
        if (error instanceof StepTooLarge) await this.becomeUnprotected(error.message);
      }
    });
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
   * The version of a path whose preimage this step saved (undefined: none saved, e.g. the step is
   * unprotected), for the caller to check it is the version it is about to replace.
   */
  savedVersion(relativePath: string): CapturedVersion | undefined {
    const pre = this.capturing ? this.records.get(relativePath)?.pre : undefined;
    if (!pre || isMetadataOnly(pre)) return undefined;
    if (pre.kind === 'file') return { kind: 'file', hash: pre.hash };
    if (pre.kind === 'symlink') return { kind: 'symlink', target: pre.target };
    return { kind: pre.kind };
  }

  /**
   * The change announced for `relativePath` was not carried out: drop its preimage (and those of
   * paths below it), but only where the disk still holds exactly the preimage. Returns whether
   * the path's own preimage was dropped.
   */
  forget(relativePath: string): Promise<boolean> {
    return this.queued(async () => {
      if (this.state !== 'open') return false;
      this.written.delete(relativePath);
      if (!this.capturing) {
        this.announced.delete(relativePath);
        this.safeguards.uncount(relativePath);
        return false;
      }
      const own = this.records.get(relativePath);
      if (!own || own.ahead || isMetadataOnly(own.pre)) return false;
      const keys = [...this.records.keys()].filter((key) => key === relativePath || isUnder(key, relativePath)).sort((a, b) => keyDepth(b) - keyDepth(a));
      let dropped = false;
      for (const key of keys) {
        const { pre, ahead } = this.records.get(key)!;
        if (ahead || isMetadataOnly(pre)) continue;
        if (describeDifference(identityOf(pre), identityOf(await currentPostimage(this.pathOf(key)))) !== undefined) continue;
        // Its saved content stays in the content file (bytes on disk, still counted); the journal no longer counts the path.
        this.journal.record({ forget: key });
        this.records.delete(key);
        this.announced.delete(key);
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
    this.ending = true;
    return this.queued(async () => {
      if (this.state === 'closed' || this.state === 'rolled-back') return undefined;
      if (this.state === 'denied' && this.denial?.rolledBack) return this.finish('closed', undefined);
      if (!this.context.persist || !this.journal.created) return this.finish('closed', undefined);
      if (this.unprotectedReason) return this.finish('closed', await this.context.promote(await this.writeUnprotectedManifest()));

      // Every capture that counts is durable by now (beforeModify waited for it).
      const counted = this.recordsThatCount();
      await this.addContentOfCreatedFolders(counted);
      this.pruneUnchanged(counted);
      const changed = [...counted.values()].filter((pre) => !isMetadataOnly(pre)).length;
      if (changed === 0) {
        await this.journal.close();
        await removeTree(Buffer.from(this.context.directory));
        return this.finish('closed', undefined);
      }
      // Nothing more is journaled: the files close while the postimages are gathered.
      const closing = this.journal.close();
      const records: StepRecord[] = [];
      for (const [key, pre] of [...counted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
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
    this.ending = true;
    return this.queued(async () => {
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

  /** Runs `work` once everything queued before it has settled. */
  private queued<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * An announcement settled at once, without an await (a sync announces a thousand paths, and
   * each await is an allocation and a turn of the event loop): not a folder going with its
   * content, the path's preimage durable (captured ahead and unchanged since, or captured at an
   * earlier announcement), no question raised. False for anything else, for modify() to handle.
   */
  private settle(key: string, action: ModifyAction, stats: Stats | undefined): boolean {
    if (this.state !== 'open' || this.ending || key === '' || (stats?.isDirectory() && action !== 'chmod')) return false;
    const record = this.records.get(key);
    if (this.capturing && !(record && !isMetadataOnly(record.pre) && this.journal.isDurable(record.round))) return false;
    if (nonFolderAncestor(this.meta.root, key, this.realFolders) !== undefined) return false;
    // Counting a deletion here and again in modify() is harmless: a path counts once.
    if (this.safeguards.questionsFor(key, action, beforeOf(stats), [], (path) => this.announced.get(path)).length > 0) return false;
    if (this.capturing && !this.adopt(key, stats)) return false;
    if (!this.announced.has(key)) this.announced.set(key, kindOf(stats));
    return true;
  }

  /** An announcement that could not settle at once, in the queue. */
  private async modify(key: string, action: ModifyAction, stats: Stats | undefined): Promise<void> {
    if (this.state !== 'open') throw this.denial ?? new Error(`undo step ${this.id} is ${this.state}`);
    if (key === '') throw new Error('the root of the tree cannot be modified through the undo log');
    const blocked = nonFolderAncestor(this.meta.root, key, this.realFolders);
    if (blocked) throw new Error(`${key}: its parent ${blocked} is not a folder`);
    // A folder deleted, renamed away or replaced takes its content with it: capture all of it.
    const touched = [[key, stats] as const, ...(stats?.isDirectory() && action !== 'chmod' ? await subtree(this.meta.root, key) : [])];
    const inside = touched.slice(1).map(([innerKey, innerStats]) => [innerKey, beforeOf(innerStats)!] as const);
    for (const question of this.safeguards.questionsFor(key, action, beforeOf(stats), inside, (path) => this.announced.get(path))) await this.ask(question);
    for (const [touchedKey, touchedStats] of touched) if (!this.announced.has(touchedKey)) this.announced.set(touchedKey, kindOf(touchedStats));
    if (!this.capturing) return;
    try {
      const missing = touched.filter(([touchedKey, touchedStats]) => !this.adopt(touchedKey, touchedStats)).map(([touchedKey]) => touchedKey);
      if (missing.length > 0) await this.captureBatch(missing, false);
      // Durable before the caller may change the paths (a capture made ahead is already).
      await this.journal.durable(touched.reduce((round, [touchedKey]) => Math.max(round, this.records.get(touchedKey)?.round ?? 0), 0));
    } catch (error) {
      if (!(error instanceof StepTooLarge)) throw error;
      await this.becomeUnprotected(error.message);
    }
  }

  /**
   * Whether `key` has its own preimage, taking one captured ahead if the path is still as the
   * capture found it (a folder, whose times the step's own changes inside it move: the same
   * folder, mode and owner). A path that changed since its capture ahead must be captured again.
   */
  private adopt(key: string, stats: Stats | undefined): boolean {
    const record = this.records.get(key);
    if (!record || isMetadataOnly(record.pre)) return false;
    if (!record.ahead) return true;
    const unchanged = record.pre.kind === 'directory' ? sameFolder(record.ahead.stats, stats) : sameState(record.ahead.stats, stats);
    if (unchanged) record.ahead = undefined;
    return unchanged;
  }

  /** Asks one question, in the queue; a kind once allowed is not asked again. A denial rolls the step back and throws. */
  private async ask(question: SafeguardQuestion): Promise<void> {
    if (this.safeguards.isAllowed(question.kind)) return;
    const answer = this.meta.ask ? await this.meta.ask(question).catch(() => 'deny' as const) : 'allow';
    if (answer === 'allow') return this.safeguards.allow(question.kind);
    const canRollBack = this.capturing;
    this.state = 'denied';
    this.denial = new SafeguardDenied(question, canRollBack, canRollBack ? await this.restoreAll() : []);
    if (canRollBack) this.context.finished();
    throw this.denial;
  }

  private async restoreAll(): Promise<string[]> {
    if (!this.context.persist || !this.journal.created) return [];
    // Contents still in an open frame get their blobs (a path whose capture never became durable
    // was not changed, and restoring it finds the same content and leaves it).
    await this.journal.flush().catch(() => {});
    await this.journal.close();
    // What the caller wrote is the step's postimage: a rollback may replace it, and keeps anything else it finds.
    const records = [...this.recordsThatCount()].map(([key, pre]) => ({ path: key, pre, post: this.written.get(key) }));
    const problems = await restoreRecords({ root: this.meta.root, stepDir: this.context.directory, records, checkPostimages: false, keepRoot: this.context.keptDirectory });
    // With problems the folder stays in progress, so the next open() tries again.
    if (problems.length === 0) await removeTree(Buffer.from(this.context.directory));
    return problems;
  }

  /**
   * Captures the preimages of `keys` with one request to the capture worker and one to the
   * attribute reader (after the worker looked at each path, so they are at least as new as its
   * stats), and journals them; they are durable after the next flush round. Ahead of the
   * announcements (`ahead`), a path that cannot be captured now is left for its announcement.
   */
  private async captureBatch(keys: readonly string[], ahead: boolean): Promise<void> {
    await this.ensureFolder();
    const found = await this.journal.capture(keys.map((key) => this.pathOf(key)), this.contentRoom());
    const captured: Array<{ key: string; pre: Preimage; stats: CapturedStats | undefined }> = [];
    keys.forEach((key, index) => {
      const result = found[index]!;
      if (result.kind === 'too-large') throw this.tooLarge('saved content');
      try {
        const pre = preimageOf(key, result);
        this.recordParents(key, ahead);
        // Recorded so far as the parent of a changed path: its mode and times are the ones from before the step.
        const parent = this.records.get(key)?.pre;
        captured.push({ key, pre: pre.kind === 'directory' && parent?.kind === 'directory' && parent.metadataOnly ? { ...parent, metadataOnly: false } : pre, stats: 'stats' in result ? result.stats : undefined });
      } catch (error) {
        if (!ahead) throw error;
      }
    });
    const withAttributes = captured.filter(({ pre }) => pre.kind !== 'absent');
    const attributes = await this.xattrsOf(withAttributes.map(({ key, pre }) => ({ target: this.pathOf(key), isSymlink: pre.kind === 'symlink' })));
    withAttributes.forEach(({ pre }, index) => {
      if (pre.kind !== 'absent') pre.xattrs = attributes[index]!;
    });
    for (const { key, pre, stats } of captured) this.addRecord(key, pre, ahead ? { stats } : undefined);
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

  /**
   * Parents are recorded before children: an existing folder by its mode and times, a missing one
   * as created by the step. Synchronous (the folders were just scanned), so children of one folder
   * find it recorded by whichever came first.
   */
  private recordParents(key: string, ahead: boolean): void {
    const parent = parentKey(key);
    if (this.records.has(parent)) return;
    const stats = lstatSyncOrUndefined(this.pathOf(parent));
    const flag = ahead ? { stats: undefined } : undefined;
    if (stats?.isDirectory()) return this.addRecord(parent, { kind: 'directory', ...modeOwnerTimes(stats), xattrs: null, metadataOnly: true }, flag);
    if (parent === '') throw new Error(`the tree root ${this.meta.root} is not a folder`);
    if (stats) throw new Error(`parent ${parent} of ${key} is not a folder`);
    this.recordParents(parent, ahead);
    this.addRecord(parent, { kind: 'absent' }, flag);
  }

  /**
   * The step's records: those of announced paths and of their parents. A path captured ahead but
   * never announced counts only as the parent of one that was: a folder by its mode and times from
   * before the step, a missing one as created by the step.
   */
  private recordsThatCount(): Map<string, Preimage> {
    const counted = new Map<string, Preimage>();
    const parents = new Set<string>();
    for (const [key, { pre, ahead }] of this.records) {
      if (ahead) continue;
      counted.set(key, pre);
      if (isMetadataOnly(pre)) continue;
      for (let parent = key; parent !== ''; ) {
        parent = parentKey(parent);
        parents.add(parent);
      }
    }
    for (const [key, { pre, ahead }] of this.records) {
      if (!ahead || !parents.has(key)) continue;
      if (pre.kind === 'directory') counted.set(key, { ...pre, metadataOnly: true });
      else if (pre.kind === 'absent') counted.set(key, pre);
    }
    return counted;
  }

  /** The path of a key under the root, as bytes. */
  private pathOf(key: string): Buffer {
    return joinBytes(this.rootBytes, key);
  }

  /** Journals a path's preimage (its content, if any, is saved already); it counts once the line is durable. */
  private addRecord(key: string, pre: Preimage, ahead: Captured['ahead']): void {
    this.records.set(key, { pre, round: this.journal.record({ path: key, pre }), ...(ahead && { ahead }) });
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

  /** Over the single-step limit: keep going without preimages; the step will be listed but cannot be undone. Runs in the queue. */
  private async becomeUnprotected(reason: string): Promise<void> {
    this.unprotectedReason ??= reason;
    await this.journal.close();
    await writeJsonAtomic(path.join(this.context.directory, UNPROTECTED), { reason: this.unprotectedReason, files: this.announced.size });
    for (const name of await readdir(this.context.directory)) {
      if (name !== MANIFEST && name !== UNPROTECTED) await unlink(path.join(this.context.directory, name)).catch(() => {});
    }
    this.records.clear();
    this.bytes = 0;
  }

  private async writeUnprotectedManifest(): Promise<Manifest> {
    const manifest: Manifest = { ...this.manifest({ closedAt: new Date().toISOString(), records: [], files: this.announced.size }), protected: false, unprotectedReason: this.unprotectedReason };
    await writeJsonAtomic(path.join(this.context.directory, MANIFEST), manifest);
    manifest.bytes = await folderBytes(this.context.directory);
    return manifest;
  }

  /** Whatever is inside a folder the step created was created by the step too. */
  private async addContentOfCreatedFolders(records: Map<string, Preimage>): Promise<void> {
    for (const [key, pre] of [...records]) {
      if (pre.kind !== 'absent' || this.written.has(key) || !lstatSyncOrUndefined(this.pathOf(key))?.isDirectory()) continue;
      for (const [inner] of await subtree(this.meta.root, key)) if (!records.has(inner)) records.set(inner, { kind: 'absent' });
    }
  }

  /** Paths announced but left as they were (created nothing), and parents with no changed path left below them. */
  private pruneUnchanged(records: Map<string, Preimage>): void {
    for (const [key, pre] of [...records]) {
      if (pre.kind !== 'absent') continue;
      const written = this.written.get(key);
      if (written ? written.kind === 'absent' : !lstatSyncOrUndefined(this.pathOf(key))) records.delete(key);
    }
    // A folder is a parent of a changed path when some changed path lies below it.
    const parentsOfChanges = new Set<string>();
    for (const [key, pre] of records) {
      if (isMetadataOnly(pre)) continue;
      for (let parent = parentKey(key); parent !== ''; parent = parentKey(parent)) parentsOfChanges.add(parent);
      parentsOfChanges.add('');
    }
    for (const [key, pre] of [...records]) if (isMetadataOnly(pre) && !parentsOfChanges.has(key)) records.delete(key);
  }
}

/** The preimage of what the capture worker found (attributes still to read). */
function preimageOf(key: string, found: CapturedPath): Preimage {
  switch (found.kind) {
    case 'absent':
      return { kind: 'absent' };
    case 'file':
      return { kind: 'file', ...modeOwnerTimes(found.stats), xattrs: null, size: found.blob.size, hash: found.hash, blob: found.blob };
    case 'symlink':
      return { kind: 'symlink', ...modeOwnerTimes(found.stats), xattrs: null, target: nameFromBytes(found.target) };
    case 'directory':
      return { kind: 'directory', ...modeOwnerTimes(found.stats), xattrs: null, metadataOnly: false };
    case 'error':
      throw new Error(`${key}: ${found.message}`);
    default:
      throw new Error(`${key} is neither a file, a folder nor a link; the undo log cannot capture it`);
  }
}

async function folderBytes(directory: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(directory).catch(() => [] as string[])) total += (await stat(path.join(directory, name)).catch(() => undefined))?.size ?? 0;
  return total;
}

export { formatBytes };
