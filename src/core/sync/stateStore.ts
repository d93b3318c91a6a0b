// The per-path sync state of one workspace, held in memory by its one owner and persisted per
// changed entry: the agreed state (the ancestor) and the two scan caches.
//
// On disk, in the state folder: `state-base.jsonl` (every record, as of one sequence number) and
// `state-journal.jsonl` (what changed since, one line per commit). A commit is ONE line written
// with one write() and then fdatasync'd, so a commit is all or nothing: a process killed at any
// moment (SIGKILL included) leaves every line it finished writing, and a torn last line is simply
// not a commit. Compaction writes a new base under a temporary name, fsyncs and renames it, then
// starts a new journal; lines of an old journal the base already holds are skipped by sequence.
// Nothing here is ever rewritten in place, so no crash leaves a half-updated record.
//
// JSON Lines rather than an embedded database: it needs nothing installed in the image (the
// agent is one esbuild bundle on the image's Node 20, which has no node:sqlite, and
// better-sqlite3 needs a native build), and the access pattern is exactly "load everything once,
// append what changed".
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { EntrySchema } from '../protocol';
import type { Entry } from '../files/entry';
import type { ScanCacheEntry } from './scan';
import { ScanCacheTable } from './scanCacheTable';
import { SyncStateFiles } from './stateFiles';
import { writeWhole } from '../files/fsEntry';
import { prefixedError } from '../errors';

export type StateTable = 'ancestor' | 'host' | 'container';
const TABLES: readonly StateTable[] = ['ancestor', 'host', 'container'];
const TABLE_CODE: Record<StateTable, number> = { ancestor: 0, host: 1, container: 2 };

/** What one commit changes: per table, the new record of a path, or undefined to remove it. */
export type StateChanges = Partial<{
  ancestor: ReadonlyMap<string, Entry | undefined>;
  host: ReadonlyMap<string, ScanCacheEntry | undefined>;
  container: ReadonlyMap<string, ScanCacheEntry | undefined>;
}>;

export const STATE_STORE_VERSION = 1;
export const BASE_FILE = 'state-base.jsonl';
export const JOURNAL_FILE = 'state-journal.jsonl';
/** The per-table JSON files the store took over (SyncStateFiles). */
const STATE_FILE_NAMES = ['ancestor.json', 'scan-cache-host.json', 'scan-cache-container.json'];
/** The journal is compacted once it is bigger than the base and than this. */
const MIN_COMPACTION_BYTES = 4 * 2 ** 20;
/** Records per write while a base is written: big enough to be fast, small enough to stay flat in memory. */
const BASE_CHUNK_RECORDS = 5000;
const READ_CHUNK_BYTES = 1 << 20;

type Record_ = [table: number, path: string, value: Entry | ScanCacheEntry | null];

export class SyncStateStore {
  readonly ancestor = new Map<string, Entry>();
  readonly host = new ScanCacheTable();
  readonly container = new ScanCacheTable();
  private sequence = 0;
  private journal: FileHandle | undefined;
  private journalBytes = 0;
  private baseBytes = 0;
  private queue: Promise<unknown> = Promise.resolve();

  /** Named in every line's error while the state loads: made once, not per line. */
  readonly basePath: string;
  readonly journalPath: string;

  private constructor(readonly directory: string) {
    this.basePath = path.join(directory, BASE_FILE);
    this.journalPath = path.join(directory, JOURNAL_FILE);
  }

  /**
   * Loads the base and replays the journal; on first use, takes over today's ancestor.json and
   * scan-cache-*.json (and removes them once the base holding them is durable).
   */
  static async open(directory: string): Promise<SyncStateStore> {
    await mkdir(directory, { recursive: true });
    const store = new SyncStateStore(directory);
    const loaded = await store.load();
    if (!loaded) await store.migrateFromStateFiles();
    store.journal = await open(store.journalPath, 'a');
    return store;
  }

  /**
   * Makes `directory` hold exactly these tables, whatever it held before: a new base and an empty
   * journal, written once (the initial copy's first agreed state, which a previous container's
   * state must not outlive). The old journal goes first, so that its commits can never be read
   * against the new base; a crash before the new base is in place leaves the old base alone,
   * which the copy (not yet recorded as complete) replaces when it runs again.
   */
  static async replace(directory: string, tables: { ancestor: ReadonlyMap<string, Entry>; host: ReadonlyMap<string, ScanCacheEntry>; container: ReadonlyMap<string, ScanCacheEntry> }): Promise<void> {
    await mkdir(directory, { recursive: true });
    const store = new SyncStateStore(directory);
    await rm(store.journalPath, { force: true });
    await syncDirectory(directory);
    for (const name of TABLES) for (const [key, record] of tables[name]) store.anyTable(name).set(key, record);
    await store.compactNow();
    await store.close();
    // The store owns the state from here: an older state file left beside it could be read as current.
    for (const name of STATE_FILE_NAMES) await rm(path.join(directory, name), { force: true });
  }

  /** The sequence number of the last commit (0: none since the base was first written). */
  get lastSequence(): number {
    return this.sequence;
  }

  table(name: 'ancestor'): Map<string, Entry>;
  table(name: 'host' | 'container'): Map<string, ScanCacheEntry>;
  table(name: StateTable): Map<string, Entry | ScanCacheEntry> {
    return this[name];
  }

  private anyTable(name: StateTable): Map<string, Entry | ScanCacheEntry> {
    return this[name];
  }

  /**
   * Applies the changes in memory and appends them as one durable journal line; resolves once
   * the line is on disk (fdatasync). Commits are serialized. The records are kept as given (not
   * copied): callers must not change them afterwards. Records equal to what is held are
   * not written, so committing a whole table that barely changed costs what changed.
   */
  commit(changes: StateChanges): Promise<number> {
    const run = this.queue.then(() => this.commitNow(changes));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The changes that would make `table` hold exactly `records` (for a full cycle's results). */
  diff<T extends StateTable>(table: T, records: ReadonlyMap<string, T extends 'ancestor' ? Entry : ScanCacheEntry>): Map<string, (T extends 'ancestor' ? Entry : ScanCacheEntry) | undefined> {
    const current = this.anyTable(table);
    const changes = new Map<string, (T extends 'ancestor' ? Entry : ScanCacheEntry) | undefined>();
    for (const [key, record] of records) if (!sameRecord(current.get(key), record)) changes.set(key, record);
    for (const key of current.keys()) if (!records.has(key)) changes.set(key, undefined);
    return changes;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.journal?.close();
    this.journal = undefined;
  }

  /** Writes every record as a new base and starts an empty journal. */
  compact(): Promise<void> {
    const run = this.queue.then(() => this.compactNow());
    this.queue = run.catch(() => undefined);
    return run;
  }

  // --- commits ----------------------------------------------------------------------------------

  private async commitNow(changes: StateChanges): Promise<number> {
    if (!this.journal) throw new Error('the sync state store is closed');
    const records: Record_[] = [];
    for (const name of TABLES) {
      const tableChanges = changes[name] as ReadonlyMap<string, Entry | ScanCacheEntry | undefined> | undefined;
      if (!tableChanges) continue;
      const table = this.anyTable(name);
      for (const [key, record] of tableChanges) {
        if (record === undefined ? !table.has(key) : sameRecord(table.get(key), record)) continue;
        records.push([TABLE_CODE[name], key, record ?? null]);
      }
    }
    if (records.length === 0) return this.sequence;
    const sequence = this.sequence + 1;
    const line = `${JSON.stringify([sequence, records])}\n`;
    // Disk first, memory second: a failed write leaves memory as the disk has it.
    const bytes = Buffer.from(line);
    try {
      await writeWhole(this.journal, bytes);
      await this.journal.datasync();
    } catch (error) {
      await this.cutJournalBack();
      // Named as the sync state's: a full disk is then known to be the state folder's.
      throw prefixedError('sync state', error);
    }
    this.journalBytes += bytes.length;
    this.sequence = sequence;
    for (const record of records) this.applyRecord(record);
    // The commit is durable already: a compaction that fails (a full disk) is tried after a later one.
    if (this.journalBytes > Math.max(MIN_COMPACTION_BYTES, this.baseBytes)) await this.compactNow().catch(() => {});
    return sequence;
  }

  /**
   * After a failed commit, part of its line may be on disk (a disk that filled stops a write
   * short): cut it off, so that the next line starts on a line of its own. A torn line before a
   * whole one would make the journal unreadable; only a torn last one is dropped on load. If even
   * that fails, the store takes no more commits until it is opened again.
   */
  private async cutJournalBack(): Promise<void> {
    try {
      await this.journal!.truncate(this.journalBytes);
      await this.journal!.datasync();
    } catch {
      await this.journal?.close().catch(() => {});
      this.journal = undefined;
    }
  }

  /**
   * `loadedPaths`, while the store loads: the path strings read so far, so that a path in all
   * three tables is one string rather than three (at 100,000 files, 13 MB less). A Map keeps the
   * key it was first given when a later set replaces the value, so the sharing lasts.
   */
  private applyRecord([code, recordPath, value]: Record_, loadedPaths?: Map<string, string>): void {
    const table = this.anyTable(TABLES[code] as StateTable);
    let key = recordPath;
    if (loadedPaths) {
      const known = loadedPaths.get(recordPath);
      if (known === undefined) loadedPaths.set(recordPath, recordPath);
      else key = known;
    }
    if (value === null) {
      table.delete(key);
      return;
    }
    // A file's hash is usually the same in all three tables: one string for all (80 bytes each a
    // file less, a fifth of the state's memory). Equal strings, so nothing reads differently.
    const hash = 'hash' in value ? value.hash : undefined;
    if (hash !== undefined) {
      for (const other of TABLES) {
        const held = other === TABLES[code] ? undefined : this.anyTable(other).get(key);
        if (held !== undefined && 'hash' in held && held.hash === hash) {
          (value as { hash: string }).hash = held.hash;
          break;
        }
      }
    }
    table.set(key, value);
  }

  // --- base and journal -------------------------------------------------------------------------

  private async compactNow(): Promise<void> {
    const temporary = `${this.basePath}.tmp`;
    const handle = await open(temporary, 'w', 0o644);
    let bytes = 0;
    let written = false;
    // Whole: a write the disk stopped short must not leave a base that reads as complete.
    const append = async (text: string) => {
      const data = Buffer.from(text);
      await writeWhole(handle, data);
      bytes += data.length;
    };
    try {
      await append(`${JSON.stringify({ version: STATE_STORE_VERSION, sequence: this.sequence })}\n`);
      let chunk: string[] = [];
      for (const name of TABLES) {
        for (const [key, value] of this.anyTable(name)) {
          chunk.push(JSON.stringify([TABLE_CODE[name], key, value]));
          if (chunk.length >= BASE_CHUNK_RECORDS) {
            await append(`${chunk.join('\n')}\n`);
            chunk = [];
          }
        }
      }
      if (chunk.length > 0) await append(`${chunk.join('\n')}\n`);
      await handle.sync();
      written = true;
    } finally {
      await handle.close();
      // A base that could not be written whole (a full disk) gives its room back.
      if (!written) await rm(temporary, { force: true }).catch(() => {});
    }
    await rename(temporary, this.basePath);
    await syncDirectory(this.directory);
    // The base now holds every committed line: a fresh journal. A crash before this point leaves
    // the old journal, whose lines the base already holds (skipped by sequence on load).
    await this.journal?.close();
    const emptyJournal = `${this.journalPath}.tmp`;
    await (await open(emptyJournal, 'w', 0o644)).close();
    await rename(emptyJournal, this.journalPath);
    await syncDirectory(this.directory);
    this.journal = await open(this.journalPath, 'a');
    this.journalBytes = 0;
    this.baseBytes = bytes;
  }

  /** false when there is no base yet (a new or not yet migrated state folder). */
  private async load(): Promise<boolean> {
    // Line by line, in chunks: the whole file as one string (and its split) would double the
    // memory the state itself needs, and RSS rarely gives that back.
    let header: { version?: unknown; sequence?: unknown } | undefined;
    const loadedPaths = new Map<string, string>();
    const base = await readLines(this.basePath, (line) => {
      if (header === undefined) {
        header = parseLine(line, this.basePath) as { version?: unknown; sequence?: unknown };
        if (header.version !== STATE_STORE_VERSION || typeof header.sequence !== 'number') throw new Error(`state file ${this.basePath} has an unknown header`);
        this.sequence = header.sequence;
        return;
      }
      if (line !== '') this.applyRecord(checkRecord(parseLine(line, this.basePath), this.basePath), loadedPaths);
    });
    if (base === undefined) return false;
    // The base is renamed into place only once complete: it ends with a whole line.
    if (header === undefined || base.tornAt !== undefined) throw new Error(`state file ${this.basePath} is incomplete`);
    this.baseBytes = base.bytes;
    let lineNumber = 0;
    const journal = await readLines(this.journalPath, (line) => {
      lineNumber += 1;
      const [sequence, records] = parseLine(line, this.journalPath) as [number, unknown[]];
      if (typeof sequence !== 'number' || !Array.isArray(records)) throw new Error(`state file ${this.journalPath} has a malformed line ${lineNumber}`);
      if (sequence <= this.sequence) return; // already in the base
      if (sequence !== this.sequence + 1) throw new Error(`state file ${this.journalPath} skips from commit ${this.sequence} to ${sequence}`);
      for (const record of records) this.applyRecord(checkRecord(record, this.journalPath), loadedPaths);
      this.sequence = sequence;
    });
    this.journalBytes = journal?.bytes ?? 0;
    // Only the last line can be torn (the process died while writing it): that commit never
    // returned, so it is not part of the state. A line that ends in "\n" was written whole.
    if (journal?.tornAt !== undefined) await this.dropTornTail(journal.tornAt);
    return true;
  }

  /** Cuts a torn last line off, so that the next commit starts on a line of its own. */
  private async dropTornTail(length: number): Promise<void> {
    const handle = await open(this.journalPath, 'r+');
    try {
      await handle.truncate(length);
      await handle.sync();
    } finally {
      await handle.close();
    }
    this.journalBytes = length;
  }

  private async migrateFromStateFiles(): Promise<void> {
    const files = new SyncStateFiles(this.directory);
    const ancestor = await files.readAncestor();
    const caches = await files.readCaches();
    for (const [key, entry] of ancestor) this.ancestor.set(key, entry);
    for (const side of ['host', 'container'] as const) for (const [key, record] of caches[side]) this[side].set(key, record);
    await this.compactNow();
    // The store owns the state from now on; a stale ancestor.json read by anything else later
    // would be worse than none (none means "merge, delete nothing").
    await this.journal?.close();
    this.journal = undefined;
    for (const name of STATE_FILE_NAMES) await rm(path.join(this.directory, name), { force: true });
  }
}

/** Bytes the store's files take (base and journal), for measurements. */
export async function stateStoreBytes(directory: string): Promise<number> {
  let total = 0;
  for (const name of [BASE_FILE, JOURNAL_FILE]) total += (await stat(path.join(directory, name)).catch(() => ({ size: 0 }))).size;
  return total;
}

/**
 * Calls `onLine` for every line that ends in "\n"; undefined when the file does not exist.
 * `tornAt`: where an unfinished last line starts, if there is one.
 */
async function readLines(file: string, onLine: (line: string) => void): Promise<{ bytes: number; tornAt?: number } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let carried: Buffer[] = [];
    let carriedBytes = 0;
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      bytes += bytesRead;
      let start = 0;
      for (let newline = chunk.indexOf(10, 0); newline >= 0 && newline < bytesRead; newline = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, newline);
        onLine(carriedBytes === 0 ? piece.toString('utf8') : Buffer.concat([...carried, piece]).toString('utf8'));
        carried = [];
        carriedBytes = 0;
        start = newline + 1;
      }
      if (start < bytesRead) {
        carried.push(Buffer.from(chunk.subarray(start, bytesRead)));
        carriedBytes += bytesRead - start;
      }
    }
    return { bytes, ...(carriedBytes > 0 && { tornAt: bytes - carriedBytes }) };
  } finally {
    await handle.close();
  }
}

function parseLine(line: string, file: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`state file ${file} holds a line that is not JSON`);
  }
}

/** A record as the store writes them; an ancestor entry is validated fully (it decides deletions). */
function checkRecord(record: unknown, file: string): Record_ {
  if (!Array.isArray(record) || record.length !== 3 || typeof record[1] !== 'string' || ![0, 1, 2].includes(record[0] as number)) {
    throw new Error(`state file ${file} holds a malformed record`);
  }
  const [code, , value] = record as Record_;
  if (value === null) return record as Record_;
  if (code === 0 ? !EntrySchema.safeParse(value).success : !isCacheRecord(value)) throw new Error(`state file ${file} holds a malformed record`);
  return record as Record_;
}

function isCacheRecord(value: unknown): value is ScanCacheEntry {
  const record = value as Record<string, unknown>;
  return typeof value === 'object' && value !== null && typeof record.size === 'number' && typeof record.mtimeMs === 'number'
    && typeof record.ctimeMs === 'number' && typeof record.ino === 'number' && typeof record.mode === 'number' && typeof record.hash === 'string';
}

/** Same flat fields, every one ===. */
function sameRecord(a: object | undefined, b: object): boolean {
  if (a === undefined) return false;
  if (a === b) return true;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && (a as Record<string, unknown>)[key] === (b as Record<string, unknown>)[key]);
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
