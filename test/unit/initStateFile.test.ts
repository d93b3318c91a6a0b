import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { readInitState, writeInitState } from '../../src/agent/initStateFile';
import { useTempDir } from '../helpers/tempDir';

describe('unit: initStateFile', () => {
  const tempDir = useTempDir('clud-initstate-');
  const stateFile = () => path.join(tempDir(), 'init.json');

  it('reads back what it wrote, with updatedAt set', () => {
    const before = Date.now();
    const written = writeInitState({ phase: 'ready', warnings: ['/host belongs to root'], attempts: 2, workspaceUid: 1000, workspaceGid: 1000 }, stateFile());
    assert.equal(written.phase, 'ready');
    assert.ok(Date.parse(written.updatedAt) >= before - 1000, `updatedAt ${written.updatedAt} is not now`);
    assert.deepEqual(readInitState(stateFile()), written);
    assert.deepEqual(readInitState(stateFile())?.warnings, ['/host belongs to root']);
  });

  it('round-trips a failed state with its error, progress and initial sync metrics', () => {
    const written = writeInitState(
      {
        phase: 'failed',
        error: 'initial copy incomplete',
        warnings: [],
        attempts: 1,
        progress: { phase: 'push', message: '10 files', files: 10 },
        initialSync: {
          direction: 'push',
          startedAt: '2025-06-01T12:00:00.000Z',
          durationMs: 12,
          filesTransferred: 10,
          filesDeleted: 0,
          bytesTransferred: 100,
          errors: ['rsync: read error'],
          notCopied: [],
          retries: 3,
          changedPaths: ['a'],
          changedPathsTruncated: false,
          keptOut: [],
        },
      },
      stateFile(),
    );
    assert.deepEqual(readInitState(stateFile()), written);
  });

  it('replaces an earlier state', () => {
    writeInitState({ phase: 'syncing', warnings: [], attempts: 1 }, stateFile());
    writeInitState({ phase: 'ready', warnings: [], attempts: 1 }, stateFile());
    assert.equal(readInitState(stateFile())?.phase, 'ready');
  });

  it('creates the parent folder', () => {
    const nested = path.join(tempDir(), 'var', 'lib', 'clud', 'init.json');
    writeInitState({ phase: 'starting', warnings: [], attempts: 0 }, nested);
    assert.equal(readInitState(nested)?.phase, 'starting');
  });

  it('leaves no temporary file behind', () => {
    writeInitState({ phase: 'syncing', warnings: [], attempts: 1 }, stateFile());
    writeInitState({ phase: 'ready', warnings: [], attempts: 1 }, stateFile());
    assert.deepEqual(readdirSync(tempDir()), ['init.json']);
  });

  const unreadable: { name: string; content?: string }[] = [
    { name: 'a missing file' },
    { name: 'a truncated file', content: '{"phase": "rea' },
    { name: 'an empty file', content: '' },
    { name: 'JSON of the wrong shape', content: '{"phase": "done", "updatedAt": "now"}' },
    { name: 'JSON that is not an object', content: '[1, 2, 3]' },
  ];
  for (const { name, content } of unreadable) {
    it(`reads ${name} as undefined`, () => {
      if (content !== undefined) writeFileSync(stateFile(), content);
      assert.equal(readInitState(stateFile()), undefined);
    });
  }

  it('rejects a state it cannot write without touching the file', () => {
    writeInitState({ phase: 'ready', warnings: [], attempts: 1 }, stateFile());
    assert.throws(() => writeInitState({ phase: 'bogus' as 'ready', warnings: [], attempts: 1 }, stateFile()));
    assert.equal(readInitState(stateFile())?.phase, 'ready');
    assert.deepEqual(readdirSync(tempDir()), ['init.json']);
  });
});
