// The capture half of a step being recorded: saving the versions the step replaces, and noting
// what the caller reports leaving in their place (the step's postimages). A batch of paths goes
// to the capture worker (which reads, hashes and saves their content) and to the attribute
// reader in one request each, and their journal lines become durable in one flush round.
// A path captured ahead of its change counts once its change is announced and the path is found
// as the capture saw it; a path that changed since is captured again. Parents are recorded before
// children. The step writer runs every call that awaits in its one queue, one at a time.
import { readdir, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../atomicFile';
import type { CapturedVersion, Entry } from '../files/entry';
import { lstatSyncOrUndefined, nonFolderAncestor } from '../files/fsEntry';
import { bytesFromName, joinBytes, nameFromBytes } from '../files/pathCodec';
import { currentPostimage, describeDifference, identityOf, permissions, subtree, writtenPostimage } from './fsState';
import type { CapturedPath, CapturedStats } from './packWorker';
import type { Postimage, Preimage, StepRecord } from './records';
import { removeTree, restoreRecords } from './restore';
import { isUnder, keyDepth, MANIFEST, parentKey, UNPROTECTED } from './records';
import { StepJournal } from './stepJournal';
import type { Capture } from './stepRecords';
import { contentLimit, countedRecords, isMetadataOnly, overLimitReason, overStepLimit, withoutUnchanged } from './stepRecords';
import { readXattrsOf } from './xattrs';
import type { Xattrs } from './xattrs';

/** The step went over its single-step limit: it drops its preimages and cannot be undone. */
export class StepTooLarge extends Error {}

/** Paths per request to the capture worker when capturing ahead. */
const BATCH = 256;

const modeOwnerTimes = (stats: CapturedStats) => ({ mode: permissions(stats), uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs });

export class StepCaptures {
  readonly journal: StepJournal;
  private readonly captures = new Map<string, Capture & { ahead?: { stats: CapturedStats | undefined } }>();
  /** What the caller reported leaving at a path (see recordWritten()): the step's postimage there. */
  private readonly written = new Map<string, Postimage>();
  /** Folders above captured paths found to be real folders (or absent), each checked once per step. */
  private readonly realFolders = new Set<string>();
  private readonly rootBytes: Buffer;
  /** Bytes of journal lines written so far; with the saved content (journal.contentBytes), checked against the step limit. */
  private recordBytes = 0;
  private failedXattrs = 0;

  constructor(
    private readonly options: { directory: string; stepId: string; root: string; captureXattrs: boolean; maxStepBytes: number; header: () => string },
  ) {
    this.rootBytes = bytesFromName(options.root);
    this.journal = new StepJournal(options.directory, { stepId: options.stepId, root: options.root }, (bytes, what) => {
      this.recordBytes += bytes;
      this.checkSize(what);
    });
  }

  /** Bytes of journal lines written so far. */
  get bytes(): number {
    return this.recordBytes;
  }

  /** Paths whose extended attributes could not be read. */
  get xattrFailures(): number {
    return this.failedXattrs;
  }

  /** Creates the step's folder, with the open step's manifest; once. */
  openFolder(): Promise<void> {
    return this.journal.create(this.options.header());
  }

  /** The ancestor of `key` that is not a folder, if any (the step only reads through real folders). */
  blockedBy(key: string): string | undefined {
    return nonFolderAncestor(this.options.root, key, this.realFolders);
  }

  /**
   * Captures `keys` ahead of their announcements, in batches, made durable by one flush round.
   * A path that cannot be captured now is left for its announcement. Throws StepTooLarge.
   */
  async ahead(keys: readonly string[]): Promise<void> {
    const fresh = [...new Set(keys)].filter((key) => key !== '' && !this.hasOwn(key) && !this.blockedBy(key));
    for (let start = 0; start < fresh.length; start += BATCH) await this.captureBatch(fresh.slice(start, start + BATCH), true);
    await this.journal.flush();
  }

  /** Makes sure each of `touched` (a path and what is there now) has a durable preimage: taken from a capture made ahead if the path is unchanged since, captured now otherwise. Throws StepTooLarge. */
  async ensure(touched: ReadonlyArray<readonly [string, Stats | undefined]>): Promise<void> {
    const missing = touched.filter(([key, stats]) => !this.adopt(key, stats)).map(([key]) => key);
    if (missing.length > 0) await this.captureBatch(missing, false);
    await this.journal.durable(touched.reduce((round, [key]) => Math.max(round, this.captures.get(key)?.round ?? 0), 0));
  }

  /** The version of a path whose preimage was saved (undefined: none saved). */
  savedVersion(key: string): CapturedVersion | undefined {
    const pre = this.captures.get(key)?.pre;
    if (!pre || isMetadataOnly(pre)) return undefined;
    if (pre.kind === 'file') return { kind: 'file', hash: pre.hash };
    if (pre.kind === 'symlink') return { kind: 'symlink', target: pre.target };
    return { kind: pre.kind };
  }

  /**
   * Records that the change of `key` was carried out and left `next` there (undefined: deleted):
   * the step's postimage there, taken instead of reading the path back when the step closes.
   */
  recordWritten(key: string, next: Entry | undefined): void {
    try {
      const post = writtenPostimage(this.pathOf(key), next);
      if (post) this.written.set(key, post);
    } catch {
      // Unreadable now: the close reads it back as it would without this call.
    }
  }

  /** Drops the preimages of `key` and the paths below it where the disk still holds exactly the preimage; returns the paths dropped. */
  async forget(key: string): Promise<string[]> {
    this.written.delete(key);
    const own = this.captures.get(key);
    if (!own || own.ahead || isMetadataOnly(own.pre)) return [];
    const keys = [...this.captures.keys()].filter((candidate) => candidate === key || isUnder(candidate, key)).sort((a, b) => keyDepth(b) - keyDepth(a));
    const dropped: string[] = [];
    for (const candidate of keys) {
      const { pre, ahead } = this.captures.get(candidate)!;
      if (ahead || isMetadataOnly(pre)) continue;
      if (describeDifference(identityOf(pre), identityOf(await currentPostimage(this.pathOf(candidate)))) !== undefined) continue;
      // Its saved content stays in the content file (bytes on disk, still counted); the journal no longer counts the path.
      this.journal.record({ forget: candidate });
      this.captures.delete(candidate);
      dropped.push(candidate);
    }
    return dropped;
  }

  /**
   * The preimages of what the step changed, for its manifest (see countedRecords): whatever is
   * inside a folder the step created was created by the step too; paths it left absent and parents
   * with no change below them are left out.
   */
  async changes(): Promise<Map<string, Preimage>> {
    const { written } = this;
    const records = countedRecords(this.captures);
    for (const [key, pre] of [...records]) {
      if (pre.kind !== 'absent' || written.has(key) || !lstatSyncOrUndefined(this.pathOf(key))?.isDirectory()) continue;
      for (const [inner] of await subtree(this.options.root, key)) if (!records.has(inner)) records.set(inner, { kind: 'absent' });
    }
    return withoutUnchanged(records, (key) => {
      const post = written.get(key);
      return post ? post.kind === 'absent' : !lstatSyncOrUndefined(this.pathOf(key));
    });
  }

  /** The records of `changes`, sorted by path, each with what the step left there: as the caller reported it, or read back. */
  async withPostimages(changes: ReadonlyMap<string, Preimage>): Promise<StepRecord[]> {
    const records: StepRecord[] = [];
    for (const [key, pre] of [...changes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const post = this.written.get(key) ?? (await currentPostimage(this.pathOf(key)).catch(() => undefined));
      records.push({ path: key, pre, ...(post && post.kind !== 'other' && { post }) });
    }
    return records;
  }

  /**
   * Puts every captured path back and removes the step's folder; returns problems (the folder then
   * stays in progress, so the next open() tries again). What the caller reported writing at a path
   * (recordWritten) is the step's postimage there: a version that is neither it nor the preimage
   * is kept under `keepRoot` before the path is restored (see restoreRecords).
   */
  async restore(keepRoot: string): Promise<string[]> {
    if (!this.journal.created) return [];
    // Contents still in an open frame get their blobs (a path whose capture never became durable
    // was not changed, and restoring it finds the same content and leaves it).
    await this.journal.flush().catch(() => {});
    await this.journal.close();
    const records = [...countedRecords(this.captures)].map(([key, pre]) => ({ path: key, pre, post: this.written.get(key) }));
    const problems = await restoreRecords({ root: this.options.root, stepDir: this.options.directory, records, checkPostimages: false, keepRoot });
    if (problems.length === 0) await removeTree(Buffer.from(this.options.directory));
    return problems;
  }

  /** Over the single-step limit: marks the folder unprotected (`marker`), then deletes every saved preimage. */
  async discard(marker: { reason: string; paths: number }): Promise<void> {
    await this.journal.close();
    await writeJsonAtomic(path.join(this.options.directory, UNPROTECTED), marker);
    for (const name of await readdir(this.options.directory)) {
      if (name !== MANIFEST && name !== UNPROTECTED) await unlink(path.join(this.options.directory, name)).catch(() => {});
    }
    this.captures.clear();
    this.written.clear();
    this.recordBytes = 0;
  }

  /** The path of a key under the root, as bytes. */
  pathOf(key: string): Buffer {
    return joinBytes(this.rootBytes, key);
  }

  private hasOwn(key: string): boolean {
    const known = this.captures.get(key);
    return known !== undefined && !isMetadataOnly(known.pre);
  }

  /**
   * Whether `key` has its own preimage, taking one captured ahead if the path is still as the
   * capture found it (a folder, whose times the step's own changes inside it move: the same
   * folder, mode and owner).
   */
  private adopt(key: string, stats: Stats | undefined): boolean {
    const capture = this.captures.get(key);
    if (!capture || isMetadataOnly(capture.pre)) return false;
    if (!capture.ahead) return true;
    const unchanged = capture.pre.kind === 'directory' ? sameFolder(capture.ahead.stats, stats) : sameState(capture.ahead.stats, stats);
    if (unchanged) capture.ahead = undefined;
    return unchanged;
  }

  /**
   * Captures `keys` with one request to the capture worker and one to the attribute reader (after
   * the worker looked at each path, so they are at least as new as its stats), and journals them;
   * they are durable after the next flush round. Ahead of the announcements (`ahead`), a path that
   * cannot be captured now is left for its announcement.
   */
  private async captureBatch(keys: readonly string[], ahead: boolean): Promise<void> {
    await this.openFolder();
    const found = await this.journal.capture(keys.map((key) => this.pathOf(key)), contentLimit(this.recordBytes, this.options.maxStepBytes));
    const captured: Array<{ key: string; pre: Preimage; stats: CapturedStats | undefined }> = [];
    keys.forEach((key, index) => {
      const result = found[index]!;
      if (result.kind === 'too-large') throw new StepTooLarge(overLimitReason('saved content', this.options.maxStepBytes));
      try {
        const pre = preimageOf(key, result);
        this.recordParents(key, ahead);
        // Recorded so far as the parent of a changed path: its mode and times are the ones from before the step.
        const parent = this.captures.get(key)?.pre;
        captured.push({ key, pre: pre.kind === 'directory' && parent?.kind === 'directory' && parent.metadataOnly ? { ...parent, metadataOnly: false } : pre, stats: 'stats' in result ? result.stats : undefined });
      } catch (error) {
        if (!ahead) throw error;
      }
    });
    const withAttributes = captured.filter(({ pre }) => pre.kind !== 'absent');
    const attributes = await this.xattrsOf(withAttributes.map(({ key, pre }) => ({ target: this.pathOf(key), isSymlink: pre.kind === 'symlink' })));
    withAttributes.forEach(({ pre }, index) => {
      if (pre.kind !== 'absent') pre.xattrs = attributes[index]!;
    });
    for (const { key, pre, stats } of captured) this.add(key, pre, ahead ? { stats } : undefined);
  }

  /** The attributes of several paths, in one request to the reader. */
  private async xattrsOf(paths: ReadonlyArray<{ target: Buffer; isSymlink: boolean }>): Promise<Array<Xattrs | null>> {
    if (!this.options.captureXattrs || paths.length === 0) return paths.map(() => null);
    const attributes = await readXattrsOf(paths).catch(() => paths.map(() => undefined));
    return attributes.map((found) => {
      if (found === undefined) this.failedXattrs += 1;
      return found ?? null;
    });
  }

  /**
   * Parents are recorded before children: an existing folder by its mode and times, a missing one
   * as created by the step. Synchronous (the folders were just scanned), so children of one folder
   * find it recorded by whichever came first.
   */
  private recordParents(key: string, ahead: boolean): void {
    const parent = parentKey(key);
    if (this.captures.has(parent)) return;
    const stats = lstatSyncOrUndefined(this.pathOf(parent));
    const flag = ahead ? { stats: undefined } : undefined;
    if (stats?.isDirectory()) return this.add(parent, { kind: 'directory', ...modeOwnerTimes(stats), xattrs: null, metadataOnly: true }, flag);
    if (parent === '') throw new Error(`the tree root ${this.options.root} is not a folder`);
    if (stats) throw new Error(`parent ${parent} of ${key} is not a folder`);
    this.recordParents(parent, ahead);
    this.add(parent, { kind: 'absent' }, flag);
  }

  /** Journals a path's preimage (its content, if any, is saved already); it counts once the line is durable. */
  private add(key: string, pre: Preimage, ahead: { stats: CapturedStats | undefined } | undefined): void {
    this.captures.set(key, { pre, round: this.journal.record({ path: key, pre }), ...(ahead && { ahead }) });
  }

  /** Throws StepTooLarge when the step is over its limit. */
  private checkSize(what: 'saved content' | 'records'): void {
    const limit = this.options.maxStepBytes;
    if (overStepLimit({ recordBytes: this.recordBytes, contentBytes: this.journal.contentBytes }, limit)) throw new StepTooLarge(overLimitReason(what, limit));
  }
}

/** The preimage of what the capture worker found (attributes still to read). */
function preimageOf(key: string, found: CapturedPath): Preimage {
  switch (found.kind) {
    case 'absent':
      return { kind: 'absent' };
    case 'file':
      return { kind: 'file', ...modeOwnerTimes(found.stats), xattrs: null, size: found.blob.size, hash: found.hash, blob: found.blob };
    case 'symlink':
      return { kind: 'symlink', ...modeOwnerTimes(found.stats), xattrs: null, target: nameFromBytes(found.target) };
    case 'directory':
      return { kind: 'directory', ...modeOwnerTimes(found.stats), xattrs: null, metadataOnly: false };
    case 'error':
      throw new Error(`${key}: ${found.message}`);
    default:
      throw new Error(`${key} is neither a file, a folder nor a link; the undo log cannot capture it`);
  }
}

/** Whether nothing changed at a path between two lstat calls (ctime moves on any change of content, mode, owner or xattrs). */
function sameState(before: CapturedStats | undefined, now: CapturedStats | undefined): boolean {
  if (!before || !now) return before === now;
  return sameInodeModeOwner(before, now) && before.size === now.size && before.mtimeMs === now.mtimeMs && before.ctimeMs === now.ctimeMs;
}

/** Whether a path is still the same folder, with the same mode and owner (its times change with what is inside it). */
function sameFolder(before: CapturedStats | undefined, now: CapturedStats | undefined): boolean {
  if (!before || !now || (now.mode & 0o170000) !== 0o040000) return false;
  return sameInodeModeOwner(before, now);
}

function sameInodeModeOwner(before: CapturedStats, now: CapturedStats): boolean {
  return before.ino === now.ino && before.dev === now.dev && before.mode === now.mode && before.uid === now.uid && before.gid === now.gid;
}
