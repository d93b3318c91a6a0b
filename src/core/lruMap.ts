// A map that forgets its least recently used entries past a total weight: the one helper for
// Clud's caches (the undo log's parsed manifests, weighed in bytes; a restore's decompressed
// frames, one each).

export class LruMap<K, V> {
  /** In order of use, least recent first (a Map keeps insertion order). */
  private readonly entries = new Map<K, { value: V; weight: number }>();
  private weight = 0;

  /** Holds entries up to `maxWeight` in all, each weighing what `weigh` says (1 by default). */
  constructor(
    private readonly maxWeight: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  /** The value at `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Sets `key` as the most recently used, then forgets the least recently used past the weight; a value heavier than it all is not kept. */
  set(key: K, value: V): void {
    this.delete(key);
    const weight = this.weigh(value);
    if (weight > this.maxWeight) return;
    this.entries.set(key, { value, weight });
    this.weight += weight;
    for (const oldest of this.entries.keys()) {
      if (this.weight <= this.maxWeight) break;
      this.delete(oldest);
    }
  }

  delete(key: K): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.weight -= entry.weight;
  }

  keys(): K[] {
    return [...this.entries.keys()];
  }

  get size(): number {
    return this.entries.size;
  }
}
