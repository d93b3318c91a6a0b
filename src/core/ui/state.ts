// The one status value of a workspace in the editor. The status bar and the tree view both render
// it; commands and the sync loop change it only through `reduce`, so the two can never disagree.
// While the editor is subscribed to the resident agent, its health follows the agent's LiveStatus
// (the `live` event) and nothing else: syncing, synced, changes waiting, waiting for approval,
// paused, halted. Without a subscription (an older agent), it follows the last sync's report.
import type { ConflictInfo, LiveStatus, SyncReport, UndoStepInfo } from '../protocol';
import { describeConflicts } from '../sync/summary';

export type Health =
  | { kind: 'stopped' }
  | { kind: 'starting'; message: string }
  | { kind: 'syncing'; message: string }
  | { kind: 'synced' }
  | { kind: 'conflict' }
  /** Either side has changes not carried yet (auto-sync is off or on-save, or a cycle is due). */
  | { kind: 'changes-waiting' }
  /** A background cycle holds a change behind a safeguard question until someone answers it. */
  | { kind: 'waiting-for-approval'; detail: string }
  /** The user paused auto-sync, or denied a background cycle's question (`denied`: its detail); changes collect until resumed. */
  | { kind: 'paused'; denied?: string }
  /** A safety halt: nothing syncs until resumed, which merges both sides deleting nothing. */
  | { kind: 'halted'; reason: string }
  | { kind: 'error'; message: string; hint?: string; retry: RetryAction };

/** What "Retry" does for an error: the action that failed. */
export type RetryAction = 'start' | 'sync' | 'resume';

export interface WorkspaceViewState {
  health: Health;
  hostPath?: string;
  containerName?: string;
  image?: string;
  /** Newest first. */
  history: SyncReport[];
  conflicts: ConflictInfo[];
  /** What the sync cannot carry (and the last cycle's skipped changes). */
  problems: Array<{ path: string; side: string; reason: string }>;
  /** Files that hold credentials, left on their side. */
  keptOut: SyncReport['keptOut'];
  /** Undoable syncs, newest first. */
  undoSteps: UndoStepInfo[];
  undoDisabledReason?: string;
  /** The resident agent's status, while subscribed to it. */
  live?: LiveStatus;
}

export type StateEvent =
  | { type: 'attached'; hostPath: string; containerName: string; image?: string; running: boolean }
  | { type: 'starting'; message: string }
  | { type: 'started'; image?: string }
  | { type: 'stopped' }
  | { type: 'syncStarted'; message: string }
  | { type: 'syncFinished'; report: SyncReport }
  | { type: 'historyLoaded'; reports: SyncReport[] }
  | { type: 'undoLoaded'; steps: UndoStepInfo[]; disabledReason?: string }
  | { type: 'failed'; message: string; hint?: string; retry: RetryAction }
  /** A status from the resident agent (the subscription's first, then every `status` event). */
  | { type: 'live'; status: LiveStatus }
  /**
   * The status in the reply to a request sent on a channel other than the subscription's (resume,
   * or a pause while the subscription is down). Subscribed, it is dropped: the agent publishes
   * every change of its status, so the events are as new or newer, and a reply that arrives after
   * them would put back a status the agent has already left.
   */
  | { type: 'statusReplied'; status: LiveStatus }
  /** The subscription ended (reopening, or the agent has none): health falls back to the reports. */
  | { type: 'liveLost' };

export const HISTORY_SHOWN = 20;

export function initialState(): WorkspaceViewState {
  return { health: { kind: 'stopped' }, history: [], conflicts: [], problems: [], keptOut: [], undoSteps: [] };
}

export function reduce(state: WorkspaceViewState, event: StateEvent): WorkspaceViewState {
  switch (event.type) {
    case 'attached':
      return { ...state, hostPath: event.hostPath, containerName: event.containerName, image: event.image, health: event.running ? healthAfter(state.history[0]) : { kind: 'stopped' } };
    case 'starting':
      return { ...state, health: { kind: 'starting', message: event.message } };
    case 'started':
      return { ...state, image: event.image ?? state.image, health: healthAfter(state.history[0]) };
    case 'stopped':
      return { ...state, health: { kind: 'stopped' }, live: undefined };
    case 'syncStarted':
      return { ...state, health: { kind: 'syncing', message: event.message } };
    case 'syncFinished': {
      // The editor's own sync arrives twice, as its cycle's event and as its answer (which adds the
      // git exchange), in either order: one entry, the one that says more.
      const earlier = state.history.find((entry) => entry.id === event.report.id);
      const report = earlier?.git && !event.report.git ? earlier : event.report;
      const history = [report, ...state.history.filter((entry) => entry.id !== report.id)].slice(0, HISTORY_SHOWN);
      const next = { ...state, history, ...findingsOf(report) };
      return { ...next, ...(state.live ? fromLive(next, state.live) : { health: healthAfter(report) }) };
    }
    case 'live':
      // A late event of a channel being closed must not bring a stopped or starting workspace back.
      if (state.health.kind === 'stopped' || state.health.kind === 'starting') return state;
      return { ...state, ...fromLive(state, event.status) };
    case 'statusReplied':
      return state.live ? state : reduce(state, { type: 'live', status: event.status });
    case 'liveLost':
      return { ...state, live: undefined };
    case 'historyLoaded': {
      const latest = event.reports[0];
      const base = { ...state, history: event.reports.slice(0, HISTORY_SHOWN) };
      if (!latest) return base;
      const loaded = { ...base, ...findingsOf(latest) };
      if (state.live) return { ...loaded, ...fromLive(loaded, state.live) };
      const health = state.health.kind === 'synced' || state.health.kind === 'conflict' ? healthAfter(latest) : state.health;
      return { ...loaded, health };
    }
    case 'undoLoaded':
      return { ...state, undoSteps: event.steps, undoDisabledReason: event.disabledReason };
    case 'failed':
      return { ...state, health: { kind: 'error', message: event.message, hint: event.hint, retry: event.retry } };
  }
}

/**
 * Whether a background cycle's report earns a place in the history the view shows: it changed
 * something, halted, was denied, has notices or git lines, or found what was not known. Known are
 * the conflicts, problems and secrets kept out the agent's status names (a periodic rescan's cycle
 * names every one that stands, each time) and the changes the last report shown skipped; without
 * the status, everything the last report shown found.
 */
export function isNewsworthy(report: SyncReport, state: WorkspaceViewState): boolean {
  if (report.appliedCount > 0 || report.halted || report.denied || report.notices.length > 0 || report.git?.lines.length) return true;
  // What the state shows is what is known: the status's findings with the last report's skipped
  // changes, or without a status the last report's findings (see fromLive and findingsOf).
  const known = new Set(findingKeys(state));
  return findingKeys(findingsOf(report)).some((key) => !known.has(key));
}

type Findings = Pick<WorkspaceViewState, 'conflicts' | 'problems' | 'keptOut'>;

const findingKeys = ({ conflicts, problems, keptOut }: Findings): string[] => [
  ...conflicts.map(({ path }) => `conflict ${path}`),
  ...problems.map(({ side, path }) => `problem ${side} ${path}`),
  ...keptOut.map(({ side, path }) => `kept-out ${side} ${path}`),
];

/**
 * How many of the conflicts, problems or secrets kept out the state shows are counted but not
 * listed: past the first MAX_LISTED of the agent's status (or, without one, of the last report).
 */
export function unlistedCount(state: WorkspaceViewState, list: keyof Findings): number {
  if (state.live) return state.live.unlisted[list];
  const unlisted = state.history[0]?.unlisted;
  return list === 'problems' ? (unlisted?.problems ?? 0) + (unlisted?.skipped ?? 0) : (unlisted?.[list] ?? 0);
}

/** What a report found, as the state shows it without the agent's status. */
function findingsOf(report: SyncReport): Findings {
  return { conflicts: report.conflicts, problems: [...report.problems, ...report.skipped], keptOut: report.keptOut };
}

/**
 * The state as the resident agent's status says: its health, and what stands (the conflicts it
 * names, with what the reports told about each; the problems and secrets kept out), with the last
 * cycle's skipped changes.
 */
function fromLive(state: WorkspaceViewState, live: LiveStatus): Pick<WorkspaceViewState, 'live' | 'health' | 'conflicts' | 'problems' | 'keptOut'> {
  const conflicts = describeConflicts(live.conflicts, [...state.conflicts, ...state.history.flatMap((report) => report.conflicts)]);
  // A change the last cycle could not carry is among the status's problems already (as "not carried").
  const named = new Set(live.problems.map(({ side, path }) => `${side} ${path}`));
  const skipped = (state.history[0]?.skipped ?? []).filter(({ side, path }) => !named.has(`${side} ${path}`));
  return { live, conflicts, problems: [...live.problems, ...skipped], keptOut: live.keptOut, health: liveHealth(live) };
}

/** The health a LiveStatus shows. A pause or halt outranks everything; "synced" only when nothing waits. */
export function liveHealth(live: LiveStatus): Health {
  switch (live.state) {
    case 'starting':
      return { kind: 'syncing', message: 'the sync agent is starting' };
    case 'syncing':
      return { kind: 'syncing', message: 'syncing changes' };
    case 'waiting-for-approval':
      return { kind: 'waiting-for-approval', detail: live.question?.question.detail ?? 'a sync waits for your approval' };
    case 'paused':
      // A denied question holds the saves of on-save mode too, and resuming asks it again: shown
      // in every mode. Otherwise an agent that reports "paused" for the on-save and off modes
      // too: only a user's pause is one.
      if (live.denied) return { kind: 'paused', denied: live.denied.detail };
      if (live.autoSync !== 'continuous') return idleHealth(live);
      return { kind: 'paused' };
    case 'halted':
      return { kind: 'halted', reason: live.halt ? `${live.halt.reason} (${live.halt.side})` : 'a safety halt stopped the sync' };
    case 'idle':
      return idleHealth(live);
  }
}

function idleHealth(live: LiveStatus): Health {
  if (live.conflicts.length > 0) return { kind: 'conflict' };
  return live.changesWaiting ? { kind: 'changes-waiting' } : { kind: 'synced' };
}

/** A running workspace's health follows its last sync: a halt is "halted", open conflicts are "conflict". */
function healthAfter(report: SyncReport | undefined): Health {
  if (report?.halted) return { kind: 'halted', reason: report.halted.reason };
  if (report && report.conflicts.length > 0) return { kind: 'conflict' };
  return { kind: 'synced' };
}

export function isRunning(state: WorkspaceViewState): boolean {
  return state.health.kind !== 'stopped' && !(state.health.kind === 'error' && state.health.retry === 'start') && state.health.kind !== 'starting';
}
