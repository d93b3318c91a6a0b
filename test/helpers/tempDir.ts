import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * A fresh temporary directory for every test of the enclosing `describe`, removed afterwards.
 * Returns a getter, because the directory only exists while a test runs.
 */
export function useTempDir(prefix = 'clud-unit-'): () => string {
  let dir: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), prefix));
  });
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (dir === undefined) throw new Error('useTempDir: the directory exists only while a test runs');
    return dir;
  };
}

/**
 * Runs `body` with a file system of `size` (tmpfs: `256k`, `1m`) mounted on the existing folder
 * `dir`, so that it fills as a full disk does; unmounted afterwards, lazily, so that a descriptor
 * a failing test left open cannot keep it. Mounting takes root, which the CI machines have: the
 * test is skipped elsewhere.
 */
export async function onSmallDisk<T>(context: Mocha.Context, dir: string, size: string, body: () => Promise<T>): Promise<T | undefined> {
  if (process.getuid?.() !== 0) context.skip();
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  try {
    return await body();
  } finally {
    execFileSync('umount', ['--lazy', dir]);
  }
}
