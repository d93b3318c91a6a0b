// Three-way reconciliation of host and container against the last synced state (the ancestor).
// Pure and synchronous: it only decides, an apply step acts. Modelled on Mutagen's reconciler
// (pkg/synchronization/core/reconcile.go), adapted to flat snapshots.
import { assertWellFormedSnapshot, entriesEqual, pathDepth, SnapshotTree as Tree, type DirectoryEntry, type Entry, type Snapshot } from '../files/entry';
import { SyncPolicy, SyncSide } from '../protocol';

export type Side = (typeof SyncSide.options)[number];

/** The policies, as the protocol declares them. */
export const POLICIES = SyncPolicy.options;
/**
 * two-way-safe: both sides' edits propagate; edits on both sides to the same path are conflicts.
 * host-wins / container-wins / newer-wins (file mtime; ties and non-file pairs stay conflicts):
 * like two-way-safe, but a conflict is resolved for the winner and the loser is kept aside.
 * push / pull: the container becomes the host (push) or the reverse (pull).
 * Under every policy, content that differs from the ancestor is never deleted or overwritten
 * without `keepLoser`, and untracked entries are never touched.
 */
export type Policy = (typeof POLICIES)[number];

/**
 * One entry to write on one side. The apply step must check that the target still matches
 * `expected` (what the scan saw) and skip the change otherwise, so an edit made after the scan is
 * never clobbered.
 *
 * Ordering contract of `ReconcileResult.changes`: all deletions (`next === undefined`) come
 * first, deepest path first; then all creations and replacements, shallowest path first; ties by
 * path (code-unit order), then host before container. Applied in order, a directory is always
 * empty before it is deleted or replaced by a non-directory, and a parent directory always exists
 * before its children are written. There is at most one change per path.
 */
export interface Change {
  path: string;
  side: Side;
  expected: Entry | undefined;
  /** undefined = delete. A directory here means "create the directory", never its children. */
  next: Entry | undefined;
  /** The current content is not in the ancestor: copy it aside before deleting or overwriting. */
  keepLoser?: boolean;
}

/** Both sides changed this path incompatibly; nothing at or below it is changed. */
export interface Conflict { path: string; ancestor?: Entry; host?: Entry; container?: Entry }

export interface Problem { path: string; side: Side; reason: string }

export interface Halt { side: Side; reason: string }

export interface ReconcileInput {
  ancestor: Snapshot;
  host: Snapshot;
  container: Snapshot;
  /** Defaults to 'two-way-safe'. */
  policy?: Policy;
  /**
   * The snapshots hold one region of the trees only (an incremental cycle): an empty side then
   * says nothing about the whole side, so the wiped-side halt is the caller's to check.
   */
  partial?: boolean;
}

export interface ReconcileResult {
  changes: Change[];
  conflicts: Conflict[];
  /** Every untracked entry on either side, sorted by path then side. */
  problems: Problem[];
  /**
   * What the ancestor becomes at each path (undefined = remove) once the change at that path has
   * been applied. Paths without a change are ones where the sides already agree: commit those
   * directly. Sorted by path.
   */
  ancestorUpdates: Map<string, Entry | undefined>;
  /** Set when a scan looks like a wiped or unmounted side: then no changes, conflicts or ancestor updates (problems still listed). */
  halt?: Halt;
}

/**
 * @throws if a snapshot is malformed (see assertWellFormedSnapshot), the ancestor holds an
 * untracked entry, or the policy is unknown.
 */
export function reconcile(input: ReconcileInput): ReconcileResult {
  const policy = input.policy ?? 'two-way-safe';
  if (!(POLICIES as readonly string[]).includes(policy)) throw new Error(`unknown sync policy ${JSON.stringify(policy)}`);
  assertWellFormedSnapshot(input.ancestor, 'ancestor', { allowUntracked: false });
  assertWellFormedSnapshot(input.host, 'host', { allowUntracked: true });
  assertWellFormedSnapshot(input.container, 'container', { allowUntracked: true });

  const problems = [...untrackedProblems('host', input.host), ...untrackedProblems('container', input.container)];
  problems.sort((x, y) => compareStrings(x.path, y.path) || compareSides(x.side, y.side));

  const halt = input.partial ? undefined : safetyHalt(input);
  if (halt) return { changes: [], conflicts: [], problems, ancestorUpdates: new Map(), halt };

  const reconciler = new Reconciler(new Tree(input.ancestor), { host: new Tree(input.host), container: new Tree(input.container) }, policy);
  reconciler.visitChildren('');
  return {
    changes: reconciler.changes.sort(compareChanges),
    conflicts: reconciler.conflicts.sort((x, y) => compareStrings(x.path, y.path)),
    problems,
    ancestorUpdates: new Map([...reconciler.ancestorUpdates].sort(([x], [y]) => compareStrings(x, y))),
  };
}

/** The order documented on `Change`. */
export function compareChanges(x: Change, y: Change): number {
  const xDeletes = x.next === undefined;
  if (xDeletes !== (y.next === undefined)) return xDeletes ? -1 : 1;
  const byDepth = pathDepth(x.path) - pathDepth(y.path);
  return (xDeletes ? -byDepth : byDepth) || compareStrings(x.path, y.path) || compareSides(x.side, y.side);
}

// Code-unit order, not localeCompare: the order must not depend on the machine's locale.
const compareStrings = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
const compareSides = (x: Side, y: Side): number => (x === y ? 0 : x === 'host' ? -1 : 1);

function untrackedProblems(side: Side, snapshot: Snapshot): Problem[] {
  // Over every entry of both sides each cycle: no array per entry.
  const problems: Problem[] = [];
  for (const [path, entry] of snapshot) if (entry.kind === 'untracked') problems.push({ path, side, reason: entry.reason });
  return problems;
}

/**
 * A side whose scan came back empty while the ancestor remembers content is far more likely a
 * failed mount or a wiped volume than a user deleting everything; propagating it would delete
 * the other side wholesale. Untracked entries don't count as content: an unreadable root is
 * still a failed scan.
 */
function safetyHalt({ ancestor, host, container }: ReconcileInput): Halt | undefined {
  if (ancestor.size === 0) return undefined;
  const hostEmpty = !hasTrackedEntry(host);
  if (hostEmpty === !hasTrackedEntry(container)) return undefined;
  const side: Side = hostEmpty ? 'host' : 'container';
  const where = side === 'host' ? 'host folder' : "container's workspace";
  return { side, reason: `the ${side} scan found nothing to sync while ${ancestor.size} entries were synced before; refusing to propagate a mass deletion (is the ${where} missing or unmounted?)` };
}

const hasTrackedEntry = (snapshot: Snapshot): boolean => [...snapshot.values()].some((entry) => entry.kind !== 'untracked');

export const otherSide = (side: Side): Side => (side === 'host' ? 'container' : 'host');
const isDirectory = (entry: Entry | undefined): entry is DirectoryEntry => entry?.kind === 'directory';

/** Whether each side still has an entry at a path once the planned changes are applied. */
type Presence = Record<Side, boolean>;

class Reconciler {
  readonly changes: Change[] = [];
  readonly conflicts: Conflict[] = [];
  readonly ancestorUpdates = new Map<string, Entry | undefined>();

  constructor(
    private readonly ancestor: Tree,
    private readonly sides: Record<Side, Tree>,
    private readonly policy: Policy,
  ) {}

  visitChildren(path: string): Presence[] {
    const children = new Set([...this.ancestor.children(path), ...this.sides.host.children(path), ...this.sides.container.children(path)]);
    return [...children].map((child) => this.visit(child));
  }

  private visit(path: string): Presence {
    const host = this.sides.host.get(path);
    const container = this.sides.container.get(path);
    // Already reported as problems; with unknown content there is no safe decision to make here.
    if (host?.kind === 'untracked' || container?.kind === 'untracked') return presence(host, container);
    if (host?.kind === 'directory' && container?.kind === 'directory') {
      this.setAncestor(path, host);
      this.visitChildren(path);
      return { host: true, container: true };
    }
    if (entriesEqual(host, container)) {
      this.ancestorBecomes(path, 'host');
      return presence(host, container);
    }
    if (host === undefined && isDirectory(container)) return this.visitHalfDirectory(path, 'host', container);
    if (container === undefined && isDirectory(host)) return this.visitHalfDirectory(path, 'container', host);
    return this.resolve(path);
  }

  /**
   * One side has no entry where the other has a directory. Rather than deciding for the whole
   * subtree (Mutagen re-creates the entire directory when anything inside it changed), each
   * child is reconciled on its own as if the missing side held an empty directory: untouched
   * children follow a deletion, edited or new ones survive it. The directory itself is then
   * created on the missing side if anything must live in it there, kept where it is if something
   * must stay in it (an untracked entry), and deleted otherwise.
   */
  private visitHalfDirectory(path: string, missing: Side, directory: DirectoryEntry): Presence {
    const present = otherSide(missing);
    const children = this.visitChildren(path);
    if (children.some((child) => child[missing]) || this.directoryIsCreation(path, missing)) {
      this.change(missing, path, undefined, directory);
      this.setAncestor(path, directory);
      return { host: true, container: true };
    }
    if (children.some((child) => child[present])) return { host: missing !== 'host', container: missing !== 'container' };
    this.change(present, path, directory, undefined);
    this.setAncestor(path, undefined);
    return { host: false, container: false };
  }

  /** Whether a directory present on one side only is new content rather than a deletion to follow. */
  private directoryIsCreation(path: string, missing: Side): boolean {
    if (this.policy === 'push') return missing === 'container';
    if (this.policy === 'pull') return missing === 'host';
    return !isDirectory(this.ancestor.get(path));
  }

  /** The sides disagree at `path` and at least one of them is not a directory. */
  private resolve(path: string): Presence {
    if (this.policy === 'push') return this.propagate(path, 'host');
    if (this.policy === 'pull') return this.propagate(path, 'container');
    if (!this.differs('container', path, true)) return this.propagate(path, 'host');
    if (!this.differs('host', path, true)) return this.propagate(path, 'container');
    // Both changed. A side that only deleted things loses: what it would lose again is exactly
    // what the ancestor already had, so the other side's new content can be restored safely.
    if (!this.differs('host', path, false)) return this.propagate(path, 'container');
    if (!this.differs('container', path, false)) return this.propagate(path, 'host');
    const winner = this.conflictWinner(path);
    return winner ? this.propagate(path, winner) : this.conflict(path);
  }

  private conflictWinner(path: string): Side | undefined {
    if (this.policy === 'host-wins') return 'host';
    if (this.policy === 'container-wins') return 'container';
    const host = this.sides.host.get(path);
    const container = this.sides.container.get(path);
    // mtimes are only comparable between two files; anything else stays a conflict.
    if (this.policy !== 'newer-wins' || host?.kind !== 'file' || container?.kind !== 'file' || host.mtimeMs === container.mtimeMs) return undefined;
    return host.mtimeMs > container.mtimeMs ? 'host' : 'container';
  }

  /**
   * Whether `side`'s subtree at `path` differs from the ancestor's; without `countDeletions`,
   * only entries the side has and the ancestor lacks count. Untracked entries always differ.
   */
  private differs(side: Side, path: string, countDeletions: boolean): boolean {
    const tree = this.sides[side];
    const paths = countDeletions ? new Set([...this.ancestor.subtree(path), ...tree.subtree(path)]) : tree.subtree(path);
    for (const p of paths) if (!entriesEqual(this.ancestor.get(p), tree.get(p))) return true;
    return false;
  }

  /** Makes the other side's subtree at `path` match `source`'s (at most one of them is a directory). */
  private propagate(path: string, source: Side): Presence {
    const target = otherSide(source);
    const from = this.sides[source];
    const to = this.sides[target];
    const current = to.get(path);
    const next = from.get(path);
    const removed = isDirectory(current) ? [...to.subtree(path)].slice(1) : [];
    // An untracked entry can't be deleted, so its directory can't be replaced either.
    if (removed.some((p) => to.get(p)?.kind === 'untracked')) return this.conflict(path);
    for (const p of removed) this.change(target, p, to.get(p), undefined);
    this.change(target, path, current, next);
    const added = isDirectory(next) ? [...from.subtree(path)].slice(1) : [];
    for (const p of added) if (from.get(p)?.kind !== 'untracked') this.change(target, p, undefined, from.get(p));
    this.ancestorBecomes(path, source);
    return { host: next !== undefined, container: next !== undefined };
  }

  private conflict(path: string): Presence {
    const ancestor = this.ancestor.get(path);
    const host = this.sides.host.get(path);
    const container = this.sides.container.get(path);
    this.conflicts.push({ path, ...(ancestor && { ancestor }), ...(host && { host }), ...(container && { container }) });
    return presence(host, container);
  }

  /**
   * keepLoser is derived here for every change, whatever the policy, so that "content the
   * ancestor never saw is copied aside before it is destroyed" holds by construction.
   */
  private change(side: Side, path: string, expected: Entry | undefined, next: Entry | undefined): void {
    const keepLoser = (expected?.kind === 'file' || expected?.kind === 'symlink') && !entriesEqual(this.ancestor.get(path), expected);
    this.changes.push({ path, side, expected, next, ...(keepLoser && { keepLoser }) });
  }

  /**
   * The ancestor's subtree at `path` becomes `source`'s. Where the source is untracked the
   * other side has nothing (untracked entries are never copied), so nothing is agreed there and
   * the ancestor forgets the path: a stale entry could later read as "the other side deleted it".
   */
  private ancestorBecomes(path: string, source: Side): void {
    const tree = this.sides[source];
    for (const p of new Set([...this.ancestor.subtree(path), ...tree.subtree(path)])) {
      const entry = tree.get(p);
      this.setAncestor(p, entry?.kind === 'untracked' ? undefined : entry);
    }
  }

  /** Equal-content entries are left alone: the ancestor only needs content identity. */
  private setAncestor(path: string, entry: Entry | undefined): void {
    if (!entriesEqual(this.ancestor.get(path), entry)) this.ancestorUpdates.set(path, entry);
  }
}

function presence(host: Entry | undefined, container: Entry | undefined): Presence {
  return { host: host !== undefined, container: container !== undefined };
}
