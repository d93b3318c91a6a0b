// The resident agent's garbage, collected when a cycle that walked both whole trees, or carried
// many changes, is over. V8 collects when allocating, and an agent at rest allocates next to
// nothing: what the last rescan left behind (every path it walked, the walk thread's numbers)
// stayed in its heap until the next one: 270 MB of RSS at rest at 100,000 files, 161-162 MB once
// collected (bench/memexp.ts). A full collection of that heap takes tens of milliseconds, once
// per rescan (which runs at most every hundred times its own CPU time) or per cycle of hundreds of
// changes; a cycle of a few paths, the per-save path, collects nothing.
// The supervisor starts the agent with --expose-gc for this (supervisor.ts).
import type { CycleKind, SyncReport } from '../core/protocol';

/** A cycle that carried at least this many changes left garbage worth a collection. */
const MANY_CHANGES = 500;

/** Whether a cycle left enough garbage behind to collect it now: it walked both whole trees, or carried many changes. */
export function leftGarbage(kind: CycleKind, report: SyncReport): boolean {
  return kind === 'full' || kind === 'request' || report.appliedCount >= MANY_CHANGES;
}

/** Full collections in a row at most. */
const MAX_COLLECTIONS = 4;
/** A collection that gives back less of the committed heap than this ends the series. */
const SHRINK_WORTH_ANOTHER_BYTES = 2 * 2 ** 20;

/**
 * Collects the garbage now, if the process was started with --expose-gc (otherwise does nothing),
 * and again while that gives memory back: V8 returns the pages a collection emptied only at a
 * later one, so after a rescan at 100,000 files one collection left 152 MB of heap committed for
 * 68 MB used (RSS 234 MB), and three took it to 75 MB (RSS 158 MB), about 50 ms each.
 */
export function collectGarbage(gc = (globalThis as { gc?: () => void }).gc, committedHeap = () => process.memoryUsage().heapTotal): number {
  if (!gc) return 0;
  let committed = committedHeap();
  for (let collections = 1; ; collections += 1) {
    gc();
    const now = committedHeap();
    if (collections === MAX_COLLECTIONS || committed - now < SHRINK_WORTH_ANOTHER_BYTES) return collections;
    committed = now;
  }
}
