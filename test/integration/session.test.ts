import assert from 'node:assert/strict';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { DockerodeEngine } from '../../src/core/docker/dockerodeEngine';
import type { UpResult, Workspace } from '../../src/core/host/workspace';
import {
  TestScope,
  USER_GID,
  USER_UID,
  assertTreesEqual,
  chownTree,
  containerTree,
  createWorkspace,
  docker,
  hashTree,
  hostStatePath,
  inspectContainer,
  requireDocker,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';

interface DockerEvent {
  Action?: string;
  Actor?: { Attributes?: Record<string, string> };
}

/** exec_create events of one container between two engine timestamps (seconds, fractional). */
async function execCreations(containerId: string, since: number, until: number): Promise<DockerEvent[]> {
  const stream = (await docker.getEvents({
    since: since.toFixed(3),
    until: until.toFixed(3),
    filters: JSON.stringify({ container: [containerId], event: ['exec_create'] }),
  } as unknown as Parameters<typeof docker.getEvents>[0])) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as DockerEvent);
}

const nowSeconds = () => Date.now() / 1000;

describe('integration: one control channel per session', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  let workspace: Workspace;
  let up: UpResult;

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'notes.txt': 'v1\n' });
    // The Workspace class itself, in process, on the real engine.
    workspace = createWorkspace(dir);
    up = await workspace.up();
    assert.equal(up.init?.phase, 'ready', JSON.stringify(up));
  });

  after(async function () {
    await scope.cleanup();
  });

  it('push, pull, a sync and status over one openSession() use one exec in the container', async function () {
    const containerId = up.containerId!;
    const since = nowSeconds();
    const session = await workspace.openSession();
    try {
      // The agreed state the push and pull below are measured against.
      const first = await workspace.syncCycle('two-way-safe', { session });
      assert.equal(first.policy, 'two-way-safe');
      assert.deepEqual(first.applied, []);

      await writeFile(path.join(dir, 'notes.txt'), 'v2 from the host\n');
      const push = await workspace.push(session);
      assert.equal(push.policy, 'push');
      assert.deepEqual(push.applied, [{ path: 'notes.txt', side: 'container', action: 'update' }]);
      assert.deepEqual(push.kept, []);

      // A host edit that the pull then overwrites with /workspace's copy, keeping it aside first.
      await writeFile(path.join(dir, 'notes.txt'), 'v3, an edit that was never pushed\n');
      const pull = await workspace.pull(session);
      assert.equal(pull.policy, 'pull');
      assert.deepEqual(pull.applied, [{ path: 'notes.txt', side: 'host', action: 'update' }]);
      assert.equal(await readFile(path.join(dir, 'notes.txt'), 'utf8'), 'v2 from the host\n');
      assert.deepEqual(pull.kept.map((kept) => `${kept.side} ${kept.path}`), ['host notes.txt']);
      assert.equal(await readFile(hostStatePath(workspace.stateDirectory, pull.kept[0]!.keptAt), 'utf8'), 'v3, an edit that was never pushed\n');

      const status = await session.client.request('status', {});
      assert.equal(status.uid, USER_UID);
      assert.equal(status.gid, USER_GID);
      assert.equal(status.cwd, '/workspace');
      assert.equal(status.init?.phase, 'ready');
      const history = await session.client.request('history', {});
      assert.deepEqual(history.reports.slice(0, 3).map((report) => report.id), [pull.id, push.id, first.id]);

      // While the session is open, the engine knows exactly one exec of this container.
      const info = await inspectContainer(containerId);
      assert.equal(info?.ExecIDs?.length, 1, `ExecIDs: ${JSON.stringify(info?.ExecIDs)}`);
    } finally {
      await session.close();
    }
    // Let the engine's clock pass the last event before asking for the window.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const creations = await execCreations(containerId, since, nowSeconds());
    assert.equal(creations.length, 1, `exec_create events: ${JSON.stringify(creations.map((event) => event.Action))}`);
    assert.match(String(creations[0]!.Action), /exec_create: \S*as-sync-user node \S*agent\S*\.js serve/);
  });

  // The hardest case for a scanner that trusts metadata: the same size and the very same
  // modification time (a tool that restores timestamps, or an edit within the clock's
  // granularity). Only the inode change time tells, and the scan's cache must look at it.
  it('an edit that keeps the size and the modification time is synced both ways', async function () {
    const file = path.join(dir, 'same-size.txt');
    const engine = new DockerodeEngine();
    const session = await workspace.openSession();
    try {
      // A whole second, so that setting it again gives back the very same st_mtime.
      const mtime = Math.floor(Date.now() / 1000) - 60;
      await writeFile(file, 'before the edit\n');
      await utimes(file, mtime, mtime);
      await chownTree(dir, USER_UID, USER_GID);
      const first = await workspace.push(session);
      assert.deepEqual(first.applied, [{ path: 'same-size.txt', side: 'container', action: 'create' }]);
      const pushed = await stat(file);

      await writeFile(file, 'edited the host\n');
      await utimes(file, mtime, mtime);
      const edited = await stat(file);
      assert.equal(edited.size, pushed.size);
      assert.equal(edited.mtimeMs, pushed.mtimeMs);
      const second = await workspace.push(session);
      assert.deepEqual(second.applied, [{ path: 'same-size.txt', side: 'container', action: 'update' }], JSON.stringify(second));
      const content = await engine.readFile(up.containerId!, '/workspace/same-size.txt');
      assert.equal(content?.toString('utf8'), 'edited the host\n');

      // The same in the container, with the timestamp put back by touch -r.
      const run = await workspace.exec(['sh', '-c', "cp -p same-size.txt /tmp/reference && printf 'edit: container\\n' > same-size.txt && touch -r /tmp/reference same-size.txt"], {
        stdout: process.stdout,
        stderr: process.stderr,
      });
      assert.equal(run, 0);
      const third = await workspace.pull(session);
      assert.deepEqual(third.applied, [{ path: 'same-size.txt', side: 'host', action: 'update' }], JSON.stringify(third));
      assert.equal(await readFile(file, 'utf8'), 'edit: container\n');
    } finally {
      await session.close();
    }
  });

  // Two requests in flight on one session (the extension's save-triggered push and a user's pull)
  // must run one after the other: a pull alongside a push copies the not-yet-pushed old files of
  // /workspace back over the host's edits. (Found with this test before dfd4df9 fixed syncLock.ts.)
  it('concurrent push and pull on one session run one after the other and lose no host edit', async function () {
    const count = 2000;
    const files: Record<string, string> = {};
    for (let index = 0; index < count; index += 1) files[`d${index % 20}/f${index}.txt`] = `old ${index}\n`;
    const raceDir = await scope.project(files);
    const raceWorkspace = createWorkspace(raceDir);
    assert.equal((await raceWorkspace.up()).init?.phase, 'ready');
    assert.equal((await raceWorkspace.syncCycle('two-way-safe')).appliedCount, 0);
    for (let index = 0; index < count; index += 1) await writeFile(path.join(raceDir, `d${index % 20}/f${index}.txt`), `new content ${index}\n`);
    await chownTree(raceDir, USER_UID, USER_GID);
    const edited = await hashTree(raceDir);

    const session = await raceWorkspace.openSession();
    try {
      const [push, pull] = await Promise.all([raceWorkspace.push(session), raceWorkspace.pull(session)]);
      const pushEnd = Date.parse(push.startedAt) + push.durationMs;
      assert.ok(Date.parse(pull.startedAt) >= pushEnd, `the pull (${pull.startedAt}) started before the push (${push.startedAt}, ${push.durationMs} ms) ended`);
      assert.equal(push.appliedCount, count);
      assert.deepEqual(push.skipped, []);
      assert.deepEqual(push.kept, []);
      assert.equal(pull.appliedCount, 0);
      assert.deepEqual(pull.kept, []);
    } finally {
      await session.close();
    }
    assertTreesEqual(edited, await hashTree(raceDir), ['edited', 'host']);
    assertTreesEqual(edited, await containerTree(raceDir), ['edited', 'container']);
  });
});
