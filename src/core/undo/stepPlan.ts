// What a step will do, worked out before it does anything. From the host changes an apply is about
// to make (with what the scan found at each path), the safeguard thresholds and the undo limits:
// which paths' preimages to capture, which safeguard questions to ask, and about how much the step
// will take. The step then asks the questions before anything changes (a Deny has nothing to roll
// back), captures every preimage, and only then lets the apply change the host. Pure: no disk, no
// clock, so each case is a row of a table test.
import { parentKey } from './records';
import type { Before } from './safeguards';
import { SafeguardCounter } from './safeguards';
import type { ModifyAction, SafeguardKind, SafeguardQuestion, SafeguardThresholds, UndoLimits } from './types';
import { formatBytes } from '../display';

export interface PlannedChange {
  /** A snapshot key under the host root. */
  path: string;
  action: ModifyAction;
  /** What the scan found at the path; undefined: nothing. */
  before?: Before;
  /**
   * A deletion whose content arrives under another name in the same step (a file or folder
   * renamed): recorded like any deletion, but no loss, so it does not count toward the
   * many-deletions safeguard.
   */
  moved?: boolean;
}

export interface StepPlan {
  /** Paths whose preimages are captured before the first change, in the order of their first change. */
  capture: string[];
  /** At most one per kind, in the order of the changes that raise them. */
  questions: SafeguardQuestion[];
  /** Saved content plus the records of the captured paths and their parent folders. */
  estimatedBytes: number;
  /** Set when the estimate is over the single-step limit: the step captures nothing and cannot be undone. */
  unprotectedReason?: string;
}

/**
 * What one path's records take besides its name, which they hold twice (its journal line, and its
 * record in the manifest with the postimage): about 770 bytes, measured on a pull that rewrote the
 * 840 files of an npm package; rounded up.
 */
export const RECORD_BYTES = 800;

/** The deletions of a step that are moves (see PlannedChange.moved). */
function movedPaths(changes: readonly PlannedChange[]): Set<string> {
  return new Set(changes.filter((change) => change.action === 'delete' && change.moved).map((change) => change.path));
}

/**
 * `counter`: the step's, when the step is planned in parts (it counts over all of them, and a
 * path planned in an earlier part is not captured again); a fresh one otherwise.
 */
export function planStep(changes: readonly PlannedChange[], thresholds: SafeguardThresholds, limits: Pick<UndoLimits, 'maxStepBytes'>, counter = new SafeguardCounter(thresholds)): StepPlan {
  counter.setMoved(movedPaths(changes));
  const questions = new Map<SafeguardKind, SafeguardQuestion>();
  /** Each path at its first change. */
  const capture: string[] = [];
  const records = new Set<string>();
  let contentBytes = 0;
  for (const { path, action, before } of changes) {
    for (const question of counter.questionsFor(path, action, before)) {
      questions.set(question.kind, question);
      counter.allow(question.kind);
    }
    if (!counter.plan(path, before?.kind ?? 'absent')) continue;
    capture.push(path);
    if (before?.kind === 'file') contentBytes += before.size;
    for (let key = path; !records.has(key); key = parentKey(key)) {
      records.add(key);
      if (key === '') break;
    }
  }
  // Asked before the first deletion, so it counts all of them, not only those up to the threshold.
  const deletions = questions.get('many-deletions');
  if (deletions) questions.set('many-deletions', counter.deletionsQuestion(deletions.path));
  let estimatedBytes = contentBytes;
  for (const key of records) estimatedBytes += RECORD_BYTES + 2 * key.length;
  const unprotectedReason = estimatedBytes > limits.maxStepBytes ? `the step would take about ${formatBytes(estimatedBytes)}, over the ${formatBytes(limits.maxStepBytes)} limit of one step` : undefined;
  return {
    capture,
    // Whoever allows the change is told that it cannot be taken back.
    questions: [...questions.values()].map((question) => (unprotectedReason ? { ...question, detail: `${question.detail}; it could not be undone: ${unprotectedReason}` } : question)),
    estimatedBytes,
    ...(unprotectedReason && { unprotectedReason }),
  };
}
