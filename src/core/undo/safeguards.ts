// Which changes of a step cross a safeguard threshold. The step writer asks the user about each
// question this raises; this only counts and compares, so it needs no disk and no locks.
import type { Stats } from 'node:fs';
import { kindOf } from './fsState';
import type { ModifyAction, SafeguardKind, SafeguardQuestion, SafeguardThresholds } from './types';

export class SafeguardCounter {
  /** Files and links that existed before the step and that it deletes (counted once each). */
  private readonly deletions = new Set<string>();
  private readonly allowed = new Set<SafeguardKind>();

  constructor(private readonly thresholds: SafeguardThresholds) {}

  /**
   * The questions announcing `action` on `key` raises. Deletions are counted here, synchronously,
   * so concurrent announcements all count. `kindBefore` is the kind a path had before the step
   * when it was touched already (deleting what the step itself created is no loss).
   */
  questionsFor(key: string, action: ModifyAction, stats: Stats | undefined, inside: ReadonlyArray<readonly [string, Stats]>, kindBefore: (key: string) => string | undefined): SafeguardQuestion[] {
    // Called for every path a sync changes: a kind already allowed costs no question text.
    const { maxDeletions, largeFileBytes, askRenameOver } = this.thresholds;
    const questions: SafeguardQuestion[] = [];
    const firstTouch = kindBefore(key) === undefined;
    if (action === 'delete' && stats) {
      this.countDeletion(key, stats, kindBefore);
      for (const [candidate, candidateStats] of inside) this.countDeletion(candidate, candidateStats, kindBefore);
      const count = this.deletions.size;
      if (count > maxDeletions && !this.allowed.has('many-deletions')) questions.push({ kind: 'many-deletions', path: key, detail: `${count} files deleted in this sync (limit ${maxDeletions})` });
    }
    if ((action === 'write' || action === 'truncate' || action === 'rename-target') && firstTouch && stats?.isFile() && stats.size > largeFileBytes && !this.allowed.has('large-overwrite')) {
      questions.push({ kind: 'large-overwrite', path: key, detail: `overwrites ${key}, a file of ${formatBytes(stats.size)} (limit ${formatBytes(largeFileBytes)})` });
    }
    if (action === 'rename-target' && firstTouch && stats && askRenameOver && !this.allowed.has('rename-over')) {
      questions.push({ kind: 'rename-over', path: key, detail: `renames over the existing ${kindOf(stats)} ${key}` });
    }
    return questions;
  }

  /** A file or link that existed before the step counts once, however often it is deleted (deleting what the step itself created is no loss). */
  private countDeletion(key: string, stats: Stats, kindBefore: (key: string) => string | undefined): void {
    if (this.deletions.has(key)) return;
    const kind = kindBefore(key) ?? kindOf(stats);
    if (kind === 'file' || kind === 'symlink') this.deletions.add(key);
  }

  /** Once allowed, a kind is not asked again within the step. */
  allow(kind: SafeguardKind): void {
    this.allowed.add(kind);
  }

  isAllowed(kind: SafeguardKind): boolean {
    return this.allowed.has(kind);
  }

  /** The change announced for `key` was not carried out. */
  uncount(key: string): void {
    this.deletions.delete(key);
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
