// One sync report in the few numbers people and scripts want, shared by the CLI and the extension.
import { MAX_LINE_BYTES, MAX_LISTED, type ConflictInfo, type SyncReport } from '../protocol';

export interface SyncSummary {
  filesTransferred: number;
  filesDeleted: number;
  bytesTransferred: number;
  conflicts: number;
  /** What the sync meant to do and did not: a halt, a denied safeguard, skipped changes. */
  errors: string[];
  /**
   * Entries the sync leaves alone on both sides (a named pipe, an unreadable file): not a failure
   * of this sync, they stand until the entry changes.
   */
  problems: string[];
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

/** A report's lists that can run to any length; `unlisted` counts what each leaves out. */
export type ReportList = keyof NonNullable<SyncReport['unlisted']>;
const REPORT_LISTS: readonly ReportList[] = ['conflicts', 'skipped', 'problems', 'kept', 'keptOut'];

/** How many entries a report's list has: those it lists and those it counts. */
export function countOf(report: SyncReport, list: ReportList): number {
  return report[list].length + (report.unlisted?.[list] ?? 0);
}

/** Room for one report in a message: a client's sync answer, a cycle's event, a line of the history. */
const REPORT_BYTES = MAX_LINE_BYTES / 4;

/**
 * The report as it leaves the agent: each list cut to its first MAX_LISTED entries, halved until
 * the whole report takes at most `maxBytes`, the rest counted in `unlisted` (`applied` has its
 * own count). Thousands of conflicts or unreadable files would otherwise make a report longer
 * than a message may be: a sync that was carried out would answer its client with an error, and
 * its cycle's event would be dropped.
 */
export function listedReport(report: SyncReport, maxBytes = REPORT_BYTES): SyncReport {
  for (let limit = MAX_LISTED; ; limit = Math.floor(limit / 2)) {
    const listed = cutLists(report, limit);
    if (limit === 0 || Buffer.byteLength(JSON.stringify(listed)) <= maxBytes) return listed;
  }
}

function cutLists(report: SyncReport, limit: number): SyncReport {
  if (report.applied.length <= limit && REPORT_LISTS.every((list) => report[list].length <= limit)) return report;
  const unlisted = { ...report.unlisted };
  for (const list of REPORT_LISTS) if (report[list].length > limit) unlisted[list] = countOf(report, list) - limit;
  return {
    ...report,
    applied: report.applied.slice(0, limit),
    conflicts: report.conflicts.slice(0, limit),
    skipped: report.skipped.slice(0, limit),
    problems: report.problems.slice(0, limit),
    kept: report.kept.slice(0, limit),
    keptOut: report.keptOut.slice(0, limit),
    unlisted,
  };
}

/**
 * Whether a cycle did or met anything a user may look for: the history and `clud watch` show only
 * those. A conflict is news only if it is not among `standingConflicts`, the ones that stood
 * before the cycle; without them, conflicts are no news (a full cycle reports every standing one
 * again, and a client sees them come in its live status).
 */
export function isEventful(report: SyncReport, standingConflicts?: ReadonlySet<string>): boolean {
  const newConflict = standingConflicts !== undefined && report.conflicts.some((conflict) => !standingConflicts.has(conflict.path));
  return report.appliedCount > 0 || countOf(report, 'skipped') > 0 || countOf(report, 'kept') > 0 || report.halted !== undefined || report.denied !== undefined || newConflict;
}

export function summarizeReport(report: SyncReport): SyncSummary {
  const errors = [
    ...(report.halted ? [`halted (${report.halted.side}): ${report.halted.reason}`] : []),
    ...(report.denied ? [`stopped by a safeguard: ${report.denied.detail}`] : []),
    ...report.skipped.map((skipped) => `skipped ${skipped.path} on ${skipped.side}: ${skipped.reason}`),
    ...(report.unlisted?.skipped ? [`${report.unlisted.skipped} more skipped`] : []),
  ];
  const problems = [
    ...report.problems.map((problem) => `${problem.path} on ${problem.side}: ${problem.reason}`),
    ...(report.unlisted?.problems ? [`${report.unlisted.problems} more problem(s)`] : []),
  ];
  return {
    filesTransferred: report.writtenCount,
    filesDeleted: report.deletedCount,
    bytesTransferred: report.bytesCopied,
    conflicts: countOf(report, 'conflicts'),
    errors,
    problems,
  };
}

/**
 * What became of the other side's version of a file kept out as a secret, when it is not the one
 * both last agreed: neither side's version crosses while the secret stands.
 */
export function describeSecretOtherSide(secret: SyncReport['keptOut'][number]): string | undefined {
  const [other, secretSide] = secret.side === 'host' ? ["the container's", "your folder's"] : ["your folder's", "the container's"];
  if (secret.otherSide === 'changed') return `${other} version changed too and stays there`;
  if (secret.otherSide === 'deleted') return `deleted in ${secret.side === 'host' ? 'the container' : 'your folder'}; ${secretSide} file stays`;
  return undefined;
}

export function describeReport(report: SyncReport): string {
  if (report.halted) return `halted: ${report.halted.reason}`;
  if (report.denied) return `stopped by a safeguard: ${report.denied.detail}`;
  const summary = summarizeReport(report);
  const parts = [`${report.appliedCount} change(s)`, `${summary.bytesTransferred} bytes`];
  if (summary.conflicts) parts.push(`${summary.conflicts} conflict(s)`);
  const [skipped, kept, keptOut] = [countOf(report, 'skipped'), countOf(report, 'kept'), countOf(report, 'keptOut')];
  if (skipped) parts.push(`${skipped} skipped`);
  if (kept) parts.push(`${kept} version(s) kept aside`);
  if (keptOut) parts.push(`${keptOut} secret(s) kept out`);
  const waited = report.waitedForAnswerMs ?? 0;
  return `${report.policy}: ${parts.join(', ')} in ${Math.round(report.durationMs - waited)} ms${waited > 0 ? `, after ${Math.round(waited)} ms waiting for an answer` : ''}`;
}

/**
 * One report for work done in several passes (a cycle re-run after files moved under it, a
 * resolve and the cycle that follows it): everything each pass did, the latest pass's view of
 * what is still open (conflicts, problems, skips, a halt).
 */
export function mergeReports(earlier: SyncReport, later: SyncReport, listLimit = MAX_LISTED): SyncReport {
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
    // The step named is the later pass's if it recorded one; what is said of it goes with it.
    undoStep: later.undoStep ?? earlier.undoStep,
    undoStepShared: later.undoStep ? later.undoStepShared : earlier.undoStepShared,
    notUndoable: later.undoStep ? later.notUndoable : earlier.notUndoable,
    denied: later.denied ?? earlier.denied,
    ...((earlier.waitedForAnswerMs ?? 0) + (later.waitedForAnswerMs ?? 0) > 0 && { waitedForAnswerMs: (earlier.waitedForAnswerMs ?? 0) + (later.waitedForAnswerMs ?? 0) }),
  };
}
