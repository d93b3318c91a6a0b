import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { SafeguardQuestion, StepWriter, UndoLog } from '../../src/core/undo';
import { SafeguardDenied } from '../../src/core/undo';
import { formatBytes } from '../../src/core/display';
import type { TreeState, Workspace } from '../helpers/undoTrees';
import { assertSameTree, makeWorkspace, openLog, ops, readyChange, snapshotTree, useUndoTempDir } from '../helpers/undoTrees';

describe('unit: undo safeguards', () => {
  it('names sizes so that a file just over a limit does not read as the limit', () => {
    assert.equal(formatBytes(11_000_000), '10.5 MiB');
    assert.equal(formatBytes(10 * 1024 ** 2), '10 MiB');
    assert.deepEqual([formatBytes(1000), formatBytes(2048), formatBytes(256 * 1024 ** 2), formatBytes(1.5 * 1024 ** 3)], ['1000 B', '2.0 KiB', '256 MiB', '1.5 GiB']);
  });

  const tempDir = useUndoTempDir('clud-undo-safeguards-');
  let workspace: Workspace;
  let log: UndoLog;
  let before: TreeState;
  let questions: SafeguardQuestion[];

  beforeEach(async () => {
    workspace = await makeWorkspace(tempDir());
    log = await openLog(workspace);
    before = await snapshotTree(workspace.root);
    questions = [];
  });

  const begin = (answer: 'allow' | 'deny'): Promise<StepWriter> =>
    log.beginStep({
      syncId: 'sync',
      policy: 'pull',
      root: workspace.root,
      thresholds: { maxDeletions: 2, largeFileBytes: 1000 },
      ask: async (question) => {
        questions.push(question);
        return answer;
      },
    });

  it('allow: each kind asks once per step, and the step goes on', async () => {
    const writer = await begin('allow');
    for (const key of ['src/a.ts', 'src/b.ts', 'README.md', 'src/run.sh']) await ops.delete(writer, workspace.root, key);
    await ops.write(writer, workspace.root, 'docs/img.bin', 'small now');
    await ops.write(writer, workspace.root, 'new.bin', Buffer.alloc(5000));
    await ops.write(writer, workspace.root, 'new.bin', 'overwriting what this step wrote asks nothing');
    await ops.rename(writer, workspace.root, 'docs/guide.md', 'private/secret.txt');
    await ops.rename(writer, workspace.root, 'private/secret.txt', 'new.bin');
    const summary = await writer.close();

    assert.deepEqual(
      questions.map(({ kind, path: key, detail }) => ({ kind, key, detail })),
      [
        { kind: 'many-deletions', key: 'README.md', detail: '3 files deleted in this sync (limit 2)' },
        { kind: 'large-overwrite', key: 'docs/img.bin', detail: 'overwrites docs/img.bin, a file of 4.0 KiB (limit 1000 B)' },
        { kind: 'rename-over', key: 'private/secret.txt', detail: 'renames over the existing file private/secret.txt' },
      ],
    );
    assert.equal(summary?.protected, true);
    const result = await log.undo({ steps: 1, force: false, root: workspace.root });
    assert.deepEqual([result.refused, result.problems], [undefined, []]);
    assertSameTree(await snapshotTree(workspace.root), before);

    questions = [];
    const next = await begin('allow');
    for (const key of ['src/a.ts', 'src/b.ts', 'README.md']) await ops.delete(next, workspace.root, key);
    await next.close();
    assert.deepEqual(questions.map(({ kind }) => kind), ['many-deletions'], 'a new step asks again');
  });

  it('deny: what the step did is rolled back and the rest cannot run', async () => {
    const writer = await begin('deny');
    await ops.write(writer, workspace.root, 'src/a.ts', 'changed');
    await ops.mkdir(writer, workspace.root, 'new');
    await ops.write(writer, workspace.root, 'new/file.txt', 'new');
    await ops.delete(writer, workspace.root, 'src/b.ts');
    await ops.delete(writer, workspace.root, 'src/run.sh');

    const denied = await ops.delete(writer, workspace.root, 'README.md').then(() => undefined, (error: unknown) => error);

    assert.ok(denied instanceof SafeguardDenied, `expected SafeguardDenied, got ${String(denied)}`);
    assert.deepEqual([denied.question.kind, denied.question.path, denied.rolledBack, denied.problems], ['many-deletions', 'README.md', true, []]);
    assert.equal(writer.denied, denied);
    assertSameTree(await snapshotTree(workspace.root), before);
    await assert.rejects(readyChange(writer, workspace.root, 'docs/guide.md'), SafeguardDenied);
    assert.equal(await writer.close(), undefined);
    assert.deepEqual(await log.list(), []);
    assert.deepEqual(await readdir(path.join(workspace.undoDir, 'in-progress')), []);
  });

  it('deny a large overwrite before anything else changed', async () => {
    const writer = await begin('deny');
    await assert.rejects(ops.write(writer, workspace.root, 'docs/img.bin', 'x'), (error: unknown) => error instanceof SafeguardDenied && error.question.kind === 'large-overwrite');
    assertSameTree(await snapshotTree(workspace.root), before);
  });

  it('without an ask callback, safeguards allow; deleting what the step created does not count', async () => {
    const writer = await log.beginStep({ syncId: 'sync', policy: 'pull', root: workspace.root, thresholds: { maxDeletions: 1 } });
    await ops.delete(writer, workspace.root, 'src/a.ts');
    await ops.delete(writer, workspace.root, 'src/b.ts');
    assert.equal((await writer.close())?.files, 2);

    const counted = await begin('deny');
    await ops.write(counted, workspace.root, 'tmp1', 'x');
    await ops.write(counted, workspace.root, 'tmp2', 'x');
    await ops.delete(counted, workspace.root, 'tmp1');
    await ops.delete(counted, workspace.root, 'tmp2');
    await ops.delete(counted, workspace.root, 'README.md');
    await counted.close();
    assert.deepEqual(questions, []);
  });
});
