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
    const { maxDeletions, largeFileBytes, askRenameOver } = this.thresholds;
    const questions: SafeguardQuestion[] = [];
    const firstTouch = kindBefore(key) === undefined;
    if (action === 'delete' && stats) {
      const newly = [[key, stats] as const, ...inside].filter(([candidate, candidateStats]) => !this.deletions.has(candidate) && ['file', 'symlink'].includes(kindBefore(candidate) ?? kindOf(candidateStats))).map(([candidate]) => candidate);
      for (const candidate of newly) this.deletions.add(candidate);
      const count = this.deletions.size;
      if (count > maxDeletions) questions.push({ kind: 'many-deletions', path: key, detail: `${count} files deleted in this sync (limit ${maxDeletions})` });
    }
    if ((action === 'write' || action === 'truncate' || action === 'rename-target') && firstTouch && stats?.isFile() && stats.size > largeFileBytes) {
      questions.push({ kind: 'large-overwrite', path: key, detail: `overwrites ${key}, a file of ${formatBytes(stats.size)} (limit ${formatBytes(largeFileBytes)})` });
    }
    if (action === 'rename-target' && firstTouch && stats && askRenameOver) {
      questions.push({ kind: 'rename-over', path: key, detail: `renames over the existing ${kindOf(stats)} ${key}` });
    }
    return questions.filter((question) => !this.allowed.has(question.kind));
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
