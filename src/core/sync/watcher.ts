// Watching one synced tree: file-system events become batches of dirty relative paths for an
// incremental cycle. Events are hints, the scan is the truth: a path reported here is looked at
// on both sides, a folder reported here has its subtree rescanned, and whatever the watcher cannot
// vouch for (an error, the watch limit, a root that vanished) becomes "rescan everything".
//
// One inotify watch per folder through Node's own fs.watch (non-recursive): no dependency to
// ship in the agent's bundle or the image, and the same watch count as @parcel/watcher (see the
// measurement in docs/ARCHITECTURE.md). Ignored folders, `.git` and node_modules get no watch.
import { EventEmitter } from 'node:events';
import { promises as fs, watch, type Dirent, type FSWatcher } from 'node:fs';
import { pathAndAncestors } from '../files/entry';
import { lstatSyncIfReadable } from '../files/fsEntry';
import { forEachLimited } from '../limited';
import { IgnoreRules } from './ignore';
import { STAGING_THREADS_MIN_FILES } from './stagingThreads';
import { bytesFromName, joinBytes, nameFromBytes } from '../files/pathCodec';

export interface DirtyBatch {
  /** Relative POSIX paths (snapshot keys) that may have changed; a folder stands for its subtree. */
  paths: string[];
  /** The watcher cannot say what changed (an error, polling, the root itself changed): run a full cycle. */
  rescan: boolean;
}

export type WatchDegradedCode = 'WATCH_LIMIT' | 'WATCH_ERROR' | 'WATCH_POLLING';
export interface WatchDegraded { code: WatchDegradedCode; message: string }

export interface TreeWatcherOptions {
  /** User patterns (gitignore syntax), as for scanTree: what the scan ignores gets no watch. */
  excludes: readonly string[];
  onBatch: (batch: DirtyBatch) => void;
  /**
   * Called once per batch when its events reach BURST_EVENTS, before the batch is delivered: a
   * burst is under way, and what its cycle will need (the staging threads) can get ready during
   * the quiet period rather than in the cycle.
   */
  onBurst?: () => void;
  /** How long the tree must stay quiet before a batch is delivered (writes settle first). */
  quietMs?: number;
  /** A batch is delivered after this long even if events keep coming (a long `npm install`). */
  maxDelayMs?: number;
  /** Never use watches: deliver a rescan batch every pollIntervalMs (the "poll" setting). */
  poll?: boolean;
  pollIntervalMs?: number;
  /**
   * Folder names that are synced but not watched (e.g. node_modules: thousands of folders that
   * change by whole installs). The folder itself appearing or going is still seen from its
   * parent; changes inside it arrive with the periodic full rescan.
   */
  unwatchedNames?: readonly string[];
}

export const DEFAULT_QUIET_MS = 100;
/** Events in one batch that make it a burst (see onBurst): as many as an apply needs files to stage on the staging threads. */
export const BURST_EVENTS = STAGING_THREADS_MIN_FILES;
export const DEFAULT_MAX_DELAY_MS = 1000;
export const DEFAULT_POLL_INTERVAL_MS = 2000;
const WALK_CONCURRENCY = 8;
export const DEFAULT_UNWATCHED_NAMES: readonly string[] = ['node_modules'];

const WATCH_LIMIT_MESSAGE = 'the system limit on file watches was reached (raise it with: sysctl fs.inotify.max_user_watches=524288); polling for changes instead';

/** The folder a watch is of, kept on the watch itself so that one pair of listeners serves them all. */
const WATCHED_FOLDER = Symbol('watched folder');
type FolderWatch = FSWatcher & { [WATCHED_FOLDER]: string };

/**
 * Events: 'degraded' (WatchDegraded), once per cause: the watcher now polls or could not watch
 * everything. Call start() once, close() when done.
 */
export class TreeWatcher extends EventEmitter<{ degraded: [WatchDegraded] }> {
  private readonly watches = new Map<string, FolderWatch>();
  /**
   * The listeners of every watch, made once: a pair of closures per watch (and the scope they
   * keep) took about 3 MB at 20,000 watched folders. An emitter calls a listener with itself as
   * `this`, which names the folder.
   */
  private readonly onWatchChange: (this: FolderWatch, event: string, name: Buffer | null) => void;
  private readonly onWatchError: (this: FolderWatch, error: NodeJS.ErrnoException) => void;
  private readonly rules = new Map<string, IgnoreRules>();
  private readonly dirty = new Set<string>();
  private rescan = false;
  /** Events since the last batch was delivered (counted up to BURST_EVENTS). */
  private events = 0;
  private quietTimer: NodeJS.Timeout | undefined;
  private maxDelayTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly degradedSaid = new Set<WatchDegradedCode>();
  private closed = false;
  /** dev:ino of the root folder watched; undefined while it is missing. */
  private rootIdentity: string | undefined;
  private checkingRoot = false;
  private rootRetry: NodeJS.Timeout | undefined;
  private readonly rootBytes: Buffer;
  private readonly quietMs: number;
  private readonly maxDelayMs: number;
  private readonly unwatched: ReadonlySet<string>;

  constructor(readonly root: string, private readonly options: TreeWatcherOptions) {
    super();
    const onEvent = (folder: string, name: Buffer | null) => this.onEvent(folder, name);
    const watchFailed = (watch: FolderWatch, error: NodeJS.ErrnoException) => this.watchFailed(watch, error);
    this.onWatchChange = function (this: FolderWatch, _event, name) {
      onEvent(this[WATCHED_FOLDER], name);
    };
    this.onWatchError = function (this: FolderWatch, error) {
      watchFailed(this, error);
    };
    this.rootBytes = bytesFromName(root);
    this.quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.unwatched = new Set(options.unwatchedNames ?? DEFAULT_UNWATCHED_NAMES);
  }

  /** Whether events come from watches (false: polling). */
  get watching(): boolean {
    return this.pollTimer === undefined && !this.closed;
  }

  /** Number of folders watched. */
  get watchCount(): number {
    return this.watches.size;
  }

  /** Resolves once every folder is watched (or polling has started). */
  async start(): Promise<void> {
    if (this.options.poll) {
      this.startPolling({ code: 'WATCH_POLLING', message: 'watching is off by setting; polling for changes' });
      return;
    }
    this.rootIdentity = await this.readRootIdentity();
    await this.watchSubtree('', IgnoreRules.create(this.options.excludes));
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.watches.values()) watcher.close();
    this.watches.clear();
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxDelayTimer);
    clearInterval(this.pollTimer);
    clearTimeout(this.rootRetry);
  }

  /** Delivers what has collected now, without waiting for the quiet period (e.g. before a shutdown). */
  flush(): void {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxDelayTimer);
    this.quietTimer = undefined;
    this.maxDelayTimer = undefined;
    this.events = 0;
    if (this.dirty.size === 0 && !this.rescan) return;
    const batch: DirtyBatch = { paths: [...this.dirty].sort(), rescan: this.rescan };
    this.dirty.clear();
    this.rescan = false;
    if (!this.closed) this.options.onBatch(batch);
  }

  // --- watches --------------------------------------------------------------------------------

  /**
   * Watches `folder` and every folder below it that is neither ignored nor unwatched. Rules
   * are read as the scan reads them (every .gitignore on the way down), so what the scan leaves
   * alone costs no watch. Watch first, list second: a file created in between is still seen.
   */
  private async watchSubtree(top: string, inherited: IgnoreRules): Promise<void> {
    // Level by level, a bounded number of folders at once: the listings in flight stay few.
    let level: Array<[string, IgnoreRules]> = [[top, inherited]];
    while (level.length > 0) {
      const next: Array<[string, IgnoreRules]> = [];
      await forEachLimited(level, WALK_CONCURRENCY, async ([folder, rules]) => {
        next.push(...(await this.watchFolder(folder, rules)));
      });
      level = next;
    }
  }

  /** Watches one folder; its subfolders to watch next, with their rules. */
  private async watchFolder(folder: string, inherited: IgnoreRules): Promise<Array<[string, IgnoreRules]>> {
    if (this.closed || this.pollTimer !== undefined) return [];
    // Its parent's watch went while the walk was on its way down: so did this folder's subtree.
    if (folder !== '' && !this.watches.has(parentOf(folder))) return [];
    if (!this.watches.has(folder) && !this.addWatch(folder)) return [];
    let children: Dirent<Buffer>[];
    try {
      children = await fs.readdir(joinBytes(this.rootBytes, folder), { encoding: 'buffer', withFileTypes: true });
    } catch {
      this.closeSubtree(folder);
      this.markDirty(folder);
      return [];
    }
    let rules = inherited;
    if (children.some((child) => child.name.toString() === '.gitignore')) {
      const text = await fs.readFile(joinBytes(this.rootBytes, childPath(folder, '.gitignore')), 'utf8').catch(() => undefined);
      if (text !== undefined) rules = rules.withGitignore(folder, text);
    }
    this.rules.set(folder, rules);
    const subfolders: Array<[string, IgnoreRules]> = [];
    for (const child of children) {
      const name = nameFromBytes(child.name);
      const path = childPath(folder, name);
      if (this.unwatched.has(name)) continue;
      // The listing's file types spare an lstat per entry; a file system that gives none is asked.
      const isDirectory = child.isDirectory() || (isUnknownType(child) && (await fs.lstat(joinBytes(this.rootBytes, path)).catch(() => undefined))?.isDirectory() === true);
      if (isDirectory && !rules.ignores(path, true)) subfolders.push([path, rules]);
    }
    return subfolders;
  }

  /** false when the folder could not be watched (and the watcher may have degraded to polling). */
  private addWatch(folder: string): boolean {
    let watcher: FolderWatch;
    try {
      watcher = Object.assign(watch(joinBytes(this.rootBytes, folder), { encoding: 'buffer', persistent: true }), { [WATCHED_FOLDER]: folder });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') {
        this.startPolling({ code: 'WATCH_LIMIT', message: WATCH_LIMIT_MESSAGE });
      } else if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        // Cannot watch this folder (permissions…): its changes arrive with the periodic full rescan.
        this.degrade({ code: 'WATCH_ERROR', message: `cannot watch ${folder || 'the root'}: ${code ?? (error as Error).message}` });
        this.markRescan();
      }
      return false;
    }
    watcher.on('change', this.onWatchChange);
    watcher.on('error', this.onWatchError);
    this.watches.set(folder, watcher);
    return true;
  }

  /**
   * A watch that fails later (the folder went, the limit…): what it would have said is unknown.
   * Its subtree's watches go with it, so that the watched folders still hang from the root.
   */
  private watchFailed(watcher: FolderWatch, error: NodeJS.ErrnoException): void {
    const folder = watcher[WATCHED_FOLDER];
    watcher.close();
    if (this.watches.get(folder) === watcher) this.closeSubtree(folder);
    if (error.code === 'ENOSPC') this.startPolling({ code: 'WATCH_LIMIT', message: WATCH_LIMIT_MESSAGE });
    else this.markRescan();
  }

  private onEvent(folder: string, nameBytes: Buffer | null): void {
    if (this.closed) return;
    if (this.events < BURST_EVENTS && ++this.events === BURST_EVENTS) this.options.onBurst?.();
    // The root's own watch fires when the root itself is deleted or moved (and for its children).
    if (folder === '') void this.checkRoot();
    if (nameBytes === null) {
      // The kernel did not say which entry: the whole folder is suspect.
      this.markDirty(folder);
      return;
    }
    const path = childPath(folder, nameFromBytes(nameBytes));
    const rules = this.rules.get(folder);
    // Ignored whatever it is (file or folder): nothing the sync would look at.
    if (rules?.ignores(path, false) && rules.ignores(path, true)) return;
    this.markDirty(path);
    void this.followStructure(folder, path);
  }

  /**
   * Keeps the watches matching the tree: a new folder is watched (and its subtree reported, since
   * files may have been written in it before its watch existed), a folder that went has its
   * watches closed, and a changed .gitignore re-reads the rules below it.
   */
  private async followStructure(folder: string, path: string): Promise<void> {
    if (this.closed) return;
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (name === '.gitignore') {
      this.markDirty(folder);
      const parentRules = this.rules.get(parentOf(folder)) ?? IgnoreRules.create(this.options.excludes);
      await this.rewatchSubtree(folder, folder === '' ? IgnoreRules.create(this.options.excludes) : parentRules);
      return;
    }
    // Synchronous: during an apply every file put in place brings events, and a trip to libuv's
    // pool per event cost the agent's thread more than the call (docs/ARCHITECTURE.md, Watching).
    if (lstatSyncIfReadable(joinBytes(this.rootBytes, path))?.isDirectory()) {
      const rules = this.rules.get(folder);
      if (!this.watches.has(path) && !this.unwatched.has(name) && rules && !rules.ignores(path, true)) {
        await this.watchSubtree(path, rules);
      }
      return;
    }
    // The watched folders hang together from the root (a folder is watched only once its parent
    // is, and a watch that goes takes its subtree with it), so a path not watched itself has no
    // watch below it: one lookup, not a pass over every watch for each event.
    if (this.watches.has(path)) this.closeSubtree(path);
  }

  /** After a .gitignore changed: folders it now ignores lose their watch, folders it frees get one. */
  private async rewatchSubtree(folder: string, inherited: IgnoreRules): Promise<void> {
    this.closeSubtree(folder);
    await this.watchSubtree(folder, inherited);
  }

  private closeSubtree(path: string): void {
    const prefix = path === '' ? '' : `${path}/`;
    for (const [folder, watcher] of this.watches) {
      if (folder === path || folder.startsWith(prefix)) {
        watcher.close();
        this.watches.delete(folder);
        this.rules.delete(folder);
      }
    }
  }

  /**
   * A root deleted, or replaced by another folder (a wiped /workspace recreated), leaves every
   * watch on the old folders: they would never fire again. Then everything is rescanned and the
   * new root is watched from scratch, as soon as it exists.
   */
  private async checkRoot(): Promise<void> {
    if (this.checkingRoot || this.pollTimer !== undefined) return;
    this.checkingRoot = true;
    try {
      const identity = await this.readRootIdentity();
      if (this.closed) return;
      if (identity === undefined) {
        // Nothing to watch until it is back: look again after a poll interval.
        clearTimeout(this.rootRetry);
        this.rootRetry = setTimeout(() => void this.checkRoot(), this.options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
      }
      if (identity === this.rootIdentity) return;
      for (const watcher of this.watches.values()) watcher.close();
      this.watches.clear();
      this.rules.clear();
      this.markRescan();
      this.rootIdentity = identity;
      if (identity === undefined) return;
      await this.watchSubtree('', IgnoreRules.create(this.options.excludes));
    } finally {
      this.checkingRoot = false;
    }
  }

  private async readRootIdentity(): Promise<string | undefined> {
    const stat = await fs.stat(this.rootBytes).catch(() => undefined);
    return stat?.isDirectory() ? `${stat.dev}:${stat.ino}` : undefined;
  }

  // --- batches ----------------------------------------------------------------------------------

  private markDirty(path: string): void {
    // A path under a folder already dirty adds nothing: the folder's subtree is rescanned anyway.
    if (pathAndAncestors(path).some((key) => this.dirty.has(key))) {
      this.schedule();
      return;
    }
    if (path === '') this.rescan = true;
    else this.dirty.add(path);
    this.schedule();
  }

  private markRescan(): void {
    this.rescan = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.flush(), this.quietMs);
    this.maxDelayTimer ??= setTimeout(() => this.flush(), this.maxDelayMs);
  }

  // --- polling ----------------------------------------------------------------------------------

  private startPolling(reason: WatchDegraded): void {
    if (this.pollTimer !== undefined || this.closed) return;
    for (const watcher of this.watches.values()) watcher.close();
    this.watches.clear();
    this.degrade(reason);
    // A full rescan at once (whatever happened before the fallback is unknown) and then periodically.
    this.markRescan();
    this.pollTimer = setInterval(() => this.markRescan(), this.options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
  }

  private degrade(reason: WatchDegraded): void {
    if (this.degradedSaid.has(reason.code)) return;
    this.degradedSaid.add(reason.code);
    this.emit('degraded', reason);
  }
}

/** DT_UNKNOWN: neither file, folder, link nor anything else. */
const isUnknownType = (child: Dirent<Buffer>): boolean => !child.isFile() && !child.isDirectory() && !child.isSymbolicLink() && !child.isFIFO() && !child.isSocket() && !child.isBlockDevice() && !child.isCharacterDevice();
const childPath = (folder: string, name: string): string => (folder === '' ? name : `${folder}/${name}`);
const parentOf = (path: string): string => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
