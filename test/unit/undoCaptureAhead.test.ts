// Capturing ahead (StepWriter.captureAhead), as a sync's prepare uses it: the paths of a step are
// captured in the order of their changes before the apply (here also while announcements already
// arrive, which wait for it in the writer's queue), and each announcement then takes the capture
// made ahead instead of capturing again. What must hold: undo is exact (folders' modes,
// times and attributes included), each path is captured once, and a capture made ahead that
// the step never used changes nothing in what the step records.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { readJournal } from '../../src/core/undo/stepJournal';
import { ops, snapshotTree, step, undoAndCompare, useUndoSample } from '../helpers/undoTrees';

/** src's paths, deepest first, then by name: the order in which reconcile deletes a tree. */
const SRC_DEEPEST_FIRST = ['src/deep/x/y.txt', 'src/deep/x', 'src/deep/z.txt', 'src/a.ts', 'src/b.ts', 'src/deep', 'src/run.sh', 'src'];

describe('unit: undo capture ahead', () => {
  const sample = useUndoSample('clud-undo-ahead-');

  /** The journal lines of the step in progress that give a path its own preimage (not the record of a folder as a parent). */
  async function ownPreimageLines(): Promise<Map<string, number>> {
    const [open] = await readdir(path.join(sample.workspace.undoDir, 'in-progress'));
    const { header } = await readJournal(path.join(sample.workspace.undoDir, 'in-progress', open!));
    assert.ok(header, 'the journal has no header');
    const lines = (await readFile(path.join(sample.workspace.undoDir, 'in-progress', open!, 'journal.jsonl'), 'utf8')).trim().split('\n').slice(1);
    const counts = new Map<string, number>();
    for (const line of lines) {
      const entry = JSON.parse(line) as { path?: string; pre?: { kind: string; metadataOnly?: boolean } };
      if (entry.path === undefined || entry.pre?.metadataOnly === true) continue;
      counts.set(entry.path, (counts.get(entry.path) ?? 0) + 1);
    }
    return counts;
  }

  it('a tree deleted path by path after capturing it ahead: undo restores files, folders and their times, modes and attributes', async () => {
    const summary = await step(sample.log, sample.workspace, async (writer) => {
      const ahead = writer.captureAhead(SRC_DEEPEST_FIRST);
      for (const key of SRC_DEEPEST_FIRST) await ops.delete(writer, sample.workspace.root, key);
      await ahead;
    });
    assert.equal(summary?.files, SRC_DEEPEST_FIRST.length);
    await undoAndCompare(sample);
  });

  it('each path announced is captured once: the announcement takes the capture made ahead, also when it had to wait for it', async () => {
    const writerDone = step(sample.log, sample.workspace, async (writer) => {
      // Not awaited: the first announcements arrive while the capture ahead is still running.
      const ahead = writer.captureAhead(SRC_DEEPEST_FIRST);
      await Promise.all(SRC_DEEPEST_FIRST.slice(0, 3).map((key) => writer.beforeModify(key, 'delete')));
      for (const key of SRC_DEEPEST_FIRST) await ops.delete(writer, sample.workspace.root, key);
      await ahead;
      const counts = await ownPreimageLines();
      assert.deepEqual([...counts.keys()].sort(), [...SRC_DEEPEST_FIRST].sort());
      assert.deepEqual([...counts].filter(([, count]) => count !== 1), [], 'paths captured more than once');
    });
    await writerDone;
    await undoAndCompare(sample);
  });

  it('a folder captured ahead but never changed itself stays recorded only as a parent: not counted, and undo restores its times', async () => {
    const summary = await step(sample.log, sample.workspace, async (writer) => {
      await writer.captureAhead(['src/deep/z.txt', 'src/deep', 'docs']);
      await ops.delete(writer, sample.workspace.root, 'src/deep/z.txt');
    });
    assert.equal(summary?.files, 1, 'only the deleted file counts as changed');
    const [record] = (await sample.log.list()).map((entry) => entry.id);
    assert.ok(record);
    await undoAndCompare(sample);
  });

  it('a folder swapped for another after its capture ahead is captured again: its attributes are those of the folder the step removed', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await writer.captureAhead(['docs/guide.md', 'docs/img.bin', 'docs']);
      // Someone swaps the folder (which has the attribute user.folder) for a new one without attributes.
      await rename(path.join(sample.workspace.root, 'docs'), path.join(sample.workspace.root, 'docs-old'));
      await mkdir(path.join(sample.workspace.root, 'docs'));
      await writer.beforeModify('docs', 'delete');
      await rm(path.join(sample.workspace.root, 'docs'), { recursive: true });
    });
    const result = await sample.log.undo({ steps: 1, force: false, root: sample.workspace.root });
    assert.deepEqual(result.problems, []);
    const after = await snapshotTree(sample.workspace.root);
    assert.equal(after.get('docs')?.kind, 'directory');
    assert.equal(after.get('docs')?.xattrs ?? '', '', 'the attributes of the folder captured ahead came back');
    assert.match(after.get('docs-old')?.xattrs ?? '', /user\.folder/, 'the swapped-out folder keeps its own attributes');
  });
  it('a file changed in place after its capture ahead (same size, its time set back) is captured again: undo brings back the change, not the older content', async () => {
    const target = path.join(sample.workspace.root, 'src/a.ts');
    const original = await readFile(target);
    const { mtime } = await stat(target);
    await step(sample.log, sample.workspace, async (writer) => {
      await writer.captureAhead(['src/a.ts', 'src/b.ts']);
      // Someone edits the file between the capture ahead and the step's change to it.
      const edited = Buffer.from(original.toString('latin1').replace(/./, (first) => (first === 'X' ? 'Y' : 'X')), 'latin1');
      await writeFile(target, edited);
      await utimes(target, mtime, mtime);
      sample.before = await snapshotTree(sample.workspace.root);
      await ops.write(writer, sample.workspace.root, 'src/a.ts', 'the step\'s version');
      await ops.write(writer, sample.workspace.root, 'src/b.ts', 'the step\'s version');
    });
    await undoAndCompare(sample);
    assert.notDeepEqual(await readFile(target), original);
  });
});
