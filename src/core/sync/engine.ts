// The sync cycle: scan, reconcile, apply, and record the new agreed state. Runs in the agent,
// which sees both trees locally (/clud/host is a bind mount, /workspace its own). There is one
// cycle, `runStoreCycle`, over the per-path state store (stateStore.ts): a full cycle scans both
// trees (every client request, the periodic truth of continuous sync), an incremental one only
// the dirty paths a watcher reported (see incremental.ts for how a region is judged alone). Both
// reconcile with the same pure `reconcile`, apply with the same checked apply (an undo step when
// recording), and commit only the records that changed, in one journal line.
// `runSyncCycle` is the one-shot form: open the store, one full cycle, close.
import { randomBytes } from 'node:crypto';
import { emptySyncReport, MAX_LISTED, type SyncReport } from '../protocol';
import type { ApplyOptions, ApplyOutcome } from './apply';
import { applyRecorded, undoStepFields } from './recordedApply';
import type { UndoRecording } from './recordedApply';
import { pathAndAncestors, permissionBits, type Entry, type Snapshot } from '../files/entry';
import { lstatAsWritten } from '../files/fsEntry';
import { joinBytes } from '../files/pathCodec';
import { secretOtherSide } from './compare';
import { cacheUpdates, normalizeDirty, rootsLookWiped, scanRegion, type Region } from './incremental';
import { otherSide, reconcile } from './reconcile';
import { findChangedPaths } from './rescan';
import { linkLeavingReason, withoutLinksLeavingFolder } from './linksLeavingFolder';
import type { Change, Policy, Side } from './reconcile';
import { ignoredOnEitherSide, scanTree } from './scan';
import type { AccessIdentity, ScanCacheEntry, ScanResult } from './scan';
import { SyncStateFiles } from './stateFiles';
import { SyncStateStore } from './stateStore';
import { isEventful } from './summary';

export interface SyncCycleOptions {
  roots: Record<Side, string>;
  stateDir: string;
  policy: Policy;
  excludes: readonly string[];
  /** Secret files to let through (see secrets.ts); every other one is kept out on its side. */
  allowSecrets?: readonly string[];
  /** Forget a halt and the ancestor: the next cycle merges both sides and deletes nothing. */
  reset?: boolean;
  /**
   * Only carry out changes at these paths (and the folders above them), e.g. the files just
   * saved in the editor. Everything is still scanned, so conflicts and halts are still seen.
   */
  onlyPaths?: readonly string[];
  beforeModify?: ApplyOptions['beforeModify'];
  /** Who gets what the apply creates on each side (see ApplyOptions). */
  owners?: ApplyOptions['owners'];
  /** The host tree is read with this user's rights only (see ScanOptions.accessAs). */
  hostAccess?: AccessIdentity;
  /** Record the cycle's host changes as an undo step (with safeguards). */
  undo?: UndoRecording;
  /** What the undo step says it was, when not a sync of `policy` (a resolve's own cycle). */
  stepPolicy?: string;
  /**
   * Aborted when nobody waits for the result any more (the CLI was interrupted). Checked before
   * the apply and before each change: the changes under way finish, no new one starts, and the
   * undo step is rolled back, so the host is as it was before the sync (see SyncCancelled).
   */
  signal?: AbortSignal;
}

export interface StoreCycleOptions extends Omit<SyncCycleOptions, 'stateDir'> {
  /** The agreed state and scan caches; its folder is the state folder (halt, history, kept/). */
  store: SyncStateStore;
  /**
   * The watcher's dirty paths (a folder stands for its subtree): an incremental cycle. Absent: a
   * full cycle. Push, pull, reset and onlyPaths are full cycles only.
   */
  dirty?: Iterable<string>;
  /**
   * 'every-cycle' (a client's request), or 'eventful': only a cycle that changed, kept, skipped,
   * halted or was denied something, or found a conflict not in `standingConflicts`, is worth a
   * place among the last HISTORY_LIMIT reports (a background cycle every few seconds would push
   * every real one out).
   */
  history?: 'every-cycle' | 'eventful';
  /**
   * The conflicts that stood before this cycle (see isEventful): a background cycle that finds a
   * new one is kept in the history, which is where `clud conflicts` learns what each side holds.
   */
  standingConflicts?: ReadonlySet<string>;
}

/**
 * A sync stopped because its requester went away. Its host changes are rolled back with its undo
 * step, its container changes stay (each complete; the next cycle sees them agree or carries
 * them), and the agreed state is not written: the next cycle decides from the trees as they are.
 */
export class SyncCancelled extends Error {
  constructor() {
    super('the sync was cancelled: its requester went away');
    this.name = 'SyncCancelled';
  }
}

export type StoreCycleResult =
  | { report: SyncReport; fullCycleNeeded?: undefined }
  /** An incremental region cannot be judged on its own (see incremental.ts); run a full cycle. */
  | { report?: undefined; fullCycleNeeded: string };

export function newSyncId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/** Opens the state store of `stateDir` for one operation and closes it after. */
export async function withStateStore<T>(stateDir: string, operation: (store: SyncStateStore) => Promise<T>): Promise<T> {
  const store = await SyncStateStore.open(stateDir);
  try {
    return await operation(store);
  } finally {
    await store.close();
  }
}

/** One full cycle on a store opened for it (for one-shot callers and tests). */
export function runSyncCycle({ stateDir, ...options }: SyncCycleOptions): Promise<SyncReport> {
  return withStateStore(stateDir, async (store) => (await runStoreCycle({ ...options, store })).report as SyncReport);
}

/** Drops the agreed state and any halt: the next cycle merges both sides and deletes nothing. */
export async function forgetAgreedState(store: SyncStateStore): Promise<void> {
  await new SyncStateFiles(store.directory).clearHalt();
  await store.commit({ ancestor: new Map([...store.ancestor.keys()].map((key) => [key, undefined])) });
}

/**
 * Scan cache records for the files the apply wrote, so that the cycle the watchers' events for
 * them bring (their echo) finds each one as recorded instead of reading and hashing it again: a
 * whole large file, or 50 ms of a 1,000-file burst. Taken after the apply: a file's lstat now,
 * with the hash it was written with, only where it is still as the apply left it (lstatAsWritten,
 * and the permissions the apply set) and the source's secret check is known.
 */
function* writtenCacheRecords(applied: readonly Change[], region: Region, roots: Record<Side, string>): Generator<[Side, string, ScanCacheEntry]> {
  for (const change of applied) {
    const next = change.next;
    if (next?.kind !== 'file') continue;
    const secret = region[otherSide(change.side)].cache.get(change.path)?.secret;
    if (secret === undefined) continue;
    const stat = lstatAsWritten(joinBytes(roots[change.side], change.path), next);
    if (!stat || permissionBits(stat.mode) !== permissionBits(next.mode)) continue;
    yield [change.side, change.path, { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino, mode: stat.mode, hash: next.hash, secret }];
  }
}

export async function runStoreCycle(options: StoreCycleOptions): Promise<StoreCycleResult> {
  const started = new Date();
  const startedAt = performance.now();
  const { store } = options;
  const files = new SyncStateFiles(store.directory);
  const report = emptySyncReport({ id: newSyncId(started), policy: options.policy, startedAt: started.toISOString() });
  // The time a safeguard question waits for its answer is the user's, not the sync's: reported apart.
  let waitedForAnswerMs = 0;
  const undo: UndoRecording | undefined = options.undo?.ask && {
    ...options.undo,
    ask: async (question) => {
      const asked = performance.now();
      try {
        return await options.undo!.ask!(question);
      } finally {
        waitedForAnswerMs += performance.now() - asked;
      }
    },
  };
  const finish = async (): Promise<StoreCycleResult> => {
    report.durationMs = Date.now() - started.getTime();
    if (waitedForAnswerMs > 0) report.waitedForAnswerMs = Math.round(waitedForAnswerMs);
    if (options.history !== 'eventful' || isEventful(report, options.standingConflicts)) await files.appendHistory(report);
    return { report };
  };
  const halt = async (found: { side: Side; reason: string }): Promise<StoreCycleResult> => {
    await files.writeHalt({ ...found, at: new Date().toISOString() });
    report.halted = found;
    return finish();
  };

  let region: Region;
  if (options.dirty === undefined) {
    options.undo?.log.prepareToRecord();
    if (options.reset) await forgetAgreedState(store);
    const halted = await files.readHalt();
    if (halted) {
      report.halted = { side: halted.side, reason: halted.reason };
      return finish();
    }
    const scans = await scanBothFull(options);
    if ('halt' in scans) return halt(scans.halt);
    region = { ...scans, ancestor: store.ancestor, paths: undefined };
  } else {
    if (options.policy === 'push' || options.policy === 'pull') return { fullCycleNeeded: `a ${options.policy} is a full cycle` };
    if (options.reset || options.onlyPaths) return { fullCycleNeeded: 'a reset or a cycle for some paths only is a full cycle' };
    const paths = normalizeDirty(options.dirty);
    if (paths === 'everything') return { fullCycleNeeded: 'the root itself changed' };
    if (paths.length === 0) return { report };
    const rootProblem = await rootsLookWiped(options);
    if (rootProblem) return { fullCycleNeeded: rootProblem };
    // A halt is judged by the full cycle, which reads and reports it.
    if (await files.readHalt()) return { fullCycleNeeded: 'the sync is halted' };
    const scanned = await scanRegion(options, paths);
    if (typeof scanned === 'string') return { fullCycleNeeded: scanned };
    options.undo?.log.prepareToRecord();
    region = scanned;
  }
  const scannedAt = performance.now();
  const { host, container } = region;
  report.scanned = { hostFiles: host.stats.files, containerFiles: container.stats.files, hashedFiles: host.stats.hashedFiles + container.stats.hashedFiles };
  for (const [side, scan] of [['host', host], ['container', container]] as const) {
    for (const problem of scan.problems) report.problems.push({ ...problem, side });
    const other = side === 'host' ? container : host;
    for (const secret of scan.keptOut) {
      const otherSide = secretOtherSide(secret.path, other, region.ancestor);
      report.keptOut.push({ ...secret, side, ...(otherSide && { otherSide }) });
    }
  }

  // A path ignored on either side is left alone on both: never overwritten, never deleted, and
  // not created on the side that ignores it either.
  const ignored = ignoredOnEitherSide(host, container);
  const input = { ancestor: withoutIgnored(region.ancestor, ignored), host: withoutIgnored(host.snapshot, ignored), container: withoutIgnored(container.snapshot, ignored) };
  const cacheChanges = { host: cacheUpdates(store.host, host, region.paths, region.ancestor), container: cacheUpdates(store.container, container, region.paths, region.ancestor) };
  const oneWayHalt = emptySourceHalt(options.policy, input.host, input.container);
  if (oneWayHalt) {
    await store.commit(cacheChanges);
    return halt(oneWayHalt);
  }
  const result = withoutLinksLeavingFolder(reconcile({ ...input, policy: options.policy, partial: region.paths !== undefined }));
  report.conflicts = result.conflicts;
  for (const problem of result.problems) {
    if (!report.problems.some((known) => known.path === problem.path && known.side === problem.side)) report.problems.push(problem);
  }
  for (const { path, target } of result.refused) {
    const reason = `${linkLeavingReason(target)}; not written into your folder`;
    const known = report.problems.find((problem) => problem.path === path && problem.side === 'container');
    if (known) known.reason = reason;
    else report.problems.push({ path, side: 'container', reason });
  }
  if (result.halt) {
    await store.commit(cacheChanges);
    return halt(result.halt);
  }

  const wanted = options.onlyPaths ? pathsAndParents(options.onlyPaths) : undefined;
  if (wanted) {
    result.changes = result.changes.filter((change) => wanted.has(change.path));
    for (const key of [...result.ancestorUpdates.keys()]) if (!wanted.has(key)) result.ancestorUpdates.delete(key);
  }
  // The caches are only what the scan saw, worth keeping whatever the apply does. They are
  // committed with the agreed state after it, in one durable write, so that no fdatasync (which
  // on ext4 waits for the writeback of everything the writer just wrote) comes before its first
  // change; if the apply stops, on their own. A crash meanwhile loses only cache records.
  const keepCaches = () => store.commit(cacheChanges);
  if (options.signal?.aborted) {
    await keepCaches();
    throw new SyncCancelled();
  }
  // Checked again once the hook returns: many changes are under way at once, and one whose hook
  // (the undo capture) was waiting when the cancel came must not write after it.
  const cancellable: ApplyOptions['beforeModify'] = async (change, found) => {
    if (options.signal?.aborted) throw new SyncCancelled();
    const saved = await options.beforeModify?.(change, found);
    if (options.signal?.aborted) throw new SyncCancelled();
    return saved;
  };
  let recorded: Awaited<ReturnType<typeof applyRecorded>>;
  const applyStartedAt = performance.now();
  try {
    recorded = await applyRecorded(
      result.changes,
      { roots: options.roots, keepDir: files.keptDirectory(report.id), decidedAt: started.getTime(), beforeModify: cancellable, isFatal: (error) => error instanceof SyncCancelled, owners: options.owners },
      undo ?? options.undo,
      { syncId: report.id, policy: options.stepPolicy ?? options.policy },
    );
  } catch (error) {
    // The apply's error is the one to report; a commit failing too adds nothing to it.
    await keepCaches().catch(() => undefined);
    throw error;
  }
  if (recorded.denied) {
    // Asked before anything changed (see recordedApply.ts): the agreed state stays as it was, and
    // the next cycle sees what still differs.
    report.denied = recorded.denied;
    await keepCaches();
    return finish();
  }
  const { outcome } = recorded;
  Object.assign(report, undoStepFields(recorded));
  const appliedAt = performance.now();

  // The new agreed state at the paths reconcile decided on: its updates for paths that needed no
  // change, and for paths whose change was carried out. A skipped change leaves its path as it was.
  const changed = new Set(result.changes.map((change) => change.path));
  const applied = new Set(outcome.applied.map((change) => change.path));
  const ancestorChanges = new Map<string, Entry | undefined>();
  for (const [key, entry] of result.ancestorUpdates) {
    if (changed.has(key) && !applied.has(key)) continue;
    ancestorChanges.set(key, entry);
  }
  // What is ignored now is no longer agreed on: forgotten (in the region, for an incremental
  // cycle). A file kept out as a secret keeps its agreed entry: the other side's version there is
  // still measured against it (removing the container then knows an edit the agent made there,
  // see compare.ts), and once the secret is gone the merge goes on from it.
  const keptOut = new Set([...host.keptOut, ...container.keptOut].map((secret) => secret.path));
  for (const key of region.ancestor.keys()) if (ignored(key) && !keptOut.has(key)) ancestorChanges.set(key, undefined);
  for (const [side, key, record] of writtenCacheRecords(outcome.applied, region, options.roots)) cacheChanges[side].set(key, record);
  await store.commit({ ...cacheChanges, ancestor: ancestorChanges });
  // Paths earlier steps wrote and someone changed since: undoing those steps would destroy that.
  await options.undo?.log.detectBarriers(options.roots.host, { except: recorded.stepId, ...(region.paths && { paths: region.paths }) });

  recordOutcome(report, outcome);
  const committedAt = performance.now();
  report.phasesMs = { scan: Math.round(scannedAt - startedAt), reconcile: Math.round(applyStartedAt - scannedAt), apply: Math.round(appliedAt - applyStartedAt), commit: Math.round(committedAt - appliedAt) };
  return finish();
}

/** How a periodic full cycle went: the rescan carried only what differed, or ran the full cycle. */
export type RescanOutcome = 'changes-only' | 'full-cycle';

/**
 * The periodic full cycle of continuous sync, at the cost of a walk: the rescan (rescan.ts) finds
 * where either side differs from the agreed state and what the sync leaves out, and only those
 * paths (with `alsoDirty`, what the watchers reported meanwhile) go through an incremental cycle,
 * whose report then names every conflict, problem and secret kept out, as a full cycle's does.
 * The full cycle runs instead when the rescan cannot tell (an agreed path not found, too many
 * differences) or the region cannot be judged alone. Client requests stay full cycles.
 */
export async function runRescanCycle(options: Omit<StoreCycleOptions, 'dirty'>, alsoDirty: Iterable<string> = []): Promise<{ report: SyncReport; rescan: RescanOutcome; walkMs: number; rescanCpuMs: number }> {
  const started = Date.now();
  const cpuBefore = process.cpuUsage();
  const found = await findChangedPaths({ ...options, store: options.store });
  // What the rescan itself costs, whatever it carried: what the next one is paced by. CPU time of
  // the whole process (the walk's thread included), not wall time: the walk waits on the disk.
  const walkMs = Date.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const rescanCpuMs = (cpu.user + cpu.system) / 1000;
  if ('changed' in found) {
    // What the sync leaves out is looked at again too, so that the report names what still is.
    const result = await runStoreCycle({ ...options, dirty: [...found.changed, ...found.leftOut, ...alsoDirty] });
    if (result.report) {
      result.report.durationMs = Date.now() - started;
      return { report: result.report, rescan: 'changes-only', walkMs, rescanCpuMs };
    }
  }
  return { report: (await runStoreCycle(options)).report as SyncReport, rescan: 'full-cycle', walkMs, rescanCpuMs };
}

/** What an apply did, into the cycle's report. */
export function recordOutcome(report: SyncReport, outcome: ApplyOutcome): void {
  report.appliedCount = outcome.applied.length;
  report.deletedCount = outcome.applied.filter((change) => change.next === undefined).length;
  report.writtenCount = report.appliedCount - report.deletedCount;
  report.applied = outcome.applied.slice(0, MAX_LISTED).map((change) => ({
    path: change.path,
    side: change.side,
    action: change.next === undefined ? 'delete' : change.expected === undefined ? 'create' : 'update',
  }));
  report.skipped = outcome.skipped.map(({ change, code, reason }) => ({ path: change.path, side: change.side, code, reason }));
  report.kept = outcome.kept;
  report.bytesCopied = outcome.bytesCopied;
}

async function scanBothFull(options: StoreCycleOptions): Promise<{ host: ScanResult; container: ScanResult } | { halt: { side: Side; reason: string } }> {
  const scanSide = async (side: Side) => {
    try {
      return await scanTree(options.roots[side], { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store[side], accessAs: side === 'host' ? options.hostAccess : undefined });
    } catch (error) {
      // A missing or unreadable root must stop the sync: read as "no files", it would delete everything on the other side.
      return { side, reason: `${options.roots[side]} cannot be read: ${(error as Error).message}` };
    }
  };
  const [host, container] = await Promise.all([scanSide('host'), scanSide('container')]);
  if ('reason' in host) return { halt: host };
  if ('reason' in container) return { halt: container };
  return { host, container };
}

/**
 * A push from an empty folder, or a pull from an empty /workspace, would empty the other side,
 * even on a first sync when there is no agreed state for reconcile's own halt to compare with.
 */
function emptySourceHalt(policy: Policy, host: Snapshot, container: Snapshot): { side: Side; reason: string } | undefined {
  if (policy !== 'push' && policy !== 'pull') return undefined;
  const [source, target, side] = policy === 'push' ? [host, container, 'host' as const] : [container, host, 'container' as const];
  const tracked = (snapshot: Snapshot) => [...snapshot.values()].some((entry) => entry.kind !== 'untracked');
  if (tracked(source) || !tracked(target)) return undefined;
  return { side, reason: `${side === 'host' ? 'the host folder' : '/workspace'} is empty; a ${policy} would delete everything on the other side` };
}

function pathsAndParents(paths: readonly string[]): Set<string> {
  return new Set(paths.flatMap((key) => pathAndAncestors(key)));
}

function withoutIgnored(snapshot: Snapshot, ignored: (path: string) => boolean): Map<string, Entry> {
  const kept = new Map<string, Entry>();
  for (const [key, entry] of snapshot) if (!ignored(key)) kept.set(key, entry);
  return kept;
}
