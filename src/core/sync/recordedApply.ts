// Applying changes as one undo step: the step is planned first (its safeguard questions asked and
// every preimage captured before anything changes), then every change to the host is preceded by
// its preimage in the undo log, and a denial or a failure rolls the host back.
import type { SafeguardAsk, SafeguardQuestion, SafeguardThresholds, StepGroup } from '../undo';
import { SafeguardDenied } from '../undo';
import type { UndoLog } from '../undo';
import type { ModifyAction } from '../undo';
import type { PlannedChange } from '../undo/stepPlan';
import { applyChanges } from './apply';
import type { ApplyOptions, ApplyOutcome } from './apply';
import type { Change } from './reconcile';

export interface UndoRecording {
  log: UndoLog;
  ask?: SafeguardAsk;
  thresholds?: Partial<SafeguardThresholds>;
  /** The step group the cycle's undo record joins (see StepBoundaries), asked when the record begins; none: a group of its own. */
  group?: () => StepGroup | undefined;
}

export type RecordedOutcome = { outcome: ApplyOutcome; stepId?: string; denied?: undefined } | { outcome?: undefined; stepId?: undefined; denied: SafeguardQuestion };

export function actionOf(change: Change): ModifyAction {
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
    const announced = new Set<string>();
    outcome = await applyChanges(changes, {
      ...options,
      beforeModify: async (change, found) => {
        // The step first, while `found` is still what is at the path: a path that changed since
        // its capture is captured again.
        if (change.side === 'host') await writer.beforeModify(change.path, actionOf(change), { stats: found });
        await options.beforeModify?.(change, found);
        // The version the step saved: the apply replaces the path only if it is the one the scan
        // saw. Only for the path's first change in the step (a resolve may delete a file, then
        // create a folder at its path: the saved version is the file's, from before both).
        if (change.side !== 'host' || announced.has(change.path)) return undefined;
        announced.add(change.path);
        return writer.savedVersion(change.path);
      },
      afterModify: (change) => {
        options.afterModify?.(change);
        if (change.side === 'host') writer.recordWritten(change.path, change.next);
      },
      isFatal: (error) => error instanceof SafeguardDenied || options.isFatal?.(error) === true,
    });
  } catch (error) {
    // A denial has already rolled the host back; this ends the step either way.
    await writer.rollback();
    if (error instanceof SafeguardDenied) return { denied: error.question };
    throw error;
  }
  for (const { change } of outcome.skipped) if (change.side === 'host') await writer.forget(change.path);
  try {
    const summary = await writer.close();
    return { outcome, stepId: summary?.id };
  } catch (error) {
    await writer.rollback();
    throw error;
  }
}
