// A long-lived subscription to the resident agent's events: `subscribe` on one agent session,
// then every `event` to the caller, until closed. When the channel ends (the agent or its relay
// exited, the agent was restarted) it is reopened with backoff and subscribed again, so a client
// sees one stream of statuses across restarts. The first status of every connection comes from
// the `subscribe` result; events that arrive with it are delivered after it.
import type { AgentClient } from '../host/agentClient';
import { CludError, errorMessage } from '../errors';
import type { AgentEvent, LiveStatus, Method, ParamsOf, ResultOf, SafeguardQuestionInfo } from '../protocol';
import { DEFAULT_RECONNECT_POLICY, decideReconnect } from './reconnect';
import type { ConnectionLoss, ReconnectPolicy } from './reconnect';

/** An open agent session (Workspace.openSession). */
export interface LiveSession {
  client: AgentClient;
  close(): Promise<void>;
}

export type ConnectionChange =
  | { state: 'connected'; reconnected: boolean }
  | { state: 'reconnecting'; delayMs: number; error: CludError }
  | { state: 'closed'; error?: CludError };

export interface LiveHandlers {
  /** Every status: the one a (re)subscription returns, then each `status` event. */
  status(status: LiveStatus): void;
  /** Every event, `status` events included, in order. */
  event?(event: AgentEvent): void;
  /**
   * A background cycle's safeguard question, once per question (it shows in statuses too).
   * `undefined`: leave it for another client (`clud sync --yes`, the extension's modal).
   */
  question?(question: SafeguardQuestionInfo, questionId: number): Promise<'allow' | 'deny' | undefined>;
  connection?(change: ConnectionChange): void;
  /** Runs after each (re)subscription, e.g. to send `configure`; a failure is reported, not fatal. */
  connected?(channel: LiveChannel): Promise<void>;
  /** Failures that belong to no caller (an answer or `connected` that failed). */
  notice?(message: string): void;
}

export interface LiveChannelOptions {
  policy?: ReconnectPolicy;
  /** Waits between reopenings; resolves early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export class LiveChannel {
  private session: LiveSession | undefined;
  private readonly closing = new AbortController();
  private readonly finished: Promise<CludError | undefined>;
  /** Question ids asked (or being asked) on the current connection, so each is asked once. */
  private asked = new Set<number>();
  private dropCurrent: (() => void) | undefined;

  constructor(
    private readonly open: () => Promise<LiveSession>,
    private readonly handlers: LiveHandlers,
    private readonly options: LiveChannelOptions = {},
  ) {
    this.finished = this.run();
  }

  /** Resolves when the channel stops for good: undefined after close(), else the error it gave up on. */
  get ended(): Promise<CludError | undefined> {
    return this.finished;
  }

  get connected(): boolean {
    return this.session !== undefined;
  }

  /** A request on the subscribed session; `agent-unavailable` while it is (re)connecting. */
  async request<M extends Method>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const session = this.session;
    if (!session) throw new CludError('agent-unavailable', `cannot ${method}: not connected to the sync agent`, 'Wait a moment: the connection is being reopened.');
    try {
      return await session.client.request(method, params);
    } catch (error) {
      // The agent behind the relay was restarted (or the relay exited): this subscription is dead, open a new one.
      if (error instanceof CludError && error.code === 'agent-exited') this.dropCurrent?.();
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.dropCurrent?.();
    await this.finished;
  }

  private async run(): Promise<CludError | undefined> {
    let attempt = 0;
    let everConnected = false;
    const signal = this.closing.signal;
    const policy = this.options.policy ?? DEFAULT_RECONNECT_POLICY;
    while (!signal.aborted) {
      let loss: CludError;
      let session: LiveSession | undefined;
      try {
        session = await this.open();
        if (signal.aborted) break;
        const since = Date.now();
        loss = await this.serve(session, everConnected);
        everConnected = true;
        if (Date.now() - since >= policy.stableMs) attempt = 0;
      } catch (error) {
        loss = error instanceof CludError ? error : new CludError('agent-failed', errorMessage(error));
      } finally {
        this.session = undefined;
        this.dropCurrent = undefined;
        await session?.close().catch(() => {});
      }
      if (signal.aborted) break;
      const code: ConnectionLoss['code'] = loss.code;
      const decision = decideReconnect(policy, { attempt, code, everConnected });
      if (decision.action === 'give-up') {
        this.handlers.connection?.({ state: 'closed', error: loss });
        return loss;
      }
      this.handlers.connection?.({ state: 'reconnecting', delayMs: decision.delayMs, error: loss });
      await (this.options.sleep ?? abortableSleep)(decision.delayMs, signal);
      attempt++;
    }
    this.handlers.connection?.({ state: 'closed' });
    return undefined;
  }

  /** Subscribes on `session` and delivers until the channel ends; resolves with why it ended. */
  private async serve(session: LiveSession, reconnected: boolean): Promise<CludError> {
    let subscribed = false;
    const early: AgentEvent[] = [];
    const stopEvents = session.client.onEvent((event) => {
      if (subscribed) this.deliver(event);
      else early.push(event);
    });
    try {
      const ended = new Promise<CludError>((resolve) => {
        session.client.onClose(resolve);
        this.dropCurrent = () => resolve(new CludError('agent-exited', 'the sync agent was restarted'));
      });
      const status = await Promise.race([session.client.request('subscribe', {}), ended.then((error) => Promise.reject(error))]);
      this.asked = new Set();
      this.session = session;
      subscribed = true;
      this.handlers.connection?.({ state: 'connected', reconnected });
      this.deliverStatus(status);
      for (const event of early.splice(0)) this.deliver(event);
      if (this.handlers.connected) {
        this.handlers.connected(this).catch((error: unknown) => this.handlers.notice?.(errorMessage(error)));
      }
      return await ended;
    } finally {
      stopEvents();
    }
  }

  private deliver(event: AgentEvent): void {
    this.handlers.event?.(event);
    if (event.type === 'status') this.deliverStatus(event.status, false);
    else if (event.type === 'question') this.ask(event.questionId, event.question);
  }

  private deliverStatus(status: LiveStatus, asEvent = true): void {
    if (asEvent) this.handlers.event?.({ type: 'status', status });
    this.handlers.status(status);
    if (status.question) this.ask(status.question.questionId, status.question.question);
  }

  private ask(questionId: number, question: SafeguardQuestionInfo): void {
    if (!this.handlers.question || this.asked.has(questionId)) return;
    this.asked.add(questionId);
    void this.handlers
      .question(question, questionId)
      .catch(() => 'deny' as const)
      .then(async (answer) => {
        if (answer === undefined) return;
        await this.request('answer', { questionId, answer });
      })
      // Another client may have answered first; the agent then has no such open question.
      .catch((error: unknown) => this.handlers.notice?.(`could not answer the agent's question: ${errorMessage(error)}`));
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
