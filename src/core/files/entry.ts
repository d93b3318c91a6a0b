/**
 * Snapshot entries: what a scan of one side (or the last synchronized state, the ancestor) saw
 * at one path. Pure data, no I/O.
 */

export interface FileEntry {
  readonly kind: 'file';
  readonly size: number;
  readonly mtimeMs: number;
  /** Permission bits. Only the executable bits take part in equality. */
  readonly mode: number;
  /** Content hash; equality is decided by it, never by size or mtime. */
  readonly hash: string;
}

export interface DirectoryEntry {
  readonly kind: 'directory';
  readonly mode: number;
}

export interface SymlinkEntry {
  readonly kind: 'symlink';
  readonly target: string;
}

/**
 * Something exists at this path but cannot be synchronized (unreadable file, socket, device…).
 * Its content is unknown, so it must never be overwritten, deleted or copied anywhere.
 */
export interface UntrackedEntry {
  readonly kind: 'untracked';
  readonly reason: string;
  /** A FIFO, socket or device: a name with no content of its own, so nothing is lost with it. */
  readonly special?: true;
}

export type Entry = FileEntry | DirectoryEntry | SymlinkEntry | UntrackedEntry;

/**
 * The version of a path an undo step saved before a change, which the apply checks the path
 * against before replacing it (ApplyOptions.beforeModify in sync/apply.ts).
 */
export type CapturedVersion = { kind: 'absent' | 'directory' } | { kind: 'file'; hash: string } | { kind: 'symlink'; target: string };

/**
 * Flat map keyed by relative POSIX path ("src/index.ts": forward slashes, no leading "./", no
 * trailing slash; the root itself is not an entry). Every entry's parent must be a directory
 * entry of the same snapshot.
 */
export type Snapshot = ReadonlyMap<string, Entry>;

/**
 * The mode bits the sync reads and writes: setuid, setgid and sticky are never part of an entry,
 * so they never cross, and a program written on one side cannot run with its owner's rights on
 * the other.
 */
export function permissionBits(mode: number): number {
  return mode & 0o777;
}

export function isExecutable(mode: number): boolean {
  return (mode & 0o111) !== 0;
}

/**
 * Content identity. Files compare by hash plus the executable bit (a chmod +x is a change the
 * user wants propagated; other mode bits and timestamps differ between host and container for
 * reasons that are not edits). Directories are equal whatever their mode, since their content
 * is compared child by child. Untracked entries equal nothing, not even themselves: what they
 * hold is unknown, so claiming agreement could let a sync overwrite or forget them.
 */
export function entriesEqual(a: Entry | undefined, b: Entry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  switch (a.kind) {
    case 'file':
      return b.kind === 'file' && a.hash === b.hash && isExecutable(a.mode) === isExecutable(b.mode);
    case 'directory':
      return b.kind === 'directory';
    case 'symlink':
      return b.kind === 'symlink' && a.target === b.target;
    case 'untracked':
      return false;
  }
}

/** "" for a top-level path. */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** 0 for a top-level path. */
export function pathDepth(path: string): number {
  let depth = 0;
  for (const char of path) if (char === '/') depth += 1;
  return depth;
}

/**
 * The folders above `path`, shallowest first: "a/b/c" → ["a", "a/b"]; none for a top-level path
 * (the root "" is not included). The one walk up the tree behind every "is this under an ignored
 * folder", "is a parent no longer a folder" and "recreate the folders above" check.
 */
export function ancestorsOf(path: string): string[] {
  const ancestors: string[] = [];
  for (let slash = path.indexOf('/'); slash >= 0; slash = path.indexOf('/', slash + 1)) ancestors.push(path.slice(0, slash));
  return ancestors;
}

/**
 * Whether a path is in the region an incremental cycle looked at: at or under one of `paths`
 * (a folder stands for its subtree), or a folder above one of them.
 */
export function regionFilter(paths: readonly string[]): (key: string) => boolean {
  const roots = new Set(paths);
  const above = new Set(paths.flatMap((key) => ['', ...ancestorsOf(key)]));
  return (key) => above.has(key) || pathAndAncestors(key).some((folder) => roots.has(folder));
}

/** `ancestorsOf(path)` and then `path` itself: "a/b/c" → ["a", "a/b", "a/b/c"]. */
export function pathAndAncestors(path: string): string[] {
  const keys = ancestorsOf(path);
  keys.push(path);
  return keys;
}

/**
 * Throws on a snapshot the reconciler cannot reason about safely. A path with "..", or a child
 * whose parent is missing, would make subtree decisions (delete this directory?) silently
 * wrong, so it is treated as a scanner or persistence bug rather than guessed around.
 */
export function assertWellFormedSnapshot(snapshot: Snapshot, label: string, options: { allowUntracked: boolean }): void {
  // Runs over every entry of three snapshots each cycle: no splitting, no per-entry arrays.
  for (const [path, entry] of snapshot) {
    if (!hasOnlyNamedSegments(path)) {
      throw new Error(`${label} snapshot: invalid path ${JSON.stringify(path)}`);
    }
    if (!options.allowUntracked && entry.kind === 'untracked') {
      throw new Error(`${label} snapshot: untracked entry at ${JSON.stringify(path)}`);
    }
    const slash = path.lastIndexOf('/');
    if (slash >= 0 && snapshot.get(path.slice(0, slash))?.kind !== 'directory') {
      throw new Error(`${label} snapshot: ${JSON.stringify(path)} has no parent directory`);
    }
  }
}

/** No empty, "." or ".." segment between the slashes. */
function hasOnlyNamedSegments(path: string): boolean {
  const DOT = 46;
  for (let start = 0; ; ) {
    const slash = path.indexOf('/', start);
    const end = slash < 0 ? path.length : slash;
    const length = end - start;
    if (length === 0) return false;
    if (length <= 2 && path.charCodeAt(start) === DOT && (length === 1 || path.charCodeAt(start + 1) === DOT)) return false;
    if (slash < 0) return true;
    start = slash + 1;
  }
}

/** A snapshot with a parent → children index, so subtrees are walked without rescanning it. */
export class SnapshotTree {
  private readonly childIndex = new Map<string, string[]>();

  constructor(private readonly entries: Snapshot) {
    for (const path of entries.keys()) {
      const parent = parentPath(path);
      const siblings = this.childIndex.get(parent);
      if (siblings) siblings.push(path);
      else this.childIndex.set(parent, [path]);
    }
  }

  get = (path: string): Entry | undefined => this.entries.get(path);
  /** Direct children of `path` ("" for the top level), in snapshot order. */
  children = (path: string): readonly string[] => this.childIndex.get(path) ?? [];

  /** The path itself (if present) and all its descendants, parents before children. */
  *subtree(path: string): Generator<string> {
    if (this.entries.has(path)) yield path;
    for (const child of this.children(path)) yield* this.subtree(child);
  }
}
