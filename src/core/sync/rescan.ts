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
import { lstatSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { isExecutable, parentPath, pathAndAncestors, type Entry } from '../files/entry';
import { joinBytes } from '../files/pathCodec';
import { mayRead, type AccessIdentity } from './scan';
import type { ScanCacheTable } from './scanCacheTable';
import { SecretAllowList, secretByName } from './secrets';
import type { Side } from './reconcile';
import { WalkedKind, WalkedStat, walkTree, type WalkedTree } from './treeWalk';
import { walkTreeOnWorker } from './treeWalkWorker';

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
  store: { ancestor: ReadonlyMap<string, Entry>; host: ScanCacheTable; container: ScanCacheTable };
  /** From this many agreed paths on, the container's tree is walked on a worker thread (default PARALLEL_WALK_MIN_PATHS). */
  parallelWalkMinPaths?: number;
}

/**
 * Below this many agreed paths, walking the container's tree after the host's costs less than
 * starting a thread to walk it at the same time. Measured by bench:scale, a thread for every
 * rescan against none: 80 against 58 ms at 2,000 files, 196 against 173 ms at 10,000, 1,608
 * against 1,810-2,225 ms at 100,000.
 */
export const PARALLEL_WALK_MIN_PATHS = 20_000;

/**
 * The paths where either side differs from the agreed state (a folder standing for its subtree),
 * and the paths the sync leaves out and reports (a secret, what the host's user cannot read, a
 * socket: nothing agreed on), which a cycle looks at again so that what it reports stays current.
 */
export type RescanResult = { changed: string[]; leftOut: string[] } | { fullCycleNeeded: string };

/**
 * In a large tree the container's is walked on a worker thread while this thread walks the
 * host's (as rsync's sender and receiver walk theirs at once) and then judges it against the
 * store; the container's walk is judged once the worker hands it over.
 */
export async function findChangedPaths(options: RescanOptions): Promise<RescanResult> {
  const parallel = options.store.ancestor.size >= (options.parallelWalkMinPaths ?? PARALLEL_WALK_MIN_PATHS);
  const containerWalk = parallel ? walkTreeOnWorker({ root: options.roots.container, excludes: options.excludes }) : undefined;
  const found = { changed: new Set<string>(), leftOut: new Set<string>() };
  for (const side of ['host', 'container'] as const) {
    const walk = side === 'container' && containerWalk ? await containerWalk : await walkTree(options.roots[side], options.excludes, yieldToEventLoop);
    if ('problem' in walk) return { fullCycleNeeded: `${options.roots[side]}: ${walk.problem}` };
    const judge = new Judgement(options.roots[side], options.store.ancestor, options.store[side], found, new SecretAllowList(options.allowSecrets ?? []), side === 'host' ? options.hostAccess : undefined);
    const verdict = await judge.run(walk);
    if (verdict !== undefined) return { fullCycleNeeded: `${options.roots[side]}: ${verdict}` };
  }
  return { changed: [...found.changed].sort(), leftOut: [...found.leftOut].filter((key) => !found.changed.has(key)).sort() };
}

/** One side's walk judged against the store; adds what differs to `changed`, what is left out to `leftOut`. */
class Judgement {
  /** Agreed paths met on this side, to tell whether one was not. */
  private agreedMet = 0;
  private readonly changed: Set<string>;
  private readonly leftOut: Set<string>;

  constructor(
    private readonly root: string,
    private readonly ancestor: ReadonlyMap<string, Entry>,
    private readonly cache: ScanCacheTable,
    found: { changed: Set<string>; leftOut: Set<string> },
    private readonly allowedSecrets: SecretAllowList,
    private readonly accessAs: AccessIdentity | undefined,
  ) {
    this.changed = found.changed;
    this.leftOut = found.leftOut;
  }

  /**
   * undefined when every difference is in `changed`; otherwise why the walk cannot tell. A path
   * that differs and is not an agreed folder stands for its subtree (nothing below it is agreed),
   * as does a folder left out: what is below either is skipped. The walk lists a folder's own
   * path before what is in it, so a skipped folder is known before its content comes.
   */
  async run(walk: WalkedTree): Promise<string | undefined> {
    const skipped = new Set<string>();
    const stat = new WalkedStat(walk.numbers);
    for (let index = 0; index < walk.paths.length; index += 1) {
      if (index % YIELD_EVERY === YIELD_EVERY - 1) await yieldToEventLoop();
      const path = walk.paths[index]!;
      stat.moveTo(index);
      if (skipped.size > 0 && skipped.has(parentPath(path))) {
        if (stat.isDirectory()) skipped.add(path);
        continue;
      }
      const agreed = this.ancestor.get(path);
      if (agreed !== undefined) this.agreedMet += 1;
      const same = stat.kind !== WalkedKind.unknown && this.sameAsAgreed(path, stat, walk.targets.get(index), agreed);
      if (same === true) continue;
      if (stat.isDirectory() && (same === 'left-out' || agreed?.kind !== 'directory')) skipped.add(path);
      if (same === 'left-out') this.leftOut.add(path);
      else this.changed.add(path);
      if (this.changed.size + this.leftOut.size > RESCAN_MAX_CHANGED_PATHS) return `more than ${RESCAN_MAX_CHANGED_PATHS} paths differ or are left out`;
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
      if (checked % YIELD_EVERY === 0) await yieldToEventLoop();
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

  /**
   * Whether what is at `path` is the agreed entry, as far as metadata can tell; 'left-out' for
   * what the scan would not put in its snapshot and nothing agreed on (a secret, something the
   * host's user cannot read, a socket).
   */
  private sameAsAgreed(path: string, stat: WalkedStat, target: string | undefined, agreed: Entry | undefined): boolean | 'left-out' {
    const leftOut = agreed === undefined ? 'left-out' : false;
    const isDirectory = stat.kind === WalkedKind.directory;
    if (this.accessAs && (isDirectory || stat.kind === WalkedKind.file) && !mayRead(stat, this.accessAs)) return leftOut;
    if (isDirectory) return agreed?.kind === 'directory';
    if (stat.kind === WalkedKind.file) {
      if (secretByName(path) !== undefined && !this.allowedSecrets.allows(path)) return leftOut;
      if (!this.cache.holds(path, stat)) return false;
      if (this.cache.secretOf(path) !== false && !this.allowedSecrets.allows(path)) return leftOut;
      return agreed?.kind === 'file' && agreed.hash === this.cache.hashOf(path) && isExecutable(agreed.mode) === isExecutable(stat.mode);
    }
    if (stat.kind === WalkedKind.symlink) return agreed?.kind === 'symlink' && target === agreed.target;
    return leftOut; // a FIFO, socket or device: never synchronized
  }
}
