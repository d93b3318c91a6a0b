// The host's live subscription to the resident agent (src/core/live/channel.ts) against agents
// written here, speaking the real protocol over PassThrough streams through a real AgentClient:
// subscribe, events in order, reconnection with backoff when the agent exits or is restarted,
// giving up when there is no resident agent or no container, and safeguard questions asked once.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { AgentClient } from '../../src/core/host/agentClient';
import { CludError } from '../../src/core/errors';
import { LineSplitter } from '../../src/core/jsonLines';
import { LiveChannel } from '../../src/core/live/channel';
import type { ConnectionChange, LiveSession } from '../../src/core/live/channel';
import { DEFAULT_RECONNECT_POLICY, backoffDelay, decideReconnect } from '../../src/core/live/reconnect';
import { MAX_LINE_BYTES, emptySyncReport, encodeMessage, parseRequest } from '../../src/core/protocol';
import type { AgentEvent, AgentMessage, LiveStatus, Request } from '../../src/core/protocol';

const POLICY = { ...DEFAULT_RECONNECT_POLICY, unavailableAttempts: 3 };

function status(overrides: Partial<LiveStatus> = {}): LiveStatus {
  return { state: 'idle', autoSync: 'continuous', changesWaiting: false, conflicts: [], problems: [], keptOut: [], unlisted: { conflicts: 0, problems: 0, keptOut: 0 }, degraded: [], ...overrides };
}

/** One `docker exec … serve` as the host sees it: an agent that answers with `respond`. */
class FakeAgent {
  readonly toAgent = new PassThrough();
  readonly fromAgent = new PassThrough();
  readonly requests: Request[] = [];
  readonly session: LiveSession;
  closed = false;

  constructor(private readonly respond: (request: Request, agent: FakeAgent) => void) {
    const splitter = new LineSplitter(MAX_LINE_BYTES);
    this.toAgent.on('data', (chunk: Buffer) => {
      for (const event of splitter.push(chunk)) {
        if (event.kind !== 'line') continue;
        const parsed = parseRequest(event.line);
        assert.ok(parsed.ok, `the host sent a bad request: ${event.line}`);
        this.requests.push(parsed.value);
        this.respond(parsed.value, this);
      }
    });
    this.toAgent.on('end', () => this.exit());
    const client = new AgentClient(this.toAgent, this.fromAgent);
    this.session = {
      client,
      close: async () => {
        client.close();
      },
    };
  }

  send(...messages: AgentMessage[]): void {
    // One write: the client sees them in one chunk, as a relay forwarding a burst would deliver them.
    if (!this.fromAgent.writableEnded) this.fromAgent.write(messages.map(encodeMessage).join(''));
  }

  event(event: AgentEvent): void {
    this.send({ kind: 'event', event });
  }

  /** The agent (or its relay) exits: the channel ends. */
  exit(): void {
    if (this.closed) return;
    this.closed = true;
    this.fromAgent.end();
  }
}

/** An agent that subscribes with `subscribed` and answers `answer`, `hint` and `configure`. */
function residentAgent(subscribed: LiveStatus, onSubscribe?: (agent: FakeAgent, id: number) => void) {
  return (request: Request, agent: FakeAgent) => {
    if (request.method === 'subscribe') {
      if (onSubscribe) onSubscribe(agent, request.id);
      else agent.send({ kind: 'result', id: request.id, result: subscribed });
    } else if (request.method === 'answer' || request.method === 'hint') {
      agent.send({ kind: 'result', id: request.id, result: {} });
    } else if (request.method === 'configure') {
      agent.send({ kind: 'result', id: request.id, result: { ...subscribed, autoSync: request.params.autoSync ?? subscribed.autoSync } });
    } else {
      agent.send({ kind: 'error', id: request.id, code: 'unknown-method', message: request.method });
    }
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A channel whose opens are the agents `next` makes, with every delivery and wait recorded. */
function harness(next: (attempt: number) => FakeAgent | Error, handlers: { question?: (questionId: number) => Promise<'allow' | 'deny' | undefined> } = {}) {
  const agents: FakeAgent[] = [];
  const statuses: LiveStatus[] = [];
  const events: AgentEvent[] = [];
  const changes: ConnectionChange[] = [];
  const sleeps: number[] = [];
  const asked: number[] = [];
  let opens = 0;
  const channel = new LiveChannel(
    async () => {
      const made = next(opens++);
      if (made instanceof Error) throw made;
      agents.push(made);
      return made.session;
    },
    {
      status: (value) => statuses.push(value),
      event: (value) => events.push(value),
      connection: (change) => changes.push(change),
      ...(handlers.question && {
        question: (_question, questionId) => {
          asked.push(questionId);
          return handlers.question!(questionId);
        },
      }),
    },
    {
      policy: POLICY,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    },
  );
  return { channel, agents, statuses, events, changes, sleeps, asked, opens: () => opens };
}

describe('unit: live channel reconnect policy', () => {
  it('backs off exponentially from the first delay up to the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 10].map((attempt) => backoffDelay(DEFAULT_RECONNECT_POLICY, attempt));
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('retries a channel that ended, an exited or restarted agent and an unreachable Docker', () => {
    for (const code of ['channel-ended', 'agent-exited', 'docker-unreachable', 'agent-failed'] as const) {
      assert.deepEqual(decideReconnect(DEFAULT_RECONNECT_POLICY, { attempt: 2, code, everConnected: true }), { action: 'retry', delayMs: 1000 }, code);
    }
  });

  it('gives up when the container is gone or the workspace is misconfigured', () => {
    for (const code of ['not-running', 'name-taken', 'invalid-config', 'folder-missing'] as const) {
      assert.deepEqual(decideReconnect(DEFAULT_RECONNECT_POLICY, { attempt: 0, code, everConnected: true }), { action: 'give-up' }, code);
    }
  });

  it('gives up on an agent without a resident sync after a few tries, but never on one that had it', () => {
    const unavailable = (attempt: number, everConnected: boolean) => decideReconnect(POLICY, { attempt, code: 'agent-unavailable', everConnected }).action;
    assert.deepEqual([0, 1, 2].map((attempt) => unavailable(attempt, false)), ['retry', 'retry', 'give-up']);
    assert.equal(unavailable(50, true), 'retry', 'a resident agent being restarted comes back');
  });
});

describe('unit: live channel', () => {
  it('delivers the subscription status first, then the events that came with it and after it, in order', async () => {
    const first = status({ state: 'syncing' });
    const { channel, statuses, events, changes } = harness(() =>
      new FakeAgent(
        residentAgent(first, (agent, id) =>
          // The result and two events in one chunk: the events must not overtake the status.
          agent.send(
            { kind: 'result', id, result: first },
            { kind: 'event', event: { type: 'cycle-finished', kind: 'incremental', report: emptySyncReport({ id: 's1', policy: 'two-way-safe', startedAt: new Date(0).toISOString() }) } },
            { kind: 'event', event: { type: 'status', status: status() } },
          ),
        ),
      ),
    );
    await until(() => statuses.length === 2, 'two statuses');
    assert.deepEqual(statuses.map((value) => value.state), ['syncing', 'idle']);
    assert.deepEqual(events.map((event) => event.type), ['status', 'cycle-finished', 'status']);
    assert.deepEqual(changes, [{ state: 'connected', reconnected: false }]);
    assert.equal(channel.connected, true);
    await channel.close();
    assert.equal(await channel.ended, undefined);
    assert.deepEqual(changes.at(-1), { state: 'closed' });
  });

  it('reopens and subscribes again, with backoff, when the agent exits; an agent that dies again at once does not reset the backoff', async () => {
    const { channel, agents, statuses, changes, sleeps } = harness((attempt) => (attempt === 1 || attempt === 2 ? new CludError('docker-unreachable', 'Docker restarts') : new FakeAgent(residentAgent(status({ changesWaiting: attempt > 0 })))));
    await until(() => statuses.length === 1, 'the first status');
    agents[0]!.exit();
    await until(() => statuses.length === 2, 'the status after reconnecting');
    assert.equal(statuses[1]!.changesWaiting, true);
    assert.deepEqual(sleeps, [250, 500, 1000], 'the ended channel, then two failed opens, each waiting longer');
    assert.deepEqual(changes.map((change) => change.state), ['connected', 'reconnecting', 'reconnecting', 'reconnecting', 'connected']);
    assert.deepEqual(changes.at(-1), { state: 'connected', reconnected: true });
    assert.equal(agents[1]!.requests.filter((request) => request.method === 'subscribe').length, 1);
    agents[1]!.exit();
    await until(() => statuses.length === 3, 'the status after the second reconnection');
    assert.deepEqual(sleeps, [250, 500, 1000, 2000], 'a subscription shorter than stableMs counts as a failure');
    await channel.close();
  });

  it('takes agent-restarted on a request (the relay lost the agent) as the end of the subscription, and reopens it', async () => {
    const agents: FakeAgent[] = [];
    const { channel, statuses } = harness(() => {
      const agent = new FakeAgent((request, self) => {
        if (request.method === 'hint' && agents.length === 1) self.send({ kind: 'error', id: request.id, code: 'agent-restarted', message: 'the sync agent restarted' });
        else residentAgent(status())(request, self);
      });
      agents.push(agent);
      return agent;
    });
    await until(() => statuses.length === 1, 'the first status');
    await assert.rejects(channel.request('hint', { paths: ['a.txt'] }), (error: unknown) => error instanceof CludError && error.code === 'agent-exited');
    await until(() => statuses.length === 2, 'the status after reconnecting');
    assert.equal(agents.length, 2);
    assert.deepEqual(await channel.request('hint', { paths: ['a.txt'] }), {});
    await channel.close();
  });

  it('gives up on an agent that has no resident sync, with agent-unavailable', async () => {
    const { channel, changes, opens } = harness(() => new FakeAgent((request, agent) => agent.send({ kind: 'error', id: request.id, code: 'agent-unavailable', message: 'this agent has no resident sync agent yet' })));
    const error = await channel.ended;
    assert.equal(error?.code, 'agent-unavailable');
    assert.equal(opens(), POLICY.unavailableAttempts);
    assert.equal(changes.at(-1)?.state, 'closed');
    await assert.rejects(channel.request('hint', { paths: [] }), (thrown: unknown) => thrown instanceof CludError && thrown.code === 'agent-unavailable');
  });

  it('gives up at once when the container is not running', async () => {
    const { channel, opens } = harness(() => new CludError('not-running', 'no running workspace container'));
    assert.equal((await channel.ended)?.code, 'not-running');
    assert.equal(opens(), 1);
  });

  it('asks a background question once, whether it came as an event or in statuses, and answers it with `answer`', async () => {
    const question = { kind: 'many-deletions' as const, path: 'src', detail: 'this sync would delete 120 files in your folder' };
    const waiting = status({ state: 'waiting-for-approval', question: { questionId: 7, question } });
    const { channel, agents, asked, statuses } = harness(() => new FakeAgent(residentAgent(waiting)), { question: async () => 'allow' });
    await until(() => statuses.length === 1, 'the first status');
    agents[0]!.event({ type: 'question', questionId: 7, question });
    agents[0]!.event({ type: 'status', status: waiting });
    await until(() => agents[0]!.requests.some((request) => request.method === 'answer'), 'the answer');
    assert.deepEqual(asked, [7]);
    assert.deepEqual(
      agents[0]!.requests.filter((request) => request.method === 'answer').map((request) => request.params),
      [{ questionId: 7, answer: 'allow' }],
    );
    await channel.close();
  });

  it('leaves a question open for another client when the handler has no answer', async () => {
    const question = { kind: 'large-overwrite' as const, path: 'big.bin', detail: 'this sync would overwrite big.bin (20 MiB)' };
    const { channel, agents, asked } = harness(() => new FakeAgent(residentAgent(status())), { question: async () => undefined });
    await until(() => agents.length === 1 && agents[0]!.requests.length === 1, 'the subscription');
    agents[0]!.event({ type: 'question', questionId: 1, question });
    await until(() => asked.length === 1, 'the question');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(agents[0]!.requests.some((request) => request.method === 'answer'), false);
    await channel.close();
  });

  it('close() ends a channel that is waiting to reconnect, without opening again', async () => {
    let release!: () => void;
    const opened: number[] = [];
    const channel = new LiveChannel(
      async () => {
        opened.push(opened.length);
        throw new CludError('agent-exited', 'gone');
      },
      { status: () => {} },
      { policy: POLICY, sleep: (_ms, signal) => new Promise<void>((resolve) => ((release = resolve), signal.addEventListener('abort', () => resolve()))) },
    );
    await until(() => release !== undefined, 'the first wait');
    await channel.close();
    assert.equal(await channel.ended, undefined);
    assert.deepEqual(opened, [0]);
  });
});
