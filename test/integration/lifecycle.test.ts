import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  TestScope,
  assertExit,
  cludSync,
  cludUp,
  containersFor,
  describeRun,
  docker,
  execSh,
  inspectContainer,
  lines,
  requireDocker,
  runClud,
  runCludJson,
  writeHost,
  INTEGRATION_TIMEOUT_MS,
  TEST_IMAGE,
} from '../helpers/integration';
import { LABEL_CONTEXT_HASH } from '../../src/core/containerLayout';

/** `clud down DIR [args] --json` that must be refused for unsynced changes, with a message matching every one of `mentions`. */
async function assertDownRefused(dir: string, mentions: RegExp | RegExp[], args: string[] = []): Promise<void> {
  const { run, json } = await runCludJson(['down', dir, ...args]);
  assert.notEqual(run.exitCode, 0, describeRun(run));
  assert.equal(json.ok, false, describeRun(run));
  const error = json.error as { code?: string; message?: string };
  assert.equal(error.code, 'unsynced-changes', describeRun(run));
  for (const mention of [mentions].flat()) assert.match(String(error.message), mention, describeRun(run));
  assert.equal(lines(run.stderr).length, 1, describeRun(run));
}

describe('integration: container names and clud down', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let first = '';
  let second = '';
  let firstName = '';
  let secondName = '';

  before(async function () {
    await requireDocker();
    // Two folders with the same base name in different places.
    first = await scope.project({ 'file.txt': 'first\n', 'keep.txt': 'keep\n' }, { name: 'app' });
    second = await scope.project({ 'file.txt': 'second\n' }, { name: 'app' });
    firstName = String((await cludUp(first)).containerName);
    secondName = String((await cludUp(second)).containerName);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('each folder gets its own, stable container name', async function () {
    assert.match(firstName, /^clud-app-[0-9a-f]{8}$/);
    assert.match(secondName, /^clud-app-[0-9a-f]{8}$/);
    assert.notEqual(firstName, secondName);
    for (const [dir, name] of [
      [first, firstName],
      [second, secondName],
    ] as const) {
      const containers = await containersFor(dir);
      assert.deepEqual(
        containers.map((container) => container.Names),
        [[`/${name}`]],
      );
      // The same name from inside the folder with no DIR argument.
      const status = await runCludJson(['status'], { cwd: dir });
      assertExit(status.run, 0);
      assert.equal(status.json.containerName, name);
      assert.equal(status.json.state, 'running');
      assert.equal(status.json.imageCurrent, true);
    }
    // The certificates `up` was given are the user's choice, not the Clud that made the image:
    // a status run without them does not call the image older.
    const withoutCertificates = await runCludJson(['status'], { cwd: first, env: { CLUD_EXTRA_CA_CERTIFICATES: undefined } });
    assertExit(withoutCertificates.run, 0);
    assert.equal(withoutCertificates.json.imageCurrent, true);
  });

  it('two `clud up` at once on a new folder both succeed, with one container', async function () {
    const dir = await scope.project({ 'file.txt': 'twice\n' });
    const runs = await Promise.all([0, 1].map(() => runCludJson(['up', dir])));
    for (const { run, json } of runs) {
      assertExit(run, 0);
      assert.equal((json.init as { phase?: string } | undefined)?.phase, 'ready', describeRun(run));
    }
    assert.equal(runs.filter(({ json }) => json.created === true).length, 1, 'both or neither made the container');
    assert.equal((await containersFor(dir)).length, 1);
  });

  it('--name overrides the derived name', async function () {
    const dir = await scope.project({ 'file.txt': 'named\n' });
    const name = `clud-it-named-${process.pid}-${Date.now()}`;
    scope.trackContainer(name);
    const up = await cludUp(dir, ['--name', name]);
    assert.equal(up.containerName, name);
    const info = await inspectContainer(name);
    assert.ok(info, `no container named ${name}`);
    assert.equal(info.Config.Labels['clud.hostPath'], dir);
    assert.deepEqual(
      (await containersFor(dir)).map((container) => container.Names),
      [[`/${name}`]],
      'a container under the derived name was made too',
    );
    const exec = await runClud(['exec', dir, '--name', name, '--', 'cat', 'file.txt']);
    assertExit(exec, 0);
    assert.equal(exec.stdout, 'named\n');

    const down = await runCludJson(['down', dir, '--name', name]);
    assertExit(down.run, 0);
    assert.deepEqual({ removed: down.json.removed, containerName: down.json.containerName }, { removed: true, containerName: name });
    assert.equal(await inspectContainer(name), undefined, 'clud down left the container');
  });

  it("refuses a --name held by another folder's workspace container, and leaves that container alone", async function () {
    const dir = await scope.project({ 'file.txt': 'intruder\n' });
    const before = await inspectContainer(firstName);
    const { run, json } = await runCludJson(['up', dir, '--name', firstName]);
    assertExit(run, 1);
    assert.equal((json.error as { code?: string }).code, 'name-taken', describeRun(run));
    assert.match(run.stderr, new RegExp(`${firstName}.*${first.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), describeRun(run));
    assert.equal(lines(run.stderr).length, 1, describeRun(run));
    const after = await inspectContainer(firstName);
    assert.equal(after?.Id, before?.Id);
    assert.equal(after?.State.Running, true);
    assert.equal(after?.State.StartedAt, before?.State.StartedAt);
  });

  it('clud down removes a container whose /workspace the host already has', async function () {
    const down = await runCludJson(['down', second]);
    assertExit(down.run, 0);
    assert.deepEqual({ ok: down.json.ok, removed: down.json.removed, containerName: down.json.containerName }, { ok: true, removed: true, containerName: secondName });
    assert.equal(await inspectContainer(secondName), undefined);
    // Again: nothing to remove, still a success.
    const again = await runCludJson(['down', second]);
    assertExit(again.run, 0);
    assert.equal(again.json.removed, false);
  });

  it('clud down refuses while /workspace has an edit, a new file or a deletion made since the last agreed state; --force removes it anyway', async function () {
    // `first` was never synced: the agreed state is the one its initial copy recorded. The refusal
    // must name all three paths, so a check that ignores any one kind of change fails here.
    await execSh(first, 'echo edited in the container > keep.txt && rm file.txt && echo unsynced > unsynced.txt');
    await assertDownRefused(first, [/^3 change\(s\) made in \/workspace/, /keep\.txt/, /file\.txt/, /unsynced\.txt/]);
    assert.equal((await inspectContainer(firstName))?.State.Running, true, 'the refused down stopped or removed the container');

    const forced = await runCludJson(['down', first, '--force']);
    assertExit(forced.run, 0);
    assert.equal(forced.json.removed, true);
    assert.equal(await inspectContainer(firstName), undefined, 'clud down --force left the container');
    // Nothing was synced: the host still has its own versions.
    assert.equal(await readFile(path.join(first, 'keep.txt'), 'utf8'), 'keep\n');
    assert.equal(await readFile(path.join(first, 'file.txt'), 'utf8'), 'first\n');
  });

  it("clud down counts the agent's version of a file the host keeps out as a secret, which no sync carries; not a copy nobody touched", async function () {
    const dir = await scope.project({ 'config.yml': 'name: app\n', 'other.txt': 'other\n' });
    await cludUp(dir);
    // The user puts a token in a file both sides agreed on: kept out from then on.
    await writeHost(dir, { 'config.yml': `name: app\ntoken: ghp_${'a1B2c3D4e5'.repeat(3)}abcdef\n` });
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.keptOut.map((secret) => secret.path), ['config.yml']);
    // The container's copy is the one both agreed on: nothing to lose.
    const down = await runCludJson(['down', dir]);
    assertExit(down.run, 0);

    // A new container has no config.yml (its copy leaves the secret out); the agent writes one.
    await cludUp(dir);
    await execSh(dir, 'printf "name: app\\nport: 8080\\n" > config.yml');
    // No sync carries it, and the sync says so, in its report and in the status.
    const held = await cludSync('sync', dir);
    assert.deepEqual(held.report.keptOut.map((secret) => [secret.path, secret.otherSide]), [['config.yml', 'changed']]);
    assert.match((await runClud(['status', dir])).stdout, /^ {2}kept out {2}config\.yml on host: .*\n {12}the container's version changed too and stays there/m);
    // A secret of the agent's own, never copied to the host, counts too.
    await execSh(dir, 'echo TOKEN=agent > .env.local');
    await assertDownRefused(dir, [
      /^2 change\(s\) made in \/workspace/,
      /1 of them where your folder's file holds a secret, which no sync overwrites \(config\.yml\)/,
      /1 of them files in \/workspace that hold secrets, which no sync copies to your folder unless allowed \(\.env\.local; `clud sync --allow-secret PATTERN` brings one over\)/,
    ]);
    assert.match(await readFile(path.join(dir, 'config.yml'), 'utf8'), /token: ghp_/, "the host's file was overwritten");
    assertExit((await runCludJson(['down', dir, '--force'])).run, 0);
  });

  it('clud up --rebuild that makes the image the container already runs keeps the container, and says so', async function () {
    const dir = await scope.project({ 'a.txt': 'a\n' });
    await cludUp(dir);
    const [before] = await containersFor(dir);
    await execSh(dir, 'echo unsynced > only-here.txt');
    const rebuilt = await cludUp(dir, ['--rebuild']);
    assert.equal(rebuilt.built, true);
    assert.deepEqual(rebuilt.warnings, ['the rebuilt image is the one the container already runs, so the container was kept, and /workspace with it']);
    const [after] = await containersFor(dir);
    assert.equal(after?.Id, before?.Id);
    assert.equal((await execSh(dir, 'cat only-here.txt')).trim(), 'unsynced');
  });

  it("a new container's status lists nothing that stood against the last one's /workspace (a conflict the fresh copy ended)", async function () {
    const dir = await scope.project({ 'notes.md': 'base\n' });
    await cludUp(dir);
    await writeHost(dir, { 'notes.md': 'host edit\n' });
    await execSh(dir, 'echo container edit > notes.md');
    assert.deepEqual((await cludSync('sync', dir)).report.conflicts.map((conflict) => conflict.path), ['notes.md']);
    // Auto-sync is off (the test default): what the status lists is what the agent kept, not a new cycle's.
    const conflicts = async () => ((await runCludJson(['status', dir])).json.live as { conflicts: string[] }).conflicts;
    assert.deepEqual(await conflicts(), ['notes.md']);
    assertExit(await runClud(['down', dir, '--force']), 0);
    await cludUp(dir);
    assert.deepEqual(await conflicts(), []);
  });

  it('clud down refuses for a stopped container whose /workspace has changes the host lacks', async function () {
    const dir = await scope.project({ 'file.txt': 'stopped\n' });
    const name = String((await cludUp(dir)).containerName);
    await execSh(dir, 'echo precious > precious.txt');
    await docker.getContainer(name).stop({ t: 1 });
    assert.equal((await inspectContainer(name))?.State.Running, false);
    await assertDownRefused(dir, /precious\.txt/);
    const refused = await inspectContainer(name);
    assert.ok(refused, 'clud down removed a stopped container that held unsynced changes');
    assert.equal(refused.State.Running, false, 'clud down started the stopped container for its check and left it running');
    // The change is still there: `clud up` (re)starts the container with /workspace kept, and a pull brings it home.
    await cludUp(dir);
    const { report } = await cludSync('pull', dir);
    assert.deepEqual(report.applied, [{ path: 'precious.txt', side: 'host', action: 'create' }]);
    assert.equal(await readFile(path.join(dir, 'precious.txt'), 'utf8'), 'precious\n');
    // With nothing left to lose, a stopped container goes.
    await docker.getContainer(name).stop({ t: 1 });
    const down = await runCludJson(['down', dir]);
    assertExit(down.run, 0);
    assert.equal(down.json.removed, true, describeRun(down.run));
    assert.equal(await inspectContainer(name), undefined);
  });

  it('clud up starts a stopped workspace whose image is out of date without building one: only a new container needs it', async function () {
    // The tag first names the current image, then one whose label says another build context (as
    // an older Clud's image does); building it here would take minutes, or fail without a network.
    const tag = 'clud-outdated-test:latest';
    execFileSync('docker', ['tag', TEST_IMAGE, tag]);
    try {
      const dir = await scope.project({ 'file.txt': 'stopped\n' });
      const name = String((await cludUp(dir, ['--image', tag])).containerName);
      await docker.getContainer(name).stop({ t: 1 });
      execFileSync('docker', ['build', '--quiet', '--tag', tag, '-'], { input: `FROM ${TEST_IMAGE}\nLABEL ${LABEL_CONTEXT_HASH}=outdated\n`, stdio: 'pipe' });
      const up = await cludUp(dir, ['--image', tag]);
      assert.equal(up.built, false, 'clud up built an image for a container that keeps its own');
      assert.equal(up.created, false);
      assert.equal((await runClud(['exec', dir, '--', 'cat', 'file.txt'])).stdout, 'stopped\n');
      assertExit(await runClud(['down', dir, '--force']), 0);
    } finally {
      execFileSync('docker', ['rmi', tag]);
    }
  });

  it('clud down is not refused by changes made on the host only (an edit, a new file, a deletion)', async function () {
    const dir = await scope.project({ 'file.txt': 'v0\n', 'edited.txt': 'v0\n', 'deleted.txt': 'v0\n' });
    const name = String((await cludUp(dir)).containerName);
    await writeFile(path.join(dir, 'new-on-host.txt'), 'nothing in /workspace to lose\n');
    await writeFile(path.join(dir, 'edited.txt'), 'edited on the host\n');
    await unlink(path.join(dir, 'deleted.txt'));
    const down = await runCludJson(['down', dir]);
    assertExit(down.run, 0);
    assert.equal(down.json.removed, true, describeRun(down.run));
    assert.equal(await inspectContainer(name), undefined);
    assert.equal(await readFile(path.join(dir, 'new-on-host.txt'), 'utf8'), 'nothing in /workspace to lose\n');
    assert.equal(await readFile(path.join(dir, 'edited.txt'), 'utf8'), 'edited on the host\n');
  });

  // Folders compare equal whatever their permissions (src/core/files/entry.ts entriesEqual): a
  // sync never carries a folder's chmod, so neither does the check of `clud down`, which must
  // refuse exactly when a sync would still change the host. A file's executable bit is content.
  it("clud down: a folder's permission change in /workspace is not a difference, a file's executable bit is", async function () {
    const dir = await scope.project({ 'private/file.txt': 'x\n', 'tool.sh': '#!/bin/sh\necho tool\n' });
    const name = String((await cludUp(dir)).containerName);
    await execSh(dir, 'chmod 700 private');
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.applied, []);
    assert.deepEqual(report.conflicts, []);
    assert.equal((await stat(path.join(dir, 'private'))).mode & 0o777, 0o755, 'a sync carried the folder mode after all');

    await execSh(dir, 'chmod +x tool.sh');
    await assertDownRefused(dir, /tool\.sh/);
    const pulled = await cludSync('pull', dir);
    assert.deepEqual(pulled.report.applied, [{ path: 'tool.sh', side: 'host', action: 'update' }]);
    assert.equal((await stat(path.join(dir, 'tool.sh'))).mode & 0o777, 0o755);

    const down = await runCludJson(['down', dir]);
    assertExit(down.run, 0);
    assert.equal(down.json.removed, true, describeRun(down.run));
    assert.equal(await inspectContainer(name), undefined);
  });
});
