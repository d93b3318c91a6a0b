// Where one undoable step (a group of recorded sync cycles) ends and the next begins. Pure: the
// resident agent asks current() for the group of each cycle it records and tells recorded() when
// one was; boundaries come from Claude Code's hooks (a turn), `clud run` (a command), a checkpoint,
// or, when nobody marks any, a quiet period (a burst of background cycles is one group).
import { randomBytes } from 'node:crypto';
import type { StepGroup, StepKind } from './types';

export interface StepBoundariesOptions {
  /** A background group ends when no cycle was recorded into it for this long. Default 3 s. */
  quietMs?: number;
  /**
   * A background group also ends after this many cycles, so that something writing without a
   * pause (a log file the agent's server appends to) still leaves steps an undo can go back
   * between, and evicting the oldest takes a stretch of it, not all of it. Default 100.
   */
  maxBackgroundCycles?: number;
  /** The clock (tests). */
  now?: () => number;
  /** Group ids (tests); by default `<kind>-<time>-<random>`. */
  newId?: (kind: StepKind) => string;
}

/** Labels are one line: a prompt is cut to this many characters. */
export const MAX_LABEL_CHARS = 80;

/** A prompt or command line as a label: white space collapsed, control characters dropped, cut to `max` characters with an ellipsis. */
export function shortLabel(text: string, max = MAX_LABEL_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, max - 1).join('').trimEnd()}…`;
}

/** At most this many paths are kept per open group (a `clud run` reports them when it ends). */
export const MAX_GROUP_PATHS = 10_000;

/** A turn or command that ended: the host paths its recorded cycles changed (capped). */
export interface ClosedGroup {
  group: StepGroup;
  recorded: number;
  paths: string[];
  pathsTruncated: boolean;
}

export interface CheckpointOutcome {
  /** The group that ends here, with the checkpoint's kind and label; `recorded` cycles are in it (0: nothing changed since the last boundary, nothing to relabel). */
  closed: StepGroup;
  recorded: number;
  /** The groups recorded since the last boundary, which become `closed` (UndoLog.relabelGroups). */
  groups: string[];
  /** The explicit group (turn, command) that goes on after the checkpoint, under a new id. */
  continued?: StepGroup;
}

export class StepBoundaries {
  private open_?: { group: StepGroup; explicit: boolean; recorded: number; lastRecordedAt: number; paths: Set<string>; pathsTruncated: boolean };
  private readonly quietMs: number;
  private readonly maxBackgroundCycles: number;
  private readonly now: () => number;
  private readonly newId: (kind: StepKind) => string;
  /** Background groups that recorded since the last boundary (a turn, a command, a checkpoint), oldest first, with their cycles. */
  private backgroundSinceBoundary: Array<{ id: string; recorded: number }> = [];

  constructor(options: StepBoundariesOptions = {}) {
    this.quietMs = options.quietMs ?? 3000;
    this.maxBackgroundCycles = options.maxBackgroundCycles ?? 100;
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? ((kind) => `${kind}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`);
  }

  /** A turn or a command begins: whatever was open ends, and the next cycles record into the new group. */
  open(kind: 'turn' | 'command', label: string): StepGroup {
    const group = { id: this.newId(kind), kind, label: shortLabel(label) };
    this.backgroundSinceBoundary = [];
    this.open_ = { group, explicit: true, recorded: 0, lastRecordedAt: this.now(), paths: new Set(), pathsTruncated: false };
    return group;
  }

  /**
   * A turn or command that was open when the agent last stopped (it keeps the group with its
   * state): the next cycles record into it again, under the same id, until it ends.
   */
  reopen(group: StepGroup): void {
    this.backgroundSinceBoundary = [];
    this.open_ = { group, explicit: true, recorded: 0, lastRecordedAt: this.now(), paths: new Set(), pathsTruncated: false };
  }

  /**
   * The open turn or command ends (only when it is the one named by `id`, or of `kind`, if given:
   * a Stop hook must not end a `clud run` that began during the turn). Returns the group ended,
   * with the host paths its cycles changed.
   */
  close(match: { id?: string; kind?: StepKind } = {}): ClosedGroup | undefined {
    const open = this.open_;
    if (!open?.explicit) return undefined;
    if (match.id !== undefined && match.id !== open.group.id) return undefined;
    if (match.kind !== undefined && match.kind !== open.group.kind) return undefined;
    this.open_ = undefined;
    this.backgroundSinceBoundary = [];
    return { group: open.group, recorded: open.recorded, paths: [...open.paths], pathsTruncated: open.pathsTruncated };
  }

  /**
   * Ends what changed since the last boundary under the checkpoint's label (call it after
   * flushing, so that holds everything up to now): the open turn or command's group so far (it
   * goes on in a new group), or else every background group since the last boundary, which
   * become one.
   */
  checkpoint(label: string): CheckpointOutcome {
    const open = this.live();
    const since = open?.explicit ? [{ id: open.group.id, recorded: open.recorded }] : this.backgroundSinceBoundary;
    const groups = since.filter((group) => group.recorded > 0);
    const recorded = groups.reduce((sum, group) => sum + group.recorded, 0);
    const closed: StepGroup = { id: groups.at(-1)?.id ?? this.newId('checkpoint'), kind: 'checkpoint', label: shortLabel(label) };
    this.open_ = undefined;
    this.backgroundSinceBoundary = [];
    const outcome = { closed, recorded, groups: groups.map((group) => group.id) };
    if (!open?.explicit) return outcome;
    const kind = open.group.kind as 'turn' | 'command';
    return { ...outcome, continued: this.open(kind, open.group.label) };
  }

  /** The group the next recorded cycle joins: the open one, or a new background group after a quiet period. */
  current(): StepGroup {
    const live = this.live();
    if (live) return live.group;
    const group: StepGroup = { id: this.newId('sync'), kind: 'sync', label: '' };
    this.open_ = { group, explicit: false, recorded: 0, lastRecordedAt: this.now(), paths: new Set(), pathsTruncated: false };
    return group;
  }

  /** A cycle recorded a step into `group` (as current() gave it), changing `paths` on the host: the quiet period starts again. */
  recorded(group: StepGroup, paths: Iterable<string> = []): void {
    const open = this.open_;
    if (open?.group.id !== group.id) return;
    open.recorded += 1;
    open.lastRecordedAt = this.now();
    if (!open.explicit) {
      const since = this.backgroundSinceBoundary.find((entry) => entry.id === group.id);
      if (since) since.recorded += 1;
      else this.backgroundSinceBoundary.push({ id: group.id, recorded: 1 });
    }
    for (const key of paths) {
      if (open.paths.size >= MAX_GROUP_PATHS) {
        open.pathsTruncated = true;
        break;
      }
      open.paths.add(key);
    }
  }

  /** The turn or command still open, which an undo must not take back under its feet. */
  get running(): StepGroup | undefined {
    return this.open_?.explicit ? this.open_.group : undefined;
  }

  private live(): StepBoundaries['open_'] {
    const open = this.open_;
    if (open && !open.explicit && (this.now() - open.lastRecordedAt >= this.quietMs || open.recorded >= this.maxBackgroundCycles)) this.open_ = undefined;
    return this.open_;
  }
}
