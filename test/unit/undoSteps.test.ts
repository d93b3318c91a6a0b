import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { joinBytes } from '../../src/core/sync/pathCodec';
import type { StepWriter, UndoLog } from '../../src/core/undo';
import type { TreeState, Workspace } from '../helpers/undoTrees';
import { assertSameTree, makeWorkspace, ODD_NAME, openLog, ops, snapshotTree, step, useUndoTempDir } from '../helpers/undoTrees';

describe('unit: undo steps', () => {
  const tempDir = useUndoTempDir('clud-undo-');
  let workspace: Workspace;
  let log: UndoLog;
  let before: TreeState;

  beforeEach(async () => {
    workspace = await makeWorkspace(tempDir());
    log = await openLog(workspace);
    before = await snapshotTree(workspace.root);
  });

  /** Undoes `steps` steps and checks the whole tree is back to what it was before them, and the log is empty. */
  async function undoAndCompare(steps = 1): Promise<void> {
    const result = await log.undo({ steps, force: false, root: workspace.root });
    assert.equal(result.refused, undefined, result.refused);
    assert.deepEqual(result.problems, []);
    assert.equal(result.undone.length, steps);
    assertSameTree(await snapshotTree(workspace.root), before);
    assert.deepEqual(await log.list(), [], 'undone steps leave the log');
  }

  it('overwrite three times in one step', async () => {
    const summary = await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'one');
      await ops.write(writer, workspace.root, 'src/a.ts', 'two', 0o600);
      await ops.write(writer, workspace.root, 'src/a.ts', 'three', 0o755);
    });
    assert.equal(summary?.files, 1);
    await undoAndCompare();
  });

  it('create and write a file', async () => {
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'notes.txt', 'first');
      await ops.write(writer, workspace.root, 'notes.txt', 'second');
      await ops.write(writer, workspace.root, 'docs/new.md', 'new in an existing folder');
    });
    await undoAndCompare();
  });

  it('nested new folders', async () => {
    await step(log, workspace, async (writer) => {
      await ops.mkdir(writer, workspace.root, 'a');
      await ops.mkdir(writer, workspace.root, 'a/b', 0o700);
      await ops.mkdir(writer, workspace.root, 'a/b/c');
      await ops.write(writer, workspace.root, 'a/b/c/file.txt', 'deep');
      await ops.write(writer, workspace.root, 'a/top.txt', 'top');
    });
    await undoAndCompare();
  });

  it('new folders a caller creates in one go (parents it never announced)', async () => {
    await step(log, workspace, async (writer) => {
      await writer.beforeModify('p/q/r.txt', 'write');
      await mkdir(joinBytes(workspace.root, 'p/q'), { recursive: true });
      await writeFile(joinBytes(workspace.root, 'p/q/r.txt'), 'x');
    });
    await undoAndCompare();
  });

  it('delete a file', async () => {
    await step(log, workspace, (writer) => ops.delete(writer, workspace.root, 'src/b.ts'));
    await undoAndCompare();
  });

  it('delete a tree at once', async () => {
    await step(log, workspace, (writer) => ops.delete(writer, workspace.root, 'src'));
    await undoAndCompare();
  });

  it('delete a tree path by path, deepest first (as reconcile orders it)', async () => {
    await step(log, workspace, async (writer) => {
      for (const key of ['src/deep/x/y.txt', 'src/deep/x', 'src/deep/z.txt', 'src/deep']) await ops.delete(writer, workspace.root, key);
    });
    await undoAndCompare();
  });

  it('rename to a free name', async () => {
    await step(log, workspace, (writer) => ops.rename(writer, workspace.root, 'docs/guide.md', 'docs/renamed.md'));
    await undoAndCompare();
  });

  it('rename over an existing file', async () => {
    await step(log, workspace, (writer) => ops.rename(writer, workspace.root, 'src/a.ts', 'src/b.ts'));
    await undoAndCompare();
  });

  it('rename a folder with children', async () => {
    await step(log, workspace, (writer) => ops.rename(writer, workspace.root, 'src', 'source'));
    await undoAndCompare();
  });

  it('chmod a file and a folder', async () => {
    await step(log, workspace, async (writer) => {
      await ops.chmod(writer, workspace.root, 'src/run.sh', 0o644);
      await ops.chmod(writer, workspace.root, 'private', 0o755);
    });
    await undoAndCompare();
  });

  it('truncate', async () => {
    await step(log, workspace, (writer) => ops.truncate(writer, workspace.root, 'docs/img.bin', 100));
    await undoAndCompare();
  });

  it('symlink changes: retarget, replace by a file, replace a file by a link, create', async () => {
    await step(log, workspace, async (writer) => {
      await ops.symlink(writer, workspace.root, 'link', 'docs/guide.md');
      await ops.delete(writer, workspace.root, 'dirlink');
      await ops.write(writer, workspace.root, 'dirlink', 'now a file');
      await ops.symlink(writer, workspace.root, 'README.md', 'docs');
      await ops.symlink(writer, workspace.root, 'docs/new-link', '../README.md');
    });
    await undoAndCompare();
  });

  it('replace a folder by a file and a file by a folder', async () => {
    await step(log, workspace, async (writer) => {
      await ops.delete(writer, workspace.root, 'docs');
      await ops.write(writer, workspace.root, 'docs', 'was a folder');
      await ops.delete(writer, workspace.root, 'src/a.ts');
      await ops.mkdir(writer, workspace.root, 'src/a.ts');
      await ops.write(writer, workspace.root, 'src/a.ts/inside.txt', 'inside');
    });
    await undoAndCompare();
  });

  it('a name that is not UTF-8', async () => {
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, ODD_NAME, 'changed');
      await ops.write(writer, workspace.root, `docs/${ODD_NAME}`, 'new');
    });
    await undoAndCompare();
  });

  it('undoes several steps newest first', async () => {
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'step 1');
      await ops.write(writer, workspace.root, 'new.txt', 'step 1');
    });
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'step 2');
      await ops.delete(writer, workspace.root, 'new.txt');
      await ops.mkdir(writer, workspace.root, 'new.txt');
    });
    const listed = await log.list();
    assert.equal(listed.length, 2);
    assert.ok(listed[0]!.id > listed[1]!.id, 'newest first');
    assert.deepEqual([listed[0]!.files, listed[0]!.protected, listed[0]!.policy, listed[0]!.syncId], [2, true, 'two-way-safe', 'sync']);
    assert.ok(listed[0]!.bytes > 0);
    await undoAndCompare(2);
  });

  it('records no empty step: nothing announced, or everything forgotten', async () => {
    assert.equal(await step(log, workspace, async () => {}), undefined);
    assert.equal(
      await step(log, workspace, async (writer) => {
        await writer.beforeModify('src/a.ts', 'write');
        await writer.beforeModify('brand/new.txt', 'write');
        assert.equal(await writer.forget('src/a.ts'), true);
        assert.equal(await writer.forget('brand/new.txt'), true);
      }),
      undefined,
    );
    assert.deepEqual(await log.list(), []);
    assert.deepEqual(await readdir(`${workspace.undoDir}/in-progress`), []);
    assertSameTree(await snapshotTree(workspace.root), before);
  });

  it('forget keeps a preimage whose path did change', async () => {
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'changed anyway');
      assert.equal(await writer.forget('src/a.ts'), false);
    });
    await undoAndCompare();
  });

  it('rollback restores the tree, removes the sync temporaries and keeps no step', async () => {
    const writer = await log.beginStep({ syncId: 'sync', policy: 'pull', root: workspace.root });
    await ops.write(writer, workspace.root, 'src/a.ts', 'changed');
    await ops.delete(writer, workspace.root, 'docs');
    await writer.beforeModify('README.md', 'write');
    await writeFile(joinBytes(workspace.root, '.clud-sync-0123456789ab.tmp'), 'staged, never renamed');
    assert.deepEqual(await writer.rollback(), []);
    assert.equal(await writer.close(), undefined);
    assertSameTree(await snapshotTree(workspace.root), before);
    assert.deepEqual(await log.list(), []);
  });

  it('refuses a second open step and undo while a step is open', async () => {
    const writer = await log.beginStep({ syncId: 'sync', policy: 'pull', root: workspace.root });
    await assert.rejects(log.beginStep({ syncId: 'other', policy: 'pull', root: workspace.root }), /still open/);
    assert.match((await log.undo({ steps: 1, force: false, root: workspace.root })).refused ?? '', /being recorded/);
    await writer.close();
    assert.match((await log.undo({ steps: 1, force: false, root: workspace.root })).refused ?? '', /nothing to undo/);
  });

  it('keeps content byte for byte as read, and after compaction through a packed frame and a large file\'s own stream', async () => {
    const patterned = (length: number, seed: number) => {
      const bytes = Buffer.alloc(length);
      for (let index = 0; index < bytes.length; index += 1) bytes[index] = (index * seed + (index >> 9)) % 251;
      return bytes;
    };
    const medium = patterned(300_000, 31);
    const large = patterned(1.5 * 1024 ** 2, 17);
    await writeFile(joinBytes(workspace.root, 'medium.bin'), medium);
    await writeFile(joinBytes(workspace.root, 'large.bin'), large);
    await writeFile(joinBytes(workspace.root, 'empty.txt'), '');
    before = await snapshotTree(workspace.root);
    const write = async (writer: StepWriter) => void (await Promise.all([ops.write(writer, workspace.root, 'medium.bin', 'small now'), ops.write(writer, workspace.root, 'large.bin', 'small too'), ops.write(writer, workspace.root, 'empty.txt', 'not empty')]));
    const first = await step(log, workspace, write);
    const contentFiles = async (id: string) => (await readdir(path.join(workspace.undoDir, 'steps', id))).filter((name) => name !== 'manifest.json').sort();
    assert.deepEqual(await contentFiles(first!.id), ['content.raw', 'journal.jsonl'], 'as read, until compacted');
    await undoAndCompare();

    const second = await step(log, workspace, write);
    const rawBytes = (await log.list())[0]!.bytes;
    assert.deepEqual(await log.compact(), [second!.id]);
    assert.deepEqual(await contentFiles(second!.id), ['000001.br', 'content.pack']);
    assert.ok((await log.list())[0]!.bytes < rawBytes / 2, 'compressed (patterned content compresses well)');
    assert.deepEqual(await log.compact(), [], 'nothing left to compact');
    await undoAndCompare();
    assert.deepEqual(await readFile(joinBytes(workspace.root, 'medium.bin')), medium);
    assert.deepEqual(await readFile(joinBytes(workspace.root, 'large.bin')), large);
  });

  it('compaction interrupted before the manifest switched is done again; after it, only the raw leftovers go', async () => {
    const stepDir = (id: string) => path.join(workspace.undoDir, 'steps', id);
    await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/a.ts', 'one');
      await ops.delete(writer, workspace.root, 'docs/guide.md');
    });
    const second = await step(log, workspace, async (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'two'));
    assert.equal((await log.compact()).length, 2);
    // As a crash right after the switch leaves a step: compacted, its raw file still there.
    await writeFile(path.join(stepDir(second!.id), 'content.raw'), 'left over');
    // As a crash during compaction leaves one: half a pack, the manifest still pointing at the raw file.
    const third = await step(log, workspace, async (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'three'));
    await writeFile(path.join(stepDir(third!.id), 'content.pack'), 'half a frame');

    const reopened = await openLog(workspace);
    assert.deepEqual(await reopened.compact(), [third!.id], 'the third is compacted again; the second only loses its leftover');
    assert.deepEqual((await readdir(stepDir(second!.id))).sort(), ['content.pack', 'manifest.json']);
    const result = await reopened.undo({ steps: 3, force: false, root: workspace.root });
    assert.deepEqual([result.refused, result.problems, result.undone.length], [undefined, [], 3]);
    assertSameTree(await snapshotTree(workspace.root), before);
  });
});
