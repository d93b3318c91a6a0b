import assert from 'node:assert/strict';
import { leftGarbage } from '../../src/agent/memory';
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
});
