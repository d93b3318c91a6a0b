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

/**
 * The error again, its message prefixed with what failed (`undo log`, `sync state`): a full disk
 * is then known to be that folder's. The system's code (ENOSPC) stays, for the callers that
 * decide by it.
 */
export function prefixedError(prefix: string, error: unknown): Error & { code?: string } {
  const { message, code } = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as { message?: unknown; code?: string };
  return Object.assign(new Error(`${prefix}: ${String(message)}`), { code });
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
