// One sync cycle: scan both trees, reconcile, apply, and record the new agreed state. Runs in
// the agent, which sees both trees locally (/clud/host is a bind mount, /workspace its own).
import { randomBytes } from 'node:crypto';
import { emptySyncReport, type SyncReport } from '../protocol';
import type { ApplyOptions, ApplyOutcome } from './apply';
import { applyRecorded } from './recordedApply';
import type { UndoRecording } from './recordedApply';
import { pathAndAncestors, type Entry, type Snapshot } from '../files/entry';
import { reconcile } from './reconcile';
import type { Policy, Side } from './reconcile';
import { ignoredOnEitherSide, scanTree } from './scan';
import type { AccessIdentity, ScanResult } from './scan';
import { SyncStateFiles } from './stateFiles';

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
  /**
   * Aborted when nobody waits for the result any more (the CLI was interrupted). Checked before
   * the apply and before each change: the changes under way finish, no new one starts, and the
   * undo step is rolled back, so the host is as it was before the sync (see SyncCancelled).
   */
  signal?: AbortSignal;
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

const MAX_LISTED = 1000;

export function newSyncId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export async function runSyncCycle(options: SyncCycleOptions): Promise<SyncReport> {
  const started = new Date();
  const state = new SyncStateFiles(options.stateDir);
  const report = emptySyncReport({ id: newSyncId(started), policy: options.policy, startedAt: started.toISOString() });
  const finish = async () => {
    report.durationMs = Date.now() - started.getTime();
    await state.appendHistory(report);
    return report;
  };

  options.undo?.log.prepareToRecord();
  if (options.reset) await state.forgetAgreedState();
  const halt = await state.readHalt();
  if (halt) {
    report.halted = { side: halt.side, reason: halt.reason };
    return finish();
  }
  const ancestor = await state.readAncestor();

  const scans = await scanBoth(options, state);
  if ('halt' in scans) {
    await state.writeHalt({ ...scans.halt, at: new Date().toISOString() });
    report.halted = scans.halt;
    return finish();
  }
  const { host, container } = scans;
  report.scanned = { hostFiles: host.stats.files, containerFiles: container.stats.files, hashedFiles: host.stats.hashedFiles + container.stats.hashedFiles };
  for (const [side, scan] of [['host', host], ['container', container]] as const) {
    for (const problem of scan.problems) report.problems.push({ ...problem, side });
    for (const secret of scan.keptOut) report.keptOut.push({ ...secret, side });
  }

  // A path ignored on either side is left alone on both: never overwritten, never deleted, and
  // not created on the side that ignores it either.
  const ignored = ignoredOnEitherSide(host, container);
  const input = { ancestor: withoutIgnored(ancestor, ignored), host: withoutIgnored(host.snapshot, ignored), container: withoutIgnored(container.snapshot, ignored) };
  const oneWayHalt = emptySourceHalt(options.policy, input.host, input.container);
  if (oneWayHalt) {
    await state.writeHalt({ ...oneWayHalt, at: new Date().toISOString() });
    report.halted = oneWayHalt;
    return finish();
  }
  const result = reconcile({ ...input, policy: options.policy });
  report.conflicts = result.conflicts;
  for (const problem of result.problems) {
    if (!report.problems.some((known) => known.path === problem.path && known.side === problem.side)) report.problems.push(problem);
  }
  if (result.halt) {
    await state.writeHalt({ ...result.halt, at: new Date().toISOString() });
    report.halted = result.halt;
    return finish();
  }

  const wanted = options.onlyPaths ? pathsAndParents(options.onlyPaths) : undefined;
  if (wanted) {
    result.changes = result.changes.filter((change) => wanted.has(change.path));
    for (const path of [...result.ancestorUpdates.keys()]) if (!wanted.has(path)) result.ancestorUpdates.delete(path);
  }
  if (options.signal?.aborted) throw new SyncCancelled();
  const cancellable: ApplyOptions['beforeModify'] = async (change, found) => {
    if (options.signal?.aborted) throw new SyncCancelled();
    await options.beforeModify?.(change, found);
  };
  const recorded = await applyRecorded(
    result.changes,
    { roots: options.roots, keepDir: state.keptDirectory(report.id), beforeModify: cancellable, isFatal: (error) => error instanceof SyncCancelled, owners: options.owners },
    options.undo,
    { syncId: report.id, policy: options.policy },
  );
  if (recorded.denied) {
    // The host was rolled back; the agreed state stays as it was, and the next cycle sees what
    // still differs (container-side changes made before the denial now simply agree with the host).
    report.denied = recorded.denied;
    return finish();
  }
  const { outcome } = recorded;
  report.undoStep = recorded.stepId;

  // The new agreed state: reconcile's updates for paths that needed no change, and for paths
  // whose change was carried out. A skipped change leaves its path's ancestor as it was.
  const changed = new Set(result.changes.map((change) => change.path));
  const applied = new Set(outcome.applied.map((change) => change.path));
  const nextAncestor = new Map(input.ancestor);
  for (const [path, entry] of result.ancestorUpdates) {
    if (changed.has(path) && !applied.has(path)) continue;
    if (entry) nextAncestor.set(path, entry);
    else nextAncestor.delete(path);
  }
  await state.writeAncestor(nextAncestor);
  // Paths earlier steps wrote and someone changed since: undoing those steps would destroy that.
  await options.undo?.log.detectBarriers(options.roots.host, { except: recorded.stepId });

  recordOutcome(report, outcome);
  return finish();
}

/** What an apply did, into the cycle's report (the full cycle here and the incremental one). */
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

async function scanBoth(options: SyncCycleOptions, state: SyncStateFiles): Promise<{ host: ScanResult; container: ScanResult } | { halt: { side: Side; reason: string } }> {
  const scanSide = async (side: Side) => {
    try {
      const scan = await scanTree(options.roots[side], { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: await state.readCache(side), accessAs: side === 'host' ? options.hostAccess : undefined });
      await state.writeCache(side, scan.cache);
      return scan;
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
  return new Set(paths.flatMap((path) => pathAndAncestors(path)));
}

function withoutIgnored(snapshot: Snapshot, ignored: (path: string) => boolean): Map<string, Entry> {
  return new Map([...snapshot].filter(([path]) => !ignored(path)));
}
