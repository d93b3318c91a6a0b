import assert from 'node:assert/strict';
import { chmod, chown } from 'node:fs/promises';
import * as path from 'node:path';
import {
  TestScope,
  assertExit,
  assertTreesEqual,
  containerTree,
  describeRun,
  hashTree,
  lines,
  requireDocker,
  runClud,
  runCludJson,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';

interface Init {
  phase?: string;
  error?: string;
  attempts?: number;
}

// The steps depend on each other (fail, look, refuse, fix, retry), so they share one container.
describe('integration: a failed initial copy', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  let secret = '';

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'readable.txt': 'fine\n', 'src/index.ts': 'export {};\n', 'unreadable.bin': 'root only\n' });
    // Owned by root with mode 600: the workspace user (UID 1000, like the folder) cannot read it.
    secret = path.join(dir, 'unreadable.bin');
    await chown(secret, 0, 0);
    await chmod(secret, 0o600);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('clud up exits 1 with init.phase "failed" and an error naming the file, and the container keeps running', async function () {
    const { run, json } = await runCludJson(['up', dir]);
    assertExit(run, 1);
    assert.equal(json.ok, false, describeRun(run));
    assert.equal(json.state, 'running', describeRun(run));
    const init = json.init as Init;
    assert.equal(init.phase, 'failed', describeRun(run));
    assert.match(String(init.error), /unreadable\.bin/, describeRun(run));

    const status = await runCludJson(['status', dir]);
    assertExit(status.run, 0);
    assert.equal(status.json.state, 'running', describeRun(status.run));
    assert.equal((status.json.init as Init).phase, 'failed');
    assert.equal((status.json.init as Init).error, init.error);

    // People (no --json) get the reason too.
    const text = await runClud(['status', dir]);
    assertExit(text, 0);
    assert.match(text.stdout, /failed.*unreadable\.bin/, describeRun(text));
  });

  it('clud pull is refused while the initial copy has not completed, and the folder is unchanged', async function () {
    const before = await hashTree(dir);
    const { run, json } = await runCludJson(['pull', dir]);
    assertExit(run, 1);
    assert.equal(json.ok, false);
    assert.equal((json.error as { code?: string }).code, 'sync-halted', describeRun(run));
    assert.match(String((json.error as { message?: string }).message), /initial copy .*has not completed/, describeRun(run));
    assert.equal(lines(run.stderr).length, 1, describeRun(run));
    assert.match(run.stderr, /initial copy .*has not completed/);
    assertTreesEqual(before, await hashTree(dir), ['before', 'after']);
  });

  it('after the cause is fixed, clud up retries the copy and reports ready', async function () {
    await chmod(secret, 0o644);
    const { run, json } = await runCludJson(['up', dir]);
    assertExit(run, 0);
    assert.equal(json.ok, true, describeRun(run));
    assert.equal(json.created, false, 'the container was recreated instead of retried');
    const init = json.init as Init;
    assert.equal(init.phase, 'ready', describeRun(run));
    assert.equal(init.error, undefined);
    assert.ok((init.attempts ?? 0) >= 2, describeRun(run));

    const status = await runCludJson(['status', dir]);
    assert.equal((status.json.init as Init).phase, 'ready');
    const tree = await containerTree(dir);
    assert.ok(tree.has('unreadable.bin'), `unreadable.bin is not in /workspace: ${[...tree.keys()].join(', ')}`);
    // Everything the host has is there, byte for byte.
    assertTreesEqual(await hashTree(dir), tree);

    const pull = await runCludJson(['pull', dir]);
    assertExit(pull.run, 0);
  });
});
