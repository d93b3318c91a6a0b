// The sync state of one workspace, in a folder outside both synced trees (on the host, bind-mounted
// into the container), so that it survives the container's restart and removal.
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeJsonAtomic } from '../atomicFile';
import { EntrySchema, SyncReport, SyncSide } from '../protocol';
import type { Entry } from './entry';
import type { ScanCache } from './scan';

export const STATE_FORMAT_VERSION = 1;

// Entries are stored as [path, value] pairs, not as object keys: a file named "__proto__" must
// survive the round trip (zod's records drop that key), or a lost ancestor entry could turn a
// deletion into a re-creation.
const AncestorFile = z.object({ version: z.literal(STATE_FORMAT_VERSION), entries: z.array(z.tuple([z.string(), EntrySchema])) });
const CacheFile = z.object({
  version: z.literal(STATE_FORMAT_VERSION),
  entries: z.array(z.tuple([z.string(), z.object({ size: z.number(), mtimeMs: z.number(), ctimeMs: z.number(), ino: z.number(), mode: z.number(), hash: z.string() })])),
});
export const HaltFile = z.object({ side: SyncSide, reason: z.string(), at: z.string() });
export type HaltFile = z.infer<typeof HaltFile>;
const HistoryFile = z.object({ version: z.literal(STATE_FORMAT_VERSION), reports: z.array(SyncReport) });
export const HISTORY_LIMIT = 50;

export class SyncStateFiles {
  constructor(readonly directory: string) {}

  get ancestorPath(): string {
    return path.join(this.directory, 'ancestor.json');
  }

  keptDirectory(syncId: string): string {
    return path.join(this.directory, 'kept', syncId);
  }

  async readAncestor(): Promise<Map<string, Entry>> {
    const file = await readJsonFile(this.ancestorPath, AncestorFile);
    return new Map((file?.entries ?? []) as Array<[string, Entry]>);
  }

  /** Only ever called with what was actually applied (see engine.ts). */
  async writeAncestor(ancestor: ReadonlyMap<string, Entry>): Promise<void> {
    await writeJsonAtomic(this.ancestorPath, { version: STATE_FORMAT_VERSION, entries: [...ancestor] });
  }

  async readCache(side: 'host' | 'container'): Promise<ScanCache> {
    // A cache is only an optimisation: a broken one is dropped and everything is re-hashed.
    const file = await readJsonFile(this.cachePath(side), CacheFile).catch(() => undefined);
    return new Map(file?.entries ?? []);
  }

  /** Both sides' caches: any scan may use them (they only spare re-hashing unchanged files). */
  async readCaches(): Promise<Record<'host' | 'container', ScanCache>> {
    const [host, container] = await Promise.all([this.readCache('host'), this.readCache('container')]);
    return { host, container };
  }

  async writeCache(side: 'host' | 'container', cache: ScanCache): Promise<void> {
    await writeJsonAtomic(this.cachePath(side), { version: STATE_FORMAT_VERSION, entries: [...cache] });
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

  /** Drops the agreed state and any halt: the next cycle merges both sides and deletes nothing. */
  async forgetAgreedState(): Promise<void> {
    await this.clearHalt();
    await rm(this.ancestorPath, { force: true });
  }

  async readHistory(): Promise<SyncReport[]> {
    return (await readJsonFile(path.join(this.directory, 'history.json'), HistoryFile).catch(() => undefined))?.reports ?? [];
  }

  /** Newest first, at most HISTORY_LIMIT. */
  async appendHistory(report: SyncReport): Promise<void> {
    const reports = [report, ...(await this.readHistory())].slice(0, HISTORY_LIMIT);
    await writeJsonAtomic(path.join(this.directory, 'history.json'), { version: STATE_FORMAT_VERSION, reports });
  }

  private cachePath(side: 'host' | 'container'): string {
    return path.join(this.directory, `scan-cache-${side}.json`);
  }
}
