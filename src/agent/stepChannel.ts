// The narrow channel's server: a Unix socket (STEP_SOCKET_PATH) on which the workspace user's
// processes (Claude Code's hooks, the Clud MCP server) mark step boundaries and ask for the few
// things StepRequest allows. JSON Lines, one reply per request, in order per connection. The
// resident agent serves it with its own StepOperations; nothing here touches either tree.
import { chmod, lstat, unlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { LineSplitter } from '../core/jsonLines';
import { MAX_STEP_LINE_BYTES, parseStepRequest } from '../core/protocol';
import type { StepErrorCode, StepMethod, StepReply, StepRequest, StepResultOf } from '../core/protocol';
import { errorMessage } from '../core/errors';
import { RequestError } from './server';

/** What the resident agent does for each narrow-channel request. */
export type StepOperations = {
  [M in StepMethod]: (params: Extract<StepRequest, { method: M }>['params']) => Promise<StepResultOf<M>>;
};

/** A failure with a code of the narrow channel (`refused`: a barrier, a running step, a halt). */
export class StepChannelError extends Error {
  constructor(
    readonly code: StepErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StepChannelError';
  }
}

export interface StepChannelServer {
  server: Server;
  close(): Promise<void>;
}

export interface StepChannelOptions {
  /** The socket's mode (default 0666: any process of the container may connect). */
  mode?: number;
  /** Connections served at once; more are refused by the kernel's backlog and Node (default 32). */
  maxConnections?: number;
}

/**
 * Listens on `socketPath` (a stale socket left by a killed agent is replaced; anything else there
 * is an error) and answers each request with `operations`. Resolves once listening.
 */
export async function serveStepChannel(socketPath: string, operations: StepOperations, options: StepChannelOptions = {}): Promise<StepChannelServer> {
  const existing = await lstat(socketPath).catch(() => undefined);
  if (existing?.isSocket()) await unlink(socketPath);
  else if (existing) throw new Error(`${socketPath} exists and is not a socket`);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(socket, operations);
  });
  server.maxConnections = options.maxConnections ?? 32;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(socketPath, options.mode ?? 0o666);
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function serveConnection(socket: Socket, operations: StepOperations): void {
  const splitter = new LineSplitter(MAX_STEP_LINE_BYTES);
  let queue = Promise.resolve();
  const send = (reply: StepReply) => {
    if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(reply) + '\n');
  };
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    for (const event of splitter.push(chunk)) {
      if (event.kind === 'overflow') {
        send({ kind: 'error', id: null, code: 'line-too-long', message: `request line of ${event.bytes} bytes is over the ${MAX_STEP_LINE_BYTES}-byte limit` });
        continue;
      }
      // One at a time per connection, so replies come in the order asked.
      queue = queue.then(() => answer(event.line, operations).then(send));
    }
  });
}

async function answer(line: string, operations: StepOperations): Promise<StepReply> {
  const parsed = parseStepRequest(line);
  if (!parsed.ok) return { kind: 'error', id: parsed.id, code: parsed.code, message: parsed.message };
  const request = parsed.value;
  try {
    const operation = operations[request.method] as (params: unknown) => Promise<unknown>;
    return { kind: 'result', id: request.id, result: await operation(request.params) };
  } catch (error) {
    // The resident agent's refusal to queue behind a question nobody answered is a refusal here too.
    const code = error instanceof StepChannelError ? error.code : error instanceof RequestError && error.code === 'awaiting-approval' ? 'refused' : 'internal';
    return { kind: 'error', id: request.id, code, message: errorMessage(error).split('\n')[0]! };
  }
}
