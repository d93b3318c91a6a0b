import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { assertPullSafe } from '../../src/agent/pullGuard';
import { RequestError } from '../../src/agent/server';
import { InitState } from '../../src/core/protocol';
import type { InitPhase } from '../../src/core/protocol';
import { useTempDir } from '../helpers/tempDir';

const state = (phase: InitPhase, error?: string): InitState => InitState.parse({ phase, updatedAt: '2025-06-01T12:00:00.000Z', ...(error && { error }) });

function assertHalted(run: () => void, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof RequestError, `expected a RequestError, got ${String(error)}`);
    assert.equal(error.code, 'sync-halted');
    assert.match(error.message, message);
    return true;
  });
}

describe('unit: pullGuard', () => {
  const tempDir = useTempDir('clud-pullguard-');
  let workspace: string;
  let host: string;
  beforeEach(() => {
    workspace = path.join(tempDir(), 'workspace');
    host = path.join(tempDir(), 'host');
    mkdirSync(workspace);
    mkdirSync(host);
  });
  const fill = (dir: string) => writeFileSync(path.join(dir, 'README.md'), '# project\n');

  for (const phase of ['starting', 'syncing', 'failed'] as const) {
    it(`halts when the initial copy is ${phase}, even with both folders full`, () => {
      fill(workspace);
      fill(host);
      assertHalted(() => assertPullSafe(state(phase), workspace, host), /initial copy/);
    });
  }

  it('names the reason the initial copy failed', () => {
    fill(workspace);
    assertHalted(() => assertPullSafe(state('failed', 'rsync exited with code 23'), workspace, host), /rsync exited with code 23/);
  });

  it('halts when /workspace is empty while the host folder is not', () => {
    fill(host);
    assertHalted(() => assertPullSafe(state('ready'), workspace, host), /empty/);
  });

  it('halts for an empty /workspace when there is no init state', () => {
    fill(host);
    assertHalted(() => assertPullSafe(undefined, workspace, host), /empty/);
  });

  it('counts a hidden file or an empty folder as content of the host folder', () => {
    mkdirSync(path.join(host, '.git'));
    assertHalted(() => assertPullSafe(state('ready'), workspace, host), /empty/);
  });

  it('allows a pull when both folders are empty', () => {
    assert.doesNotThrow(() => assertPullSafe(state('ready'), workspace, host));
  });

  it('allows a pull when ready and /workspace is not empty', () => {
    fill(workspace);
    fill(host);
    assert.doesNotThrow(() => assertPullSafe(state('ready'), workspace, host));
  });

  it('allows a pull into an empty host folder', () => {
    fill(workspace);
    assert.doesNotThrow(() => assertPullSafe(state('ready'), workspace, host));
  });
});
