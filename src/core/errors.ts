/**
 * Errors the user can act on. `code` is stable (tests and `--json` output match on it); `message`
 * is one line that says what happened; `hint` says what to do next.
 */
export type CludErrorCode =
  | 'bad-input'
  | 'folder-missing'
  | 'docker-unreachable'
  | 'name-taken'
  | 'not-running'
  | 'image-build-failed'
  | 'invalid-config'
  | 'agent-failed'
  | 'agent-exited'
  | 'agent-unavailable'
  | 'sync-failed'
  | 'sync-halted'
  | 'awaiting-approval'
  | 'unsynced-changes'
  | 'timeout'
  | 'port-taken'
  | 'ui-failed'
  | 'no-ui'
  | 'no-api-key';

export class CludError extends Error {
  constructor(
    readonly code: CludErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CludError';
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
