// The undo log's types: the public ones, and what the log hands the writer of a step.
import type { SafeguardKind, SafeguardQuestionInfo, UndoRefusalCode } from '../protocol';
import type { Manifest } from './records';

export interface UndoLimits {
  /** Total bytes of all steps in the log; oldest steps are evicted beyond it. Default 1 GiB. */
  maxLogBytes: number;
  /** Steps kept, as history lists them (a turn, a command, a burst of syncs: one group); the oldest are evicted whole beyond it. Default 50. */
  maxSteps: number;
  /** Bytes one step may take; beyond it the step drops its preimages and becomes unprotected. Default 256 MiB. */
  maxStepBytes: number;
  /**
   * Syncs kept, whatever their groups: each is a folder, whose manifest is read once and kept in
   * memory. A turn records about one sync per file it writes (each write settles on its own), so
   * the default, 2,000, holds 50 turns of 40 writes. Not a setting.
   */
  maxStoredSteps: number;
}

export const DEFAULT_LIMITS: UndoLimits = { maxLogBytes: 1024 ** 3, maxSteps: 50, maxStepBytes: 256 * 1024 ** 2, maxStoredSteps: 2000 };

export interface SafeguardThresholds {
  /** Files (not folders) deleted in one step before asking. Default 50: the 51st deletion asks. */
  maxDeletions: number;
  /** Overwriting (write, truncate, rename over) a file larger than this asks. Default 10 MiB. */
  largeFileBytes: number;
  /** Renaming over an existing entry asks. Default true. */
  askRenameOver: boolean;
}

export const DEFAULT_THRESHOLDS: SafeguardThresholds = { maxDeletions: 50, largeFileBytes: 10 * 1024 ** 2, askRenameOver: true };

export type { SafeguardKind };

/**
 * A safeguard's question, as the protocol carries it: its kind, the path whose change triggered
 * it (a snapshot key), and a sentence for the user, e.g. "51 files deleted in this sync (limit 50)".
 */
export type SafeguardQuestion = SafeguardQuestionInfo;

/** Called when a step crosses a safeguard; the step waits for the answer. */
export type SafeguardAsk = (question: SafeguardQuestion) => Promise<'allow' | 'deny'>;

/**
 * Thrown by StepWriter.prepare (a question of the plan, before anything changed) or beforeModify
 * when the user denied a safeguard. Everything the step had already done has been rolled back
 * (unless `rolledBack` is false: the log is disabled or the step was over its size limit), and
 * every later beforeModify of the step throws it again, so the caller must stop applying changes
 * and must not record any of this sync's changes as applied.
 */
export class SafeguardDenied extends Error {
  constructor(
    readonly question: SafeguardQuestion,
    readonly rolledBack: boolean,
    /** Paths the rollback could not restore (the step then stays in progress for the next open() to retry). */
    readonly problems: readonly string[] = [],
  ) {
    super(`safeguard denied (${question.kind}): ${question.detail}${rolledBack ? '' : '; the changes already made could not be rolled back'}`);
    this.name = 'SafeguardDenied';
  }
}

/**
 * What the caller is about to do to a path. `rename-source` / `rename-target` are the two paths
 * of a rename (call both before renaming). A folder about to be deleted, renamed away or replaced
 * is captured with everything inside it.
 */
export type ModifyAction = 'write' | 'delete' | 'chmod' | 'truncate' | 'rename-source' | 'rename-target';

/** What the caller says about a step it begins (UndoLog.beginStep). */
export interface StepMeta {
  /** The sync this step belongs to (SyncReport.id). */
  syncId: string;
  policy: string;
  /** The host tree root the step's paths are relative to. */
  root: string;
  /** Asked when the step crosses a safeguard. Without it, safeguards allow. */
  ask?: SafeguardAsk;
  thresholds?: Partial<SafeguardThresholds>;
}

/** What the log hands the writer of a step (see StepWriter). */
export interface WriterContext {
  id: string;
  /** The in-progress folder of this step (created at the first capture). */
  directory: string;
  /** False when the log is disabled: safeguards still apply, nothing is recorded. */
  persist: boolean;
  captureXattrs: boolean;
  notes: string[];
  limits: UndoLimits;
  thresholds: SafeguardThresholds;
  /** Where a rollback keeps a version it finds that it may not drop (see restoreRecords). */
  keptDirectory: string;
  /** Renames the closed step into the log and applies the limits. */
  promote(manifest: Manifest): Promise<StepSummary>;
  /** The step is over, whatever the outcome: the log may open another. */
  finished(): void;
  beforePromote?: (stepId: string) => void | Promise<void>;
}

/**
 * What a group of steps is: a Claude Code turn, a `clud run` command, the changes up to a
 * checkpoint, or background syncs that no boundary marked (a burst between quiet periods).
 */
export type StepKind = 'turn' | 'command' | 'checkpoint' | 'sync';
export const STEP_KINDS: readonly StepKind[] = ['turn', 'command', 'checkpoint', 'sync'];

/**
 * The unit of undo the user sees. Every sync cycle still records a step of its own (atomic,
 * recoverable); consecutive steps carrying the same group id are listed and undone as one.
 */
export interface StepGroup {
  id: string;
  kind: StepKind;
  /** The turn's prompt (shortened), the command line, the checkpoint's name; '' for background syncs. */
  label: string;
}

export interface StepSummary {
  /** A step's id; in UndoLog.list(), the group's id (a step recorded without a group is a group of its own, with its id). */
  id: string;
  syncId: string;
  policy: string;
  startedAt: string;
  closedAt: string;
  /** Paths the step changed. */
  files: number;
  /** Bytes the step takes in the log. */
  bytes: number;
  /** False: the step cannot be undone (reason in unprotectedReason), and undo stops before it. */
  protected: boolean;
  unprotectedReason?: string;
  /** Remarks, e.g. that extended attributes were not captured. */
  notes: string[];
  /** Barriers recorded for this step at the last detectBarriers() / undo. */
  barriers: number;
  /** The group the step belongs to (absent for a step recorded without one: then it is a group of its own, kind 'sync'). */
  group?: StepGroup;
  /** In UndoLog.list() and UndoResult.undone: the group's member step ids, newest first. */
  steps?: string[];
}

export interface Barrier {
  stepId: string;
  path: string;
  /** ISO time the barrier was first detected. */
  detectedAt: string;
  change: string;
}

export interface KeptVersion {
  path: string;
  /** Absolute path of the copy. */
  keptAt: string;
}

export interface UndoResult {
  /** Steps undone, newest first. */
  undone: StepSummary[];
  /** Set when nothing was undone because the request was refused (disabled, barriers, nothing to undo). */
  refused?: string;
  /** Why, for code to decide on (set with `refused`). */
  refusedCode?: UndoRefusalCode;
  /** With `still-running`: the turn or command that has not ended. */
  running?: StepGroup;
  /** Barriers in the way (refused), or crossed (forced). */
  barriers: Barrier[];
  /** Set when fewer steps than asked were undone: the step undo stopped before, and why. */
  stoppedBefore?: { stepId?: string; reason: string };
  /** Versions that forcing would have destroyed, copied aside first. */
  kept: KeptVersion[];
  /** Paths that could not be restored exactly (the step then stays in the log). */
  problems: string[];
}

export interface RecoveredStep {
  id: string;
  /** rolled-back: an interrupted step was restored. undo-completed: an interrupted undo was finished. unprotected: an interrupted step over its size limit could not be rolled back. */
  outcome: 'rolled-back' | 'undo-completed' | 'unprotected';
  paths: number;
  /** Current versions that differed from the restored ones, copied aside before restoring. */
  kept: KeptVersion[];
  problems: string[];
}
