// Bounded concurrency: the one module for running work a few at a time. forEachLimited runs work
// on a list of items (the apply's batches, the watcher's walk); a Limiter bounds tasks that arrive
// one by one (the scan's reads and hashes).

/**
 * Runs `work` on every item, at most `limit` at once, starting them in the items' order. The
 * first failure is thrown once every started item has settled; with `stopOnFailure`, no item
 * starts after it, otherwise the rest still run.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>, options: { stopOnFailure?: boolean } = {}): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !(options.stopOnFailure && failure)) {
      const item = items[next++]!;
      await work(item).catch((error: unknown) => {
        failure ??= { error };
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** Runs at most `max` tasks at once; a finishing task hands its slot straight to the next one. */
export class Limiter {
  private active = 0;
  private waiting: Array<(() => void) | undefined> = [];
  /** Index of the oldest waiter: shift() would copy the whole queue each time, and a scan queues an lstat per entry. */
  private head = 0;

  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.takeNext();
      if (next) next();
      else this.active -= 1;
    }
  }

  private takeNext(): (() => void) | undefined {
    if (this.head >= this.waiting.length) return undefined;
    const next = this.waiting[this.head];
    this.waiting[this.head] = undefined;
    this.head += 1;
    if (this.head === this.waiting.length || (this.head > 1024 && this.head * 2 > this.waiting.length)) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    return next;
  }
}
