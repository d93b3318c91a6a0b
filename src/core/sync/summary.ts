// One sync report in the few numbers people and scripts want, shared by the CLI and the extension.
import { MAX_LINE_BYTES, type ConflictInfo, type SyncReport } from '../protocol';

export interface SyncSummary {
  filesTransferred: number;
  filesDeleted: number;
  bytesTransferred: number;
  conflicts: number;
  /** Everything that did not go as planned: skipped changes, unreadable entries, a halt. */
  errors: string[];
}

/** Carried paths each report of a history answer lists; its counts stay whole. */
export const HISTORY_LISTED_PATHS = 20;
/** Room for the reports of a history answer, well inside one message. */
const HISTORY_ANSWER_BYTES = MAX_LINE_BYTES / 2;

/**
 * The history as a client is sent it: each report (newest first) with the first
 * HISTORY_LISTED_PATHS of the paths it carried, as many reports as fit in HISTORY_ANSWER_BYTES.
 * A report lists up to a thousand paths, and fifty reports of big cycles run to megabytes, more
 * than a client reads in one message; the history's clients show counts, not paths.
 */
export function historyAnswer(reports: readonly SyncReport[]): SyncReport[] {
  const answer: SyncReport[] = [];
  let bytes = 0;
  for (const report of reports) {
    const listed = report.applied.length > HISTORY_LISTED_PATHS ? { ...report, applied: report.applied.slice(0, HISTORY_LISTED_PATHS) } : report;
    bytes += Buffer.byteLength(JSON.stringify(listed));
    if (bytes > HISTORY_ANSWER_BYTES) break;
    answer.push(listed);
  }
  return answer;
}

/**
 * The conflicts standing now (`paths`, as the resident agent's status names them), each as the
 * newest of `described` (newest first) that tells what each side holds. An incremental cycle's
 * report describes only the conflicts among the paths it looked at, so the newest report alone
 * may not name them all.
 */
export function describeConflicts(paths: readonly string[], described: Iterable<ConflictInfo>): ConflictInfo[] {
  const known = new Map<string, ConflictInfo>();
  for (const conflict of described) {
    const seen = known.get(conflict.path);
    if (!seen || (!seen.host && !seen.container && (conflict.host || conflict.container))) known.set(conflict.path, conflict);
  }
  return paths.map((path) => known.get(path) ?? { path });
}

/** Whether a cycle did or met anything a user may look for: the history and `clud watch` show only those. */
export function isEventful(report: SyncReport): boolean {
  return report.appliedCount > 0 || report.skipped.length > 0 || report.kept.length > 0 || report.halted !== undefined || report.denied !== undefined;
}

export function summarizeReport(report: SyncReport): SyncSummary {
  const errors = [
    ...(report.halted ? [`halted (${report.halted.side}): ${report.halted.reason}`] : []),
    ...(report.denied ? [`stopped by a safeguard: ${report.denied.detail}`] : []),
    ...report.skipped.map((skipped) => `skipped ${skipped.path} on ${skipped.side}: ${skipped.reason}`),
    ...report.problems.map((problem) => `${problem.path} on ${problem.side}: ${problem.reason}`),
  ];
  return {
    filesTransferred: report.writtenCount,
    filesDeleted: report.deletedCount,
    bytesTransferred: report.bytesCopied,
    conflicts: report.conflicts.length,
    errors,
  };
}

export function describeReport(report: SyncReport): string {
  if (report.halted) return `halted: ${report.halted.reason}`;
  if (report.denied) return `stopped by a safeguard: ${report.denied.detail}`;
  const summary = summarizeReport(report);
  const parts = [`${report.appliedCount} change(s)`, `${summary.bytesTransferred} bytes`];
  if (summary.conflicts) parts.push(`${summary.conflicts} conflict(s)`);
  if (report.skipped.length) parts.push(`${report.skipped.length} skipped`);
  if (report.kept.length) parts.push(`${report.kept.length} version(s) kept aside`);
  if (report.keptOut.length) parts.push(`${report.keptOut.length} secret(s) kept out`);
  return `${report.policy}: ${parts.join(', ')} in ${report.durationMs} ms`;
}

/**
 * One report for work done in several passes (a cycle re-run after files moved under it, a
 * resolve and the cycle that follows it): everything each pass did, the latest pass's view of
 * what is still open (conflicts, problems, skips, a halt).
 */
export function mergeReports(earlier: SyncReport, later: SyncReport, listLimit = 1000): SyncReport {
  return {
    ...later,
    id: earlier.id,
    startedAt: earlier.startedAt,
    durationMs: Date.parse(later.startedAt) + later.durationMs - Date.parse(earlier.startedAt),
    applied: [...earlier.applied, ...later.applied].slice(0, listLimit),
    appliedCount: earlier.appliedCount + later.appliedCount,
    writtenCount: earlier.writtenCount + later.writtenCount,
    deletedCount: earlier.deletedCount + later.deletedCount,
    kept: [...earlier.kept, ...later.kept],
    bytesCopied: earlier.bytesCopied + later.bytesCopied,
    undoStep: later.undoStep ?? earlier.undoStep,
    denied: later.denied ?? earlier.denied,
  };
}
