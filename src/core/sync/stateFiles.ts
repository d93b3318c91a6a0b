// The sync state of one workspace, in a folder outside both synced trees (on the host, bind-mounted
// into the container), so that it survives the container's restart and removal: the halt, the
// history and the kept versions here; the agreed state and the scan caches in the state store
// (stateStore.ts). ancestor.json and scan-cache-*.json are the whole-tree files the store took
// over: read (and written, by tests) only for that migration.
import { open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from '../atomicFile';
import { EntrySchema, SyncReport, SyncSide } from '../protocol';
import { listedReport } from './summary';
import type { Entry } from '../files/entry';
import type { ScanCache } from './scan';

export const STATE_FORMAT_VERSION = 1;

// Entries are stored as [path, value] pairs, not as object keys: a file named "__proto__" must
// survive the round trip (zod's records drop that key), or a lost ancestor entry could turn a
// deletion into a re-creation.
const AncestorFile = z.object({ version: z.literal(STATE_FORMAT_VERSION), entries: z.array(z.tuple([z.string(), EntrySchema])) });
const CacheFile = z.object({
  version: z.literal(STATE_FORMAT_VERSION),
  entries: z.array(z.tuple([z.string(), z.object({ size: z.number(), mtimeMs: z.number(), ctimeMs: z.number(), ino: z.number(), mode: z.number(), hash: z.string(), secret: z.union([z.string(), z.literal(false)]).optional() })])),
});
export const HaltFile = z.object({ side: SyncSide, reason: z.string(), at: z.string() });
export type HaltFile = z.infer<typeof HaltFile>;
/** A pause the user asked for: it holds across a restart of the agent until they resume. */
export const PauseFile = z.object({ at: z.string() });
/**
 * What stands after the last cycles (see the session's standingAfter): kept so that a restarted
 * agent says what stands before its first cycle, which a pause or a question can hold off.
 */
export const StandingFile = z.object({
  conflicts: z.array(z.object({ path: z.string() })),
  problems: SyncReport.shape.problems,
  keptOut: SyncReport.shape.keptOut,
  notCarried: SyncReport.shape.skipped,
});
export type Standing = z.infer<typeof StandingFile>;
/** The history of an older Clud, one JSON document: read until the first report appended converts it. */
const OldHistoryFile = z.object({ version: z.literal(STATE_FORMAT_VERSION), reports: z.array(SyncReport) });
const OLD_HISTORY_FILE = 'history.json';
export const HISTORY_LIMIT = 50;
/**
 * The history: a header line, then one report per line, oldest first. A report is appended (its
 * cost is its own size, not the history's: a report of a big sync lists every path it carried, so
 * fifty of them can take megabytes); the file is cut back to its last HISTORY_LIMIT reports once it
 * is over HISTORY_TRIM_MIN_BYTES and twice what it held after its last cut (`keptBytes`, in the
 * header), so the cuts cost, spread over the appends, about one report each.
 */
export const HISTORY_FILE = 'history.jsonl';
const HistoryHeader = z.object({ version: z.literal(STATE_FORMAT_VERSION), keptBytes: z.number() });
const HISTORY_TRIM_MIN_BYTES = 1 << 20;
/** Enough for the header line. */
const HISTORY_HEADER_MAX_BYTES = 256;

export class SyncStateFiles {
  /**
   * The ancestor and the caches as this instance last read them from disk (its own copies): a
   * write of the same content is skipped, so a cycle that changed nothing rewrites neither. The
   * file on disk then already is what the write would have left, so a crash finds the same state.
   * Hence an instance serves one operation under the sync lock (nobody else writes meanwhile).
   */
  private readonly asRead = new Map<string, ReadonlyMap<string, object>>();

  constructor(readonly directory: string) {}

  get ancestorPath(): string {
    return path.join(this.directory, 'ancestor.json');
  }

  keptDirectory(syncId: string): string {
    return path.join(this.directory, 'kept', syncId);
  }

  async readAncestor(): Promise<Map<string, Entry>> {
    const file = await readJsonFile(this.ancestorPath, AncestorFile);
    if (file) this.rememberRead(this.ancestorPath, file.entries);
    return new Map((file?.entries ?? []) as Array<[string, Entry]>);
  }

  /** Only ever called with what was actually applied (see engine.ts). Skipped when that is what was read. */
  async writeAncestor(ancestor: ReadonlyMap<string, Entry>): Promise<void> {
    // In order: the ancestor's order is the snapshot order reconcile walks.
    await this.writeTableIfChanged(this.ancestorPath, ancestor, { ordered: true });
  }

  async readCache(side: 'host' | 'container'): Promise<ScanCache> {
    // A cache is only an optimisation: a broken one is dropped and everything is re-hashed.
    const file = await readJsonFile(this.cachePath(side), CacheFile).catch(() => undefined);
    if (file) this.rememberRead(this.cachePath(side), file.entries);
    return new Map(file?.entries ?? []);
  }

  /** Both sides' caches: any scan may use them (they only spare re-hashing unchanged files). */
  async readCaches(): Promise<Record<'host' | 'container', ScanCache>> {
    const [host, container] = await Promise.all([this.readCache('host'), this.readCache('container')]);
    return { host, container };
  }

  /** Skipped when the cache holds what was read, in whatever order (a scan fills it as lstats finish). */
  async writeCache(side: 'host' | 'container', cache: ScanCache): Promise<void> {
    await this.writeTableIfChanged(this.cachePath(side), cache, { ordered: false });
  }

  readHalt(): Promise<HaltFile | undefined> {
    return readJsonFile(path.join(this.directory, 'halt.json'), HaltFile);
  }

  writeHalt(halt: HaltFile): Promise<void> {
    return writeJsonAtomic(path.join(this.directory, 'halt.json'), halt);
  }

  async clearHalt(): Promise<void> {
    await rm(path.join(this.directory, 'halt.json'), { force: true });
  }

  async readPaused(): Promise<boolean> {
    return (await readJsonFile(path.join(this.directory, 'paused.json'), PauseFile)) !== undefined;
  }

  async writePaused(paused: boolean): Promise<void> {
    if (paused) await writeJsonAtomic(path.join(this.directory, 'paused.json'), { at: new Date().toISOString() });
    else await rm(path.join(this.directory, 'paused.json'), { force: true });
  }

  readStanding(): Promise<Standing | undefined> {
    return readJsonFile(path.join(this.directory, 'standing.json'), StandingFile);
  }

  writeStanding(standing: Standing): Promise<void> {
    return writeJsonAtomic(path.join(this.directory, 'standing.json'), standing);
  }

  /** Forgets what stood: a new /workspace (an initial copy) has none of it. */
  async clearStanding(): Promise<void> {
    await rm(path.join(this.directory, 'standing.json'), { force: true });
  }

  /** Newest first, at most HISTORY_LIMIT. A line that is not a report (torn by a crash) is left out. */
  async readHistory(): Promise<SyncReport[]> {
    return (await this.historyReports()).slice(-HISTORY_LIMIT).reverse();
  }

  /** Appends a report to the history, durably (see HISTORY_FILE). */
  async appendHistory(report: SyncReport): Promise<void> {
    if ((await stat(this.historyPath).catch(() => undefined)) === undefined) await this.startHistory();
    const handle = await open(this.historyPath, 'a+');
    let header: z.infer<typeof HistoryHeader> | undefined;
    let size: number;
    try {
      size = (await handle.stat()).size;
      header = parseHeader(await readStart(handle));
      // A line torn by a crash is ended first, so that it cannot swallow this one.
      const last = Buffer.alloc(1);
      const torn = size > 0 && (await handle.read(last, 0, 1, size - 1)).bytesRead === 1 && last[0] !== 0x0a;
      const line = Buffer.from(`${torn ? '\n' : ''}${JSON.stringify(listedReport(report))}\n`);
      await handle.appendFile(line);
      await handle.datasync();
      size += line.length;
    } finally {
      await handle.close();
    }
    if (header === undefined || size > Math.max(HISTORY_TRIM_MIN_BYTES, 2 * header.keptBytes)) await this.writeHistory(await this.historyReports());
  }

  /** Every report the history holds, oldest first; an older Clud's history.json until it is taken over. */
  private async historyReports(): Promise<SyncReport[]> {
    const lines = await this.historyLines();
    return lines === undefined ? this.readOldHistory() : lines.map(parseReport).filter((report) => report !== undefined);
  }

  private get historyPath(): string {
    return path.join(this.directory, HISTORY_FILE);
  }

  /** The report lines after the header; undefined when there is no history file (yet). */
  private async historyLines(): Promise<string[] | undefined> {
    let text: string;
    try {
      text = await readFile(this.historyPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const lines = text.split('\n').filter((line) => line !== '');
    return parseHeader(`${lines[0] ?? ''}\n`) === undefined ? lines : lines.slice(1);
  }

  private async readOldHistory(): Promise<SyncReport[]> {
    return ((await readJsonFile(path.join(this.directory, OLD_HISTORY_FILE), OldHistoryFile).catch(() => undefined))?.reports ?? []).reverse();
  }

  /** The first history file: the older Clud's reports, if any, which it then replaces. */
  private async startHistory(): Promise<void> {
    await this.writeHistory(await this.readOldHistory());
    await rm(path.join(this.directory, OLD_HISTORY_FILE), { force: true });
  }

  /** Replaces the history with `reports` (oldest first; the last HISTORY_LIMIT of them), atomically. */
  private async writeHistory(reports: readonly SyncReport[]): Promise<void> {
    const body = reports.slice(-HISTORY_LIMIT).map((report) => `${JSON.stringify(report)}\n`).join('');
    const header = JSON.stringify({ version: STATE_FORMAT_VERSION, keptBytes: Buffer.byteLength(body) } satisfies z.infer<typeof HistoryHeader>);
    await writeFileAtomic(this.historyPath, `${header}\n${body}`);
  }

  private cachePath(side: 'host' | 'container'): string {
    return path.join(this.directory, `scan-cache-${side}.json`);
  }

  /** Copies of the records too, so that a caller changing what it was handed cannot change this. */
  private rememberRead(file: string, entries: ReadonlyArray<readonly [string, object]>): void {
    this.asRead.set(file, new Map(entries.map(([key, record]) => [key, { ...record }])));
  }

  private async writeTableIfChanged(file: string, table: ReadonlyMap<string, object>, options: { ordered: boolean }): Promise<void> {
    const read = this.asRead.get(file);
    if (read && sameTable(read, table, options.ordered)) return;
    // Whether the write lands or not, the file no longer is known to hold what was read.
    this.asRead.delete(file);
    await writeJsonAtomic(file, { version: STATE_FORMAT_VERSION, entries: [...table] });
  }
}

/** Same keys with the same flat records (every field ===); `ordered`: in the same order too. */
function sameTable(a: ReadonlyMap<string, object>, b: ReadonlyMap<string, object>, ordered: boolean): boolean {
  if (a.size !== b.size) return false;
  const inOrder = b.entries();
  for (const [key, record] of a) {
    const other = ordered ? inOrder.next().value : [key, b.get(key)] as const;
    if (other === undefined || other[0] !== key || other[1] === undefined || !sameRecord(record, other[1])) return false;
  }
  return true;
}

/** A nested object never counts as the same: the table is then written, which is always safe. */
function sameRecord(a: object, b: object): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && (a as Record<string, unknown>)[key] === (b as Record<string, unknown>)[key]);
}

/** A report line; undefined when it is not one (torn, or from a format this Clud does not know). */
function parseReport(line: string): SyncReport | undefined {
  try {
    const parsed = SyncReport.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function parseHeader(start: string): z.infer<typeof HistoryHeader> | undefined {
  const newline = start.indexOf('\n');
  if (newline < 0) return undefined;
  try {
    const parsed = HistoryHeader.safeParse(JSON.parse(start.slice(0, newline)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function readStart(handle: FileHandle): Promise<string> {
  const buffer = Buffer.alloc(HISTORY_HEADER_MAX_BYTES);
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
  return buffer.subarray(0, bytesRead).toString('utf8');
}
