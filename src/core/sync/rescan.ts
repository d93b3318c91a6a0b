// The periodic full rescan of continuous sync, at the cost of a walk. Events are hints and the
// scan is the truth, but the truth is nearly always "nothing changed": so, as Syncthing's
// scanner does against its index, the rescan reads every path's metadata on both sides and
// compares it with what the state store already holds (the scan cache's size, times, inode and
// mode; the agreed entry's kind, hash, executable bit or link target), without hashing, building
// snapshots or reconciling. Only the paths that differ go on, as an incremental cycle's dirty
// paths, through the same scan, reconcile and checked apply as every other change.
//
// Where the walk cannot judge alone it says so and the caller runs the full cycle: an agreed
// path it did not meet though it is still there (now ignored, reached through a folder that
// became a link), or more differences than an incremental cycle handles well. Agreed paths that
// are gone are differences like any other (a deletion the watchers missed, a polled host).
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { isExecutable, pathAndAncestors, type Entry } from '../files/entry';
import { joinBytes, nameFromBytes } from '../files/pathCodec';
import { IgnoreRules } from './ignore';
import { cacheHolds, mayRead, readGitignore, type AccessIdentity, type ScanCache } from './scan';
import { SecretAllowList, secretByName } from './secrets';
import type { Side } from './reconcile';

/** Past this many differing paths, the full cycle is cheaper than judging each region alone. */
export const RESCAN_MAX_CHANGED_PATHS = 1000;
/** Entries walked between two yields to the event loop, so that the owner keeps answering its clients. */
const YIELD_EVERY = 2000;

export interface RescanOptions {
  roots: Record<Side, string>;
  excludes: readonly string[];
  allowSecrets?: readonly string[];
  /** The host tree is judged with this user's rights only (see ScanOptions.accessAs). */
  hostAccess?: AccessIdentity;
  store: { ancestor: ReadonlyMap<string, Entry>; host: ScanCache; container: ScanCache };
}

/** The paths where either side differs from the agreed state (a folder standing for its subtree). */
export type RescanResult = { changed: string[] } | { fullCycleNeeded: string };

export async function findChangedPaths(options: RescanOptions): Promise<RescanResult> {
  const changed = new Set<string>();
  for (const side of ['host', 'container'] as const) {
    const walk = new ChangeWalk(options.roots[side], options.store.ancestor, options.store[side], changed, new SecretAllowList(options.allowSecrets ?? []), side === 'host' ? options.hostAccess : undefined);
    const verdict = await walk.run(IgnoreRules.create(options.excludes));
    if (verdict !== undefined) return { fullCycleNeeded: `${options.roots[side]}: ${verdict}` };
  }
  return { changed: [...changed].sort() };
}

/** One side's walk; adds what differs to `changed`. */
class ChangeWalk {
  /** Agreed paths met on this side, to tell whether one was not. */
  private agreedMet = 0;
  private visits = 0;

  constructor(
    private readonly root: string,
    private readonly ancestor: ReadonlyMap<string, Entry>,
    private readonly cache: ScanCache,
    private readonly changed: Set<string>,
    private readonly allowedSecrets: SecretAllowList,
    private readonly accessAs: AccessIdentity | undefined,
  ) {}

  /** undefined when every difference is in `changed`; otherwise why the walk cannot tell. */
  async run(rootRules: IgnoreRules): Promise<string | undefined> {
    // Folders still to list, each with its rules and its path as the file system is given it:
    // a string while every name on the way is valid UTF-8 (the cheaper call), else bytes, as a
    // name that is not valid UTF-8 is escaped in the path string (pathCodec).
    const folders: Folder[] = [{ path: '', fsPath: this.root, rules: rootRules }];
    for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
      const listed = listFolder(folder.fsPath);
      if (typeof listed === 'string') return `cannot list ${folder.path || 'the root'}: ${listed}`;
      let rules = folder.rules;
      if (listed.some((child) => child.name === '.gitignore')) {
        const text = readGitignore(childPath(folder.fsPath, GITIGNORE));
        if (typeof text === 'object') return `cannot read ${folder.path ? `${folder.path}/` : ''}.gitignore: ${text.unreadable}`;
        if (text !== undefined) rules = rules.withGitignore(folder.path, text);
      }
      const prefix = folder.path === '' ? '' : `${folder.path}/`;
      for (const child of listed) {
        this.visits += 1;
        if (this.visits % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        const path = prefix + child.name;
        const fsPath = childPath(folder.fsPath, child.bytes ?? child.name);
        const descend = this.judge(path, fsPath, rules);
        if (descend === 'many') return `more than ${RESCAN_MAX_CHANGED_PATHS} paths differ`;
        if (descend) folders.push({ path, fsPath, rules });
      }
    }
    if (this.agreedMet === this.ancestor.size) return undefined;
    return this.findGone();
  }

  /**
   * Some agreed paths were not met. Those gone from this side (deleted behind the watchers'
   * back, or while the host is polled) are differences like any other: one lstat per agreed
   * path finds them, a folder standing for what was under it. One still there but not met (now
   * ignored, reached through a folder that became a link) the walk cannot judge.
   */
  private async findGone(): Promise<string | undefined> {
    let gone = 0;
    let checked = 0;
    for (const key of this.ancestor.keys()) {
      checked += 1;
      if (checked % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      let exists: boolean;
      try {
        exists = lstatSync(joinBytes(this.root, key), { throwIfNoEntry: false }) !== undefined;
      } catch {
        exists = false; // ENOTDIR: a folder above it is not one any more
      }
      if (exists) continue;
      gone += 1;
      if (pathAndAncestors(key).some((folder) => folder !== key && this.changed.has(folder))) continue;
      this.changed.add(key);
      if (this.changed.size > RESCAN_MAX_CHANGED_PATHS) return `more than ${RESCAN_MAX_CHANGED_PATHS} paths differ`;
    }
    const unmet = this.ancestor.size - this.agreedMet - gone;
    return unmet === 0 ? undefined : `${unmet} agreed path(s) not met by the walk, though still there`;
  }

  /** Notes whether `path` differs from its agreed entry; true: a folder to walk into. */
  private judge(path: string, fsPath: string | Buffer, rules: IgnoreRules): boolean | 'many' {
    let stat: Stats | undefined;
    try {
      stat = lstatSync(fsPath, { throwIfNoEntry: false });
    } catch {
      stat = undefined; // cannot be read: the scan says how, when the path is looked at
    }
    const isDirectory = stat?.isDirectory() ?? false;
    if (stat !== undefined && rules.ignores(path, isDirectory)) return false; // an agreed one is then "not found"
    const agreed = this.ancestor.get(path);
    if (agreed !== undefined) this.agreedMet += 1;
    const same = stat !== undefined && this.sameAsAgreed(path, fsPath, stat, agreed);
    if (same === 'left-out') return false;
    if (!same) {
      this.changed.add(path);
      // A folder not agreed on has no agreed subtree: its region is its whole subtree, so nothing below is walked.
      return this.changed.size > RESCAN_MAX_CHANGED_PATHS ? 'many' : isDirectory && agreed?.kind === 'directory';
    }
    return isDirectory;
  }

  /**
   * Whether what is at `path` is the agreed entry, as far as metadata can tell; 'left-out' for
   * what the scan would not put in its snapshot and nothing agreed on (a secret, something the
   * host's user cannot read, a socket).
   */
  private sameAsAgreed(path: string, fsPath: string | Buffer, stat: Stats, agreed: Entry | undefined): boolean | 'left-out' {
    const leftOut = agreed === undefined ? 'left-out' : false;
    if (this.accessAs && (stat.isDirectory() || stat.isFile()) && !mayRead(stat, this.accessAs)) return leftOut;
    if (stat.isDirectory()) return agreed?.kind === 'directory';
    if (stat.isFile()) {
      if (secretByName(path) !== undefined && !this.allowedSecrets.allows(path)) return leftOut;
      const cached = this.cache.get(path);
      if (cached === undefined || !cacheHolds(cached, stat)) return false;
      if (cached.secret !== false && !this.allowedSecrets.allows(path)) return leftOut;
      return agreed?.kind === 'file' && agreed.hash === cached.hash && isExecutable(agreed.mode) === isExecutable(stat.mode);
    }
    if (stat.isSymbolicLink()) {
      if (agreed?.kind !== 'symlink') return false;
      try {
        return nameFromBytes(readlinkSync(fsPath, { encoding: 'buffer' })) === agreed.target;
      } catch {
        return false;
      }
    }
    return leftOut; // a FIFO, socket or device: never synchronized
  }
}

interface Folder { path: string; fsPath: string | Buffer; rules: IgnoreRules }
/** A listed name: as a string (escaped, if it is not valid UTF-8), with its bytes when they differ. */
interface Child { name: string; bytes?: Buffer }

const SLASH = Buffer.from('/');
const GITIGNORE = '.gitignore';

/** The folder's names, or why it cannot be listed. */
function listFolder(fsPath: string | Buffer): Child[] | string {
  try {
    if (typeof fsPath === 'string') {
      const names = readdirSync(fsPath);
      // U+FFFD stands in for bytes that are not valid UTF-8 (or is itself in a name): read the bytes.
      if (!names.some((name) => name.includes('\uFFFD'))) return names.map((name) => ({ name }));
    }
    return readdirSync(fsPath, { encoding: 'buffer' }).map((bytes) => (isUtf8(bytes) ? { name: bytes.toString() } : { name: nameFromBytes(bytes), bytes }));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** A child's file-system path: a string while both parts are strings. */
function childPath(folder: string | Buffer, name: string | Buffer): string | Buffer {
  if (typeof folder === 'string' && typeof name === 'string') return `${folder}/${name}`;
  return Buffer.concat([typeof folder === 'string' ? Buffer.from(folder) : folder, SLASH, typeof name === 'string' ? Buffer.from(name) : name]);
}
