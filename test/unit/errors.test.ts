import assert from 'node:assert/strict';
import { prefixedError } from '../../src/core/errors';

describe('prefixedError', () => {
  it('names what failed and keeps the system code that callers decide by', () => {
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const prefixed = prefixedError('undo log', full);
    assert.equal(prefixed.message, 'undo log: ENOSPC: no space left on device, write');
    assert.equal(prefixed.code, 'ENOSPC');
  });

  it("takes a worker's serialised error (no Error instance) and a thrown non-object", () => {
    const fromWorker = prefixedError('undo log', { message: 'EIO: i/o error', code: 'EIO' });
    assert.equal(fromWorker.message, 'undo log: EIO: i/o error');
    assert.equal(fromWorker.code, 'EIO');
    const thrown = prefixedError('sync state', 'gone');
    assert.equal(thrown.message, 'sync state: gone');
    assert.equal(thrown.code, undefined);
  });
});
