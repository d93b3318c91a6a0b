import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { SYNC_LOCK_PATH } from '../core/containerLayout';
import { RequestError } from './server';

export interface SyncLockOptions {
  file?: string;
  pollMs?: number;
  /** How long a request waits for a live sync that holds the lock before it gives up (`sync-busy`). */
  maxWaitMs?: number;
  /** Told what the request waits for when it starts waiting, and again every `reportEveryMs`. */
  onWait?: (message: string) => void;
  reportEveryMs?: number;
  /** Whether the process with this PID is a Clud agent; by default read from /proc/PID/cmdline. */
  isSyncProcess?: (pid: number) => boolean;
  /** Aborted when the requester went away: it stops waiting. */
  signal?: AbortSignal;
}

/** Long enough for a big sync of the other session to finish; a hung owner is not waited on forever. */
const DEFAULT_MAX_WAIT_MS = 15 * 60_000;

/** Lock files this process holds, so that its own PID in a lock file is never mistaken for a stale owner. */
const held = new Set<string>();
/** Per lock file, the tail of this process's queue: requests of one session run one after another. */
const queues = new Map<string, Promise<unknown>>();
/** Per lock file, how many of this process's requests wait for it. */
const waiting = new Map<string, number>();

/**
 * One sync at a time per container, across agent processes (the CLI and the extension may each
 * hold a session) and within one. The lock file holds the owner's PID and its start time. A lock
 * is taken over when its owner is gone, when the PID now belongs to another process (reused: the
 * start time differs), or when that process is not a Clud agent (anything else that wrote the
 * file). A live agent owner is waited for, said so through `onWait`, for at most `maxWaitMs`.
 */
export function withSyncLock<T>(work: () => Promise<T>, options: SyncLockOptions = {}): Promise<T> {
  const file = options.file ?? SYNC_LOCK_PATH;
  const previous = queues.get(file) ?? Promise.resolve();
  waiting.set(file, (waiting.get(file) ?? 0) + 1);
  const run = previous.catch(() => {}).then(() => holdFileLock(file, work, options));
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

async function holdFileLock<T>(file: string, work: () => Promise<T>, options: SyncLockOptions): Promise<T> {
  const pollMs = options.pollMs ?? 200;
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  const reportEveryMs = options.reportEveryMs ?? 10_000;
  const isSyncProcess = options.isSyncProcess ?? isCludAgent;
  const started = Date.now();
  let reportedAt: number | undefined;
  try {
    for (;;) {
      const owner = tryAcquire(file, isSyncProcess);
      if (owner === undefined) break;
      if (options.signal?.aborted) throw new RequestError('sync-busy', 'stopped waiting for the sync lock: the requester went away');
      const waited = Date.now() - started;
      const what = `another sync of this workspace (agent process ${owner})`;
      if (waited >= maxWaitMs) {
        throw new RequestError('sync-busy', `gave up after waiting ${Math.round(waited / 1000)} s for ${what} to finish`);
      }
      if (reportedAt === undefined || Date.now() - reportedAt >= reportEveryMs) {
        reportedAt = Date.now();
        options.onWait?.(`waiting for ${what} to finish${waited >= 1000 ? ` (${Math.round(waited / 1000)} s so far)` : ''}; giving up after ${Math.round(maxWaitMs / 1000)} s`);
      }
      writeFileSync(waitingMarker(file), String(process.pid));
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } catch (error) {
    removeIfPresent(waitingMarker(file));
    throw error;
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

/** Takes the lock (undefined), or names the live sync that holds it (its PID). */
function tryAcquire(file: string, isSyncProcess: (pid: number) => boolean): number | undefined {
  // Write the owner to a private file, then link it into place: link() fails if the lock exists,
  // so the lock file appears with its owner already in it and is never seen empty.
  const staged = `${file}.${process.pid}`;
  writeFileSync(staged, lockContent(process.pid));
  try {
    linkSync(staged, file);
    return undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(staged);
  }
  const [ownerText, startText] = safeRead(file).split(/\s+/);
  const owner = Number(ownerText);
  const ownLockNotHeld = owner === process.pid && !held.has(file); // a PID reused after a restart
  const live = Number.isInteger(owner) && owner > 0 && (owner === process.pid || isAlive(owner));
  // The PID was reused by a process started after the owner was (the lock records its start).
  const reused = live && owner !== process.pid && startText !== undefined && startText !== String(processStartTime(owner) ?? startText);
  if (ownLockNotHeld || !live || reused || (owner !== process.pid && !isSyncProcess(owner))) {
    try {
      unlinkSync(file);
    } catch {
      // Someone else removed it first; the next try decides.
    }
  }
  return owner;
}

/** "PID START": the start time (clock ticks since boot, /proc/PID/stat) tells a reused PID from its owner. */
function lockContent(pid: number): string {
  const start = processStartTime(pid);
  return start === undefined ? String(pid) : `${pid} ${start}`;
}

function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isInteger(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether PID runs a Clud agent (`node …/agent.js` or a session's copied `agent-<hash>.js`). When
 * its command line cannot be read (another system without /proc), it is assumed to be one:
 * waiting, bounded, is the safe side.
 */
export function isCludAgent(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  return cmdline.split('\0').some((arg) => /(^|\/)agent(-[0-9a-f]+)?\.js$/.test(arg));
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
