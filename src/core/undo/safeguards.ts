// Which changes of a step cross a safeguard threshold. The step's plan (stepPlan.ts) asks the
// questions this raises before anything changes; this only counts and compares, so it needs no
// disk and no locks. One counter per step counts over every part of its plan.
import type { Identity } from './fsState';
import type { ModifyAction, SafeguardKind, SafeguardQuestion, SafeguardThresholds } from './types';
import { formatBytes } from '../display';

/** What a path held before a change: its kind and, for a file, its size (from the scan). */
export interface Before {
  kind: Exclude<Identity['kind'], 'absent'>;
  size: number;
}

export class SafeguardCounter {
  /** Files and links that existed before the step and that it deletes (counted once each). */
  private readonly deletions = new Set<string>();
  private readonly allowed = new Set<SafeguardKind>();
  /** The kind each path planned had before the step (deleting what the step itself created is no loss). */
  private readonly kindsBefore = new Map<string, Identity['kind']>();

  /**
   * `moved`: paths whose deletion is a move (their content arrives under another name in the same
   * step), which are no loss and not counted; set again for each part of a step's plan.
   */
  constructor(
    private readonly thresholds: SafeguardThresholds,
    private moved: ReadonlySet<string> = new Set(),
  ) {}

  setMoved(moved: ReadonlySet<string>): void {
    this.moved = moved;
  }

  /**
   * The questions planning `action` on `key` raises (deletions are counted here).
   */
  questionsFor(key: string, action: ModifyAction, before: Before | undefined): SafeguardQuestion[] {
    // Called for every path a sync changes: a kind already allowed costs no question text.
    const { maxDeletions, largeFileBytes, askRenameOver } = this.thresholds;
    const questions: SafeguardQuestion[] = [];
    const firstTouch = !this.kindsBefore.has(key);
    if (action === 'delete' && before) {
      this.countDeletion(key, before);
      if (this.deletions.size > maxDeletions && !this.allowed.has('many-deletions')) questions.push(this.deletionsQuestion(key));
    }
    if ((action === 'write' || action === 'truncate' || action === 'rename-target') && firstTouch && before?.kind === 'file' && before.size > largeFileBytes && !this.allowed.has('large-overwrite')) {
      questions.push({ kind: 'large-overwrite', path: key, detail: `overwrites ${key}, a file of ${formatBytes(before.size)} (limit ${formatBytes(largeFileBytes)})` });
    }
    if (action === 'rename-target' && firstTouch && before && askRenameOver && !this.allowed.has('rename-over')) {
      questions.push({ kind: 'rename-over', path: key, detail: `renames over the existing ${before.kind} ${key}` });
    }
    return questions;
  }

  /** The many-deletions question with the deletions counted so far, `key` being the one that crossed the threshold. */
  deletionsQuestion(key: string): SafeguardQuestion {
    return { kind: 'many-deletions', path: key, detail: `${this.deletions.size} files deleted in this sync (limit ${this.thresholds.maxDeletions})` };
  }

  /** A file or link that existed before the step counts once, however often it is deleted (deleting what the step itself created is no loss). */
  private countDeletion(key: string, before: Before): void {
    if (this.deletions.has(key) || this.moved.has(key)) return;
    const kind = this.kindsBefore.get(key) ?? before.kind;
    if (kind === 'file' || kind === 'symlink') this.deletions.add(key);
  }

  /** Once allowed, a kind is not asked again within the step. */
  allow(kind: SafeguardKind): void {
    this.allowed.add(kind);
  }

  /**
   * The change of `key` was planned (after asking its questions), and the path was `kind` before
   * it; only a path's first change counts. Returns whether it was the first.
   */
  plan(key: string, kind: Identity['kind']): boolean {
    if (this.kindsBefore.has(key)) return false;
    this.kindsBefore.set(key, kind);
    return true;
  }

  /** Paths planned: the count of paths a step that keeps no preimages may change. */
  get plannedCount(): number {
    return this.kindsBefore.size;
  }
}

