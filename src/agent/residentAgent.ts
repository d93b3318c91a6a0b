// The resident sync agent: one process per container (`agent daemon`, started and restarted by
// `agent init`), the single owner of the workspace's sync. It holds the sync session (the agreed
// state in memory, both watchers, the one queue of work), the undo log (opened once, recovered
// once), the live settings and the status every client renders. Clients attach through
// `agent serve`, which relays their JSON Lines channel to this process's Unix socket
// (src/agent/relay.ts); every request that writes runs as a job in the session's queue, so no
// request races a background cycle and no lock file is needed.
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomicFile';
import { AGENT_STATE_DIR, CONTAINER_HOST_PATH, CONTAINER_STATE_PATH, CONTAINER_WORKSPACE_PATH, SYNC_OPTIONS_ENV, WORKSPACE_USER } from '../core/containerLayout';
import { errorMessage } from '../core/errors';
import { AgentEvent, LiveSettings, MAX_LISTED, MAX_STEP_LINE_BYTES, SyncOptions, describeZodError } from '../core/protocol';
import type { LiveSettingsChange } from '../core/protocol';
import type { LiveStatus, SafeguardQuestionInfo, SyncNowResult, SyncReport, UndoSettings } from '../core/protocol';
import type { ApplyOptions } from '../core/sync/apply';
import { forgetAgreedState, withStateStore } from '../core/sync/engine';
import { SyncSession, type CycleFinished, type RequestCycleParams } from '../core/sync/session';
import type { SyncStateStore } from '../core/sync/stateStore';
import { countOf, listedReport, mergeReports } from '../core/sync/summary';
import { StepBoundaries, UndoLog } from '../core/undo';
import type { StepGroup } from '../core/undo';
import { StepGroupRecord } from '../core/undo/records';
import { createStepOperations } from './stepOperations';
import type { StepOperations } from './stepChannel';
import { failpointHook, questionDelayMs } from './failpoint';
import { exchangeGitHistory } from './gitExchange';
import { hostAccess } from './hostAccess';
import { log } from './log';
import { readInitState, writeInitState } from './initStateFile';
import { runInitialSyncInChild } from './initialCopyProcess';
import { GarbageCollection } from './memory';
import { RequestError } from './server';
import { findPasswdEntry } from './system';

export const ROOTS = { host: CONTAINER_HOST_PATH, container: CONTAINER_WORKSPACE_PATH };
/** The live settings a client configured last: a restarted agent carries on with them. */
const SETTINGS_FILE = path.join(AGENT_STATE_DIR, 'live-settings.json');
/** The turn or command open now (Claude Code's, `clud run`'s): a restarted agent goes on recording into it. */
const OPEN_STEP_FILE = path.join(AGENT_STATE_DIR, 'open-step.json');
/** After the last cycle, how long the queue must stay idle before the undo log is compacted. */
const COMPACT_AFTER_IDLE_MS = 2_000;
/** A flush for a step boundary waits this long first: the watchers report a write after 100 ms of quiet. */
const FLUSH_SETTLE_MS = 250;

type Answer = 'allow' | 'deny';
interface OpenQuestion {
  questionId: number;
  question: SafeguardQuestionInfo;
  settle: (answer: Answer) => void;
}

/**
 * What the apply creates in /workspace goes to the workspace user (the sync agent writes it with
 * CAP_CHOWN); on the host it stays the sync user's, the folder owner's IDs. Read when a session
 * opens: `prepare` may have moved the workspace user's IDs since the image was built.
 */
export function workspaceOwners(): ApplyOptions['owners'] {
  const user = findPasswdEntry(readFileSync('/etc/passwd', 'utf8'), WORKSPACE_USER);
  return user ? { container: { uid: user.uid, gid: user.gid } } : {};
}

export class ResidentAgent {
  private session: SyncSession | undefined;
  private undoLog: UndoLog | undefined;
  private settings: LiveSettings;
  private question: OpenQuestion | undefined;
  private nextQuestionId = 1_000_000;
  /**
   * Clients' requests queued and not yet started: a background question that opens while they
   * wait is asked of those that can answer it, and refuses those that cannot (see askClients).
   */
  private readonly waiting = new Set<WaitingRequest>();
  /** The waiting requests that answered a question of the background cycle running now. */
  private readonly answeredBy = new Set<WaitingRequest>();
  private readonly subscribers = new Set<(event: AgentEvent) => void>();
  private lastStatusJson = '';
  private statusPublishing = false;
  /** What recovery at start-up did, told to the next request that reports notices. */
  private pendingNotices: string[] = [];
  /** Jobs before the session exists (the initial copy) run one after another here. */
  private startQueue: Promise<unknown> = Promise.resolve();
  private compactTimer: NodeJS.Timeout | undefined;
  /** Where one undoable step ends and the next begins (turns, commands, checkpoints, bursts). */
  readonly boundaries = new StepBoundaries();
  /** The group the cycle recording now was given, told what it recorded when it finishes. */
  private cycleGroup: StepGroup | undefined;
  private readonly garbage = new GarbageCollection();
  /** The step operations, for the narrow channel and the main channel's stepStart/stepEnd/checkpoint. */
  readonly steps: StepOperations;
  /** Settles once start-up (the initial copy, the session's opening and its recovery) is over. */
  private started: Promise<void> | undefined;

  constructor() {
    this.settings = loadSettings();
    const openStep = loadOpenStep();
    if (openStep) this.boundaries.reopen(openStep);
    this.steps = createStepOperations({
      boundaries: this.boundaries,
      // A step boundary never waits behind a question nobody has answered: Claude Code's hooks
      // would hold its prompt or its turn's end until their timeouts.
      runJob: (work) => this.jobWithoutAsking(() => work()),
      undoLog: () => this.undoLog ?? Promise.reject(new RequestError('sync-halted', 'the undo log is not open yet: the initial copy has not completed')),
      hostRoot: ROOTS.host,
      flush: () => this.flushForStep(),
      // As the periodic exchange: its problems are in its report (git.json, `clud status`). Not
      // while a question waits: the commits then cross with the next sync.
      exchangeHistory: async () => {
        await this.jobWithoutAsking(() => exchangeGitHistory(), { housekeeping: true }).catch((error: unknown) => log('warn', `git exchange at a step's end: ${errorMessage(error)}`));
      },
      status: () => {
        const { state, autoSync, changesWaiting, conflicts, halt } = this.status();
        return { state, autoSync, changesWaiting, conflicts, ...(halt && { halt }) };
      },
      keepOpenStep: (group) => keepOpenStep(group),
    });
  }

  /**
   * Ends the open turn or command `group` without its end boundary: the user undid it while it
   * ran (forced: its Stop never came), so what is written after the undo is not part of it. Call
   * inside a job.
   */
  async abandonOpenStep(group: StepGroup): Promise<void> {
    if (this.boundaries.close({ id: group.id })) await keepOpenStep(undefined);
  }

  /**
   * Carries what waits across now, for a step boundary: after the watchers' quiet period, so a
   * file written just before is among the dirty paths, one cycle through the queue. Not while
   * the user holds auto-sync back (SyncSession.flushHeld), nor while a background cycle waits for
   * their answer, also one that asks meanwhile (the flush's own, say): then `held` says why, and
   * that cycle goes on waiting for an answer as any background cycle does.
   */
  private async flushForStep(): Promise<SyncNowResult> {
    const session = await this.readySession();
    const held = (): SyncNowResult => ({ applied: 0, conflicts: [], skipped: 0, held: `a change waits for the user's approval (${this.question?.question.detail ?? 'a safeguard'})` });
    // The queue is held until someone answers: the boundary carries nothing rather than wait.
    if (this.question) return held();
    let refused!: (result: SyncNowResult) => void;
    const asked = new Promise<SyncNowResult>((resolve) => (refused = resolve));
    const flushed = this.whileWaiting({ refuse: () => refused(held()) }, async () => {
      await new Promise((resolve) => setTimeout(resolve, FLUSH_SETTLE_MS));
      return flushedResult(session, await session.flush());
    });
    // The flush itself settles once the question is answered; it is not waited for.
    flushed.catch(() => undefined);
    return Promise.race([flushed, asked]);
  }

  /** The initial copy when /workspace has none yet, then the session. Never throws: failures are in the init state. */
  start(): Promise<void> {
    // A failed start-up is logged and leaves the agent serving: status tells why, and
    // `retryInitialSync` (clud up) can try again.
    this.started ??= this.startNow().catch((error: unknown) => log('error', `start-up failed: ${errorMessage(error)}`));
    return this.started;
  }

  private async startNow(): Promise<void> {
    await this.runBeforeSession(async () => {
      const init = readInitState();
      if (init?.phase === 'starting' && init.initialSync) {
        // A restarted container keeps its /workspace; copying the host folder over it would destroy
        // the container's unsynced changes. Sync carries on from the last agreed state instead.
        writeInitState({ ...init, phase: 'ready', warnings: [...init.warnings, 'container restarted: /workspace was kept as it was; sync carries on from the last agreed state'] });
        log('info', 'restarted; kept /workspace as it was');
      } else if (init?.phase === 'starting') {
        // A new /workspace: the last agreed state belonged to a previous container's copy. Read
        // against this copy, files it lacks would look deleted, so it is forgotten and the first
        // cycle merges both sides without deleting anything.
        if (existsSync(CONTAINER_STATE_PATH)) await withStateStore(CONTAINER_STATE_PATH, forgetAgreedState);
        log('info', `initial copy ${CONTAINER_HOST_PATH} -> ${CONTAINER_WORKSPACE_PATH}`);
        const state = await runInitialSyncInChild(readSyncOptions(), () => {});
        if (state.phase === 'failed') log('error', state.error ?? 'initial copy failed', { errors: state.initialSync?.errors });
        else log('info', 'initial copy done', { files: state.initialSync?.filesTransferred, durationMs: state.initialSync?.durationMs });
      } else if (init?.phase === 'syncing') {
        // The agent died during the copy, whose process stopped with it (initialCopyProcess.ts).
        // Not copied again on its own: /workspace may hold writes made since; `clud up` retries.
        const error = 'the initial copy was interrupted: the sync agent restarted during it';
        writeInitState({ ...init, phase: 'failed', error, progress: undefined });
        log('error', error);
      }
    });
    await this.openSessionIfReady();
  }

  /** `retryInitialSync`: the copy again (after a failure), then the session. */
  async retryInitialCopy(options: SyncOptions, progress: Parameters<typeof runInitialSyncInChild>[1]) {
    if (this.session) throw new RequestError('bad-request', 'the initial copy is complete; sync, push or pull instead');
    const state = await this.runBeforeSession(() => runInitialSyncInChild(options, progress));
    await this.openSessionIfReady();
    return state;
  }

  /**
   * The session, once start-up is over (a request that arrives while a restarted agent recovers
   * waits for it), if syncing can start: the state folder exists and the initial copy is complete.
   */
  async readySession(): Promise<SyncSession> {
    await this.start();
    if (!existsSync(CONTAINER_STATE_PATH)) {
      throw new RequestError('sync-halted', `this container has no sync state folder at ${CONTAINER_STATE_PATH} (it was made by an older Clud); run \`clud pull\`, then \`clud up --rebuild\``);
    }
    const init = readInitState();
    if (!this.session || (init && init.phase !== 'ready')) {
      throw new RequestError('sync-halted', `sync refused: the initial copy into /workspace has not completed (${init?.error ?? init?.phase ?? 'not started'}); run \`clud up\` to retry it`);
    }
    return this.session;
  }

  /**
   * Runs a client's writing request in the one queue. A background cycle that waits for a
   * safeguard answer holds the queue; the requester is asked it first (`clud sync --yes` answers
   * it, an interactive client shows it), so a request never waits behind a question nobody sees.
   */
  async job<T>(work: (store: SyncStateStore, undoLog: UndoLog) => Promise<T>, ask?: (question: SafeguardQuestionInfo) => Promise<Answer>): Promise<T> {
    return this.queued(work, { ask });
  }

  /** Runs `work` in the queue for a client's request, `waiter` registered until it starts. */
  private async queued<T>(work: (store: SyncStateStore, undoLog: UndoLog) => Promise<T>, waiter: WaitingRequest, options: { housekeeping?: boolean } = {}): Promise<T> {
    const session = await this.readySession();
    try {
      return await this.whileWaiting(waiter, () =>
        session.runJob((store) => {
          this.waiting.delete(waiter);
          return work(store, this.undoLog!);
        }, options),
      );
    } finally {
      this.scheduleCompaction();
    }
  }

  /**
   * Runs a client's request with `waiter` among the waiting ones until `run` settles (or `run`
   * takes it out when its work starts): asked the question open now, and any that opens meanwhile
   * (see askClients).
   */
  private async whileWaiting<T>(waiter: WaitingRequest, run: () => Promise<T>): Promise<T> {
    this.forwardOpenQuestion(waiter);
    this.waiting.add(waiter);
    try {
      return await run();
    } finally {
      this.waiting.delete(waiter);
      this.answeredBy.delete(waiter);
    }
  }

  /**
   * A client's sync, push or pull: a full cycle run in the queue by the session (shown to
   * subscribers as a cycle of kind `request`), then the git exchange.
   */
  async requestCycle(params: RequestCycleParams): Promise<SyncReport> {
    const session = await this.readySession();
    try {
      const waiter: WaitingRequest = { ask: params.ask, answeredCycles: [] };
      // Waiting until it ends: a background cycle can run between its cycle and its git exchange.
      return await this.whileWaiting(waiter, async () => {
        const own = await session.runRequestCycle(params);
        // A held background cycle this request answered did what the user asked for: it is part of the report.
        const report = waiter.answeredCycles!.reduceRight((later, earlier) => ({ ...mergeReports(earlier, later), id: own.id }), own);
        report.notices = [...this.takeNotices(), ...report.notices];
        // The repositories are not merged file by file: history crosses as git objects and refs.
        if (!report.halted) report.git = await session.runJob(() => exchangeGitHistory());
        return listedReport(report);
      });
    } finally {
      this.scheduleCompaction();
    }
  }

  /**
   * A client's request that cannot answer a safeguard question (history, undo, compare, backup):
   * refused at once while a background cycle waits for an answer, instead of waiting behind it
   * with nothing said until someone else answers. `housekeeping`: no sync, status stays as it is.
   */
  jobWithoutAsking<T>(work: (store: SyncStateStore, undoLog: UndoLog) => Promise<T>, options: { housekeeping?: boolean } = {}): Promise<T> {
    const open = this.question;
    if (open) return Promise.reject(awaitingApproval(open.question));
    return new Promise<T>((resolve, reject) => {
      // Refused if a question opens before it starts: then it does nothing when its turn comes.
      let refused = false;
      const waiter: WaitingRequest = {
        refuse: (error) => {
          refused = true;
          reject(error);
        },
      };
      this.queued((store, undoLog) => (refused ? Promise.resolve(undefined as T) : work(store, undoLog)), waiter, options).then(resolve, reject);
    });
  }

  /** A background question holds the queue: a request that waits behind it is asked it first. */
  private forwardOpenQuestion(waiter: WaitingRequest): void {
    if (this.question) this.askWaiter(waiter, this.question);
  }

  /** Asks a waiting request the open question; the first answer settles it, and the request is then told what the cycle did. */
  private askWaiter(waiter: WaitingRequest, { questionId, question }: Pick<OpenQuestion, 'questionId' | 'question'>): void {
    void waiter.ask?.(question).then(
      (answer) => {
        if (this.answer(questionId, answer)) this.answeredBy.add(waiter);
      },
      () => undefined,
    );
  }

  /** The undo log, opened once (null until the session opened). */
  get undo(): UndoLog | undefined {
    return this.undoLog;
  }

  takeNotices(): string[] {
    const notices = this.pendingNotices;
    this.pendingNotices = [];
    return notices;
  }

  undoSettings(): UndoSettings {
    return this.settings.undo;
  }

  // ----------------------------------------------------------------------------------------------
  // Clients

  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.subscribers.add(listener);
    // A question asked before this client came: it is the next attached client, so it is asked.
    if (this.question) listener({ type: 'question', questionId: this.question.questionId, question: this.question.question });
    return () => this.subscribers.delete(listener);
  }

  /** Settles an open background question; false when there is none with that id. */
  answer(questionId: number, answer: Answer): boolean {
    if (!this.question || this.question.questionId !== questionId) return false;
    const { settle } = this.question;
    this.question = undefined;
    settle(answer);
    this.publishStatus();
    return true;
  }

  /** Waits for the session (the initial copy, a restarted agent opening its state), so that a pause is never dropped. */
  async pause(): Promise<LiveStatus> {
    const session = await this.readySession();
    await session.pause();
    return this.status();
  }

  /**
   * Lifts a pause, a hold and a safety halt (after a halt the agreed state is forgotten: both sides
   * merge, nothing deleted); a question that holds the queue meanwhile is asked the requester first.
   */
  async resume(ask?: (question: SafeguardQuestionInfo) => Promise<Answer>): Promise<LiveStatus> {
    const session = await this.readySession();
    await this.whileWaiting({ ask }, () => session.resume());
    return this.status();
  }

  async configure(changes: LiveSettingsChange): Promise<LiveStatus> {
    const next = LiveSettings.parse({ ...this.settings, ...changes });
    const pollChanged = JSON.stringify(next.poll) !== JSON.stringify(this.settings.poll);
    this.settings = next;
    await writeFileAtomic(SETTINGS_FILE, JSON.stringify(next, null, 2) + '\n');
    const session = this.session;
    if (session && pollChanged) {
      // Which side is polled is fixed when the watchers start: a new session takes it.
      this.session = undefined;
      await session.close();
      await this.openSessionIfReady();
    } else if (session) {
      await session.configure({ autoSync: next.autoSync, excludes: next.excludes, allowSecrets: next.allowSecrets, undoThresholds: this.thresholds(), fullCycleIntervalMs: next.fullScanIntervalMs });
    }
    this.publishStatus();
    return this.status();
  }

  /** A client's job ran a full cycle of its own (see SyncSession.tookFullCycle). Call inside the job. */
  tookFullCycle(report: SyncReport): void {
    this.session?.tookFullCycle(report);
  }

  /** The editor saved these paths: a cycle for them soon (continuous and on-save). */
  hint(paths: readonly string[]): void {
    this.session?.markDirty(paths);
  }

  status(): LiveStatus {
    const session = this.session?.status();
    const state: LiveStatus['state'] = !session
      ? 'starting'
      : this.question
        ? 'waiting-for-approval'
        : session.halt
          ? 'halted'
          : session.busy
            ? 'syncing'
            : session.paused
              ? 'paused'
              : 'idle';
    const conflicts = session?.conflicts ?? [];
    const problems = session?.problems ?? [];
    const keptOut = session?.keptOut ?? [];
    const unlisted = (list: readonly unknown[]) => Math.max(0, list.length - MAX_LISTED);
    return {
      state,
      autoSync: session?.autoSync ?? this.settings.autoSync,
      changesWaiting: session?.changesWaiting ?? false,
      conflicts: conflicts.slice(0, MAX_LISTED),
      problems: problems.slice(0, MAX_LISTED),
      keptOut: keptOut.slice(0, MAX_LISTED),
      unlisted: { conflicts: unlisted(conflicts), problems: unlisted(problems), keptOut: unlisted(keptOut) },
      ...(session?.halt && { halt: session.halt }),
      ...(this.question && { question: { questionId: this.question.questionId, question: this.question.question } }),
      ...(session?.heldBy && { denied: session.heldBy }),
      degraded: (session?.degraded ?? []).map((degraded) => ({ side: degraded.side, reason: degraded.message })),
      ...(session?.lastCycle && { lastCycle: session.lastCycle }),
      ...(session?.failed && { failed: session.failed }),
    };
  }

  async close(): Promise<void> {
    clearTimeout(this.compactTimer);
    for (const question of this.question ? [this.question] : []) question.settle('deny');
    await this.session?.close();
  }

  // ----------------------------------------------------------------------------------------------
  // The session

  private runBeforeSession<T>(work: () => Promise<T>): Promise<T> {
    const run = this.startQueue.then(work);
    this.startQueue = run.catch(() => undefined);
    return run;
  }

  private async openSessionIfReady(): Promise<void> {
    if (this.session || readInitState()?.phase !== 'ready' || !existsSync(CONTAINER_STATE_PATH)) {
      this.publishStatus();
      return;
    }
    if (!this.undoLog) this.undoLog = await this.openUndoLog();
    const session = await SyncSession.open({
      roots: ROOTS,
      stateDir: CONTAINER_STATE_PATH,
      excludes: this.settings.excludes,
      allowSecrets: this.settings.allowSecrets,
      policy: 'two-way-safe',
      autoSync: this.settings.autoSync,
      fullCycleIntervalMs: this.settings.fullScanIntervalMs,
      poll: this.settings.poll,
      beforeModify: failpointHook(),
      owners: workspaceOwners,
      hostAccess: hostAccess(),
      undo: { log: this.undoLog, ask: (question) => this.askClients(question), thresholds: this.thresholds(), group: () => (this.cycleGroup = this.boundaries.current()) },
    });
    session.on('cycle-started', ({ kind }) => this.broadcast({ type: 'cycle-started', kind }));
    session.on('cycle', (finished) => this.cycleFinished(finished));
    session.on('status', () => this.publishStatus());
    session.on('degraded', (side, reason) => {
      log('warn', `watching ${side === 'host' ? 'the host folder' : '/workspace'}: ${reason.message}`);
      this.broadcast({ type: 'watcher-degraded', side, reason: reason.message });
    });
    session.on('halted', (halt) => {
      log('warn', `sync halted: ${halt.reason}`, { halted: true, side: halt.side });
      this.broadcast({ type: 'halted', side: halt.side, reason: halt.reason });
    });
    session.on('cycle-failed', (error) => log('error', `background cycle failed: ${errorMessage(error)}`));
    for (const degraded of session.degradedWatches) log('warn', `watching ${degraded.side === 'host' ? 'the host folder' : '/workspace'}: ${degraded.message}`);
    this.session = session;
    this.publishStatus();
  }

  private thresholds() {
    return { maxDeletions: this.settings.undo.maxDeletions, largeFileBytes: this.settings.undo.largeFileBytes };
  }

  private async openUndoLog(): Promise<UndoLog> {
    const { log: undoLog, recovered } = await UndoLog.open(path.join(CONTAINER_STATE_PATH, 'undo'), {
      keptDirectory: path.join(CONTAINER_STATE_PATH, 'kept'),
      limits: { maxSteps: this.settings.undo.maxSteps, maxLogBytes: this.settings.undo.maxLogBytes, maxStepBytes: this.settings.undo.maxStepBytes },
    });
    for (const step of recovered) {
      const what = step.outcome === 'rolled-back' ? 'rolled back the changes an interrupted sync had begun' : step.outcome === 'undo-completed' ? 'finished an interrupted undo' : 'could not roll back an interrupted sync that was too large to record';
      const notice = `${what} (${step.paths} path(s) in your folder${step.kept.length ? `; versions it replaced are kept in ${path.dirname(step.kept[0]!.keptAt)}` : ''})`;
      this.pendingNotices.push(notice);
      log('warn', `undo log: ${notice}`, { step: step.id, kept: step.kept, problems: step.problems });
    }
    return undoLog;
  }

  /** A background cycle's safeguard: every attached client is asked; the first answer counts. */
  private async askClients(question: SafeguardQuestionInfo): Promise<Answer> {
    const delayMs = questionDelayMs();
    if (delayMs) await sleep(delayMs);
    return new Promise((resolve) => {
      const questionId = this.nextQuestionId++;
      this.question = { questionId, question, settle: resolve };
      log('warn', `waiting for approval: ${question.detail}`, { kind: question.kind, path: question.path });
      this.broadcast({ type: 'question', questionId, question });
      this.publishStatus();
      // Requests already queued behind this cycle: asked too, or refused rather than left waiting.
      for (const waiter of this.waiting) {
        if (waiter.ask) this.askWaiter(waiter, { questionId, question });
        else if (waiter.refuse) {
          this.waiting.delete(waiter);
          waiter.refuse(awaitingApproval(question));
        }
      }
    });
  }

  private cycleFinished({ kind, report, rescan }: CycleFinished): void {
    if (kind !== 'request') {
      for (const waiter of this.answeredBy) waiter.answeredCycles?.push(report);
      this.answeredBy.clear();
    }
    // The step group the cycle recorded into (if it recorded): told what it changed on the host.
    const group = this.cycleGroup;
    this.cycleGroup = undefined;
    if (group && report.undoStep) this.boundaries.recorded(group, report.applied.filter((change) => change.side === 'host').map((change) => change.path));
    if (report.appliedCount > 0 || report.conflicts.length > 0 || report.halted) log('info', `${kind} cycle: ${report.appliedCount} change(s), ${report.conflicts.length} conflict(s)${report.halted ? `, halted: ${report.halted.reason}` : ''}`, { id: report.id, kind, applied: report.appliedCount, durationMs: report.durationMs, ...(report.phasesMs && { phasesMs: report.phasesMs }), ...(rescan && { rescan }) });
    this.broadcast({ type: 'cycle-finished', kind, report: listedReport(report) });
    // The repositories are not merged file by file: history crosses as git objects and refs,
    // after each full background cycle (the periodic one included), so commits arrive within one
    // period. A request's cycle exchanges them itself.
    if (kind === 'full' && !report.halted) {
      void this.session
        ?.runJob(() => exchangeGitHistory(), { housekeeping: true })
        .then((exchange) => {
          if (exchange && (exchange.lines.length > 0 || exchange.problems.length > 0)) this.broadcast({ type: 'git-exchanged', lines: exchange.lines, problems: exchange.problems });
        })
        .catch((error: unknown) => log('warn', `git exchange failed: ${errorMessage(error)}`));
    }
    this.scheduleCompaction();
    setImmediate(() => this.garbage.afterCycle({ walkedBothTrees: kind !== 'incremental', carried: report.appliedCount > 0 }));
  }

  /**
   * A sync writes its step's saved content uncompressed (it does not wait for compression); once
   * the queue is idle, the steps are compressed, one at a time, giving way to any waiting work.
   */
  private scheduleCompaction(): void {
    clearTimeout(this.compactTimer);
    this.compactTimer = setTimeout(() => {
      const session = this.session;
      const undoLog = this.undoLog;
      if (!session || !undoLog || undoLog.disabledReason) return;
      void session
        .runJob(() => undoLog.compact({ stop: () => session.jobsWaiting > 0 || (!session.isPaused && session.status().autoSync === 'continuous' && session.changesWaiting) }), { housekeeping: true })
        .then((compacted) => {
          if (compacted.length > 0) log('info', `undo log: compressed ${compacted.length} step(s)`, { steps: compacted });
        })
        .catch((error: unknown) => log('warn', `undo log: compaction failed: ${errorMessage(error)}`));
    }, COMPACT_AFTER_IDLE_MS);
    this.compactTimer.unref();
  }

  private broadcast(event: AgentEvent): void {
    const parsed = AgentEvent.parse(event);
    for (const listener of this.subscribers) listener(parsed);
  }

  /**
   * Tells subscribers the status when it changed, once per turn of the event loop: the watchers'
   * events for what a cycle just wrote arrive as a batch whose cycle starts in the same turn, and
   * published one by one, "changes waiting" then "syncing" then "synced" flickered after every
   * cycle that wrote (in `clud watch`, and in the status bar).
   */
  private publishStatus(): void {
    if (this.statusPublishing) return;
    this.statusPublishing = true;
    setImmediate(() => {
      this.statusPublishing = false;
      const status = this.status();
      const json = JSON.stringify(status);
      if (json === this.lastStatusJson) return;
      this.lastStatusJson = json;
      this.broadcast({ type: 'status', status });
    });
  }
}

/** Keeps the open turn or command for an agent restarted after a crash (none: removes it). */
function keepOpenStep(group: StepGroup | undefined): Promise<void> {
  return group ? writeJsonAtomic(OPEN_STEP_FILE, group) : rm(OPEN_STEP_FILE, { force: true });
}

/** The turn or command that was open when the agent last stopped, if any (see OPEN_STEP_FILE). */
function loadOpenStep(): StepGroup | undefined {
  try {
    const group = StepGroupRecord.parse(JSON.parse(readFileSync(OPEN_STEP_FILE, 'utf8')));
    return group.kind === 'turn' || group.kind === 'command' ? group : undefined;
  } catch {
    return undefined;
  }
}

/** The settings a client configured last, else the container's start-up options. */
function loadSettings(): LiveSettings {
  try {
    return LiveSettings.parse(JSON.parse(readFileSync(SETTINGS_FILE, 'utf8')));
  } catch {
    const options = readSyncOptions();
    return LiveSettings.parse({ autoSync: options.autoSync, excludes: options.excludes, allowSecrets: options.allowSecrets, poll: { host: options.poll.includes('host'), container: options.poll.includes('container') } });
  }
}

export function readSyncOptions(): SyncOptions {
  const raw = process.env[SYNC_OPTIONS_ENV];
  let json: unknown = {};
  try {
    json = raw ? JSON.parse(raw) : {};
  } catch {
    throw new Error(`${SYNC_OPTIONS_ENV} is not valid JSON`);
  }
  const parsed = SyncOptions.safeParse(json);
  if (!parsed.success) throw new Error(`${SYNC_OPTIONS_ENV} is invalid: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/** What a step boundary's flush carried, for the step channel. */
function flushedResult(session: SyncSession, finished: CycleFinished | undefined): SyncNowResult {
  const { halt } = session.status();
  const held = halt ? undefined : session.flushHeld;
  // Its first conflicts only: the answer is one line of the step channel.
  const report = finished && listedReport(finished.report, MAX_STEP_LINE_BYTES / 2);
  return { applied: report?.appliedCount ?? 0, conflicts: report?.conflicts.map((conflict) => conflict.path) ?? [], skipped: report ? countOf(report, 'skipped') : 0, ...(halt && { halted: halt.reason }), ...(held && { held }) };
}

/** A client's request waiting in the queue: one that can answer a safeguard question, or one refused while a question is open. */
interface WaitingRequest {
  ask?: (question: SafeguardQuestionInfo) => Promise<Answer>;
  refuse?: (error: RequestError) => void;
  /** The reports of background cycles that went on with this request's answer (a sync's, to report them as its own). */
  answeredCycles?: SyncReport[];
}

function awaitingApproval(question: SafeguardQuestionInfo): RequestError {
  return new RequestError('awaiting-approval', `a background sync is waiting for approval: ${question.detail}`);
}
