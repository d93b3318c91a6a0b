// Bounded concurrency: the one helper for running work on many items a few at a time (the
// apply's batches, the watcher's walk).

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
