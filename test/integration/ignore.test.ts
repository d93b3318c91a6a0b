import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  INTEGRATION_TIMEOUT_MS,
  TestScope,
  USER_GID,
  USER_UID,
  changedPaths,
  chownTree,
  cludSync,
  cludUp,
  containerTree,
  execSh,
  hostStatePath,
  pathExists,
  requireDocker,
  stateDirectoryOf,
  writeTree,
} from '../helpers/integration';

const HOST_HEAD = 'ref: refs/heads/main\n';

// One container: every test works on its own file names, so their changes do not meet.
describe('integration: ignored files and .git', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';

  before(async function () {
    await requireDocker();
    dir = await scope.project({
      '.gitignore': '*.log\n!important.log\nbuild/\n',
      'sub/.gitignore': 'secret.txt\n',
      'main.txt': 'main\n',
      'app.log': 'ignored by the root .gitignore\n',
      'important.log': 're-included by !important.log\n',
      'build/out.js': 'ignored folder\n',
      'sub/secret.txt': 'ignored by sub/.gitignore\n',
      'sub/deeper/secret.txt': 'ignored by sub/.gitignore, one level down\n',
      'sub/keep.txt': 'kept\n',
      'other/secret.txt': "not ignored: sub/.gitignore does not reach other/\n",
      '.git/HEAD': HOST_HEAD,
      '.git/config': '[core]\n\trepositoryformatversion = 0\n',
    });
    await cludUp(dir);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('the initial copy leaves out what the root and nested .gitignore files ignore', async function () {
    const tree = await containerTree(dir);
    for (const ignored of ['app.log', 'build', 'build/out.js', 'sub/secret.txt', 'sub/deeper/secret.txt']) {
      assert.ok(!tree.has(ignored), `${ignored} was copied into /workspace`);
    }
    for (const kept of ['.gitignore', 'sub/.gitignore', 'main.txt', 'sub/keep.txt', 'other/secret.txt']) {
      assert.ok(tree.has(kept), `${kept} is missing from /workspace: ${[...tree.keys()].join(', ')}`);
    }
  });

  it('a file re-included with a negated .gitignore pattern (!important.log) is copied, and synced both ways', async function () {
    const tree = await containerTree(dir);
    assert.ok(tree.has('important.log'), `important.log is not in /workspace: ${[...tree.keys()].join(', ')}`);
    await execSh(dir, "printf 'edited in the container\\n' > important.log");
    const { metrics, report } = await cludSync('pull', dir);
    assert.deepEqual(metrics.errors, []);
    assert.deepEqual(changedPaths(report), ['important.log']);
    assert.equal(await readFile(path.join(dir, 'important.log'), 'utf8'), 'edited in the container\n');
  });

  it('files the container makes that are ignored are not pulled', async function () {
    await execSh(dir, 'echo made > made.log && mkdir -p build && echo gen > build/gen.js && echo container > sub/secret.txt && echo new > sub/new.txt');
    const { metrics, report } = await cludSync('pull', dir);
    assert.deepEqual(metrics.errors, []);
    assert.equal(await pathExists(path.join(dir, 'made.log')), false, 'made.log was pulled');
    assert.equal(await pathExists(path.join(dir, 'build/gen.js')), false, 'build/gen.js was pulled');
    assert.equal(await readFile(path.join(dir, 'sub/secret.txt'), 'utf8'), 'ignored by sub/.gitignore\n', 'the host sub/secret.txt was overwritten');
    // The control: a file that is not ignored is pulled.
    assert.equal(await readFile(path.join(dir, 'sub/new.txt'), 'utf8'), 'new\n');
    assert.deepEqual(changedPaths(report), ['sub/new.txt']);
  });

  it('push does not delete ignored files that exist only in the container', async function () {
    await execSh(dir, 'echo c > only-in-container.log && mkdir -p build && echo c > build/container-only.js && echo stray > stray.txt');
    const { metrics, report } = await cludSync('push', dir);
    assert.deepEqual(metrics.errors, []);
    const tree = await containerTree(dir);
    assert.ok(tree.has('only-in-container.log'), 'push deleted only-in-container.log');
    assert.ok(tree.has('build/container-only.js'), 'push deleted build/container-only.js');
    // The control: push mirrors the host, so a file that is not ignored and not on the host goes,
    // after a copy of it is kept aside in the state folder.
    assert.ok(!tree.has('stray.txt'), 'push kept stray.txt, which the host does not have');
    assert.deepEqual(changedPaths(report), ['stray.txt']);
    assert.deepEqual(report.kept.map((kept) => `${kept.side} ${kept.path}`), ['container stray.txt']);
    assert.equal(await readFile(hostStatePath(stateDirectoryOf(dir), report.kept[0]!.keptAt), 'utf8'), 'stray\n');
  });

  it('pull does not delete ignored files that exist only on the host', async function () {
    await writeTree(dir, { 'host-only.log': 'h\n', 'build/host-only.js': 'h\n', 'sub/deeper/secret.txt': 'still here\n', 'host-stray.txt': 'stray\n' });
    await chownTree(dir, USER_UID, USER_GID);
    const { metrics, report } = await cludSync('pull', dir);
    assert.deepEqual(metrics.errors, []);
    assert.equal(await readFile(path.join(dir, 'host-only.log'), 'utf8'), 'h\n');
    assert.equal(await readFile(path.join(dir, 'build/host-only.js'), 'utf8'), 'h\n');
    assert.equal(await readFile(path.join(dir, 'build/out.js'), 'utf8'), 'ignored folder\n');
    assert.equal(await readFile(path.join(dir, 'app.log'), 'utf8'), 'ignored by the root .gitignore\n');
    assert.equal(await readFile(path.join(dir, 'sub/deeper/secret.txt'), 'utf8'), 'still here\n');
    // The control: pull mirrors /workspace, so a file that is not ignored and not there goes.
    assert.equal(await pathExists(path.join(dir, 'host-stray.txt')), false, 'pull kept host-stray.txt, which /workspace does not have');
    assert.deepEqual(changedPaths(report), ['host-stray.txt']);
    assert.deepEqual(report.kept.map((kept) => `${kept.side} ${kept.path}`), ['host host-stray.txt']);
    assert.equal(await readFile(hostStatePath(stateDirectoryOf(dir), report.kept[0]!.keptAt), 'utf8'), 'stray\n');
  });

  it("the host's .git is never overwritten or deleted by a pull", async function () {
    await execSh(dir, "mkdir -p .git && echo 'ref: refs/heads/container' > .git/HEAD && echo x > .git/container-only");
    let { metrics, report } = await cludSync('pull', dir);
    assert.deepEqual(metrics.errors, []);
    assert.equal(await readFile(path.join(dir, '.git/HEAD'), 'utf8'), HOST_HEAD, 'pull overwrote the host .git/HEAD');
    assert.equal(await pathExists(path.join(dir, '.git/container-only')), false, 'pull wrote into the host .git');
    assert.ok(!changedPaths(report).some((changed) => changed.startsWith('.git/') || changed === '.git'), JSON.stringify(report.applied));

    // Even a container without any .git leaves the host's alone.
    await execSh(dir, 'rm -rf .git');
    ({ metrics, report } = await cludSync('pull', dir));
    assert.deepEqual(metrics.errors, []);
    assert.equal(await readFile(path.join(dir, '.git/HEAD'), 'utf8'), HOST_HEAD, 'pull deleted the host .git');
    assert.equal(await readFile(path.join(dir, '.git/config'), 'utf8'), '[core]\n\trepositoryformatversion = 0\n');
    assert.deepEqual(changedPaths(report), []);
  });
});
