// How an undo history entry is named for people, the same in the CLI and the Clud view: a turn by
// its prompt, a command by its command line, a checkpoint by its name, other steps by their sync.
import { displayText } from './display';
import type { UndoStepInfo } from './protocol';

export function describeUndoStep(step: Pick<UndoStepInfo, 'group' | 'policy' | 'steps'>): string {
  const group = step.group;
  const label = displayText(group?.label ?? '');
  if (group?.kind === 'turn') return label ? `turn "${label}"` : 'turn';
  if (group?.kind === 'command') return label ? `\`${label}\`` : 'command';
  if (group?.kind === 'checkpoint') return label ? `checkpoint: ${label}` : 'checkpoint';
  const syncs = (step.steps?.length ?? 1) > 1 ? `${step.steps!.length} ${displayText(step.policy)} syncs` : `${displayText(step.policy)} sync`;
  return syncs;
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
