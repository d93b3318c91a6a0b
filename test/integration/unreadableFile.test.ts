import assert from 'node:assert/strict';
import { chmod, chown, readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  TestScope,
  assertExit,
  containerTree,
  describeRun,
  readContainerFile,
  requireDocker,
  runClud,
  runCludJson,
  writeContainer,
  USER_GID,
  USER_UID,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';
import type { SyncOutput } from '../helpers/integration';

interface Init {
  phase?: string;
  error?: string;
  initialSync?: { errors: string[]; notCopied: { path: string; reason: string }[] };
}

// The steps depend on each other (up, look, sync, fix, sync), so they share one container.
describe('integration: one unreadable file does not block the workspace', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  let secret = '';

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'readable.txt': 'fine\n', 'src/index.ts': 'export {};\n', 'unreadable.bin': 'root only\n' });
    // Owned by root with mode 000: the workspace user (UID 1000, like the folder) cannot read it.
    secret = path.join(dir, 'unreadable.bin');
    await chown(secret, 0, 0);
    await chmod(secret, 0o000);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('clud up succeeds, copies everything else, and names the file it left alone', async function () {
    const { run, json } = await runCludJson(['up', dir]);
    assertExit(run, 0);
    assert.equal(json.ok, true, describeRun(run));
    const init = json.init as Init;
    assert.equal(init.phase, 'ready', describeRun(run));
    assert.deepEqual(init.initialSync?.errors, []);
    assert.deepEqual(init.initialSync?.notCopied.map((left) => left.path), ['unreadable.bin'], describeRun(run));

    const tree = await containerTree(dir);
    assert.deepEqual([...tree.keys()].sort(), ['readable.txt', 'src', 'src/index.ts']);

    const text = await runClud(['status', dir]);
    assertExit(text, 0);
    assert.match(text.stdout, /workspace: ready/, describeRun(text));
    assert.match(text.stdout, /not copied.*unreadable\.bin/, describeRun(text));
    const up = await runClud(['up', dir]);
    assertExit(up, 0);
    assert.match(up.stdout, /not copied.*unreadable\.bin/, describeRun(up));
  });

  it('every sync reports it as a problem, leaves it alone on both sides, and carries everything else', async function () {
    // Written as the folder's owner would, leaving the unreadable file as it is.
    await writeFile(path.join(dir, 'readable.txt'), 'host edit\n');
    await chown(path.join(dir, 'readable.txt'), USER_UID, USER_GID);
    await writeContainer(dir, { 'src/new.ts': 'from the container\n' });
    const { run, json } = await runCludJson(['sync', dir]);
    assertExit(run, 0);
    const report = (json as unknown as SyncOutput).report;
    assert.deepEqual(report.problems.map((problem) => `${problem.side} ${problem.path}`), ['host unreadable.bin'], describeRun(run));
    assert.deepEqual(report.skipped, []);
    assert.equal(await readContainerFile(dir, 'readable.txt'), 'host edit\n');
    assert.equal(await readFile(path.join(dir, 'src', 'new.ts'), 'utf8'), 'from the container\n');
    // Untouched on the host, absent in the container.
    const info = await stat(secret);
    assert.equal(info.mode & 0o777, 0);
    assert.equal(info.uid, 0);
    assert.equal((await containerTree(dir)).has('unreadable.bin'), false);

    const text = await runClud(['sync', dir]);
    assertExit(text, 0);
    assert.match(text.stdout, /problem\s+unreadable\.bin on host/, describeRun(text));
  });

  it('once it can be read, the next sync copies it', async function () {
    await chmod(secret, 0o644);
    const { run, json } = await runCludJson(['sync', dir]);
    assertExit(run, 0);
    assert.deepEqual((json as unknown as SyncOutput).report.problems, [], describeRun(run));
    assert.equal(await readContainerFile(dir, 'unreadable.bin'), 'root only\n');
  });
});
