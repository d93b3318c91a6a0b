// The incremental side of the sync cycle (runStoreCycle in engine.ts): an incremental cycle looks
// only at the dirty paths a watcher reported (their subtrees, for folders) and the folders above
// them, on both sides.
//
// An incremental cycle hands reconcile a region: host, container and ancestor restricted to the
// same paths (the chain of folders above each dirty path, which are folders on both sides, and
// the dirty path's subtree), so the snapshots stay well-formed and nothing outside the region is
// visited. The wiped-side halt cannot be judged from a region, so it is checked on the roots
// themselves: a root missing, unreadable or holding nothing while the agreed state holds
// something sends the caller to a full cycle, which halts as it always did.
import { promises as fs } from 'node:fs';
import type { StoreCycleOptions } from './engine';
import { ancestorsOf, parentPath, pathAndAncestors, regionFilter, type Entry, type Snapshot } from '../files/entry';
import { IgnoreRules } from './ignore';
import { bytesFromName, joinBytes, nameFromBytes } from '../files/pathCodec';
import { readGitignore, sameScanCacheEntry, scanPaths, type ScanCache, type ScanCacheEntry, type ScanResult } from './scan';

/** Widening a region to the folder that changed kind above it converges fast; past this, a full cycle is simpler. */
const MAX_WIDENINGS = 4;

/** What a region is scanned and judged with (see StoreCycleOptions in engine.ts). */
type RegionOptions = Pick<StoreCycleOptions, 'roots' | 'excludes' | 'allowSecrets' | 'hostAccess' | 'store'>;

export interface Region {
  host: ScanResult;
  container: ScanResult;
  ancestor: Snapshot;
  /** The dirty paths the region is made of; undefined: everything (a full cycle). */
  paths: readonly string[] | undefined;
}

/**
 * Dirty paths as a region's roots: none under another, a changed .gitignore standing for its
 * folder (its rules decide about the whole subtree). 'everything' when that is the root.
 */
export function normalizeDirty(dirty: Iterable<string>): string[] | 'everything' {
  const wanted = new Set<string>();
  for (const raw of dirty) {
    const key = raw.endsWith('/.gitignore') || raw === '.gitignore' ? parentPath(raw) : raw;
    if (key === '') return 'everything';
    wanted.add(key);
  }
  return [...wanted].filter((key) => !ancestorsOf(key).some((folder) => wanted.has(folder))).sort();
}

/**
 * What stands after a cycle (the conflicts, problems and secrets kept out it reports), from what
 * stood before it. A full cycle looked at every path, and so did a rescan's: the rescan hands on
 * every path that differs from the agreed state (where every conflict is) and every path the sync
 * leaves out. An incremental cycle looked only at the subtrees of its dirty paths, so what stands
 * elsewhere still does; a halted cycle reconciled nothing and changes nothing.
 */
export function standingAfter<T extends { path: string }>(known: readonly T[], cycle: { reported: readonly T[]; halted: boolean; dirty?: Iterable<string> }): T[] {
  if (cycle.halted) return [...known];
  const looked = cycle.dirty === undefined ? 'everything' : normalizeDirty(cycle.dirty);
  const seen = looked === 'everything' ? () => true : regionFilter(looked);
  return byPath([...known.filter((item) => !seen(item.path)), ...cycle.reported]);
}

/** Sorts `items` by path, in place, as the status lists them. */
export function byPath<T extends { path: string }>(items: T[]): T[] {
  return items.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Scans the region on both sides. Where a folder above a dirty path is not a folder on one side
 * (deleted, or replaced by a file), the region is widened to that folder on both sides, so that
 * the two sides and the ancestor always cover the same paths.
 */
export async function scanRegion(options: RegionOptions, dirty: string[]): Promise<Region | string> {
  let paths = dirty;
  for (let attempt = 0; attempt <= MAX_WIDENINGS; attempt += 1) {
    let host;
    let container;
    try {
      [host, container] = await Promise.all((['host', 'container'] as const).map((side) => scanPaths(options.roots[side], paths, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store[side], accessAs: side === 'host' ? options.hostAccess : undefined })));
    } catch (error) {
      return `a root cannot be read: ${(error as Error).message}`;
    }
    const widened = [...host!.incomplete, ...container!.incomplete];
    if (widened.length === 0) return { host: host!, container: container!, ancestor: ancestorRegion(options.store.ancestor, paths), paths };
    const next = normalizeDirty([...paths, ...widened.map((left) => left.at)]);
    if (next === 'everything') return 'the region reaches the root';
    paths = next;
  }
  return 'the tree kept changing shape under the dirty paths';
}

/** The agreed entries of the region: the folders above each path, and the path's subtree. */
function ancestorRegion(ancestor: ReadonlyMap<string, Entry>, paths: readonly string[]): Map<string, Entry> {
  const region = new Map<string, Entry>();
  const subtreesOf: string[] = [];
  for (const key of paths) {
    for (const folder of pathAndAncestors(key)) {
      const entry = ancestor.get(folder);
      if (entry) region.set(folder, entry);
    }
    if (ancestor.get(key)?.kind === 'directory') subtreesOf.push(`${key}/`);
  }
  // A folder's agreed subtree: one pass over the keys (memory only, no file-system call).
  if (subtreesOf.length > 0) {
    for (const [key, entry] of ancestor) if (subtreesOf.some((prefix) => key.startsWith(prefix))) region.set(key, entry);
  }
  return region;
}

/**
 * What the scan caches become: the region's records replaced by this scan's. `ancestor` is the
 * region's agreed state: the records of agreed paths the scan no longer found are dropped. That
 * costs what the region holds, not what the tree holds; any other stale record (a path never
 * agreed on) is harmless, since a cache hit needs size, times, inode and mode to match, and goes
 * at the next full cycle.
 */
export function cacheUpdates(cache: ScanCache, scan: ScanResult, paths: readonly string[] | undefined, ancestor: ReadonlyMap<string, Entry>): Map<string, ScanCacheEntry | undefined> {
  const changes = new Map<string, ScanCacheEntry | undefined>();
  if (paths === undefined) {
    for (const [key, record] of scan.cache) if (!sameScanCacheEntry(cache.get(key), record)) changes.set(key, record);
    for (const key of cache.keys()) if (!scan.cache.has(key)) changes.set(key, undefined);
    return changes;
  }
  for (const [key, record] of scan.cache) if (!sameScanCacheEntry(cache.get(key), record)) changes.set(key, record);
  for (const key of [...paths, ...ancestor.keys()]) if (!scan.cache.has(key) && cache.has(key)) changes.set(key, undefined);
  return changes;
}

/**
 * Why the region cannot be judged alone: a root missing or unreadable, or holding nothing the
 * sync would look at while the agreed state holds something (the full cycle then halts).
 */
export async function rootsLookWiped(options: RegionOptions): Promise<string | undefined> {
  for (const side of ['host', 'container'] as const) {
    const root = options.roots[side];
    let names: string[];
    try {
      names = (await fs.readdir(bytesFromName(root), { encoding: 'buffer' })).map(nameFromBytes);
    } catch (error) {
      return `${root} cannot be listed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
    if (options.store.ancestor.size === 0) continue;
    let rules = IgnoreRules.create(options.excludes);
    if (names.includes('.gitignore')) {
      // As the scan reads it: not through a link (git ignores a symlinked .gitignore).
      const text = readGitignore(joinBytes(root, '.gitignore'));
      if (typeof text === 'object') return `${root}/.gitignore cannot be read: ${text.unreadable}`;
      if (text !== undefined) rules = rules.withGitignore('', text);
    }
    if (!names.some((name) => !(rules.ignores(name, false) && rules.ignores(name, true)))) return `${root} holds nothing to sync`;
  }
  return undefined;
}
