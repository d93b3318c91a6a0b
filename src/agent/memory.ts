// The resident agent's garbage, collected after a walk of large trees, or once the agent is at
// rest after work. V8 collects when allocating, and an agent at rest allocates next to nothing:
// what the last rescan left behind (every path it walked, the walk thread's numbers) stayed in
// its heap until the next one: 270 MB of RSS at rest at 100,000 files, 161-162 MB once collected
// (bench/memexp.ts). A full collection of that heap takes tens of milliseconds.
//
// Forced, a collection also costs the next burst: it drops the object shapes no live object has
// any more, and V8 throws away the optimized code compiled for them, most of what a cycle runs
// (V8's own collections keep such shapes a while). The next burst then runs unoptimized while V8
// compiles it again on its own threads, on the same two cores. In the container at 2,000 files,
// over four 1,000-file bursts each way after a first one (the staging threads kept running in
// both), the agent's CPU per burst, from its first write to 2 s after, was 630-820 ms to
// /workspace and 730-960 ms to the host with a collection after each rescan and burst, 390-580
// and 460-760 ms with none. So the agent collects at once only after a cycle that walked both
// trees with a heap of 64 MB or more (a rescan at 100,000 files, every few minutes there; at
// 2,000 files the whole heap commits about 40 MB and the rescan runs every 10 s), and otherwise
// 30 s after the last cycle that carried changes: while work goes on, bursts find their code
// optimized; at rest, the memory goes back.
// The supervisor starts the agent with --expose-gc for this (supervisor.ts).
import { getHeapStatistics } from 'node:v8';

/** A heap committing this much after a walk of both trees holds garbage worth a collection at once (and the recompiling that follows). */
const LARGE_HEAP_BYTES = 64 * 2 ** 20;
/** No cycle carried a change for this long: the agent is at rest, and what its work left is collected. */
const AT_REST_MS = 30_000;

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

/** What a finished cycle tells the collection. */
export interface FinishedCycle {
  /** It walked both whole trees (a rescan, a client's sync): its garbage is the size of the trees. */
  walkedBothTrees: boolean;
  /** It carried changes: work that left garbage the size of the change. */
  carried: boolean;
}

/** Decides after each cycle when to collect: at once after a walk of large trees, else once the agent is at rest after work. */
export class GarbageCollection {
  private atRest: NodeJS.Timeout | undefined;

  constructor(
    private readonly gc: Gc = (globalThis as { gc?: () => void }).gc,
    private readonly committedHeap = committedHeapBytes,
    private readonly atRestMs = AT_REST_MS,
  ) {}

  /** Collects now if the cycle walked both trees and the heap is large; else, if it carried changes, AT_REST_MS after the last such cycle. Returns the collections made now. */
  afterCycle(cycle: FinishedCycle): number {
    if (!this.gc) return 0;
    if (cycle.walkedBothTrees && this.committedHeap() >= LARGE_HEAP_BYTES) return this.collect();
    if (cycle.carried) {
      clearTimeout(this.atRest);
      this.atRest = setTimeout(() => this.collect(), this.atRestMs).unref();
    }
    return 0;
  }

  private collect(): number {
    clearTimeout(this.atRest);
    this.atRest = undefined;
    return collectGarbage(this.gc, this.committedHeap);
  }
}
