import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { joinBytes } from '../../src/core/files/pathCodec';
import { DEFAULT_LIMITS, DEFAULT_THRESHOLDS, UNDO_FORMAT_VERSION, UndoLog } from '../../src/core/undo';
import type { Workspace } from '../helpers/undoTrees';
import { assertSameTree, makeWorkspace, openLog, ops, plannedChange, snapshotTree, step, useUndoTempDir } from '../helpers/undoTrees';
import { pastTimestampTick } from '../helpers/syncTrees';

describe('unit: undo limits and format version', () => {
  const tempDir = useUndoTempDir('clud-undo-limits-');
  let workspace: Workspace;

  beforeEach(async () => {
    workspace = await makeWorkspace(tempDir());
  });

  // A tick after the last write, as a sync's is after the quiet period: the capture vouches for the file, and is made once.
  const writeStep = async (log: UndoLog, content: string | Buffer, key = 'src/a.ts') => {
    await pastTimestampTick();
    return step(log, workspace, (writer) => ops.write(writer, workspace.root, key, content));
  };

  it('has the documented defaults', () => {
    assert.deepEqual(DEFAULT_LIMITS, { maxLogBytes: 1024 ** 3, maxSteps: 50, maxStepBytes: 256 * 1024 ** 2, maxStoredSteps: 2000 });
    assert.deepEqual(DEFAULT_THRESHOLDS, { maxDeletions: 50, largeFileBytes: 10 * 1024 ** 2, askRenameOver: true });
  });

  it('evicts the oldest steps beyond the maximum number of steps', async () => {
    const log = await openLog(workspace, { limits: { maxSteps: 3 } });
    await writeStep(log, 'step 1');
    await writeStep(log, 'step 2');
    const afterTwo = await snapshotTree(workspace.root);
    for (const label of ['step 3', 'step 4', 'step 5']) await writeStep(log, label);

    assert.equal((await log.list()).length, 3);
    const result = await log.undo({ steps: 5, force: false, root: workspace.root });

    assert.equal(result.undone.length, 3);
    assert.deepEqual(result.stoppedBefore, { reason: 'the log holds only 3 step(s)' });
    assertSameTree(await snapshotTree(workspace.root), afterTwo);
  });

  it('evicts the oldest steps beyond the maximum log size; the step just closed is weighed from the next sync on, once compressed', async () => {
    const log = await openLog(workspace, { limits: { maxLogBytes: 50_000 } });
    // Random bytes do not compress: each step keeps about 20 kB, before and after compaction.
    await writeFile(joinBytes(workspace.root, 'noise.bin'), randomBytes(20_000));
    const weighed = async () => (await log.list()).slice(1);
    for (let index = 0; index < 4; index += 1) await writeStep(log, randomBytes(20_000), 'noise.bin');
    assert.equal((await log.list()).length, 3, 'two weighed steps fit, and the newest is not weighed yet');
    assert.ok((await weighed()).reduce((sum, summary) => sum + summary.bytes, 0) <= 50_000);

    await log.compact();
    await writeStep(log, randomBytes(20_000), 'noise.bin');
    const steps = await log.list();
    assert.equal(steps.length, 3);
    assert.ok((await weighed()).reduce((sum, summary) => sum + summary.bytes, 0) <= 50_000);
    assert.ok(steps.every((summary) => summary.bytes > 20_000));
  });

  it('a step over the single-step limit is unprotected: undo stops before it, newer steps stay undoable, older ones go', async () => {
    const log = await openLog(workspace, { limits: { maxStepBytes: 10_000 } });
    await writeFile(joinBytes(workspace.root, 'noise.bin'), randomBytes(30_000));
    await writeStep(log, 'step 1');
    const big = await step(log, workspace, async (writer) => {
      await ops.write(writer, workspace.root, 'src/b.ts', 'step 2');
      // The plan takes the size the scan saw (a small file that grew to 30 kB since): it is the
      // capture that finds the step over its limit.
      await writer.prepare([{ path: 'noise.bin', action: 'write', before: { kind: 'file', size: 10 } }]);
      await ops.write(writer, workspace.root, 'noise.bin', 'step 2 overwrites 30 kB of noise');
    });
    const afterBig = await snapshotTree(workspace.root);
    await writeStep(log, 'step 3');

    assert.equal(big?.protected, false);
    assert.match(big?.unprotectedReason ?? '', /over the 9\.8 KiB limit of one step/);
    assert.deepEqual(await readdir(path.join(workspace.undoDir, 'steps', big!.id)), ['manifest.json', 'unprotected.json'], 'its preimages are gone');
    assert.deepEqual((await log.list()).map((summary) => [summary.protected, summary.files]), [[true, 1], [false, 2]], 'step 1 can never be undone again, so it was dropped');

    const result = await log.undo({ steps: 3, force: false, root: workspace.root });
    assert.equal(result.undone.length, 1);
    assert.equal(result.stoppedBefore?.stepId, big!.id);
    assert.match(result.stoppedBefore?.reason ?? '', /cannot be undone: the step's saved content went over/);
    assertSameTree(await snapshotTree(workspace.root), afterBig);
    assert.match((await log.undo({ steps: 1, force: true, root: workspace.root })).refused ?? '', /cannot be undone/);
  });

  it('paths captured again at once during the apply that together go over the single-step limit make the step unprotected, not fail', async () => {
    const log = await openLog(workspace, { limits: { maxStepBytes: 10_000 } });
    const keys = ['grew-1.bin', 'grew-2.bin'];
    for (const key of keys) await writeFile(joinBytes(workspace.root, key), 'small');
    const writer = await log.beginStep({ syncId: 'sync', policy: 'pull', root: workspace.root });
    await writer.prepare(keys.map((key) => plannedChange(workspace.root, key, 'write')));
    // Each grows to 6 kB after its capture: each fits in the room left, the two together do not.
    for (const key of keys) await writeFile(joinBytes(workspace.root, key), randomBytes(6_000));
    await Promise.all(keys.map((key) => writer.beforeModify(key, lstatSync(joinBytes(workspace.root, key)))));
    for (const key of keys) await ops.write(writer, workspace.root, key, 'the sync');
    const summary = await writer.close();
    assert.deepEqual([summary?.protected, summary?.files], [false, 2]);
    assert.match(summary?.unprotectedReason ?? '', /went over the 9\.8 KiB limit of one step/);
  });

  it('a VERSION mismatch disables undo with a clear message until the old log is discarded', async () => {
    const log = await openLog(workspace);
    await writeStep(log, 'recorded in format 1');
    await writeFile(path.join(workspace.undoDir, 'VERSION'), '999\n');

    const { log: old, recovered } = await UndoLog.open(workspace.undoDir, { keptDirectory: workspace.keptDir });

    assert.deepEqual(recovered, []);
    assert.match(old.disabledReason ?? '', new RegExp(`undo is disabled: .* has format version "999", this version of Clud uses ${UNDO_FORMAT_VERSION}; discard the old undo log`));
    assert.deepEqual(await old.list(), []);
    assert.equal((await old.undo({ steps: 1, force: true, root: workspace.root })).refused, old.disabledReason);
    const unrecorded = await step(old, workspace, (writer) => ops.write(writer, workspace.root, 'src/b.ts', 'synced while disabled'));
    assert.equal(unrecorded, undefined, 'syncs still run, nothing is recorded');

    await old.discard();

    assert.equal(old.disabledReason, undefined);
    assert.equal(await readFile(path.join(workspace.undoDir, 'VERSION'), 'utf8'), `${UNDO_FORMAT_VERSION}\n`);
    assert.deepEqual(await old.list(), []);
    const before = await snapshotTree(workspace.root);
    await writeStep(old, 'recorded again');
    assert.equal((await old.undo({ steps: 1, force: false, root: workspace.root })).undone.length, 1);
    assertSameTree(await snapshotTree(workspace.root), before);
  });

  it('a folder holding something other than an undo log (no VERSION) is left alone', async () => {
    await mkdir(workspace.undoDir, { recursive: true });
    await writeFile(path.join(workspace.undoDir, 'something.txt'), 'not ours');
    const log = await openLog(workspace);
    assert.match(log.disabledReason ?? '', /without a VERSION file/);
    assert.deepEqual(await readdir(workspace.undoDir), ['something.txt']);
  });
});
