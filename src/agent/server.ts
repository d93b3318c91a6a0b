// The agent's side of the control channel: reads JSON Lines requests, answers each with exactly
// one result or error line, and sends progress in between. It writes nothing else to `output`.
import type { Readable, Writable } from 'node:stream';
import { LineSplitter } from '../core/jsonLines';
import { MAX_LINE_BYTES, encodeMessage, parseRequest } from '../core/protocol';
import type { AgentEvent, AgentMessage, ErrorCode, Method, ProgressData, Request, ResultOf, SafeguardQuestionInfo } from '../core/protocol';
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
  /**
   * Aborted when the channel's input ends: the host went away (the CLI was interrupted or died,
   * which closes the `docker exec`'s stdin). Long work stops at its next safe point.
   */
  signal: AbortSignal;
  /** Asks the host (the user) and waits for the answer; see the `question` message. */
  ask(question: SafeguardQuestionInfo): Promise<'allow' | 'deny'>;
  /** Sends an event on this channel (to a client that subscribed). */
  sendEvent(event: AgentEvent): void;
}

export interface ChannelOptions {
  /** The longest request line read (default MAX_LINE_BYTES); a result is never longer than MAX_LINE_BYTES, what a client reads. */
  maxLineBytes?: number;
  /**
   * An `answer` to a question this channel did not ask: a question the resident agent asked all
   * its clients (a background cycle's). Returns whether such a question was open.
   */
  answerElsewhere?: (questionId: number, answer: 'allow' | 'deny') => boolean;
}

/** `answer` is the channel's own: it settles a question of another request. */
export type Handlers = {
  [M in Exclude<Method, 'answer'>]: (params: Extract<Request, { method: M }>['params'], context: RequestContext) => Promise<ResultOf<M>>;
};

/** Serves requests until `input` ends; resolves once every started request has been answered. */
export function serveChannel(input: Readable, output: Writable, handlers: Handlers, options: ChannelOptions = {}): Promise<void> {
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const splitter = new LineSplitter(maxLineBytes);
  const pending = new Set<Promise<void>>();
  const questions = new Map<number, (answer: 'allow' | 'deny') => void>();
  const hostGone = new AbortController();
  let nextQuestionId = 1;
  const send = (message: AgentMessage) => {
    if (output.writableEnded) return;
    const line = encodeMessage(message);
    // A client drops a line over its limit, and a request whose result it dropped would wait for
    // it forever: the request gets an error that says so instead.
    if (message.kind !== 'result') {
      output.write(line);
      return;
    }
    const bytes = Buffer.byteLength(line) - 1;
    output.write(bytes <= MAX_LINE_BYTES ? line : encodeMessage({ kind: 'error', id: message.id, code: 'result-too-large', message: `its result is ${bytes} bytes, over the ${MAX_LINE_BYTES}-byte limit of one message` }));
  };

  const handle = (line: string) => {
    const parsed = parseRequest(line);
    if (!parsed.ok) {
      send({ kind: 'error', id: parsed.id, code: parsed.code, message: parsed.message });
      return;
    }
    const request = parsed.value;
    if (request.method === 'answer') {
      const settle = questions.get(request.params.questionId);
      questions.delete(request.params.questionId);
      settle?.(request.params.answer);
      const settled = settle !== undefined || options.answerElsewhere?.(request.params.questionId, request.params.answer) === true;
      send(settled ? { kind: 'result', id: request.id, result: {} } : { kind: 'error', id: request.id, code: 'bad-request', message: `no open question ${request.params.questionId}` });
      return;
    }
    // One answer per question within a request: a request is first asked the question a waiting
    // background cycle holds (ResidentAgent.job), and its own cycle then meets the same change.
    const answers = new Map<string, Promise<'allow' | 'deny'>>();
    const context: RequestContext = {
      signal: hostGone.signal,
      sendEvent: (event) => send({ kind: 'event', event }),
      progress: (data) => send({ kind: 'progress', id: request.id, data }),
      ask: (question) => {
        const key = JSON.stringify([question.kind, question.path, question.detail]);
        let answer = answers.get(key);
        if (!answer) {
          answer = new Promise((resolve) => {
            const questionId = nextQuestionId++;
            questions.set(questionId, resolve);
            send({ kind: 'question', id: request.id, questionId, question });
          });
          answers.set(key, answer);
        }
        return answer;
      },
    };
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
    const end = () => {
      hostGone.abort();
      // Nobody is left to answer: every open question is denied, the safe answer.
      for (const settle of questions.values()) settle('deny');
      questions.clear();
      void Promise.allSettled([...pending]).then(() => resolve());
    };
    input.on('end', end);
    // A socket that breaks (the client was killed) ends the channel as well as one that ends.
    input.on('error', end);
  });
}
