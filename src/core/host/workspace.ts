// One project folder's workspace: its image, its container and its agent. The CLI and the VS Code
// extension are thin shells around this class; it does everything through ContainerEngine.
import { randomBytes } from 'node:crypto';
import { chown, mkdir, readFile, realpath, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from './agentClient';
import type { QuestionHandler } from './agentClient';
import { configureClaude, hasApiKey, loopbackPortFree, prepareAgentHome, readMcpServers, settleKeyHelper, startUi, validateApiKey, waitForUi, writeApiKey } from './codingAgent';
import type { UiAuth } from './codingAgent';
import { undoSettings } from './config';
import type { CludConfig } from './config';
import {
  AGENT_PATH,
  AGENT_STATE_DIR,
  AS_SYNC_USER_PATH,
  CONTAINER_CAPABILITIES,
  CONTAINER_LAYOUT,
  CONTAINER_STATE_PATH,
  CONTAINER_WORKSPACE_PATH,
  INIT_STATE_PATH,
  LABEL_AGENT_HASH,
  LABEL_CLUD_HASH,
  LABEL_CONTEXT_HASH,
  LABEL_HOST_PATH,
  LABEL_LAYOUT,
  LABEL_WORKSPACE,
  GIT_NAMESPACE_ENV,
  GIT_STATE_FILE,
  SYNC_OPTIONS_ENV,
  WORKSPACE_USER,
  AGENT_HOME_PATH,
  LABEL_UI,
  SECRETS_PATH,
  UI_CONTAINER_PORT,
  UI_PORT_KEY,
  agentVolumeName,
  uiImageTag,
} from '../containerLayout';
import { containerState } from '../docker/engine';
import type { ContainerEngine, ContainerInfo, ContainerState, ExecSession } from '../docker/engine';
import { CludError, errorMessage } from '../errors';
import { withRetries } from '../retry';
import { configureGitIdentity, hostGitIdentity } from './gitIdentity';
import { bindMount, containerNameFor, gitNamespaceSource, hostFolderMount, normalizeHostPath } from './hostPath';
import { gitNamespace } from '../git/refNames';
import { hostStatePath, hostStatePathsIn, workspaceStateDirectory } from './stateDirectory';
import type { HostPlatform } from './hostPath';
import { loadBuildContext, packBuildContext } from './imageContext';
import type { BuildContext, ImageResources } from './imageContext';
import { resolveMcpServers } from './mcp';
import type { McpServerSetting } from './mcp';
import { GitStatusSchema, InitState, PROTOCOL_VERSION } from '../protocol';
import type { GitStatus } from '../protocol';
import type { BackupManifest, LiveSettingsChange, LiveStatus, ProgressData, RestoreResult, ResultOf, SyncOptions, SyncReport, UndoResultInfo } from '../protocol';
import { LiveChannel } from '../live/channel';
import type { LiveChannelOptions, LiveHandlers } from '../live/channel';
import { changesLostWithContainer } from '../sync/compare';
import { linkMayLeaveFolder } from '../sync/linksLeavingFolder';
import type { Policy, Side } from '../sync/reconcile';

export type WorkspaceProgressPhase = 'build' | 'create' | 'start' | 'initial-sync' | 'push' | 'pull' | 'sync' | 'check' | 'ui';
export interface WorkspaceProgress {
  phase: WorkspaceProgressPhase;
  message: string;
}

export interface WorkspaceOptions {
  hostPath: string;
  platform: HostPlatform;
  config: CludConfig;
  engine: ContainerEngine;
  resources: ImageResources;
  onProgress?: (event: WorkspaceProgress) => void;
  /** How long `up` waits for the initial copy (default 30 minutes). */
  initTimeoutMs?: number;
  /** The folder holding every workspace's sync state (see stateDirectory.ts). */
  stateRoot: string;
  /** Extra environment for the agent, its start-up and its sessions (tests set CLUD_FAILPOINT, see src/agent/failpoint.ts). */
  agentEnv?: Record<string, string>;
}

export type { ContainerState } from '../docker/engine';

export interface WorkspaceStatus {
  hostPath: string;
  containerName: string;
  state: ContainerState;
  containerId?: string;
  image?: string;
  /**
   * The folder is gone from its path (deleted or moved) while its container runs. Docker then
   * reads no file of the container (its archive API resolves the bind mount's source), so what
   * those reads show (the initial copy's outcome, the IDE, the MCP servers) is left out; the
   * resident agent still answers, and halts on a folder that emptied; a moved folder is still
   * the mount's, and synced where it went.
   */
  folderMissing?: boolean;
  /** False when another Clud made the container (its Dockerfile, scripts or agent are not this one's; the base image and certificates chosen are not compared). */
  imageCurrent?: boolean;
  init?: InitState;
  /** The browser IDE, when the container was made with it and runs. */
  ui?: UiInfo;
  /** The MCP servers in Claude Code's user scope inside the container (while it runs). */
  mcpServers?: string[];
  /** The agent's branches in the folder's repository, as the last sync left them. */
  git?: GitStatus;
  /** What the resident sync agent is doing (absent: not running, or an agent without one). */
  live?: LiveStatus;
}

export interface UiInfo {
  url: string;
  hostPort: number;
  /** The password code-server was just started with (`--auth password`); shown once, never stored. */
  password?: string;
}

export interface UpResult extends WorkspaceStatus {
  built: boolean;
  created: boolean;
  started: boolean;
  /** Things to know that did not fail `up`, e.g. an auto-sync mode the container's agent could not take. */
  warnings?: string[];
}

/** What `resume` did: the agent's status after it, and the merge that lifted a halt, if there was one. */
export interface ResumeResult {
  /** Absent when the container's agent has no resident sync (then `report` is the merge). */
  live?: LiveStatus;
  wasPaused: boolean;
  wasHalted: boolean;
  report?: SyncReport;
}

export interface UpOptions {
  rebuild?: boolean;
  signal?: AbortSignal;
  /** Run the browser IDE; absent: keep what an existing container has, else the `ui` setting. */
  ui?: boolean;
  /** The IDE's host port (a taken one is an error); absent: the `uiPort` setting, else 8743 when free, else any. */
  uiPort?: number;
  uiAuth?: UiAuth;
  /** Stored for Claude Code on the container's tmpfs; an existing key is replaced. */
  apiKey?: string;
  /** Replaces the `mcpServers` setting (on top of the defaults). */
  mcpServers?: McpServerSetting[];
}

/** Set on a container made with the IDE: its code-server authentication. */
const LABEL_UI_AUTH = 'clud.uiAuth';

/** An open control channel to the container's agent: one exec for as many requests as needed. */
export interface AgentSession {
  client: AgentClient;
  close(): Promise<void>;
}

export class Workspace {
  readonly hostPath: string;
  readonly containerName: string;
  /** This workspace's sync state on the host, mounted at CONTAINER_STATE_PATH. */
  readonly stateDirectory: string;
  private readonly engine: ContainerEngine;
  private readonly config: CludConfig;
  private context: BuildContext | undefined;

  constructor(private readonly options: WorkspaceOptions) {
    this.hostPath = normalizeHostPath(options.hostPath, options.platform);
    this.containerName = options.config.containerName ?? containerNameFor(this.hostPath, options.platform);
    this.stateDirectory = workspaceStateDirectory(options.stateRoot, this.containerName, options.platform);
    this.engine = options.engine;
    this.config = options.config;
  }

  get syncOptions(): SyncOptions {
    // Docker Desktop (macOS, Windows) passes no file events through its bind mounts: the host side is polled there.
    const poll = this.options.platform === 'linux' ? this.config.poll : [...new Set([...this.config.poll, 'host' as const])];
    return { excludes: this.config.excludes, retries: this.config.syncRetries, allowSecrets: this.config.allowSecrets, autoSync: this.config.autoSync ?? 'continuous', poll };
  }

  /** Builds the image if needed, creates and starts the container if needed, waits for the initial copy. */
  async up(options: UpOptions = {}): Promise<UpResult> {
    // Bad input is refused before anything is built or started.
    const apiKey = options.apiKey === undefined ? undefined : validateApiKey(options.apiKey);
    const mcpServers = resolveMcpServers(options.mcpServers ?? this.config.mcpServers, options.mcpServers ? '--mcp-servers' : 'the mcpServers setting');
    await this.assertHostFolder();
    await this.engine.ping();
    let container = await this.ownedContainer();
    this.assertNotHeld(container);
    const hadUi = container?.labels[LABEL_UI] === '1';
    const ui = options.ui ?? (container ? hadUi : this.config.ui);
    // A new container's authentication; an existing one keeps its own unless another is asked for.
    const uiAuth: UiAuth = options.uiAuth ?? 'none';
    const recreate = container !== undefined && (hadUi !== ui || (ui && options.uiAuth !== undefined && container.labels[LABEL_UI_AUTH] !== options.uiAuth));
    const uiPort = options.uiPort ?? this.config.uiPort;
    let hostPort = '';
    if (ui && (!container || recreate || options.rebuild)) {
      // A container about to be recreated may hold the port itself; it is free once that one goes.
      const heldByThisContainer = (port: number) => container?.running === true && container.ports[UI_PORT_KEY]?.hostPort === port;
      if (uiPort !== undefined) {
        if (!heldByThisContainer(uiPort) && !(await loopbackPortFree(uiPort))) throw new CludError('port-taken', `port ${uiPort} on 127.0.0.1 is taken`, 'Choose another with --port N, or leave it out to get a free one.');
        hostPort = String(uiPort);
      } else if (heldByThisContainer(UI_CONTAINER_PORT) || (await loopbackPortFree(UI_CONTAINER_PORT))) {
        hostPort = String(UI_CONTAINER_PORT);
      }
    } else if (ui && container && options.uiPort !== undefined && container.running && container.ports[UI_PORT_KEY]?.hostPort !== options.uiPort) {
      throw new CludError('bad-input', `the IDE of ${this.containerName} is published on port ${container.ports[UI_PORT_KEY]?.hostPort ?? '(none)'}, not ${options.uiPort}`, 'Run `clud down`, then `clud up --ui --port N`.');
    }
    const imageTag = ui ? uiImageTag(this.config.imageTag) : this.config.imageTag;
    const context = await this.buildContext();
    let built = false;
    let image = await this.engine.inspectImage(imageTag);
    // Only a container about to be made needs the image: one that stays runs its own, with the
    // current agent copied in at start (currentAgentPath). Building anyway cost a stopped
    // workspace minutes, and where the build failed (no network), its start.
    const creating = !container || recreate || options.rebuild === true;
    if (creating && (options.rebuild || !image || image.labels[LABEL_CONTEXT_HASH] !== context.hash)) {
      this.progress('build', `building image ${imageTag}${ui ? ' (with the browser IDE)' : ''}`);
      image = await this.engine.buildImage(
        packBuildContext(context.files),
        { tag: imageTag, target: ui ? 'ui' : 'workspace', buildArgs: { BASE_IMAGE: this.config.baseImage }, labels: { [LABEL_CONTEXT_HASH]: context.hash } },
        (line) => this.progress('build', line),
        options.signal,
      );
      built = true;
    }
    // A rebuild that made the very image the container runs has nothing to recreate it with.
    const keptOnRebuild = container !== undefined && options.rebuild === true && !recreate && container.imageId === image?.id;
    if (container && ((options.rebuild && container.imageId !== image?.id) || recreate)) {
      // Recreating the container discards /workspace: only when nothing there is unsynced.
      if (!container.running) await this.start(container);
      await this.waitForInit(container.id);
      await this.assertNothingUnsynced('Run `clud sync` to bring the container\'s changes over first, or `clud down --force` to drop them, then run this again.');
      await this.engine.removeContainer(container.id);
      container = undefined;
    }
    let created = false;
    let started = false;
    if (!container) {
      this.progress('create', `creating container ${this.containerName}`);
      await this.prepareStateDirectory();
      const id = await this.engine.createContainer({
        name: this.containerName,
        image: imageTag,
        labels: {
          [LABEL_WORKSPACE]: '1',
          [LABEL_HOST_PATH]: this.hostPath,
          [LABEL_CONTEXT_HASH]: context.hash,
          [LABEL_CLUD_HASH]: context.cludHash,
          [LABEL_AGENT_HASH]: context.agentHash,
          [LABEL_LAYOUT]: CONTAINER_LAYOUT,
          ...(ui ? { [LABEL_UI]: '1', [LABEL_UI_AUTH]: uiAuth } : {}),
        },
        env: { ...this.options.agentEnv, [SYNC_OPTIONS_ENV]: JSON.stringify(this.syncOptions), [GIT_NAMESPACE_ENV]: gitNamespace(gitNamespaceSource(this.hostPath, this.containerName, this.options.platform)) },
        mounts: [
          hostFolderMount(this.hostPath, this.options.platform),
          bindMount(this.stateDirectory, CONTAINER_STATE_PATH, this.options.platform),
          { Type: 'volume', Source: agentVolumeName(this.containerName), Target: AGENT_HOME_PATH, ReadOnly: false },
          // /workspace on a volume of its own rather than the container's writable layer, where
          // overlayfs made each file created cost 250-400 µs of kernel time (24 µs on a volume,
          // measured in the container on the test machine): the initial copy and every change the
          // sync carries into /workspace create files. Anonymous, so it goes with the container,
          // as the writable layer did: a new container starts from an empty one.
          { Type: 'volume', Target: CONTAINER_WORKSPACE_PATH, ReadOnly: false },
          { Type: 'tmpfs', Target: SECRETS_PATH, TmpfsOptions: { Mode: 0o700, SizeBytes: 1024 * 1024 } },
        ],
        capabilities: CONTAINER_CAPABILITIES,
        noNewPrivileges: true,
        ports: ui ? { [UI_PORT_KEY]: { hostIp: '127.0.0.1', hostPort } } : undefined,
      });
      if (id === undefined) {
        // Another `clud up` (or the editor's Start Workspace) is making it: this one goes on with
        // that container, as if it had found it (a container of that name not made by Clud for
        // this folder is refused by ownedContainer). Docker refuses the name while the other
        // create is still under way, before the container can be looked up: a few tries.
        const { value } = await withRetries(() => this.ownedContainer(), { retries: 6, shouldRetry: (found) => found === undefined, baseDelayMs: 100 });
        if (!value) throw new CludError('name-taken', `container ${this.containerName} was being made by another command, and is not there`, 'Run `clud up` again.');
        container = value;
      } else {
        container = (await this.engine.inspectContainer(id))!;
        created = true;
      }
    }
    if (!container.running) {
      await this.start(container);
      started = true;
    }
    let init = await this.waitForInit(container.id);
    if (init.phase === 'failed' && !created && !started) {
      // The container was already up with a failed initial copy: `up` again is the retry.
      this.progress('initial-sync', 'retrying the initial copy of the folder');
      init = await this.withSession((session) => session.client.request('retryInitialSync', this.syncOptions, (data) => this.progress('initial-sync', describeProgress(data))));
    }
    // The coding agent is set up whether or not the initial copy worked: the IDE is where the user
    // looks at a failed workspace, and the failure is in `init` for the caller to report.
    await prepareAgentHome(this.engine, container.id);
    // The key first: Claude Code's settings name Clud's key helper only while a key is stored.
    if (apiKey !== undefined) await writeApiKey(this.engine, container.id, apiKey);
    await configureClaude(this.engine, container.id, mcpServers);
    let uiInfo: UiInfo | undefined;
    if (ui) uiInfo = await this.startUi(container.id, (container.labels[LABEL_UI_AUTH] as UiAuth | undefined) ?? uiAuth);
    const warnings: string[] = keptOnRebuild ? ['the rebuilt image is the one the container already runs, so the container was kept, and /workspace with it'] : [];
    const identity = await hostGitIdentity(this.hostPath);
    const identityProblem = identity && (await configureGitIdentity(this.engine, container.id, identity));
    if (identityProblem) warnings.push(identityProblem);
    if (this.config.autoSync !== undefined && init.phase === 'ready') {
      await this.configure({ autoSync: this.config.autoSync }).catch((error: unknown) => {
        if (!(error instanceof CludError && error.code === 'agent-unavailable')) throw error;
        warnings.push(`auto-sync ${this.config.autoSync} was not set: ${error.message}`);
      });
    }
    const status = await this.status();
    return { ...status, ...(uiInfo && { ui: uiInfo }), init, built, created, started, ...(warnings.length > 0 && { warnings }) };
  }

  private async startUi(containerId: string, auth: UiAuth): Promise<UiInfo> {
    this.progress('ui', 'starting the browser IDE');
    const password = auth === 'password' ? randomBytes(18).toString('base64url') : undefined;
    const outcome = await startUi(this.engine, containerId, auth, password);
    const info = await this.uiInfo(containerId);
    if (!info) throw new CludError('ui-failed', `the IDE's port of ${this.containerName} is not published`, 'Run `clud down` and `clud up --ui` to recreate the container.');
    await waitForUi(info.url);
    return { ...info, ...(outcome === 'started' && password && { password }) };
  }

  private async uiInfo(containerId: string): Promise<UiInfo | undefined> {
    const container = await this.engine.inspectContainer(containerId);
    const published = container?.ports[UI_PORT_KEY];
    if (!container || container.labels[LABEL_UI] !== '1' || !published) return undefined;
    return { url: `http://127.0.0.1:${published.hostPort}/?folder=${CONTAINER_WORKSPACE_PATH}`, hostPort: published.hostPort };
  }

  /** The browser IDE's address; an error when the workspace runs without it. */
  async uiAddress(): Promise<UiInfo> {
    const container = await this.requireRunning();
    const info = await this.uiInfo(container.id);
    if (!info) throw new CludError('no-ui', `workspace ${this.containerName} runs without the browser IDE`, 'Run `clud up --ui` (it recreates the container once nothing in /workspace is unsynced).');
    return info;
  }

  /** Stores the API key for Claude Code in the running container (no rebuild, no restart). */
  async setApiKey(key: string): Promise<void> {
    const container = await this.requireRunning();
    await writeApiKey(this.engine, container.id, key);
    await settleKeyHelper(this.engine, container.id);
  }

  async hasApiKey(): Promise<boolean> {
    const container = await this.requireRunning();
    return hasApiKey(this.engine, container.id);
  }

  /** Claude Code in /workspace as the workspace user; on a terminal when `tty`. */
  async openClaude(args: string[], options: { tty: boolean }): Promise<ExecSession> {
    const container = await this.requireRunning();
    // A restart of the container took a stored key away: Claude Code then offers its own login.
    await settleKeyHelper(this.engine, container.id);
    return this.engine.exec(container.id, {
      cmd: ['claude', ...args],
      user: WORKSPACE_USER,
      workingDir: CONTAINER_WORKSPACE_PATH,
      attachStdin: true,
      tty: options.tty,
      env: { TERM: 'xterm-256color', HOME: `/home/${WORKSPACE_USER}` },
    });
  }

  async status(): Promise<WorkspaceStatus> {
    await this.engine.ping();
    const container = await this.ownedContainer();
    const base = { hostPath: this.hostPath, containerName: this.containerName };
    if (!container) return { ...base, state: 'missing' };
    const context = await this.buildContext().catch(() => undefined);
    const status: WorkspaceStatus = {
      ...base,
      state: containerState(container),
      containerId: container.id,
      image: container.image,
      imageCurrent: context ? container.labels[LABEL_CLUD_HASH] === context.cludHash : undefined,
    };
    const folderMissing = container.running && !(await stat(this.hostPath).catch(() => undefined))?.isDirectory();
    if (folderMissing) {
      status.folderMissing = true;
    } else if (container.running) {
      status.init = await this.readInitState(container.id);
      const ui = await this.uiInfo(container.id);
      if (ui) status.ui = ui;
      status.mcpServers = await readMcpServers(this.engine, container.id);
    }
    status.git = await this.readGitStatus();
    if (folderMissing || (container.running && status.init?.phase === 'ready')) status.live = await this.liveStatus().catch(() => undefined);
    return status;
  }

  /** The resident agent's status now (a subscription opened and closed); undefined when the agent has none. */
  async liveStatus(session?: AgentSession): Promise<LiveStatus | undefined> {
    const run = (open: AgentSession) => open.client.request('subscribe', {});
    try {
      return await (session ? run(session) : this.withSession(run));
    } catch (error) {
      if (error instanceof CludError && error.code === 'agent-unavailable') return undefined;
      throw error;
    }
  }

  /**
   * A subscription to the resident agent's events that lasts until closed, reopened with backoff
   * when the agent restarts (see src/core/live/channel.ts).
   */
  openLive(handlers: LiveHandlers, options?: LiveChannelOptions): LiveChannel {
    return new LiveChannel(() => this.openSession(), handlers, options);
  }

  /** Stops background syncing; changes collect until `resume`. */
  async pause(): Promise<LiveStatus> {
    return this.withSession((session) => session.client.request('pause', {}));
  }

  /** Changes how the resident agent syncs on its own (the settings named; the rest stay); returns its status. */
  async configure(settings: LiveSettingsChange): Promise<LiveStatus> {
    return this.withSession((session) => session.client.request('configure', settings));
  }

  /**
   * Lifts a pause and a safety halt. After a halt it forgets the agreed state and merges both
   * sides, deleting nothing (the merge's report comes back); after a pause the sync goes on from
   * its agreed state, so what changed meanwhile crosses, deletions included. `merge: 'always'`
   * (`clud resume --merge`, Resume Sync After Halt) merges whether or not anything halted.
   */
  async resume(options: { merge?: 'always' | 'after-halt'; onQuestion?: QuestionHandler } = {}): Promise<ResumeResult> {
    return this.withSession(async (session) => {
      const merge = () => this.syncCycle('two-way-safe', { reset: true, session, onQuestion: options.onQuestion });
      const live = await this.liveStatus(session);
      if (!live) return { wasPaused: false, wasHalted: true, report: await merge() };
      const wasHalted = live.halt !== undefined || (await session.client.request('history', {})).reports[0]?.halted !== undefined;
      // The merge before the resume: a reset lifts the halt in the same job that merges, whereas
      // a resume that lifted it would start a background cycle that merged first, leaving this
      // report empty and the user told nothing was restored.
      const report = wasHalted || options.merge === 'always' ? await merge() : undefined;
      const after = await session.client.request('resume', {}, undefined, options.onQuestion);
      return { live: after, wasPaused: live.state === 'paused' && !wasHalted, wasHalted, ...(report && { report }) };
    });
  }

  /** Makes /workspace like the host folder; what only the container had is kept aside, not lost. */
  push(session?: AgentSession): Promise<SyncReport> {
    return this.syncCycle('push', { session });
  }

  /** Makes the host folder like /workspace; what only the host had is kept aside, not lost. */
  pull(session?: AgentSession): Promise<SyncReport> {
    return this.syncCycle('pull', { session });
  }

  /** One three-way sync cycle (push and pull are its one-way policies). */
  async syncCycle(policy: Policy, options: { reset?: boolean; onlyPaths?: string[]; session?: AgentSession; onQuestion?: QuestionHandler } = {}): Promise<SyncReport> {
    const params = { policy, excludes: this.config.excludes, allowSecrets: this.config.allowSecrets, reset: options.reset ?? false, onlyPaths: options.onlyPaths, undo: undoSettings(this.config), retries: this.config.syncRetries };
    const run = (open: AgentSession) => open.client.request('sync', params, (data) => this.progress('sync', describeProgress(data)), options.onQuestion);
    return this.onHost(await (options.session ? run(options.session) : this.withSession(run)));
  }

  /** The undo log's steps (newest first), its barriers, and why it is disabled if it is. */
  async undoHistory(session?: AgentSession): Promise<ResultOf<'undoHistory'>> {
    const run = (open: AgentSession) => open.client.request('undoHistory', {});
    return this.onHost(await (session ? run(session) : this.withSession(run)));
  }

  /** Undoes the newest `steps` syncs on the host; refused with reasons where that would destroy a later change, unless forced. */
  async undo(steps: number, force: boolean, session?: AgentSession): Promise<UndoResultInfo> {
    const run = (open: AgentSession) => open.client.request('undo', { steps, force });
    return this.onHost(await (session ? run(session) : this.withSession(run)));
  }

  /** Drops an undo log of another format version (undo is disabled until then). */
  async discardUndoLog(): Promise<void> {
    await this.withSession((session) => session.client.request('discardUndoLog', {}));
  }

  /** Past sync cycles, newest first. */
  async history(): Promise<SyncReport[]> {
    return (await this.withSession((session) => session.client.request('history', {}))).reports.map((report) => this.onHost(report));
  }

  async resolve(path: string, keep: 'host' | 'container' | 'both', options: { session?: AgentSession; onQuestion?: QuestionHandler } = {}): Promise<SyncReport> {
    const run = (open: AgentSession) => open.client.request('resolve', { path, keep, excludes: this.config.excludes, allowSecrets: this.config.allowSecrets, undo: undoSettings(this.config) }, (data) => this.progress('sync', describeProgress(data)), options.onQuestion);
    return this.onHost(await (options.session ? run(options.session) : this.withSession(run)));
  }

  backup(): Promise<BackupManifest> {
    return this.withSession((session) => session.client.request('backup', { excludes: this.config.excludes, allowSecrets: this.config.allowSecrets }));
  }

  async listBackups(): Promise<BackupManifest[]> {
    return (await this.withSession((session) => session.client.request('listBackups', {}))).backups;
  }

  async restoreBackup(backupId: string, side: 'host' | 'container', onQuestion?: QuestionHandler): Promise<RestoreResult> {
    return this.onHost(await this.withSession((session) => session.client.request('restoreBackup', { backupId, side, excludes: this.config.excludes, allowSecrets: this.config.allowSecrets, undo: undoSettings(this.config) }, undefined, onQuestion)));
  }

  /**
   * The agent names places in the state folder as it sees them (`/clud/state/kept/…`); every
   * result that reaches the CLI or the extension names them on the host, where they can be opened.
   */
  onHost<T extends { kept?: { keptAt: string }[]; notices?: string[]; problems?: unknown[] }>(result: T): T {
    const platform = this.options.platform;
    const path = (containerPath: string) => hostStatePath(containerPath, this.stateDirectory, CONTAINER_STATE_PATH, platform);
    const text = (message: string) => hostStatePathsIn(message, this.stateDirectory, CONTAINER_STATE_PATH, platform);
    return {
      ...result,
      ...(result.kept && { kept: result.kept.map((kept) => ({ ...kept, keptAt: path(kept.keptAt) })) }),
      ...(result.notices && { notices: result.notices.map(text) }),
      ...(result.problems && { problems: result.problems.map((problem) => (typeof problem === 'string' ? text(problem) : problem)) }),
    };
  }

  /** Opens the control channel. The caller closes it; the extension keeps one per workspace. */
  async openSession(): Promise<AgentSession> {
    const container = await this.requireRunning();
    // As root into the same wrapper the container's init went through: the sync agent's own user
    // and capabilities, never the workspace user's. A container made before that layout runs its
    // own agent as it always did (see LABEL_LAYOUT).
    const olderLayout = container.labels[LABEL_LAYOUT] !== CONTAINER_LAYOUT;
    const agent = olderLayout ? { cmd: ['node', AGENT_PATH, 'serve'], user: WORKSPACE_USER } : { cmd: [AS_SYNC_USER_PATH, 'node', await this.currentAgentPath(container), 'serve'], user: 'root' };
    const exec = await this.engine.exec(container.id, {
      ...agent,
      workingDir: CONTAINER_WORKSPACE_PATH,
      attachStdin: true,
      // A sync waits on file system calls, which libuv runs on this many threads (default 4).
      env: { UV_THREADPOOL_SIZE: '16', ...this.options.agentEnv },
    });
    const client = new AgentClient(exec.stdin, exec.stdout, exec.stderr);
    const close = async () => {
      client.close();
      await exec.exitCode;
    };
    try {
      const hello = await client.request('hello', { protocolVersion: PROTOCOL_VERSION });
      if (hello.protocolVersion !== PROTOCOL_VERSION) throw new CludError('agent-failed', `the agent speaks protocol ${hello.protocolVersion}, this Clud ${PROTOCOL_VERSION}`, 'Run `clud up --rebuild`.');
    } catch (error) {
      await close().catch(() => {});
      throw error;
    }
    return { client, close };
  }

  async withSession<T>(work: (session: AgentSession) => Promise<T>): Promise<T> {
    const session = await this.openSession();
    try {
      return await work(session);
    } finally {
      await session.close();
    }
  }

  /** Runs a command in /workspace as the workspace user; resolves with its exit code. */
  async exec(cmd: string[], io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): Promise<number> {
    const container = await this.requireRunning();
    // Docker reports a command it cannot start ("executable file not found") on the exec's stdout,
    // which would land in the CLI's stdout (and break --json). A shell that execs the command
    // starts every time, and reports a missing command on stderr with the same codes (127, 126).
    const viaShell = ['/bin/sh', '-c', 'exec "$@"', 'clud exec', ...cmd];
    const exec = await this.engine.exec(container.id, { cmd: viaShell, user: WORKSPACE_USER, workingDir: CONTAINER_WORKSPACE_PATH, attachStdin: io.stdin !== undefined });
    if (io.stdin) io.stdin.pipe(exec.stdin);
    exec.stdout.pipe(io.stdout, { end: false });
    exec.stderr.pipe(io.stderr, { end: false });
    const code = await exec.exitCode;
    if (io.stdin) io.stdin.unpipe(exec.stdin);
    return code;
  }

  /** A file of /workspace as it is now, read through the Docker API (for the conflict diff). */
  async readContainerFile(relativePath: string): Promise<Buffer | undefined> {
    const container = await this.requireRunning();
    if (relativePath.split('/').includes('..')) throw new CludError('bad-input', `${relativePath} is not inside the workspace`);
    return this.engine.readFile(container.id, `${CONTAINER_WORKSPACE_PATH}/${relativePath}`);
  }

  /** An interactive shell in /workspace as the workspace user, on a terminal. */
  async openShell(): Promise<ExecSession> {
    const container = await this.requireRunning();
    return this.engine.exec(container.id, { cmd: ['/bin/bash', '-l'], user: WORKSPACE_USER, workingDir: CONTAINER_WORKSPACE_PATH, attachStdin: true, tty: true, env: { TERM: 'xterm-256color' } });
  }

  async logs(tail?: number): Promise<{ stdout: string; stderr: string }> {
    await this.engine.ping();
    const container = await this.ownedContainer();
    if (!container) throw this.notRunning();
    return this.engine.logs(container.id, { tail });
  }

  /** Stops and removes the container; refuses while /workspace holds changes the host lacks, unless forced. */
  async down(options: { force?: boolean; purge?: boolean } = {}): Promise<{ removed: boolean; containerName: string; purged?: boolean }> {
    await this.engine.ping();
    const container = await this.ownedContainer();
    if (!container) {
      if (options.purge) await this.engine.removeVolume(agentVolumeName(this.containerName));
      return { removed: false, containerName: this.containerName, ...(options.purge && { purged: true }) };
    }
    if (!options.force) {
      this.assertNotHeld(container);
      // A stopped container still holds its /workspace: start it (a restart keeps /workspace as
      // it was) so the check can look, rather than assume there is nothing to lose.
      const wasStopped = !container.running;
      if (wasStopped) {
        await this.start(container);
        await this.waitForInit(container.id);
      }
      try {
        await this.assertNothingUnsynced('Run `clud sync` to bring the container\'s changes over, or pass --force to remove the container anyway.');
      } catch (error) {
        if (wasStopped) await this.engine.stopContainer(container.id).catch(() => {});
        throw error;
      }
    }
    await this.engine.stopContainer(container.id);
    await this.engine.removeContainer(container.id);
    // The coding agent's state (Claude Code's configuration and login) outlives the container unless purged.
    if (options.purge) await this.engine.removeVolume(agentVolumeName(this.containerName));
    return { removed: true, containerName: this.containerName, ...(options.purge && { purged: true }) };
  }

  /** `wayOut`: the hint, which depends on what would remove the container (`down`, or `up` recreating it). */
  private async assertNothingUnsynced(wayOut: string): Promise<void> {
    this.progress('check', 'checking /workspace for changes the host does not have');
    const { differences: all, hasAgreedState } = await this.withSession((session) => session.client.request('compare', { excludes: this.config.excludes, allowSecrets: this.config.allowSecrets }));
    // Removing the container loses the changes made in /workspace since the two last agreed
    // (edits, new files, deletions); changes made only on the host stay with the host. Without an
    // agreed state, whatever the container holds differently counts.
    const differences = changesLostWithContainer(all, hasAgreedState);
    if (differences.length === 0) return;
    const sampleOf = (list: typeof differences) => `${list.slice(0, 5).map((difference) => difference.path).join(', ')}${list.length > 5 ? ', …' : ''}`;
    // No sync carries these: the way out is to look at them, not to sync.
    const held = (side: Side) => differences.filter((difference) => difference.heldBySecret === side);
    const [heldByHost, heldByContainer] = [held('host'), held('container')];
    const leaving = differences.filter(({ path, container }) => container?.kind === 'symlink' && linkMayLeaveFolder(path, container.target));
    const notes = [
      ...(heldByHost.length > 0 ? [`${heldByHost.length} of them where your folder's file holds a secret, which no sync overwrites (${sampleOf(heldByHost)})`] : []),
      ...(heldByContainer.length > 0 ? [`${heldByContainer.length} of them files in /workspace that hold secrets, which no sync copies to your folder unless allowed (${sampleOf(heldByContainer)}; \`clud sync --allow-secret PATTERN\` brings one over)`] : []),
      ...(leaving.length > 0 ? [`${leaving.length} of them symbolic links that may lead outside the folder, which no sync writes into your folder (${sampleOf(leaving)})`] : []),
    ];
    const heldNote = notes.length > 0 ? `; ${notes.join('; ')}: see the container's version with \`clud exec -- cat PATH\`` : '';
    throw new CludError('unsynced-changes', `${differences.length} change(s) made in /workspace have not reached ${this.hostPath} (${sampleOf(differences)})${heldNote}`, wayOut);
  }

  /**
   * Creates the state folder. The agent writes it as the workspace user, who has the project
   * folder owner's UID; when Clud itself runs as root, the folder is given to that owner.
   */
  private async prepareStateDirectory(): Promise<void> {
    await mkdir(this.stateDirectory, { recursive: true, mode: 0o700 });
    if (this.options.platform === 'linux' && process.getuid?.() === 0) {
      const owner = await stat(this.hostPath);
      if (owner.uid !== 0) await chown(this.stateDirectory, owner.uid, owner.gid);
    }
  }

  private async start(container: ContainerInfo): Promise<void> {
    this.progress('start', `starting container ${container.name}`);
    await this.engine.startContainer(container.id);
  }

  /** Waits until `init` in a container that has just (re)started has finished the initial copy. */
  private async waitForInit(containerId: string): Promise<InitState> {
    const deadline = Date.now() + (this.options.initTimeoutMs ?? 30 * 60_000);
    let lastMessage = '';
    while (Date.now() < deadline) {
      const container = await this.engine.inspectContainer(containerId);
      if (!container?.running) {
        const logs = container ? await this.engine.logs(containerId, { tail: 5 }).catch(() => ({ stdout: '', stderr: '' })) : { stdout: '', stderr: '' };
        throw new CludError('agent-failed', `container ${this.containerName} stopped during start-up${logs.stderr.trim() ? `: ${logs.stderr.trim().split('\n').pop()}` : ''}`, 'Run `clud logs` to see why.');
      }
      const state = await this.readInitState(containerId);
      // A state file older than this start belongs to the container's previous run.
      const fresh = state && (!container.startedAt || Date.parse(state.updatedAt) >= Date.parse(container.startedAt) - 1000);
      if (state && fresh) {
        if (state.phase === 'ready' || state.phase === 'failed') return state;
        const message = state.progress ? `copying the folder: ${describeProgress(state.progress)}` : `initial copy: ${state.phase}`;
        if (message !== lastMessage) this.progress('initial-sync', (lastMessage = message));
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new CludError('timeout', `container ${this.containerName} did not finish its initial copy in time`, 'Run `clud status` and `clud logs` to see where it is.');
  }

  private async readGitStatus(): Promise<GitStatus | undefined> {
    try {
      return GitStatusSchema.parse(JSON.parse(await readFile(path.join(this.stateDirectory, GIT_STATE_FILE), 'utf8')));
    } catch {
      return undefined; // No sync has carried history yet, or a file from another version.
    }
  }

  private async readInitState(containerId: string): Promise<InitState | undefined> {
    const content = await this.engine.readFile(containerId, INIT_STATE_PATH).catch(() => undefined);
    if (!content) return undefined;
    try {
      return InitState.parse(JSON.parse(content.toString('utf8')));
    } catch {
      return undefined; // Mid-write or from another version: the next poll will tell.
    }
  }

  /** The image's agent, or the current bundle copied in when the container's image is older. */
  private async currentAgentPath(container: ContainerInfo): Promise<string> {
    const context = await this.buildContext();
    if (container.labels[LABEL_AGENT_HASH] === context.agentHash) return AGENT_PATH;
    const name = `agent-${context.agentHash.slice(0, 16)}.js`;
    const agent = context.files.find((file) => file.name === 'agent.js')!;
    await this.engine.writeFile(container.id, AGENT_STATE_DIR, name, agent.content, 0o644);
    return `${AGENT_STATE_DIR}/${name}`;
  }

  private async ownedContainer(): Promise<ContainerInfo | undefined> {
    const container = await this.engine.inspectContainer(this.containerName);
    if (!container) return undefined;
    if (container.labels[LABEL_WORKSPACE] !== '1') {
      throw new CludError('name-taken', `a container named ${this.containerName} exists and was not made by Clud`, 'Choose another name with --name, or remove that container yourself.');
    }
    const owner = container.labels[LABEL_HOST_PATH];
    if (owner !== this.hostPath) {
      throw new CludError('name-taken', `container ${this.containerName} belongs to another folder (${owner})`, 'Choose another name with --name.');
    }
    return container;
  }

  private async requireRunning(): Promise<ContainerInfo> {
    await this.engine.ping();
    const container = await this.ownedContainer();
    if (!container?.running) throw this.notRunning(container);
    return container;
  }

  /** A paused or restarting container can neither be started nor looked into: say so, do nothing. */
  private assertNotHeld(container: ContainerInfo | undefined): void {
    const state = containerState(container);
    if (state === 'paused' || state === 'restarting') throw this.notRunning(container);
  }

  private notRunning(container?: ContainerInfo): CludError {
    const state = containerState(container);
    if (state === 'paused' || state === 'restarting') {
      return new CludError('not-running', `no running workspace container for ${this.hostPath}: ${this.containerName} is ${state}`, state === 'paused' ? `Run \`docker unpause ${this.containerName}\`.` : 'Wait for it to come up, or run `clud logs` to see why it restarts.');
    }
    // A folder that is not there has no workspace to start: `clud up` would fail on it too.
    if (!container && !existsSync(this.hostPath)) return new CludError('not-running', `${this.hostPath} does not exist, and has no workspace container`, 'Pass the project folder (DIR), or run the command in it.');
    return new CludError('not-running', `no running workspace container for ${this.hostPath} (${this.containerName})`, 'Run `clud up` first.');
  }

  private async assertHostFolder(): Promise<void> {
    const info = await stat(this.hostPath).catch((error: unknown) => {
      throw new CludError('folder-missing', `folder ${this.hostPath} does not exist (${errorMessage(error)})`, 'Pass an existing project folder.');
    });
    if (!info.isDirectory()) throw new CludError('folder-missing', `${this.hostPath} is not a folder`, 'Pass a project folder.');
    // Clud's state stays out of the coding agent's reach: inside the project folder, the undo log
    // and the agreed state would be synced into /workspace, and what the agent made of them back.
    const paths = this.options.platform === 'win32' ? path.win32 : path.posix;
    const fromProject = paths.relative(await realPathSoFar(this.hostPath, paths), await realPathSoFar(this.options.stateRoot, paths));
    if (fromProject === '' || (!fromProject.startsWith('..') && !paths.isAbsolute(fromProject))) {
      throw new CludError('bad-input', `${this.hostPath} holds Clud's state folder ${this.options.stateRoot}: its undo log and agreed state would be synced into /workspace, where the coding agent could change them`, 'Start the workspace on a project folder that does not contain it, or set CLUD_STATE_DIR to a folder outside this one.');
    }
  }

  private async buildContext(): Promise<BuildContext> {
    this.context ??= await loadBuildContext(this.options.resources, this.config);
    return this.context;
  }

  private progress(phase: WorkspaceProgressPhase, message: string): void {
    this.options.onProgress?.({ phase, message });
  }
}

/**
 * The real path of `folder`, through its deepest part that exists: a state folder not made yet
 * (a fresh machine) is still compared through the links above it (a home folder behind a link).
 */
async function realPathSoFar(folder: string, paths: typeof path.posix): Promise<string> {
  const rest: string[] = [];
  for (let at = folder; ; at = paths.dirname(at)) {
    const real = await realpath(at).catch(() => undefined);
    if (real !== undefined) return paths.join(real, ...rest);
    if (paths.dirname(at) === at) return folder;
    rest.unshift(paths.basename(at));
  }
}

function describeProgress(data: ProgressData): string {
  return data.files === undefined ? data.message : `${data.files} files`;
}
