// The one definition of every message between the host (CLI, extension) and the in-container
// agent. Both sides import this module and validate every line with it, so they cannot disagree
// about a message. Wire format: JSON Lines over the stdio of one `docker exec` per session.
import { z } from 'zod';
import type { Entry } from './files/entry';

/** true where A and B accept exactly the same values, else false. */
type SameType<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export const PROTOCOL_VERSION = 1;
/** A line longer than this is rejected before it is parsed (the agent and host both enforce it). */
export const MAX_LINE_BYTES = 1024 * 1024;
/** The most entries one list of a sync report or of the live status holds: past it, entries are counted, not listed. */
export const MAX_LISTED = 1000;

export const SyncDirection = z.enum(['push', 'pull']);
/**
 * Patterns (gitignore syntax, from the folder's root) of files the secret check would keep out
 * that the user lets through anyway (`clud.allowSecrets`, `--allow-secret`, CLUD_ALLOW_SECRETS).
 */
export const AllowSecrets = z.array(z.string()).default([]);
/** A file left where it is because it holds credentials (src/core/sync/secrets.ts), and why. */
export const KeptOutSchema = z.object({ path: z.string(), reason: z.string() });
export type SyncDirection = z.infer<typeof SyncDirection>;

/** What one push or pull did. Returned by the agent, printed by `clud --json`, shown in the UI. */
export const SyncMetrics = z.object({
  direction: SyncDirection,
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  filesTransferred: z.number().int().nonnegative(),
  filesDeleted: z.number().int().nonnegative(),
  bytesTransferred: z.number().int().nonnegative(),
  errors: z.array(z.string()),
  retries: z.number().int().nonnegative(),
  /** Relative POSIX paths that changed on the target (capped; see `changedPathsTruncated`). */
  changedPaths: z.array(z.string()),
  changedPathsTruncated: z.boolean(),
  /** Files of the host folder not copied because they hold credentials. */
  keptOut: z.array(KeptOutSchema).default([]),
  /**
   * Paths left alone on both sides, like ignored ones: unreadable files and folders, sockets,
   * devices. They do not make a copy fail; every later sync reports them among its problems.
   */
  notCopied: z.array(z.object({ path: z.string(), reason: z.string() })).default([]),
});
export type SyncMetrics = z.infer<typeof SyncMetrics>;

/**
 * When the resident agent syncs on its own: `continuous` (watch both trees, sync what changed, a
 * periodic full rescan), `on-save` (only the editor's saves, sent as hints, and explicit requests),
 * `off` (only explicit requests: sync, push, pull).
 */
export const AutoSyncMode = z.enum(['continuous', 'on-save', 'off']);
export type AutoSyncMode = z.infer<typeof AutoSyncMode>;

export const SyncOptions = z.object({
  /** Extra exclude patterns (.gitignore syntax) on top of the built-ins. */
  excludes: z.array(z.string()).default([]),
  /** Transient-failure retries of a sync cycle (I/O or timeout trouble). */
  retries: z.number().int().min(0).max(10).default(3),
  allowSecrets: AllowSecrets,
  /** When the resident agent syncs on its own, until a client configures it otherwise (see LiveSettings). */
  autoSync: AutoSyncMode.default('continuous'),
  /** Sides polled instead of watched: the host on Docker Desktop, whose bind mounts pass no file events. */
  poll: z.array(z.enum(['host', 'container'])).default([]),
});
export type SyncOptions = z.infer<typeof SyncOptions>;

export const ProgressData = z.object({
  phase: z.string(),
  message: z.string(),
  /** Files handled so far in this operation, when known. */
  files: z.number().int().nonnegative().optional(),
});
export type ProgressData = z.infer<typeof ProgressData>;

/**
 * The agent `init` process's state, written to a file in the container so that it can be read
 * without an exec (before the workspace user exists) and by any later agent session.
 */
export const InitPhase = z.enum(['starting', 'syncing', 'ready', 'failed']);
export type InitPhase = z.infer<typeof InitPhase>;
export const InitState = z.object({
  phase: InitPhase,
  updatedAt: z.string(),
  /** Human-readable reason when phase is "failed". */
  error: z.string().optional(),
  /** The UID/GID the workspace user was given in the container (never the sync user's). */
  workspaceUid: z.number().int().optional(),
  workspaceGid: z.number().int().optional(),
  /** The UID/GID the sync agent's user was given (the host folder owner's, unless root). */
  syncUid: z.number().int().optional(),
  syncGid: z.number().int().optional(),
  warnings: z.array(z.string()).default([]),
  initialSync: SyncMetrics.optional(),
  attempts: z.number().int().nonnegative().default(0),
  /** Where a running initial copy is, for the host's progress display. */
  progress: ProgressData.optional(),
});
export type InitState = z.infer<typeof InitState>;

/**
 * What the initial copy's own process (`agent initial-copy`) writes to the resident agent, one
 * JSON object per line: progress while it copies, then the init state it ended in.
 */
export const InitialCopyMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('progress'), data: ProgressData }),
  z.object({ kind: z.literal('done'), state: InitState }),
]);
export type InitialCopyMessage = z.infer<typeof InitialCopyMessage>;

export const AgentStatus = z.object({
  agentVersion: z.string(),
  protocolVersion: z.number().int(),
  uid: z.number().int(),
  gid: z.number().int(),
  cwd: z.string(),
  init: InitState.optional(),
});
export type AgentStatus = z.infer<typeof AgentStatus>;

/** A snapshot entry, as `Entry` (src/core/files/entry.ts) declares it; the type checker holds the two the same. */
export const EntrySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), size: z.number().int().nonnegative(), mtimeMs: z.number(), mode: z.number().int(), hash: z.string() }),
  z.object({ kind: z.literal('directory'), mode: z.number().int() }),
  z.object({ kind: z.literal('symlink'), target: z.string() }),
  z.object({ kind: z.literal('untracked'), reason: z.string(), special: z.literal(true).optional() }),
]);
/** Fails to compile when EntrySchema and Entry part ways (a field added, removed or typed differently on one side). */
const entrySchemaIsEntry: SameType<z.infer<typeof EntrySchema>, Entry> = true;
void entrySchemaIsEntry;
export const SyncPolicy = z.enum(['two-way-safe', 'host-wins', 'container-wins', 'newer-wins', 'push', 'pull']);
export const SyncSide = z.enum(['host', 'container']);
export const ConflictSchema = z.object({ path: z.string(), ancestor: EntrySchema.optional(), host: EntrySchema.optional(), container: EntrySchema.optional() });
export type ConflictInfo = z.infer<typeof ConflictSchema>;
const PathOnSide = z.object({ path: z.string(), side: SyncSide });
/** How the other side's version of a file one side keeps out as a secret left what both last agreed (see compare.ts). */
export const SecretOtherSide = z.enum(['changed', 'deleted']);
export type SecretOtherSide = z.infer<typeof SecretOtherSide>;
/**
 * Why a change was skipped, for code to decide on (the reason is for people):
 * `changed-since-scan` the target, `source-changed` the version to copy (another cycle carries
 * both), `parent-replaced` a parent is no longer a folder, `unsyncable` not a file, folder or
 * link, `failed` an error.
 */
export const SkipCode = z.enum(['changed-since-scan', 'source-changed', 'parent-replaced', 'unsyncable', 'failed']);
export type SkipCode = z.infer<typeof SkipCode>;

/** An agent branch as it stands in the host's repository. */
export const GitBranchSchema = z.object({
  /** The container's branch name. */
  branch: z.string(),
  /** How git shows it on the host: `clud/<workspace>/<branch>`. */
  hostName: z.string(),
  tip: z.string(),
  /** Commits on it that the host branch it is compared with (`base`) does not have. */
  ahead: z.number().int().nonnegative(),
  /** The host branch of the same name, or absent when there is none (then: not on any host branch). */
  base: z.string().optional(),
});
export type GitBranchInfo = z.infer<typeof GitBranchSchema>;

/** What crossed between the two repositories in one sync (see src/core/git/bridge.ts). */
export const GitExchangeSchema = z.object({
  /** One short line per thing that crossed, e.g. "agent: 3 new commits on clud/app/main". */
  lines: z.array(z.string()),
  /** What could not be carried, and why; the container's repository was left as it was. */
  problems: z.array(z.string()),
  branches: z.array(GitBranchSchema),
  /** The branch the folder's HEAD is on (`refs/heads/…`; absent: detached or no repository), to tell the next exchange the user switched. */
  hostHead: z.string().optional(),
  /** Each container branch's tip as this exchange saw it, to tell the next one that the user deleted an agent branch. */
  carried: z.record(z.string(), z.string()).optional(),
});
export type GitExchange = z.infer<typeof GitExchangeSchema>;

/** The agent branches as the last sync left them (the state folder's git.json, shown by `clud status`). */
export const GitStatusSchema = z.object({
  updatedAt: z.string(),
  branches: z.array(GitBranchSchema),
  problems: z.array(z.string()),
  hostHead: GitExchangeSchema.shape.hostHead,
  carried: GitExchangeSchema.shape.carried,
});
export type GitStatus = z.infer<typeof GitStatusSchema>;

const Count = z.number().int().nonnegative();

/** What one three-way sync cycle did. */
export const SyncReport = z.object({
  /** Correlation id of this sync, in logs and in the kept-versions folder name. */
  id: z.string(),
  policy: SyncPolicy,
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  /** Of `durationMs`, how long the cycle waited for the answer to a safeguard question (absent: it asked none). */
  waitedForAnswerMs: z.number().nonnegative().optional(),
  halted: z.object({ side: SyncSide, reason: z.string() }).optional(),
  /** Every change carried out (the first MAX_LISTED; `appliedCount` is the total). */
  applied: z.array(PathOnSide.extend({ action: z.enum(['create', 'update', 'delete']) })),
  appliedCount: z.number().int().nonnegative(),
  /** Of `appliedCount`: entries written (created or updated) and entries deleted. */
  writtenCount: z.number().int().nonnegative().default(0),
  deletedCount: z.number().int().nonnegative().default(0),
  skipped: z.array(PathOnSide.extend({ code: SkipCode.default('failed'), reason: z.string() })),
  conflicts: z.array(ConflictSchema),
  problems: z.array(PathOnSide.extend({ reason: z.string() })),
  kept: z.array(PathOnSide.extend({ keptAt: z.string() })),
  /**
   * Files that hold credentials, left on their side: never copied, overwritten or deleted.
   * `otherSide`: the other side's version is not what both last agreed (it `changed`, or was
   * `deleted`), and no sync carries that either while the secret stands: each side keeps its own.
   */
  keptOut: z.array(PathOnSide.merge(KeptOutSchema).extend({ otherSide: SecretOtherSide.optional() })).default([]),
  bytesCopied: z.number().int().nonnegative(),
  /** Cycles run again because a file changed while this one ran (see the agent's syncCycle). */
  retries: z.number().int().nonnegative().default(0),
  /** The undo step holding this cycle's changes to the host, if it made any, by the id `clud history` lists. */
  undoStep: z.string().optional(),
  /**
   * That step holds other cycles too (a burst of background syncs, a Claude Code turn, a `clud
   * run` command): `clud undo` takes this cycle back together with them.
   */
  undoStepShared: z.boolean().optional(),
  /** Why that step cannot be undone (it went over the size limit of one step). */
  notUndoable: z.string().optional(),
  /** Things the user should know that are not about one path, e.g. an interrupted sync rolled back first. */
  notices: z.array(z.string()).default([]),
  /** A safeguard the user denied: asked before the cycle changed anything, so it changed nothing. */
  denied: z.object({ kind: z.string(), path: z.string(), detail: z.string() }).optional(),
  scanned: z.object({ hostFiles: z.number().int(), containerFiles: z.number().int(), hashedFiles: z.number().int() }),
  /**
   * Where a cycle that got as far as its commit spent its time, in ms: reading both sides (`scan`),
   * deciding (`reconcile`), changing files (`apply`, the undo step's plan, captures and close
   * included) and writing the agreed state (`commit`). Absent for a cycle that stopped earlier.
   */
  phasesMs: z.object({ scan: z.number(), reconcile: z.number(), apply: z.number(), commit: z.number() }).optional(),
  /** The git history exchanged after the file sync; absent when the cycle halted. */
  git: GitExchangeSchema.optional(),
  /**
   * The entries each list leaves out, counted: a report's lists are cut to their first entries to
   * fit well inside one message (`listedReport` in sync/summary.ts). Absent: every list is whole.
   */
  unlisted: z.object({ conflicts: Count, skipped: Count, problems: Count, kept: Count, keptOut: Count }).partial().optional(),
});
export type SyncReport = z.infer<typeof SyncReport>;

/**
 * A report of a cycle that has done nothing (yet): no changes, empty lists, zero counts, with
 * `fields` on top. The engine starts every cycle from it and test fixtures build theirs with it,
 * so a field added to SyncReport gets its empty value here, once.
 */
export function emptySyncReport({ id, policy, startedAt, ...fields }: Pick<SyncReport, 'id' | 'policy' | 'startedAt'> & Partial<SyncReport>): SyncReport {
  return {
    id,
    policy,
    startedAt,
    durationMs: 0,
    applied: [],
    appliedCount: 0,
    writtenCount: 0,
    deletedCount: 0,
    skipped: [],
    conflicts: [],
    problems: [],
    kept: [],
    keptOut: [],
    bytesCopied: 0,
    retries: 0,
    notices: [],
    scanned: { hostFiles: 0, containerFiles: 0, hashedFiles: 0 },
    ...fields,
  };
}

export const SafeguardKind = z.enum(['many-deletions', 'large-overwrite', 'rename-over']);
export type SafeguardKind = z.infer<typeof SafeguardKind>;
export const SafeguardQuestionSchema = z.object({ kind: SafeguardKind, path: z.string(), detail: z.string() });
export type SafeguardQuestionInfo = z.infer<typeof SafeguardQuestionSchema>;
export const SafeguardAnswer = z.enum(['allow', 'deny']);

/** What an undoable step is (see src/core/undo/stepBoundaries.ts): a Claude Code turn, a `clud run` command, the changes up to a checkpoint, a burst of background syncs. */
export const StepKind = z.enum(['turn', 'command', 'checkpoint', 'sync']);
export type StepKind = z.infer<typeof StepKind>;
export const StepGroupSchema = z.object({ id: z.string(), kind: StepKind, label: z.string() });
export type StepGroupInfo = z.infer<typeof StepGroupSchema>;

/** One entry of the undo history: a group of recorded syncs (`steps`, newest first) undone as one. */
/** The start of the `policy` of an undo step a resolve made ("resolve: keep host"), which names the step as it is. */
export const RESOLVE_POLICY_PREFIX = 'resolve: keep ';

export const UndoStepSchema = z.object({
  /** The group's id (a step recorded without a group is one of its own, under the step's id). */
  id: z.string(),
  syncId: z.string(),
  policy: z.string(),
  startedAt: z.string(),
  closedAt: z.string(),
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  protected: z.boolean(),
  unprotectedReason: z.string().optional(),
  notes: z.array(z.string()),
  barriers: z.number().int().nonnegative(),
  /** Absent for steps recorded before groups: each is then a background sync of its own. */
  group: StepGroupSchema.optional(),
  steps: z.array(z.string()).optional(),
});
export type UndoStepInfo = z.infer<typeof UndoStepSchema>;
export const BarrierSchema = z.object({ stepId: z.string(), path: z.string(), detectedAt: z.string(), change: z.string() });
/**
 * Why an undo was refused, for code to decide on (`refused` says it in words). Forcing overrides
 * two: `still-running` (a turn or command that has not ended, say because Claude Code was killed
 * before its Stop) and `changed-since` (barriers: later versions, which forcing keeps aside).
 */
export const UndoRefusalCode = z.enum(['unavailable', 'busy', 'invalid', 'nothing-to-undo', 'cannot-undo', 'still-running', 'changed-since']);
export type UndoRefusalCode = z.infer<typeof UndoRefusalCode>;
export const UndoResultSchema = z.object({
  undone: z.array(UndoStepSchema),
  refused: z.string().optional(),
  refusedCode: UndoRefusalCode.optional(),
  /** With `still-running`: the turn or command that has not ended. */
  running: StepGroupSchema.optional(),
  barriers: z.array(BarrierSchema),
  stoppedBefore: z.object({ stepId: z.string().optional(), reason: z.string() }).optional(),
  kept: z.array(z.object({ path: z.string(), keptAt: z.string() })),
  problems: z.array(z.string()),
});
export type UndoResultInfo = z.infer<typeof UndoResultSchema>;

/** Undo log and safeguard settings, sent with each request that may write to the host. */
export const UndoSettings = z.object({
  maxSteps: z.number().int().min(1).max(10_000).default(50),
  maxLogBytes: z.number().int().min(1).default(1024 ** 3),
  maxStepBytes: z.number().int().min(1).default(256 * 1024 ** 2),
  maxDeletions: z.number().int().min(0).default(50),
  largeFileBytes: z.number().int().min(0).default(10 * 1024 ** 2),
});
export type UndoSettings = z.infer<typeof UndoSettings>;

export const SyncRequestParams = z.object({
  policy: SyncPolicy.default('two-way-safe'),
  excludes: z.array(z.string()).default([]),
  /** Forget a safety halt and the last agreed state, then merge both sides without deleting anything. */
  reset: z.boolean().default(false),
  /** Only change these relative paths (auto-sync of saved files); everything else waits for a full sync. */
  onlyPaths: z.array(z.string()).max(10_000).optional(),
  undo: UndoSettings.default(UndoSettings.parse({})),
  allowSecrets: AllowSecrets,
  /** How many more cycles run when a change was skipped because its file moved under it (the `syncRetries` setting). */
  retries: z.number().int().min(0).max(10).default(3),
});
export type SyncRequestParams = z.infer<typeof SyncRequestParams>;

export const BackupManifest = z.object({
  id: z.string(),
  createdAt: z.string(),
  entries: z.array(z.object({ path: z.string(), host: EntrySchema.optional(), container: EntrySchema.optional() })),
});
export type BackupManifest = z.infer<typeof BackupManifest>;

/** What a restore of a backup did: its lists cut and counted as a sync report's are (`listedReport`). */
export const RestoreResult = SyncReport.pick({ applied: true, appliedCount: true, skipped: true, kept: true, unlisted: true });
export type RestoreResult = z.infer<typeof RestoreResult>;

const Excludes = z.array(z.string()).default([]);


/** How the resident agent syncs on its own; a client sends it with `configure`, the container's environment gives the first. */
export const LiveSettings = z.object({
  autoSync: AutoSyncMode.default('continuous'),
  excludes: Excludes,
  allowSecrets: AllowSecrets,
  undo: UndoSettings.default(UndoSettings.parse({})),
  /** Poll a side instead of watching it (a mount whose events do not arrive, or a test). */
  poll: z.object({ host: z.boolean().default(false), container: z.boolean().default(false) }).default({ host: false, container: false }),
  /** The periodic full rescan, the truth behind the watchers' hints (Mutagen: 10 s). */
  fullScanIntervalMs: z.number().int().min(1000).max(24 * 3600 * 1000).default(10_000),
});
export type LiveSettings = z.infer<typeof LiveSettings>;

/**
 * A `configure` request: the settings it names change, the others stay as the agent has them.
 * Not LiveSettings.partial(): in zod 4 a field left out of a partial still takes its default, so
 * a client that sent only the auto-sync mode would reset the polling and the undo limits.
 */
const { autoSync, excludes, allowSecrets, undo, poll, fullScanIntervalMs } = LiveSettings.shape;
export const LiveSettingsChange = z.object({
  autoSync: autoSync.unwrap().optional(),
  excludes: excludes.unwrap().optional(),
  allowSecrets: allowSecrets.unwrap().optional(),
  undo: undo.unwrap().optional(),
  poll: poll.unwrap().optional(),
  fullScanIntervalMs: fullScanIntervalMs.unwrap().optional(),
  // A setting added to LiveSettings and not here fails to compile, rather than being dropped from every change.
} satisfies { [Key in keyof LiveSettings]: z.ZodOptional });
export type LiveSettingsChange = z.infer<typeof LiveSettingsChange>;

/**
 * What the resident agent is doing, the one value the status bar, the tree and `clud watch`
 * render. `waiting-for-approval`: a background cycle holds a change behind a safeguard question
 * (`question`) until a client answers it; `halted`: a safety halt stopped syncing (`halt`) until
 * `resume`; `paused`: the user paused auto-sync.
 */
export const LiveState = z.enum(['starting', 'idle', 'syncing', 'waiting-for-approval', 'paused', 'halted']);
/** What a cycle was: of the watchers' dirty paths, the periodic full one, or a client's request. */
export const CycleKind = z.enum(['incremental', 'full', 'request']);
export type CycleKind = z.infer<typeof CycleKind>;
export const LiveStatus = z.object({
  state: LiveState,
  autoSync: AutoSyncMode,
  /** Either side has changes not yet carried: as far as the watchers know, or that a cycle could not carry (in `problems`). */
  changesWaiting: z.boolean(),
  /**
   * What stands now, sorted by path, each list its first MAX_LISTED (`unlisted` counts the rest):
   * the paths in conflict, what the sync cannot carry (unreadable, a socket, a change it could not
   * write: "not carried: ENOSPC …", tried again at the next full cycle), the secrets it keeps out.
   */
  conflicts: z.array(z.string()),
  problems: SyncReport.shape.problems,
  keptOut: SyncReport.shape.keptOut,
  unlisted: z.object({ conflicts: Count, problems: Count, keptOut: Count }),
  halt: z.object({ side: SyncSide, reason: z.string() }).optional(),
  /** The open safeguard question of a background cycle, answered with `answer`. */
  question: z.object({ questionId: z.number().int().nonnegative(), question: SafeguardQuestionSchema }).optional(),
  /** A background cycle's question a client denied: background cycles are held (state `paused`) until a client's own sync or resume, which asks again. */
  denied: SyncReport.shape.denied,
  /** A watcher that fell back to polling or failed, with why (e.g. the inotify watch limit). */
  degraded: z.array(z.object({ side: SyncSide, reason: z.string() })),
  lastCycle: z.object({ id: z.string(), finishedAt: z.string(), applied: z.number().int(), kind: CycleKind }).optional(),
  /** The last background cycle failed as a whole (a full disk under the undo log): its changes wait, and the next event or rescan tries again. */
  failed: z.object({ at: z.string(), reason: z.string() }).optional(),
});
export type LiveStatus = z.infer<typeof LiveStatus>;

/** What the resident agent tells every subscribed client as it happens (`event` messages). */
export const AgentEvent = z.discriminatedUnion('type', [
  /** The status changed: clients render this value and nothing else. */
  z.object({ type: z.literal('status'), status: LiveStatus }),
  z.object({ type: z.literal('cycle-started'), kind: CycleKind }),
  z.object({ type: z.literal('cycle-finished'), kind: CycleKind, report: SyncReport }),
  z.object({ type: z.literal('question'), questionId: z.number().int().nonnegative(), question: SafeguardQuestionSchema }),
  z.object({ type: z.literal('halted'), side: SyncSide, reason: z.string() }),
  z.object({ type: z.literal('watcher-degraded'), side: SyncSide, reason: z.string() }),
  /** History crossed in a background exchange (after a periodic full cycle), as a request's report says it in `git`. */
  z.object({ type: z.literal('git-exchanged'), lines: z.array(z.string()), problems: z.array(z.string()) }),
]);
export type AgentEvent = z.infer<typeof AgentEvent>;

const Id = z.number().int().nonnegative();
const Empty = z.object({}).strict();

/** A turn or a command begins: the syncs from now until its end are one undoable step, labelled (shortened by the agent). */
export const StepStartParams = z.object({ kind: z.enum(['turn', 'command']), label: z.string().max(100_000) });
/** The open turn or command ends (only the one with this `group` id, or of this `kind`, when given); the agent flushes first. */
export const StepEndParams = z.object({ kind: StepKind.optional(), group: z.string().optional() });
/** Flush, then end the current step under this label (a restore point). */
export const CheckpointParams = z.object({ label: z.string().min(1).max(10_000) });
/** `held`: as StepEndResult's, for what waited before the step began. */
export const StepStartResult = z.object({ group: StepGroupSchema, held: z.string().optional() });
/**
 * `paths`: the host paths the ended step changed (capped at 10,000: `pathsTruncated`). `held`:
 * why changes waiting when it ended had not crossed (a safeguard waits for the user's answer,
 * or auto-sync is paused).
 */
export const StepEndResult = z.object({ closed: StepGroupSchema.optional(), paths: z.array(z.string()).default([]), pathsTruncated: z.boolean().default(false), held: z.string().optional() });
/** `steps`: syncs recorded in the closed step (0: nothing changed since the last boundary). `continued`: the turn or command going on after it. */
export const CheckpointResult = z.object({ closed: StepGroupSchema, steps: z.number().int().nonnegative(), continued: StepGroupSchema.optional() });

/** Host → agent. One schema per method; `params` and the result schema below go together. */
export const Request = z.discriminatedUnion('method', [
  z.object({ id: Id, method: z.literal('hello'), params: z.object({ protocolVersion: z.number().int() }) }),
  z.object({ id: Id, method: z.literal('status'), params: Empty }),
  z.object({ id: Id, method: z.literal('retryInitialSync'), params: SyncOptions }),
  z.object({ id: Id, method: z.literal('sync'), params: SyncRequestParams }),
  z.object({ id: Id, method: z.literal('history'), params: Empty }),
  z.object({ id: Id, method: z.literal('compare'), params: z.object({ excludes: Excludes, allowSecrets: AllowSecrets }) }),
  z.object({ id: Id, method: z.literal('resolve'), params: z.object({ path: z.string().min(1), keep: z.enum(['host', 'container', 'both']), excludes: Excludes, allowSecrets: AllowSecrets, undo: UndoSettings.default(UndoSettings.parse({})) }) }),
  z.object({ id: Id, method: z.literal('undoHistory'), params: Empty }),
  z.object({ id: Id, method: z.literal('undo'), params: z.object({ steps: z.number().int().min(1).max(10_000), force: z.boolean().default(false) }) }),
  z.object({ id: Id, method: z.literal('discardUndoLog'), params: Empty }),
  /** The answer to a `question` the agent asked during the request it names. */
  z.object({ id: Id, method: z.literal('answer'), params: z.object({ questionId: z.number().int().nonnegative(), answer: SafeguardAnswer }) }),
  z.object({ id: Id, method: z.literal('backup'), params: z.object({ excludes: Excludes, allowSecrets: AllowSecrets }) }),
  z.object({ id: Id, method: z.literal('listBackups'), params: Empty }),
  z.object({ id: Id, method: z.literal('restoreBackup'), params: z.object({ backupId: z.string().min(1), side: SyncSide, excludes: Excludes, allowSecrets: AllowSecrets, undo: UndoSettings.default(UndoSettings.parse({})) }) }),
  /** Attach to the resident agent's events: the result is the status now; `event` messages follow on this channel until it ends. */
  z.object({ id: Id, method: z.literal('subscribe'), params: Empty }),
  /** Stop background syncing (events still collect, so `resume` carries what happened meanwhile). */
  z.object({ id: Id, method: z.literal('pause'), params: Empty }),
  /** Sync again, whatever stopped it: a pause, or a safety halt (then the agreed state is forgotten and both sides merge, deleting nothing). */
  z.object({ id: Id, method: z.literal('resume'), params: Empty }),
  z.object({ id: Id, method: z.literal('configure'), params: LiveSettingsChange }),
  /**
   * Fault injection for the crash-recovery tests (src/agent/failpoint.ts): the writing requests of
   * this channel run with it. The relay sends it when its environment has CLUD_FAILPOINT.
   */
  z.object({ id: Id, method: z.literal('failpoint'), params: z.object({ spec: z.string() }) }),
  /** Paths that may have changed (the editor saved them): synced soon, in every mode but `off`. */
  z.object({ id: Id, method: z.literal('hint'), params: z.object({ paths: z.array(z.string()).max(10_000) }) }),
  /** Step boundaries from the host (`clud run`, `clud checkpoint`), as the narrow channel's (see StepRequest). */
  z.object({ id: Id, method: z.literal('stepStart'), params: StepStartParams }),
  z.object({ id: Id, method: z.literal('stepEnd'), params: StepEndParams }),
  z.object({ id: Id, method: z.literal('checkpoint'), params: CheckpointParams }),
]);
export type Request = z.infer<typeof Request>;
export type Method = Request['method'];
export type ParamsOf<M extends Method> = Extract<z.input<typeof Request>, { method: M }>['params'];

export const ResultSchemas = {
  hello: z.object({ protocolVersion: z.number().int(), agentVersion: z.string() }),
  status: AgentStatus,
  retryInitialSync: InitState,
  sync: SyncReport,
  /** Newest first, each listing only its first carried paths (see historyAnswer). */
  history: z.object({ reports: z.array(SyncReport) }),
  /** Paths that differ between the trees, with what both last agreed on (absent: never agreed). */
  /**
   * `heldBySecret`: a container version no sync carries because the file holds a secret on that
   * side (compareWithAgreedState). An agent of an older image, which knew only the host's, sends
   * `true` for it: `clud down` and `up --rebuild` ask such an agent before replacing it.
   */
  compare: z.object({
    differences: z.array(z.object({ path: z.string(), host: EntrySchema.optional(), container: EntrySchema.optional(), ancestor: EntrySchema.optional(), heldBySecret: z.preprocess((side) => (side === true ? 'host' : side), SyncSide).optional() })),
    hasAgreedState: z.boolean(),
  }),
  resolve: SyncReport,
  backup: BackupManifest,
  listBackups: z.object({ backups: z.array(BackupManifest) }),
  restoreBackup: RestoreResult,
  /** `running`: the id of the turn or command still being recorded (its steps so far are listed, and undo refuses it until it ends). */
  undoHistory: z.object({ steps: z.array(UndoStepSchema), barriers: z.array(BarrierSchema), disabledReason: z.string().optional(), notices: z.array(z.string()).default([]), running: z.string().optional() }),
  undo: UndoResultSchema,
  discardUndoLog: z.object({}),
  answer: z.object({}),
  subscribe: LiveStatus,
  pause: LiveStatus,
  resume: LiveStatus,
  configure: LiveStatus,
  hint: z.object({}),
  failpoint: z.object({}),
  stepStart: StepStartResult,
  stepEnd: StepEndResult,
  checkpoint: CheckpointResult,
} satisfies Record<Method, z.ZodType>;
export type ResultOf<M extends Method> = z.infer<(typeof ResultSchemas)[M]>;

/**
 * `awaiting-approval`: a background sync holds the workspace's one queue until someone answers its
 * safeguard question, and this request cannot answer it (history, undo, compare, backup).
 * `agent-unavailable`: the resident agent is not running (yet, or any more); `agent-restarted`:
 * it died during the request and was restarted. `result-too-large`: the request was carried out,
 * but its result is longer than a client reads (MAX_LINE_BYTES).
 */
export const ErrorCode = z.enum(['bad-request', 'line-too-long', 'result-too-large', 'unknown-method', 'sync-failed', 'sync-halted', 'awaiting-approval', 'agent-unavailable', 'agent-restarted', 'internal']);
export type ErrorCode = z.infer<typeof ErrorCode>;


/** Agent → host. `id` is null only when a request was too broken to read its id. */
export const AgentMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('result'), id: Id, result: z.unknown() }),
  z.object({ kind: z.literal('error'), id: Id.nullable(), code: ErrorCode, message: z.string() }),
  z.object({ kind: z.literal('progress'), id: Id, data: ProgressData }),
  /** A safeguard paused the request `id`; the host replies with an `answer` request. */
  z.object({ kind: z.literal('question'), id: Id, questionId: z.number().int().nonnegative(), question: SafeguardQuestionSchema }),
  /** Sent to a channel that subscribed (see `subscribe`). */
  z.object({ kind: z.literal('event'), event: AgentEvent }),
  z.object({ kind: z.literal('log'), level: z.enum(['debug', 'info', 'warn', 'error']), message: z.string() }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; id: number | null; code: ErrorCode; message: string };

/** Parses one request line on the agent side; never throws. */
export function parseRequest(line: string): Parsed<Request> {
  return parseRequestLine(line, Request, ResultSchemas);
}

/**
 * One request line of a channel whose requests are `schema`, with one result schema per method
 * in `methods` (the main channel, the narrow one): an unknown method is told apart from bad params.
 */
function parseRequestLine<T>(line: string, schema: z.ZodType<T>, methods: object): { ok: true; value: T } | { ok: false; id: number | null; code: 'bad-request' | 'unknown-method'; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, id: null, code: 'bad-request', message: 'request is not valid JSON' };
  }
  const id = readId(json);
  const method = typeof json === 'object' && json !== null ? (json as { method?: unknown }).method : undefined;
  if (typeof method === 'string' && !Object.hasOwn(methods, method)) {
    return { ok: false, id, code: 'unknown-method', message: `unknown method "${method}"` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, id, code: 'bad-request', message: describeZodError(parsed.error) };
  return { ok: true, value: parsed.data };
}

/** Parses one agent line on the host side; never throws. */
export function parseAgentMessage(line: string): Parsed<AgentMessage> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, id: null, code: 'bad-request', message: `agent sent a line that is not JSON: ${line.slice(0, 120)}` };
  }
  const parsed = AgentMessage.safeParse(json);
  if (!parsed.success) return { ok: false, id: readId(json), code: 'bad-request', message: describeZodError(parsed.error) };
  return { ok: true, value: parsed.data };
}

/** Parses one line of the initial copy's process (see InitialCopyMessage); undefined for anything else it printed. */
export function parseInitialCopyMessage(line: string): InitialCopyMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = InitialCopyMessage.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

export function encodeMessage(message: Request | AgentMessage): string {
  return JSON.stringify(message) + '\n';
}

export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(message)'}: ${issue.message}`)
    .join('; ');
}

function readId(json: unknown): number | null {
  const id = typeof json === 'object' && json !== null ? (json as { id?: unknown }).id : undefined;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : null;
}

// ---------------------------------------------------------------------------------------------
// The narrow channel (STEP_SOCKET_PATH in containerLayout.ts): what the workspace user's processes
// (Claude Code's hooks, the Clud MCP server) may ask the sync agent. Its own small union, so that
// nothing of the main protocol (resolve, push, restore a backup, the host's state) is reachable
// from the coding agent's side; answers carry no host paths beyond the workspace's own names.

/** Why a narrow-channel request failed, for code to decide on. `refused`: the agent would not (a barrier, a running step, a halt). */
export const StepErrorCode = z.enum(['bad-request', 'unknown-method', 'line-too-long', 'agent-unavailable', 'refused', 'internal']);
export type StepErrorCode = z.infer<typeof StepErrorCode>;

/** The narrow channel's lines are small: a prompt is the longest thing sent. */
export const MAX_STEP_LINE_BYTES = 256 * 1024;

export const StepRequest = z.discriminatedUnion('method', [
  z.object({ id: Id, method: z.literal('stepStart'), params: StepStartParams }),
  z.object({ id: Id, method: z.literal('stepEnd'), params: StepEndParams }),
  z.object({ id: Id, method: z.literal('checkpoint'), params: CheckpointParams }),
  z.object({ id: Id, method: z.literal('status'), params: Empty }),
  /** Carry every waiting change across now and wait for it, so the agent knows the user sees its work. */
  z.object({ id: Id, method: z.literal('syncNow'), params: Empty }),
  z.object({ id: Id, method: z.literal('history'), params: Empty }),
  /** Undo the newest step if it is a finished one of the coding agent's; never across a barrier (the user's edits win). */
  z.object({ id: Id, method: z.literal('undoLastStep'), params: Empty }),
]);
export type StepRequest = z.infer<typeof StepRequest>;
export type StepMethod = StepRequest['method'];

export const StepChannelStatus = LiveStatus.pick({ state: true, autoSync: true, changesWaiting: true, conflicts: true, halt: true }).extend({
  /** The turn or command being recorded, if any. */
  openStep: StepGroupSchema.optional(),
});
export type StepChannelStatus = z.infer<typeof StepChannelStatus>;

/** What a flush did, in numbers and workspace paths only. */
export const SyncNowResult = z.object({
  applied: z.number().int().nonnegative(),
  conflicts: z.array(z.string()),
  skipped: z.number().int().nonnegative(),
  halted: z.string().optional(),
  /** Nothing was carried: the user paused auto-sync (or a question they denied holds it); why. */
  held: z.string().optional(),
});
export type SyncNowResult = z.infer<typeof SyncNowResult>;

export const StepHistoryEntry = StepGroupSchema.extend({
  closedAt: z.string(),
  files: z.number().int().nonnegative(),
  /** False: a barrier (a later change by the user) or a size limit stands in the way. */
  undoable: z.boolean(),
  barriers: z.number().int().nonnegative(),
});
export type StepHistoryEntry = z.infer<typeof StepHistoryEntry>;

export const StepResultSchemas = {
  stepStart: StepStartResult,
  stepEnd: StepEndResult,
  checkpoint: CheckpointResult,
  status: StepChannelStatus,
  syncNow: SyncNowResult,
  history: z.object({ steps: z.array(StepHistoryEntry) }),
  undoLastStep: z.object({ undone: StepHistoryEntry.pick({ id: true, kind: true, label: true, files: true }) }),
} satisfies Record<StepMethod, z.ZodType>;
export type StepResultOf<M extends StepMethod> = z.infer<(typeof StepResultSchemas)[M]>;
export type StepParamsOf<M extends StepMethod> = Extract<z.input<typeof StepRequest>, { method: M }>['params'];

export const StepReply = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('result'), id: Id, result: z.unknown() }),
  z.object({ kind: z.literal('error'), id: Id.nullable(), code: StepErrorCode, message: z.string() }),
]);
export type StepReply = z.infer<typeof StepReply>;

/** Parses one narrow-channel request; never throws. */
export function parseStepRequest(line: string): { ok: true; value: StepRequest } | { ok: false; id: number | null; code: StepErrorCode; message: string } {
  return parseRequestLine(line, StepRequest, StepResultSchemas);
}
