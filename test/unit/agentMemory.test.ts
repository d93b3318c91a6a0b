import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectGarbage, GarbageCollection } from '../../src/agent/memory';

describe('unit: when the resident agent collects its garbage', () => {
  const MB = 2 ** 20;
  const BURST = { walkedBothTrees: false, carried: true };
  /** A periodic rescan that found nothing to carry. */
  const RESCAN = { walkedBothTrees: true, carried: false };

  it('at once after a walk of both trees when the heap commits 64 MB or more; never at once after a burst', () => {
    let committed = 40 * MB;
    let calls = 0;
    const collection = new GarbageCollection(() => {
      calls += 1;
      committed = Math.min(committed, 70 * MB);
    }, () => committed);
    assert.equal(collection.afterCycle({ walkedBothTrees: true, carried: false }), 0, 'a rescan at 2,000 files (40 MB): left to V8');
    committed = 63 * MB;
    assert.equal(collection.afterCycle({ walkedBothTrees: true, carried: false }), 0);
    committed = 150 * MB;
    assert.equal(collection.afterCycle({ walkedBothTrees: false, carried: true }), 0, 'a burst: not at once, whatever the heap');
    assert.equal(collection.afterCycle({ walkedBothTrees: true, carried: false }), 2, 'a rescan at 100,000 files (150 MB): collected until one gives nothing back');
    assert.equal(calls, 2);
    assert.equal(new GarbageCollection(undefined, () => 500 * MB).afterCycle({ walkedBothTrees: true, carried: true }), 0, 'without --expose-gc: nothing');
  });

  it('collects what work left once no cycle carried a change for a while, and never while changes keep coming', async () => {
    let calls = 0;
    const restMs = 1000;
    const collection = new GarbageCollection(() => (calls += 1), () => 40 * MB, restMs);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const startedAt = Date.now();
    assert.equal(collection.afterCycle(BURST), 0, 'a burst at 2,000 files: not at once');
    await sleep(300);
    const restartedAt = Date.now();
    assert.equal(collection.afterCycle(BURST), 0, 'another burst: the rest starts again');
    await sleep(300);
    collection.afterCycle(RESCAN);
    if (Date.now() - restartedAt < restMs) assert.equal(calls, 0, 'a cycle that carried nothing (a rescan) is no work, and does not end the rest');
    while (calls === 0 && Date.now() - startedAt < 10_000) await sleep(20);
    assert.equal(calls, 1, 'at rest: collected');
    assert.ok(Date.now() - restartedAt >= restMs, 'not before a whole rest after the last burst');
    collection.afterCycle(RESCAN);
    await sleep(restMs + 200);
    assert.equal(calls, 1, 'nothing carried since: nothing more to collect');
  });

  it('collects again while a collection gives committed heap back, at most four times', () => {
    const series = (committed: number[]) => {
      let calls = 0;
      const collections = collectGarbage(() => (calls += 1), () => committed[Math.min(calls, committed.length - 1)]!);
      assert.equal(collections, calls);
      return collections;
    };
    assert.equal(series([150 * MB, 100 * MB, 80 * MB, 79 * MB]), 3, 'stops once one gives back under 2 MB');
    assert.equal(series([150 * MB, 149 * MB]), 1, 'one that gives nothing back is enough');
    assert.equal(series([400 * MB, 300 * MB, 200 * MB, 100 * MB, 50 * MB]), 4, 'never more than four');
    assert.equal(collectGarbage(undefined), 0, 'without --expose-gc: nothing');
  });

  it('gives back the heap a burst of garbage left committed', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const baseline = process.memoryUsage().heapTotal;
    let kept: unknown[] = [];
    for (let round = 0; round < 20; round += 1) kept = Array.from({ length: 100_000 }, (_, i) => ({ i, name: `path/to/file-${round}-${i}` }));
    kept = [];
    const grown = process.memoryUsage().heapTotal - baseline;
    collectGarbage(gc);
    const left = process.memoryUsage().heapTotal - baseline;
    assert.ok(grown > 20 * 2 ** 20, `the garbage grew the heap by ${grown} bytes`);
    assert.ok(left < grown / 2, `${left} of ${grown} bytes still committed`);
    assert.equal(kept.length, 0);
  });
});
