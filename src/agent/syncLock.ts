import { openSync, closeSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { SYNC_LOCK_PATH } from '../core/containerLayout';

/**
 * One rsync at a time per container, across agent processes (the CLI and the extension may each
 * hold a session). The lock file holds the owner's PID; a lock whose owner is gone is taken over.
 */
export async function withSyncLock<T>(work: () => Promise<T>, options: { file?: string; pollMs?: number } = {}): Promise<T> {
  const file = options.file ?? SYNC_LOCK_PATH;
  while (!tryAcquire(file)) {
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
  try {
    return await work();
  } finally {
    try {
      unlinkSync(file);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

function tryAcquire(file: string): boolean {
  try {
    const fd = openSync(file, 'wx', 0o644);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const owner = Number(safeRead(file));
  if (owner === process.pid || !Number.isInteger(owner) || owner <= 0 || !isAlive(owner)) {
    try {
      unlinkSync(file);
    } catch {
      // Someone else removed it first; the next try decides.
    }
  }
  return false;
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
