// The host's AgentClient wired to the agent's serveChannel in-process through PassThrough streams,
// with handlers written here: the whole control channel without Docker.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { RequestError, serveChannel } from '../../src/agent/server';
import type { Handlers } from '../../src/agent/server';
import { AgentClient } from '../../src/core/host/agentClient';
import { CludError } from '../../src/core/errors';
import { MAX_LINE_BYTES, ResultSchemas, UndoSettings, emptySyncReport, encodeMessage, parseAgentMessage } from '../../src/core/protocol';
import type { AgentMessage, AgentStatus, BackupManifest, ProgressData, SyncReport } from '../../src/core/protocol';

const STATUS: AgentStatus = {
  agentVersion: '0.1.0',
  protocolVersion: 1,
  uid: 1000,
  gid: 1000,
  cwd: '/workspace',
  init: { phase: 'ready', updatedAt: '2025-06-01T12:00:00.000Z', warnings: [], attempts: 1 },
};

function report(id: string, appliedCount = 2): SyncReport {
  return emptySyncReport({
    id,
    policy: 'two-way-safe',
    startedAt: '2025-06-01T12:00:00.000Z',
    durationMs: 42,
    applied: [
      { path: 'src/a.ts', side: 'container', action: 'update' },
      { path: 'old.txt', side: 'host', action: 'delete' },
    ],
    appliedCount,
    writtenCount: 1,
    deletedCount: 1,
    bytesCopied: 1234,
    scanned: { hostFiles: 3, containerFiles: 3, hashedFiles: 1 },
  });
}

const MANIFEST: BackupManifest = { id: '20250601T120000Z-abcdef', createdAt: '2025-06-01T12:00:00.000Z', entries: [{ path: 'a.txt', host: { kind: 'symlink', target: 'b' } }] };

const notUsed = async (): Promise<never> => {
  throw new Error('this handler is not used by the test');
};
/** Every method of the protocol, each failing if called; tests override the ones they use. */
const UNUSED = Object.fromEntries(Object.keys(ResultSchemas).map((method) => [method, notUsed])) as unknown as Handlers;
const UNDO_DEFAULTS = UndoSettings.parse({});

/** A promise with its resolve function, to hold a handler until the test lets it finish. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets the streams deliver what was written (PassThrough delivers on later ticks). */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Whether `promise` has settled by the time pending I/O callbacks have run once. */
async function settlesAtOnce(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const winner = await Promise.race([promise.then(() => true, () => true), new Promise((resolve) => setImmediate(() => resolve(marker)))]);
  return winner !== marker;
}

function connect(handlers: Partial<Handlers>, options: { maxLineBytes?: number } = {}) {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const agentStderr = new PassThrough();
  const notices: string[] = [];
  /** Every message the agent wrote, in order, as the host would parse it. */
  const agentMessages: AgentMessage[] = [];
  let partial = '';
  fromAgent.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      // Tests that write garbage to fromAgent themselves check the client's notices instead.
      const parsed = parseAgentMessage(line);
      if (parsed.ok) agentMessages.push(parsed.value);
    }
  });
  const served = serveChannel(toAgent, fromAgent, { ...UNUSED, ...handlers }, { maxLineBytes: options.maxLineBytes });
  const client = new AgentClient(toAgent, fromAgent, agentStderr, (notice) => notices.push(notice));
  return { client, toAgent, fromAgent, agentStderr, notices, agentMessages, served };
}

async function rejection(promise: Promise<unknown>): Promise<CludError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof CludError, `expected a CludError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the request to be rejected');
}

describe('unit: agentClient', () => {
  describe('with serveChannel', () => {
    it('answers a status request with the handler result', async () => {
      const { client } = connect({ status: async () => STATUS });
      assert.deepEqual(await client.request('status', {}), STATUS);
    });

    it('passes the validated params, with defaults, to the handler', async () => {
      const seen: unknown[] = [];
      const { client } = connect({
        hello: async (params) => {
          seen.push(params);
          return { protocolVersion: params.protocolVersion, agentVersion: 'test' };
        },
        sync: async (params) => {
          seen.push(params);
          return report('sync');
        },
        restoreBackup: async (params) => {
          seen.push(params);
          return { applied: [], appliedCount: 0, skipped: [], kept: [] };
        },
      });
      assert.deepEqual(await client.request('hello', { protocolVersion: 7 }), { protocolVersion: 7, agentVersion: 'test' });
      await client.request('sync', { excludes: ['dist'] });
      await client.request('restoreBackup', { backupId: 'b1', side: 'container' });
      assert.deepEqual(seen, [
        { protocolVersion: 7 },
        { policy: 'two-way-safe', excludes: ['dist'], reset: false, undo: UNDO_DEFAULTS, retries: 3, allowSecrets: [] },
        { backupId: 'b1', side: 'container', excludes: [], allowSecrets: [], undo: UNDO_DEFAULTS },
      ]);
    });

    it('asks the client each safeguard question once per request, however often the request meets it', async () => {
      const deletion = { kind: 'many-deletions' as const, path: 'src', detail: '60 files deleted in this sync (limit 50)' };
      const overwrite = { kind: 'large-overwrite' as const, path: 'big.bin', detail: 'big.bin (20 MB) would be overwritten' };
      const answers: string[] = [];
      const { client } = connect({
        // As a request does that is asked a waiting background cycle's question first, then meets the same change itself.
        sync: async (_params, context) => {
          answers.push(await context.ask(deletion), await context.ask(deletion), await context.ask(overwrite));
          return report('sync');
        },
      });
      const asked: string[] = [];
      const onQuestion = async (question: { path: string }) => (asked.push(question.path), question.path === 'src' ? ('deny' as const) : ('allow' as const));
      await client.request('sync', {}, undefined, onQuestion);
      assert.deepEqual(asked, ['src', 'big.bin']);
      assert.deepEqual(answers, ['deny', 'deny', 'allow']);
      // Another request asks again: an answer holds for the request it was given in.
      await client.request('sync', {}, undefined, onQuestion);
      assert.deepEqual(asked, ['src', 'big.bin', 'src', 'big.bin']);
    });

    it('delivers progress events before the result, in order', async () => {
      const events: string[] = [];
      const { client } = connect({
        sync: async (_params, context) => {
          context.progress({ phase: 'sync', message: 'scanning' });
          context.progress({ phase: 'sync', message: '2 files', files: 2 });
          return report('sync');
        },
      });
      const progress: ProgressData[] = [];
      const result = await client.request('sync', {}, (data) => {
        progress.push(data);
        events.push(`progress ${data.message}`);
      }).then((value) => {
        events.push('result');
        return value;
      });
      assert.deepEqual(result, report('sync'));
      assert.deepEqual(progress, [
        { phase: 'sync', message: 'scanning' },
        { phase: 'sync', message: '2 files', files: 2 },
      ]);
      assert.deepEqual(events, ['progress scanning', 'progress 2 files', 'result']);
    });

    it('delivers progress to the request it belongs to', async () => {
      const syncGate = gate();
      const backupGate = gate();
      const { client } = connect({
        sync: async (_params, context) => {
          context.progress({ phase: 'sync', message: 'sync 1' });
          await syncGate.promise;
          context.progress({ phase: 'sync', message: 'sync 2' });
          return report('sync');
        },
        backup: async (_params, context) => {
          context.progress({ phase: 'backup', message: 'backup 1' });
          await backupGate.promise;
          context.progress({ phase: 'backup', message: 'backup 2' });
          return MANIFEST;
        },
      });
      const syncProgress: string[] = [];
      const backupProgress: string[] = [];
      const syncing = client.request('sync', {}, (data) => syncProgress.push(data.message));
      const backingUp = client.request('backup', {}, (data) => backupProgress.push(data.message));
      await until(() => syncProgress.length === 1 && backupProgress.length === 1, 'the first progress of both');
      backupGate.open();
      assert.deepEqual(await backingUp, MANIFEST);
      syncGate.open();
      assert.equal((await syncing).id, 'sync');
      assert.deepEqual(syncProgress, ['sync 1', 'sync 2']);
      assert.deepEqual(backupProgress, ['backup 1', 'backup 2']);
    });

    it('resolves concurrent requests answered out of order', async () => {
      const slow = gate();
      const { client, agentMessages } = connect({
        sync: async () => {
          await slow.promise;
          return report('sync', 5);
        },
        status: async () => STATUS,
        hello: async () => ({ protocolVersion: 1, agentVersion: 'hello' }),
      });
      const resolved: string[] = [];
      const syncing = client.request('sync', {}).then((value) => (resolved.push('sync'), value));
      const statusing = client.request('status', {}).then((value) => (resolved.push('status'), value));
      const helloing = client.request('hello', { protocolVersion: 1 }).then((value) => (resolved.push('hello'), value));
      assert.deepEqual(await statusing, STATUS);
      assert.deepEqual(await helloing, { protocolVersion: 1, agentVersion: 'hello' });
      slow.open();
      assert.deepEqual(await syncing, report('sync', 5));
      assert.deepEqual(resolved.slice(-1), ['sync']);
      const answeredIds = agentMessages.filter((message) => message.kind === 'result').map((message) => message.id);
      assert.deepEqual(answeredIds, [2, 3, 1]);
    });

    it('rejects with a CludError when the handler throws', async () => {
      const { client } = connect({
        sync: async () => {
          throw new Error('disk on fire');
        },
      });
      const error = await rejection(client.request('sync', {}));
      assert.equal(error.code, 'agent-failed');
      assert.match(error.message, /sync/);
      assert.match(error.message, /disk on fire/);
    });

    it("rejects with code sync-halted when the handler throws RequestError('sync-halted')", async () => {
      const { client, agentMessages } = connect({
        sync: async () => {
          throw new RequestError('sync-halted', 'sync halted: /workspace is empty');
        },
      });
      const error = await rejection(client.request('sync', { policy: 'pull' }));
      assert.equal(error.code, 'sync-halted');
      assert.equal(error.message, 'sync halted: /workspace is empty');
      assert.deepEqual(agentMessages, [{ kind: 'error', id: 1, code: 'sync-halted', message: 'sync halted: /workspace is empty' }]);
    });

    it('sends other RequestError codes and plain errors with their codes, and the client reports agent-failed', async () => {
      const { client, agentMessages } = connect({
        sync: async () => {
          throw new RequestError('sync-failed', 'scan failed');
        },
        backup: async () => {
          throw new TypeError('x is undefined');
        },
      });
      assert.equal((await rejection(client.request('sync', {}))).code, 'agent-failed');
      assert.equal((await rejection(client.request('backup', {}))).code, 'agent-failed');
      assert.deepEqual(
        agentMessages.map((message) => (message.kind === 'error' ? message.code : message.kind)),
        ['sync-failed', 'internal'],
      );
    });

    it('rejects with code agent-failed when the result has the wrong shape', async () => {
      const { client } = connect({ status: async () => ({ agentVersion: 1, uid: 'root' }) as unknown as AgentStatus });
      const error = await rejection(client.request('status', {}));
      assert.equal(error.code, 'agent-failed');
      assert.match(error.message, /invalid status result/);
      assert.match(error.message, /agentVersion/);
    });

    it('answers a malformed line with an error with id null and keeps serving', async () => {
      const { client, toAgent, agentMessages, notices } = connect({ status: async () => STATUS });
      toAgent.write('this is not json\n');
      await until(() => agentMessages.length === 1, 'the error reply');
      assert.deepEqual({ ...agentMessages[0], message: undefined }, { kind: 'error', id: null, code: 'bad-request', message: undefined });
      assert.equal(notices.length, 1, 'the client reports an error that belongs to no request');
      assert.deepEqual(await client.request('status', {}), STATUS);
    });

    it('answers an over-long line with line-too-long and id null and keeps serving', async () => {
      const { client, toAgent, agentMessages } = connect({ status: async () => STATUS });
      const long = Buffer.alloc(MAX_LINE_BYTES + 1, 'a');
      // In several chunks, as a pipe would deliver it.
      toAgent.write(long.subarray(0, 100_000));
      toAgent.write(long.subarray(100_000));
      toAgent.write('\n');
      await until(() => agentMessages.length === 1, 'the error reply');
      const reply = agentMessages[0]!;
      assert.equal(reply.kind, 'error');
      assert.deepEqual(reply.kind === 'error' ? { id: reply.id, code: reply.code } : undefined, { id: null, code: 'line-too-long' });
      assert.deepEqual(await client.request('status', {}), STATUS);
      assert.equal(agentMessages.length, 2);
    });

    it("aborts a request's signal when the channel's input ends (the host went away), and waits for the request to stop", async () => {
      let seen: AbortSignal | undefined;
      let stopped = false;
      const { toAgent, served } = connect({
        sync: async (_params, context) => {
          seen = context.signal;
          await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
          stopped = true;
          return report('sync');
        },
      });
      toAgent.write(encodeMessage({ id: 1, method: 'sync', params: { policy: 'pull', excludes: [], reset: false, undo: UNDO_DEFAULTS, retries: 3, allowSecrets: [] } }));
      await until(() => seen !== undefined, 'the request to start');
      assert.equal(seen!.aborted, false);
      toAgent.end();
      await served;
      assert.equal(seen!.aborted, true);
      assert.equal(stopped, true);
    });

    it('answers a request whose result is longer than a client reads with result-too-large, rather than a line the client drops', async () => {
      const applied = Array.from({ length: 1000 }, (_, index) => ({ path: `folder/file-${index}.txt`, side: 'container' as const, action: 'create' as const }));
      const reports = Array.from({ length: 50 }, (_, index) => ({ ...report(`r${index}`, 1000), applied }));
      assert.ok(Buffer.byteLength(JSON.stringify({ reports })) > MAX_LINE_BYTES, 'the result is over the limit');
      const { client, agentMessages } = connect({ history: async () => ({ reports }), status: async () => STATUS });
      await assert.rejects(client.request('history', {}), (error: Error) => /result is \d+ bytes, over the \d+-byte limit/.test(error.message));
      assert.deepEqual(agentMessages.map((message) => message.kind === 'error' && message.code), ['result-too-large']);
      assert.deepEqual(await client.request('status', {}), STATUS, 'the channel keeps serving');
    });

    it('honours a smaller line limit given to serveChannel', async () => {
      const { client, toAgent, agentMessages } = connect({ status: async () => STATUS }, { maxLineBytes: 100 });
      toAgent.write(encodeMessage({ id: 99, method: 'sync', params: { policy: 'push', excludes: ['x'.repeat(100)], reset: false, undo: UNDO_DEFAULTS, retries: 3, allowSecrets: [] } }));
      await until(() => agentMessages.length === 1, 'the error reply');
      assert.equal(agentMessages[0]!.kind === 'error' && agentMessages[0]!.code, 'line-too-long');
      assert.deepEqual(await client.request('status', {}), STATUS);
    });

    it("rejects every pending request with agent-exited and the stderr tail when the agent's stdout ends", async () => {
      const never = gate();
      const { client, fromAgent, agentStderr } = connect({
        sync: async () => {
          await never.promise;
          return report('sync');
        },
        backup: async () => {
          await never.promise;
          return MANIFEST;
        },
      });
      const syncing = rejection(client.request('sync', {}));
      const backingUp = rejection(client.request('backup', {}));
      agentStderr.write('agent: starting\n');
      agentStderr.write('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n');
      await new Promise((resolve) => setImmediate(resolve));
      fromAgent.end();
      for (const error of [await syncing, await backingUp]) {
        assert.equal(error.code, 'agent-exited');
        assert.match(error.message, /JavaScript heap out of memory/);
      }
      assert.equal(client.isClosed, true);
      never.open();
    });

    it('rejects pending requests with agent-exited when the stream to the agent fails', async () => {
      const never = gate();
      const { client, toAgent } = connect({
        sync: async () => {
          await never.promise;
          return report('sync');
        },
      });
      const syncing = rejection(client.request('sync', {}));
      await new Promise((resolve) => setImmediate(resolve));
      toAgent.destroy(new Error('write EPIPE'));
      const error = await syncing;
      assert.equal(error.code, 'agent-exited');
      assert.match(error.message, /EPIPE/);
      never.open();
    });

    it('rejects a request at once, without sending it, after the agent has exited', async () => {
      let calls = 0;
      const { client, fromAgent } = connect({
        status: async () => {
          calls += 1;
          return STATUS;
        },
      });
      fromAgent.end();
      await until(() => client.isClosed, 'the client to notice the exit');
      const request = client.request('status', {});
      assert.equal(await settlesAtOnce(request), true);
      assert.equal((await rejection(request)).code, 'agent-exited');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(calls, 0);
    });

    it('rejects a request made after close() with a CludError, without the agent running it', async () => {
      let calls = 0;
      const { client } = connect({
        status: async () => {
          calls += 1;
          return STATUS;
        },
      });
      client.close();
      const request = client.request('status', {});
      assert.equal(await settlesAtOnce(request), true);
      await rejection(request);
      assert.equal(calls, 0);
    });

    it('lets the agent answer what it has started after close(), then the server finishes', async () => {
      const slow = gate();
      const { client, served } = connect({
        sync: async () => {
          await slow.promise;
          return report('sync');
        },
      });
      const syncing = client.request('sync', {});
      await new Promise((resolve) => setImmediate(resolve));
      client.close();
      slow.open();
      assert.deepEqual(await syncing, report('sync'));
      await served;
    });

    // Regression: close() used to leave request() writing to the ended stdin, which destroyed the
    // stream and failed every in-flight request with agent-exited. In-flight requests must still
    // get their answers, and a request after close() must reject without writing.
    it('a request after close() does not fail a request already in flight', async () => {
      const slow = gate();
      const { client, served } = connect({
        sync: async () => {
          await slow.promise;
          return report('sync');
        },
      });
      const syncing = client.request('sync', {});
      await new Promise((resolve) => setImmediate(resolve));
      client.close();
      await rejection(client.request('status', {}));
      slow.open();
      assert.deepEqual(await syncing, report('sync'));
      await served;
    });
  });

  describe('messages that belong to no request', () => {
    it('reports agent log lines, unknown ids and garbage through onNotice and keeps working', async () => {
      const { client, fromAgent, notices } = connect({ status: async () => STATUS });
      fromAgent.write(encodeMessage({ kind: 'log', level: 'warn', message: 'clock skew detected' }));
      fromAgent.write(encodeMessage({ kind: 'result', id: 4242, result: {} }));
      fromAgent.write('Segmentation fault\n');
      await until(() => notices.length === 3, 'three notices');
      assert.match(notices[0]!, /warn.*clock skew detected/);
      assert.match(notices[1]!, /4242/);
      assert.match(notices[2]!, /Segmentation fault/);
      assert.deepEqual(await client.request('status', {}), STATUS);
    });

    it('ignores an over-long line from the agent with one notice', async () => {
      const { client, fromAgent, notices } = connect({ status: async () => STATUS });
      fromAgent.write(Buffer.alloc(MAX_LINE_BYTES + 10, 'z'));
      fromAgent.write('\n');
      await until(() => notices.length === 1, 'the overflow notice');
      assert.match(notices[0]!, new RegExp(`${MAX_LINE_BYTES + 10} bytes`));
      assert.deepEqual(await client.request('status', {}), STATUS);
    });
  });
});
