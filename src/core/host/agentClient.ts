// The host's side of the control channel. Requests carry ids; each waits for its one result or
// error line, receives progress in between, and fails at once if the agent process goes away.
import type { Readable, Writable } from 'node:stream';
import { CludError } from '../errors';
import { LineSplitter } from '../jsonLines';
import { MAX_LINE_BYTES, ResultSchemas, describeZodError, encodeMessage, parseAgentMessage } from '../protocol';
import type { AgentEvent, Method, ParamsOf, ProgressData, Request, ResultOf, SafeguardQuestionInfo } from '../protocol';

/** Answers a safeguard question the agent asks during a request; without one, the answer is deny. */
export type QuestionHandler = (question: SafeguardQuestionInfo) => Promise<'allow' | 'deny'>;

interface Pending {
  method: Method;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onProgress?: (data: ProgressData) => void;
  onQuestion?: QuestionHandler;
}

export class AgentClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: CludError | undefined;
  private closing = false;
  private stderrTail = '';
  private readonly eventListeners = new Set<(event: AgentEvent) => void>();
  private readonly closeListeners = new Set<(error: CludError) => void>();

  /** `onNotice` receives agent log lines and protocol errors that belong to no request. */
  constructor(
    private readonly toAgent: Writable,
    fromAgent: Readable,
    agentStderr?: Readable,
    private readonly onNotice: (message: string) => void = () => {},
  ) {
    const splitter = new LineSplitter(MAX_LINE_BYTES);
    fromAgent.on('data', (chunk: Buffer) => {
      for (const event of splitter.push(chunk)) {
        if (event.kind === 'overflow') this.onNotice(`agent sent a line of ${event.bytes} bytes; ignored`);
        else this.receive(event.line);
      }
    });
    fromAgent.on('end', () => this.fail());
    fromAgent.on('close', () => this.fail());
    agentStderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-2000);
    });
    toAgent.on('error', (error) => this.fail(error));
  }

  request<M extends Method>(method: M, params: ParamsOf<M>, onProgress?: (data: ProgressData) => void, onQuestion?: QuestionHandler): Promise<ResultOf<M>> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.closing) return Promise.reject(new CludError('agent-exited', `cannot ${method}: the session with the agent is closing`, 'Open a new session.'));
    const id = this.nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject, onProgress, onQuestion });
      this.toAgent.write(encodeMessage({ id, method, params } as Request));
    });
  }

  /** Receives the resident agent's events once this channel has sent `subscribe`; returns the unsubscriber. */
  onEvent(listener: (event: AgentEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Called once when the channel ends (the agent exited, or `close()`), with the error pending requests got. */
  onClose(listener: (error: CludError) => void): () => void {
    if (this.closedError) {
      const error = this.closedError;
      queueMicrotask(() => listener(error));
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Ends the agent's stdin; the agent answers what it has started and exits. */
  close(): void {
    this.closing = true;
    this.toAgent.end();
  }

  get isClosed(): boolean {
    return this.closing || this.closedError !== undefined;
  }

  private receive(line: string): void {
    const parsed = parseAgentMessage(line);
    if (!parsed.ok) {
      this.onNotice(parsed.message);
      return;
    }
    const message = parsed.value;
    if (message.kind === 'log') {
      this.onNotice(`agent ${message.level}: ${message.message}`);
      return;
    }
    if (message.kind === 'event') {
      for (const listener of this.eventListeners) listener(message.event);
      return;
    }
    const pending = message.id === null ? undefined : this.pending.get(message.id);
    if (!pending) {
      this.onNotice(message.kind === 'error' ? `agent error: ${message.message}` : `agent answered unknown request ${message.id}`);
      return;
    }
    if (message.kind === 'progress') {
      pending.onProgress?.(message.data);
      return;
    }
    if (message.kind === 'question') {
      const ask = pending.onQuestion ?? (async () => 'deny' as const);
      void ask(message.question)
        .catch(() => 'deny' as const)
        .then((answer) => this.request('answer', { questionId: message.questionId, answer }))
        .catch((error: unknown) => this.onNotice(`could not answer the agent's question: ${(error as Error).message}`));
      return;
    }
    this.pending.delete(message.id!);
    if (message.kind === 'error') {
      pending.reject(
        message.code === 'sync-halted'
          ? new CludError('sync-halted', message.message)
          : message.code === 'awaiting-approval'
            ? new CludError('awaiting-approval', message.message, 'Answer it first: `clud watch` asks it, `clud sync --yes` allows it. Then try again.')
            // The relay lost the resident agent mid-request: the same as an agent that exited (run it again).
            : message.code === 'agent-restarted'
              ? new CludError('agent-exited', message.message, 'Run the command again; `clud logs` says why the agent stopped.')
              : message.code === 'agent-unavailable'
                ? new CludError('agent-unavailable', message.message, 'Run `clud logs` to see why, or `clud up` to restart the workspace.')
                : new CludError('agent-failed', `agent could not ${pending.method}: ${message.message}`),
      );
      return;
    }
    const result = ResultSchemas[pending.method].safeParse(message.result);
    if (result.success) pending.resolve(result.data);
    else pending.reject(new CludError('agent-failed', `agent sent an invalid ${pending.method} result: ${describeZodError(result.error)}`));
  }

  private fail(cause?: Error): void {
    if (this.closedError) return;
    const detail = cause?.message ?? this.stderrTail.trim().split('\n').slice(-3).join(' ');
    this.closedError = new CludError('agent-exited', `the agent in the container exited${detail ? `: ${detail}` : ''}`, 'Run `clud logs` to see why, or `clud up` to restart the workspace.');
    for (const pending of this.pending.values()) pending.reject(this.closedError);
    this.pending.clear();
    for (const listener of this.closeListeners) listener(this.closedError);
    this.closeListeners.clear();
  }
}
