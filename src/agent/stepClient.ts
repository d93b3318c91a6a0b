// The narrow channel's client, used by `agent hook` and `agent mcp` as the workspace user: one
// connection per request, a deadline on each, every reply validated against StepResultSchemas.
import { connect } from 'node:net';
import { LineSplitter } from '../core/jsonLines';
import { MAX_STEP_LINE_BYTES, StepReply, StepResultSchemas } from '../core/protocol';
import type { StepErrorCode, StepMethod, StepParamsOf, StepResultOf } from '../core/protocol';
import { STEP_SOCKET_ENV, STEP_SOCKET_PATH } from '../core/containerLayout';

export class StepRequestFailed extends Error {
  constructor(
    readonly code: StepErrorCode | 'timeout',
    message: string,
  ) {
    super(message);
    this.name = 'StepRequestFailed';
  }
}

/** The socket: STEP_SOCKET_PATH, or CLUD_STEP_SOCKET (tests). */
export function stepSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return env[STEP_SOCKET_ENV] || STEP_SOCKET_PATH;
}

/** Sends one request and waits for its reply, at most `timeoutMs`. Rejects with StepRequestFailed. */
export function requestStep<M extends StepMethod>(method: M, params: StepParamsOf<M>, options: { socketPath?: string; timeoutMs?: number } = {}): Promise<StepResultOf<M>> {
  const socketPath = options.socketPath ?? stepSocketPath();
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const splitter = new LineSplitter(MAX_STEP_LINE_BYTES);
    let settled = false;
    const finish = (error: Error | undefined, value?: StepResultOf<M>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new StepRequestFailed('timeout', `the sync agent did not answer ${method} within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(new StepRequestFailed('agent-unavailable', `the sync agent is not reachable at ${socketPath} (${error.code ?? error.message})`)),
    );
    socket.on('close', () => finish(new StepRequestFailed('agent-unavailable', `the sync agent closed the channel before answering ${method}`)));
    socket.on('connect', () => socket.write(JSON.stringify({ id: 1, method, params }) + '\n'));
    socket.on('data', (chunk: Buffer) => {
      for (const event of splitter.push(chunk)) {
        if (event.kind !== 'line') continue;
        let reply;
        try {
          reply = StepReply.parse(JSON.parse(event.line));
        } catch {
          finish(new StepRequestFailed('internal', `the sync agent sent a reply that is not one: ${event.line.slice(0, 120)}`));
          return;
        }
        if (reply.kind === 'error') {
          finish(new StepRequestFailed(reply.code, reply.message));
          return;
        }
        const result = StepResultSchemas[method].safeParse(reply.result);
        if (!result.success) finish(new StepRequestFailed('internal', `the sync agent's ${method} result is not valid`));
        else finish(undefined, result.data as StepResultOf<M>);
      }
    });
  });
}
