import assert from 'node:assert/strict';
import { lstat, readFile, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import * as path from 'node:path';
import { serveStepChannel } from '../../src/agent/stepChannel';
import { requestStep, StepRequestFailed } from '../../src/agent/stepClient';
import { createStepOperations } from '../../src/agent/stepOperations';
import { assertSameTree, readyChange, snapshotTree } from '../helpers/undoTrees';
import { useStepChannel } from '../helpers/stepAgent';
import type { TestStepAgent } from '../helpers/stepAgent';

/** Sends raw lines on one connection and collects `count` reply lines. */
function rawExchange(socketPath: string, text: string, count: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffered = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n').filter(Boolean);
      if (lines.length >= count) {
        socket.destroy();
        resolve(lines.map((line) => JSON.parse(line) as unknown));
      }
    });
    socket.on('connect', () => socket.write(text));
  });
}

async function rejection(promise: Promise<unknown>): Promise<StepRequestFailed> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof StepRequestFailed, String(error));
    return error;
  }
  assert.fail('expected a rejection');
}

describe('unit: the narrow step channel', () => {
  const served = useStepChannel('clud-step-channel-');
  const { sample } = served;
  let agent: TestStepAgent;
  let socketPath: string;
  beforeEach(() => ({ agent, socketPath } = served));
  const ask = ((method: string, params: object) => requestStep(method as never, params as never, { socketPath, timeoutMs: 10_000 })) as typeof requestStep;

  it('listens on a socket any user of the container may open', async () => {
    const stats = await lstat(socketPath);
    assert.ok(stats.isSocket());
    assert.equal(stats.mode & 0o777, 0o666);
  });

  it('a turn between stepStart and stepEnd is one step, labelled, flushed at its end; undoLastStep takes it back', async () => {
    const { group } = await ask('stepStart', { kind: 'turn', label: 'rename the\nconfig loader' });
    assert.equal(group.kind, 'turn');
    assert.equal(group.label, 'rename the config loader');
    agent.agentWrites('src/a.ts', 'renamed');
    await ask('syncNow', {});
    agent.agentWrites('new.ts', 'new file');
    assert.equal((await ask('status', {})).openStep?.id, group.id);
    assert.deepEqual(agent.keptOpenStep, group, 'the open turn is not kept for a restart');
    const ended = await ask('stepEnd', { kind: 'turn' });
    assert.deepEqual(ended.closed, group);
    assert.equal(agent.keptOpenStep, undefined, 'the ended turn is still kept');
    assert.deepEqual(ended.paths.sort(), ['new.ts', 'src/a.ts']);
    assert.equal(await readFile(path.join(sample.workspace.root, 'new.ts'), 'utf8'), 'new file', 'stepEnd flushed the last change');
    assert.equal(agent.exchanges, 1, "the turn's commits are exchanged once, at its end (not at its start)");
    assert.equal((await ask('stepEnd', { kind: 'turn' })).closed, undefined);
    assert.equal(agent.exchanges, 1, 'an end that closed nothing (SessionEnd after Stop) exchanges again');

    const { steps } = await ask('history', {});
    assert.deepEqual(steps.map(({ id, kind, label, files, undoable }) => ({ id, kind, label, files, undoable })), [{ id: group.id, kind: 'turn', label: 'rename the config loader', files: 2, undoable: true }]);

    const { undone } = await ask('undoLastStep', {});
    assert.deepEqual(undone, { id: group.id, kind: 'turn', label: 'rename the config loader', files: 2 });
    assertSameTree(await snapshotTree(sample.workspace.root), sample.before);
  });

  it('undoLastStep refuses the turn still running, and a step the user edited since (their edits win)', async () => {
    await ask('stepStart', { kind: 'turn', label: 'first' });
    agent.agentWrites('src/a.ts', 'agent version');
    await ask('syncNow', {});
    const running = await rejection(ask('undoLastStep', {}));
    assert.equal(running.code, 'refused');
    assert.match(running.message, /the turn "first" is still running/);
    assert.doesNotMatch(running.message, /forc/, 'the agent cannot force an undo: only the user can');

    await ask('stepEnd', {});
    await writeFile(path.join(sample.workspace.root, 'src/a.ts'), 'the user saved this');
    const barrier = await rejection(ask('undoLastStep', {}));
    assert.equal(barrier.code, 'refused');
    assert.match(barrier.message, /the user changed src\/a\.ts after that step; their edits win/);
    assert.equal(await readFile(path.join(sample.workspace.root, 'src/a.ts'), 'utf8'), 'the user saved this');
  });

  it("undoLastStep leaves the user's own requests alone (a step without a group)", async () => {
    const writer = await sample.log.beginStep({ syncId: 'pull', policy: 'pull', root: sample.workspace.root });
    await readyChange(writer, sample.workspace.root, 'pulled.txt');
    await writeFile(path.join(sample.workspace.root, 'pulled.txt'), 'x');
    writer.markChanged('pulled.txt');
    assert.ok(await writer.close());
    const refused = await rejection(ask('undoLastStep', {}));
    assert.equal(refused.code, 'refused');
    assert.match(refused.message, /the newest step is the user's own/);
  });

  it('a checkpoint names what changed since the last boundary; an empty one records nothing', async () => {
    agent.agentWrites('a.txt', 'a');
    const named = await ask('checkpoint', { label: 'before the refactor' });
    assert.equal(named.steps, 1);
    assert.equal(named.closed.kind, 'checkpoint');
    const empty = await ask('checkpoint', { label: 'nothing new' });
    assert.equal(empty.steps, 0);
    assert.equal(agent.exchanges, 2, 'each checkpoint exchanges the git history');
    const { steps } = await ask('history', {});
    assert.deepEqual(steps.map(({ kind, label }) => [kind, label]), [['checkpoint', 'before the refactor']]);
  });

  it('a checkpoint inside a turn: the turn goes on under a new id, and that is the one kept for a restart', async () => {
    await ask('stepStart', { kind: 'turn', label: 'refactor' });
    agent.agentWrites('a.txt', 'a');
    const named = await ask('checkpoint', { label: 'halfway' });
    assert.equal(named.continued?.kind, 'turn');
    assert.deepEqual(agent.keptOpenStep, named.continued);
    assert.deepEqual((await ask('status', {})).openStep, named.continued);
  });

  it('stepEnd of a turn leaves a command open; a command ends by its id', async () => {
    await ask('stepStart', { kind: 'turn', label: 't' });
    const { group } = await ask('stepStart', { kind: 'command', label: 'npm run fix' });
    assert.equal((await ask('stepEnd', { kind: 'turn' })).closed, undefined);
    assert.deepEqual((await ask('stepEnd', { group: group.id })).closed, group);
  });

  it('answers a bad line, an unknown method and an oversized line with their codes, and goes on serving', async () => {
    const replies = await rawExchange(socketPath, `not json\n{"id":2,"method":"push","params":{}}\n{"id":3,"method":"stepStart","params":{"kind":"sync","label":"x"}}\n${'x'.repeat(300 * 1024)}\n{"id":4,"method":"status","params":{}}\n`, 5);
    assert.deepEqual(
      replies.map((reply) => { const r = reply as { kind: string; id: number | null; code?: string }; return [r.kind, r.id, r.code]; }),
      [['error', null, 'bad-request'], ['error', 2, 'unknown-method'], ['error', 3, 'bad-request'], ['error', null, 'line-too-long'], ['result', 4, undefined]],
    );
  });

  it('a client finds no agent: agent-unavailable', async () => {
    await served.channel!.close();
    served.channel = undefined;
    const failure = await rejection(ask('status', {}));
    assert.equal(failure.code, 'agent-unavailable');
  });

  it('replaces a stale socket a killed agent left, but nothing else', async () => {
    await served.channel!.close();
    served.channel = undefined;
    // A closed server unlinks its socket; a SIGKILLed one leaves it behind.
    spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.ok((await lstat(socketPath)).isSocket());
    served.channel = await serveStepChannel(socketPath, createStepOperations(agent));
    assert.equal((await ask('status', {})).state, 'idle');
    await served.channel.close();
    served.channel = undefined;
    const plain = path.join(path.dirname(socketPath), 'plain');
    await writeFile(plain, 'mine');
    await assert.rejects(serveStepChannel(plain, createStepOperations(agent)), /is not a socket/);
  });
});
