import type { SyncMetrics } from '../core/protocol';
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
  return lines.join('\n');
}
