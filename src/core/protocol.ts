// The one definition of every message between the host (CLI, extension) and the in-container
// agent. Both sides import this module and validate every line with it, so they cannot disagree
// about a message. Wire format: JSON Lines over the stdio of one `docker exec` per session.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;
/** A line longer than this is rejected before it is parsed (the agent and host both enforce it). */
export const MAX_LINE_BYTES = 1024 * 1024;

export const SyncDirection = z.enum(['push', 'pull']);
export type SyncDirection = z.infer<typeof SyncDirection>;

/** What one push or pull did. Returned by the agent, printed by `clud --json`, shown in the UI. */
export const SyncMetrics = z.object({
  direction: SyncDirection,
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  filesTransferred: z.number().int().nonnegative(),
  filesDeleted: z.number().int().nonnegative(),
  bytesTransferred: z.number().int().nonnegative(),
  errors: z.array(z.string()),
  retries: z.number().int().nonnegative(),
  /** Relative POSIX paths that changed on the target (capped; see `changedPathsTruncated`). */
  changedPaths: z.array(z.string()),
  changedPathsTruncated: z.boolean(),
});
export type SyncMetrics = z.infer<typeof SyncMetrics>;

export const SyncOptions = z.object({
  /** Extra exclude patterns (rsync filter syntax, like .gitignore lines) on top of the built-ins. */
  excludes: z.array(z.string()).default([]),
  /** Transient-failure retries (rsync exit codes that mean I/O or timeout trouble). */
  retries: z.number().int().min(0).max(10).default(3),
  /** Report what would change without changing anything (used before removing a container). */
  dryRun: z.boolean().default(false),
});
export type SyncOptions = z.infer<typeof SyncOptions>;

export const ProgressData = z.object({
  phase: z.string(),
  message: z.string(),
  /** Files handled so far in this operation, when known. */
  files: z.number().int().nonnegative().optional(),
});
export type ProgressData = z.infer<typeof ProgressData>;

/**
 * The agent `init` process's state, written to a file in the container so that it can be read
 * without an exec (before the workspace user exists) and by any later agent session.
 */
export const InitPhase = z.enum(['starting', 'syncing', 'ready', 'failed']);
export type InitPhase = z.infer<typeof InitPhase>;
export const InitState = z.object({
  phase: InitPhase,
  updatedAt: z.string(),
  /** Human-readable reason when phase is "failed". */
  error: z.string().optional(),
  /** The UID/GID the workspace user was given (the owner of /host). */
  workspaceUid: z.number().int().optional(),
  workspaceGid: z.number().int().optional(),
  warnings: z.array(z.string()).default([]),
  initialSync: SyncMetrics.optional(),
  attempts: z.number().int().nonnegative().default(0),
  /** Where a running initial copy is, for the host's progress display. */
  progress: ProgressData.optional(),
});
export type InitState = z.infer<typeof InitState>;

export const AgentStatus = z.object({
  agentVersion: z.string(),
  protocolVersion: z.number().int(),
  uid: z.number().int(),
  gid: z.number().int(),
  cwd: z.string(),
  init: InitState.optional(),
});
export type AgentStatus = z.infer<typeof AgentStatus>;

/** A snapshot entry (see src/core/sync/entry.ts, which these schemas must match). */
export const EntrySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), size: z.number().int().nonnegative(), mtimeMs: z.number(), mode: z.number().int(), hash: z.string() }),
  z.object({ kind: z.literal('directory'), mode: z.number().int() }),
  z.object({ kind: z.literal('symlink'), target: z.string() }),
  z.object({ kind: z.literal('untracked'), reason: z.string() }),
]);
export const SyncPolicy = z.enum(['two-way-safe', 'host-wins', 'container-wins', 'newer-wins', 'push', 'pull']);
export const SyncSide = z.enum(['host', 'container']);
export const ConflictSchema = z.object({ path: z.string(), ancestor: EntrySchema.optional(), host: EntrySchema.optional(), container: EntrySchema.optional() });
export type ConflictInfo = z.infer<typeof ConflictSchema>;
const PathOnSide = z.object({ path: z.string(), side: SyncSide });

/** What one three-way sync cycle did. */
export const SyncReport = z.object({
  /** Correlation id of this sync, in logs and in the kept-versions folder name. */
  id: z.string(),
  policy: SyncPolicy,
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  halted: z.object({ side: SyncSide, reason: z.string() }).optional(),
  /** Every change carried out (the list is capped at 1,000; `appliedCount` is the total). */
  applied: z.array(PathOnSide.extend({ action: z.enum(['create', 'update', 'delete']) })),
  appliedCount: z.number().int().nonnegative(),
  skipped: z.array(PathOnSide.extend({ reason: z.string() })),
  conflicts: z.array(ConflictSchema),
  problems: z.array(PathOnSide.extend({ reason: z.string() })),
  kept: z.array(PathOnSide.extend({ keptAt: z.string() })),
  bytesCopied: z.number().int().nonnegative(),
  scanned: z.object({ hostFiles: z.number().int(), containerFiles: z.number().int(), hashedFiles: z.number().int() }),
});
export type SyncReport = z.infer<typeof SyncReport>;

export const SyncRequestParams = z.object({
  policy: SyncPolicy.default('two-way-safe'),
  excludes: z.array(z.string()).default([]),
  /** Forget a safety halt and the last agreed state, then merge both sides without deleting anything. */
  reset: z.boolean().default(false),
});
export type SyncRequestParams = z.infer<typeof SyncRequestParams>;

const Id = z.number().int().nonnegative();
const Empty = z.object({}).strict();

/** Host → agent. One schema per method; `params` and the result schema below go together. */
export const Request = z.discriminatedUnion('method', [
  z.object({ id: Id, method: z.literal('hello'), params: z.object({ protocolVersion: z.number().int() }) }),
  z.object({ id: Id, method: z.literal('status'), params: Empty }),
  z.object({ id: Id, method: z.literal('push'), params: SyncOptions }),
  z.object({ id: Id, method: z.literal('pull'), params: SyncOptions }),
  z.object({ id: Id, method: z.literal('retryInitialSync'), params: SyncOptions }),
]);
export type Request = z.infer<typeof Request>;
export type Method = Request['method'];
export type ParamsOf<M extends Method> = Extract<z.input<typeof Request>, { method: M }>['params'];

export const ResultSchemas = {
  hello: z.object({ protocolVersion: z.number().int(), agentVersion: z.string() }),
  status: AgentStatus,
  push: SyncMetrics,
  pull: SyncMetrics,
  retryInitialSync: InitState,
} satisfies Record<Method, z.ZodType>;
export type ResultOf<M extends Method> = z.infer<(typeof ResultSchemas)[M]>;

export const ErrorCode = z.enum(['bad-request', 'line-too-long', 'unknown-method', 'sync-failed', 'sync-halted', 'internal']);
export type ErrorCode = z.infer<typeof ErrorCode>;


/** Agent → host. `id` is null only when a request was too broken to read its id. */
export const AgentMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('result'), id: Id, result: z.unknown() }),
  z.object({ kind: z.literal('error'), id: Id.nullable(), code: ErrorCode, message: z.string() }),
  z.object({ kind: z.literal('progress'), id: Id, data: ProgressData }),
  z.object({ kind: z.literal('log'), level: z.enum(['debug', 'info', 'warn', 'error']), message: z.string() }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; id: number | null; code: ErrorCode; message: string };

/** Parses one request line on the agent side; never throws. */
export function parseRequest(line: string): Parsed<Request> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, id: null, code: 'bad-request', message: 'request is not valid JSON' };
  }
  const id = readId(json);
  const method = typeof json === 'object' && json !== null ? (json as { method?: unknown }).method : undefined;
  if (typeof method === 'string' && !Object.hasOwn(ResultSchemas, method)) {
    return { ok: false, id, code: 'unknown-method', message: `unknown method "${method}"` };
  }
  const parsed = Request.safeParse(json);
  if (!parsed.success) return { ok: false, id, code: 'bad-request', message: describeZodError(parsed.error) };
  return { ok: true, value: parsed.data };
}

/** Parses one agent line on the host side; never throws. */
export function parseAgentMessage(line: string): Parsed<AgentMessage> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, id: null, code: 'bad-request', message: `agent sent a line that is not JSON: ${line.slice(0, 120)}` };
  }
  const parsed = AgentMessage.safeParse(json);
  if (!parsed.success) return { ok: false, id: readId(json), code: 'bad-request', message: describeZodError(parsed.error) };
  return { ok: true, value: parsed.data };
}

export function encodeMessage(message: Request | AgentMessage): string {
  return JSON.stringify(message) + '\n';
}

export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(message)'}: ${issue.message}`)
    .join('; ');
}

function readId(json: unknown): number | null {
  const id = typeof json === 'object' && json !== null ? (json as { id?: unknown }).id : undefined;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : null;
}
