// One step being recorded: the write-ahead half of the undo log. The caller plans the step before
// it changes anything: prepare() asks the plan's safeguard questions (stepPlan.ts; a Deny then has
// nothing to roll back), then captures every planned path's preimage in batches and makes them
// durable (stepJournal.ts). The caller then changes each path only after beforeModify returned,
// which captures again only a path that changed since its capture, and reports each change it
// carried out (markChanged). close() records the changed paths and their parent folders, writes
// the manifest and promotes the folder; a crash before that leaves an in-progress folder that
// UndoLog.open rolls back.
import type { Stats } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { writeJsonAtomic } from '../atomicFile';
import type { CapturedVersion, Entry } from '../files/entry';
import { lstatSyncOrUndefined, nonFolderAncestor } from '../files/fsEntry';
import { bytesFromName, joinBytes } from '../files/pathCodec';
import { modeOwnerTimes, preimageOf, unchangedSince, versionOf } from './captures';
import { currentPostimage, describeDifference, identityOf, writtenPostimage } from './fsState';
import type { CapturedStats } from './packWorker';
import type { Postimage, Preimage, StepRecord } from './records';
import { manifestText, MANIFEST, parentKey, UNPROTECTED } from './records';
import { removeTree, restoreRecords } from './restore';
import { SafeguardCounter } from './safeguards';
import { StepJournal } from './stepJournal';
import type { StepHeader } from './stepManifest';
import { stepManifest, writeUnprotectedManifest } from './stepManifest';
import { planStep } from './stepPlan';
import type { PlannedChange, StepPlan } from './stepPlan';
import { changedCount, contentLimit, countedRecords, isMetadataOnly, overLimitReason, overStepLimit, withoutUnchanged } from './stepRecords';
import type { SafeguardQuestion, StepMeta, StepSummary, WriterContext } from './types';
import { SafeguardDenied } from './types';
import { readXattrsOf } from './xattrs';
import type { Xattrs } from './xattrs';
import { formatBytes } from '../display';

/** The step went over its single-step limit: it drops its preimages and cannot be undone. */
class StepTooLarge extends Error {}

/** Paths per request to the capture worker. */
const BATCH = 256;

interface Capture {
  pre: Preimage;
  /** The journal's flush round after which its line is on disk. */
  round: number;
  /** What the capture found at the path (none for a folder recorded as a parent): to tell at its change whether the path changed since. */
  stats?: CapturedStats;
}

export class StepWriter {
  private state: 'open' | 'closed' | 'rolled-back' = 'open';
  private denial?: SafeguardDenied;
  private unprotectedReason?: string;
  private readonly startedAt = new Date().toISOString();
  private readonly journal: StepJournal;
  private readonly safeguards: SafeguardCounter;
  private readonly captures = new Map<string, Capture>();
  /** Paths whose change began (beforeModify returned for them): what a rollback puts back. */
  private readonly started = new Set<string>();
  /** Paths whose change was carried out, with what it left there when the caller said (the step's postimage). */
  private readonly changed = new Map<string, Postimage | undefined>();
  /** Folders above captured paths found to be real folders (or absent), each checked once per step. */
  private readonly realFolders = new Set<string>();
  private readonly rootBytes: Buffer;
  private recordBytes = 0;
  private failedXattrs = 0;

  constructor(
    private readonly context: WriterContext,
    private readonly meta: StepMeta,
  ) {
    this.safeguards = new SafeguardCounter(context.thresholds);
    this.rootBytes = bytesFromName(meta.root);
    this.journal = new StepJournal(context.directory, { stepId: context.id, root: meta.root }, (bytes, what) => {
      this.recordBytes += bytes;
      if (overStepLimit({ recordBytes: this.recordBytes, contentBytes: this.journal.contentBytes }, context.limits.maxStepBytes)) throw new StepTooLarge(overLimitReason(what, context.limits.maxStepBytes));
    });
  }

  get id(): string {
    return this.context.id;
  }

  /** Set once a safeguard was denied: the caller must stop and treat none of this sync's changes as applied. */
  get denied(): SafeguardDenied | undefined {
    return this.denial;
  }

  /**
   * Plans `changes` (in the order they will be made; see stepPlan.ts) and readies them before any
   * of them is made: asks the plan's questions (a denial rolls back what earlier plans of the step
   * changed, and throws SafeguardDenied), then captures every planned path, or, when the plan is
   * over the single-step limit, records at once that the step keeps no preimages. A step may be
   * planned in parts; the safeguards count over all of them.
   */
  async prepare(changes: readonly PlannedChange[]): Promise<StepPlan> {
    this.assertOpen();
    const plan = planStep(changes, this.context.thresholds, this.context.limits, this.safeguards);
    for (const question of plan.questions) await this.ask(question);
    if (plan.unprotectedReason) await this.becomeUnprotected(plan.unprotectedReason);
    if (!this.capturing) return plan;
    // A path that cannot be captured now (the root, or under a parent that is no folder) is captured at its change, which then fails with the reason.
    const fresh = plan.capture.filter((key) => key !== '' && !this.capturedOwn(key) && !nonFolderAncestor(this.meta.root, key, this.realFolders));
    await this.untilTooLarge(async () => {
      for (let start = 0; start < fresh.length; start += BATCH) await this.capture(fresh.slice(start, start + BATCH), { skipFailures: true });
      await this.journal.flush();
    });
    return plan;
  }

  /**
   * Call at a path's first change in the step, with what is there now (its lstat), and change it
   * only after this returned. A path that is no longer as its capture found it (or was not planned)
   * is captured now. Returns the version saved (for the first change only; undefined: none, e.g.
   * the step keeps no preimages), for the caller to check it is the one it is about to replace.
   */
  async beforeModify(key: string, found: Stats | undefined): Promise<CapturedVersion | undefined> {
    this.assertOpen();
    if (key === '') throw new Error('the root of the tree cannot be modified through the undo log');
    if (this.started.has(key)) return undefined;
    if (!this.capturing) {
      this.started.add(key);
      return undefined;
    }
    const blocked = nonFolderAncestor(this.meta.root, key, this.realFolders);
    if (blocked) throw new Error(`${key}: its parent ${blocked} is not a folder`);
    const capture = this.captures.get(key);
    // Concurrent captures are safe: the worker takes requests one at a time, and a step that went
    // past its room is caught by the size check of the flush round that makes them durable.
    const stale = !capture || isMetadataOnly(capture.pre) || !unchangedSince(capture, found);
    await this.untilTooLarge(async () => {
      if (stale) await this.capture([key], { skipFailures: false });
      const saved = this.captures.get(key);
      if (saved) await this.journal.durable(saved.round);
    });
    // Began once its preimage is durable: a path whose capture failed is not changed, and is asked about again.
    this.started.add(key);
    const saved = this.captures.get(key);
    return saved && versionOf(saved.pre);
  }

  /**
   * The change of `key` was carried out. `report.left`: what it left there (undefined: nothing),
   * when the caller knows; close() then takes that as the step's postimage instead of reading the
   * path back, so an edit someone makes afterwards counts as a barrier rather than as part of the
   * step, and a file the caller verified while writing is not hashed again.
   */
  markChanged(key: string, report?: { left: Entry | undefined }): void {
    if (this.state === 'open') this.changed.set(key, report && this.capturing ? writtenPostimage(this.pathOf(key), report.left) : undefined);
  }

  /**
   * Ends the step: records what it left at every changed path, writes the manifest and moves the
   * step into the log (evicting old steps over the limits). Returns undefined when nothing was
   * recorded: no path changed, the log is disabled, or a denied safeguard rolled the step back.
   * If it throws, the step stays in progress: call rollback() (or the next open() rolls it back).
   */
  async close(): Promise<StepSummary | undefined> {
    if (this.state !== 'open') return undefined;
    const { journal } = this;
    if (this.denial?.rolledBack || !this.context.persist || !journal.created) return this.finish('closed', undefined);
    if (this.unprotectedReason) return this.finish('closed', await this.promoteUnprotected(this.changed.size));
    const { records: changes, unreported } = await this.records();
    const changed = changedCount(changes);
    if (changed === 0) {
      await journal.close();
      await removeTree(Buffer.from(this.context.directory));
      return this.finish('closed', undefined);
    }
    // Nothing more is journaled: the files close while the postimages are gathered.
    const closing = journal.close();
    const records: StepRecord[] = [];
    for (const [key, pre] of [...changes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      // What is at an unreported path may be someone else's version, which the apply did not
      // displace: without a postimage, an undo sees it as a barrier and keeps it before restoring.
      const post = unreported.has(key) ? undefined : (this.changed.get(key) ?? (await currentPostimage(this.pathOf(key)).catch(() => undefined)));
      records.push({ path: key, pre, ...(post && post.kind !== 'other' && { post }) });
    }
    await closing;
    const manifest = stepManifest(this.header, { closedAt: new Date().toISOString(), records, paths: changed });
    const text = manifestText(manifest, journal.filesBytes);
    if (manifest.bytes > this.context.limits.maxStepBytes) {
      await this.becomeUnprotected(`the step needs ${formatBytes(manifest.bytes)}, over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
      return this.finish('closed', await this.promoteUnprotected(changed));
    }
    await journal.writeManifest(text);
    await this.context.beforePromote?.(this.id);
    return this.finish('closed', await this.context.promote(manifest));
  }

  /**
   * Puts every path whose change began back and discards the step (after a failure, or to abandon
   * it). Returns problems; with problems the step stays in progress so the next open() retries it.
   */
  async rollback(): Promise<string[]> {
    if (this.state !== 'open') return [];
    if (this.denial?.rolledBack) return this.finish('rolled-back', []);
    if (this.context.persist && this.unprotectedReason) {
      await this.promoteUnprotected(this.changed.size);
      this.finish('closed', undefined);
      throw new Error(`undo step ${this.id} cannot be rolled back: ${this.unprotectedReason}`);
    }
    return this.finish('rolled-back', await this.restoreStarted());
  }

  private get capturing(): boolean {
    return this.context.persist && this.unprotectedReason === undefined;
  }

  private assertOpen(): void {
    if (this.denial) throw this.denial;
    if (this.state !== 'open') throw new Error(`undo step ${this.id} is ${this.state}`);
  }

  private finish<T>(state: 'closed' | 'rolled-back', value: T): T {
    this.state = state;
    this.context.finished();
    return value;
  }

  /** Asks one question; a denial rolls back what the step changed so far, ends it and throws. */
  private async ask(question: SafeguardQuestion): Promise<void> {
    const answer = this.meta.ask ? await this.meta.ask(question).catch(() => 'deny' as const) : 'allow';
    if (answer === 'allow') return;
    const canRollBack = this.capturing;
    this.denial = new SafeguardDenied(question, canRollBack, canRollBack ? await this.restoreStarted() : []);
    if (canRollBack) this.finish('rolled-back', undefined);
    throw this.denial;
  }

  /** Creates the step's folder, with the open step's manifest (its header, no records yet); once. */
  private openFolder(): Promise<void> {
    return this.journal.create(JSON.stringify(stepManifest(this.header, { records: [], paths: 0 })));
  }

  /** Has `key` a preimage of its own (not only its record as a parent folder)? */
  private capturedOwn(key: string): boolean {
    const capture = this.captures.get(key);
    return capture !== undefined && !isMetadataOnly(capture.pre);
  }

  /** The path of a key under the root, as bytes. */
  private pathOf(key: string): Buffer {
    return joinBytes(this.rootBytes, key);
  }

  /**
   * Captures `keys` with one request to the capture worker and one to the attribute reader (after
   * the worker looked at each path, so they are at least as new as its stats), and journals them,
   * each after its parents; they are durable after the next flush round. `skipFailures`: a path
   * that cannot be captured is left out rather than failing the batch.
   */
  private async capture(keys: readonly string[], { skipFailures }: { skipFailures: boolean }): Promise<void> {
    await this.openFolder();
    const found = await this.journal.capture(keys.map((key) => this.pathOf(key)), contentLimit(this.recordBytes, this.context.limits.maxStepBytes));
    const captured: Array<{ key: string; pre: Preimage; stats?: CapturedStats }> = [];
    keys.forEach((key, index) => {
      const result = found[index]!;
      if (result.kind === 'too-large') throw new StepTooLarge(overLimitReason('saved content', this.context.limits.maxStepBytes));
      try {
        const pre = preimageOf(key, result);
        this.recordParents(key);
        // Recorded so far as the parent of a changed path: its mode and times are the ones from before the step.
        const parent = this.captures.get(key)?.pre;
        captured.push({ key, pre: pre.kind === 'directory' && parent?.kind === 'directory' && parent.metadataOnly ? { ...parent, metadataOnly: false } : pre, ...('stats' in result && { stats: result.stats }) });
      } catch (error) {
        if (!skipFailures) throw error;
      }
    });
    const withAttributes = captured.filter(({ pre }) => pre.kind !== 'absent');
    const attributes = await this.xattrsOf(withAttributes.map(({ key, pre }) => ({ target: this.pathOf(key), isSymlink: pre.kind === 'symlink' })));
    withAttributes.forEach(({ pre }, index) => {
      if (pre.kind !== 'absent') pre.xattrs = attributes[index]!;
    });
    for (const { key, pre, stats } of captured) this.add(key, pre, stats);
  }

  /** The attributes of several paths, in one request to the reader. */
  private async xattrsOf(paths: ReadonlyArray<{ target: Buffer; isSymlink: boolean }>): Promise<Array<Xattrs | null>> {
    if (!this.context.captureXattrs || paths.length === 0) return paths.map(() => null);
    const attributes = await readXattrsOf(paths).catch(() => paths.map(() => undefined));
    return attributes.map((found) => {
      if (found === undefined) this.failedXattrs += 1;
      return found ?? null;
    });
  }

  /**
   * Parents are recorded before children: an existing folder by its mode and times, a missing one
   * as created by the step. Synchronous (the folders were just scanned), so children of one folder
   * find it recorded by whichever came first.
   */
  private recordParents(key: string): void {
    const parent = parentKey(key);
    if (this.captures.has(parent)) return;
    const stats = lstatSyncOrUndefined(this.pathOf(parent));
    if (stats?.isDirectory()) return this.add(parent, { kind: 'directory', ...modeOwnerTimes(stats), xattrs: null, metadataOnly: true });
    if (parent === '') throw new Error(`the tree root ${this.meta.root} is not a folder`);
    if (stats) throw new Error(`parent ${parent} of ${key} is not a folder`);
    this.recordParents(parent);
    this.add(parent, { kind: 'absent' });
  }

  /** Journals a path's preimage (its content, if any, is saved already); it counts once the line is durable. */
  private add(key: string, pre: Preimage, stats?: CapturedStats): void {
    this.captures.set(key, { pre, round: this.journal.record({ path: key, pre }), ...(stats && { stats }) });
  }

  /** Runs `work`; if the step goes over its single-step limit meanwhile, goes on without preimages. */
  private async untilTooLarge(work: () => Promise<void>): Promise<void> {
    await work().catch((error: unknown) => {
      if (!(error instanceof StepTooLarge)) throw error;
      return this.becomeUnprotected(error.message);
    });
  }

  /**
   * The records of the step's changes and their parents (countedRecords): the changes the caller
   * reported, and those that began and were not reported (the apply failed or skipped them) but
   * whose path no longer holds its preimage (`unreported`). Paths it left absent, and parents with
   * no change below them, are left out. Nothing else is recorded: what someone else put in a
   * folder the step created is theirs, and an undo finds it a barrier.
   */
  private async records(): Promise<{ records: Map<string, Preimage>; unreported: Set<string> }> {
    const unreported = new Set<string>();
    for (const key of this.started) {
      const pre = this.captures.get(key)?.pre;
      if (this.changed.has(key) || !pre || isMetadataOnly(pre)) continue;
      if (describeDifference(identityOf(pre), identityOf(await currentPostimage(this.pathOf(key)))) !== undefined) unreported.add(key);
    }
    const records = countedRecords(this.captures, [...this.changed.keys(), ...unreported]);
    const left = withoutUnchanged(records, (key) => {
      const post = this.changed.get(key);
      return post ? post.kind === 'absent' : !lstatSyncOrUndefined(this.pathOf(key));
    });
    return { records: left, unreported };
  }

  /**
   * Puts every path whose change began back to its preimage and removes the step's folder; returns
   * problems (the folder then stays in progress, so the next open() tries again). What the caller
   * reported leaving at a path is the step's postimage there: a version that is neither it nor the
   * preimage is kept under the kept folder before the path is restored (see restoreRecords).
   */
  private async restoreStarted(): Promise<string[]> {
    if (!this.journal.created || !this.capturing) return [];
    // Contents still in an open frame get their blobs (a path whose capture never became durable
    // was not changed, and restoring it finds the same content and leaves it).
    await this.journal.flush().catch(() => {});
    await this.journal.close();
    const records = [...countedRecords(this.captures, this.started)].map(([key, pre]) => ({ path: key, pre, post: this.changed.get(key) }));
    const problems = await restoreRecords({ root: this.meta.root, stepDir: this.context.directory, records, checkPostimages: false, keepRoot: this.context.keptDirectory });
    if (problems.length === 0) await removeTree(Buffer.from(this.context.directory));
    return problems;
  }

  /** Over the single-step limit: keep going without preimages; the step will be listed but cannot be undone. */
  private async becomeUnprotected(reason: string): Promise<void> {
    if (this.unprotectedReason !== undefined || !this.context.persist) return;
    this.unprotectedReason = reason;
    await this.openFolder();
    await this.journal.close();
    await writeJsonAtomic(path.join(this.context.directory, UNPROTECTED), { reason, paths: this.safeguards.plannedCount });
    for (const name of await readdir(this.context.directory)) {
      if (name !== MANIFEST && name !== UNPROTECTED) await unlink(path.join(this.context.directory, name)).catch(() => {});
    }
    this.captures.clear();
    this.recordBytes = 0;
  }

  /** Promotes the step as one that cannot be undone, changing `paths` paths. */
  private async promoteUnprotected(paths: number): Promise<StepSummary> {
    return this.context.promote(await writeUnprotectedManifest(this.context.directory, this.header, this.unprotectedReason!, paths));
  }

  /** What the step's manifests say about it (see stepManifest.ts). */
  private get header(): StepHeader {
    const { syncId, policy, root } = this.meta;
    return { id: this.id, syncId, policy, root, startedAt: this.startedAt, notes: this.context.notes, xattrFailures: this.failedXattrs, bytes: this.recordBytes };
  }
}
