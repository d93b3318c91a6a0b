// Applying changes as one undo step: the step is planned first (its safeguard questions asked and
// every preimage captured before anything changes), then the apply changes the host, each path
// only once its preimage is durable, and the step records what the apply carried out. A denial
// changes nothing; a failure rolls the host back.
import type { SafeguardAsk, SafeguardQuestion, SafeguardThresholds, StepGroup } from '../undo';
import { SafeguardDenied } from '../undo';
import type { UndoLog } from '../undo';
import type { ModifyAction } from '../undo';
import type { PlannedChange } from '../undo/stepPlan';
import { applyChanges } from './apply';
import type { ApplyOptions, ApplyOutcome } from './apply';
import type { Change } from './reconcile';
import type { SyncReport } from '../protocol';

export interface UndoRecording {
  log: UndoLog;
  ask?: SafeguardAsk;
  thresholds?: Partial<SafeguardThresholds>;
  /** The step group the cycle's undo record joins (see StepBoundaries), asked when the record begins; none: a group of its own. */
  group?: () => StepGroup | undefined;
}

/**
 * `stepId`: the step that recorded the changes; `group`: the group it joined (what `clud history`
 * lists and `clud undo` takes back whole); `notUndoable`: why it cannot be undone (over its size limit).
 */
export type RecordedOutcome =
  | { outcome: ApplyOutcome; stepId?: string; group?: StepGroup; notUndoable?: string; denied?: undefined }
  | { outcome?: undefined; stepId?: undefined; group?: undefined; notUndoable?: undefined; denied: SafeguardQuestion };

/** A report's fields for the step that recorded its changes to the host: named as `clud history` lists it. */
export function undoStepFields(recorded: RecordedOutcome): Pick<SyncReport, 'undoStep' | 'undoStepShared' | 'notUndoable'> {
  if (!recorded.stepId) return {};
  return { undoStep: recorded.group?.id ?? recorded.stepId, ...(recorded.group && { undoStepShared: true }), ...(recorded.notUndoable !== undefined && { notUndoable: recorded.notUndoable }) };
}

function actionOf(change: Change): ModifyAction {
  if (change.next === undefined) return 'delete';
  if (change.expected?.kind === 'directory' && change.next.kind === 'directory') return 'chmod';
  return 'write';
}

/** What makes a file or link the same under another name: its content, or its target. */
function identity(entry: Change['next']): string | undefined {
  if (entry?.kind === 'file') return `file:${entry.hash}`;
  if (entry?.kind === 'symlink') return `link:${entry.target}`;
  return undefined;
}

/**
 * The step's host changes as its plan sees them: what each does, what the scan found at its
 * path, and whether a deletion is a move (the same content created elsewhere in the step: a folder
 * renamed in /workspace is no mass deletion).
 */
function plannedChanges(hostChanges: readonly Change[]): PlannedChange[] {
  const arriving = new Set(hostChanges.map((change) => identity(change.next)).filter((key) => key !== undefined));
  return hostChanges.map((change) => {
    const { expected } = change;
    const before = expected && { kind: expected.kind === 'untracked' ? ('other' as const) : expected.kind, size: expected.kind === 'file' ? expected.size : 0 };
    const departing = change.next === undefined ? identity(expected) : undefined;
    return { path: change.path, action: actionOf(change), ...(before && { before }), ...(departing && arriving.has(departing) && { moved: true }) };
  });
}

export async function applyRecorded(changes: readonly Change[], options: ApplyOptions, recording: UndoRecording | undefined, meta: { syncId: string; policy: string }): Promise<RecordedOutcome> {
  const hostChanges = changes.filter((change) => change.side === 'host');
  if (!recording || recording.log.disabledReason || hostChanges.length === 0) return { outcome: await applyChanges(changes, options) };
  const group = recording.group?.();
  const writer = await recording.log.beginStep({ ...meta, root: options.roots.host, ask: recording.ask, thresholds: recording.thresholds, ...(group && { group }) });
  let outcome: ApplyOutcome;
  try {
    // The questions first (a Deny then has nothing to roll back), then every preimage, in the
    // order of the changes; only then does the apply change anything.
    await writer.prepare(plannedChanges(hostChanges));
    outcome = await applyChanges(changes, {
      ...options,
      beforeModify: async (change, found) => {
        // The step first, while `found` is still what is at the path: a path that changed since
        // its capture is captured again. The version it saved (at the path's first change in
        // the step only) is checked by the apply: it replaces the path only if it is the one the
        // scan saw.
        const saved = change.side === 'host' ? await writer.beforeModify(change.path, found) : undefined;
        await options.beforeModify?.(change, found);
        return saved;
      },
      afterModify: (change) => {
        options.afterModify?.(change);
        if (change.side === 'host') writer.markChanged(change.path, { left: change.next });
      },
    });
    // What the step records is what the apply carried out (markChanged); a change it skipped
    // left its path as it was, and its capture is not counted.
    const summary = await writer.close();
    return { outcome, stepId: summary?.id, ...(summary && group && { group }), ...(summary && !summary.protected && { notUndoable: summary.unprotectedReason }) };
  } catch (error) {
    // A denial comes from prepare, before anything changed; this ends the step either way.
    await writer.rollback();
    if (error instanceof SafeguardDenied) return { denied: error.question };
    throw error;
  }
}
