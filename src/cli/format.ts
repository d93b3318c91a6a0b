// The CLI's text output. Every name and message that came from a tree or the agent goes through
// displayPath/displayText, so that a file name cannot drive the terminal or forge a line.
import * as nodePath from 'node:path';
import { displayPath, displayText, formatBytes } from '../core/display';
import type { Entry } from '../core/files/entry';
import { describeAgentBranch } from '../core/git/refNames';
import type { AgentEvent, ConflictInfo, LiveStatus, SyncMetrics, SyncReport } from '../core/protocol';
import { describeReport, describeSecretOtherSide, isEventful, type ReportList } from '../core/sync/summary';
import type { WorkspaceStatus } from '../core/host/workspace';

export function formatMetrics(metrics: SyncMetrics): string {
  const lines = [
    `${metrics.direction}: ${metrics.filesTransferred} file(s) transferred, ${metrics.filesDeleted} deleted, ${metrics.bytesTransferred} bytes in ${metrics.durationMs} ms` +
      (metrics.retries ? `, ${metrics.retries} retr${metrics.retries === 1 ? 'y' : 'ies'}` : ''),
  ];
  for (const error of metrics.errors) lines.push(`  error: ${displayText(error)}`);
  for (const secret of metrics.keptOut) lines.push(`  kept out  ${displayPath(secret.path)}: ${displayText(secret.reason)} (not copied into /workspace; ${ALLOW_HINT})`);
  for (const left of metrics.notCopied ?? []) lines.push(`  not copied (left alone on both sides): ${displayPath(left.path)}: ${displayText(left.reason)}`);
  return lines.join('\n');
}

const ALLOW_HINT = '--allow-secret PATTERN syncs it';

export function formatStatus(status: WorkspaceStatus): string {
  const held = status.state === 'paused' ? ' — `docker unpause` resumes it' : status.state === 'restarting' ? ' — Docker is restarting it; `clud logs` says why' : '';
  const lines = [`folder:    ${status.hostPath}${status.folderMissing ? ' (missing: deleted or moved; /workspace still holds the container\'s copy, and a moved folder is still synced where it went)' : ''}`, `container: ${status.containerName} (${status.state})${held}`];
  // The container's mount keeps the folder it was started with (it follows a move): a folder
  // deleted and made again is another folder, which only a restart sees.
  if (status.folderMissing) lines.push(`  move it back if you moved it; if you deleted it, make an empty one there (\`clud resume\` then fills it from /workspace, deleting nothing) and \`docker restart ${status.containerName}\` so that the container sees it`);
  if (status.image) lines.push(`image:     ${status.image}${status.imageCurrent === false ? ' (older than this Clud: `clud up --rebuild` updates it)' : ''}`);
  if (status.init) {
    lines.push(`workspace: ${status.init.phase}${status.init.error ? ` — ${displayText(status.init.error)}` : ''}`);
    // The way out is said here, once: the agent's error says only what went wrong.
    if (status.init.phase === 'failed') lines.push('  the container is running but the initial copy failed; fix the cause and run `clud up` again to retry it');
    for (const warning of status.init.warnings) lines.push(`  warning: ${displayText(warning)}`);
    if (status.init.initialSync) lines.push(`  initial copy: ${formatMetrics(status.init.initialSync)}`);
  }
  if (status.ui) lines.push(`IDE:       ${status.ui.url}`);
  if (status.mcpServers) lines.push(`MCP:       ${status.mcpServers.length ? status.mcpServers.join(', ') : '(none)'}`);
  if (status.live) {
    const { live } = status;
    lines.push(`sync:      ${formatLiveStatus(live)}`);
    // The first LISTED_PATHS of a list, then how many more (those the status lists and those it only counts).
    const listFirst = <T>(items: readonly T[], unlisted: number, line: (item: T) => string, what: string) => {
      const shown = items.slice(0, LISTED_PATHS);
      for (const item of shown) lines.push(line(item));
      if (items.length + unlisted > shown.length) lines.push(`  … and ${items.length + unlisted - shown.length} more ${what}`);
    };
    listFirst(live.conflicts, live.unlisted.conflicts, (conflict) => conflictLine(conflict, status.hostPath), 'conflict(s)');
    // What the sync cannot carry stands until it is fixed.
    listFirst(live.problems, live.unlisted.problems, (problem) => `  problem   ${displayPath(problem.path)} on ${problem.side}: ${displayText(problem.reason)}`, 'problem(s)');
    // The secrets kept out since the initial copy (its own are listed with it above).
    const listedWithCopy = new Set(status.init?.initialSync?.keptOut.map((secret) => secret.path));
    const keptOut = live.keptOut.filter((secret) => secret.side !== 'host' || secret.otherSide || !listedWithCopy.has(secret.path));
    listFirst(keptOut, live.unlisted.keptOut, keptOutLine, 'secret(s) kept out');
  }
  if (status.live?.question) lines.push(`  waiting for approval: ${displayText(status.live.question.question.detail)} (\`clud watch\` asks; \`clud sync --yes\` allows it)`);
  for (const watch of status.live?.degraded ?? []) lines.push(`  watcher (${watch.side}): ${displayText(watch.reason)}`);
  if (status.git) {
    for (const branch of status.git.branches) lines.push(`git:       ${describeAgentBranch(branch)}`);
    for (const problem of status.git.problems) lines.push(`  ${displayText(problem)}`);
  }
  return lines.join('\n');
}

function keptOutLine(secret: SyncReport['keptOut'][number]): string {
  const line = `  kept out  ${displayPath(secret.path)} on ${secret.side}: ${displayText(secret.reason)} (not copied to the ${secret.side === 'host' ? 'container' : 'host'}; ${ALLOW_HINT})`;
  const otherSide = describeSecretOtherSide(secret);
  if (!otherSide) return line;
  return `${line}\n            ${otherSide}${secret.side === 'host' && secret.otherSide === 'changed' ? ': `clud exec -- cat PATH` shows it' : ''}`;
}

/** Conflicts, problems and secrets kept out that `clud status` lists by path (the rest are counted). */
const LISTED_PATHS = 20;

/**
 * `clud conflicts`' lines for one conflict: what each side holds (size and time, to tell the
 * versions apart without opening them) and the command that settles it. A conflict no report in
 * the history describes (the cycle that found it pushed out by later ones) is named alone.
 */
export function formatConflict(conflict: ConflictInfo, hostPath: string): string[] {
  const lines = [conflictLine(conflict.path, hostPath)];
  if (!conflict.host && !conflict.container) return lines;
  for (const side of ['host', 'container'] as const) lines.push(`            ${`${side}:`.padEnd(11)}${describeSide(conflict[side], conflict.ancestor)}`);
  return lines;
}

function describeSide(entry: Entry | undefined, ancestor: Entry | undefined): string {
  if (!entry) return ancestor ? 'deleted' : 'absent';
  if (entry.kind === 'file') return `file, ${formatBytes(entry.size)}, modified ${new Date(entry.mtimeMs).toISOString()}`;
  if (entry.kind === 'directory') return 'folder';
  if (entry.kind === 'symlink') return `symlink to ${displayPath(entry.target)}`;
  return displayText(entry.reason);
}

/** A conflict's line: its path and the command that settles it, naming the folder unless it is the one the command runs in. */
function conflictLine(path: string, hostPath: string): string {
  const folder = nodePath.resolve() === hostPath ? '' : `${displayPath(hostPath)} `;
  return `  conflict  ${displayPath(path)}  (clud resolve ${folder}${displayPath(path)} --keep host|container|both)`;
}

/** What `clud undo` would do with the step that holds this sync's changes to the host. */
function undoLine({ undoStep, undoStepShared, notUndoable }: SyncReport): string {
  if (notUndoable) return `this sync cannot be undone: ${displayText(notUndoable)}`;
  if (undoStepShared) return `\`clud undo\` takes this sync back with the rest of its step (step ${undoStep}, as \`clud history\` lists it)`;
  return `\`clud undo\` takes this sync back (step ${undoStep})`;
}

/** `hostPath`: the folder synced, which a suggested command names unless it runs there. */
export function formatReport(report: SyncReport, hostPath: string): string {
  const lines = [displayText(describeReport(report))];
  if (report.halted) {
    lines.push('  Nothing was changed. If this side was reset on purpose, run `clud resume` to merge both sides again (nothing is deleted).');
  }
  for (const notice of report.notices) lines.push(`  note: ${displayText(notice)}`);
  // The first line names the safeguard; this one says what became of the cycle and the way out.
  if (report.denied) lines.push('  nothing was changed; run with --yes to allow it');
  if (report.undoStep) lines.push(`  undo: ${undoLine(report)}`);
  for (const change of report.applied.slice(0, 20)) lines.push(`  ${change.action.padEnd(6)} ${change.side === 'host' ? 'host     ' : 'container'} ${displayPath(change.path)}`);
  if (report.appliedCount > 20) lines.push(`  … and ${report.appliedCount - 20} more`);
  // Each list as the report lists it, then how many it only counts (a report too long for a message lists the first ones).
  const more = (list: ReportList, what: string) => {
    const count = report.unlisted?.[list];
    if (count) lines.push(`  … and ${count} more ${what}`);
  };
  for (const conflict of report.conflicts) lines.push(conflictLine(conflict.path, hostPath));
  more('conflicts', 'conflict(s)');
  for (const kept of report.kept) lines.push(`  kept      ${displayPath(kept.path)} (${kept.side} version) at ${displayPath(kept.keptAt)}`);
  more('kept', 'version(s) kept aside');
  for (const skipped of report.skipped) lines.push(`  skipped   ${displayPath(skipped.path)} on ${skipped.side}: ${displayText(skipped.reason)}`);
  more('skipped', 'skipped');
  for (const problem of report.problems) lines.push(`  problem   ${displayPath(problem.path)} on ${problem.side}: ${displayText(problem.reason)}`);
  more('problems', 'problem(s)');
  for (const secret of report.keptOut) lines.push(keptOutLine(secret));
  more('keptOut', 'secret(s) kept out');
  for (const line of report.git?.lines ?? []) lines.push(`  ${displayText(line)}`);
  for (const problem of report.git?.problems ?? []) lines.push(`  problem   ${displayText(problem)}`);
  return lines.join('\n');
}

const LIVE_STATE_TEXT: Record<LiveStatus['state'], string> = {
  starting: 'starting',
  idle: 'synced',
  syncing: 'syncing',
  'waiting-for-approval': 'waiting for approval',
  paused: 'paused',
  halted: 'halted',
};

/** The resident agent's status in one line: "synced (auto-sync continuous)", "2 conflict(s) (auto-sync continuous)", "changes waiting …", "halted: …". */
export function formatLiveStatus(live: LiveStatus): string {
  const count = live.conflicts.length + live.unlisted.conflicts;
  const conflicts = count > 0 ? `${count} conflict(s)` : undefined;
  let state = LIVE_STATE_TEXT[live.state];
  // Not "synced" while the sides differ: a conflict leaves each side its own version until resolved.
  const conflictsAreTheState = live.state === 'idle' && !live.changesWaiting && conflicts !== undefined;
  if (conflictsAreTheState) state = conflicts;
  if (live.state === 'idle' && live.changesWaiting) state = 'changes waiting';
  if (live.state === 'halted' && live.halt) state += ` (${live.halt.side}): ${displayText(live.halt.reason)} — \`clud resume\` merges both sides again, deleting nothing`;
  if (live.state === 'paused') state += live.denied ? ` after a denied safeguard (${displayText(live.denied.detail)}) — \`clud resume\` asks again, \`clud sync --yes\` allows it` : ' — `clud resume` syncs again';
  const details = [`auto-sync ${live.autoSync}`, ...(conflicts && !conflictsAreTheState ? [conflicts] : []), ...(live.failed ? [`the last cycle failed: ${displayText(live.failed.reason)}; the next change or rescan tries again`] : [])];
  return `${state} (${details.join(', ')})`;
}

/**
 * One event of `clud watch` as lines for people, prefixed with the time; a status only when it
 * differs from the last one shown (`previous`), so a burst of identical statuses prints once.
 */
export function formatLiveEvent(event: AgentEvent, time: Date, previous: LiveStatus | undefined, hostPath: string): string | undefined {
  const stamp = time.toISOString().slice(11, 23);
  switch (event.type) {
    case 'status': {
      // "syncing" is said by the cycle's own start line.
      if (event.status.state === 'syncing') return undefined;
      const line = formatLiveStatus(event.status);
      // A version a secret keeps on its side changes no state, and no cycle that finds it is news: said here once.
      const heldKey = (secret: LiveStatus['keptOut'][number]) => (secret.otherSide ? `${secret.side} ${secret.path} ${secret.otherSide}` : undefined);
      const heldBefore = new Set(previous?.keptOut.map(heldKey));
      const newlyHeld = event.status.keptOut.filter((secret) => heldKey(secret) !== undefined && !heldBefore.has(heldKey(secret)));
      const lines = [...(previous && formatLiveStatus(previous) === line ? [] : [`${stamp} ${line}`]), ...newlyHeld.flatMap((secret) => keptOutLine(secret).split('\n').map((text) => `${' '.repeat(stamp.length)}${text}`))];
      return lines.length > 0 ? lines.join('\n') : undefined;
    }
    // A cycle the agent started on its own is shown by what it did, not by its start: the
    // periodic rescan runs every few seconds and nearly always finds nothing, and the watcher
    // reports the sync's own writes, whose cycle finds them already in place. A client's
    // request is shown whatever it did.
    case 'cycle-started':
      return event.kind === 'request' ? `${stamp} syncing (${event.kind} cycle)` : undefined;
    case 'cycle-finished':
      if (event.kind !== 'request' && !isEventful(event.report)) return undefined;
      return formatReport(event.report, hostPath)
        .split('\n')
        .map((line, index) => (index === 0 ? `${stamp} ${event.kind}: ${line}` : `${' '.repeat(stamp.length)} ${line}`))
        .join('\n');
    case 'question':
      return `${stamp} waiting for approval: ${displayText(event.question.detail)}`;
    case 'halted':
      return `${stamp} halted (${event.side}): ${displayText(event.reason)} — nothing was changed; \`clud resume\` merges both sides again, deleting nothing`;
    case 'watcher-degraded':
      return `${stamp} watcher (${event.side}): ${displayText(event.reason)}`;
    case 'git-exchanged':
      return [...event.lines, ...event.problems].map((line) => `${stamp} git: ${displayText(line)}`).join('\n');
  }
}
