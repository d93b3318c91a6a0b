// The resident agent's garbage, collected once its heap has grown well past what the last
// collection left. V8 collects when allocating, and an agent at rest allocates next to nothing:
// what the last rescan left behind (every path it walked, the walk thread's numbers) stayed in its
// heap until the next one: 270 MB of RSS at rest at 100,000 files, 161-162 MB once collected
// (bench/memexp.ts). A full collection of that heap takes tens of milliseconds.
//
// Forced, a collection also costs the next burst: it drops the object shapes no live object has
// any more, and V8 throws away the optimized code compiled for them, most of what a cycle runs
// (V8's own collections keep such shapes a while). The next burst then runs unoptimized while V8
// compiles it again on its own threads, on the same two cores. In the container at 2,000 files,
// over four 1,000-file bursts each way after a first one (the staging threads kept running in
// both), the agent's CPU per burst, from its first write to 2 s after, was 630-820 ms to
// /workspace and 730-960 ms to the host with a collection after each rescan and burst, 390-580
// and 460-760 ms with none. So the agent
// collects only once its committed heap grew by 32 MB since the last collection: a rescan of a
// large tree (76 MB more at 100,000 files), not a burst at 2,000 files, whose whole heap
// commits about 40 MB.
// The supervisor starts the agent with --expose-gc for this (supervisor.ts).
import { getHeapStatistics } from 'node:v8';

/** Heap committed since the last collection that is worth a collection (and the recompiling that follows). */
const GROWTH_WORTH_COLLECTING_BYTES = 32 * 2 ** 20;

/** Full collections in a row at most. */
const MAX_COLLECTIONS = 4;
/** A collection that gives back less of the committed heap than this ends the series. */
const SHRINK_WORTH_ANOTHER_BYTES = 2 * 2 ** 20;

type Gc = (() => void) | undefined;

const committedHeapBytes = (): number => getHeapStatistics().total_heap_size;

/**
 * Collects the garbage now, if the process was started with --expose-gc (otherwise does nothing),
 * and again while that gives memory back: V8 returns the pages a collection emptied only at a
 * later one, so after a rescan at 100,000 files one collection left 152 MB of heap committed for
 * 68 MB used (RSS 234 MB), and three took it to 75 MB (RSS 158 MB), about 50 ms each.
 */
export function collectGarbage(gc: Gc = (globalThis as { gc?: () => void }).gc, committedHeap = committedHeapBytes): number {
  if (!gc) return 0;
  let committed = committedHeap();
  for (let collections = 1; ; collections += 1) {
    gc();
    const now = committedHeap();
    if (collections === MAX_COLLECTIONS || committed - now < SHRINK_WORTH_ANOTHER_BYTES) return collections;
    committed = now;
  }
}

/** Decides after each cycle whether the heap grew enough since the last collection to collect now. */
export class GarbageCollection {
  private committedAfterLast: number;

  constructor(
    private readonly gc: Gc = (globalThis as { gc?: () => void }).gc,
    private readonly committedHeap = committedHeapBytes,
  ) {
    this.committedAfterLast = committedHeap();
  }

  /** Collects if the heap grew by enough since the last collection (or the start); returns the collections made. */
  afterCycle(): number {
    if (!this.gc || this.committedHeap() - this.committedAfterLast < GROWTH_WORTH_COLLECTING_BYTES) return 0;
    const collections = collectGarbage(this.gc, this.committedHeap);
    this.committedAfterLast = this.committedHeap();
    return collections;
  }
}
