// The container's long-lived process (agent init) compacts the undo log: a sync writes its step's
// saved content uncompressed, so that it does not wait for compression, and this compresses it
// afterwards (src/core/undo/compaction.ts). It runs under the sync lock, one step at a time, and
// gives way as soon as a sync waits for the lock; what it did not finish it does next time. A
// crash of this process in the middle leaves every step readable (the manifest switch is atomic).
import { existsSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import * as path from 'node:path';
import { CONTAINER_STATE_PATH } from '../core/containerLayout';
import { errorMessage } from '../core/errors';
import { UndoLog } from '../core/undo';
import { log } from './log';
import { syncWaiting, withSyncLock } from './syncLock';

/**
 * How long after a step appears compaction starts (a sync closes its step and then writes more
 * state), how often a log that does not exist yet is looked for, and how often steps are looked
 * for anyway (should an event be missed).
 */
const SETTLE_MS = 500;
const FIND_LOG_EVERY_MS = 5_000;
const LOOK_EVERY_MS = 60_000;

export function keepUndoLogCompacted(undoDirectory = path.join(CONTAINER_STATE_PATH, 'undo')): void {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let watcher: FSWatcher | undefined;

  const steps = path.join(undoDirectory, 'steps');
  const compactNow = async () => {
    // A container without the state folder (made by an older Clud), or no sync yet: nothing to do.
    if (running || !existsSync(steps)) return;
    running = true;
    try {
      const compacted = await withSyncLock(async () => {
        const { log: undoLog } = await UndoLog.open(undoDirectory, { keptDirectory: path.join(CONTAINER_STATE_PATH, 'kept'), recover: false });
        return undoLog.compact({ stop: () => syncWaiting() });
      });
      if (compacted.length > 0) log('info', `undo log: compressed ${compacted.length} step(s)`, { steps: compacted });
      // A sync that took the lock meanwhile closes a step of its own, which the watcher sees.
    } catch (error) {
      log('warn', `undo log: compaction failed: ${errorMessage(error)}`);
    } finally {
      running = false;
    }
  };
  const schedule = (delay: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => void compactNow(), delay);
  };
  const watchSteps = () => {
    if (watcher || !existsSync(steps)) return;
    try {
      // Closed steps are renamed into steps/: each is an event here.
      watcher = watch(steps, () => schedule(SETTLE_MS));
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined;
      });
      schedule(SETTLE_MS);
    } catch {
      // Gone again: the next look tries once more.
    }
  };
  watchSteps();
  setInterval(watchSteps, FIND_LOG_EVERY_MS).unref();
  setInterval(() => schedule(0), LOOK_EVERY_MS).unref();
}
