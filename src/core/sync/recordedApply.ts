// Applying changes as one undo step: every change to the host is preceded by its preimage in the
// undo log, safeguards can pause it, and a denial rolls the host back.
import type { SafeguardAsk, SafeguardQuestion, SafeguardThresholds, StepGroup } from '../undo';
import { SafeguardDenied } from '../undo';
import type { UndoLog } from '../undo';
import type { ModifyAction } from '../undo';
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

export async function applyRecorded(changes: readonly Change[], options: ApplyOptions, recording: UndoRecording | undefined, meta: { syncId: string; policy: string }): Promise<RecordedOutcome> {
  if (!recording || recording.log.disabledReason || !changes.some((change) => change.side === 'host')) {
    return { outcome: await applyChanges(changes, options) };
  }
  const group = recording.group?.();
  const writer = await recording.log.beginStep({ ...meta, root: options.roots.host, ask: recording.ask, thresholds: recording.thresholds, ...(group && { group }) });
  let outcome: ApplyOutcome;
  try {
    // Preimages captured ahead (files, links, folders and absent paths), in the order the changes
    // are applied, while they are applied: a change's beforeModify finds its own ready (or waits
    // for it), and the capture's reading and saving fill the time the apply waits for the disk.
    const announced = new Set<string>();
    const prefetching = writer.prefetch(changes.filter((change) => change.side === 'host').map((change) => change.path));
    outcome = await applyChanges(changes, {
      ...options,
      beforeModify: async (change, found) => {
        // The step first, while `found` is still what is at the path.
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
        if (change.side === 'host') writer.applied(change.path, change.next);
      },
      isFatal: (error) => error instanceof SafeguardDenied || options.isFatal?.(error) === true,
    }).finally(() => prefetching);
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
