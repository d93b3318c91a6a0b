import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectGarbage, GarbageCollection } from '../../src/agent/memory';

describe('unit: when the resident agent collects its garbage', () => {
  const MB = 2 ** 20;

  it('once the heap grew by 32 MB since the last collection (or the start); never for less', () => {
    let committed = 40 * MB;
    let calls = 0;
    const collection = new GarbageCollection(() => {
      calls += 1;
      committed = Math.min(committed, 45 * MB);
    }, () => committed);
    committed = 71 * MB;
    assert.equal(collection.afterCycle(), 0, 'a burst at 2,000 files: 31 MB more');
    committed = 73 * MB;
    assert.equal(collection.afterCycle(), 2, 'a rescan of a large tree: 33 MB more (collected until one gives nothing back)');
    assert.equal(calls, 2);
    committed = 70 * MB;
    assert.equal(collection.afterCycle(), 0, 'measured from what the collection left (45 MB), not from the start');
    committed = 80 * MB;
    assert.equal(collection.afterCycle(), 2);
    assert.equal(new GarbageCollection(undefined, () => 500 * MB).afterCycle(), 0, 'without --expose-gc: nothing');
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
