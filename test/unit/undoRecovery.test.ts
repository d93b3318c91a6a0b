import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { appendFile, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { joinBytes } from '../../src/core/files/pathCodec';
import { UndoLog } from '../../src/core/undo';
import type { KillPoint, TreeState, Workspace } from '../helpers/undoTrees';
import { assertSameTree, buildCrashChild, fastTemporaryRoot, makeWorkspace, MIXED_CHANGES, openLog, runCrashChild, snapshotTree, step, withoutXattrs } from '../helpers/undoTrees';

interface Case {
  name: string;
  title: string;
  killAt: KillPoint;
  /** Damage done to the open step's folder after the crash. */
  tamper?: (stepFolder: string) => Promise<void>;
}

const n = MIXED_CHANGES.length;
const CASES: Case[] = [
  { name: 'captured', title: 'killed after the first capture, before its change (k = 0)', killAt: 'captured-0' },
  {
    name: 'content-lost',
    title: 'killed after the first capture, before its change, with its journal line durable but not its content (the two are synced at once)',
    killAt: 'captured-0',
    tamper: (folder) => truncate(path.join(folder, 'content.raw'), 0),
  },
  { name: 'staged', title: 'killed with a temporary sibling staged after the capture', killAt: 'staged' },
  { name: 'after-1', title: 'killed after 1 of n changes', killAt: 'after-1' },
  { name: 'half', title: `killed after n/2 = ${n / 2} changes`, killAt: `after-${n / 2}` },
  { name: 'last', title: `killed after n-1 = ${n - 1} changes`, killAt: `after-${n - 1}` },
  { name: 'promote', title: 'killed while closing: manifest written, step not yet promoted', killAt: 'before-promote' },
  {
    name: 'torn-journal',
    title: 'killed after n/2 changes, the journal ending in a torn line (a power cut mid-append)',
    killAt: `after-${n / 2}`,
    tamper: (folder) => appendFile(path.join(folder, 'journal.jsonl'), '{"path":"src/a.ts","pre":{"kind":"fi'),
  },
  { name: 'no-manifest', title: 'killed after all changes, manifest deleted: rolled back from the journal', killAt: `after-${n}`, tamper: (folder) => rm(path.join(folder, 'manifest.json')) },
  { name: 'bad-manifest', title: 'killed after all changes, manifest corrupt', killAt: `after-${n}`, tamper: (folder) => writeFile(path.join(folder, 'manifest.json'), '{"version":1,"id":') },
];

describe('unit: undo crash recovery', () => {
  let base: string;
  const prepared = new Map<string, { workspace: Workspace; before: TreeState; crash: { signal: NodeJS.Signals | null; stderr: string } }>();

  // Every crash runs in its own child process, all at once: the tests below only inspect them.
  before(async function () {
    this.timeout(60_000);
    base = mkdtempSync(path.join(fastTemporaryRoot(), 'clud-undo-crash-'));
    const script = await buildCrashChild(base);
    await Promise.all(
      [...CASES, { name: 'completed', killAt: 'none' as const }, { name: 'no-attr-tools', killAt: 'none' as const, env: { ...process.env, PATH: '/nonexistent' } }].map(async ({ name, killAt, ...rest }) => {
        mkdirSync(path.join(base, name));
        const workspace = await makeWorkspace(path.join(base, name));
        const before = await snapshotTree(workspace.root);
        prepared.set(name, { workspace, before, crash: await runCrashChild(script, workspace, killAt, 'env' in rest ? rest.env : undefined) });
      }),
    );
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  for (const { name, title, tamper } of CASES) {
    it(title, async () => {
      const { workspace, before, crash } = prepared.get(name)!;
      assert.equal(crash.signal, 'SIGKILL', `the child was not killed: ${crash.stderr}`);
      const open = await readdir(path.join(workspace.undoDir, 'in-progress'));
      assert.equal(open.length, 1, 'the crash left the step in progress');
      await tamper?.(path.join(workspace.undoDir, 'in-progress', open[0]!));

      const { log, recovered } = await UndoLog.open(workspace.undoDir, { keptDirectory: workspace.keptDir });

      assert.deepEqual(recovered.map(({ id, outcome, problems }) => ({ id, outcome, problems })), [{ id: open[0], outcome: 'rolled-back', problems: [] }]);
      assertSameTree(await snapshotTree(workspace.root), before);
      assert.deepEqual(await log.list(), []);
      assert.deepEqual(await readdir(path.join(workspace.undoDir, 'in-progress')), []);
    });
  }

  it('keeps aside what the rollback overwrites (it may be an edit made after the crash)', async () => {
    const { workspace } = prepared.get('last')!;
    const kept = await readdir(workspace.keptDir);
    assert.equal(kept.length, 1);
    assert.match(kept[0]!, /^recovered-/);
    assert.equal(await readFile(joinBytes(path.join(workspace.keptDir, kept[0]!), 'src/a.ts'), 'utf8'), 'export const a = 42;\n');
  });

  it('a step promoted before the process ended is kept, not rolled back, and undoes normally', async () => {
    const { workspace, before, crash } = prepared.get('completed')!;
    assert.equal(crash.signal, null, crash.stderr);
    const { log, recovered } = await UndoLog.open(workspace.undoDir, { keptDirectory: workspace.keptDir });
    assert.deepEqual(recovered, []);
    assert.equal((await log.list()).length, 1);
    const result = await log.undo({ steps: 1, force: false, root: workspace.root });
    assert.deepEqual([result.refused, result.problems, result.undone.length], [undefined, [], 1]);
    assertSameTree(await snapshotTree(workspace.root), before);
  });

  it('without getfattr/setfattr, a step says extended attributes were not captured, and still undoes', async () => {
    const { workspace, before, crash } = prepared.get('no-attr-tools')!;
    assert.equal(crash.signal, null, crash.stderr);
    const log = await openLog(workspace);
    const [summary] = await log.list();
    assert.deepEqual(summary!.notes, ['extended attributes were not captured: getfattr/setfattr (Debian package "attr") are not installed']);
    const result = await log.undo({ steps: 1, force: false, root: workspace.root });
    assert.deepEqual([result.refused, result.problems, result.undone.length], [undefined, [], 1]);
    assertSameTree(withoutXattrs(await snapshotTree(workspace.root)), withoutXattrs(before));
  });

  it('finishes an undo that was interrupted after it started restoring', async () => {
    const workspace = await makeWorkspace(mkdtempSync(path.join(base, 'undoing-')));
    const before = await snapshotTree(workspace.root);
    const log = await openLog(workspace);
    const summary = await step(log, workspace, async (writer) => {
      for (const change of MIXED_CHANGES) await change(writer, workspace.root);
    });
    // What undo does first, then a crash: the step is in undoing/, the tree half restored.
    await rename(path.join(workspace.undoDir, 'steps', summary!.id), path.join(workspace.undoDir, 'undoing', summary!.id));
    await rm(joinBytes(workspace.root, 'new'), { recursive: true });

    const { log: reopened, recovered } = await UndoLog.open(workspace.undoDir, { keptDirectory: workspace.keptDir });

    assert.deepEqual(recovered.map(({ outcome, problems }) => ({ outcome, problems })), [{ outcome: 'undo-completed', problems: [] }]);
    assertSameTree(await snapshotTree(workspace.root), before);
    assert.deepEqual(await reopened.list(), []);
  });
});
