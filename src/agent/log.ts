// The agent's container log (`clud logs`), shared by start-up, the sync handlers and compaction.

export function log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  // One JSON object per line, never on stdout's protocol channel.
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, source: 'init', message, ...fields }) + '\n');
}
