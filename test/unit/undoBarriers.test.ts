import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { sha256 } from '../../src/core/files/fsEntry';
import { joinBytes } from '../../src/core/files/pathCodec';
import type { UndoLog } from '../../src/core/undo';
import type { TreeState, Workspace } from '../helpers/undoTrees';
import { assertSameTree, makeWorkspace, openLog, ops, readyChange, snapshotTree, step, useUndoTempDir } from '../helpers/undoTrees';

describe('unit: undo barriers', () => {
  const tempDir = useUndoTempDir('clud-undo-barriers-');
  let workspace: Workspace;
  let log: UndoLog;
  let before: TreeState;
  const at = (key: string) => joinBytes(workspace.root, key);
  const changesOf = async () => (await log.detectBarriers(workspace.root)).map(({ path: key, change }) => `${key}: ${change}`).sort();

  beforeEach(async () => {
    workspace = await makeWorkspace(tempDir());
    log = await openLog(workspace);
    before = await snapshotTree(workspace.root);
  });

  it('detects an edit made after the step, persists it and lists it', async () => {
    const summary = await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'from the sync'));
    assert.deepEqual(await log.detectBarriers(workspace.root), []);
    await writeFile(at('src/a.ts'), 'edited by the user');

    const [barrier, ...others] = await log.detectBarriers(workspace.root);
    assert.deepEqual(others, []);
    assert.deepEqual({ ...barrier, detectedAt: undefined }, { stepId: summary!.id, path: 'src/a.ts', change: 'content changed', detectedAt: undefined });
    assert.equal((await log.list())[0]!.barriers, 1);

    const reopened = await openLog(workspace);
    assert.deepEqual(await reopened.barriers(), [barrier], 'persisted in barriers.json');
    assert.equal((await reopened.detectBarriers(workspace.root))[0]!.detectedAt, barrier!.detectedAt, 'first-seen time kept');
  });

  it('takes what the sync reported writing as the postimage: an edit before the step closed is a barrier', async () => {
    const content = Buffer.from('from the sync');
    const summary = await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', content);
      const stats = await lstat(at('src/a.ts'));
      writer.markChanged('src/a.ts', { left: { kind: 'file', size: stats.size, mtimeMs: stats.mtimeMs, mode: stats.mode & 0o7777, hash: sha256(content) } });
      await writeFile(at('src/a.ts'), 'the user, before the step closed');
    });
    assert.deepEqual(await changesOf(), ['src/a.ts: content changed']);
    assert.equal((await log.undo({ steps: 1, force: false, root: workspace.root })).refused !== undefined, true, 'the edit is not taken for the step\'s own result');
    assert.ok(summary);
  });

  it('can leave one step out of a check (the sync that just closed it) and keeps its barriers as they were', async () => {
    const older = await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'first sync'), 'first');
    const newer = await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'README.md', 'second sync'), 'second');
    await writeFile(at('src/a.ts'), 'edited');
    await writeFile(at('README.md'), 'edited');
    assert.deepEqual((await log.detectBarriers(workspace.root, { except: newer!.id })).map((barrier) => `${barrier.stepId} ${barrier.path}`), [`${older!.id} src/a.ts`]);
    assert.deepEqual((await log.barriers()).map((barrier) => barrier.path), ['src/a.ts']);
    assert.deepEqual(await changesOf(), ['README.md: content changed', 'src/a.ts: content changed']);
    assert.deepEqual((await log.detectBarriers(workspace.root, { except: newer!.id })).map((barrier) => barrier.path), ['src/a.ts']);
    assert.deepEqual((await log.barriers()).map((barrier) => barrier.path).sort(), ['README.md', 'src/a.ts'], 'the newer step\'s barrier stays recorded');
  });

  it('looks only at the paths a cycle looked at and the folders above them, leaving the barriers found elsewhere as they were', async () => {
    const summary = await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'from the sync');
      await ops.write(writer, workspace.root, 'README.md', 'from the sync');
      await ops.mkdir(writer, workspace.root, 'gen');
      await ops.write(writer, workspace.root, 'gen/x.ts', 'from the sync');
    });
    await writeFile(at('src/a.ts'), 'edited');
    await writeFile(at('README.md'), 'edited');
    await writeFile(at('gen/extra.ts'), 'added by the user');
    const pathsOf = (barriers: Array<{ path: string }>) => barriers.map((barrier) => barrier.path).sort();

    assert.deepEqual(pathsOf(await log.detectBarriers(workspace.root, { paths: ['src/a.ts'] })), ['src/a.ts']);
    assert.deepEqual(pathsOf(await log.barriers()), ['src/a.ts'], 'nothing looked for outside src/a.ts');
    // A file added in a folder the step created is found from the folder, a folder above it.
    assert.deepEqual(pathsOf(await log.detectBarriers(workspace.root, { paths: ['gen/extra.ts'] })), ['gen/extra.ts']);
    assert.deepEqual(pathsOf(await log.barriers()), ['gen/extra.ts', 'src/a.ts']);

    await rm(at('gen/extra.ts'));
    assert.deepEqual(pathsOf(await log.detectBarriers(workspace.root, { paths: ['src'] })), ['src/a.ts']);
    assert.deepEqual(pathsOf(await log.barriers()), ['gen/extra.ts', 'src/a.ts'], 'gen/extra.ts was not looked at: its barrier stays');
    assert.deepEqual(pathsOf(await log.detectBarriers(workspace.root, { paths: ['gen/extra.ts'] })), []);
    assert.deepEqual(pathsOf(await log.barriers()), ['src/a.ts'], 'looked at and gone: dropped');
    assert.deepEqual(await changesOf(), ['README.md: content changed', 'src/a.ts: content changed']);
    assert.ok(summary);
  });

  it('records a barrier found again from another path of its region once', async () => {
    await step(log, workspace, async (writer) => {
      await ops.mkdir(writer, workspace.root, 'gen');
      await ops.write(writer, workspace.root, 'gen/x.ts', 'from the sync');
    });
    await writeFile(at('gen/extra.ts'), 'added by the user');
    await log.detectBarriers(workspace.root, { paths: ['gen/extra.ts'] });
    await writeFile(at('gen/other.ts'), 'added by the user too');
    // gen/extra.ts is outside this region, but the folder above the region finds it again.
    await log.detectBarriers(workspace.root, { paths: ['gen/other.ts'] });
    assert.deepEqual((await log.barriers()).map((barrier) => barrier.path).sort(), ['gen/extra.ts', 'gen/other.ts']);
  });

  it('blocks undo unless forced; nothing is undone', async () => {
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'from the sync');
      await ops.write(writer, workspace.root, 'src/new.ts', 'from the sync');
    });
    await writeFile(at('src/a.ts'), 'edited by the user');
    const after = await snapshotTree(workspace.root);

    const result = await log.undo({ steps: 1, force: false, root: workspace.root });

    assert.match(result.refused ?? '', /overwrite 1 change\(s\) made after the sync: src\/a\.ts \(content changed/);
    assert.deepEqual(result.barriers.map((barrier) => barrier.path), ['src/a.ts']);
    assert.deepEqual(result.undone, []);
    assertSameTree(await snapshotTree(workspace.root), after);
    assert.equal((await log.list()).length, 1);
  });

  it('force crosses the barrier, keeps the overwritten version and removes the barrier', async () => {
    const summary = await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'from the sync'));
    await writeFile(at('src/a.ts'), 'edited by the user');
    await log.detectBarriers(workspace.root);

    const result = await log.undo({ steps: 1, force: true, root: workspace.root });

    assert.deepEqual([result.refused, result.problems, result.undone.length], [undefined, [], 1]);
    assert.deepEqual(result.kept.map(({ path: key }) => key), ['src/a.ts']);
    assert.equal(result.kept[0]!.keptAt, path.join(workspace.keptDir, `undo-${summary!.id}`, 'src/a.ts'));
    assert.equal(await readFile(result.kept[0]!.keptAt, 'utf8'), 'edited by the user');
    assertSameTree(await snapshotTree(workspace.root), before);
    assert.deepEqual(await log.barriers(), []);
  });

  it('names each kind of change', async () => {
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'sync');
      await ops.write(writer, workspace.root, 'src/b.ts', 'sync');
      await ops.write(writer, workspace.root, 'src/run.sh', 'sync', 0o755);
      await ops.symlink(writer, workspace.root, 'link', 'docs');
      await ops.delete(writer, workspace.root, 'docs/guide.md');
      await ops.mkdir(writer, workspace.root, 'made');
      await ops.write(writer, workspace.root, 'README.md', 'sync');
    });
    await rm(at('src/a.ts'));
    await chmod(at('src/run.sh'), 0o644);
    await rm(at('link'));
    await symlink('src', at('link'));
    await writeFile(at('docs/guide.md'), 'recreated by the user');
    await writeFile(at('made/mine.txt'), 'the user put this in a folder the sync created');
    await rm(at('README.md'));
    await mkdir(at('README.md'));

    assert.deepEqual(await changesOf(), [
      'README.md: type changed (file → directory)',
      'docs/guide.md: created (file)',
      'link: link retargeted',
      'made/mine.txt: added inside a folder this step created',
      'src/a.ts: deleted',
      'src/run.sh: mode changed (755 → 644)',
    ]);
  });

  it('a file someone puts in a folder the step created, before the step closed, is theirs: a barrier, kept by a forced undo', async () => {
    await step(log, workspace, async (writer) => {
      await ops.mkdir(writer, workspace.root, 'made');
      await ops.write(writer, workspace.root, 'made/synced.txt', 'from the sync');
      await writeFile(at('made/mine.txt'), 'the user, while the step was still open');
    });
    assert.deepEqual(await changesOf(), ['made/mine.txt: added inside a folder this step created']);
    assert.match((await log.undo({ steps: 1, force: false, root: workspace.root })).refused ?? '', /made\/mine\.txt/);
    const forced = await log.undo({ steps: 1, force: true, root: workspace.root });
    assert.deepEqual(forced.kept.map(({ path: key }) => key), ['made/mine.txt']);
    assert.equal(await readFile(forced.kept[0]!.keptAt, 'utf8'), 'the user, while the step was still open');
    assertSameTree(await snapshotTree(workspace.root), before);
  });

  it('an edit between two steps is a barrier of the older step, found before the newer one is undone', async () => {
    const first = await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'step 1'));
    await writeFile(at('src/a.ts'), 'edited by the user');
    const second = await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'step 2'));

    assert.deepEqual(await changesOf(), [`src/a.ts: content changed before step ${second!.id}`]);
    assert.equal((await log.barriers())[0]!.stepId, first!.id);
    assert.match((await log.undo({ steps: 2, force: false, root: workspace.root })).refused ?? '', /content changed before step/);

    assert.equal((await log.undo({ steps: 1, force: false, root: workspace.root })).undone.length, 1, 'the newer step has no barrier');
    assert.equal(await readFile(at('src/a.ts'), 'utf8'), 'edited by the user');
    const forced = await log.undo({ steps: 1, force: true, root: workspace.root });
    assert.equal(await readFile(forced.kept[0]!.keptAt, 'utf8'), 'edited by the user');
    assertSameTree(await snapshotTree(workspace.root), before);
  });

  it('later steps changing the same paths are no barrier', async () => {
    await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'step 1'));
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'step 2');
      await ops.chmod(writer, workspace.root, 'src/a.ts', 0o600);
    });
    await step(log, workspace, (writer) => ops.delete(writer, workspace.root, 'src/a.ts'));
    assert.deepEqual(await changesOf(), []);
    assert.equal((await log.undo({ steps: 3, force: false, root: workspace.root })).undone.length, 3);
    assertSameTree(await snapshotTree(workspace.root), before);
  });

  it('a new file next to what the step changed is no barrier, and its folder keeps the time the user gave it', async () => {
    await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'docs/new.md', 'sync'));
    await writeFile(at('docs/user.md'), 'the user added this');
    const userTime = (await snapshotTree(workspace.root)).get('docs')!.mtimeMs;
    assert.deepEqual(await changesOf(), []);

    const result = await log.undo({ steps: 1, force: false, root: workspace.root });

    assert.deepEqual([result.refused, result.problems], [undefined, []]);
    const after = await snapshotTree(workspace.root);
    assert.equal(after.has('docs/new.md'), false);
    assert.equal(after.has('docs/user.md'), true);
    assert.ok(after.get('docs')!.mtimeMs >= userTime, 'the folder time is not moved back behind the user’s change');
  });

  it('never reaches through a folder the user replaced by a symlink; forcing replaces the link, kept aside', async () => {
    const outside = path.join(tempDir(), 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'z.txt'), 'outside the tree');
    const summary = await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/deep/z.txt', 'sync'));
    await rm(at('src/deep'), { recursive: true });
    await symlink(outside, at('src/deep'));

    assert.deepEqual(await changesOf(), ['src/deep/z.txt: its parent src/deep is no longer a folder', 'src/deep: folder type changed (directory → symlink)']);
    const writer = await log.beginStep({ syncId: 'next', policy: 'pull', root: workspace.root });
    await assert.rejects(readyChange(writer, workspace.root, 'src/deep/new.txt'), /its parent src\/deep is not a folder/);
    assert.equal(await writer.close(), undefined);

    const forced = await log.undo({ steps: 1, force: true, root: workspace.root });

    assert.deepEqual([forced.problems, forced.undone.length], [[], 1]);
    assert.deepEqual(forced.kept.map(({ path: key }) => key), ['src/deep'], 'the link, not what it points to');
    assert.equal((await lstat(path.join(workspace.keptDir, `undo-${summary!.id}`, 'src/deep'))).isSymbolicLink(), true);
    assert.deepEqual(await readdir(outside), ['z.txt']);
    assert.equal(await readFile(path.join(outside, 'z.txt'), 'utf8'), 'outside the tree');
    assert.equal(await readFile(at('src/deep/z.txt'), 'utf8'), 'z\n');
  });

  it('a barrier that goes away (the user reverted their edit) is dropped', async () => {
    await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'from the sync'));
    await writeFile(at('src/a.ts'), 'edited by the user');
    assert.equal((await log.detectBarriers(workspace.root)).length, 1);
    await writeFile(at('src/a.ts'), 'from the sync');
    assert.deepEqual(await log.detectBarriers(workspace.root), []);
    assert.deepEqual(await log.barriers(), []);
  });
});
