// The scan side of three-way sync: one local tree (the agent's /clud/host or /workspace) becomes a
// snapshot for reconcile.ts. Never follows a symlink, never loses a byte of a name (pathCodec),
// and never reports a missing or unreadable root as an empty tree, which would read as "the user
// deleted everything" and be propagated to the other side.
import { createHash, hash as hashBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, promises as fs, readdirSync, readFileSync, readSync, type Stats } from 'node:fs';
import { ancestorsOf, permissionBits, type Entry } from '../files/entry';
import { IgnoreRules } from './ignore';
import { vouchingCtime } from '../files/fsEntry';
import { bytesFromName, joinBytes, nameFromBytes } from '../files/pathCodec';
import { SECRET_CONTENT_MAX_BYTES, SecretAllowList, secretByContent, secretByName } from './secrets';
import { Limiter } from '../limited';
import { linkLeavingReason, linkMayLeaveFolder } from './linksLeavingFolder';

/**
 * What a file looked like when it was last hashed; `mode` is the full st_mode. `secret` is the
 * content check's verdict (why the file holds credentials, or false); a cache entry without one
 * (written before the check existed) does not spare reading the file.
 */
export interface ScanCacheEntry { size: number; mtimeMs: number; ctimeMs: number; ino: number; mode: number; hash: string; secret?: string | false }
/** Keyed by relative path; plain data, so the caller can persist it as JSON. */
export type ScanCache = Map<string, ScanCacheEntry>;
export interface ScanProblem { path: string; reason: string }
export interface ScanStats { files: number; directories: number; symlinks: number; hashedFiles: number; hashedBytes: number; durationMs: number }
export interface ScanResult {
  /** Parents before children, siblings in code-unit order. */
  snapshot: Map<string, Entry>;
  /** An entry for every file in the snapshot and every file kept out for its content, and nothing else. */
  cache: ScanCache;
  /**
   * Top-most ignored paths, sorted: an ignored directory stands for its whole subtree, which is
   * not walked. Secrets (see `keptOut`) are among them.
   */
  ignored: Set<string>;
  /** Files that hold credentials (secrets.ts), left out of the snapshot like ignored ones, with why; sorted. */
  keptOut: ScanProblem[];
  /** Untracked entries and symlinks pointing outside the root, in snapshot order. */
  problems: ScanProblem[];
  stats: ScanStats;
  /** The ignore rules in force in each walked directory ('' is the root); see isIgnoredHere. */
  rules: Map<string, IgnoreRules>;
}
export interface ScanOptions {
  /** User patterns (gitignore syntax), on top of the built-in ones, `.git` and every .gitignore. */
  excludes: readonly string[];
  /** The previous scan's cache: a file whose metadata is unchanged is not read again. */
  cache?: ScanCache;
  /** Patterns (gitignore syntax) of secret files the user lets through; every other secret is kept out. */
  allowSecrets?: readonly string[];
  /**
   * Read the tree with this user's rights only, by the permission bits, whatever the process
   * may do beyond them: the sync agent reads /workspace with capabilities that bypass them, and
   * must not use them on the host folder, where a file its owner cannot read stays unread.
   */
  accessAs?: AccessIdentity;
  /**
   * Called for each directory, file and symlink that will be in the snapshot, as soon as that is
   * decided: a directory once it has been listed (before anything under it), a file once its
   * secret check passed, with its bytes when it was read whole (undefined when it came from the
   * cache or is too big to hold). The initial copy streams the tree from here, so that each file
   * is read once. A returned promise is backpressure: it holds that file's hashing slot, or, for
   * a small file (read with synchronous calls, in the walk), the walk itself, until it settles;
   * return one only when the consumer is behind. Untracked entries are never passed.
   */
  onEntry?: (path: string, entry: Exclude<Entry, { kind: 'untracked' }>, stat: Stats, content?: Buffer) => void | Promise<void>;
}

/**
 * Mutagen's rule: a file whose size, mtime, ctime, inode and mode are the cached record's still
 * has its hash (and its content verdict: a record without one does not spare reading the file).
 * A record made within a tick of the file's last change has no ctime (UNKNOWN_CTIME, git's racy
 * clean rule), so it holds for no file.
 */
export type CacheStat = Pick<Stats, 'size' | 'mtimeMs' | 'ctimeMs' | 'ino' | 'mode'>;

export function cacheHolds(cached: ScanCacheEntry, stat: CacheStat): cached is ScanCacheEntry & { secret: string | false } {
  return cached.size === stat.size && cached.mtimeMs === stat.mtimeMs && cached.ctimeMs === stat.ctimeMs && cached.ino === stat.ino && cached.mode === stat.mode && cached.secret !== undefined;
}

/** Whether two cache records say the same (the store's tables hand out a new object per read). */
export function sameScanCacheEntry(a: ScanCacheEntry | undefined, b: ScanCacheEntry): boolean {
  return a !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.mode === b.mode && a.hash === b.hash && a.secret === b.secret;
}

export interface AccessIdentity {
  uid: number;
  /** The primary and supplementary groups. */
  gids: readonly number[];
}

/** Whether `who` may read (and, for a folder, search) what `stat` describes, by its permission bits. */
export function mayRead(stat: Pick<Stats, 'uid' | 'gid' | 'mode'> & { isDirectory(): boolean }, who: AccessIdentity): boolean {
  if (who.uid === 0) return true;
  const wanted = stat.isDirectory() ? 0o5 : 0o4;
  // As the kernel does: the owner's bits for the owner, else the group's for a member, else the others'.
  const bits = stat.uid === who.uid ? (stat.mode >> 6) & 0o7 : who.gids.includes(stat.gid) ? (stat.mode >> 3) & 0o7 : stat.mode & 0o7;
  return (bits & wanted) === wanted;
}

const HASH_CONCURRENCY = 8;
/** Entries visited between two yields to the event loop (a few milliseconds of synchronous lstat). */
const YIELD_EVERY = 1000;
const READ_CHUNK_BYTES = 256 * 1024;
/** Files up to this size are read with synchronous calls (see fileEntry); at most this long a stall of the event loop per file. */
const SYNC_READ_MAX_BYTES = 64 * 1024;
/** A file that keeps ending before its size (truncated while read) is left untracked after this many reads. */
const HASH_ATTEMPTS = 3;
// O_NOFOLLOW: a file swapped for a symlink after lstat is not followed. O_NONBLOCK: one swapped
// for a FIFO does not block the open. Neither changes how a regular file is read.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const GITIGNORE = Buffer.from('.gitignore');

/** The root's name as bytes and its stat, once it is known to be a folder that can be read; throws otherwise. */
async function openableRoot(root: string): Promise<{ rootBytes: Buffer; rootStat: Stats }> {
  const rootBytes = bytesFromName(root);
  // stat, not lstat: the root is the folder we were configured with, even through a symlink.
  const rootStat = await settle(() => fs.stat(rootBytes));
  if (rootStat === undefined) throw new Error(`sync root ${root} does not exist`);
  if (rootStat instanceof Failure) throw new Error(`sync root ${root} cannot be read: ${rootStat.reason}`);
  if (!rootStat.isDirectory()) throw new Error(`sync root ${root} is not a directory`);
  return { rootBytes, rootStat };
}

/**
 * @throws if the root does not exist, is not a directory, or cannot be listed: a caller must
 * halt the sync then, not treat the side as empty.
 */
export async function scanTree(root: string, options: ScanOptions): Promise<ScanResult> {
  const started = Date.now();
  const { rootBytes } = await openableRoot(root);

  const scanner = new Scanner(rootBytes, options.cache ?? new Map(), new SecretAllowList(options.allowSecrets ?? []), options.accessAs, options.onEntry);
  const visited: Visited[] = [];
  const walked = await scanner.walkDirectory('', IgnoreRules.create(options.excludes), visited);
  if (walked === 'vanished') throw new Error(`sync root ${root} does not exist`);
  if (walked !== 'ok') throw new Error(`sync root ${root} cannot be read: ${walked.unreadable}`);
  return scanner.finish(visited, started);
}

/**
 * Whether this side ignores `path`, also when the path does not exist here (the other side has
 * it): it is under an ignored path, or the rules of its nearest walked folder match it.
 */
export function isIgnoredHere(scan: Pick<ScanResult, 'ignored' | 'rules'>, path: string, isDirectory: boolean): boolean {
  if (isAtOrUnder(path, scan.ignored)) return true;
  // The rules of the nearest folder above it decide: its parent's, else the grandparent's, …, else the root's.
  for (const folder of ['', ...ancestorsOf(path)].reverse()) {
    const rules = scan.rules.get(folder);
    if (rules) return rules.ignores(path, isDirectory);
  }
  return false;
}

/** Whether `path` or a folder above it is one of `paths`. */
function isAtOrUnder(path: string, paths: ReadonlySet<string>): boolean {
  // Asked for every path of three snapshots each cycle: no array of ancestors per call.
  if (paths.has(path)) return true;
  for (let slash = path.indexOf('/'); slash >= 0; slash = path.indexOf('/', slash + 1)) if (paths.has(path.slice(0, slash))) return true;
  return false;
}

/**
 * Which paths a sync (or a comparison) must leave alone because one side ignores them: what a
 * scan found ignored, plus what only the other side has and this side's rules would ignore,
 * with everything below those.
 */
export function ignoredOnEitherSide(host: ScanResult, container: ScanResult): (path: string) => boolean {
  const ignored = new Set([...host.ignored, ...container.ignored]);
  for (const [scan, other] of [[host, container], [container, host]] as const) {
    for (const [path, entry] of other.snapshot) {
      if (!scan.snapshot.has(path) && isIgnoredHere(scan, path, entry.kind === 'directory')) ignored.add(path);
    }
  }
  return (path) => ignored.size > 0 && isAtOrUnder(path, ignored);
}

/** One snapshot entry in walk order; a big file's entry is pending while it is hashed, undefined if it vanished. */
interface Visited { path: string; entry: Entry | undefined | Promise<Entry | undefined> }

class Scanner {
  private readonly problemReasons = new Map<string, string>();
  readonly rules = new Map<string, IgnoreRules>();
  private readonly ignored: string[] = [];
  private readonly cache: ScanCache = new Map();
  private readonly hashLimit = new Limiter(HASH_CONCURRENCY);
  private visits = 0;
  private hashedFiles = 0;
  private hashedBytes = 0;
  /** Secrets found by name (never read) or by content, not allowed through. */
  private readonly keptOut = new Map<string, string>();
  /** onEntry's backpressure for a small file read in the walk, which the walk awaits. */
  private consumerBehind: Promise<void> | undefined;
  /** The clock before the scan's first lstat: a file whose ctime is within a tick of it gets a record that cannot vouch (isRacy). */
  private readonly startedAt = Date.now();

  constructor(
    private readonly root: Buffer,
    private readonly previousCache: ScanCache,
    private readonly allowedSecrets: SecretAllowList,
    private readonly accessAs?: AccessIdentity,
    private readonly onEntry?: ScanOptions['onEntry'],
  ) {}

  /**
   * Appends the directory's subtree to `out`, parents before children and siblings in code-unit
   * order. 'vanished' if it is gone, or why it cannot be read (then nothing was appended).
   *
   * Metadata is read with synchronous calls, one at a time, as rsync does: on a local tree whose
   * metadata is cached, a synchronous lstat costs a few microseconds, while a promise through
   * libuv's thread pool costs many times that in hand-offs, allocations and garbage (measured:
   * see docs/ARCHITECTURE.md). The walk yields to the event loop every YIELD_EVERY entries, so
   * that a resident agent keeps answering its clients during a long scan. A file of up to
   * SYNC_READ_MAX_BYTES is read and hashed in the walk with synchronous calls too; a bigger one
   * asynchronously, HASH_CONCURRENCY files at a time.
   */
  async walkDirectory(directory: string, inheritedRules: IgnoreRules, out: Visited[], onListed?: () => void): Promise<'ok' | 'vanished' | { unreadable: string }> {
    const directoryBytes = joinBytes(this.root, directory);
    const listed = settleSync(() => readdirSync(directoryBytes, { encoding: 'buffer', withFileTypes: true }));
    if (listed === undefined) return 'vanished';
    if (listed instanceof Failure) return { unreadable: `cannot list directory: ${listed.reason}` };
    let rules = inheritedRules;
    if (listed.some((child) => child.name.equals(GITIGNORE))) {
      // Walking without the rules could copy what the user meant to keep out (secrets, builds),
      // so a .gitignore we cannot read makes the whole directory untracked.
      const gitignore = readGitignore(Buffer.concat([directoryBytes, Buffer.from('/'), GITIGNORE]));
      if (typeof gitignore === 'object') return { unreadable: `cannot read its .gitignore: ${gitignore.unreadable}` };
      if (gitignore !== undefined) rules = rules.withGitignore(directory, gitignore);
    }
    this.rules.set(directory, rules);
    onListed?.();
    const children = listed.map((child) => ({ name: nameFromBytes(child.name), listedAsFile: child.isFile() })).sort((a, b) => (a.name < b.name ? -1 : 1)); // names are unique
    const prefix = directory === '' ? '' : `${directory}/`;
    for (const { name, listedAsFile } of children) await this.visit(prefix + name, rules, out, listedAsFile);
    return 'ok';
  }

  /** `listedAsFile`: its folder's listing says it is a regular file (see visitNewFile). */
  async visit(path: string, rules: IgnoreRules, out: Visited[], listedAsFile = false): Promise<void> {
    this.visits += 1;
    if (this.visits % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (listedAsFile && this.visitNewFile(path, rules, out)) {
      await this.catchUpWithConsumer();
      return;
    }
    const stat = settleSync(() => lstatSync(joinBytes(this.root, path)));
    if (stat === undefined) return; // vanished since readdir
    const untracked = (reason: string) => {
      out.push({ path, entry: { kind: 'untracked', reason } });
    };
    if (stat instanceof Failure) {
      // Listable but not searchable parent (r without x): the kind is unknown.
      if (!rules.ignores(path, false)) return untracked(`cannot read: ${stat.reason}`);
      this.ignored.push(path);
      return;
    }
    const isDirectory = stat.isDirectory();
    if (rules.ignores(path, isDirectory)) {
      this.ignored.push(path);
      return;
    }
    if (this.accessAs && (isDirectory || stat.isFile()) && !mayRead(stat, this.accessAs)) {
      return untracked(`${isDirectory ? 'cannot list directory' : 'cannot read'}: permission denied (its mode keeps out UID ${this.accessAs.uid})`);
    }
    if (isDirectory) {
      const entry = { kind: 'directory', mode: permissionBits(stat.mode) } as const;
      const at = out.length;
      out.push({ path, entry });
      const walked = await this.walkDirectory(path, rules, out, this.onEntry && (() => void this.onEntry!(path, entry, stat)));
      if (walked === 'ok') return;
      out.length = at;
      if (walked !== 'vanished') untracked(walked.unreadable);
      return;
    }
    if (stat.isFile()) {
      // Kept out by its name alone: a credentials file is not even read.
      const secret = secretByName(path);
      if (secret !== undefined && !this.allowedSecrets.allows(path)) {
        this.keepOut(path, secret);
        return;
      }
      out.push({ path, entry: this.fileEntry(path, stat) });
      await this.catchUpWithConsumer();
      return;
    }
    if (stat.isSymbolicLink()) {
      out.push(...(await this.visitSymlink(path, stat)));
      return;
    }
    out.push({ path, entry: { kind: 'untracked', reason: `${specialFileKind(stat)}: cannot be synchronized`, special: true } });
  }

  /**
   * A small file the cache knows nothing of (every file of a new folder), listed as a regular
   * file: read through its open and fstat, with no lstat before them, one system call fewer a file
   * (the initial copy makes four, as tar does). false, with nothing done but an open and an fstat,
   * when anything about it is not the common case (ignored, a secret by name, not openable, no
   * longer a regular file, unreadable by `accessAs`, too big to read here, changed while read):
   * visit's path from its lstat then decides it, exactly as for any other path.
   */
  private visitNewFile(path: string, rules: IgnoreRules, out: Visited[]): boolean {
    if (this.previousCache.has(path) || rules.ignores(path, false) || secretByName(path) !== undefined) return false;
    let fd: number;
    try {
      fd = openSync(joinBytes(this.root, path), OPEN_FLAGS);
    } catch {
      return false;
    }
    let read: HashedRead | Failure | undefined;
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile() || stat.size > SYNC_READ_MAX_BYTES || (this.accessAs && !mayRead(stat, this.accessAs))) return false;
      read = settleSync(() => readOpenedSync(fd, stat));
    } finally {
      closeSync(fd);
    }
    const hashed = this.recordRead(path, read);
    if (hashed === 'again') return false;
    out.push({ path, entry: hashed.entry });
    this.handOverSmallFile(path, hashed);
    return true;
  }

  /**
   * The initial copy takes a small file's bytes as soon as it is read; while it is behind, the
   * walk waits (catchUpWithConsumer), so that the tree is not read ahead of it into memory.
   */
  private handOverSmallFile(path: string, { entry, stat, content }: { entry: Entry | undefined; stat?: Stats; content?: Buffer }): void {
    if (this.onEntry && entry?.kind === 'file' && !this.keptOut.has(path)) this.consumerBehind = this.onEntry(path, entry, stat!, content) ?? undefined;
  }

  /** Waits, after a small file read in the walk, while onEntry's consumer is behind (handOverSmallFile). */
  private async catchUpWithConsumer(): Promise<void> {
    const behind = this.consumerBehind;
    this.consumerBehind = undefined;
    if (behind) await behind;
  }

  /** Waits for the hashing still under way and puts the result together in walk order. */
  async finish(visited: readonly Visited[], started: number): Promise<ScanResult> {
    const snapshot = new Map<string, Entry>();
    const problems: ScanProblem[] = [];
    const counts = { file: 0, directory: 0, symlink: 0, untracked: 0 };
    for (const { path, entry: pending } of visited) {
      const entry = await pending;
      if (entry === undefined) continue; // vanished during the scan
      if (this.keptOut.has(path)) {
        this.ignored.push(path); // a secret found by its content while it was hashed
        continue;
      }
      snapshot.set(path, entry);
      counts[entry.kind] += 1;
      const reason = entry.kind === 'untracked' ? entry.reason : this.problemReasons.get(path);
      if (reason !== undefined) problems.push({ path, reason });
    }
    const stats = { files: counts.file, directories: counts.directory, symlinks: counts.symlink, hashedFiles: this.hashedFiles, hashedBytes: this.hashedBytes, durationMs: Date.now() - started };
    const keptOut = [...this.keptOut].map(([path, reason]) => ({ path, reason })).sort((a, b) => (a.path < b.path ? -1 : 1));
    return { snapshot, cache: this.cache, ignored: new Set(this.ignored.sort()), keptOut, problems, stats, rules: this.rules };
  }

  private keepOut(path: string, reason: string): Visited[] {
    this.keptOut.set(path, reason);
    this.ignored.push(path);
    return [];
  }

  /** Records a content verdict; a secret the user did not allow leaves the snapshot in finish(). */
  private noteContentVerdict(path: string, secret: string | false): void {
    if (secret !== false && !this.allowedSecrets.allows(path)) this.keptOut.set(path, secret);
  }

  /** A file whose cache record holds (cacheHolds) keeps its hash; any other is read and hashed. */
  private fileEntry(path: string, stat: Stats): Entry | undefined | Promise<Entry | undefined> {
    const cached = this.previousCache.get(path);
    if (cached !== undefined && cacheHolds(cached, stat)) {
      this.cache.set(path, cached);
      this.noteContentVerdict(path, cached.secret);
      const entry = { kind: 'file', size: stat.size, mtimeMs: stat.mtimeMs, mode: permissionBits(stat.mode), hash: cached.hash } as const;
      if (!this.onEntry || this.keptOut.has(path)) return entry;
      return this.hashLimit.run(async () => {
        await this.onEntry!(path, entry, stat);
        return entry;
      });
    }
    if (stat.size > SYNC_READ_MAX_BYTES) return this.hashLimit.run(() => this.hashFile(path));
    // A small file is read with synchronous calls, as its metadata is: a promise through libuv's
    // thread pool costs more per call than reading a few kilobytes from the page cache.
    const read = this.hashFileSync(path);
    this.handOverSmallFile(path, read);
    return read.entry;
  }

  private async hashFile(path: string): Promise<Entry | undefined> {
    for (let attempt = 1; attempt <= HASH_ATTEMPTS; attempt += 1) {
      const read = await settle(() => readAndHash(joinBytes(this.root, path)));
      const hashed = this.recordRead(path, read);
      if (hashed === 'again') continue;
      if (hashed.entry?.kind === 'file' && this.onEntry && !this.keptOut.has(path)) await this.onEntry(path, hashed.entry, hashed.stat!, hashed.content);
      return hashed.entry;
    }
    return { kind: 'untracked', reason: `changed while being read, ${HASH_ATTEMPTS} times` };
  }

  /** hashFile() with synchronous calls, for a small file; leaves onEntry to the caller. */
  private hashFileSync(path: string): { entry: Entry | undefined; stat?: Stats; content?: Buffer } {
    for (let attempt = 1; attempt <= HASH_ATTEMPTS; attempt += 1) {
      const hashed = this.recordRead(path, settleSync(() => readAndHashSync(joinBytes(this.root, path))));
      if (hashed !== 'again') return hashed;
    }
    return { entry: { kind: 'untracked', reason: `changed while being read, ${HASH_ATTEMPTS} times` } };
  }

  /** A read's entry, with its cache record and content verdict noted; 'again' when the file shrank while it was read. */
  private recordRead(path: string, read: HashedRead | Failure | undefined): { entry: Entry | undefined; stat?: Stats; content?: Buffer } | 'again' {
    if (read instanceof Failure) return { entry: { kind: 'untracked', reason: `cannot read: ${read.reason}` } };
    if (read === undefined) return { entry: undefined }; // vanished or no longer a regular file: the next scan sees what it became
    this.hashedFiles += 1;
    this.hashedBytes += read.bytesRead;
    if (read.hash === undefined) return 'again';
    // The metadata is from before the read: a file changed during it has a newer mtime or
    // ctime by now, so the next scan rehashes it whatever this hash says.
    const { stat, hash } = read;
    // Checked while the bytes are in memory for the hash; a bigger file is judged by its name only.
    const secret = (read.content && secretByContent(path, read.content)) ?? false;
    this.noteContentVerdict(path, secret);
    this.cache.set(path, { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: vouchingCtime(stat.ctimeMs, this.startedAt), ino: stat.ino, mode: stat.mode, hash, secret });
    return { entry: { kind: 'file', size: stat.size, mtimeMs: stat.mtimeMs, mode: permissionBits(stat.mode), hash }, stat, content: read.content };
  }

  private async visitSymlink(path: string, stat: Stats): Promise<Visited[]> {
    const targetBytes = await settle(() => fs.readlink(joinBytes(this.root, path), { encoding: 'buffer' }));
    if (targetBytes === undefined) return [];
    if (targetBytes instanceof Failure) return [{ path, entry: { kind: 'untracked', reason: `cannot read link: ${targetBytes.reason}` } }];
    const target = nameFromBytes(targetBytes);
    // From the text alone: the link is never followed, by the scan or by the apply step.
    if (linkMayLeaveFolder(path, target)) this.problemReasons.set(path, linkLeavingReason(target));
    const entry = { kind: 'symlink', target } as const;
    await this.onEntry?.(path, entry, stat);
    return [{ path, entry }];
  }
}

/** `content`: the whole file, when it is at most SECRET_CONTENT_MAX_BYTES (for the secret check). */
interface HashedRead { stat: Stats; bytesRead: number; hash?: string; content?: Buffer }

/**
 * Streams the first `size` bytes (size as fstat gave it) through sha256; no hash if the file
 * ended sooner. undefined when the path is not a regular file any more. Four file-system calls
 * for a small file: on a scan that hashes thousands of them, round trips are what cost. A small
 * file is read whole into one buffer, which the secret check then reads without another call.
 */
async function readAndHash(pathBytes: Buffer): Promise<HashedRead | undefined> {
  const handle = await fs.open(pathBytes, OPEN_FLAGS);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    const hash = createHash('sha256');
    const whole = stat.size <= SECRET_CONTENT_MAX_BYTES;
    const chunk = Buffer.allocUnsafe(whole ? Math.max(stat.size, 1) : READ_CHUNK_BYTES);
    let bytesRead = 0;
    while (bytesRead < stat.size) {
      const offset = whole ? bytesRead : 0;
      const read = await handle.read(chunk, offset, Math.min(chunk.length - offset, stat.size - bytesRead), null);
      if (read.bytesRead === 0) break;
      hash.update(chunk.subarray(offset, offset + read.bytesRead));
      bytesRead += read.bytesRead;
    }
    if (bytesRead !== stat.size) return { stat, bytesRead };
    return { stat, bytesRead, hash: hash.digest('hex'), ...(whole && { content: chunk.subarray(0, stat.size) }) };
  } finally {
    await handle.close();
  }
}

/** readAndHash() with synchronous calls, for a file of at most SYNC_READ_MAX_BYTES (as lstat said). */
function readAndHashSync(pathBytes: Buffer): HashedRead | undefined {
  const fd = openSync(pathBytes, OPEN_FLAGS);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return undefined;
    // Grown past what a synchronous read is for since lstat: read it as any big file, next time.
    if (stat.size > SYNC_READ_MAX_BYTES) return { stat, bytesRead: 0 };
    return readOpenedSync(fd, stat);
  } finally {
    closeSync(fd);
  }
}

/** Reads and hashes the open regular file `fd`, whose fstat is `stat`, whole into one buffer. */
function readOpenedSync(fd: number, stat: Stats): HashedRead {
  const content = Buffer.allocUnsafe(Math.max(stat.size, 1));
  let bytesRead = 0;
  while (bytesRead < stat.size) {
    const read = readSync(fd, content, bytesRead, stat.size - bytesRead, null);
    if (read === 0) break;
    bytesRead += read;
  }
  if (bytesRead !== stat.size) return { stat, bytesRead };
  const whole = content.subarray(0, stat.size);
  return { stat, bytesRead, hash: hashBytes('sha256', whole, 'hex'), content: whole };
}

/**
 * The .gitignore's text, read with synchronous calls as the walk's metadata is; undefined when
 * there is none to read (gone, or not a regular file: git ignores a symlinked one); why it cannot
 * be read otherwise. The scan and the periodic rescan (rescan.ts) read it through here.
 */
export function readGitignore(pathBytes: string | Buffer): string | undefined | { unreadable: string } {
  const text = settleSync(() => {
    const fd = openSync(pathBytes, OPEN_FLAGS);
    try {
      return fstatSync(fd).isFile() ? nameFromBytes(readFileSync(fd)) : undefined;
    } finally {
      closeSync(fd);
    }
  });
  return text instanceof Failure ? { unreadable: text.reason } : text;
}

function specialFileKind(stat: Stats): string {
  if (stat.isSocket()) return 'socket';
  if (stat.isFIFO()) return 'named pipe (FIFO)';
  if (stat.isBlockDevice()) return 'block device';
  if (stat.isCharacterDevice()) return 'character device';
  return 'unknown file type';
}

class Failure {
  constructor(readonly reason: string) {}
}

/**
 * The operation's result; undefined if the path vanished or changed kind since it was listed
 * (the next scan sees what it became); a Failure for anything else.
 */
async function settle<T>(operation: () => Promise<T>): Promise<T | Failure | undefined> {
  try {
    return await operation();
  } catch (error) {
    return settled(error);
  }
}

/** settle() for a synchronous call. */
function settleSync<T>(operation: () => T): T | Failure | undefined {
  try {
    return operation();
  } catch (error) {
    return settled(error);
  }
}

function settled(error: unknown): Failure | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EINVAL') return undefined;
  if (code === 'EACCES' || code === 'EPERM') return new Failure(`permission denied (${code})`);
  return new Failure(code ?? (error instanceof Error ? error.message : String(error)));
}

/** A scan of some paths only: `incomplete` lists the paths left out because a folder above one is not a folder on this side. */
export interface PathsScanResult extends ScanResult {
  /** Each left-out path with the top-most folder above it that is not a folder here (the caller widens to it). */
  incomplete: Array<{ path: string; at: string }>;
}

/**
 * Scans only `paths` (subtrees included, for folders) and the chain of folders above each, as an
 * incremental cycle needs: the result is a well-formed snapshot of that region alone, with the
 * same rules (every .gitignore from the root down), cache and checks as scanTree. Callers pass
 * paths none of which is under another, never "" and never a .gitignore (a changed .gitignore
 * means its folder's subtree).
 * @throws as scanTree when the root is missing or unreadable.
 */
export async function scanPaths(root: string, paths: readonly string[], options: ScanOptions): Promise<PathsScanResult> {
  const started = Date.now();
  const { rootBytes, rootStat } = await openableRoot(root);

  const scanner = new Scanner(rootBytes, options.cache ?? new Map(), new SecretAllowList(options.allowSecrets ?? []), options.accessAs, options.onEntry);
  // Per folder of a chain: its rules, or why the paths below it are left out.
  const folders = new Map<string, IgnoreRules | { ignored: true } | { notAFolder: true }>();
  const visited: Visited[] = [];
  const incomplete: Array<{ path: string; at: string }> = [];
  const rulesAt = async (folder: string, parentRules: IgnoreRules | undefined): Promise<IgnoreRules | { ignored: true } | { notAFolder: true }> => {
    const known = folders.get(folder);
    if (known) return known;
    let result: IgnoreRules | { ignored: true } | { notAFolder: true };
    if (parentRules && parentRules.ignores(folder, true)) {
      result = { ignored: true };
    } else {
      const folderStat = folder === '' ? rootStat : await settle(() => fs.lstat(joinBytes(rootBytes, folder)));
      // A folder the host's user may not search is untracked to the full scan: the region widens
      // to it, and visiting it then says so, rather than reaching past it with the agent's rights.
      if (folderStat === undefined || folderStat instanceof Failure || !folderStat.isDirectory() || (folder !== '' && options.accessAs && !mayRead(folderStat, options.accessAs))) {
        result = { notAFolder: true };
      } else {
        const gitignore = readGitignore(joinBytes(rootBytes, folder === '' ? '.gitignore' : `${folder}/.gitignore`));
        // As in the full scan: rules that cannot be read make the folder's content unknown.
        if (typeof gitignore === 'object') result = { notAFolder: true };
        else result = gitignore === undefined ? (parentRules ?? IgnoreRules.create(options.excludes)) : (parentRules ?? IgnoreRules.create(options.excludes)).withGitignore(folder, gitignore);
        if (result instanceof IgnoreRules) {
          scanner.rules.set(folder, result);
          if (folder !== '') visited.push({ path: folder, entry: { kind: 'directory', mode: folderStat.mode & 0o7777 } });
        }
      }
    }
    folders.set(folder, result);
    return result;
  };

  for (const path of paths) {
    let rules = await rulesAt('', undefined);
    if (!(rules instanceof IgnoreRules)) throw new Error(`sync root ${root} cannot be read: cannot read its .gitignore`);
    let leftOut = false;
    for (const folder of ancestorsOf(path)) {
      const next = await rulesAt(folder, rules);
      if ('ignored' in next && next.ignored) {
        if (!scanner['ignored'].includes(folder)) scanner['ignored'].push(folder);
        leftOut = true;
        break;
      }
      if (!(next instanceof IgnoreRules)) {
        incomplete.push({ path, at: folder });
        leftOut = true;
        break;
      }
      rules = next;
    }
    if (!leftOut) await scanner.visit(path, rules, visited);
  }
  return { ...(await scanner.finish(visited, started)), incomplete };
}
