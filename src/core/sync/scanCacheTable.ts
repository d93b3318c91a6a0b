// One side's scan cache as the state store holds it for the life of the resident agent: a Map of
// path to record, kept in typed columns rather than one object per path. At 100,000 files the two
// caches as objects took 31 MB of heap (each record an object of seven fields, two of them boxed
// doubles, plus its Map entry); as columns 15 MB (bench/memexp.ts reads the agent's whole heap).
// The numbers are stored as they came (float64 holds a Stats number exactly), so a record read
// back is equal, field by field, to the one stored: the cache decides what counts as unchanged,
// and nothing here may round. A record read back is a new object each time; callers compare
// records by value (sameScanCacheEntry), never by identity.
import type { CacheStat, ScanCacheEntry } from './scan';

/** Per row: size, mtimeMs, ctimeMs, ino. */
const NUMBERS_PER_ROW = 4;
const FIRST_CAPACITY = 256;

/** What `secret` holds in a row: absent (not judged yet), false (no secret), or a reason (in `secretReasons`). */
const enum SecretKind {
  Unjudged = 0,
  None = 1,
  Reason = 2,
}

export class ScanCacheTable implements Map<string, ScanCacheEntry> {
  readonly [Symbol.toStringTag] = 'ScanCacheTable';
  /** Path to row, in the order the paths were first set (a Map's iteration order). */
  private readonly rows = new Map<string, number>();
  private numbers = new Float64Array(FIRST_CAPACITY * NUMBERS_PER_ROW);
  private modes = new Uint32Array(FIRST_CAPACITY);
  private secretKinds = new Uint8Array(FIRST_CAPACITY);
  /** Strings, not bytes: a hash is usually the very string the agreed state holds for the path. */
  private readonly hashes: string[] = [];
  private readonly secretReasons = new Map<number, string>();
  private readonly freeRows: number[] = [];
  private capacity = FIRST_CAPACITY;

  get size(): number {
    return this.rows.size;
  }

  has(key: string): boolean {
    return this.rows.has(key);
  }

  get(key: string): ScanCacheEntry | undefined {
    const row = this.rows.get(key);
    return row === undefined ? undefined : this.record(row);
  }

  /**
   * cacheHolds(get(key), stat), read from the columns without making a record: the periodic
   * rescan asks it of every file of both trees, and a record made per file was most of its garbage.
   */
  holds(key: string, stat: CacheStat): boolean {
    const row = this.rows.get(key);
    if (row === undefined) return false;
    const at = row * NUMBERS_PER_ROW;
    return this.numbers[at] === stat.size && this.numbers[at + 1] === stat.mtimeMs && this.numbers[at + 2] === stat.ctimeMs && this.numbers[at + 3] === stat.ino && this.modes[row] === stat.mode && this.secretKinds[row] !== SecretKind.Unjudged;
  }

  /** The hash of the record at `key`, without making a record. */
  hashOf(key: string): string | undefined {
    const row = this.rows.get(key);
    return row === undefined ? undefined : this.hashes[row];
  }

  /** The secret verdict of the record at `key` (see ScanCacheEntry.secret), without making a record. */
  secretOf(key: string): string | false | undefined {
    const row = this.rows.get(key);
    if (row === undefined) return undefined;
    const kind = this.secretKinds[row] as SecretKind;
    return kind === SecretKind.None ? false : kind === SecretKind.Reason ? this.secretReasons.get(row) : undefined;
  }

  set(key: string, record: ScanCacheEntry): this {
    let row = this.rows.get(key);
    if (row === undefined) {
      row = this.freeRows.pop() ?? this.hashes.length;
      if (row >= this.capacity) this.grow();
      this.rows.set(key, row);
    }
    const at = row * NUMBERS_PER_ROW;
    this.numbers[at] = record.size;
    this.numbers[at + 1] = record.mtimeMs;
    this.numbers[at + 2] = record.ctimeMs;
    this.numbers[at + 3] = record.ino;
    this.modes[row] = record.mode;
    this.hashes[row] = record.hash;
    this.secretReasons.delete(row);
    if (record.secret === undefined) this.secretKinds[row] = SecretKind.Unjudged;
    else if (record.secret === false) this.secretKinds[row] = SecretKind.None;
    else {
      this.secretKinds[row] = SecretKind.Reason;
      this.secretReasons.set(row, record.secret);
    }
    return this;
  }

  delete(key: string): boolean {
    const row = this.rows.get(key);
    if (row === undefined) return false;
    this.rows.delete(key);
    this.hashes[row] = ''; // lets the string go
    this.secretReasons.delete(row);
    this.freeRows.push(row);
    return true;
  }

  clear(): void {
    this.rows.clear();
    this.hashes.length = 0;
    this.secretReasons.clear();
    this.freeRows.length = 0;
  }

  *keys(): MapIterator<string> {
    yield* this.rows.keys();
  }

  *values(): MapIterator<ScanCacheEntry> {
    for (const row of this.rows.values()) yield this.record(row);
  }

  *entries(): MapIterator<[string, ScanCacheEntry]> {
    for (const [key, row] of this.rows) yield [key, this.record(row)];
  }

  [Symbol.iterator](): MapIterator<[string, ScanCacheEntry]> {
    return this.entries();
  }

  forEach(callback: (value: ScanCacheEntry, key: string, map: Map<string, ScanCacheEntry>) => void, thisArg?: unknown): void {
    for (const [key, row] of this.rows) callback.call(thisArg, this.record(row), key, this);
  }

  /** Fields in the order the scan writes them, so that a record reads (and serializes) as it was set. */
  private record(row: number): ScanCacheEntry {
    const at = row * NUMBERS_PER_ROW;
    const record: ScanCacheEntry = { size: this.numbers[at]!, mtimeMs: this.numbers[at + 1]!, ctimeMs: this.numbers[at + 2]!, ino: this.numbers[at + 3]!, mode: this.modes[row]!, hash: this.hashes[row]! };
    const kind = this.secretKinds[row] as SecretKind;
    if (kind === SecretKind.None) record.secret = false;
    else if (kind === SecretKind.Reason) record.secret = this.secretReasons.get(row)!;
    return record;
  }

  private grow(): void {
    this.capacity *= 2;
    const numbers = new Float64Array(this.capacity * NUMBERS_PER_ROW);
    numbers.set(this.numbers);
    this.numbers = numbers;
    const modes = new Uint32Array(this.capacity);
    modes.set(this.modes);
    this.modes = modes;
    const secretKinds = new Uint8Array(this.capacity);
    secretKinds.set(this.secretKinds);
    this.secretKinds = secretKinds;
  }
}
