// The undo log: each sync that writes to the host becomes a step that can be undone.
export { describeGroup, UndoLog } from './undoLog';
export type { UndoLogOptions } from './undoLog';
export { StepWriter } from './stepWriter';
export { DEFAULT_LIMITS, DEFAULT_THRESHOLDS, SafeguardDenied, STEP_KINDS } from './types';
export { StepBoundaries } from './stepBoundaries';
export type { StepBoundariesOptions } from './stepBoundaries';
export type { Barrier, KeptVersion, ModifyAction, RecoveredStep, SafeguardAsk, SafeguardKind, SafeguardQuestion, SafeguardThresholds, StepGroup, StepKind, StepMeta, StepSummary, UndoLimits, UndoResult } from './types';
export { UNDO_FORMAT_VERSION } from './records';
