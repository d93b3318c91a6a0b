// The one place that holds a folder's workspace state in the editor. Commands, auto-sync and the
// reconnect on activation go through it; the status bar and the tree render its state.
import { displayText } from '../core/display';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DockerodeEngine } from '../core/docker/dockerodeEngine';
import { CludError, errorMessage } from '../core/errors';
import type { QuestionHandler } from '../core/host/agentClient';
import type { AgentEvent, LiveStatus, SyncReport, UndoResultInfo, UndoStepInfo } from '../core/protocol';
import type { LiveChannel } from '../core/live/channel';
import { stateRoot } from '../core/host/stateDirectory';
import type { Policy } from '../core/sync/reconcile';
import { describeReport } from '../core/sync/summary';
import { initialState, isNewsworthy, isRunning, reduce } from '../core/ui/state';
import type { RetryAction, StateEvent, WorkspaceViewState } from '../core/ui/state';
import { Workspace } from '../core/host/workspace';
import type { AgentSession, ResumeResult } from '../core/host/workspace';
import type { Logger } from './log';
import { forEditor } from './notify';
import { readSettings } from './settings';
import { undoSettings } from '../core/host/config';

type Platform = 'linux' | 'darwin' | 'win32';
const platform: Platform = process.platform === 'win32' ? 'win32' : process.platform === 'darwin' ? 'darwin' : 'linux';

/** A safeguard asks in a modal: the sync waits, and Deny (or closing the dialog) rolls it back. */
const askInModal: QuestionHandler = async (question) => {
  const choice = await vscode.window.showWarningMessage(displayText(`Clud: ${question.detail}. Allow this sync to go on?`), { modal: true, detail: 'Deny rolls back what this sync already changed in your folder.' }, 'Allow', 'Deny');
  return choice === 'Allow' ? 'allow' : 'deny';
};

export class WorkspaceController implements vscode.Disposable {
  private state: WorkspaceViewState = initialState();
  private readonly changed = new vscode.EventEmitter<WorkspaceViewState>();
  readonly onDidChange = this.changed.event;
  private session: AgentSession | undefined;
  /** The subscription to the resident agent's events, while the workspace runs. */
  private live: LiveChannel | undefined;
  /** The container's agent has no resident sync (an older image): saves sync as requests. */
  private liveUnsupported = false;
  /** Operations run one at a time, so a sync never overlaps a stop or another sync from this window. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly folder: vscode.WorkspaceFolder,
    private readonly extensionPath: string,
    private readonly log: Logger,
  ) {}

  get viewState(): WorkspaceViewState {
    return this.state;
  }

  /** A Workspace for the current settings (they may change between commands). */
  workspace(onProgress?: (message: string) => void): Workspace {
    return new Workspace({
      hostPath: this.folder.uri.fsPath,
      platform,
      config: readSettings(this.folder.uri).config,
      engine: new DockerodeEngine(),
      stateRoot: stateRoot(process.env, platform, os.homedir()),
      resources: { agentBundlePath: path.join(this.extensionPath, 'dist', 'agent.js'), containerDir: path.join(this.extensionPath, 'container') },
      onProgress: (event) => {
        if (event.phase === 'build') this.log.line(event.message);
        else this.log.info('progress', { phase: event.phase, message: event.message });
        onProgress?.(event.message);
      },
    });
  }

  /** On activation: find this folder's container, if one runs, without starting or building anything. */
  attach(): Promise<void> {
    return this.enqueue(async () => {
      const workspace = this.workspace();
      const status = await workspace.status();
      this.dispatch({ type: 'attached', hostPath: workspace.hostPath, containerName: workspace.containerName, image: status.image, running: status.state === 'running' && status.init?.phase === 'ready' });
      if (status.state === 'running' && status.init?.phase === 'ready') {
        this.dispatch({ type: 'historyLoaded', reports: await workspace.withSession((session) => session.client.request('history', {})).then((result) => result.reports) });
        await this.refreshUndo();
        this.connectLive();
      }
    });
  }

  start(options: { rebuild?: boolean; progress?: (message: string) => void; signal?: AbortSignal } = {}): Promise<void> {
    return this.enqueue(async () => {
      const correlationId = this.log.newCorrelationId();
      try {
        // Inside the try: reading the settings can fail, and that failure belongs in the state too.
        const workspace = this.workspace(options.progress);
        this.dispatch({ type: 'attached', hostPath: workspace.hostPath, containerName: workspace.containerName, running: false });
        this.dispatch({ type: 'starting', message: options.rebuild ? 'rebuilding the image' : 'starting the workspace' });
        this.log.info('start', { correlationId, folder: workspace.hostPath, container: workspace.containerName, rebuild: options.rebuild ?? false });
        await this.disconnectLive();
        await this.closeSession();
        const result = await workspace.up({ rebuild: options.rebuild, signal: options.signal });
        if (result.init?.phase !== 'ready') {
          throw new CludError('sync-failed', `the container is running but the initial copy failed: ${result.init?.error ?? 'unknown reason'}`, 'Fix the cause, then Retry.');
        }
        this.dispatch({ type: 'started', image: result.image });
        this.log.info('started', { correlationId, container: result.containerName, built: result.built, created: result.created });
      } catch (error) {
        this.fail(error, 'start', correlationId);
        throw error;
      }
      options.progress?.('first sync of the two copies');
      await this.syncNow('two-way-safe', undefined, correlationId);
      this.connectLive();
    });
  }

  stop(options: { force?: boolean } = {}): Promise<void> {
    return this.enqueue(async () => {
      await this.disconnectLive();
      await this.closeSession();
      await this.workspace().down({ force: options.force });
      this.dispatch({ type: 'stopped' });
      this.log.info('stopped', { force: options.force ?? false });
    });
  }

  /** One sync cycle; `onlyPaths` limits the changes to those files (auto-sync on save). */
  sync(policy?: Policy, onlyPaths?: string[]): Promise<SyncReport> {
    return this.enqueue(() => this.syncNow(policy, onlyPaths));
  }

  resolve(conflictPath: string, keep: 'host' | 'container' | 'both'): Promise<SyncReport> {
    return this.enqueue(async () => {
      const report = await this.withSession((workspace, session) => workspace.resolve(conflictPath, keep, { session, onQuestion: askInModal }));
      this.dispatch({ type: 'syncFinished', report });
      await this.refreshUndo();
      this.log.info('resolved', { path: conflictPath, keep, syncId: report.id, kept: report.kept });
      return report;
    });
  }

  /**
   * Lifts a pause and a safety halt. Resume Sync After Halt (`merge: 'always'`) then merges both
   * sides, deleting nothing, as `clud resume --merge` does; Resume Auto-Sync, as `clud resume`,
   * merges only after a halt.
   */
  resume(merge: 'always' | 'after-halt' = 'always'): Promise<ResumeResult> {
    return this.enqueue(async () => {
      const result = await this.workspace().resume({ merge, onQuestion: askInModal });
      if (result.report) this.dispatch({ type: 'syncFinished', report: result.report });
      if (result.live) this.dispatch({ type: 'statusReplied', status: result.live });
      this.log.info('resumed', { wasPaused: result.wasPaused, wasHalted: result.wasHalted, syncId: result.report?.id });
      return result;
    });
  }

  /** Stops background syncing until resumed; explicit syncs still work. */
  async pauseAutoSync(): Promise<LiveStatus> {
    // On the subscription's channel the reply comes after the events before it; on another it may not.
    const subscribed = this.live?.connected === true;
    const status = subscribed && this.live ? await this.live.request('pause', {}) : await this.workspace().pause();
    this.dispatch({ type: subscribed ? 'live' : 'statusReplied', status });
    this.log.info('autoSync.paused', {});
    return status;
  }

  /** Paths that may have changed on the host: the editor saved them (`saved`) or a file event named them. */
  async pathsChanged(paths: string[], saved: boolean): Promise<void> {
    let mode;
    try {
      mode = readSettings(this.folder.uri).autoSync;
    } catch {
      return; // An invalid setting is reported when a command reads it.
    }
    if (mode === 'off' || !isRunning(this.state)) return;
    if (this.live?.connected) {
      await this.live.request('hint', { paths }).catch((error: unknown) => this.log.info('hint.failed', { message: errorMessage(error) }));
    } else if (this.liveUnsupported && saved) {
      // An agent without a resident sync: the saved files sync as one request, as they always did.
      await this.sync(undefined, paths).catch(() => {
        // The controller has already put the failure in the status bar and the log.
      });
    }
    // Otherwise the subscription is being reopened; the agent's own watcher and full rescan see the change.
  }

  /**
   * Sends the settings the resident agent syncs by (after each subscription, and when they change).
   * The auto-sync mode goes only where the user set `clud.autoSync`, or has just changed it: an
   * editor that attaches leaves the mode the agent has (from `clud up --auto-sync`, say) as it is.
   * The secret patterns always go, set or not: the editor's default, none allowed, is the safe one.
   */
  async sendLiveSettings(options: { autoSyncChanged?: boolean } = {}): Promise<void> {
    if (!this.live?.connected) return;
    const settings = readSettings(this.folder.uri);
    const autoSync = options.autoSyncChanged || settings.config.autoSync !== undefined ? settings.autoSync : undefined;
    const status = await this.live.request('configure', { ...(autoSync && { autoSync }), excludes: settings.config.excludes, allowSecrets: settings.config.allowSecrets, undo: undoSettings(settings.config) });
    this.log.info('live.configured', { autoSync: autoSync ?? 'left as the agent has it' });
    this.dispatch({ type: 'live', status });
  }

  /** Subscribes to the resident agent's events; the status bar and the tree render what they say. */
  private connectLive(): void {
    if (this.live || this.liveUnsupported) return;
    const workspace = this.workspace();
    const channel = workspace.openLive({
      status: (status) => this.dispatch({ type: 'live', status }),
      event: (event) => this.onLiveEvent(event, workspace),
      question: (question) => askInModal(question),
      connected: () => this.sendLiveSettings(),
      connection: (change) => {
        if (change.state === 'connected') this.log.info('live.connected', { reconnected: change.reconnected });
        if (change.state === 'reconnecting') {
          this.log.info('live.reconnecting', { code: change.error.code, message: change.error.message, delayMs: change.delayMs });
          this.dispatch({ type: 'liveLost' });
        }
        if (change.state === 'closed') {
          this.dispatch({ type: 'liveLost' });
          if (this.live === channel) this.live = undefined;
          if (change.error?.code === 'agent-unavailable') this.liveUnsupported = true;
          if (change.error) this.log.info('live.closed', { code: change.error.code, message: change.error.message });
          if (change.error?.code === 'not-running') this.dispatch({ type: 'stopped' });
        }
      },
      notice: (message) => this.log.info('live.notice', { message }),
    });
    this.live = channel;
  }

  private onLiveEvent(event: AgentEvent, workspace: Workspace): void {
    if (event.type === 'cycle-finished') {
      const report = workspace.onHost(event.report);
      // A periodic rescan that found nothing new would push every useful entry out of the history.
      if (event.kind !== 'request' && !isNewsworthy(report, this.state)) return;
      this.dispatch({ type: 'syncFinished', report });
      this.log.info('sync.background', { kind: event.kind, syncId: report.id, summary: describeReport(report), applied: report.appliedCount, conflicts: report.conflicts.length });
      if (report.undoStep) void this.refreshUndo();
    } else if (event.type === 'halted') {
      this.log.error('sync.halted', { side: event.side, reason: event.reason });
    } else if (event.type === 'watcher-degraded') {
      this.log.info('watcher.degraded', { side: event.side, reason: event.reason });
    } else if (event.type === 'git-exchanged') {
      this.log.info('git.exchanged', { lines: event.lines, problems: event.problems });
    }
  }

  private async disconnectLive(): Promise<void> {
    const channel = this.live;
    this.live = undefined;
    this.liveUnsupported = false;
    await channel?.close();
  }

  /** Takes back the newest `steps` syncs on the host (see UndoLog); refused results come back, not thrown. */
  undo(steps: number, force = false): Promise<UndoResultInfo> {
    return this.enqueue(async () => {
      const result = await this.withSession((workspace, session) => workspace.undo(steps, force, session));
      this.log.info('undo', { steps, force, undone: result.undone.map((step) => step.id), refused: result.refused, kept: result.kept, problems: result.problems });
      await this.refreshUndo();
      return result;
    });
  }

  /** The undo history as the agent has it now, newest first (the view is refreshed with it). */
  undoHistory(): Promise<UndoStepInfo[]> {
    return this.enqueue(async () => {
      await this.refreshUndo();
      return this.state.undoSteps;
    });
  }

  backup(): Promise<{ id: string; files: number; directory: string }> {
    return this.enqueue(async () => {
      const workspace = this.workspace();
      const manifest = await workspace.backup();
      this.log.info('backup', { id: manifest.id, files: manifest.entries.length });
      return { id: manifest.id, files: manifest.entries.length, directory: path.join(workspace.stateDirectory, 'backups', manifest.id) };
    });
  }

  /** The last operation's error, run again. */
  retry(): Promise<unknown> {
    const health = this.state.health;
    const action: RetryAction = health.kind === 'error' ? health.retry : health.kind === 'halted' ? 'resume' : 'sync';
    if (action === 'start') return this.start();
    if (action === 'resume') return this.resume();
    return this.sync();
  }

  dispose(): void {
    void this.disconnectLive();
    void this.closeSession();
    this.changed.dispose();
  }

  private async syncNow(policy?: Policy, onlyPaths?: string[], correlationId = this.log.newCorrelationId()): Promise<SyncReport> {
    const chosen = policy ?? readSettings(this.folder.uri).syncPolicy;
    this.dispatch({ type: 'syncStarted', message: onlyPaths ? `syncing ${onlyPaths.length} saved file(s)` : `syncing (${chosen})` });
    this.log.info('sync.start', { correlationId, policy: chosen, onlyPaths });
    try {
      const report = await this.withSession((workspace, session) => workspace.syncCycle(chosen, { session, onlyPaths, onQuestion: askInModal }));
      this.dispatch({ type: 'syncFinished', report });
      await this.refreshUndo();
      this.log.info('sync.finish', { correlationId, syncId: report.id, summary: describeReport(report), applied: report.appliedCount, conflicts: report.conflicts.length, skipped: report.skipped, halted: report.halted });
      return report;
    } catch (error) {
      this.fail(error, 'sync', correlationId);
      throw error;
    }
  }

  private async refreshUndo(): Promise<void> {
    try {
      const history = await this.withSession((workspace, session) => workspace.undoHistory(session));
      this.dispatch({ type: 'undoLoaded', steps: history.steps, disabledReason: history.disabledReason });
    } catch (error) {
      this.log.error('undo.history', { message: errorMessage(error) });
    }
  }

  /** Runs with the long-lived agent session, reopening it once if the agent went away. */
  private async withSession<T>(work: (workspace: Workspace, session: AgentSession) => Promise<T>): Promise<T> {
    const workspace = this.workspace();
    if (!this.session || this.session.client.isClosed) this.session = await workspace.openSession();
    try {
      return await work(workspace, this.session);
    } catch (error) {
      if (error instanceof CludError && error.code === 'agent-exited') {
        this.session = undefined;
        this.session = await workspace.openSession();
        return work(workspace, this.session);
      }
      throw error;
    }
  }

  private async closeSession(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.close().catch(() => {});
  }

  private fail(error: unknown, retry: RetryAction, correlationId: string): void {
    const code = error instanceof CludError ? error.code : 'internal';
    this.log.error('failed', { correlationId, code, message: errorMessage(error) });
    if (code === 'not-running') {
      this.dispatch({ type: 'stopped' });
      return;
    }
    this.dispatch({ type: 'failed', message: forEditor(errorMessage(error)), hint: error instanceof CludError && error.hint ? forEditor(error.hint.split('\n')[0]!) : undefined, retry });
  }

  private dispatch(event: StateEvent): void {
    this.state = reduce(this.state, event);
    void vscode.commands.executeCommand('setContext', 'clud.running', isRunning(this.state));
    void vscode.commands.executeCommand('setContext', 'clud.state', this.state.health.kind);
    void vscode.commands.executeCommand('setContext', 'clud.hasConflicts', this.state.conflicts.length > 0);
    void vscode.commands.executeCommand('setContext', 'clud.halted', this.state.health.kind === 'halted');
    void vscode.commands.executeCommand('setContext', 'clud.paused', this.state.health.kind === 'paused');
    this.changed.fire(this.state);
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }
}

