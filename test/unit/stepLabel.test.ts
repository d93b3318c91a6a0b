import assert from 'node:assert/strict';
import type { UndoStepInfo } from '../../src/core/protocol';
import { commandLine } from '../../src/core/host/runStep';
import { containerAfterUndo, describeUndoStep, forcedUndo, lastTurnUndo } from '../../src/core/stepLabel';
import { buildTree } from '../../src/core/ui/tree';
import { initialState } from '../../src/core/ui/state';

const entry = (id: string, group?: UndoStepInfo['group'], steps = [id]): UndoStepInfo => ({ id, syncId: 's', policy: 'two-way-safe', startedAt: '2026-01-01T00:00:00Z', closedAt: '2026-01-01T00:00:01Z', files: 2, bytes: 10, protected: true, notes: [], barriers: 0, ...(group && { group }), steps });

describe('unit: step labels', () => {
  it('names a turn by its prompt, a command by its command line, a checkpoint by its name, other steps by their syncs', () => {
    assert.equal(describeUndoStep(entry('t', { id: 't', kind: 'turn', label: 'rename the config loader' })), 'turn "rename the config loader"');
    assert.equal(describeUndoStep(entry('c', { id: 'c', kind: 'command', label: 'npm run fix' })), '`npm run fix`');
    assert.equal(describeUndoStep(entry('k', { id: 'k', kind: 'checkpoint', label: 'before the refactor' })), 'checkpoint: before the refactor');
    assert.equal(describeUndoStep(entry('s')), 'two-way-safe sync');
    assert.equal(describeUndoStep(entry('g', { id: 'g', kind: 'sync', label: '' }, ['a', 'b', 'c'])), '3 two-way-safe syncs');
    for (const keep of ['host', 'container', 'both']) assert.equal(describeUndoStep({ ...entry('r'), policy: `resolve: keep ${keep}` }), `resolve: keep ${keep}`);
    assert.equal(describeUndoStep(entry('e', { id: 'e', kind: 'turn', label: 'evil\u001b[2Jname' })), 'turn "evil\\x1b[2Jname"', 'a label is shown escaped');
  });

  it('a refused undo that forcing would do asks about what forcing overrides; the others ask nothing', () => {
    const running = forcedUndo({ refusedCode: 'still-running', running: { id: 't', kind: 'turn', label: 'rename the config loader' }, barriers: [] });
    assert.equal(running?.question, 'turn "rename the config loader" has not ended. Undo it anyway?');
    assert.match(running?.detail ?? '', /stays open until the next prompt/);
    const barrier = (path: string) => ({ stepId: 's', path, detectedAt: '2026-01-01T00:00:00Z', change: 'modified' });
    const changed = forcedUndo({ refusedCode: 'changed-since', barriers: [barrier('a.txt'), barrier('a.txt'), barrier('b\nc.txt')] });
    assert.equal(changed?.question, 'a.txt, b\\nc.txt changed after that step. Undo anyway?', 'each path once, shown escaped');
    const many = forcedUndo({ refusedCode: 'changed-since', barriers: ['1', '2', '3', '4', '5', '6'].map(barrier) });
    assert.equal(many?.question, '1, 2, 3, 4, 5, … changed after that step. Undo anyway?');
    for (const refusedCode of ['unavailable', 'busy', 'invalid', 'nothing-to-undo', 'cannot-undo', undefined] as const) {
      assert.equal(forcedUndo({ refusedCode, barriers: [] }), undefined, String(refusedCode));
    }
  });

  it("Undo Agent's Last Turn takes back the newest turn and everything newer", () => {
    const history = [entry('s'), entry('c', { id: 'c', kind: 'command', label: 'x' }), entry('t2', { id: 't2', kind: 'turn', label: 'b' }), entry('t1', { id: 't1', kind: 'turn', label: 'a' })];
    const plan = lastTurnUndo(history);
    assert.equal(plan?.steps, 3);
    assert.equal(plan?.turn.id, 't2');
    assert.deepEqual(plan?.newer.map((step) => step.id), ['s', 'c']);
    assert.equal(lastTurnUndo([entry('s')]), undefined);
  });

  it("the Clud view's history shows each step's label", () => {
    const state = { ...initialState(), health: { kind: 'synced' as const }, undoSteps: [entry('t', { id: 't', kind: 'turn', label: 'rename the config loader' })] };
    const history = buildTree(state).find((node) => node.id === 'undo');
    assert.equal(history?.children?.[0]?.label, 'turn "rename the config loader"');
    assert.match(history?.children?.[0]?.description ?? '', /2 path\(s\)/);
  });

  it('a command line as a label quotes what a shell would split', () => {
    assert.equal(commandLine(['npm', 'run', 'fix']), 'npm run fix');
    assert.equal(commandLine(['sh', '-c', "echo 'hi' > a.txt"]), `sh -c 'echo '\\''hi'\\'' > a.txt'`);
  });

  it('after an undo, says the container follows at once only while continuous auto-sync runs', () => {
    assert.match(containerAfterUndo({ autoSync: 'continuous', state: 'idle' }), /^Auto-sync is bringing.*becomes a conflict, both versions kept/);
    assert.match(containerAfterUndo({ autoSync: 'continuous', state: 'syncing' }), /^Auto-sync is bringing/);
    for (const live of [{ autoSync: 'continuous', state: 'paused' }, { autoSync: 'continuous', state: 'halted' }, { autoSync: 'on-save', state: 'idle' }, { autoSync: 'off', state: 'idle' }, undefined] as const) {
      assert.match(containerAfterUndo(live), /the next sync brings it in line/, JSON.stringify(live));
    }
  });
});
