// Three-way sync in a real container: `clud sync` (edits on either side cross over), conflicts and
// `clud resolve`, the safety halt and `clud resume`, an edit made while a sync runs, backups, and
// who owns what the sync writes on the host. Each test has its own folder and container.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { MAX_LISTED, type BackupManifest } from '../../src/core/protocol';
import {
  INTEGRATION_TIMEOUT_MS,
  TestScope,
  USER_GID,
  USER_UID,
  appliedChanges,
  assertExit,
  assertTreesEqual,
  cludSync,
  cludUp,
  containerTree,
  describeRun,
  execSh,
  foreignOwners,
  hashTree,
  hostStatePath,
  keptVersions,
  pathExists,
  readContainerFile,
  requireDocker,
  runClud,
  runCludJson,
  runCludSync,
  sha256,
  shellQuote,
  stateDirectoryOf,
  syncedProject,
  writeContainer,
  writeHost,
} from '../helpers/integration';
import type { ProjectFiles, SyncOutput } from '../helpers/integration';

/** Edits `relative` differently on both sides and runs `clud sync`, which must report exactly that conflict. */
async function makeConflict(dir: string, relative: string, host: string, container: string): Promise<SyncOutput> {
  await writeHost(dir, { [relative]: host });
  await writeContainer(dir, { [relative]: container });
  const output = await cludSync('sync', dir);
  assert.deepEqual(output.report.conflicts.map((conflict) => conflict.path), [relative], JSON.stringify(output.report));
  assert.equal(output.metrics.conflicts, 1);
  assert.deepEqual(output.report.applied, []);
  return output;
}

describe('integration: three-way sync', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(async function () {
    await requireDocker();
  });

  after(async function () {
    await scope.cleanup();
  });

  it('edits to the same file on both sides are a conflict that keeps both; clud resolve settles it', async function () {
    const dir = await syncedProject(scope, { 'notes.md': 'notes v0\n', 'src/app.ts': 'app v0\n', 'config.json': '{"v":0}\n', 'untouched.txt': 'same\n' });
    const state = stateDirectoryOf(dir);

    // clud sync reports the conflict, changes neither version, and exits 0.
    await writeHost(dir, { 'notes.md': 'notes: host edit\n' });
    await writeContainer(dir, { 'notes.md': 'notes: container edit\n' });
    const { run, output } = await runCludSync('sync', dir);
    assertExit(run, 0);
    assert.equal(output.ok, true, describeRun(run));
    assert.equal(output.metrics.conflicts, 1, describeRun(run));
    assert.deepEqual(output.metrics.errors, []);
    assert.equal(output.report.appliedCount, 0);
    const [conflict] = output.report.conflicts;
    assert.equal(output.report.conflicts.length, 1, describeRun(run));
    assert.equal(conflict!.path, 'notes.md');
    assert.deepEqual(
      [conflict!.ancestor, conflict!.host, conflict!.container].map((entry) => (entry?.kind === 'file' ? entry.hash : entry?.kind)),
      [sha256('notes v0\n'), sha256('notes: host edit\n'), sha256('notes: container edit\n')],
    );
    assert.equal(await readFile(path.join(dir, 'notes.md'), 'utf8'), 'notes: host edit\n');
    assert.equal(await readContainerFile(dir, 'notes.md'), 'notes: container edit\n');
    // People are told what to run.
    const text = await runClud(['sync', dir]);
    assertExit(text, 0);
    const folder = dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(text.stdout, new RegExp(`conflict\\s+notes\\.md\\s+\\(clud resolve ${folder} notes\\.md --keep host\\|container\\|both\\)`), describeRun(text));
    // Run in the folder, the command needs no folder.
    const inFolder = await runClud(['sync'], { cwd: dir });
    assert.match(inFolder.stdout, /conflict\s+notes\.md\s+\(clud resolve notes\.md --keep host\|container\|both\)/, describeRun(inFolder));

    // clud conflicts lists it.
    const listed = await runCludJson(['conflicts', dir]);
    assertExit(listed.run, 0);
    assert.deepEqual((listed.json.conflicts as Array<{ path: string }>).map((item) => item.path), ['notes.md'], describeRun(listed.run));

    // --keep container: both sides get the container's version; the host's is kept aside.
    const resolved = await cludSync('resolve', dir, ['notes.md', '--keep', 'container']);
    assert.deepEqual(resolved.report.conflicts, []);
    assert.equal(await readFile(path.join(dir, 'notes.md'), 'utf8'), 'notes: container edit\n');
    assert.equal(await readContainerFile(dir, 'notes.md'), 'notes: container edit\n');
    assert.deepEqual(await keptVersions(state, 'host', 'notes.md'), ['notes: host edit\n']);
    const after = await runCludJson(['conflicts', dir]);
    assert.deepEqual(after.json.conflicts, [], describeRun(after.run));

    // Two more conflicts in one sync.
    await writeHost(dir, { 'src/app.ts': 'app: host edit\n', 'config.json': '{"v":"host"}\n' });
    await writeContainer(dir, { 'src/app.ts': 'app: container edit\n', 'config.json': '{"v":"container"}\n' });
    const two = await cludSync('sync', dir);
    assert.deepEqual(two.report.conflicts.map((item) => item.path), ['config.json', 'src/app.ts']);

    // --keep both: the container's version becomes NAME.container.EXT beside the host's, on both sides.
    const both = await cludSync('resolve', dir, ['src/app.ts', '--keep', 'both']);
    assert.deepEqual(both.report.conflicts.map((item) => item.path), ['config.json'], 'resolving one conflict settled another');
    for (const read of [(relative: string) => readFile(path.join(dir, relative), 'utf8'), (relative: string) => readContainerFile(dir, relative)]) {
      assert.equal(await read('src/app.ts'), 'app: host edit\n');
      assert.equal(await read('src/app.container.ts'), 'app: container edit\n');
    }

    // --keep host: the mirror image of --keep container; the container's version is kept aside.
    const host = await cludSync('resolve', dir, ['config.json', '--keep', 'host']);
    assert.deepEqual(host.report.conflicts, []);
    assert.equal(await readFile(path.join(dir, 'config.json'), 'utf8'), '{"v":"host"}\n');
    assert.equal(await readContainerFile(dir, 'config.json'), '{"v":"host"}\n');
    assert.deepEqual(await keptVersions(state, 'container', 'config.json'), ['{"v":"container"}\n']);

    // Settled: the two sides are the same and the next sync has nothing to do.
    assertTreesEqual(await hashTree(dir), await containerTree(dir));
    const quiet = await cludSync('sync', dir);
    assert.deepEqual([quiet.report.appliedCount, quiet.report.conflicts], [0, []]);
  });

  it('a sync that finds thousands of conflicts answers with the first ones listed and every one counted', async function () {
    // 3,000 conflicts describe to about 1.2 MB: more than one message may be.
    const count = 3000;
    const names = Array.from({ length: count }, (_, index) => `many/conflicting-file-${index}.txt`);
    const dir = await syncedProject(scope, Object.fromEntries(names.map((name) => [name, 'v0\n'])));
    await writeHost(dir, Object.fromEntries(names.map((name) => [name, 'host edit\n'])));
    await execSh(dir, `cd /workspace/many && for i in $(seq 0 ${count - 1}); do echo container edit > conflicting-file-$i.txt; done`);
    const { run, output } = await runCludSync('sync', dir);
    assertExit(run, 0);
    assert.ok(output.report.conflicts.length > 0 && output.report.conflicts.length <= MAX_LISTED, `${output.report.conflicts.length} listed`);
    assert.equal(output.report.conflicts.length + (output.report.unlisted?.conflicts ?? 0), count, describeRun(run));
    assert.equal(output.metrics.conflicts, count);
    const listed = await runCludJson(['conflicts', dir]);
    assertExit(listed.run, 0);
    assert.equal((listed.json.conflicts as unknown[]).length + (listed.json.unlisted as number), count, describeRun(listed.run));
    assert.equal(await readFile(path.join(dir, names[0]!), 'utf8'), 'host edit\n', 'a conflict changed the host');
  });

  it('clud resolve reports what it changed and where it kept the losing version', async function () {
    const dir = await syncedProject(scope, { 'notes.md': 'notes v0\n' });
    await makeConflict(dir, 'notes.md', 'notes: host edit\n', 'notes: container edit\n');
    const { metrics, report } = await cludSync('resolve', dir, ['notes.md', '--keep', 'container']);
    // How the host's notes.md was replaced is the subject of the next test; here, that it was.
    assert.ok(report.applied.length > 0 && report.applied.every((change) => `${change.side} ${change.path}` === 'host notes.md'), JSON.stringify(report.applied));
    assert.equal(metrics.filesTransferred, 1);
    assert.ok(report.undoStep, 'the resolve wrote to the host and made no undo step');
    assert.deepEqual(report.kept.map((kept) => `${kept.side} ${kept.path}`), ['host notes.md']);
    assert.equal(await readFile(hostStatePath(stateDirectoryOf(dir), report.kept[0]!.keptAt), 'utf8'), 'notes: host edit\n');
    assert.equal(await readFile(path.join(dir, 'notes.md'), 'utf8'), 'notes: container edit\n');
  });

  // Regression test for a bug fixed after it was found.
  it('clud resolve replaces the losing file in one step, as a sync would', async function () {
    const dir = await syncedProject(scope, { 'notes.md': 'notes v0\n' });
    await makeConflict(dir, 'notes.md', 'notes: host edit\n', 'notes: container edit\n');
    const { metrics, report } = await cludSync('resolve', dir, ['notes.md', '--keep', 'container']);
    assert.deepEqual(appliedChanges(report), ['host update notes.md']);
    assert.deepEqual([metrics.filesTransferred, metrics.filesDeleted], [1, 0]);
  });

  it('edits to different files on both sides, and deletions, cross over in one clud sync', async function () {
    const dir = await syncedProject(scope, {
      'a.txt': 'a v0\n',
      'b.txt': 'b v0\n',
      'delete-on-host.txt': 'h\n',
      'delete-in-container.txt': 'c\n',
      'old-folder/file.txt': 'old\n',
      'stays/file.txt': 'stays\n',
    });
    await writeHost(dir, { 'a.txt': 'a: host edit\n', 'host-new/file.txt': 'new on the host\n' });
    await unlink(path.join(dir, 'delete-on-host.txt'));
    await writeContainer(dir, { 'b.txt': 'b: container edit\n', 'made/deep/file.txt': 'new in the container\n' });
    await execSh(dir, 'rm delete-in-container.txt && rm -r old-folder');

    const { metrics, report } = await cludSync('sync', dir);
    assert.deepEqual(metrics.errors, []);
    assert.deepEqual(report.conflicts, []);
    assert.deepEqual(appliedChanges(report), [
      'container create host-new',
      'container create host-new/file.txt',
      'container delete delete-on-host.txt',
      'container update a.txt',
      'host create made',
      'host create made/deep',
      'host create made/deep/file.txt',
      'host delete delete-in-container.txt',
      'host delete old-folder',
      'host delete old-folder/file.txt',
      'host update b.txt',
    ]);
    assert.deepEqual([metrics.filesTransferred, metrics.filesDeleted], [7, 4], JSON.stringify(metrics));
    // Everything deleted or overwritten was the agreed state: nothing needed keeping aside.
    assert.deepEqual(report.kept, []);

    const host = await hashTree(dir);
    assertTreesEqual(host, await containerTree(dir));
    assert.deepEqual(
      [...host.keys()].filter((relative) => !relative.includes('/')).sort(),
      ['a.txt', 'b.txt', 'host-new', 'made', 'stays'],
    );
    assert.equal(await readFile(path.join(dir, 'b.txt'), 'utf8'), 'b: container edit\n');
    assert.equal(await readContainerFile(dir, 'a.txt'), 'a: host edit\n');
  });

  it('an emptied /workspace halts every sync until clud resume, which copies the host back and deletes nothing', async function () {
    const dir = await syncedProject(scope, {
      'src/main.ts': 'main\n',
      'README.md': 'readme\n',
      '.env.example': 'KEY=value\n',
      '.config/settings.json': '{}\n',
    });
    const hostBefore = await hashTree(dir);
    await execSh(dir, 'rm -rf /workspace/* /workspace/.[!.]*');
    assert.equal((await containerTree(dir)).size, 0, '/workspace is not empty');

    for (const command of ['sync', 'sync', 'pull'] as const) {
      const { run, output } = await runCludSync(command, dir);
      assertExit(run, 1);
      assert.equal(output.ok, false, describeRun(run));
      assert.equal(output.report.halted?.side, 'container', describeRun(run));
      assert.equal(output.report.appliedCount, 0, describeRun(run));
      assertTreesEqual(hostBefore, await hashTree(dir), ['before', `after clud ${command}`]);
    }
    const text = await runClud(['sync', dir]);
    assertExit(text, 1);
    assert.match(text.stdout, /halted:.*\n.*clud resume/, describeRun(text));

    // A host edit made meanwhile is merged too.
    await writeHost(dir, { 'while-halted.txt': 'written while the sync was halted\n' });
    const hostNow = await hashTree(dir);
    const { report } = await cludSync('resume', dir);
    assert.equal(report.halted, undefined);
    assert.ok(report.applied.every((change) => change.side === 'container' && change.action === 'create'), JSON.stringify(report.applied));
    assertTreesEqual(hostNow, await hashTree(dir), ['before', 'after clud resume']);
    assertTreesEqual(hostNow, await containerTree(dir));

    const next = await cludSync('sync', dir);
    assert.equal(next.report.halted, undefined);
    assert.equal(next.report.appliedCount, 0);
  });

  it('a pull from an emptied /workspace and a push from an emptied folder halt, even before the first sync', async function () {
    const files = { 'src/main.ts': 'main\n', 'docs/guide.md': 'guide\n' };
    const dir = await scope.project(files);
    await cludUp(dir);

    await execSh(dir, 'rm -rf /workspace/*');
    const pull = await runCludSync('pull', dir);
    assertExit(pull.run, 1);
    assert.equal(pull.output.report.halted?.side, 'container', describeRun(pull.run));
    assert.equal(await readFile(path.join(dir, 'src/main.ts'), 'utf8'), 'main\n');
    await cludSync('resume', dir);
    assertTreesEqual(await hashTree(dir), await containerTree(dir));

    for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true });
    const push = await runCludSync('push', dir);
    assertExit(push.run, 1);
    assert.equal(push.output.report.halted?.side, 'host', describeRun(push.run));
    assert.equal(await readContainerFile(dir, 'src/main.ts'), 'main\n');
    await cludSync('resume', dir);
    assert.equal(await readFile(path.join(dir, 'docs/guide.md'), 'utf8'), 'guide\n');
    assertTreesEqual(await hashTree(dir), await containerTree(dir));
  });

  it('a host file rewritten again and again while a pull runs is never clobbered: its last content stays or is kept aside', async function () {
    const files: ProjectFiles = { 'target.txt': 'target v0\n' };
    for (let index = 0; index < 3000; index += 1) files[`d${index % 30}/f${index}.txt`] = `v0 ${index}\n`;
    const dir = await syncedProject(scope, files);
    const state = stateDirectoryOf(dir);
    const target = path.join(dir, 'target.txt');
    const containerVersion = 'target: the container version\n';
    // Every file changes in the container, so that the pull has a few seconds of work.
    await execSh(dir, `for f in d*/f*.txt; do echo "rewritten $f" > "$f"; done && printf %s ${shellQuote(containerVersion)} > target.txt`);

    const pull = runCludSync('pull', dir);
    let finished = false;
    void pull.finally(() => (finished = true)).catch(() => {});
    const written = new Set<string>();
    let last = '';
    while (!finished) {
      last = `host write ${written.size + 1} ${randomUUID()}\n`;
      written.add(last);
      await writeFile(target, last); // in place, like most programs that write a file
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const { run, output } = await pull;
    assert.ok(written.size > 20, `only ${written.size} writes while the pull ran: it was too quick to race with`);

    // The pull carried everything else, and only ever skipped the file being written.
    assert.equal(output.report.halted, undefined, describeRun(run));
    assert.ok(output.report.skipped.every((skipped) => skipped.path === 'target.txt' && skipped.side === 'host'), describeRun(run));
    assertExit(run, output.report.skipped.length > 0 ? 1 : 0);
    const notTarget = { exclude: (relative: string) => relative === 'target.txt' };
    assertTreesEqual(await hashTree(dir, notTarget), await containerTree(dir, notTarget));

    // Whatever the timing: the file holds a write of ours or the container's version, and our
    // last write is in the file or kept aside.
    const final = await readFile(target, 'utf8');
    const kept = await keptVersions(state, 'host', 'target.txt');
    assert.ok(written.has(final) || final === containerVersion, `target.txt holds ${JSON.stringify(final)}, neither a write of ours nor the container's version`);
    assert.ok(final === last || kept.includes(last), `the last write ${JSON.stringify(last)} is lost: the file holds ${JSON.stringify(final)}, kept: ${JSON.stringify(kept)}\n${describeRun(run)}`);

    // Once the writes stop, a pull goes through and keeps that last write aside.
    const quiet = await cludSync('pull', dir);
    assert.deepEqual(quiet.report.skipped, []);
    assert.equal(await readFile(target, 'utf8'), containerVersion);
    assert.ok((await keptVersions(state, 'host', 'target.txt')).includes(last), 'the last write is not in kept/');
  });

  it('a pull that is retried reports every change it made, not only those of its last attempt', async function () {
    const files: ProjectFiles = { 'target.txt': 'target v0\n' };
    for (let index = 0; index < 50; index += 1) files[`f${index}.txt`] = `v0 ${index}\n`;
    const dir = await syncedProject(scope, files);
    await execSh(dir, 'for f in f*.txt; do echo "rewritten $f" > "$f"; done && echo container > target.txt');
    const pull = runCludSync('pull', dir);
    let finished = false;
    void pull.finally(() => (finished = true)).catch(() => {});
    for (let index = 0; !finished; index += 1) {
      await writeFile(path.join(dir, 'target.txt'), `host write ${index}\n`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const { run, output } = await pull;
    assert.ok(output.metrics.retries > 0, 'the pull was not retried; the test did not race');
    // The first attempt carried the 50 files; target.txt too if an attempt slipped between two writes.
    const expected = Array.from({ length: 50 }, (_, index) => `host update f${index}.txt`);
    const targetWritten = output.report.applied.some((change) => change.path === 'target.txt');
    assert.deepEqual(appliedChanges(output.report), [...expected, ...(targetWritten ? ['host update target.txt'] : [])].sort(), describeRun(run));
    assert.equal(output.metrics.filesTransferred, targetWritten ? 51 : 50, JSON.stringify(output.metrics));
  });

  it('metrics count every change of a large sync, not only the 1,000 listed', async function () {
    const files: ProjectFiles = {};
    for (let index = 0; index < 1500; index += 1) files[`d${index % 10}/f${index}.txt`] = `v0 ${index}\n`;
    const dir = await syncedProject(scope, files);
    await execSh(dir, 'for f in d*/f*.txt; do echo "rewritten $f" > "$f"; done');
    const { metrics, report } = await cludSync('pull', dir);
    assert.equal(report.appliedCount, 1500);
    assert.equal(metrics.filesTransferred, 1500, JSON.stringify(metrics));
  });

  it('an edit made on one side after clud up crosses over on the first clud sync', async function () {
    const dir = await scope.project({ 'a.txt': 'a v0\n', 'b.txt': 'b v0\n' });
    await cludUp(dir);
    await writeHost(dir, { 'a.txt': 'a: host edit\n' });
    await writeContainer(dir, { 'b.txt': 'b: container edit\n' });
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.conflicts, []);
    assert.deepEqual(appliedChanges(report), ['container update a.txt', 'host update b.txt']);
  });

  it('clud backup saves both versions of what differs, lists it, and restores one side', async function () {
    const dir = await syncedProject(scope, { 'a.txt': 'a v0\n', 'same.txt': 'same\n', 'src/deep/file.txt': 'deep v0\n' });
    const state = stateDirectoryOf(dir);
    await writeHost(dir, { 'a.txt': 'a: host\n', 'host-only.txt': 'only on the host\n' });
    await writeContainer(dir, { 'a.txt': 'a: container\n', 'container-only.txt': 'only in the container\n', 'src/deep/file.txt': 'deep: container\n' });
    const hostBefore = await hashTree(dir);
    const containerBefore = await containerTree(dir);

    const { run, json } = await runCludJson(['backup', dir]);
    assertExit(run, 0);
    const manifest = json.backup as BackupManifest;
    const directory = path.join(state, 'backups', manifest.id);
    assert.equal(json.directory, directory, describeRun(run));
    assert.deepEqual(
      manifest.entries.map((entry) => `${entry.path}: ${entry.host ? 'host' : '-'} ${entry.container ? 'container' : '-'}`),
      ['a.txt: host container', 'container-only.txt: - container', 'host-only.txt: host -', 'src/deep/file.txt: host container'],
    );
    const saved = await hashTree(directory, { exclude: (relative) => relative === 'manifest.json' });
    const expected = new Map<string, string>([
      ['host/a.txt', 'a: host\n'],
      ['host/host-only.txt', 'only on the host\n'],
      ['host/src/deep/file.txt', 'deep v0\n'],
      ['container/a.txt', 'a: container\n'],
      ['container/container-only.txt', 'only in the container\n'],
      ['container/src/deep/file.txt', 'deep: container\n'],
    ]);
    assert.deepEqual(
      [...saved].filter(([, entry]) => entry.startsWith('file ')).map(([relative, entry]) => [relative, entry.split(' ')[2]]).sort(),
      [...expected].map(([relative, content]) => [relative, sha256(content)]).sort(),
    );
    // Taking a backup changes neither side.
    assertTreesEqual(hostBefore, await hashTree(dir), ['before', 'after the backup']);
    assertTreesEqual(containerBefore, await containerTree(dir), ['before', 'after the backup']);

    const list = await runCludJson(['backup', dir, '--list']);
    assertExit(list.run, 0);
    assert.deepEqual((list.json.backups as BackupManifest[]).map((backup) => backup.id), [manifest.id]);
    const listText = await runClud(['backup', dir, '--list']);
    assertExit(listText, 0);
    assert.match(listText.stdout, new RegExp(`^${manifest.id}\\s.*4 path\\(s\\)$`, 'm'), describeRun(listText));

    // The host versions come back; what they replace is kept aside; the container is not touched.
    await writeHost(dir, { 'a.txt': 'a: overwritten later\n', 'src/deep/file.txt': 'deep: host edit\n' });
    await unlink(path.join(dir, 'host-only.txt'));
    const restore = await runCludJson(['backup', dir, '--restore', manifest.id, '--side', 'host']);
    assertExit(restore.run, 0);
    assert.equal(restore.json.ok, true);
    assert.deepEqual(
      (restore.json.applied as Array<{ path: string; side: string; action: string }>).map((change) => `${change.side} ${change.action} ${change.path}`).sort(),
      ['host create host-only.txt', 'host update a.txt', 'host update src/deep/file.txt'],
    );
    assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), 'a: host\n');
    assert.equal(await readFile(path.join(dir, 'host-only.txt'), 'utf8'), 'only on the host\n');
    assert.equal(await readFile(path.join(dir, 'src/deep/file.txt'), 'utf8'), 'deep v0\n');
    assert.deepEqual(await keptVersions(state, 'host', 'a.txt'), ['a: overwritten later\n']);
    assert.deepEqual(await keptVersions(state, 'host', 'src/deep/file.txt'), ['deep: host edit\n']);
    assertTreesEqual(containerBefore, await containerTree(dir), ['before', 'after the restore']);
    assert.equal(await pathExists(path.join(dir, 'container-only.txt')), false);
  });

  it('clud backup --restore brings back a file whose folder was deleted since', async function () {
    const dir = await syncedProject(scope, { 'src/deep/file.txt': 'deep v0\n' });
    await writeContainer(dir, { 'src/deep/file.txt': 'deep: container\n' });
    const { json } = await runCludJson(['backup', dir]);
    const id = (json.backup as BackupManifest).id;
    await rm(path.join(dir, 'src'), { recursive: true });
    const restore = await runCludJson(['backup', dir, '--restore', id, '--side', 'host']);
    assertExit(restore.run, 0);
    assert.equal(await readFile(path.join(dir, 'src/deep/file.txt'), 'utf8'), 'deep v0\n');
  });

  it('what a sync creates in a folder owned by UID 1000 belongs to UID 1000, and so does the sync state', async function () {
    const dir = await syncedProject(scope, { 'existing.txt': 'before\n', 'conflict.txt': 'v0\n' });
    await execSh(
      dir,
      ['mkdir -p made/deeper/deepest', 'echo one > made/one.txt', 'echo two > made/deeper/two.txt', 'ln -s one.txt made/link-to-one', 'echo changed > existing.txt'].join(' && '),
    );
    const { report } = await cludSync('sync', dir);
    assert.ok(report.appliedCount >= 6, JSON.stringify(report.applied));
    assert.deepEqual(await foreignOwners(dir, USER_UID, USER_GID), []);

    // Kept versions and backups too: the state folder holds every kind of file the agent writes.
    await makeConflict(dir, 'conflict.txt', 'host\n', 'container\n');
    await cludSync('resolve', dir, ['conflict.txt', '--keep', 'container']);
    await writeContainer(dir, { 'existing.txt': 'changed again\n' });
    assertExit((await runCludJson(['backup', dir])).run, 0);
    const state = stateDirectoryOf(dir);
    assert.deepEqual((await readdir(state)).filter((name) => ['state-base.jsonl', 'state-journal.jsonl', 'history.jsonl', 'kept', 'backups'].includes(name)).sort(), ['backups', 'history.jsonl', 'kept', 'state-base.jsonl', 'state-journal.jsonl']);
    assert.deepEqual(await foreignOwners(state, USER_UID, USER_GID), []);
  });
});
