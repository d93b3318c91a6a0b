// The step's plan (planStep: pure, a table of cases) and what a recorded sync does with it: its
// questions are asked before anything changes, and every preimage is captured before the first
// change (real trees, real undo log).
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { runSyncCycle, type SyncCycleOptions } from '../../src/core/sync/engine';
import type { Policy } from '../../src/core/sync/reconcile';
import { DEFAULT_LIMITS, DEFAULT_THRESHOLDS, UndoLog } from '../../src/core/undo';
import type { SafeguardQuestion, SafeguardThresholds, UndoLimits } from '../../src/core/undo';
import { readJournal } from '../../src/core/undo/stepJournal';
import { planStep, RECORD_BYTES, type PlannedChange, type StepPlan } from '../../src/core/undo/stepPlan';
import { DIR, makeTree, readTree, useSyncFixture, type SyncFixture } from '../helpers/syncTrees';

const file = (size: number) => ({ kind: 'file' as const, size });
const folder = { kind: 'directory' as const, size: 0 };
const link = { kind: 'symlink' as const, size: 0 };
const write = (path: string, before?: PlannedChange['before']): PlannedChange => ({ path, action: 'write', ...(before && { before }) });
const del = (path: string, before: PlannedChange['before']): PlannedChange => ({ path, action: 'delete', before });
/** What the records of these keys (paths and parent folders) are estimated to take. */
const records = (...keys: string[]): number => keys.reduce((sum, key) => sum + RECORD_BYTES + 2 * key.length, 0);

interface Case {
  description: string;
  changes: PlannedChange[];
  thresholds?: Partial<SafeguardThresholds>;
  limits?: Partial<UndoLimits>;
  /** Omitted fields: no questions, no unprotectedReason. */
  expected: Partial<StepPlan> & Pick<StepPlan, 'capture' | 'estimatedBytes'>;
}

const cases: Case[] = [
  {
    description: 'no change: nothing to capture or ask',
    changes: [],
    expected: { capture: [], estimatedBytes: 0 },
  },
  {
    description: 'each path is captured once, in the order of its first change; only files have content, every parent folder a record',
    changes: [write('a', file(100)), write('new'), del('d/x', file(50)), del('d', folder), write('a', file(100)), write('d')],
    expected: { capture: ['a', 'new', 'd/x', 'd'], estimatedBytes: 150 + records('a', '', 'new', 'd/x', 'd') },
  },
  {
    description: 'deletions over the threshold: one question, at the deletion that crossed it, counting every deletion of the step',
    changes: [del('f1', file(1)), del('f2', file(1)), del('f3', file(1)), del('f4', file(1)), del('d', folder)],
    thresholds: { maxDeletions: 2 },
    expected: {
      capture: ['f1', 'f2', 'f3', 'f4', 'd'],
      questions: [{ kind: 'many-deletions', path: 'f3', detail: '4 files deleted in this sync (limit 2)' }],
      estimatedBytes: 4 + records('f1', '', 'f2', 'f3', 'f4', 'd'),
    },
  },
  {
    description: 'a link counts as a deletion; a folder, and what the step itself created, do not',
    changes: [write('n'), del('n', file(3)), del('d', folder), del('l', link), del('f', file(1))],
    thresholds: { maxDeletions: 1 },
    expected: {
      capture: ['n', 'd', 'l', 'f'],
      questions: [{ kind: 'many-deletions', path: 'f', detail: '2 files deleted in this sync (limit 1)' }],
      estimatedBytes: 1 + records('n', '', 'd', 'l', 'f'),
    },
  },
  {
    description: 'deletions that are moves (their content arrives elsewhere in the step: a folder renamed) do not count toward the threshold, and are still captured',
    changes: [write('new/f1'), write('new/f2'), write('new/f3'), { ...del('old/f1', file(1)), moved: true }, { ...del('old/f2', file(1)), moved: true }, { ...del('old/f3', file(1)), moved: true }, del('gone', file(1))],
    thresholds: { maxDeletions: 1 },
    expected: { capture: ['new/f1', 'new/f2', 'new/f3', 'old/f1', 'old/f2', 'old/f3', 'gone'], estimatedBytes: 4 + records('new/f1', 'new', '', 'new/f2', 'new/f3', 'old/f1', 'old', 'old/f2', 'old/f3', 'gone') },
  },
  {
    description: 'deletions at the threshold ask nothing',
    changes: [del('f1', file(1)), del('f2', file(1))],
    thresholds: { maxDeletions: 2 },
    expected: { capture: ['f1', 'f2'], estimatedBytes: 2 + records('f1', '', 'f2') },
  },
  {
    description: 'overwriting large files asks once, at the first; deleting one, or rewriting what the step replaced, does not',
    changes: [del('gone', file(9000)), write('gone'), write('big1', file(5000)), write('big2', file(6000))],
    thresholds: { largeFileBytes: 1000 },
    expected: {
      capture: ['gone', 'big1', 'big2'],
      questions: [{ kind: 'large-overwrite', path: 'big1', detail: 'overwrites big1, a file of 4.9 KiB (limit 1000 B)' }],
      estimatedBytes: 20_000 + records('gone', '', 'big1', 'big2'),
    },
  },
  {
    description: 'renaming over an existing entry asks, unless told not to',
    changes: [{ path: 's', action: 'rename-source', before: file(1) }, { path: 't', action: 'rename-target', before: link }],
    expected: { capture: ['s', 't'], questions: [{ kind: 'rename-over', path: 't', detail: 'renames over the existing symlink t' }], estimatedBytes: 1 + records('s', '', 't') },
  },
  {
    description: 'renaming over an existing entry asks nothing with askRenameOver off',
    changes: [{ path: 't', action: 'rename-target', before: file(1) }],
    thresholds: { askRenameOver: false },
    expected: { capture: ['t'], estimatedBytes: 1 + records('t', '') },
  },
  {
    description: 'questions come in the order of the changes that raise them',
    changes: [del('a/x', file(1)), del('a/y', file(1)), write('big', file(2000))],
    thresholds: { maxDeletions: 1, largeFileBytes: 1000 },
    expected: {
      capture: ['a/x', 'a/y', 'big'],
      questions: [
        { kind: 'many-deletions', path: 'a/y', detail: '2 files deleted in this sync (limit 1)' },
        { kind: 'large-overwrite', path: 'big', detail: 'overwrites big, a file of 2.0 KiB (limit 1000 B)' },
      ],
      estimatedBytes: 2002 + records('a/x', 'a', '', 'a/y', 'big'),
    },
  },
  {
    description: 'over the single-step limit: the step will capture nothing, and says why',
    changes: [write('a', file(2000))],
    limits: { maxStepBytes: 1000 },
    expected: { capture: ['a'], estimatedBytes: 2000 + records('a', ''), unprotectedReason: 'the step would take about 3.5 KiB, over the 1000 B limit of one step' },
  },
  {
    description: 'over the single-step limit, a question says that what it allows could not be undone',
    changes: [write('big', file(2000))],
    thresholds: { largeFileBytes: 1000 },
    limits: { maxStepBytes: 1000 },
    expected: {
      capture: ['big'],
      questions: [{ kind: 'large-overwrite', path: 'big', detail: 'overwrites big, a file of 2.0 KiB (limit 1000 B); it could not be undone: the step would take about 3.5 KiB, over the 1000 B limit of one step' }],
      estimatedBytes: 2000 + records('big', ''),
      unprotectedReason: 'the step would take about 3.5 KiB, over the 1000 B limit of one step',
    },
  },
  {
    description: 'at the single-step limit: protected',
    changes: [write('a', file(2000))],
    limits: { maxStepBytes: 2000 + records('a', '') },
    expected: { capture: ['a'], estimatedBytes: 2000 + records('a', '') },
  },
];

describe('unit: undo step plan', () => {
  for (const { description, changes, thresholds, limits, expected } of cases) {
    it(description, () => {
      const plan = planStep(changes, { ...DEFAULT_THRESHOLDS, ...thresholds }, { ...DEFAULT_LIMITS, ...limits });
      assert.deepEqual(plan, { questions: [], ...expected });
    });
  }
});

describe('unit: a recorded sync follows its plan', () => {
  const fixture = useSyncFixture('clud-undo-plan-');

  const sync = (f: SyncFixture, policy: Policy, extra: Partial<SyncCycleOptions> = {}) => runSyncCycle({ roots: f.roots, stateDir: f.stateDir, policy, excludes: [], ...extra });
  const openLog = async (f: SyncFixture, limits?: Partial<UndoLimits>) => (await UndoLog.open(path.join(f.stateDir, 'undo'), { keptDirectory: path.join(f.stateDir, 'kept'), limits })).log;
  /** The folder of the step in progress. */
  const inProgress = (f: SyncFixture): string => {
    const open = readdirSync(path.join(f.stateDir, 'undo', 'in-progress'));
    assert.equal(open.length, 1, 'one step in progress');
    return path.join(f.stateDir, 'undo', 'in-progress', open[0]!);
  };
  /** Both sides hold `files`, agreed by a first sync. */
  const agreedOn = async (f: SyncFixture, files: Record<string, string>) => {
    makeTree(f.host, files);
    await sync(f, 'two-way-safe');
    assert.deepEqual(readTree(f.container), readTree(f.host));
  };

  it('asks its questions before anything changes: a denied pull has nothing to roll back, and its question counts every deletion', async () => {
    const f = fixture();
    // At four depths: the apply deletes them in four batches, one after the other.
    const names = ['d/e/f/x4.txt', 'd/e/x3.txt', 'd/x2.txt', 'x1.txt'];
    await agreedOn(f, Object.fromEntries(names.map((name) => [name, name])));
    const before = readTree(f.host);
    for (const name of names) rmSync(path.join(f.container, name));
    const asked: Array<{ question: SafeguardQuestion; host: Record<string, string> }> = [];
    const report = await sync(f, 'pull', {
      undo: {
        log: await openLog(f),
        thresholds: { maxDeletions: 2 },
        ask: async (question) => {
          asked.push({ question, host: readTree(f.host) });
          return 'deny';
        },
      },
    });
    assert.deepEqual(asked, [{ question: { kind: 'many-deletions', path: 'd/x2.txt', detail: '4 files deleted in this sync (limit 2)' }, host: before }]);
    assert.deepEqual([report.denied?.kind, report.appliedCount, report.undoStep], ['many-deletions', 0, undefined]);
    assert.deepEqual(readTree(f.host), before);
  });

  it('captures every preimage, durably, before the first change', async () => {
    const f = fixture();
    const names = Array.from({ length: 300 }, (_, index) => `src/f${String(index).padStart(3, '0')}.txt`);
    await agreedOn(f, Object.fromEntries(names.map((name) => [name, `host ${name}`])));
    makeTree(f.container, Object.fromEntries(names.map((name) => [name, `container ${name}`])));
    let journaled: Promise<number> | undefined;
    const log = await openLog(f);
    const report = await sync(f, 'pull', {
      undo: { log },
      beforeModify: async (change) => {
        if (change.side === 'host') journaled ??= readJournal(inProgress(f)).then(({ preimages }) => names.filter((name) => preimages.has(name)).length);
        await journaled;
      },
    });
    assert.equal(report.appliedCount, names.length);
    assert.equal(await journaled, names.length, 'the journal on disk held every path at the first change');
    await log.undo({ steps: 1, force: false, root: f.host });
    assert.deepEqual(Object.values(readTree(f.host)).filter((content) => content.startsWith('container')), []);
  });

  it('a path captured whose change never started (edited since the scan) is left out of the step: undo keeps the edit', async () => {
    const f = fixture();
    await agreedOn(f, { 'a.txt': 'a', 'd/x.txt': 'x' });
    makeTree(f.container, { 'a.txt': 'a from the container' });
    rmSync(path.join(f.container, 'd', 'x.txt'));
    const log = await openLog(f);
    const report = await sync(f, 'pull', {
      undo: { log },
      // The deeper deletion goes first; meanwhile someone edits a.txt, captured but not changed yet.
      beforeModify: async (change) => {
        if (change.side === 'host' && change.path === 'd/x.txt') makeTree(f.host, { 'a.txt': 'edited on the host' });
      },
    });
    assert.deepEqual(report.skipped.map(({ path: key, code }) => [key, code]), [['a.txt', 'changed-since-scan']]);
    const [step] = await log.list();
    assert.deepEqual([step?.id, step?.files], [report.undoStep, 1]);
    const result = await log.undo({ steps: 1, force: false, root: f.host });
    assert.deepEqual([result.refused, result.barriers, result.problems], [undefined, [], []]);
    assert.deepEqual(readTree(f.host), { 'a.txt': 'edited on the host', d: DIR, 'd/x.txt': 'x' });
  });

  it('a sync recorded into a group names the group, as history lists it; one recorded alone names its own step', async () => {
    const f = fixture();
    await agreedOn(f, { 'a.txt': 'a', 'b.txt': 'b' });
    const log = await openLog(f);
    const burst = { id: 'sync-burst-1', kind: 'sync' as const, label: '' };
    const reports = [];
    for (const name of ['a.txt', 'b.txt']) {
      makeTree(f.container, { [name]: `${name} from the container` });
      reports.push(await sync(f, 'two-way-safe', { undo: { log, group: () => burst } }));
    }
    makeTree(f.container, { 'a.txt': 'alone' });
    const alone = await sync(f, 'two-way-safe', { undo: { log } });
    const history = await log.list();
    assert.deepEqual(history.map((step) => [step.id, step.steps?.length]), [[alone.undoStep, 1], ['sync-burst-1', 2]]);
    assert.deepEqual(reports.map((report) => [report.undoStep, report.undoStepShared]), [['sync-burst-1', true], ['sync-burst-1', true]]);
    assert.equal(alone.undoStepShared, undefined);
    assert.notEqual(alone.undoStep, undefined);
  });

  it('over the single-step limit: captures nothing, changes the host, and lists the step as not undoable with the estimate', async () => {
    const f = fixture();
    await agreedOn(f, { 'big.txt': 'x'.repeat(30_000), 'small.txt': 'small' });
    makeTree(f.container, { 'big.txt': 'y'.repeat(30_000), 'small.txt': 'changed' });
    const log = await openLog(f, { maxStepBytes: 10_000 });
    const held: string[][] = [];
    const report = await sync(f, 'pull', {
      undo: { log },
      beforeModify: async (change) => {
        if (change.side === 'host' && held.length === 0) held.push(readdirSync(inProgress(f)).sort());
      },
    });
    assert.deepEqual(held, [['manifest.json', 'unprotected.json']]);
    assert.equal(readTree(f.host)['small.txt'], 'changed');
    const [step] = await log.list();
    assert.deepEqual([step?.id, step?.protected, step?.files], [report.undoStep, false, 2]);
    assert.match(step?.unprotectedReason ?? '', /^the step would take about 31\.7 KiB, over the 9\.8 KiB limit of one step$/);
    // The sync's report says so, rather than that `clud undo` takes it back.
    assert.equal(report.notUndoable, step?.unprotectedReason);
  });
});
