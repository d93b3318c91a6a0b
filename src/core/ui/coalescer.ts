/**
 * Turns bursts of events (file saves) into few runs of one action: at most one run in flight,
 * and whatever arrives meanwhile is gathered into the next single run, after a short quiet delay.
 */
export class Coalescer<T> {
  private pending = new Set<T>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private disposed = false;

  constructor(
    private readonly run: (items: T[]) => Promise<void>,
    private readonly delayMs = 300,
  ) {}

  add(item: T): void {
    if (this.disposed) return;
    this.pending.add(item);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.delayMs);
  }

  /** Resolves when everything added so far has been run. */
  async idle(): Promise<void> {
    while (this.running || this.timer || this.pending.size > 0) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      await (this.running ?? this.flush());
    }
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.pending.clear();
  }

  private async flush(): Promise<void> {
    if (this.running || this.pending.size === 0) return this.running;
    const items = [...this.pending];
    this.pending.clear();
    this.running = this.run(items)
      .catch(() => {
        // The run reports its own failures; the coalescer only schedules.
      })
      .finally(() => {
        this.running = undefined;
        if (this.pending.size > 0 && !this.timer && !this.disposed) void this.flush();
      });
    return this.running;
  }
}
