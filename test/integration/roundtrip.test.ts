import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, chmod, mkdir, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  REPO_ROOT,
  TestScope,
  USER_GID,
  USER_UID,
  appliedChanges,
  assertTreesEqual,
  chownTree,
  cludSync,
  cludUp,
  containerTree,
  execSh,
  hashTree,
  requireDocker,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';
import type { Tree } from '../helpers/integration';

const run = promisify(execFile);

/** Real package folders: a few thousand files of every size, from one-line to megabytes. */
const PACKAGES = [
  'zod',
  'eslint',
  '@typescript-eslint/scope-manager',
  'typescript',
  '@types/node',
  'mocha',
  'execa',
  'get-stream',
  'human-signals',
  'is-stream',
  'npm-run-path',
  'strip-final-newline',
  'figures',
  'cross-spawn',
  'signal-exit',
  'yoctocolors',
  'pretty-ms',
  'is-plain-obj',
  'unicorn-magic',
  'path-key',
  'parse-ms',
  '@sindresorhus/merge-streams',
];

/** Names the sync never copies by design (.gitignore rules, the built-in excludes); none may be in the tree. */
const NEVER_SYNCED = /(^|\/)(\.gitignore|\.DS_Store|Thumbs\.db|\.#.*|.*\.swp|.*\.swx|\.~lock\..*#|\.git)$/;

async function fileSize(file: string): Promise<number> {
  return (await stat(file)).size;
}

describe('integration: byte-identical round trips', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  let initialHost: Tree;

  before(async function () {
    await requireDocker();
    dir = await scope.project({
      'bin/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
      'docs/plain.txt': 'plain\n',
      'docs/read me ✓.txt': 'a name with a space and a non-ASCII character\n',
      'docs/empty': '',
      'node_modules/.bin/tsc': { symlink: '../typescript/bin/tsc' },
      latest: { symlink: 'node_modules/zod' },
      dangling: { symlink: 'does/not/exist' },
    });
    for (const name of PACKAGES) {
      const target = path.join(dir, 'node_modules', name);
      await mkdir(path.dirname(target), { recursive: true });
      await run('cp', ['-a', path.join(REPO_ROOT, 'node_modules', name), target]);
    }
    // Files the sync leaves out by design would make the trees differ for reasons this test is not about.
    for (const relative of (await hashTree(dir)).keys()) {
      if (NEVER_SYNCED.test(relative)) await rm(path.join(dir, relative), { recursive: true, force: true });
    }
    await chownTree(dir, USER_UID, USER_GID);
    initialHost = await hashTree(dir);
    const files = [...initialHost.values()].filter((entry) => entry.startsWith('file ')).length;
    assert.ok(files >= 2000, `only ${files} files in the test tree`);
    assert.ok([...initialHost.values()].some((entry) => entry.startsWith('file 755 ')), 'no executable file in the test tree');
    await cludUp(dir);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('the initial copy is identical to the host folder (content, modes, symlinks), and a sync finds nothing to do', async function () {
    assertTreesEqual(initialHost, await containerTree(dir));
    // The first sync also records the agreed state that the push and pull below are measured against.
    const { metrics, report } = await cludSync('sync', dir);
    assert.deepEqual(metrics.errors, []);
    assert.deepEqual(appliedChanges(report), []);
    assert.deepEqual(report.conflicts, []);
    assert.ok(report.scanned.hostFiles >= 2000 && report.scanned.containerFiles === report.scanned.hostFiles, JSON.stringify(report.scanned));
  });

  it('host edits, additions, deletions, a chmod and a re-pointed symlink reach /workspace with push', async function () {
    await appendFile(path.join(dir, 'node_modules/zod/package.json'), '\n{"edited":"on the host"}\n');
    await writeFile(path.join(dir, 'bin/run.sh'), '#!/bin/sh\necho edited on the host\n');
    await mkdir(path.join(dir, 'notes'));
    await writeFile(path.join(dir, 'notes/new-file.txt'), 'n'.repeat(1000));
    await unlink(path.join(dir, 'node_modules/typescript/README.md'));
    await unlink(path.join(dir, 'node_modules/execa/readme.md'));
    await chmod(path.join(dir, 'docs/plain.txt'), 0o755);
    await unlink(path.join(dir, 'latest'));
    await symlink('node_modules/mocha', path.join(dir, 'latest'));
    await chownTree(dir, USER_UID, USER_GID);
    const host = await hashTree(dir);
    assert.notDeepEqual(host, initialHost);

    const { metrics, report } = await cludSync('push', dir);
    assert.deepEqual(metrics.errors, []);
    assertTreesEqual(host, await containerTree(dir));

    assert.equal(report.policy, 'push');
    // A chmod that adds an executable bit is a change; the file is copied again with its new mode.
    assert.deepEqual(
      appliedChanges(report),
      [
        'container create notes',
        'container create notes/new-file.txt',
        'container delete node_modules/execa/readme.md',
        'container delete node_modules/typescript/README.md',
        'container update bin/run.sh',
        'container update docs/plain.txt',
        'container update latest',
        'container update node_modules/zod/package.json',
      ].sort(),
    );
    assert.equal(metrics.filesTransferred, 6, JSON.stringify(metrics));
    assert.equal(metrics.filesDeleted, 2, JSON.stringify(metrics));
    const bytes =
      (await fileSize(path.join(dir, 'node_modules/zod/package.json'))) + (await fileSize(path.join(dir, 'bin/run.sh'))) + 1000 + (await fileSize(path.join(dir, 'docs/plain.txt')));
    assert.equal(metrics.bytesTransferred, bytes, JSON.stringify(metrics));
    // What the push replaced or deleted in /workspace was the agreed state: nothing to keep aside.
    assert.deepEqual(report.kept, []);
  });

  it('container edits, additions, deletions, a new symlink and a chmod reach the host with pull', async function () {
    const before = await hashTree(dir);
    await execSh(
      dir,
      [
        "printf 'edited in the container\\n' >> node_modules/execa/package.json",
        "printf 'brand new\\n' > made-in-container.txt",
        'mkdir -p gen/deep',
        'head -c 5000 /dev/urandom > gen/deep/data.bin',
        'rm node_modules/mocha/LICENSE node_modules/zod/README.md',
        'ln -s made-in-container.txt link-from-container',
        // An executable bit is content (see entry.ts); the other permission bits of a file are not synced.
        'chmod 700 docs/empty',
      ].join(' && '),
    );
    const container = await containerTree(dir);
    const { metrics, report } = await cludSync('pull', dir);
    assert.deepEqual(metrics.errors, []);
    const host = await hashTree(dir);
    assert.notDeepEqual(host, before);
    assertTreesEqual(host, container, ['host', 'container']);
    assertTreesEqual(host, await containerTree(dir));

    assert.equal(report.policy, 'pull');
    assert.deepEqual(
      appliedChanges(report),
      [
        'host create gen',
        'host create gen/deep',
        'host create gen/deep/data.bin',
        'host create link-from-container',
        'host create made-in-container.txt',
        'host delete node_modules/mocha/LICENSE',
        'host delete node_modules/zod/README.md',
        'host update docs/empty',
        'host update node_modules/execa/package.json',
      ].sort(),
    );
    assert.equal(metrics.filesTransferred, 7, JSON.stringify(metrics));
    assert.equal(metrics.filesDeleted, 2, JSON.stringify(metrics));
    const bytes = (await fileSize(path.join(dir, 'node_modules/execa/package.json'))) + (await fileSize(path.join(dir, 'made-in-container.txt'))) + 5000;
    assert.equal(metrics.bytesTransferred, bytes, JSON.stringify(metrics));
    assert.deepEqual(report.kept, []);
  });

  it('a push and a pull with nothing changed transfer nothing', async function () {
    for (const command of ['push', 'pull', 'sync'] as const) {
      const { metrics, report } = await cludSync(command, dir);
      assert.deepEqual(
        { filesTransferred: metrics.filesTransferred, filesDeleted: metrics.filesDeleted, bytesTransferred: metrics.bytesTransferred, conflicts: metrics.conflicts, applied: report.appliedCount, kept: report.kept },
        { filesTransferred: 0, filesDeleted: 0, bytesTransferred: 0, conflicts: 0, applied: 0, kept: [] },
        `${command}: ${JSON.stringify(metrics)}`,
      );
    }
    assertTreesEqual(await hashTree(dir), await containerTree(dir));
  });
});
