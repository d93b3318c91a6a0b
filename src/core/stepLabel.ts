// How an undo history entry is named for people, the same in the CLI and the Clud view: a turn by
// its prompt, a command by its command line, a checkpoint by its name, other steps by their sync.
import { displayPath, displayText } from './display';
import { RESOLVE_POLICY_PREFIX, type LiveStatus, type StepGroupInfo, type UndoResultInfo, type UndoStepInfo } from './protocol';

export function describeUndoStep(step: Pick<UndoStepInfo, 'group' | 'policy' | 'steps'>): string {
  const named = step.group && describeStepGroup(step.group);
  if (named) return named;
  if (step.policy.startsWith(RESOLVE_POLICY_PREFIX)) return displayText(step.policy);
  const syncs = (step.steps?.length ?? 1) > 1 ? `${step.steps!.length} ${displayText(step.policy)} syncs` : `${displayText(step.policy)} sync`;
  return syncs;
}

/** A turn by its prompt, a command by its command line, a checkpoint by its name; undefined for a burst of syncs. */
function describeStepGroup(group: StepGroupInfo): string | undefined {
  const label = displayText(group.label);
  if (group.kind === 'turn') return label ? `turn "${label}"` : 'turn';
  if (group.kind === 'command') return label ? `\`${label}\`` : 'command';
  if (group.kind === 'checkpoint') return label ? `checkpoint: ${label}` : 'checkpoint';
  return undefined;
}

/**
 * What "Undo Agent's Last Turn" takes back, given the history newest first: the newest turn and
 * every entry newer than it (undo is a pop), as a count for `undo --steps`. Undefined: no turn.
 */
export function lastTurnUndo<T extends Pick<UndoStepInfo, 'group'>>(history: readonly T[]): { steps: number; turn: T; newer: T[] } | undefined {
  const index = history.findIndex((step) => step.group?.kind === 'turn');
  if (index < 0) return undefined;
  return { steps: index + 1, turn: history[index]!, newer: history.slice(0, index) };
}

/**
 * What forcing a refused undo would do, for the editor to ask and the CLI to say. Two refusals
 * can be forced: a turn or command still running (one whose Claude Code was killed before its
 * Stop stays open until the next prompt), and later changes in the way, which forcing keeps
 * aside. Undefined: forcing would not help (nothing to undo, undo disabled, a step that kept no
 * preimages, another undo running).
 */
export function forcedUndo(result: Pick<UndoResultInfo, 'refusedCode' | 'running' | 'barriers'>): { question: string; detail: string } | undefined {
  if (result.refusedCode === 'still-running') {
    const what = (result.running && describeStepGroup(result.running)) ?? 'the step';
    return {
      question: `${what} has not ended. Undo it anyway?`,
      detail: 'A turn ends when Claude Code finishes it; one whose Claude Code was stopped first stays open until the next prompt. Forcing puts back what it changed so far, keeping aside any later versions of its files.',
    };
  }
  if (result.refusedCode === 'changed-since') {
    const paths = [...new Set(result.barriers.map((barrier) => displayPath(barrier.path)))];
    return {
      question: `${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', …' : ''} changed after that step. Undo anyway?`,
      detail: 'Your later versions of these files are copied aside first, then the folder is put back as it was.',
    };
  }
  return undefined;
}

/**
 * What becomes of the container after an undo put the user's folder back: the undo changes only
 * the folder, and the sync carries that into /workspace like any edit of the user's, at once while
 * continuous auto-sync runs, otherwise at the next sync. `live` undefined: the agent's status is
 * not known.
 */
export function containerAfterUndo(live: Pick<LiveStatus, 'autoSync' | 'state'> | undefined): string {
  // A file the container changed after the step is not overwritten: the sync finds both changed, a conflict that keeps both.
  const newer = ' (a file changed there since the step becomes a conflict, both versions kept)';
  if (live?.autoSync === 'continuous' && (live.state === 'idle' || live.state === 'syncing')) return `Auto-sync is bringing the container in line with your folder${newer}.`;
  return `The container still has the undone versions; the next sync brings it in line with your folder${newer}.`;
}
