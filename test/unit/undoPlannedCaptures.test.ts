// A step planned whole before it changes anything (StepWriter.prepare), as a sync plans it: every
// planned path is captured in the order of the changes, and each change then takes the capture
// the plan made instead of capturing again, unless its path changed since. What must hold: undo is
// exact (folders' modes, times and attributes included), each path is captured once, a path that
// changed after its capture is captured again, and a capture the step never used changes nothing
// in what the step records.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { ModifyAction } from '../../src/core/undo';
import { readJournal } from '../../src/core/undo/stepJournal';
import { ops, plannedChange, snapshotTree, step, undoAndCompare, useUndoSample } from '../helpers/undoTrees';

/** src's paths, deepest first, then by name: the order in which reconcile deletes a tree. */
const SRC_DEEPEST_FIRST = ['src/deep/x/y.txt', 'src/deep/x', 'src/deep/z.txt', 'src/a.ts', 'src/b.ts', 'src/deep', 'src/run.sh', 'src'];

describe('unit: undo captures planned before the changes', () => {
  const sample = useUndoSample('clud-undo-planned-');
  const plan = (keys: readonly string[], action: ModifyAction) => keys.map((key) => plannedChange(sample.workspace.root, key, action));

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

  it('a tree planned whole, then deleted path by path: undo restores files, folders and their times, modes and attributes', async () => {
    const summary = await step(sample.log, sample.workspace, async (writer) => {
      await writer.prepare(plan(SRC_DEEPEST_FIRST, 'delete'));
      for (const key of SRC_DEEPEST_FIRST) await ops.delete(writer, sample.workspace.root, key);
    });
    assert.equal(summary?.files, SRC_DEEPEST_FIRST.length);
    await undoAndCompare(sample);
  });

  it('each path planned is captured once: its change takes the capture the plan made', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await writer.prepare(plan(SRC_DEEPEST_FIRST, 'delete'));
      for (const key of SRC_DEEPEST_FIRST) await ops.delete(writer, sample.workspace.root, key);
      const counts = await ownPreimageLines();
      assert.deepEqual([...counts.keys()].sort(), [...SRC_DEEPEST_FIRST].sort());
      assert.deepEqual([...counts].filter(([, count]) => count !== 1), [], 'paths captured more than once');
    });
    await undoAndCompare(sample);
  });

  it('a folder planned but never changed itself stays recorded only as a parent: not counted, and undo restores its times', async () => {
    const summary = await step(sample.log, sample.workspace, async (writer) => {
      await writer.prepare([...plan(['src/deep/z.txt'], 'delete'), ...plan(['src/deep', 'docs'], 'chmod')]);
      await ops.delete(writer, sample.workspace.root, 'src/deep/z.txt');
    });
    assert.equal(summary?.files, 1, 'only the deleted file counts as changed');
    await undoAndCompare(sample);
  });

  it('a folder swapped for another after its capture is captured again: its attributes are those of the folder the step removed', async () => {
    await step(sample.log, sample.workspace, async (writer) => {
      await writer.prepare(plan(['docs/guide.md', 'docs/img.bin', 'docs'], 'delete'));
      // Someone swaps the folder (which has the attribute user.folder) for a new one without attributes.
      await rename(path.join(sample.workspace.root, 'docs'), path.join(sample.workspace.root, 'docs-old'));
      await mkdir(path.join(sample.workspace.root, 'docs'));
      await ops.delete(writer, sample.workspace.root, 'docs');
    });
    const result = await sample.log.undo({ steps: 1, force: false, root: sample.workspace.root });
    assert.deepEqual(result.problems, []);
    const after = await snapshotTree(sample.workspace.root);
    assert.equal(after.get('docs')?.kind, 'directory');
    assert.equal(after.get('docs')?.xattrs ?? '', '', 'the attributes of the folder the plan captured came back');
    assert.match(after.get('docs-old')?.xattrs ?? '', /user\.folder/, 'the swapped-out folder keeps its own attributes');
  });

  it('a file changed in place after its capture (same size, its time set back) is captured again: undo brings back the change, not the older content', async () => {
    const target = path.join(sample.workspace.root, 'src/a.ts');
    const original = await readFile(target);
    const { mtime } = await stat(target);
    await step(sample.log, sample.workspace, async (writer) => {
      await writer.prepare(plan(['src/a.ts', 'src/b.ts'], 'write'));
      // Someone edits the file between its capture and the step's change to it.
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
