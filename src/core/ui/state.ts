// The one status value of a workspace in the editor. The status bar and the tree view both render
// it; commands and the sync loop change it only through `reduce`, so the two can never disagree.
import type { ConflictInfo, SyncReport, UndoStepInfo } from '../protocol';

export type Health =
  | { kind: 'stopped' }
  | { kind: 'starting'; message: string }
  | { kind: 'syncing'; message: string }
  | { kind: 'synced' }
  | { kind: 'conflict' }
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
  problems: Array<{ path: string; side: string; reason: string }>;
  /** Undoable syncs, newest first. */
  undoSteps: UndoStepInfo[];
  undoDisabledReason?: string;
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
  | { type: 'failed'; message: string; hint?: string; retry: RetryAction };

export const HISTORY_SHOWN = 20;

export function initialState(): WorkspaceViewState {
  return { health: { kind: 'stopped' }, history: [], conflicts: [], problems: [], undoSteps: [] };
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
      return { ...state, health: { kind: 'stopped' } };
    case 'syncStarted':
      return { ...state, health: { kind: 'syncing', message: event.message } };
    case 'syncFinished': {
      const history = [event.report, ...state.history].slice(0, HISTORY_SHOWN);
      return { ...state, history, conflicts: event.report.conflicts, problems: [...event.report.problems, ...event.report.skipped], health: healthAfter(event.report) };
    }
    case 'historyLoaded': {
      const latest = event.reports[0];
      const base = { ...state, history: event.reports.slice(0, HISTORY_SHOWN) };
      if (!latest) return base;
      const health = state.health.kind === 'synced' || state.health.kind === 'conflict' ? healthAfter(latest) : state.health;
      return { ...base, conflicts: latest.conflicts, problems: [...latest.problems, ...latest.skipped], health };
    }
    case 'undoLoaded':
      return { ...state, undoSteps: event.steps, undoDisabledReason: event.disabledReason };
    case 'failed':
      return { ...state, health: { kind: 'error', message: event.message, hint: event.hint, retry: event.retry } };
  }
}

/** A running workspace's health follows its last sync: a halt is an error, open conflicts are "conflict". */
function healthAfter(report: SyncReport | undefined): Health {
  if (report?.halted) return { kind: 'error', message: `sync halted: ${report.halted.reason}`, hint: 'Nothing was changed. Resume to merge both sides again (nothing is deleted).', retry: 'resume' };
  if (report && report.conflicts.length > 0) return { kind: 'conflict' };
  return { kind: 'synced' };
}

export function isRunning(state: WorkspaceViewState): boolean {
  return state.health.kind !== 'stopped' && !(state.health.kind === 'error' && state.health.retry === 'start') && state.health.kind !== 'starting';
}
