import { describeAgentBranch } from '../core/git/refNames';
import type { SyncMetrics, SyncReport } from '../core/protocol';
import { describeReport } from '../core/sync/summary';
import type { WorkspaceStatus } from '../core/workspace';

export function formatMetrics(metrics: SyncMetrics): string {
  const lines = [
    `${metrics.direction}: ${metrics.filesTransferred} file(s) transferred, ${metrics.filesDeleted} deleted, ${metrics.bytesTransferred} bytes in ${metrics.durationMs} ms` +
      (metrics.retries ? `, ${metrics.retries} retr${metrics.retries === 1 ? 'y' : 'ies'}` : ''),
  ];
  for (const error of metrics.errors) lines.push(`  error: ${error}`);
  return lines.join('\n');
}

export function formatStatus(status: WorkspaceStatus): string {
  const lines = [`folder:    ${status.hostPath}`, `container: ${status.containerName} (${status.state})`];
  if (status.image) lines.push(`image:     ${status.image}${status.imageCurrent === false ? ' (older than this Clud: `clud up --rebuild` updates it)' : ''}`);
  if (status.init) {
    lines.push(`workspace: ${status.init.phase}${status.init.error ? ` — ${status.init.error}` : ''}`);
    for (const warning of status.init.warnings) lines.push(`  warning: ${warning}`);
    if (status.init.initialSync) lines.push(`  initial copy: ${formatMetrics(status.init.initialSync)}`);
  }
  if (status.git) {
    for (const branch of status.git.branches) lines.push(`git:       ${describeAgentBranch(branch)}`);
    for (const problem of status.git.problems) lines.push(`  ${problem}`);
  }
  return lines.join('\n');
}

export function formatReport(report: SyncReport): string {
  const lines = [describeReport(report)];
  if (report.halted) {
    lines.push('  Nothing was changed. If this side was reset on purpose, run `clud resume` to merge both sides again (nothing is deleted).');
  }
  for (const notice of report.notices) lines.push(`  note: ${notice}`);
  if (report.denied) lines.push(`  stopped by a safeguard: ${report.denied.detail}; the host was rolled back (run with --yes to allow)`);
  if (report.undoStep) lines.push(`  undo: \`clud undo\` takes this sync back (step ${report.undoStep})`);
  for (const change of report.applied.slice(0, 20)) lines.push(`  ${change.action.padEnd(6)} ${change.side === 'host' ? 'host     ' : 'container'} ${change.path}`);
  if (report.appliedCount > 20) lines.push(`  … and ${report.appliedCount - 20} more`);
  for (const conflict of report.conflicts) lines.push(`  conflict  ${conflict.path}  (clud resolve ${conflict.path} --keep host|container|both)`);
  for (const kept of report.kept) lines.push(`  kept      ${kept.path} (${kept.side} version) at ${kept.keptAt}`);
  for (const skipped of report.skipped) lines.push(`  skipped   ${skipped.path} on ${skipped.side}: ${skipped.reason}`);
  for (const problem of report.problems) lines.push(`  problem   ${problem.path} on ${problem.side}: ${problem.reason}`);
  for (const line of report.git?.lines ?? []) lines.push(`  ${line}`);
  for (const problem of report.git?.problems ?? []) lines.push(`  problem   ${problem}`);
  return lines.join('\n');
}
