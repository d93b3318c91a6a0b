// `agent mcp`: the Clud MCP server Claude Code starts (as the workspace user) beside filesystem,
// git and fetch. Hand-written JSON-RPC 2.0 over stdio, newline-delimited as MCP's stdio transport
// is: initialize, ping, tools/list and tools/call. Each tool is one narrow-channel request, so the
// coding agent reaches the sync agent through nothing wider than the hooks do.
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { LineSplitter } from '../core/jsonLines';
import { errorMessage } from '../core/errors';
import type { StepHistoryEntry } from '../core/protocol';
import { requestStep, StepRequestFailed } from './stepClient';
import type { StepRequester } from './hook';
import { AGENT_VERSION } from './version';

/** MCP revisions this server speaks; it answers an unknown one with the newest. */
const PROTOCOL_VERSIONS = ['2025-06-18', '2025-03-26', '2024-11-05'];

const RPC = { parseError: -32700, invalidRequest: -32600, methodNotFound: -32601, invalidParams: -32602, internal: -32603 } as const;

interface Tool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  arguments: z.ZodType;
  /** The tool's answer, as text only (no structuredContent), so every client shows the model the same sentences. */
  run(args: never, request: StepRequester): Promise<string>;
}

const noArguments = { type: 'object', properties: {}, additionalProperties: false };

const describeStep = (step: Pick<StepHistoryEntry, 'kind' | 'label' | 'files'>): string =>
  `${step.kind === 'sync' ? 'background sync' : step.kind}${step.label ? ` "${step.label}"` : ''} (${step.files} path(s))`;

export const MCP_TOOLS: Tool[] = [
  {
    name: 'status',
    description: "The workspace sync's state: whether it is idle, syncing, paused or halted, whether changes wait to reach the user's folder, the conflicts (paths edited on both sides), and the step being recorded.",
    inputSchema: noArguments,
    arguments: z.object({}).strict(),
    async run(_args, request) {
      const status = await request('status', {});
      const lines = [`sync: ${status.state} (auto-sync ${status.autoSync})`, status.changesWaiting ? 'changes are waiting to cross' : 'nothing waits to cross'];
      if (status.halt) lines.push(`halted (${status.halt.side}): ${status.halt.reason}`);
      lines.push(status.conflicts.length ? `conflicts (both sides changed; the user decides): ${status.conflicts.join(', ')}` : 'no conflicts');
      if (status.openStep) lines.push(`recording: ${status.openStep.kind} "${status.openStep.label}"`);
      return lines.join('\n');
    },
  },
  {
    name: 'sync_now',
    description: "Carry every change waiting in /workspace to the user's folder now and wait until it is done, so the user sees your work. Nothing is carried while the user has paused auto-sync or a change waits for their approval: your changes then wait in /workspace.",
    inputSchema: noArguments,
    arguments: z.object({}).strict(),
    async run(_args, request) {
      const result = await request('syncNow', {}, { timeoutMs: 240_000 });
      if (result.held) return `not synced: ${result.held}; your changes wait in /workspace until the user lets the sync go on`;
      const lines = [`synced: ${result.applied} change(s) carried`];
      if (result.conflicts.length) lines.push(`conflicts (left for the user): ${result.conflicts.join(', ')}`);
      if (result.skipped) lines.push(`${result.skipped} change(s) skipped (a file changed meanwhile); the next sync carries them`);
      if (result.halted) lines.push(`the sync is halted: ${result.halted}`);
      return lines.join('\n');
    },
  },
  {
    name: 'checkpoint',
    description: 'Mark a restore point: the changes made since the last step end here, as one undoable step under this label (e.g. "before the refactor").',
    inputSchema: { type: 'object', properties: { label: { type: 'string', minLength: 1, maxLength: 200, description: 'a short name for the restore point' } }, required: ['label'], additionalProperties: false },
    arguments: z.object({ label: z.string().trim().min(1).max(200) }).strict(),
    async run(args: { label: string }, request) {
      const result = await request('checkpoint', { label: args.label }, { timeoutMs: 240_000 });
      const text = result.steps > 0 ? `checkpoint "${result.closed.label}": the changes since the last step are one undoable step` : `checkpoint "${result.closed.label}": nothing changed since the last step, so no step was recorded`;
      return text;
    },
  },
  {
    name: 'history',
    description: "The undoable steps of the user's folder, newest first: each Claude Code turn, command and checkpoint with its label, its file count, and whether it can still be undone.",
    inputSchema: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 50, description: 'at most this many steps (default 10)' } }, additionalProperties: false },
    arguments: z.object({ limit: z.number().int().min(1).max(50).optional() }).strict(),
    async run(args: { limit?: number }, request) {
      const { steps } = await request('history', {});
      const shown = steps.slice(0, args.limit ?? 10);
      const lines = shown.map((step, index) => `${index + 1}. ${describeStep(step)} at ${step.closedAt}${step.undoable ? '' : step.barriers ? ` (blocked: the user changed ${step.barriers} of its file(s) since)` : ' (cannot be undone)'}`);
      return lines.length ? lines.join('\n') : 'no undoable steps';
    },
  },
  {
    name: 'undo_last_step',
    description: "Undo the newest step (your last finished turn, command or checkpoint) in the user's folder and in /workspace. Refused while that step is still running, and where the user has changed one of its files since (their edits win).",
    inputSchema: noArguments,
    arguments: z.object({}).strict(),
    async run(_args, request) {
      const { undone } = await request('undoLastStep', {}, { timeoutMs: 240_000 });
      return `undid the ${describeStep(undone)}; /workspace is back as it was before it`;
    },
  },
];

type JsonRpcId = string | number | null;

/** Serves MCP on `input`/`output` until `input` ends. */
export async function runMcpServer(input: Readable, output: Writable, request: StepRequester = requestStep): Promise<void> {
  const splitter = new LineSplitter(1024 * 1024);
  const send = (message: Record<string, unknown>) => {
    if (!output.writableEnded) output.write(JSON.stringify({ jsonrpc: '2.0', ...message }) + '\n');
  };
  const fail = (id: JsonRpcId, code: number, message: string) => send({ id, error: { code, message } });
  let queue = Promise.resolve();
  await new Promise<void>((resolve) => {
    input.on('data', (chunk: Buffer) => {
      for (const event of splitter.push(chunk)) {
        if (event.kind === 'overflow') fail(null, RPC.invalidRequest, 'message over 1 MiB');
        else queue = queue.then(() => handle(event.line, request, send, fail));
      }
    });
    input.on('end', () => void queue.then(resolve));
    input.on('error', () => resolve());
  });
}

async function handle(line: string, request: StepRequester, send: (message: Record<string, unknown>) => void, fail: (id: JsonRpcId, code: number, message: string) => void): Promise<void> {
  let message: { id?: JsonRpcId; method?: unknown; params?: unknown };
  try {
    message = JSON.parse(line) as typeof message;
  } catch {
    return fail(null, RPC.parseError, 'not valid JSON');
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return fail(null, RPC.invalidRequest, 'a request is a JSON object');
  const id = typeof message.id === 'string' || typeof message.id === 'number' ? message.id : null;
  const isNotification = !('id' in message);
  if (typeof message.method !== 'string') {
    // A response from the client (we never ask it anything), or garbage.
    if (!isNotification && !('result' in message) && !('error' in message)) fail(id, RPC.invalidRequest, 'no method');
    return;
  }
  if (isNotification) return; // notifications/initialized, notifications/cancelled: nothing to answer
  const params = (typeof message.params === 'object' && message.params !== null ? message.params : {}) as Record<string, unknown>;
  switch (message.method) {
    case 'initialize': {
      const asked = typeof params.protocolVersion === 'string' ? params.protocolVersion : '';
      return send({
        id,
        result: {
          protocolVersion: PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0],
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: 'clud', version: AGENT_VERSION },
          instructions: "Clud syncs /workspace with the user's folder and records every change to it as an undoable step (each of your turns is one). Use sync_now before telling the user your work is there, checkpoint before a risky change, and undo_last_step to take back your last finished turn.",
        },
      });
    }
    case 'ping':
      return send({ id, result: {} });
    case 'tools/list':
      return send({ id, result: { tools: MCP_TOOLS.map(({ name, description, inputSchema }) => ({ name, description, inputSchema })) } });
    case 'tools/call': {
      const tool = MCP_TOOLS.find((candidate) => candidate.name === params.name);
      if (!tool) return fail(id, RPC.invalidParams, `unknown tool ${JSON.stringify(params.name)}; the tools are ${MCP_TOOLS.map((candidate) => candidate.name).join(', ')}`);
      const args = tool.arguments.safeParse(params.arguments ?? {});
      if (!args.success) return fail(id, RPC.invalidParams, `invalid arguments for ${tool.name}: ${args.error.issues.map((issue) => `${issue.path.join('.') || '(arguments)'}: ${issue.message}`).join('; ')}`);
      try {
        const text = await tool.run(args.data as never, request);
        return send({ id, result: { content: [{ type: 'text', text }], isError: false } });
      } catch (error) {
        // A tool that ran and failed is a result the model reads, not a protocol error.
        const code = error instanceof StepRequestFailed ? error.code : 'internal';
        const hint = code === 'agent-unavailable' ? " The sync agent is not running; the user's Clud shows why." : '';
        return send({ id, result: { content: [{ type: 'text', text: `${tool.name} failed (${code}): ${errorMessage(error)}.${hint}` }], isError: true } });
      }
    }
    default:
      return fail(id, RPC.methodNotFound, `unknown method ${JSON.stringify(message.method)}`);
  }
}
