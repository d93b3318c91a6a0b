import assert from 'node:assert/strict';
import { chmodSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { runRescanCycle, runStoreCycle, withStateStore } from '../../src/core/sync/engine';
import { findChangedPaths, RESCAN_MAX_CHANGED_PATHS, type RescanResult } from '../../src/core/sync/rescan';
import { DIR, at, link, makeTree, pastTimestampTick, readTree, useSyncFixture, type SyncFixture, type TreeSpec } from '../helpers/syncTrees';

/**
 * A tree both sides agree on: full cycles ran over it, the second one reading (hashing) what
 * the first one wrote into the container, as the first rescan after any carried change does.
 */
const AGREED: TreeSpec = {
  'a.txt': 'a',
  'run.sh': { content: '#!/bin/sh\n', mode: 0o755 },
  src: DIR,
  'src/main.ts': 'main',
  'src/deep': DIR,
  'src/deep/x.ts': 'x',
  'to-main': link('src/main.ts'),
  '.gitignore': 'build/\n*.log\n',
};

async function agreed(f: SyncFixture, spec: TreeSpec = AGREED): Promise<void> {
  makeTree(f.host, spec);
  await withStateStore(f.stateDir, async (store) => {
    for (let cycle = 0; cycle < 2; cycle += 1) {
      // The second cycle's records of both sides vouch for the files (the first wrote the container's).
      await pastTimestampTick();
      const result = await runStoreCycle({ roots: f.roots, excludes: [], policy: 'two-way-safe', store });
      assert.equal(result.report?.halted, undefined);
    }
  });
  assert.deepEqual(readTree(f.container), readTree(f.host));
}

/** The rescan's finding, the same whether the container's tree is walked on this thread or on a worker. */
const rescan = (f: SyncFixture): Promise<RescanResult> =>
  withStateStore(f.stateDir, async (store) => {
    const here = await findChangedPaths({ roots: f.roots, excludes: [], store, parallelWalkMinPaths: Infinity });
    const onWorker = await findChangedPaths({ roots: f.roots, excludes: [], store, parallelWalkMinPaths: 0 });
    assert.deepEqual(onWorker, here, 'the walk on a worker thread found otherwise');
    return here;
  });

describe('unit: the periodic rescan (what differs from the agreed state, by metadata)', () => {
  const fixture = useSyncFixture('clud-rescan-');

  it('finds nothing when nothing changed', async () => {
    const f = fixture();
    await agreed(f);
    assert.deepEqual(await rescan(f), { changed: [], leftOut: [] });
  });

  // Each change made on one side after the agreement, and what the rescan must report.
  const changes: Array<{ name: string; change: (f: SyncFixture) => void; expected: RescanResult }> = [
    { name: 'a file edited in place, same size', change: (f) => writeFileSync(at(f.host, 'src/main.ts'), 'MAIN'), expected: { changed: ['src/main.ts'], leftOut: [] } },
    { name: 'a file made executable', change: (f) => chmodSync(at(f.container, 'a.txt'), 0o755), expected: { changed: ['a.txt'], leftOut: [] } },
    { name: 'a new file', change: (f) => writeFileSync(at(f.container, 'src/new.ts'), 'n'), expected: { changed: ['src/new.ts'], leftOut: [] } },
    { name: 'a new folder, as one path for its subtree', change: (f) => makeTree(f.host, { gen: DIR, 'gen/1.ts': '1', 'gen/2.ts': '2', 'gen/sub/3.ts': '3' }), expected: { changed: ['gen'], leftOut: [] } },
    { name: 'a link pointed elsewhere', change: (f) => { unlinkSync(at(f.host, 'to-main')); symlinkSync('a.txt', at(f.host, 'to-main')); }, expected: { changed: ['to-main'], leftOut: [] } },
    { name: 'a folder replaced by a file of the same name, as one path', change: (f) => { rmSync(at(f.container, 'src/deep'), { recursive: true }); writeFileSync(at(f.container, 'src/deep'), 'now a file'); }, expected: { changed: ['src/deep'], leftOut: [] } },
    { name: 'a file deleted behind the watchers\' back', change: (f) => unlinkSync(at(f.host, 'a.txt')), expected: { changed: ['a.txt'], leftOut: [] } },
    { name: 'a folder deleted, as one path for what was under it', change: (f) => rmSync(at(f.container, 'src'), { recursive: true }), expected: { changed: ['src'], leftOut: [] } },
    { name: 'a new ignored file and folder', change: (f) => makeTree(f.host, { 'debug.log': 'l', build: DIR, 'build/out.js': 'o' }), expected: { changed: [], leftOut: [] } },
    { name: 'a new secret, kept out by its name: left out', change: (f) => writeFileSync(at(f.container, '.env'), 'TOKEN=1'), expected: { changed: [], leftOut: ['.env'] } },
    { name: 'a FIFO: left out', change: (f) => execFileSync('mkfifo', [at(f.host, 'src/pipe').toString()]), expected: { changed: [], leftOut: ['src/pipe'] } },
    { name: 'an edited .gitignore', change: (f) => writeFileSync(at(f.host, '.gitignore'), 'build/\n'), expected: { changed: ['.gitignore'], leftOut: [] } },
    { name: 'a renamed file: both names', change: (f) => renameSync(at(f.host, 'src/deep/x.ts'), at(f.host, 'src/deep/y.ts')), expected: { changed: ['src/deep/x.ts', 'src/deep/y.ts'], leftOut: [] } },
    { name: 'an agreed folder reached through a link now (the walk cannot judge what is under it)', change: (f) => { renameSync(at(f.host, 'src/deep'), at(f.host, 'elsewhere')); symlinkSync('../elsewhere', at(f.host, 'src/deep')); }, expected: { fullCycleNeeded: '' } },
  ];
  for (const { name, change, expected } of changes) {
    it(name, async () => {
      const f = fixture();
      await agreed(f);
      change(f);
      const found = await rescan(f);
      if ('fullCycleNeeded' in expected) assert.ok('fullCycleNeeded' in found, JSON.stringify(found));
      else assert.deepEqual(found, expected);
    });
  }

  it('sends more than its limit of differences to the full cycle', async function () {
    this.timeout(30_000);
    const f = fixture();
    await agreed(f, { folder: DIR, ...Object.fromEntries(Array.from({ length: RESCAN_MAX_CHANGED_PATHS + 1 }, (_, index) => [`folder/f${index}`, 'v1'])) });
    for (let index = 0; index <= RESCAN_MAX_CHANGED_PATHS; index += 1) writeFileSync(at(f.host, `folder/f${index}`), 'v2');
    const found = await rescan(f);
    assert.ok('fullCycleNeeded' in found && found.fullCycleNeeded.includes('paths differ'), JSON.stringify(found));
  });

  it('carries what differs as an incremental cycle, and runs the full cycle when it cannot tell, with the same result', async () => {
    const f = fixture();
    await agreed(f);
    writeFileSync(at(f.container, 'src/main.ts'), 'edited in the container');
    makeTree(f.host, { gen: DIR, 'gen/1.ts': '1' });
    const carried = await withStateStore(f.stateDir, (store) => runRescanCycle({ roots: f.roots, excludes: [], policy: 'two-way-safe', store }));
    assert.equal(carried.rescan, 'changes-only');
    assert.equal(carried.report.appliedCount, 3); // the edit, the folder and its file
    assert.deepEqual(readTree(f.container), readTree(f.host));
    assert.equal(readTree(f.host)['src/main.ts'], 'edited in the container');

    unlinkSync(at(f.host, 'a.txt'));
    const deleted = await withStateStore(f.stateDir, (store) => runRescanCycle({ roots: f.roots, excludes: [], policy: 'two-way-safe', store }));
    assert.equal(deleted.rescan, 'changes-only');
    assert.deepEqual(deleted.report.applied, [{ path: 'a.txt', side: 'container', action: 'delete' }]);

    // Now excluded: agreed paths the walk does not meet, though they are there. Past the tick of
    // the last writes, so that the full cycle's records vouch for what it finds.
    await pastTimestampTick();
    const excluded = await withStateStore(f.stateDir, (store) => runRescanCycle({ roots: f.roots, excludes: ['gen/'], policy: 'two-way-safe', store }));
    assert.equal(excluded.rescan, 'full-cycle');
    assert.equal(excluded.report.appliedCount, 0);
    assert.equal(readTree(f.container)['gen/1.ts'], '1');
    assert.deepEqual(await withStateStore(f.stateDir, (store) => findChangedPaths({ roots: f.roots, excludes: ['gen/'], store })), { changed: [], leftOut: [] });
  });

  it("a rescan's cycle names what the sync leaves out, every time, as a full cycle does", async () => {
    const f = fixture();
    await agreed(f);
    writeFileSync(at(f.host, '.env'), 'TOKEN=1');
    execFileSync('mkfifo', [at(f.container, 'src/pipe').toString()]);
    for (let round = 0; round < 2; round += 1) {
      const { report, rescan: outcome } = await withStateStore(f.stateDir, (store) => runRescanCycle({ roots: f.roots, excludes: [], policy: 'two-way-safe', store }));
      assert.equal(outcome, 'changes-only');
      assert.deepEqual(report.keptOut.map((secret) => `${secret.side} ${secret.path}`), ['host .env'], `round ${round}`);
      assert.deepEqual(report.problems.map((problem) => `${problem.side} ${problem.path}`), ['container src/pipe'], `round ${round}`);
      assert.equal(report.appliedCount, 0);
      const full = await withStateStore(f.stateDir, (store) => runStoreCycle({ roots: f.roots, excludes: [], policy: 'two-way-safe', store }));
      assert.deepEqual([full.report?.keptOut, full.report?.problems], [report.keptOut, report.problems], 'a full cycle reports the same');
    }
    assert.equal(readTree(f.container)['.env'], undefined, 'the secret stayed on the host');
  });

  it('a wiped side is not taken for a change: the full cycle halts and deletes nothing', async () => {
    const f = fixture();
    await agreed(f);
    rmSync(f.container, { recursive: true });
    makeTree(f.container, {});
    const result = await withStateStore(f.stateDir, (store) => runRescanCycle({ roots: f.roots, excludes: [], policy: 'two-way-safe', store }));
    assert.equal(result.rescan, 'full-cycle');
    assert.equal(result.report.halted?.side, 'container');
    assert.equal(readTree(f.host)['a.txt'], 'a');
  });

  it('reads names that are not valid UTF-8 by their bytes', async () => {
    const f = fixture();
    await agreed(f, { 'caf\udce9.txt': 'latin-1 name' });
    assert.deepEqual(await rescan(f), { changed: [], leftOut: [] });
    writeFileSync(at(f.host, 'caf\udce9.txt'), 'edited!!!!!!');
    assert.deepEqual(await rescan(f), { changed: ['caf\udce9.txt'], leftOut: [] });
    assert.ok(path.isAbsolute(f.host));
  });
});
