// One workspace's continuous sync, owned by one process (the resident agent): the state store, a
// watcher on each root, the dirty set, and ONE queue through which every cycle and every client
// job that writes runs, so nothing races a background cycle.
//
// Dirty paths from either watcher (or hints from the editor) collect in one set; when the queue
// is free, they become one incremental cycle. The periodic truth runs at start, every
// `fullCycleIntervalMs`, and after a watcher overflowed or degraded: a rescan of both trees'
// metadata that carries what differs as an incremental cycle (runRescanCycle), a full cycle when
// it cannot tell; and a full cycle whenever an incremental one cannot judge its region alone. A client's sync, push or pull is a full cycle run as a job
// (runRequestCycle). A halt stops background cycles until resume().
//
// A background cycle that writes to the host is an undo step like any other, and its safeguard
// questions go to the session's owner (`undo.ask`), which hands them to whichever client answers.
// While one waits, the queue waits with it: no other cycle or job runs (status `question`), so the
// rest of the tree is held, visibly, rather than synced past a question nobody has answered. A
// denied question pauses background cycles (the held change would only be asked again) until a
// client's own sync or resume().
import { EventEmitter } from 'node:events';
import type { CycleKind, SkipCode, SyncReport } from '../protocol';
import { withRetries } from '../retry';
import type { SafeguardAsk, SafeguardQuestion, SafeguardThresholds } from '../undo';
import type { ApplyOptions } from './apply';
import { forgetAgreedState, runRescanCycle, runStoreCycle, SyncCancelled, type RescanOutcome, type StoreCycleOptions } from './engine';
import type { Policy, Side } from './reconcile';
import type { UndoRecording } from './recordedApply';
import type { AccessIdentity } from './scan';
import { SyncStateFiles, type Standing } from './stateFiles';
import { SyncStateStore } from './stateStore';
import { stagingThreads } from './stagingThreads';
import { byPath, standingAfter } from './incremental';
import { mergeReports } from './summary';
import { TreeWatcher, type DirtyBatch, type WatchDegraded } from './watcher';

/**
 * continuous: watcher events and hints are synced as they come, plus the periodic full cycle.
 * on-save: only hints (the editor's saves) are synced on their own; other changes wait for a
 * client's sync. off: nothing is synced until a client asks.
 */
export type AutoSync = 'continuous' | 'on-save' | 'off';

/** What a client may change while the session runs (`configure`). */
export interface SessionSettings {
  autoSync: AutoSync;
  excludes: readonly string[];
  allowSecrets: readonly string[];
  /** The safeguards of background cycles (a client's request brings its own). */
  undoThresholds: Partial<SafeguardThresholds>;
  /** How often the whole trees are rescanned even when no event came (Mutagen: 10 s). */
  fullCycleIntervalMs: number;
}

export interface SyncSessionOptions {
  roots: Record<Side, string>;
  stateDir: string;
  excludes: readonly string[];
  allowSecrets?: readonly string[];
  /** The background cycles' policy (two-way). */
  policy: Policy;
  autoSync?: AutoSync;
  fullCycleIntervalMs?: number;
  /** The watcher's quiet period. */
  quietMs?: number;
  /** Poll a side instead of watching it (e.g. a bind mount whose events do not arrive). */
  poll?: Partial<Record<Side, boolean>>;
  pollIntervalMs?: number;
  beforeModify?: ApplyOptions['beforeModify'];
  /** Who gets what the apply creates; a function is asked at each cycle (the IDs may move). */
  owners?: ApplyOptions['owners'] | (() => ApplyOptions['owners']);
  /** The host tree is read with this user's rights only (see ScanOptions.accessAs). */
  hostAccess?: AccessIdentity;
  /**
   * The undo log (opened once, by the owner) and the background cycles' safeguards: `ask` is how
   * their questions reach a client; without it, every safeguard allows.
   */
  undo?: UndoRecording;
}

/** A client's sync, push or pull, as the session runs it (one job, retried on transient skips). */
export interface RequestCycleParams {
  policy: Policy;
  reset?: boolean;
  onlyPaths?: readonly string[];
  /** Extra cycles allowed for changes skipped because their file moved (the `syncRetries` setting). */
  retries?: number;
  signal?: AbortSignal;
  /** The requesting client's answer to a safeguard question. */
  ask?: SafeguardAsk;
  undoThresholds?: Partial<SafeguardThresholds>;
  /** The request's own settings, for this cycle (default: the session's). */
  excludes?: readonly string[];
  allowSecrets?: readonly string[];
  /** Called before each change, instead of the session's (the request's fault injection, in tests). */
  beforeModify?: ApplyOptions['beforeModify'];
}

export interface CycleFinished {
  kind: CycleKind;
  report: SyncReport;
  dirtyPaths: number;
  /** For a periodic full cycle: whether the rescan carried only what differed, or had to run the full cycle. */
  rescan?: RescanOutcome;
}

/** What the session is doing, for the owner's status (LiveStatus). */
export interface SessionStatus {
  /** A cycle or a job is running. */
  busy: boolean;
  autoSync: AutoSync;
  /** Paused by the user, or after a denied safeguard question (`heldBy`). */
  paused: boolean;
  heldBy?: NonNullable<SyncReport['denied']>;
  halt?: { side: Side; reason: string };
  /** A background cycle's question, waiting for a client's answer. */
  question?: SafeguardQuestion;
  /** Changes not carried yet: as far as events tell, or that a cycle could not carry (see STANDING_SKIPS). */
  changesWaiting: boolean;
  /**
   * What stands now, as the cycles found it (see standingAfter): paths in conflict, problems
   * (what the sync cannot read, and the changes it could not carry), secrets kept out.
   */
  conflicts: string[];
  problems: SyncReport['problems'];
  keptOut: SyncReport['keptOut'];
  degraded: Array<WatchDegraded & { side: Side }>;
  lastCycle?: { id: string; finishedAt: string; applied: number; kind: CycleKind };
  /** The last background cycle failed as a whole (its changes wait, and the next event or rescan tries again): when and why. Cleared by a cycle that finishes. */
  failed?: { at: string; reason: string };
}

export const DEFAULT_FULL_CYCLE_INTERVAL_MS = 10_000;
/**
 * The periodic full cycle waits at least this many times the CPU time the last one's rescan took:
 * at most a hundredth of a core when nothing changes (a no-change rescan of 100,000 files takes
 * about 3 s of CPU, so it runs about every five minutes there; events carry changes meanwhile, and
 * a watcher that overflows or fails asks for a rescan at once).
 */
export const FULL_CYCLE_DUTY = 100;

/** Whether the periodic full cycle may run now, given when the last one ended and what it cost. */
export function periodicFullCycleDue(now: number, last: { endedAt: number; costMs: number }): boolean {
  return now - last.endedAt >= FULL_CYCLE_DUTY * last.costMs;
}

/**
 * Skips that stand until a cycle that looks at their path carries the change: an error (a full
 * disk, a file system mounted read-only) or a target the sync cannot write over (a socket). Nothing but
 * that cycle would tell, and the periodic full cycle tries again. Any other skip is transient: its
 * file moved, and the event of that makes its path dirty again.
 */
const STANDING_SKIPS: ReadonlySet<SkipCode> = new Set(['failed', 'unsyncable']);

/** A change skipped because its file moved under it: another cycle, a moment later, will carry it. */
const isTransient = (report: SyncReport) => report.skipped.some((skipped) => skipped.code === 'changed-since-scan' || skipped.code === 'source-changed');

export class SyncSession extends EventEmitter<{
  'cycle-started': [{ kind: CycleKind }];
  cycle: [CycleFinished];
  degraded: [Side, WatchDegraded];
  halted: [{ side: Side; reason: string }];
  /** A background cycle asks (answered through the owner's `undo.ask`); 'status' follows. */
  question: [SafeguardQuestion];
  /** Something in status() changed. */
  status: [];
  /** A background cycle failed as a whole (not 'error': an EventEmitter throws that one when nobody listens). */
  'cycle-failed': [Error];
}> {
  private dirty = new Set<string>();
  /** Hinted paths (editor saves): synced in on-save mode too. */
  private hinted = new Set<string>();
  /** Every time a watcher degraded (also before a listener could attach, during open()). */
  readonly degradedWatches: Array<WatchDegraded & { side: Side }> = [];
  private fullCycleWanted = true;
  private queue: Promise<unknown> = Promise.resolve();
  private drainScheduled = false;
  private watchers: TreeWatcher[] = [];
  private fullCycleTimer: NodeJS.Timeout | undefined;
  private lastFullCycle = { endedAt: 0, costMs: 0 };
  private waitingJobs = 0;
  private paused = false;
  private heldBy: SyncReport['denied'];
  private halt: { side: Side; reason: string } | undefined;
  private question: SafeguardQuestion | undefined;
  private busy = false;
  private standing: Standing = { conflicts: [], problems: [], keptOut: [], notCarried: [] };
  /** The standing as last written to the state folder (JSON), and that write. */
  private standingSaved = { text: '', written: Promise.resolve() };
  private lastCycle: SessionStatus['lastCycle'];
  private lastFailure: SessionStatus['failed'];
  private closed = false;
  private readonly files: SyncStateFiles;
  private readonly settings: SessionSettings;

  private constructor(private readonly options: SyncSessionOptions, readonly store: SyncStateStore) {
    super();
    this.files = new SyncStateFiles(options.stateDir);
    this.settings = {
      autoSync: options.autoSync ?? 'continuous',
      excludes: options.excludes,
      allowSecrets: options.allowSecrets ?? [],
      undoThresholds: options.undo?.thresholds ?? {},
      fullCycleIntervalMs: options.fullCycleIntervalMs ?? DEFAULT_FULL_CYCLE_INTERVAL_MS,
    };
  }

  /** Opens the state, starts both watchers and queues the first (full) cycle. */
  static async open(options: SyncSessionOptions): Promise<SyncSession> {
    const session = new SyncSession(options, await SyncStateStore.open(options.stateDir));
    const halt = await session.files.readHalt();
    if (halt) session.halt = { side: halt.side, reason: halt.reason };
    session.paused = await session.files.readPaused();
    // What stood when the last owner stopped, until this one's first cycle looks again.
    const standing = await session.files.readStanding().catch(() => undefined);
    if (standing) session.standing = standing;
    session.standingSaved.text = JSON.stringify(session.standing);
    await session.startWatchers();
    session.startTimer();
    session.scheduleDrain();
    return session;
  }

  /** Paths that may have changed (e.g. a file the editor saved), as a watcher would report them. */
  markDirty(paths: Iterable<string>): void {
    for (const key of paths) {
      this.dirty.add(key);
      this.hinted.add(key);
    }
    this.scheduleDrain();
  }

  requestFullCycle(): void {
    this.fullCycleWanted = true;
    this.scheduleDrain();
  }

  /** Jobs queued behind the one running (a client's request, a request's cycle): work that long background work gives way to. */
  get jobsWaiting(): number {
    return this.waitingJobs;
  }

  /** Whether either side has changes not yet carried (as far as events tell). */
  get changesWaiting(): boolean {
    return this.dirty.size > 0 || this.fullCycleWanted;
  }

  /** Paused by the user, halted, or held after a denied question: no background cycles. */
  get isPaused(): boolean {
    return this.paused || this.halt !== undefined || this.heldBy !== undefined;
  }

  status(): SessionStatus {
    return {
      busy: this.busy,
      autoSync: this.settings.autoSync,
      paused: this.paused || this.heldBy !== undefined,
      ...(this.heldBy && { heldBy: this.heldBy }),
      ...(this.halt && { halt: this.halt }),
      ...(this.question && { question: this.question }),
      changesWaiting: this.changesWaiting || this.standing.notCarried.length > 0,
      conflicts: this.standing.conflicts.map((conflict) => conflict.path),
      problems: byPath([...this.standing.problems, ...this.standing.notCarried.map(({ path, side, reason }) => ({ path, side, reason: `not carried: ${reason}` }))]),
      keptOut: this.standing.keptOut,
      degraded: this.degradedWatches,
      ...(this.lastCycle && { lastCycle: this.lastCycle }),
      ...(this.lastFailure && { failed: this.lastFailure }),
    };
  }

  /**
   * Background cycles stop; events still collect, so resume() carries what happened meanwhile.
   * The pause is kept with the state, so an agent that restarts (after a crash, say) stays paused.
   */
  async pause(): Promise<void> {
    this.paused = true;
    this.emit('status');
    await this.files.writePaused(true);
  }

  /** Lifts a pause, a held question and a halt (the agreed state is forgotten after a halt, as a reset). */
  async resume(): Promise<void> {
    await this.runJob(async () => {
      if (this.halt || (await this.files.readHalt())) await forgetAgreedState(this.store);
      this.halt = undefined;
      await this.files.writePaused(false);
    });
    this.paused = false;
    this.heldBy = undefined;
    this.emit('status');
    this.requestFullCycle();
  }

  /**
   * Changes settings at runtime: new excludes restart the watchers (what is ignored gets no
   * watch), and any change of what is synced is followed by a full cycle.
   */
  async configure(settings: Partial<SessionSettings>): Promise<void> {
    const excludesChanged = settings.excludes !== undefined && !sameList(settings.excludes, this.settings.excludes);
    const secretsChanged = settings.allowSecrets !== undefined && !sameList(settings.allowSecrets, this.settings.allowSecrets);
    const intervalChanged = settings.fullCycleIntervalMs !== undefined && settings.fullCycleIntervalMs !== this.settings.fullCycleIntervalMs;
    Object.assign(this.settings, Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)));
    if (excludesChanged) {
      for (const watcher of this.watchers) watcher.close();
      this.watchers = [];
      if (!this.closed) await this.startWatchers();
    }
    if (intervalChanged) this.startTimer();
    if (excludesChanged || secretsChanged || settings.autoSync === 'continuous') this.requestFullCycle();
    this.emit('status');
  }

  /**
   * Runs `job` in the session's one queue: no cycle runs while it does. Every client request that
   * writes (resolve, undo, restore) goes through here.
   */
  runJob<T>(job: (store: SyncStateStore) => Promise<T>, options: { housekeeping?: boolean } = {}): Promise<T> {
    this.waitingJobs += 1;
    const run = this.queue.then(async () => {
      this.waitingJobs -= 1;
      // Housekeeping (compressing the undo log, exchanging git history) is no sync: status stays as it is.
      if (options.housekeeping) return job(this.store);
      this.setBusy(true);
      try {
        return await job(this.store);
      } finally {
        this.setBusy(false);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * A client's sync, push or pull: full cycles run as one job, retried (up to `retries` more)
   * while changes are skipped because their file moved under them, the reports merged. What was
   * dirty before it started is covered by its scan (unless it was for some paths only).
   */
  runRequestCycle(params: RequestCycleParams): Promise<SyncReport> {
    return this.runJob(async () => {
      this.emit('cycle-started', { kind: 'request' });
      const covers = params.onlyPaths === undefined;
      const taken = { dirty: this.dirty, hinted: this.hinted, full: this.fullCycleWanted };
      if (covers) {
        this.dirty = new Set();
        this.hinted = new Set();
        this.fullCycleWanted = false;
      }
      const undo = this.options.undo && { log: this.options.undo.log, ask: params.ask, thresholds: params.undoThresholds ?? this.settings.undoThresholds };
      let merged: SyncReport | undefined;
      let report: SyncReport;
      try {
        const { retries: used } = await withRetries(
          async () => {
            const run = (await runStoreCycle({
              ...this.cycleOptions(),
              policy: params.policy,
              reset: params.reset === true && !merged,
              ...(params.onlyPaths && { onlyPaths: params.onlyPaths }),
              ...(params.excludes && { excludes: params.excludes }),
              ...(params.allowSecrets && { allowSecrets: params.allowSecrets }),
              ...(params.beforeModify && { beforeModify: params.beforeModify }),
              signal: params.signal,
              undo,
              history: 'every-cycle',
            })).report as SyncReport;
            merged = merged ? mergeReports(merged, run) : run;
            return run;
          },
          { retries: params.retries ?? 0, shouldRetry: (result) => !result.halted && !result.denied && isTransient(result) },
        );
        report = merged!;
        report.retries = used;
      } catch (error) {
        if (covers) this.giveBack(taken);
        throw error;
      }
      if (covers && (report.halted || report.denied)) this.giveBack(taken);
      if (params.reset && !report.halted) this.halt = undefined;
      // The client answered for the whole tree: what a denied background question held is decided.
      if (!report.denied) this.heldBy = undefined;
      this.finished('request', report, 0);
      return report;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.fullCycleTimer);
    for (const watcher of this.watchers) watcher.close();
    await this.queue;
    await this.standingSaved.written;
    await this.store.close();
  }

  private async startWatchers(): Promise<void> {
    for (const side of ['host', 'container'] as const) {
      const watcher = new TreeWatcher(this.options.roots[side], {
        excludes: this.settings.excludes,
        onBatch: (batch) => this.onBatch(batch),
        onBurst: () => stagingThreads.warm(),
        ...(this.options.quietMs !== undefined && { quietMs: this.options.quietMs }),
        ...(this.options.poll?.[side] && { poll: true }),
        ...(this.options.pollIntervalMs !== undefined && { pollIntervalMs: this.options.pollIntervalMs }),
      });
      watcher.on('degraded', (reason) => {
        this.degradedWatches.push({ side, ...reason });
        this.emit('degraded', side, reason);
        this.emit('status');
      });
      this.watchers.push(watcher);
      await watcher.start();
    }
  }

  private startTimer(): void {
    clearInterval(this.fullCycleTimer);
    this.fullCycleTimer = setInterval(() => {
      // A tree whose full scan costs a good part of the period would keep the agent busy with
      // nothing changing: the periodic truth then comes at most once per FULL_CYCLE_DUTY times its
      // CPU time (events still start cycles at once, and a watcher's overflow a full one).
      if (this.settings.autoSync === 'continuous' && periodicFullCycleDue(Date.now(), this.lastFullCycle)) this.requestFullCycle();
    }, this.settings.fullCycleIntervalMs);
  }

  private cycleOptions(): Omit<StoreCycleOptions, 'policy'> {
    const owners = typeof this.options.owners === 'function' ? this.options.owners() : this.options.owners;
    return {
      roots: this.options.roots, excludes: this.settings.excludes, allowSecrets: this.settings.allowSecrets, store: this.store,
      beforeModify: this.options.beforeModify, owners, hostAccess: this.options.hostAccess,
    };
  }

  private giveBack(taken: { dirty: Set<string>; hinted: Set<string>; full: boolean }): void {
    for (const key of taken.dirty) this.dirty.add(key);
    for (const key of taken.hinted) this.hinted.add(key);
    if (taken.full) this.fullCycleWanted = true;
  }

  private setBusy(busy: boolean): void {
    if (this.busy === busy) return;
    this.busy = busy;
    this.emit('status');
  }

  /** `dirty`: what an incremental cycle looked at (absent: it looked at everything). */
  private finished(kind: CycleKind, report: SyncReport, dirtyPaths: number, { rescan, paceMs = report.durationMs, dirty }: { rescan?: RescanOutcome; paceMs?: number; dirty?: readonly string[] } = {}): CycleFinished {
    if (report.halted) {
      this.halt = report.halted;
      this.emit('halted', report.halted);
    }
    this.updateStanding(report, kind === 'incremental' ? dirty : undefined);
    this.lastCycle = { id: report.id, finishedAt: new Date().toISOString(), applied: report.appliedCount, kind };
    this.lastFailure = undefined;
    if (kind === 'full') this.lastFullCycle = { endedAt: Date.now(), costMs: paceMs };
    const finished = { kind, report, dirtyPaths, ...(rescan && { rescan }) };
    this.emit('cycle', finished);
    this.emit('status');
    return finished;
  }

  /**
   * A client's job ran a full cycle of its own (a resolve ends with one, outside the session's
   * cycles): what it found is what stands now.
   */
  tookFullCycle(report: SyncReport): void {
    this.updateStanding(report);
    this.emit('status');
  }

  /** What stands after a cycle that looked at `dirty` (absent: everything); see standingAfter. */
  private updateStanding(report: SyncReport, dirty?: readonly string[]): void {
    const cycle = { halted: report.halted !== undefined, ...(dirty && { dirty }) };
    this.standing = {
      conflicts: standingAfter(this.standing.conflicts, { ...cycle, reported: report.conflicts.map((conflict) => ({ path: conflict.path })) }),
      problems: standingAfter(this.standing.problems, { ...cycle, reported: report.problems }),
      keptOut: standingAfter(this.standing.keptOut, { ...cycle, reported: report.keptOut }),
      notCarried: standingAfter(this.standing.notCarried, { ...cycle, reported: report.skipped.filter((skipped) => STANDING_SKIPS.has(skipped.code)) }),
    };
    this.saveStanding();
  }

  /**
   * Writes what stands when it changed, each write after the one before. A write that fails (a
   * full disk) loses only what a restart would say before its first cycle.
   */
  private saveStanding(): void {
    const text = JSON.stringify(this.standing);
    if (text === this.standingSaved.text) return;
    this.standingSaved.text = text;
    const standing = this.standing;
    this.standingSaved.written = this.standingSaved.written.then(() => this.files.writeStanding(standing)).catch(() => {});
  }

  private onBatch(batch: DirtyBatch): void {
    if (batch.rescan) this.fullCycleWanted = true;
    for (const key of batch.paths) this.dirty.add(key);
    this.scheduleDrain();
    this.emit('status');
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.closed) return;
    this.drainScheduled = true;
    this.queue = this.queue.then(() => this.drain()).catch((error: unknown) => {
      const failure = error instanceof Error ? error : new Error(String(error));
      this.lastFailure = { at: new Date().toISOString(), reason: failure.message };
      this.emit('status');
      this.emit('cycle-failed', failure);
    });
  }

  /**
   * Why a flush carries nothing now: the user paused auto-sync, or a safeguard question they
   * denied holds it. Undefined: a flush carries what waits.
   */
  get flushHeld(): string | undefined {
    if (this.paused) return 'the user paused auto-sync';
    if (this.heldBy) return 'a change waits for the user\'s approval';
    return undefined;
  }

  /**
   * Runs one cycle now for everything collected (watcher events, hints, a wanted full cycle), so
   * that a step boundary holds what the agent wrote before it (a turn's end, a checkpoint, the
   * agent's sync_now), in every auto-sync mode: the modes say when background cycles run, and a
   * boundary is not one. Never past a pause or a held question (see flushHeld), nor a halt: what
   * the user holds back stays held, whoever marks a boundary. Undefined when nothing was carried.
   */
  flush(): Promise<CycleFinished | undefined> {
    const run = this.queue.then(() => (this.closed || this.halt || this.flushHeld ? undefined : this.cycle(false)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** One cycle for everything collected so far; then, if more came meanwhile, another. */
  private async drain(): Promise<void> {
    this.drainScheduled = false;
    if (this.closed || this.isPaused || this.settings.autoSync === 'off') return;
    // on-save: only what the editor saved crosses on its own; the rest waits for a client's sync.
    // Only after a cycle that ran: in on-save mode, what was not saved stays dirty without a cycle.
    const ran = await this.cycle(this.settings.autoSync === 'on-save');
    if (ran && (this.dirty.size > 0 || this.fullCycleWanted)) this.scheduleDrain();
  }

  /** One background cycle: of the hinted paths only (`onlyHinted`), or of everything collected. */
  private async cycle(onlyHinted: boolean): Promise<CycleFinished | undefined> {
    const onSave = onlyHinted;
    const candidates = onSave ? this.hinted : this.dirty;
    const full = !onSave && this.fullCycleWanted;
    if (!full && candidates.size === 0) return undefined;
    const dirty = [...candidates];
    for (const key of dirty) this.dirty.delete(key);
    this.hinted.clear();
    if (full) this.fullCycleWanted = false;
    let kind: Exclude<CycleKind, 'request'> = full ? 'full' : 'incremental';
    this.busy = true;
    this.emit('cycle-started', { kind });
    this.emit('status');
    let report: SyncReport;
    let rescan: RescanOutcome | undefined;
    let paceMs: number | undefined;
    try {
      const standingConflicts = new Set(this.standing.conflicts.map((conflict) => conflict.path));
      const common = { ...this.cycleOptions(), policy: this.options.policy, undo: this.backgroundRecording(), history: 'eventful' as const, standingConflicts };
      if (kind === 'full') {
        let rescanCpuMs: number;
        ({ report, rescan, rescanCpuMs } = await runRescanCycle(common, dirty));
        // Paced by what the rescan costs, not by what it carried (a burst would put it off for minutes).
        paceMs = rescanCpuMs;
      } else {
        let result = await runStoreCycle({ ...common, dirty });
        if (result.fullCycleNeeded !== undefined) {
          kind = 'full';
          this.fullCycleWanted = false;
          result = await runStoreCycle(common);
        }
        report = result.report as SyncReport;
      }
    } catch (error) {
      // Not carried: still dirty, and the next cycle is a full one.
      if (!(error instanceof SyncCancelled)) this.fullCycleWanted = true;
      for (const key of dirty) this.dirty.add(key);
      throw error;
    } finally {
      this.busy = false;
    }
    if (report.denied) {
      // Held: asking again at every cycle would only repeat the question.
      this.heldBy = report.denied;
      for (const key of dirty) this.dirty.add(key);
    }
    // A change skipped because the file changed under it needs nothing here: that change was an
    // event too, so its path is dirty again already.
    return this.finished(kind, report, dirty.length, { ...(rescan && { rescan }), ...(paceMs !== undefined && { paceMs }), dirty });
  }

  /** The background cycles' undo recording: their questions go to the owner's `ask`, shown in status meanwhile. */
  private backgroundRecording(): UndoRecording | undefined {
    const undo = this.options.undo;
    if (!undo) return undefined;
    const ask = undo.ask;
    return {
      log: undo.log,
      thresholds: this.settings.undoThresholds,
      ...(undo.group && { group: undo.group }),
      ...(ask && {
        ask: async (question: SafeguardQuestion) => {
          this.question = question;
          this.emit('question', question);
          this.emit('status');
          try {
            return await ask(question);
          } finally {
            this.question = undefined;
            this.emit('status');
          }
        },
      }),
    };
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
