// One step being recorded: the write-ahead half of the undo log. Before the caller first changes
// a path, its preimage is captured into the step's in-progress folder: content as a gzip blob
// (temp + fsync + rename), then its metadata file (atomic). The metadata file is written last,
// so a path counts as captured only once it exists; the caller changes the path only after
// beforeModify returned. close() records postimages, writes the manifest and promotes the
// folder; a crash before that leaves an in-progress folder that UndoLog.open rolls back.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import { writeJsonAtomic } from '../atomicFile';
import { lstatOrUndefined } from '../sync/fsEntry';
import { joinBytes, nameFromBytes } from '../sync/pathCodec';
import { currentPostimage, describeDifference, identityOf, kindOf, nonFolderAncestor, permissions, readTarget } from './fsState';
import type { Manifest, Preimage, StepRecord } from './records';
import { blobName, isUnder, keyDepth, MANIFEST, metaName, parentKey, UNDO_FORMAT_VERSION, UNPROTECTED } from './records';
import { removeTree, restoreRecords } from './restore';
import type { ModifyAction, SafeguardAsk, SafeguardKind, SafeguardQuestion, SafeguardThresholds, StepSummary, UndoLimits } from './types';
import { SafeguardDenied } from './types';
import { readXattrs } from './xattrs';

export interface StepMeta {
  /** The sync this step belongs to (SyncReport.id). */
  syncId: string;
  policy: string;
  /** The host tree root the step's paths are relative to. */
  root: string;
  /** Asked when the step crosses a safeguard. Without it, safeguards allow. */
  ask?: SafeguardAsk;
  thresholds?: Partial<SafeguardThresholds>;
}

/** What the log hands a writer. */
export interface WriterContext {
  id: string;
  /** The in-progress folder of this step (created at the first capture). */
  directory: string;
  /** False when the log is disabled: safeguards still apply, nothing is recorded. */
  persist: boolean;
  captureXattrs: boolean;
  notes: string[];
  limits: UndoLimits;
  thresholds: SafeguardThresholds;
  /** Renames the closed step into the log and applies the limits. */
  promote(manifest: Manifest): Promise<StepSummary>;
  /** The step is over, whatever the outcome: the log may open another. */
  finished(): void;
  beforePromote?: (stepId: string) => void | Promise<void>;
}

interface Captured {
  index: number;
  pre: Preimage;
}

class StepTooLarge extends Error {}

export class StepWriter {
  private state: 'open' | 'denied' | 'closed' | 'rolled-back' = 'open';
  private readonly records = new Map<string, Captured>();
  /** Kind of each path the caller announced, as it was before the step (also kept when nothing is captured). */
  private readonly touched = new Map<string, ReturnType<typeof kindOf>>();
  private readonly deletions = new Set<string>();
  private readonly allowed = new Set<SafeguardKind>();
  private readonly startedAt = new Date().toISOString();
  private nextIndex = 1;
  private bytes = 0;
  private folderCreated = false;
  private unprotectedReason?: string;
  private xattrFailures = 0;
  private denial?: SafeguardDenied;
  private queue: Promise<unknown> = Promise.resolve();
  /** Files and folders written since the last flush(). */
  private readonly unsynced = new Set<string>();

  constructor(
    private readonly context: WriterContext,
    private readonly meta: StepMeta,
  ) {}

  get id(): string {
    return this.context.id;
  }

  /** Set once a safeguard was denied: the caller must stop and treat none of this sync's changes as applied. */
  get denied(): SafeguardDenied | undefined {
    return this.denial;
  }

  /**
   * Call before the first write, delete, rename, truncate or chmod of `relativePath` (a snapshot
   * key) in this step, and change the path only after it returned; calling it again for a path
   * is cheap. Checks the safeguards (it may wait for `ask`) and throws SafeguardDenied when one
   * is denied, after rolling the step back.
   */
  beforeModify(relativePath: string, action: ModifyAction): Promise<void> {
    return this.serialized(async () => {
      if (this.denial) throw this.denial;
      if (this.state !== 'open') throw new Error(`undo step ${this.id} is ${this.state}`);
      if (relativePath === '') throw new Error('the root of the tree cannot be modified through the undo log');
      const target = joinBytes(this.meta.root, relativePath);
      const blocked = await nonFolderAncestor(this.meta.root, relativePath);
      if (blocked) throw new Error(`${relativePath}: its parent ${blocked} is not a folder`);
      const stats = await lstatOrUndefined(target);
      // A folder deleted, renamed away or replaced takes its content with it: capture all of it.
      const inside = stats?.isDirectory() && action !== 'chmod' ? await subtree(this.meta.root, relativePath) : [];
      await this.checkSafeguards(relativePath, action, stats, inside);
      for (const [key, keyStats] of [[relativePath, stats] as const, ...inside]) if (!this.touched.has(key)) this.touched.set(key, kindOf(keyStats));
      if (!this.capturing) return;
      try {
        await this.capture(relativePath, stats);
        for (const [key, keyStats] of inside) await this.capture(key, keyStats);
        // Durable before the caller may change the path.
        await this.flush();
      } catch (error) {
        if (!(error instanceof StepTooLarge)) throw error;
        await this.becomeUnprotected(error.message);
      }
    });
  }

  /**
   * The change announced for `relativePath` was not carried out: drop its preimage (and those of
   * paths below it), but only where the disk still holds exactly the preimage. Returns whether
   * the path's own preimage was dropped.
   */
  forget(relativePath: string): Promise<boolean> {
    return this.serialized(async () => {
      if (this.state !== 'open') return false;
      const own = this.records.get(relativePath);
      if (!this.capturing) {
        this.touched.delete(relativePath);
        this.deletions.delete(relativePath);
        return false;
      }
      if (!own || (own.pre.kind === 'directory' && own.pre.metadataOnly)) return false;
      const keys = [...this.records.keys()].filter((key) => key === relativePath || isUnder(key, relativePath)).sort((a, b) => keyDepth(b) - keyDepth(a));
      let dropped = false;
      for (const key of keys) {
        const captured = this.records.get(key)!;
        if (captured.pre.kind === 'directory' && captured.pre.metadataOnly) continue;
        if (describeDifference(identityOf(captured.pre), identityOf(await currentPostimage(joinBytes(this.meta.root, key)))) !== undefined) continue;
        await this.drop(key, captured);
        if (key === relativePath) dropped = true;
      }
      return dropped;
    });
  }

  /**
   * Ends the step: records what it left at every path, writes the manifest and moves the step
   * into the log (evicting old steps over the limits). Returns undefined when nothing was
   * recorded: no path changed, the log is disabled, or a denied safeguard rolled the step back.
   * If it throws, the step stays in progress: call rollback() (or the next open() rolls it back).
   */
  close(): Promise<StepSummary | undefined> {
    return this.serialized(async () => {
      if (this.state === 'closed' || this.state === 'rolled-back') return undefined;
      if (this.state === 'denied' && this.denial?.rolledBack) return this.finish('closed', undefined);
      if (!this.context.persist || !this.folderCreated) return this.finish('closed', undefined);
      if (this.unprotectedReason) return this.finish('closed', await this.context.promote(await this.writeUnprotectedManifest()));

      await this.addContentOfCreatedFolders();
      await this.pruneUnchanged();
      const changed = [...this.records.values()].filter(({ pre }) => !(pre.kind === 'directory' && pre.metadataOnly)).length;
      if (changed === 0) {
        await removeTree(Buffer.from(this.context.directory));
        return this.finish('closed', undefined);
      }
      const records: StepRecord[] = [];
      for (const [key, { pre }] of [...this.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const post = await currentPostimage(joinBytes(this.meta.root, key)).catch(() => undefined);
        records.push({ path: key, pre, ...(post && post.kind !== 'other' && { post }) });
      }
      const manifest = this.manifest({ closedAt: new Date().toISOString(), records, files: changed });
      manifest.bytes = this.bytes + Buffer.byteLength(JSON.stringify(manifest)) + 16;
      if (manifest.bytes > this.context.limits.maxStepBytes) {
        await this.becomeUnprotected(`the step needs ${formatBytes(manifest.bytes)}, over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
        return this.finish('closed', await this.context.promote(await this.writeUnprotectedManifest()));
      }
      await writeJsonAtomic(path.join(this.context.directory, MANIFEST), manifest);
      await this.context.beforePromote?.(this.id);
      return this.finish('closed', await this.context.promote(manifest));
    });
  }

  /**
   * Puts every captured path back and discards the step (after a failure, or to abandon it).
   * Returns problems; with problems the step stays in progress so the next open() retries it.
   */
  rollback(): Promise<string[]> {
    return this.serialized(async () => {
      if (this.state === 'closed' || this.state === 'rolled-back') return [];
      if (this.state === 'denied' && this.denial?.rolledBack) return this.finish('rolled-back', []);
      if (this.context.persist && this.unprotectedReason) {
        await this.context.promote(await this.writeUnprotectedManifest());
        this.finish('closed', undefined);
        throw new Error(`undo step ${this.id} cannot be rolled back: ${this.unprotectedReason}`);
      }
      return this.finish('rolled-back', await this.restoreAll());
    });
  }

  private get capturing(): boolean {
    return this.context.persist && this.unprotectedReason === undefined;
  }

  private finish<T>(state: 'closed' | 'rolled-back', value: T): T {
    this.state = state;
    this.context.finished();
    return value;
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }

  private async checkSafeguards(key: string, action: ModifyAction, stats: Stats | undefined, inside: ReadonlyArray<readonly [string, Stats]>): Promise<void> {
    const thresholds = this.context.thresholds;
    const firstTouch = !this.touched.has(key);
    if (action === 'delete' && stats) {
      // Files that existed before the step; deleting what the step itself created is no loss.
      const preKind = (candidate: string, candidateStats: Stats) => this.touched.get(candidate) ?? kindOf(candidateStats);
      const newly = [[key, stats] as const, ...inside].filter(([candidate, candidateStats]) => !this.deletions.has(candidate) && ['file', 'symlink'].includes(preKind(candidate, candidateStats))).map(([candidate]) => candidate);
      const count = this.deletions.size + newly.length;
      if (count > thresholds.maxDeletions) await this.ask({ kind: 'many-deletions', path: key, detail: `${count} files deleted in this sync (limit ${thresholds.maxDeletions})` });
      for (const candidate of newly) this.deletions.add(candidate);
    }
    if ((action === 'write' || action === 'truncate' || action === 'rename-target') && firstTouch && stats?.isFile() && stats.size > thresholds.largeFileBytes) {
      await this.ask({ kind: 'large-overwrite', path: key, detail: `overwrites ${key}, a file of ${formatBytes(stats.size)} (limit ${formatBytes(thresholds.largeFileBytes)})` });
    }
    if (action === 'rename-target' && firstTouch && stats && thresholds.askRenameOver) {
      await this.ask({ kind: 'rename-over', path: key, detail: `renames over the existing ${kindOf(stats)} ${key}` });
    }
  }

  private async ask(question: SafeguardQuestion): Promise<void> {
    if (this.allowed.has(question.kind)) return;
    const answer = this.meta.ask ? await this.meta.ask(question).catch(() => 'deny' as const) : 'allow';
    if (answer === 'allow') {
      this.allowed.add(question.kind);
      return;
    }
    const canRollBack = this.capturing;
    const problems = canRollBack ? await this.restoreAll() : [];
    this.denial = new SafeguardDenied(question, canRollBack, problems);
    this.state = 'denied';
    if (canRollBack) this.context.finished();
    throw this.denial;
  }

  private async restoreAll(): Promise<string[]> {
    if (!this.context.persist || !this.folderCreated) return [];
    const problems = await restoreRecords({ root: this.meta.root, stepDir: this.context.directory, records: [...this.records].map(([key, { pre }]) => ({ path: key, pre })), checkPostimages: false });
    // With problems the folder stays in progress, so the next open() tries again.
    if (problems.length === 0) await removeTree(Buffer.from(this.context.directory));
    return problems;
  }

  private async capture(key: string, stats: Stats | undefined): Promise<void> {
    const existing = this.records.get(key);
    if (existing && !(existing.pre.kind === 'directory' && existing.pre.metadataOnly)) return;
    await this.ensureFolder();
    await this.recordParents(key);
    const target = joinBytes(this.meta.root, key);
    if (existing) {
      // Known so far only as the parent of a changed path: its mode and times are still the
      // ones from before the step; now it changes itself and needs its attributes too.
      const pre = existing.pre as Extract<Preimage, { kind: 'directory' }>;
      await this.writeMeta(existing.index, key, { ...pre, metadataOnly: false, xattrs: await this.xattrs(target, false) });
      return;
    }
    const index = this.nextIndex++;
    await this.writeMeta(index, key, await this.preimage(index, key, target, stats));
  }

  private async preimage(index: number, key: string, target: Buffer, stats: Stats | undefined): Promise<Preimage> {
    if (!stats) return { kind: 'absent' };
    const inode = { mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs };
    switch (kindOf(stats)) {
      case 'directory':
        return { kind: 'directory', ...inode, xattrs: await this.xattrs(target, false), metadataOnly: false };
      case 'symlink':
        return { kind: 'symlink', ...inode, target: await readTarget(target), xattrs: await this.xattrs(target, true) };
      case 'file': {
        const { hash, size } = await this.saveBlob(index, target);
        return { kind: 'file', ...inode, size, hash, blob: blobName(index), xattrs: await this.xattrs(target, false) };
      }
      default:
        throw new Error(`${key} is neither a file, a folder nor a link; the undo log cannot capture it`);
    }
  }

  /** Gzips the content into `<index>.gz` (temp, fsync, rename), hashing what it read. */
  private async saveBlob(index: number, source: Buffer): Promise<{ hash: string; size: number }> {
    const final = path.join(this.context.directory, blobName(index));
    const temporary = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    const hash = createHash('sha256');
    let size = 0;
    let written = 0;
    const budget = this.context.limits.maxStepBytes - this.bytes;
    const limit = this.context.limits.maxStepBytes;
    try {
      await pipeline(
        createReadStream(source),
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            hash.update(chunk);
            size += chunk.length;
            callback(null, chunk);
          },
        }),
        createGzip({ level: zlibConstants.Z_BEST_SPEED }),
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            written += chunk.length;
            if (written > budget) callback(new StepTooLarge(`the step's saved content went over the ${formatBytes(limit)} limit of one step`));
            else callback(null, chunk);
          },
        }),
        createWriteStream(temporary, { mode: 0o600 }),
      );
      await rename(temporary, final);
      this.unsynced.add(final);
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw error;
    }
    this.bytes += written;
    return { hash: hash.digest('hex'), size };
  }

  private async xattrs(target: Buffer, isSymlink: boolean): Promise<Array<[string, string]> | null> {
    if (!this.context.captureXattrs) return null;
    const attributes = await readXattrs(target, isSymlink).catch(() => undefined);
    if (attributes === undefined) this.xattrFailures += 1;
    return attributes ?? null;
  }

  /** Parents are recorded before children: an existing folder by its mode and times, a missing one as created by the step. */
  private async recordParents(key: string): Promise<void> {
    const parent = parentKey(key);
    if (this.records.has(parent)) return;
    const stats = await lstatOrUndefined(joinBytes(this.meta.root, parent));
    if (stats?.isDirectory()) {
      const index = this.nextIndex++;
      await this.writeMeta(index, parent, { kind: 'directory', mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs, xattrs: null, metadataOnly: true });
      return;
    }
    if (parent === '') throw new Error(`the tree root ${this.meta.root} is not a folder`);
    if (stats) throw new Error(`parent ${parent} of ${key} is not a folder`);
    await this.recordParents(parent);
    const index = this.nextIndex++;
    await this.writeMeta(index, parent, { kind: 'absent' });
  }

  private async writeMeta(index: number, key: string, pre: Preimage): Promise<void> {
    const content = JSON.stringify({ version: UNDO_FORMAT_VERSION, stepId: this.id, root: this.meta.root, index, path: key, pre });
    await this.writeUnsynced(path.join(this.context.directory, metaName(index)), content);
    this.records.set(key, { index, pre });
    this.bytes += Buffer.byteLength(content);
    if (this.bytes > this.context.limits.maxStepBytes) throw new StepTooLarge(`the step's records went over the ${formatBytes(this.context.limits.maxStepBytes)} limit of one step`);
  }

  private async ensureFolder(): Promise<void> {
    if (this.folderCreated) return;
    await mkdir(this.context.directory, { recursive: true });
    await this.writeUnsynced(path.join(this.context.directory, MANIFEST), JSON.stringify(this.manifest({ records: [], files: 0 })));
    this.unsynced.add(path.dirname(this.context.directory));
    this.folderCreated = true;
  }

  /**
   * Temp + rename without waiting for the disk: flush() then makes everything written for one
   * beforeModify durable at once (parallel fsyncs share a journal commit). A power cut before
   * that can only lose captures of paths the caller has not touched yet, which open() ignores.
   */
  private async writeUnsynced(file: string, content: string): Promise<void> {
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temporary, content, { mode: 0o600 });
    await rename(temporary, file);
    this.unsynced.add(file);
  }

  private async flush(): Promise<void> {
    if (this.unsynced.size === 0) return;
    const paths = [...this.unsynced, this.context.directory];
    this.unsynced.clear();
    await Promise.all(paths.map(fsyncPath));
  }

  private manifest(fields: Pick<Manifest, 'records' | 'files'> & { closedAt?: string }): Manifest {
    const notes = [...this.context.notes];
    if (this.xattrFailures > 0) notes.push(`extended attributes of ${this.xattrFailures} path(s) could not be captured`);
    return { version: UNDO_FORMAT_VERSION, id: this.id, syncId: this.meta.syncId, policy: this.meta.policy, root: this.meta.root, startedAt: this.startedAt, protected: true, bytes: this.bytes, notes, ...fields };
  }

  /** Over the single-step limit: keep going without preimages; the step will be listed but cannot be undone. */
  private async becomeUnprotected(reason: string): Promise<void> {
    this.unprotectedReason = reason;
    await writeJsonAtomic(path.join(this.context.directory, UNPROTECTED), { reason, files: this.touched.size });
    for (const name of await readdir(this.context.directory)) {
      if (name !== MANIFEST && name !== UNPROTECTED) await unlink(path.join(this.context.directory, name)).catch(() => {});
    }
    this.records.clear();
    this.bytes = 0;
  }

  private async writeUnprotectedManifest(): Promise<Manifest> {
    const manifest: Manifest = { ...this.manifest({ closedAt: new Date().toISOString(), records: [], files: this.touched.size }), protected: false, unprotectedReason: this.unprotectedReason };
    await writeJsonAtomic(path.join(this.context.directory, MANIFEST), manifest);
    manifest.bytes = await folderBytes(this.context.directory);
    return manifest;
  }

  private async drop(key: string, captured: Captured): Promise<void> {
    // The metadata goes first: without it the path no longer counts as captured.
    for (const name of [metaName(captured.index), ...(captured.pre.kind === 'file' ? [captured.pre.blob] : [])]) {
      const file = path.join(this.context.directory, name);
      this.bytes -= (await stat(file).catch(() => undefined))?.size ?? 0;
      await unlink(file).catch(() => {});
    }
    this.records.delete(key);
    this.touched.delete(key);
    this.deletions.delete(key);
  }

  /** Whatever is inside a folder the step created was created by the step too. */
  private async addContentOfCreatedFolders(): Promise<void> {
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind !== 'absent' || !(await lstatOrUndefined(joinBytes(this.meta.root, key)))?.isDirectory()) continue;
      for (const [inner] of await subtree(this.meta.root, key)) {
        if (!this.records.has(inner)) this.records.set(inner, { index: -1, pre: { kind: 'absent' } });
      }
    }
  }

  /** Paths announced but left as they were (created nothing), and parents with no changed path left below them. */
  private async pruneUnchanged(): Promise<void> {
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind === 'absent' && !(await lstatOrUndefined(joinBytes(this.meta.root, key)))) this.records.delete(key);
    }
    const changed = [...this.records].filter(([, { pre }]) => !(pre.kind === 'directory' && pre.metadataOnly)).map(([key]) => key);
    for (const [key, { pre }] of [...this.records]) {
      if (pre.kind === 'directory' && pre.metadataOnly && !changed.some((other) => isUnder(other, key))) this.records.delete(key);
    }
  }
}

/** Every entry below `key`, parents first, with its stats. */
async function subtree(root: string, key: string): Promise<Array<readonly [string, Stats]>> {
  const found: Array<readonly [string, Stats]> = [];
  const names = await readdir(joinBytes(root, key), { encoding: 'buffer' }).catch(() => [] as Buffer[]);
  for (const name of names.sort(Buffer.compare)) {
    const child = key === '' ? nameFromBytes(name) : `${key}/${nameFromBytes(name)}`;
    const stats = await lstatOrUndefined(joinBytes(root, child));
    if (!stats) continue;
    found.push([child, stats]);
    if (stats.isDirectory()) found.push(...(await subtree(root, child)));
  }
  return found;
}

async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function folderBytes(directory: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(directory).catch(() => [] as string[])) total += (await stat(path.join(directory, name)).catch(() => undefined))?.size ?? 0;
  return total;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
