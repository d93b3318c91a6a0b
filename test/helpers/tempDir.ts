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
