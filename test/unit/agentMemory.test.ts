import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectGarbage, leftGarbage } from '../../src/agent/memory';
import { emptySyncReport } from '../../src/core/protocol';

describe('unit: when the resident agent collects its garbage', () => {
  const report = (appliedCount: number) => emptySyncReport({ id: 's', policy: 'two-way-safe', startedAt: new Date(0).toISOString(), appliedCount });

  it('after a cycle that walked both whole trees, or carried hundreds of changes; never after a save', () => {
    assert.equal(leftGarbage('full', report(0)), true, 'a periodic rescan');
    assert.equal(leftGarbage('request', report(0)), true, 'a client\'s sync');
    assert.equal(leftGarbage('incremental', report(1000)), true, 'a burst');
    assert.equal(leftGarbage('incremental', report(1)), false, 'a saved file');
    assert.equal(leftGarbage('incremental', report(499)), false);
  });

  it('collects again while a collection gives committed heap back, at most four times', () => {
    const MB = 2 ** 20;
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
