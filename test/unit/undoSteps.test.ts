import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { joinBytes } from '../../src/core/files/pathCodec';
import type { StepWriter } from '../../src/core/undo';
import { assertSameTree, ODD_NAME, openLog, ops, readyChange, snapshotTree, step, undoAndCompare, useUndoSample } from '../helpers/undoTrees';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The content of every file under `directory`, sorted. */
async function keptFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => []);
  const contents = await Promise.all(entries.filter((entry) => entry.isFile()).map((entry) => readFile(path.join(entry.parentPath ?? entry.path, entry.name), 'utf8')));
  return contents.sort();
}

describe('unit: undo steps', () => {
  const sample = useUndoSample('clud-undo-');

  it('overwrite three times in one step', async () => {
    const summary = await step(sample.log, sample.workspace, async (writer) => {
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'one');
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'two', 0o600);
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'three', 0o755);
    });
    assert.equal(summary?.files, 1);
    await undoAndCompare(sample);
  });

  it('create and write a file', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.write(writer, sample.workspace.root, 'notes.txt', 'first');
      await ops.write(writer, sample.workspace.root, 'notes.txt', 'second');
      await ops.write(writer, sample.workspace.root, 'docs/new.md', 'new in an existing folder');
    });
    await undoAndCompare(sample);
  });

  it('nested new folders', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.mkdir(writer, sample.workspace.root, 'a');
      await ops.mkdir(writer, sample.workspace.root, 'a/b', 0o700);
      await ops.mkdir(writer, sample.workspace.root, 'a/b/c');
      await ops.write(writer, sample.workspace.root, 'a/b/c/file.txt', 'deep');
      await ops.write(writer, sample.workspace.root, 'a/top.txt', 'top');
    });
    await undoAndCompare(sample);
  });

  it('new folders a caller creates in one go (parents it never planned)', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await readyChange(writer, sample.workspace.root, 'p/q/r.txt');
      await mkdir(joinBytes(sample.workspace.root, 'p/q'), { recursive: true });
      await writeFile(joinBytes(sample.workspace.root, 'p/q/r.txt'), 'x');
      writer.markChanged('p/q/r.txt');
    });
    await undoAndCompare(sample);
  });

  it('delete a file', async () => {
    await step(sample.log, sample.workspace, (writer) => ops.delete(writer, sample.workspace.root, 'src/b.ts'));
    await undoAndCompare(sample);
  });

  it('delete a tree at once', async () => {
    await step(sample.log, sample.workspace, (writer) => ops.delete(writer, sample.workspace.root, 'src'));
    await undoAndCompare(sample);
  });

  it('delete a tree path by path, deepest first (as reconcile orders it)', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      for (const key of ['src/deep/x/y.txt', 'src/deep/x', 'src/deep/z.txt', 'src/deep']) await ops.delete(writer, sample.workspace.root, key);
    });
    await undoAndCompare(sample);
  });

  it('rename to a free name', async () => {
    await step(sample.log, sample.workspace, (writer) => ops.rename(writer, sample.workspace.root, 'docs/guide.md', 'docs/renamed.md'));
    await undoAndCompare(sample);
  });

  it('rename over an existing file', async () => {
    await step(sample.log, sample.workspace, (writer) => ops.rename(writer, sample.workspace.root, 'src/a.ts', 'src/b.ts'));
    await undoAndCompare(sample);
  });

  it('rename a folder with children', async () => {
    await step(sample.log, sample.workspace, (writer) => ops.rename(writer, sample.workspace.root, 'src', 'source'));
    await undoAndCompare(sample);
  });

  it('chmod a file and a folder', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.chmod(writer, sample.workspace.root, 'src/run.sh', 0o644);
      await ops.chmod(writer, sample.workspace.root, 'private', 0o755);
    });
    await undoAndCompare(sample);
  });

  it('truncate', async () => {
    await step(sample.log, sample.workspace, (writer) => ops.truncate(writer, sample.workspace.root, 'docs/img.bin', 100));
    await undoAndCompare(sample);
  });

  it('symlink changes: retarget, replace by a file, replace a file by a link, create', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.symlink(writer, sample.workspace.root, 'link', 'docs/guide.md');
      await ops.delete(writer, sample.workspace.root, 'dirlink');
      await ops.write(writer, sample.workspace.root, 'dirlink', 'now a file');
      await ops.symlink(writer, sample.workspace.root, 'README.md', 'docs');
      await ops.symlink(writer, sample.workspace.root, 'docs/new-link', '../README.md');
    });
    await undoAndCompare(sample);
  });

  it('replace a folder by a file and a file by a folder', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.delete(writer, sample.workspace.root, 'docs');
      await ops.write(writer, sample.workspace.root, 'docs', 'was a folder');
      await ops.delete(writer, sample.workspace.root, 'src/a.ts');
      await ops.mkdir(writer, sample.workspace.root, 'src/a.ts');
      await ops.write(writer, sample.workspace.root, 'src/a.ts/inside.txt', 'inside');
    });
    await undoAndCompare(sample);
  });

  it('a name that is not UTF-8', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.write(writer, sample.workspace.root, ODD_NAME, 'changed');
      await ops.write(writer, sample.workspace.root, `docs/${ODD_NAME}`, 'new');
    });
    await undoAndCompare(sample);
  });

  it('undoes several steps newest first', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'step 1');
      await ops.write(writer, sample.workspace.root, 'new.txt', 'step 1');
    });
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'step 2');
      await ops.delete(writer, sample.workspace.root, 'new.txt');
      await ops.mkdir(writer, sample.workspace.root, 'new.txt');
    });
    const listed = await sample.log.list();
    assert.equal(listed.length, 2);
    assert.ok(listed[0]!.id > listed[1]!.id, 'newest first');
    assert.deepEqual([listed[0]!.files, listed[0]!.protected, listed[0]!.policy, listed[0]!.syncId], [2, true, 'two-way-safe', 'sync']);
    assert.ok(listed[0]!.bytes > 0);
    await undoAndCompare(sample, 2);
  });

  it('records no empty step: nothing planned, or changes readied and never made', async () => {
    assert.equal(await step(sample.log, sample.workspace, async () => {}), undefined);
    assert.equal(
      await step(sample.log, sample.workspace, async (writer) => {
        await readyChange(writer, sample.workspace.root, 'src/a.ts');
        await readyChange(writer, sample.workspace.root, 'brand/new.txt');
      }),
      undefined,
    );
    assert.deepEqual(await sample.log.list(), []);
    assert.deepEqual(await readdir(`${sample.workspace.undoDir}/in-progress`), []);
    assertSameTree(await snapshotTree(sample.workspace.root), sample.before);
  });

  it('a change that began and was never reported is still recorded when its path no longer holds the preimage; what is there is a barrier, kept by a forced undo', async () => {
    const unreported = 'someone else\'s version, or the step\'s before the apply failed: the step cannot tell';
    await step(sample.log, sample.workspace, async (writer) => {
      await readyChange(writer, sample.workspace.root, 'src/a.ts');
      await writeFile(joinBytes(sample.workspace.root, 'src/a.ts'), unreported);
    });
    const refused = await sample.log.undo({ steps: 1, force: false, root: sample.workspace.root });
    assert.deepEqual(refused.undone, []);
    assert.match(refused.refused ?? '', /src\/a\.ts \(the step does not know what it left there/);
    const forced = await sample.log.undo({ steps: 1, force: true, root: sample.workspace.root });
    assert.deepEqual([forced.problems, forced.kept.map(({ path: key }) => key)], [[], ['src/a.ts']]);
    assert.equal(await readFile(forced.kept[0]!.keptAt, 'utf8'), unreported);
    assertSameTree(await snapshotTree(sample.workspace.root), sample.before);
  });

  it('rollback restores the tree, removes the sync temporaries and keeps no step', async () => {
    const writer = await sample.log.beginStep({ syncId: 'sync', policy: 'pull', root: sample.workspace.root });
    await ops.write(writer, sample.workspace.root, 'src/a.ts', 'changed');
    await ops.delete(writer, sample.workspace.root, 'docs');
    await readyChange(writer, sample.workspace.root, 'README.md');
    await writeFile(joinBytes(sample.workspace.root, '.clud-sync-0123456789ab.tmp'), 'staged, never renamed');
    assert.deepEqual(await writer.rollback(), []);
    assert.equal(await writer.close(), undefined);
    assertSameTree(await snapshotTree(sample.workspace.root), sample.before);
    assert.deepEqual(await sample.log.list(), []);
  });

  it('rollback keeps a version written after the step changed the path (neither its preimage nor what the step wrote)', async () => {
    const root = sample.workspace.root;
    const writer = await sample.log.beginStep({ syncId: 'sync', policy: 'pull', root });
    for (const key of ['src/a.ts', 'src/b.ts']) {
      await ops.write(writer, root, key, `written by the step: ${key}`);
      const written = await stat(joinBytes(root, key));
      writer.markChanged(key, { left: { kind: 'file', hash: sha256(`written by the step: ${key}`), size: written.size, mode: 0o644, mtimeMs: written.mtimeMs } });
    }
    await writeFile(joinBytes(root, 'src/a.ts'), 'edited by the user after the sync wrote it');
    assert.deepEqual(await writer.rollback(), []);
    assertSameTree(await snapshotTree(root), sample.before);
    const kept = await keptFiles(sample.workspace.keptDir);
    assert.deepEqual(kept, ['edited by the user after the sync wrote it'], 'only the edit is kept; what the step wrote is not');
  });

  it('refuses a second open step and undo while a step is open', async () => {
    const writer = await sample.log.beginStep({ syncId: 'sync', policy: 'pull', root: sample.workspace.root });
    await assert.rejects(sample.log.beginStep({ syncId: 'other', policy: 'pull', root: sample.workspace.root }), /still open/);
    assert.match((await sample.log.undo({ steps: 1, force: false, root: sample.workspace.root })).refused ?? '', /being recorded/);
    await writer.close();
    const nothing = await sample.log.undo({ steps: 1, force: false, root: sample.workspace.root });
    assert.match(nothing.refused ?? '', /nothing to undo/);
    assert.equal(nothing.refusedCode, 'nothing-to-undo');
  });

  it('keeps content byte for byte as read, and after compaction through a packed frame and a large file\'s own stream', async () => {
    const patterned = (length: number, seed: number) => {
      const bytes = Buffer.alloc(length);
      for (let index = 0; index < bytes.length; index += 1) bytes[index] = (index * seed + (index >> 9)) % 251;
      return bytes;
    };
    const medium = patterned(300_000, 31);
    const large = patterned(1.5 * 1024 ** 2, 17);
    await writeFile(joinBytes(sample.workspace.root, 'medium.bin'), medium);
    await writeFile(joinBytes(sample.workspace.root, 'large.bin'), large);
    await writeFile(joinBytes(sample.workspace.root, 'empty.txt'), '');
    sample.before = await snapshotTree(sample.workspace.root);
    const write = async (writer: StepWriter) => void (await Promise.all([ops.write(writer, sample.workspace.root, 'medium.bin', 'small now'), ops.write(writer, sample.workspace.root, 'large.bin', 'small too'), ops.write(writer, sample.workspace.root, 'empty.txt', 'not empty')]));
    const first = await step(sample.log, sample.workspace, write);
    const contentFiles = async (id: string) => (await readdir(path.join(sample.workspace.undoDir, 'steps', id))).filter((name) => name !== 'manifest.json').sort();
    // What a step says it takes is what its folder holds, to the byte (the manifest included).
    const folderBytes = async (id: string) => {
      const folder = path.join(sample.workspace.undoDir, 'steps', id);
      return (await Promise.all((await readdir(folder)).map(async (name) => (await stat(path.join(folder, name))).size))).reduce((sum, size) => sum + size, 0);
    };
    assert.deepEqual(await contentFiles(first!.id), ['content.raw', 'journal.jsonl'], 'as read, until compacted');
    assert.equal(first!.bytes, await folderBytes(first!.id));
    await undoAndCompare(sample);

    const second = await step(sample.log, sample.workspace, write);
    const rawBytes = (await sample.log.list())[0]!.bytes;
    assert.deepEqual(await sample.log.compact(), [second!.id]);
    assert.deepEqual(await contentFiles(second!.id), ['000001.br', 'content.pack']);
    assert.ok((await sample.log.list())[0]!.bytes < rawBytes / 2, 'compressed (patterned content compresses well)');
    assert.equal((await sample.log.list())[0]!.bytes, await folderBytes(second!.id));
    assert.deepEqual(await sample.log.compact(), [], 'nothing left to compact');
    await undoAndCompare(sample);
    assert.deepEqual(await readFile(joinBytes(sample.workspace.root, 'medium.bin')), medium);
    assert.deepEqual(await readFile(joinBytes(sample.workspace.root, 'large.bin')), large);
  });

  it('a log opened after another compacted a step reads the compacted manifest, not the one parsed before', async () => {
    const summary = await step(sample.log, sample.workspace, async (writer) => {
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'changed');
      await ops.delete(writer, sample.workspace.root, 'docs/guide.md');
    });
    // As the agent does: a log opened for each request, all in one process.
    const earlier = await openLog(sample.workspace);
    assert.equal((await earlier.list())[0]!.id, summary!.id);
    assert.deepEqual(await (await openLog(sample.workspace, { recover: false })).compact(), [summary!.id]);
    assert.deepEqual((await readdir(path.join(sample.workspace.undoDir, 'steps', summary!.id))).sort(), ['content.pack', 'manifest.json'], 'the raw content is gone');
    sample.log = await openLog(sample.workspace);
    await undoAndCompare(sample);
  });

  it('compaction interrupted before the manifest switched is done again; after it, only the raw leftovers go', async () => {
    const stepDir = (id: string) => path.join(sample.workspace.undoDir, 'steps', id);
    await step(sample.log, sample.workspace, async (writer) => {
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'one');
      await ops.delete(writer, sample.workspace.root, 'docs/guide.md');
    });
    const second = await step(sample.log, sample.workspace, async (writer) => ops.write(writer, sample.workspace.root, 'src/a.ts', 'two'));
    assert.equal((await sample.log.compact()).length, 2);
    // As a crash right after the switch leaves a step: compacted, its raw file still there.
    await writeFile(path.join(stepDir(second!.id), 'content.raw'), 'left over');
    // As a crash during compaction leaves one: half a pack, the manifest still pointing at the raw file.
    const third = await step(sample.log, sample.workspace, async (writer) => ops.write(writer, sample.workspace.root, 'src/a.ts', 'three'));
    await writeFile(path.join(stepDir(third!.id), 'content.pack'), 'half a frame');

    const reopened = await openLog(sample.workspace);
    assert.deepEqual(await reopened.compact(), [third!.id], 'the third is compacted again; the second only loses its leftover');
    assert.deepEqual((await readdir(stepDir(second!.id))).sort(), ['content.pack', 'manifest.json']);
    const result = await reopened.undo({ steps: 3, force: false, root: sample.workspace.root });
    assert.deepEqual([result.refused, result.problems, result.undone.length], [undefined, [], 3]);
    assertSameTree(await snapshotTree(sample.workspace.root), sample.before);
  });
});
