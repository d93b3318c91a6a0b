import assert from 'node:assert/strict';
import { lstat } from 'node:fs/promises';
import * as path from 'node:path';
import { INTEGRATION_TIMEOUT_MS, TestScope, cludSync, cludUp, execSh, foreignOwners, requireDocker, stateDirectoryOf } from '../helpers/integration';

/** Creates files, folders and a symlink in /workspace, pulls them, and returns their host owners. */
async function pullNewEntries(dir: string): Promise<Array<{ relative: string; uid: number; gid: number }>> {
  await execSh(
    dir,
    [
      'mkdir -p made/deeper/deepest',
      'echo one > made/one.txt',
      'echo two > made/deeper/two.txt',
      'echo top > top-level.txt',
      'ln -s one.txt made/link-to-one',
      'echo changed > existing.txt',
    ].join(' && '),
  );
  const { metrics } = await cludSync('pull', dir);
  assert.deepEqual(metrics.errors, []);
  const relatives = ['made', 'made/deeper', 'made/deeper/deepest', 'made/one.txt', 'made/deeper/two.txt', 'top-level.txt', 'made/link-to-one', 'existing.txt'];
  const owners = [];
  for (const relative of relatives) {
    const info = await lstat(path.join(dir, relative));
    owners.push({ relative, uid: info.uid, gid: info.gid });
  }
  return owners;
}

describe('integration: ownership of pulled files', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(async function () {
    await requireDocker();
  });

  after(async function () {
    await scope.cleanup();
  });

  it('files and folders pulled into a folder owned by UID 1000 belong to UID/GID 1000', async function () {
    const dir = await scope.project({ 'existing.txt': 'before\n' });
    await cludUp(dir);
    const owners = await pullNewEntries(dir);
    assert.deepEqual(
      owners.filter((owner) => owner.uid !== 1000 || owner.gid !== 1000),
      [],
      `entries not owned by 1000:1000: ${JSON.stringify(owners)}`,
    );
  });

  it('a root-owned folder: the sync user keeps its own UID, says so, and what a pull writes belongs to that UID', async function () {
    const dir = await scope.project({ 'existing.txt': 'before\n' }, { owner: { uid: 0, gid: 0 } });
    const up = await cludUp(dir);
    const init = up.init as { warnings: string[]; syncUid: number; syncGid: number; workspaceUid: number };
    assert.notEqual(init.syncUid, 0);
    assert.notEqual(init.workspaceUid, init.syncUid);
    assert.equal(init.warnings.filter((warning) => warning.includes('belongs to root') && warning.includes(`UID ${init.syncUid}`)).length, 1, JSON.stringify(init.warnings));
    const owners = await pullNewEntries(dir);
    assert.deepEqual(
      owners.filter((owner) => owner.uid !== init.syncUid || owner.gid !== init.syncGid),
      [],
      `entries not owned by ${init.syncUid}:${init.syncGid}: ${JSON.stringify(owners)}`,
    );
  });

  it("follows the folder owner's IDs, not a fixed 1000 (folder owned by 1234:2345)", async function () {
    const dir = await scope.project({ 'existing.txt': 'before\n' }, { owner: { uid: 1234, gid: 2345 } });
    await cludUp(dir);
    const owners = await pullNewEntries(dir);
    assert.deepEqual(
      owners.filter((owner) => owner.uid !== 1234 || owner.gid !== 2345),
      [],
      `entries not owned by 1234:2345: ${JSON.stringify(owners)}`,
    );
    // The sync state the agent writes on the host (ancestor, caches, history) is the owner's too.
    assert.deepEqual(await foreignOwners(stateDirectoryOf(dir), 1234, 2345), []);
  });
});
