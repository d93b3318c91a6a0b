import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { SYNC_LOCK_PATH } from '../core/containerLayout';

/** Lock files this process holds, so that its own PID in a lock file is never mistaken for a stale owner. */
const held = new Set<string>();
/** Per lock file, the tail of this process's queue: requests of one session run one after another. */
const queues = new Map<string, Promise<unknown>>();
/** Per lock file, how many of this process's requests wait for it. */
const waiting = new Map<string, number>();

/**
 * One sync at a time per container, across agent processes (the CLI and the extension may each
 * hold a session) and within one. The lock file holds the owner's PID; a lock whose owner is gone
 * is taken over.
 */
export function withSyncLock<T>(work: () => Promise<T>, options: { file?: string; pollMs?: number } = {}): Promise<T> {
  const file = options.file ?? SYNC_LOCK_PATH;
  const previous = queues.get(file) ?? Promise.resolve();
  waiting.set(file, (waiting.get(file) ?? 0) + 1);
  const run = previous.catch(() => {}).then(() => holdFileLock(file, work, options.pollMs ?? 200));
  queues.set(file, run);
  void run.finally(() => {
    if (queues.get(file) === run) queues.delete(file);
  }).catch(() => {});
  return run;
}

/**
 * Whether a request waits for the lock the caller holds: one queued in this process, or another
 * process polling (it leaves a `.waiting` file beside the lock). Work that can stop early, such
 * as compacting the undo log, asks this between its parts and lets the request go first.
 */
export function syncWaiting(file = SYNC_LOCK_PATH): boolean {
  return (waiting.get(file) ?? 0) > 0 || existsSync(waitingMarker(file));
}

const waitingMarker = (file: string) => `${file}.waiting`;

async function holdFileLock<T>(file: string, work: () => Promise<T>, pollMs: number): Promise<T> {
  try {
    while (!tryAcquire(file)) {
      writeFileSync(waitingMarker(file), String(process.pid));
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    waiting.set(file, (waiting.get(file) ?? 1) - 1);
  }
  removeIfPresent(waitingMarker(file));
  held.add(file);
  try {
    return await work();
  } finally {
    held.delete(file);
    removeIfPresent(file);
  }
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

function tryAcquire(file: string): boolean {
  // Write the PID to a private file, then link it into place: link() fails if the lock exists,
  // so the lock file appears with its owner already in it and is never seen empty.
  const staged = `${file}.${process.pid}`;
  writeFileSync(staged, String(process.pid));
  try {
    linkSync(staged, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(staged);
  }
  const owner = Number(safeRead(file));
  const ownLockNotHeld = owner === process.pid && !held.has(file); // a PID reused after a restart
  if (ownLockNotHeld || !Number.isInteger(owner) || owner <= 0 || (owner !== process.pid && !isAlive(owner))) {
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
