// Sync cycles over the per-path state store (stateStore.ts): a full cycle (both trees scanned,
// the periodic truth) or an incremental one, which looks only at the dirty paths a watcher
// reported (their subtrees, for folders) and the folders above them, on both sides. Both reconcile
// with the same pure `reconcile`, apply with the same checked apply (an undo step when recording),
// and commit only the records that changed, in one journal line.
//
// An incremental cycle hands reconcile a region: host, container and ancestor restricted to the
// same paths (the chain of folders above each dirty path, which are folders on both sides, and
// the dirty path's subtree), so the snapshots stay well-formed and nothing outside the region is
// visited. The wiped-side halt cannot be judged from a region, so it is checked on the roots
// themselves: a root missing, unreadable or holding nothing while the agreed state holds
// something sends the caller to a full cycle, which halts as it always did.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { emptySyncReport, type SyncReport } from '../protocol';
import type { ApplyOptions } from './apply';
import { newSyncId, recordOutcome } from './engine';
import { ancestorsOf, parentPath, pathAndAncestors, type Entry, type Snapshot } from '../files/entry';
import { IgnoreRules } from './ignore';
import { bytesFromName, nameFromBytes } from '../files/pathCodec';
import { reconcile, type Policy, type Side } from './reconcile';
import { applyRecorded, type UndoRecording } from './recordedApply';
import { ignoredOnEitherSide, scanPaths, scanTree, type ScanCache, type ScanCacheEntry, type ScanResult } from './scan';
import type { StateChanges, SyncStateStore } from './stateStore';

export interface StoreCycleOptions {
  roots: Record<Side, string>;
  excludes: readonly string[];
  /** Two-way policies only: a push or a pull is a full command, not a background cycle. */
  policy: Policy;
  store: SyncStateStore;
  /** Where losing versions of this cycle are kept: `<keptRoot>/<sync id>/<side>/<path>`. */
  keptRoot: string;
  /** The watcher's dirty paths (a folder stands for its subtree); absent: a full cycle. */
  dirty?: Iterable<string>;
  beforeModify?: ApplyOptions['beforeModify'];
  undo?: UndoRecording;
}

export type StoreCycleResult =
  | { report: SyncReport; fullCycleNeeded?: undefined }
  /** The region cannot be judged on its own (see the module comment); run a full cycle. */
  | { report?: undefined; fullCycleNeeded: string };

/** Widening a region to the folder that changed kind above it converges fast; past this, a full cycle is simpler. */
const MAX_WIDENINGS = 4;

export async function runStoreCycle(options: StoreCycleOptions): Promise<StoreCycleResult> {
  const started = new Date();
  const report = emptySyncReport({ id: newSyncId(started), policy: options.policy, startedAt: started.toISOString() });
  const finish = () => {
    report.durationMs = Date.now() - started.getTime();
    return { report };
  };
  const { store } = options;
  let region: Region;
  if (options.dirty === undefined) {
    const scans = await scanBothFull(options);
    if ('halt' in scans) {
      report.halted = scans.halt;
      return finish();
    }
    region = { ...scans, ancestor: store.ancestor, paths: undefined };
  } else {
    if (options.policy === 'push' || options.policy === 'pull') return { fullCycleNeeded: `a ${options.policy} is a full cycle` };
    const paths = normalizeDirty(options.dirty);
    if (paths === 'everything') return { fullCycleNeeded: 'the root itself changed' };
    if (paths.length === 0) return finish();
    const rootProblem = await rootsLookWiped(options);
    if (rootProblem) return { fullCycleNeeded: rootProblem };
    const scanned = await scanRegion(options, paths);
    if (typeof scanned === 'string') return { fullCycleNeeded: scanned };
    region = scanned;
  }
  const { host, container } = region;
  report.scanned = { hostFiles: host.stats.files, containerFiles: container.stats.files, hashedFiles: host.stats.hashedFiles + container.stats.hashedFiles };
  for (const [side, scan] of [['host', host], ['container', container]] as const) {
    for (const problem of scan.problems) report.problems.push({ ...problem, side });
  }

  const ignored = ignoredOnEitherSide(host, container);
  const input = { ancestor: withoutIgnored(region.ancestor, ignored), host: withoutIgnored(host.snapshot, ignored), container: withoutIgnored(container.snapshot, ignored) };
  const result = reconcile({ ...input, policy: options.policy, partial: region.paths !== undefined });
  report.conflicts = result.conflicts;
  for (const problem of result.problems) {
    if (!report.problems.some((known) => known.path === problem.path && known.side === problem.side)) report.problems.push(problem);
  }
  const cacheChanges = { host: cacheUpdates(store.host, host, region.paths, store.ancestor), container: cacheUpdates(store.container, container, region.paths, store.ancestor) };
  if (result.halt) {
    report.halted = result.halt;
    await store.commit(cacheChanges);
    return finish();
  }

  const recorded = await applyRecorded(result.changes, { roots: options.roots, keepDir: path.join(options.keptRoot, report.id), beforeModify: options.beforeModify }, options.undo, { syncId: report.id, policy: options.policy });
  if (recorded.denied) {
    // The host was rolled back; the agreed state stays as it was (see engine.ts).
    report.denied = recorded.denied;
    await store.commit(cacheChanges);
    return finish();
  }
  const { outcome } = recorded;
  report.undoStep = recorded.stepId;

  // The new agreed state at the paths reconcile decided on; a skipped change leaves its path as it was.
  const changed = new Set(result.changes.map((change) => change.path));
  const applied = new Set(outcome.applied.map((change) => change.path));
  const ancestorChanges = new Map<string, Entry | undefined>();
  for (const [key, entry] of result.ancestorUpdates) {
    if (changed.has(key) && !applied.has(key)) continue;
    ancestorChanges.set(key, entry);
  }
  // What is ignored now is no longer agreed on (as in engine.ts): forgotten, in the region.
  for (const key of region.ancestor.keys()) if (ignored(key)) ancestorChanges.set(key, undefined);
  await store.commit({ ancestor: ancestorChanges, ...cacheChanges });
  await options.undo?.log.detectBarriers(options.roots.host, { except: recorded.stepId });

  recordOutcome(report, outcome);
  return finish();
}

interface Region {
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

async function scanBothFull(options: StoreCycleOptions): Promise<{ host: ScanResult; container: ScanResult } | { halt: { side: Side; reason: string } }> {
  const scanSide = async (side: Side) => {
    try {
      return await scanTree(options.roots[side], { excludes: options.excludes, cache: options.store[side] });
    } catch (error) {
      return { side, reason: `${options.roots[side]} cannot be read: ${(error as Error).message}` };
    }
  };
  const [host, container] = await Promise.all([scanSide('host'), scanSide('container')]);
  if ('reason' in host) return { halt: host };
  if ('reason' in container) return { halt: container };
  return { host, container };
}

/**
 * Scans the region on both sides. Where a folder above a dirty path is not a folder on one side
 * (deleted, or replaced by a file), the region is widened to that folder on both sides, so that
 * the two sides and the ancestor always cover the same paths.
 */
async function scanRegion(options: StoreCycleOptions, dirty: string[]): Promise<Region | string> {
  let paths = dirty;
  for (let attempt = 0; attempt <= MAX_WIDENINGS; attempt += 1) {
    let host;
    let container;
    try {
      [host, container] = await Promise.all((['host', 'container'] as const).map((side) => scanPaths(options.roots[side], paths, { excludes: options.excludes, cache: options.store[side] })));
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
 * What the scan caches become: the region's records replaced by this scan's. Records under a
 * folder that is no longer scanned there are dropped where the agreed state or the scan says it
 * was a folder; any other stale record is harmless (a cache hit needs size, times, inode and mode
 * to match) and goes at the next full cycle.
 */
function cacheUpdates(cache: ScanCache, scan: ScanResult, paths: readonly string[] | undefined, ancestor: ReadonlyMap<string, Entry>): Map<string, ScanCacheEntry | undefined> {
  const changes = new Map<string, ScanCacheEntry | undefined>();
  if (paths === undefined) {
    for (const [key, record] of scan.cache) if (cache.get(key) !== record) changes.set(key, record);
    for (const key of cache.keys()) if (!scan.cache.has(key)) changes.set(key, undefined);
    return changes;
  }
  for (const [key, record] of scan.cache) if (cache.get(key) !== record) changes.set(key, record);
  const folders: string[] = [];
  for (const key of paths) {
    if (!scan.cache.has(key) && cache.has(key)) changes.set(key, undefined);
    if (ancestor.get(key)?.kind === 'directory' || scan.snapshot.get(key)?.kind === 'directory') folders.push(`${key}/`);
  }
  if (folders.length > 0) {
    for (const key of cache.keys()) if (!scan.cache.has(key) && folders.some((prefix) => key.startsWith(prefix))) changes.set(key, undefined);
  }
  return changes;
}

/**
 * Why the region cannot be judged alone: a root missing or unreadable, or holding nothing the
 * sync would look at while the agreed state holds something (the full cycle then halts).
 */
async function rootsLookWiped(options: StoreCycleOptions): Promise<string | undefined> {
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
      const text = await fs.readFile(path.join(root, '.gitignore'), 'utf8').catch(() => undefined);
      if (text === undefined) return `${root}/.gitignore cannot be read`;
      rules = rules.withGitignore('', text);
    }
    if (!names.some((name) => !(rules.ignores(name, false) && rules.ignores(name, true)))) return `${root} holds nothing to sync`;
  }
  return undefined;
}

function withoutIgnored(snapshot: Snapshot, ignored: (path: string) => boolean): Map<string, Entry> {
  return new Map([...snapshot].filter(([key]) => !ignored(key)));
}

export type { StateChanges };
