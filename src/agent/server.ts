// The agent's side of the control channel: reads JSON Lines requests, answers each with exactly
// one result or error line, and sends progress in between. It writes nothing else to `output`.
import type { Readable, Writable } from 'node:stream';
import { LineSplitter } from '../core/jsonLines';
import { MAX_LINE_BYTES, encodeMessage, parseRequest } from '../core/protocol';
import type { AgentMessage, ErrorCode, Method, ProgressData, Request, ResultOf } from '../core/protocol';
import { errorMessage } from '../core/errors';

/** A failure the agent reports with a specific protocol code instead of "internal". */
export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RequestContext {
  progress(data: ProgressData): void;
}

export type Handlers = {
  [M in Method]: (params: Extract<Request, { method: M }>['params'], context: RequestContext) => Promise<ResultOf<M>>;
};

/** Serves requests until `input` ends; resolves once every started request has been answered. */
export function serveChannel(input: Readable, output: Writable, handlers: Handlers, maxLineBytes = MAX_LINE_BYTES): Promise<void> {
  const splitter = new LineSplitter(maxLineBytes);
  const pending = new Set<Promise<void>>();
  const send = (message: AgentMessage) => {
    if (!output.writableEnded) output.write(encodeMessage(message));
  };

  const handle = (line: string) => {
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      send({ kind: 'error', id: parsed.id, code: parsed.code, message: parsed.message });
      return;
    }
    const request = parsed.value;
    const context: RequestContext = { progress: (data) => send({ kind: 'progress', id: request.id, data }) };
    const handler = handlers[request.method] as (params: unknown, context: RequestContext) => Promise<unknown>;
    const work = handler(request.params, context)
      .then((result) => send({ kind: 'result', id: request.id, result }))
      .catch((error: unknown) => send({ kind: 'error', id: request.id, code: error instanceof RequestError ? error.code : 'internal', message: errorMessage(error) }))
      .finally(() => pending.delete(work));
    pending.add(work);
  };

  return new Promise((resolve) => {
    input.on('data', (chunk: Buffer | string) => {
      for (const event of splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) {
        if (event.kind === 'overflow') {
          send({ kind: 'error', id: null, code: 'line-too-long', message: `request line of ${event.bytes} bytes exceeds the ${maxLineBytes}-byte limit` });
        } else {
          handle(event.line);
        }
      }
    });
    input.on('end', () => {
      void Promise.allSettled([...pending]).then(() => resolve());
    });
  });
}
