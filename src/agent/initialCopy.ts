// The initial copy of the host folder into a new /workspace, in one pass: the sync scanner walks
// /clud/host (ignore rules, secrets and unreadable files decided exactly as in every later sync),
// and every entry it keeps is streamed, as it is decided, as a tar archive into GNU tar, which
// unpacks it in /workspace as the workspace user with no capabilities. A small file's bytes are
// the ones the scan read to hash it: each file is read once. The scan's entries are then the
// first agreed state.
import { spawn } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import { existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { CONTAINER_HOST_PATH, CONTAINER_STATE_PATH, CONTAINER_WORKSPACE_PATH, WORKSPACE_USER } from '../core/containerLayout';
import type { ProgressData, SyncMetrics, SyncOptions } from '../core/protocol';
import type { Entry, FileEntry } from '../core/files/entry';
import { lstatAsWritten } from '../core/files/fsEntry';
import { bytesFromName, joinBytes } from '../core/files/pathCodec';
import type { ScanCache, ScanOptions, ScanResult } from '../core/sync/scan';
import { scanTree } from '../core/sync/scan';
import { SyncStateFiles } from '../core/sync/stateFiles';
import { SyncStateStore } from '../core/sync/stateStore';
import { TAR_END, tarHeader, tarMember, tarMemberMaxBytes, tarPadding, writeTarMember, type TarMember } from '../core/tarStream';
import { hostAccess } from './hostAccess';

export const MAX_CHANGED_PATHS = 1000;

/**
 * The receiving tar runs as the workspace user, with no capabilities: a workspace-user process
 * that swaps a folder of /workspace for a symlink to the host folder or the state folder then
 * sends the writes only where the workspace user may write anyway, which is neither; and what it
 * writes is the workspace user's without chowning. Dropping to the user needs CAP_SETUID/SETGID
 * in the sync agent (container/as-sync-user). `--preserve-permissions`: the modes as scanned (the
 * scan keeps only the permission bits, so setuid, setgid and sticky never cross), not masked by a
 * umask. The members arrive in the order the concurrent scan decides them, not folder by folder:
 * `--delay-directory-restore` sets every folder's mode and time at the end, so that neither a
 * read-only folder refuses a later file nor a later file changes its folder's time.
 */
export const RECEIVER_COMMAND = [
  'setpriv', `--reuid=${WORKSPACE_USER}`, `--regid=${WORKSPACE_USER}`, '--init-groups', '--inh-caps=-all', '--ambient-caps=-all', '--',
  'tar', '--extract', '--file=-', `--directory=${CONTAINER_WORKSPACE_PATH}`, '--preserve-permissions', '--no-same-owner',
  '--delay-directory-restore',
];

/** Bytes of a file not read by the scan (cached, or too big to hold) that are read per chunk. */
const READ_CHUNK_BYTES = 1 << 20;
/** Bytes of members gathered into one write into the pipe (see ArchiveWriter). */
const CHUNK_BYTES = 64 * 1024;
/** How far the archive may run ahead of the receiver (see ArchiveWriter.drained). */
const BUFFERED_BYTES = 16 * 2 ** 20;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Copies the host folder into /workspace. What the scanner cannot read (an unreadable file or
 * folder, a socket, a device) is not copied and is reported in `notCopied`, not as an error: it
 * is left alone on both sides like an ignored path, so one such file never blocks the workspace.
 */
export async function runInitialCopy(options: SyncOptions, onProgress: (data: ProgressData) => void = () => {}): Promise<SyncMetrics> {
  const started = Date.now();
  const stateDir = existsSync(CONTAINER_STATE_PATH) ? CONTAINER_STATE_PATH : undefined;
  onProgress({ phase: 'scan', message: 'scanning and copying the folder' });
  const copy = await copyTree({
    source: CONTAINER_HOST_PATH,
    receiver: RECEIVER_COMMAND,
    scan: { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: stateDir && (await previousHostCache(stateDir)), accessAs: hostAccess() },
    onProgress,
  });
  if (stateDir && copy.errors.length === 0) await recordCopiedState(stateDir, CONTAINER_WORKSPACE_PATH, copy.agreed, copy.scan.cache);
  // A failed copy agrees on nothing, but its hashes spare a retry reading the whole folder again.
  else if (stateDir) await SyncStateStore.replace(stateDir, { ancestor: new Map(), host: copy.scan.cache, container: new Map() }).catch(() => {});
  // What stood between the folder and an earlier container's /workspace stands no more.
  if (stateDir) await new SyncStateFiles(stateDir).clearStanding();
  return {
    direction: 'push',
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    filesTransferred: copy.files,
    filesDeleted: 0,
    bytesTransferred: copy.bytes,
    changedPaths: copy.changedPaths,
    changedPathsTruncated: copy.changedPathsTruncated,
    errors: copy.errors,
    retries: 0,
    keptOut: copy.scan.keptOut,
    notCopied: copy.scan.problems.map((problem) => ({ path: problem.path, reason: problem.reason })),
  };
}

export interface TreeCopyOptions {
  source: string;
  /** The command that unpacks the archive on its stdin (RECEIVER_COMMAND in the container). */
  receiver: readonly string[];
  scan: Omit<ScanOptions, 'onEntry'>;
  onProgress?: (data: ProgressData) => void;
}

export interface TreeCopy {
  scan: ScanResult;
  /** The scan's entries that were copied as scanned: the first agreed state. */
  agreed: Map<string, Entry>;
  files: number;
  bytes: number;
  changedPaths: string[];
  changedPathsTruncated: boolean;
  /** The receiver's errors; empty when it unpacked everything. */
  errors: string[];
}

/** Scans `source` and streams what the scan keeps, as it decides it, into the receiver. */
export async function copyTree(options: TreeCopyOptions): Promise<TreeCopy> {
  const receiver = startReceiver(options.receiver);
  const archive = new ArchiveWriter(receiver.stdin);
  const copied = { files: 0, bytes: 0, changedPaths: [] as string[], changedPathsTruncated: false };
  /** Files that changed between the scan's look and the copy's read: not part of the agreed state. */
  const changedWhileCopied = new Set<string>();
  let lastReport = 0;
  const report = () => options.onProgress?.({ phase: 'copy', message: `${copied.files} file(s)`, files: copied.files });
  const noteCopied = (path: string, size: number, isFile: boolean) => {
    if (isFile) {
      copied.files += 1;
      copied.bytes += size;
    }
    if (copied.changedPaths.length < MAX_CHANGED_PATHS) copied.changedPaths.push(path);
    else copied.changedPathsTruncated = true;
    if (Date.now() - lastReport > 200) {
      lastReport = Date.now();
      report();
    }
  };
  const sourceBytes = Buffer.from(options.source);
  let scan: ScanResult;
  try {
    scan = await scanTree(options.source, {
      ...options.scan,
      onEntry: (path, entry, stat, content) => {
        const pathBytes = bytesFromName(path);
        if (entry.kind === 'file' && !content) {
          // Not held by the scan (cached, or too big to hold): read now, in its turn.
          return archive.add(async () => {
            if (!(await archive.writeFileFrom(joinBytes(sourceBytes, path), pathBytes, entry))) {
              changedWhileCopied.add(path);
              return;
            }
            noteCopied(path, entry.size, true);
            await archive.drained();
          });
        }
        if (entry.kind === 'directory') archive.append({ kind: 'directory', path: pathBytes, mode: entry.mode, mtimeMs: stat.mtimeMs });
        else if (entry.kind === 'symlink') archive.append({ kind: 'symlink', path: pathBytes, target: bytesFromName(entry.target), mtimeMs: stat.mtimeMs });
        else archive.append({ kind: 'file', path: pathBytes, mode: entry.mode, mtimeMs: stat.mtimeMs, size: content!.length }, content);
        noteCopied(path, entry.kind === 'file' ? entry.size : 0, entry.kind === 'file');
        return archive.behind();
      },
    });
    await archive.add(async () => {
      archive.write(TAR_END);
      archive.flush();
    });
  } finally {
    receiver.stdin.end();
  }
  const received = await receiver.finished;
  report();
  const errors = archive.failure !== undefined ? [`the archive could not be written: ${archive.failure}`] : received.exitCode === 0 ? [] : describeFailure(received);
  const agreed = new Map([...scan.snapshot].filter(([path, entry]) => entry.kind !== 'untracked' && !changedWhileCopied.has(path)));
  return { scan, agreed, ...copied, errors };
}

/**
 * The host scan's cache of an earlier container of this folder (the state folder outlives
 * containers), so that unchanged files are not hashed again; none if it cannot be read.
 */
async function previousHostCache(stateDir: string): Promise<ScanCache | undefined> {
  try {
    const store = await SyncStateStore.open(stateDir);
    await store.close();
    return store.host;
  } catch {
    return undefined;
  }
}

/**
 * The copy is the first agreed state: the scan's entries, now on both sides, written as the
 * state store's new base in one go (replacing whatever an earlier container left). Recording it
 * lets the first sync tell which side changed (without it every difference is a conflict); the
 * host scan's cache and the container cache entries spare hashing either tree again. Only what
 * tar demonstrably wrote as scanned (lstatAsWritten) inherits the hash in the container cache.
 */
export async function recordCopiedState(stateDir: string, target: string, agreed: ReadonlyMap<string, Entry>, hostCache: ScanCache): Promise<void> {
  const targetBytes = Buffer.from(target);
  const cache: ScanCache = new Map();
  let checked = 0;
  for (const [path, entry] of agreed) {
    if (entry.kind !== 'file') continue;
    // One lstat a file, synchronously: the inodes were just written, so each call is a cache hit,
    // far cheaper than a round trip through the thread pool; a pause now and then lets progress out.
    if (++checked % 2000 === 0) await new Promise((resolve) => setImmediate(resolve));
    const stats = lstatAsWritten(joinBytes(targetBytes, path), entry);
    if (stats) {
      cache.set(path, { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, mode: stats.mode, hash: entry.hash, secret: hostCache.get(path)?.secret });
    }
  }
  await SyncStateStore.replace(stateDir, { ancestor: agreed, host: hostCache, container: cache });
}

interface Receiver {
  stdin: Writable;
  finished: Promise<{ exitCode: number; stderr: string }>;
}

function startReceiver(command: readonly string[]): Receiver {
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 64 * 1024) stderr += chunk;
  });
  // A receiver that died makes every later write fail with EPIPE: its exit status says why.
  child.stdin.on('error', () => {});
  const finished = new Promise<{ exitCode: number; stderr: string }>((resolve) => {
    child.on('error', (error) => resolve({ exitCode: -1, stderr: `${stderr}tar: cannot start the receiver: ${error.message}\n` }));
    child.on('close', (code, signal) => resolve({ exitCode: code ?? -1, stderr: signal ? `${stderr}tar: killed by ${signal}\n` : stderr }));
  });
  return { stdin: child.stdin, finished };
}

/**
 * The archive as a chain of members: the scan decides entries concurrently, a member is written
 * whole before the next one starts, in the order the scan decided them (a folder before anything
 * under it). Members are gathered in one buffer of CHUNK_BYTES that goes into the pipe when it is
 * full (or before waiting on the receiver): a write a member was the copy's largest cost after
 * the scan's own system calls. Waiting for a full pipe to drain holds the scan's hashing slot and
 * so slows the scan down to the receiver's pace instead of piling the tree up in memory.
 */
class ArchiveWriter {
  private tail: Promise<void> = Promise.resolve();
  /** Members added (with add) whose write has not finished. */
  private pending = 0;
  private closed = false;
  /** Bytes gathered for the next write into the pipe: chunk[0, filled). */
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private filled = 0;
  /** The last write into the pipe is not all in it yet: the scan should let the event loop turn (see behind). */
  private flushedQueued = false;
  /** The first member that could not be written (the archive is incomplete from there on). */
  failure: string | undefined;

  constructor(private readonly out: Writable) {
    out.once('close', () => (this.closed = true));
    out.once('error', () => (this.closed = true));
  }

  /** Chains a member that must wait for I/O; members after it wait for it. */
  add(member: () => Promise<void>): Promise<void> {
    this.pending += 1;
    this.tail = this.tail.then(member).catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error.message : String(error);
      this.closed = true;
    }).finally(() => (this.pending -= 1));
    return this.tail;
  }

  /**
   * A member whose bytes are all at hand (a folder, a symlink, a file the scan read whole):
   * written at once, unless members added before it still wait for I/O (then after them). Most
   * members are these: written straight into the chunk, no buffer of their own, no promise.
   */
  append(member: TarMember, content?: Buffer): void {
    if (this.pending > 0) void this.add(async () => this.writeMember(member, content));
    else this.writeMember(member, content);
  }

  private writeMember(member: TarMember, content?: Buffer): void {
    if (this.closed) return;
    const room = tarMemberMaxBytes(member, content);
    if (this.filled + room > this.chunk.length) this.flush();
    if (room > this.chunk.length) this.send(tarMember(member, content));
    else this.filled += writeTarMember(this.chunk, this.filled, member, content);
  }

  /**
   * Backpressure for the scan: a promise while more than BUFFERED_BYTES wait to go into the pipe,
   * or for one turn of the event loop after a chunk the pipe did not take whole. The pipe takes
   * more only on a turn of the loop, and the scan's walk is synchronous between its yields: without
   * the turn, the receiver would idle until the walk yields or waits for it to drain.
   */
  behind(): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (this.pending > 0 || this.out.writableLength > BUFFERED_BYTES) return this.tail.then(() => this.drained());
    if (!this.flushedQueued) return undefined;
    this.flushedQueued = false;
    return new Promise((resolve) => setImmediate(resolve));
  }

  write(...chunks: Buffer[]): void {
    if (this.closed) return;
    for (const bytes of chunks) {
      if (this.filled + bytes.length > this.chunk.length) this.flush();
      if (bytes.length >= this.chunk.length) this.send(bytes);
      else this.filled += bytes.copy(this.chunk, this.filled);
    }
  }

  /** Sends what the chunk gathered into the pipe; the next members go into a new chunk. */
  flush(): void {
    if (this.filled === 0 || this.closed) return;
    this.send(this.chunk.subarray(0, this.filled));
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.filled = 0;
  }

  /** Every write into the pipe: a chunk, or bytes too big for one. */
  private send(bytes: Buffer): void {
    this.out.write(bytes);
    this.flushedQueued = this.out.writableLength > 0;
  }

  /**
   * Waits while more than BUFFERED_BYTES wait to go into the pipe: the scan runs ahead of the
   * receiver by that much instead of taking turns with it every pipe-full (64 KiB).
   */
  async drained(): Promise<void> {
    if (this.closed || this.out.writableLength + this.filled <= BUFFERED_BYTES) return;
    this.flush();
    if (this.out.writableLength <= BUFFERED_BYTES) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.out.off('drain', done);
        this.out.off('close', done);
        resolve();
      };
      this.out.on('drain', done);
      this.out.on('close', done);
    });
  }

  /**
   * A file the scan did not hold in memory, read now. false when it is no longer what the scan
   * saw (it is then left out, and the first sync carries it); a file that shrinks while read is
   * padded with zeros to the size its header promised, and also reported as changed.
   */
  async writeFileFrom(source: Buffer, path: Buffer, entry: FileEntry): Promise<boolean> {
    let handle;
    try {
      handle = await fs.open(source, OPEN_FLAGS);
    } catch {
      return false;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size !== entry.size || stat.mtimeMs !== entry.mtimeMs) return false;
      this.write(tarHeader({ kind: 'file', path, mode: entry.mode, mtimeMs: stat.mtimeMs, size: stat.size }));
      let written = 0;
      let whole = true;
      while (written < stat.size) {
        const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, stat.size - written));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, null).catch(() => ({ bytesRead: 0 }));
        if (bytesRead === 0) {
          whole = false;
          this.write(Buffer.alloc(stat.size - written));
          break;
        }
        this.write(chunk.subarray(0, bytesRead));
        written += bytesRead;
        await this.drained();
      }
      this.write(tarPadding(stat.size));
      return whole;
    } finally {
      await handle.close();
    }
  }
}

function describeFailure(received: { exitCode: number; stderr: string }): string[] {
  const lines = received.stderr.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('tar:') || line.startsWith('setpriv:'));
  return lines.length > 0 ? lines.slice(0, 20) : [`tar exited with code ${received.exitCode}: no message`];
}
