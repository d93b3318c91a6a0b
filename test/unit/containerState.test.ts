import assert from 'node:assert/strict';
import { containerState } from '../../src/core/docker/engine';

describe('unit: containerState', () => {
  it('tells paused and restarting containers from running ones (Docker calls all three Running)', () => {
    assert.equal(containerState({ running: false, status: 'paused' }), 'paused');
    assert.equal(containerState({ running: false, status: 'restarting' }), 'restarting');
    assert.equal(containerState({ running: true, status: 'running' }), 'running');
    assert.equal(containerState({ running: false, status: 'exited' }), 'stopped');
    assert.equal(containerState({ running: false, status: 'created' }), 'stopped');
    assert.equal(containerState(undefined), 'missing');
  });
});
