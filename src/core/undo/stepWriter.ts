// One step being recorded: the write-ahead half of the undo log. Before the caller first changes
// a path, its preimage is in the step's journal (see stepJournal.ts) and durable; the caller
// changes the path only after beforeModify returned. close() records postimages, writes the
// manifest and promotes the folder; a crash before that leaves an in-progress folder that
// UndoLog.open rolls back.
//
// A sync plans its step before it changes anything (stepPlan.ts): prepare() asks the plan's
// safeguard questions, then captures every planned path ahead, in batches (stepCaptures.ts).
// During the apply, an announcement takes the capture made ahead when its path is as that capture
// saw it, and captures the path again otherwise (as it captures a folder's content when the folder
// goes, and asks a question the plan did not foresee). Announcements, forget, close and rollback
// run in the step's one queue, one at a time, so they need no locks.
import type { Stats } from 'node:fs';
import type { CapturedVersion, Entry } from '../files/entry';
import { lstatSyncOrUndefined } from '../files/fsEntry';
import { kindOf, subtree } from './fsState';
import { manifestText } from './records';
import { removeTree } from './restore';
import { beforeOf, formatBytes, SafeguardCounter } from './safeguards';
import { StepCaptures, StepTooLarge } from './stepCaptures';
import type { StepHeader } from './stepManifest';
import { stepManifest, writeUnprotectedManifest } from './stepManifest';
import { movedPaths, planStep } from './stepPlan';
import type { PlannedChange, StepPlan } from './stepPlan';
import { changedCount } from './stepRecords';
import type { ModifyAction, SafeguardQuestion, StepMeta, StepSummary, WriterContext } from './types';
import { SafeguardDenied } from './types';

export class StepWriter {
  private state: 'open' | 'denied' | 'closed' | 'rolled-back' = 'open';
  private readonly captures: StepCaptures;
  private readonly safeguards: SafeguardCounter;
  private readonly startedAt = new Date().toISOString();
  private unprotectedReason?: string;
  private denial?: SafeguardDenied;
  /** Everything that awaits runs here, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly context: WriterContext,
    private readonly meta: StepMeta,
  ) {
    this.safeguards = new SafeguardCounter(context.thresholds);
    const header = () => JSON.stringify(stepManifest(this.header, { records: [], paths: 0 }));
    this.captures = new StepCaptures({ directory: context.directory, stepId: context.id, root: meta.root, captureXattrs: context.captureXattrs, maxStepBytes: context.limits.maxStepBytes, header });
  }

  get id(): string {
    return this.context.id;
  }

  /** Set once a safeguard was denied: the caller must stop and treat none of this sync's changes as applied. */
  get denied(): SafeguardDenied | undefined {
    return this.denial;
  }

  /**
   * Plans the step for `changes` (in the order they will be made; see stepPlan.ts) and readies it
   * before anything changes: asks the plan's questions (a denial throws SafeguardDenied, with
   * nothing to roll back), then captures every planned path, or, when the plan is over the
   * single-step limit, records at once that the step keeps no preimages.
   */
  async prepare(changes: readonly PlannedChange[]): Promise<StepPlan> {
    // The apply's announcements count deletions with the same exemptions as the plan.
    this.safeguards.setMoved(movedPaths(changes));
    const plan = planStep(changes, this.context.thresholds, this.context.limits);
    await this.queued(async () => {
      for (const question of plan.questions) await this.ask(question);
      if (plan.unprotectedReason && this.capturing) {
        await this.captures.openFolder();
        await this.becomeUnprotected(plan.unprotectedReason);
      }
    });
    if (!plan.unprotectedReason) await this.captureAhead(plan.capture);
    return plan;
  }

  /**
   * Captures the preimages of `keys` ahead of their announcements (see StepCaptures.ahead). A path
   * captured ahead and never announced is left out of the step, but as the parent of one that
   * was; a crash recovery restores it too, which leaves it as it was. Never rejects: beforeModify
   * captures what this could not.
   */
  captureAhead(keys: readonly string[]): Promise<void> {
    return this.queued(async () => {
      if (this.state !== 'open' || !this.capturing) return;
      await this.captures.ahead(keys).catch((error: unknown) => (error instanceof StepTooLarge ? this.becomeUnprotected(error.message) : undefined));
    });
  }

  /**
   * Call before the first write, delete, rename, truncate or chmod of `relativePath` (a snapshot
   * key) in this step, and change the path only after it returned; calling it again for a path
   * is cheap. Checks the safeguards (it may wait for `ask`) and throws SafeguardDenied when one
   * is denied, after rolling the step back. `seen`: what the caller found at the path just now
   * (its lstat; stats undefined: nothing), so the writer need not look again.
   */
  beforeModify(relativePath: string, action: ModifyAction, seen?: { stats: Stats | undefined }): Promise<void> {
    const stats = seen ? seen.stats : lstatSyncOrUndefined(this.captures.pathOf(relativePath));
    return this.queued(() => this.modify(relativePath, action, stats));
  }

  /**
   * Optional: records that the change announced for `relativePath` was carried out and left `next`
   * there (undefined: deleted). close() then takes that as the step's postimage instead of reading
   * the path back, so an edit someone makes afterwards counts as a barrier rather than as part of
   * the step; and a file the caller verified while writing is not hashed again.
   */
  recordWritten(relativePath: string, next: Entry | undefined): void {
    if (this.state === 'open' && this.capturing) this.captures.recordWritten(relativePath, next);
  }

  /**
   * The version of a path whose preimage this step saved (undefined: none saved, e.g. the step is
   * unprotected), for the caller to check it is the version it is about to replace.
   */
  savedVersion(relativePath: string): CapturedVersion | undefined {
    return this.capturing ? this.captures.savedVersion(relativePath) : undefined;
  }

  /**
   * The change announced for `relativePath` was not carried out: drop its preimage (and those of
   * paths below it), but only where the disk still holds exactly the preimage. Returns whether
   * the path's own preimage was dropped.
   */
  forget(relativePath: string): Promise<boolean> {
    return this.queued(async () => {
      if (this.state !== 'open') return false;
      const dropped = this.capturing ? await this.captures.forget(relativePath) : [relativePath];
      for (const key of dropped) this.safeguards.uncount(key);
      return this.capturing && dropped.includes(relativePath);
    });
  }

  /**
   * Ends the step: records what it left at every path, writes the manifest and moves the step
   * into the log (evicting old steps over the limits). Returns undefined when nothing was
   * recorded: no path changed, the log is disabled, or a denied safeguard rolled the step back.
   * If it throws, the step stays in progress: call rollback() (or the next open() rolls it back).
   */
  close(): Promise<StepSummary | undefined> {
    return this.queued(async () => {
      if (this.state === 'closed' || this.state === 'rolled-back') return undefined;
      const { journal } = this.captures;
      if (this.denial?.rolledBack || !this.context.persist || !journal.created) return this.finish('closed', undefined);
      if (this.unprotectedReason) return this.finish('closed', await this.promoteUnprotected());

      // Every capture that counts is durable by now (beforeModify waited for it).
      const changes = await this.captures.changes();
      const changed = changedCount(changes);
      if (changed === 0) {
        await journal.close();
        await removeTree(Buffer.from(this.context.directory));
        return this.finish('closed', undefined);
      }
      // Nothing more is journaled: the files close while the postimages are gathered.
      const closing = journal.close();
      const records = await this.captures.withPostimages(changes);
      await closing;
      const manifest = stepManifest(this.header, { closedAt: new Date().toISOString(), records, paths: changed });
      const text = manifestText(manifest, journal.filesBytes);
      if (manifest.bytes > this.context.limits.maxStepBytes) {
        await this.becomeUnprotected(`the step needs ${formatBytes(manifest.bytes)}, over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
        return this.finish('closed', await this.promoteUnprotected());
      }
      await journal.writeManifest(text);
      await this.context.beforePromote?.(this.id);
      return this.finish('closed', await this.context.promote(manifest));
    });
  }

  /**
   * Puts every captured path back and discards the step (after a failure, or to abandon it).
   * Returns problems; with problems the step stays in progress so the next open() retries it.
   */
  rollback(): Promise<string[]> {
    return this.queued(async () => {
      if (this.state === 'closed' || this.state === 'rolled-back') return [];
      if (this.denial?.rolledBack) return this.finish('rolled-back', []);
      if (this.context.persist && this.unprotectedReason) {
        await this.promoteUnprotected();
        this.finish('closed', undefined);
        throw new Error(`undo step ${this.id} cannot be rolled back: ${this.unprotectedReason}`);
      }
      // Nothing was captured when the log is disabled: nothing to put back.
      return this.finish('rolled-back', await this.captures.restore(this.context.keptDirectory));
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

  /** An announcement, in the queue: its questions asked, its paths counted and captured. */
  private async modify(key: string, action: ModifyAction, stats: Stats | undefined): Promise<void> {
    if (this.state !== 'open') throw this.denial ?? new Error(`undo step ${this.id} is ${this.state}`);
    if (key === '') throw new Error('the root of the tree cannot be modified through the undo log');
    const blocked = this.captures.blockedBy(key);
    if (blocked) throw new Error(`${key}: its parent ${blocked} is not a folder`);
    // A folder deleted, renamed away or replaced takes its content with it: capture all of it.
    const touched = [[key, stats] as const, ...(stats?.isDirectory() && action !== 'chmod' ? await subtree(this.meta.root, key) : [])];
    const inside = touched.slice(1).map(([innerKey, innerStats]) => [innerKey, beforeOf(innerStats)!] as const);
    for (const question of this.safeguards.questionsFor(key, action, beforeOf(stats), inside)) await this.ask(question);
    for (const [touchedKey, touchedStats] of touched) this.safeguards.announce(touchedKey, kindOf(touchedStats));
    if (!this.capturing) return;
    // Durable before the caller may change the paths (a capture made ahead is already).
    await this.captures.ensure(touched).catch((error: unknown) => {
      if (!(error instanceof StepTooLarge)) throw error;
      return this.becomeUnprotected(error.message);
    });
  }

  /** Asks one question, in the queue; a kind once allowed is not asked again. A denial rolls the step back and throws. */
  private async ask(question: SafeguardQuestion): Promise<void> {
    if (this.safeguards.isAllowed(question.kind)) return;
    const answer = this.meta.ask ? await this.meta.ask(question).catch(() => 'deny' as const) : 'allow';
    if (answer === 'allow') return this.safeguards.allow(question.kind);
    const canRollBack = this.capturing;
    this.state = 'denied';
    this.denial = new SafeguardDenied(question, canRollBack, canRollBack ? await this.captures.restore(this.context.keptDirectory) : []);
    if (canRollBack) this.context.finished();
    throw this.denial;
  }

  /** What the step's manifests say about it (see stepManifest.ts). */
  private get header(): StepHeader {
    const { syncId, policy, root } = this.meta;
    return { id: this.id, syncId, policy, root, startedAt: this.startedAt, notes: this.context.notes, xattrFailures: this.captures.xattrFailures, bytes: this.captures.bytes };
  }

  /** Over the single-step limit: keep going without preimages; the step will be listed but cannot be undone. Runs in the queue. */
  private async becomeUnprotected(reason: string): Promise<void> {
    this.unprotectedReason ??= reason;
    await this.captures.discard({ reason: this.unprotectedReason, paths: this.safeguards.announcedCount });
  }

  /** Promotes the step as one that cannot be undone, with the count of paths announced. */
  private async promoteUnprotected(): Promise<StepSummary> {
    return this.context.promote(await writeUnprotectedManifest(this.context.directory, this.header, this.unprotectedReason!, this.safeguards.announcedCount));
  }
}
