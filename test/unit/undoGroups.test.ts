import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { joinBytes } from '../../src/core/files/pathCodec';
import type { StepGroup, StepWriter, UndoLog } from '../../src/core/undo';
import { assertSameTree, openLog, ops, snapshotTree, useUndoSample } from '../helpers/undoTrees';
import type { Workspace } from '../helpers/undoTrees';

/** Records `change` as one step of `group` (as the resident agent records one cycle). */
async function cycle(log: UndoLog, workspace: Workspace, group: StepGroup | undefined, change: (writer: StepWriter) => Promise<void>) {
  const writer = await log.beginStep({ syncId: `sync-${Math.random()}`, policy: 'two-way-safe', root: workspace.root, ...(group && { group }) });
  await change(writer);
  return writer.close();
}

const turn: StepGroup = { id: 'turn-1', kind: 'turn', label: 'rename the config loader' };
const command: StepGroup = { id: 'command-2', kind: 'command', label: 'npm run fix' };

describe('unit: undo groups', () => {
  const sample = useUndoSample('clud-undo-groups-');
  const root = () => sample.workspace.root;

  it('consecutive steps of one group are one history entry, and one undo takes them all back', async () => {
    const closed = await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', 'one'));
    assert.deepEqual(closed?.group, turn, 'close() reports the group');
    await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', 'two'));
    await cycle(sample.log, sample.workspace, turn, async (writer) => {
      await ops.write(writer, root(), 'new.txt', 'new');
      await ops.delete(writer, root(), 'src/b.ts');
    });
    const history = await sample.log.list();
    assert.equal(history.length, 1);
    const [entry] = history;
    assert.equal(entry!.id, 'turn-1');
    assert.deepEqual(entry!.group, turn);
    assert.equal(entry!.steps!.length, 3);
    assert.equal(entry!.files, 3, 'src/a.ts counts once');
    assert.equal(entry!.protected, true);

    const result = await sample.log.undo({ steps: 1, force: false, root: root() });
    assert.equal(result.refused, undefined, result.refused);
    assert.equal(result.undone.length, 1);
    assert.deepEqual(result.undone[0]!.group, turn);
    assertSameTree(await snapshotTree(root()), sample.before);
    assert.deepEqual(await sample.log.list(), []);
  });

  it('--steps counts groups: a turn, a command and background syncs', async () => {
    await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', 'turn 1'));
    await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'turn.txt', 'turn 2'));
    const afterTurn = await snapshotTree(root());
    await cycle(sample.log, sample.workspace, command, (writer) => ops.write(writer, root(), 'fixed.txt', 'fix'));
    await cycle(sample.log, sample.workspace, undefined, (writer) => ops.write(writer, root(), 'loose.txt', 'old style'));
    const history = await sample.log.list();
    assert.deepEqual(history.map((entry) => entry.group?.kind ?? 'none'), ['none', 'command', 'turn']);
    assert.equal(history[0]!.steps!.length, 1);

    const two = await sample.log.undo({ steps: 2, force: false, root: root() });
    assert.equal(two.undone.length, 2);
    assertSameTree(await snapshotTree(root()), afterTurn);
    assert.deepEqual((await sample.log.list()).map((entry) => entry.id), ['turn-1']);
  });

  it('the step limit counts groups and evicts them whole: a turn of many syncs stays undoable, to its start', async () => {
    const log = await openLog(sample.workspace, { limits: { maxSteps: 2 } });
    await cycle(log, sample.workspace, command, (writer) => ops.write(writer, root(), 'fixed.txt', 'fix'));
    const beforeTurn = await snapshotTree(root());
    for (let index = 0; index < 4; index += 1) await cycle(log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', `turn ${index}`));
    assert.deepEqual((await log.list()).map((entry) => [entry.id, entry.steps!.length]), [['turn-1', 4], ['command-2', 1]], 'five syncs, two steps: nothing evicted');

    await cycle(log, sample.workspace, undefined, (writer) => ops.write(writer, root(), 'loose.txt', 'later'));
    assert.deepEqual((await log.list()).map((entry) => [entry.id, entry.steps!.length]).slice(1), [['turn-1', 4]], 'the oldest step went whole');
    const result = await log.undo({ steps: 2, force: false, root: root() });
    assert.equal(result.refused, undefined, result.refused);
    assertSameTree(await snapshotTree(root()), beforeTurn);
  });

  it('a group over the syncs the log keeps keeps its newest ones and cannot be undone, rather than be undone in part', async () => {
    const log = await openLog(sample.workspace, { limits: { maxStoredSteps: 3 } });
    await cycle(log, sample.workspace, command, (writer) => ops.write(writer, root(), 'fixed.txt', 'fix'));
    for (let index = 0; index < 4; index += 1) await cycle(log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', `turn ${index}`));
    const history = await log.list();
    assert.deepEqual(history.map((entry) => [entry.id, entry.steps!.length, entry.protected]), [['turn-1', 3, false]], 'the older step went first, then the turn\'s oldest sync');
    assert.match(history[0]!.unprotectedReason ?? '', /^the step it belongs to recorded more than 3 syncs, the most the log keeps$/);
    const current = await snapshotTree(root());
    const result = await log.undo({ steps: 1, force: false, root: root() });
    assert.match(result.refused ?? '', /cannot be undone: the step it belongs to recorded more than 3 syncs/);
    assertSameTree(await snapshotTree(root()), current);
  });

  it('a group alone over the size of the whole log cannot be undone, and says why', async () => {
    const log = await openLog(sample.workspace, { limits: { maxLogBytes: 3000 } });
    for (let index = 0; index < 4; index += 1) await cycle(log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', `turn ${index} `.repeat(200)));
    const [entry] = await log.list();
    assert.equal(entry!.protected, false);
    assert.match(entry!.unprotectedReason ?? '', /^the step it belongs to takes over the 2\.9 KiB limit of the whole log$/);
    assert.match((await log.undo({ steps: 1, force: false, root: root() })).refused ?? '', /cannot be undone/);
  });

  it('a group still running is refused, whole', async () => {
    await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', 'mid-turn'));
    const result = await sample.log.undo({ steps: 1, force: false, root: root(), running: turn });
    assert.match(result.refused ?? '', /the turn "rename the config loader" is still running; undo it once it has ended \(forcing undoes it anyway/);
    // What the editor asks about, and the CLI names --force for: the code and the group, not the words.
    assert.equal(result.refusedCode, 'still-running');
    assert.deepEqual(result.running, turn);
    assert.equal(await readFile(path.join(root(), 'src/a.ts'), 'utf8'), 'mid-turn');
  });

  it('a group still running is undone when forced (a turn whose Stop never came)', async () => {
    const before = await snapshotTree(root());
    await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', 'mid-turn'));
    const result = await sample.log.undo({ steps: 1, force: true, root: root(), running: turn });
    assert.equal(result.refused, undefined);
    assert.equal(result.undone.length, 1);
    assertSameTree(await snapshotTree(root()), before);
  });

  it('a barrier in any step of the group blocks the whole group; --force crosses it and keeps the later version', async () => {
    await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'src/a.ts', 'agent'));
    await cycle(sample.log, sample.workspace, turn, (writer) => ops.write(writer, root(), 'docs/guide.md', 'agent guide'));
    await writeFile(joinBytes(root(), 'src/a.ts'), 'the user edited this');
    const refused = await sample.log.undo({ steps: 1, force: false, root: root() });
    assert.ok(refused.refused);
    assert.equal(refused.refusedCode, 'changed-since');
    assert.deepEqual(refused.barriers.map((barrier) => barrier.path), ['src/a.ts']);
    assert.equal(await readFile(path.join(root(), 'docs/guide.md'), 'utf8'), 'agent guide', 'nothing of the group was undone');
    assert.equal((await sample.log.list())[0]!.barriers, 1);

    const forced = await sample.log.undo({ steps: 1, force: true, root: root() });
    assert.equal(forced.undone.length, 1);
    assert.equal(forced.kept.length, 1);
    assertSameTree(await snapshotTree(root()), sample.before);
  });

  it('relabelGroups makes several bursts one named group (a checkpoint), and the name survives reopening the log', async () => {
    await cycle(sample.log, sample.workspace, { id: 'sync-8', kind: 'sync', label: '' }, (writer) => ops.write(writer, root(), 'a.txt', 'a'));
    await cycle(sample.log, sample.workspace, { id: 'sync-9', kind: 'sync', label: '' }, (writer) => ops.write(writer, root(), 'b.txt', 'b'));
    await cycle(sample.log, sample.workspace, { id: 'sync-9', kind: 'sync', label: '' }, (writer) => ops.write(writer, root(), 'c.txt', 'c'));
    assert.equal((await sample.log.list()).length, 2);
    const checkpoint: StepGroup = { id: 'sync-9', kind: 'checkpoint', label: 'before the refactor' };
    assert.equal(await sample.log.relabelGroups(['sync-8', 'sync-9'], checkpoint), 3);
    assert.equal(await sample.log.relabelGroups(['nope'], checkpoint), 0);
    const reopened = await openLog(sample.workspace);
    const [entry, ...others] = await reopened.list();
    assert.deepEqual(others, []);
    assert.deepEqual(entry!.group, checkpoint);
    assert.equal(entry!.steps!.length, 3);
    assert.equal(entry!.files, 3);
  });

  it('a log written before groups lists each step on its own', async () => {
    await cycle(sample.log, sample.workspace, undefined, (writer) => ops.write(writer, root(), 'a.txt', 'a'));
    await cycle(sample.log, sample.workspace, undefined, (writer) => ops.write(writer, root(), 'b.txt', 'b'));
    const history = await sample.log.list();
    assert.equal(history.length, 2);
    assert.equal(history[0]!.group, undefined);
    assert.deepEqual(history[0]!.steps, [history[0]!.id]);
    assert.equal((await sample.log.undo({ steps: 1, force: false, root: root() })).undone.length, 1);
  });
});
