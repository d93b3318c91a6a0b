// The on-disk half of an open step, in its in-progress folder:
//
//   manifest.json    the step's header while it is open (the whole manifest once it closes)
//   content.raw      the captured files' contents one after another, as they were read
//   journal.jsonl    a header line, then one line per captured path
//
// Why one content file and one journal rather than a file or two per path: on a busy ext4 disk,
// creating a file is a journal transaction that can wait behind other commits, and a thousand
// captures took seconds; appending to two open files and syncing each once per round takes
// milliseconds. The content file is written by the capture worker (packWorker.ts), which also
// reads and hashes the files; this side keeps the journal. Compaction compresses a closed step.
//
// The write-ahead rule: a path counts as captured once its journal line and the content it
// points to are both durable; its caller changes the path only then. flush() (group commit)
// makes everything recorded since the previous round durable: the worker fdatasyncs the content
// file while this side appends the waiting lines and fdatasyncs the journal (and syncs the
// folders holding new names). The two syncs run at once rather than one after the other, so a
// crash can leave a line durable whose content is not; that capture's round never ended, so its
// path was never changed, and a rollback finds the path as the line describes it and reads no
// content for it (restore.ts rewrites only a file that differs from its preimage, and checks the
// hash of what it reads). A crash can also tear the last line; that capture was not durable
// either.
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { brotliDecompress, createBrotliDecompress } from 'node:zlib';
import { promisify } from 'node:util';
import type { z } from 'zod';
import { writeFileSynced } from '../atomicFile';
import { writeWhole } from '../files/fsEntry';
import { LruMap } from '../lruMap';
import type { CapturedPath } from './packWorker';
import { packWorker } from './packWorker';
import type { BlobRef, Preimage } from './records';
import { JOURNAL, JournalEntry, JournalHeader, MANIFEST, PACK, RAW, UNDO_FORMAT_VERSION } from './records';
import { prefixedError } from '../errors';

/** Checks bytes about to be written against the step's size limit; throws to refuse them. */
export type SizeCheck = (bytes: number, what: 'saved content' | 'records') => void;

export class StepJournal {
  private journal?: FileHandle;
  private journalLength = 0;
  /** The step's content file in the capture worker (see packWorker.ts), once created. */
  private readonly contentFileId = packWorker.newContentFileId();
  private contentFileOpen = false;
  /** The content file's length as last reported, and whether captures were answered since the last round's sync was sent. */
  private contentLength = 0;
  private unsyncedContent = false;
  /** Entries recorded since the last round began. */
  private waiting: JournalEntry[] = [];
  /** The folders holding new names. */
  private unsyncedPaths: string[] = [];
  private createRunning?: Promise<void>;
  private roundsStarted = 0;
  private roundsDone = 0;
  private flushRunning?: Promise<void>;
  private flushNext?: Promise<void>;
  /** A failed fsync leaves unknown what reached the disk: every later flush fails too. */
  private failure?: { error: unknown };

  constructor(
    readonly directory: string,
    private readonly header: { stepId: string; root: string },
    private readonly checkSize: SizeCheck = () => {},
  ) {}

  /** Whether the folder was created (it stays true after close()). */
  get created(): boolean {
    return this.createRunning !== undefined;
  }

  /** Bytes of saved content so far (including the content of captures that were dropped). */
  get contentBytes(): number {
    return this.contentLength;
  }

  /** Bytes the content file and the journal take; exact once close() returned (the step's other file is its manifest). */
  get filesBytes(): number {
    return this.contentLength + this.journalLength;
  }

  /** Creates the folder, the content file and the journal, and writes `manifest` as the open step's header; once. */
  create(manifest: string): Promise<void> {
    this.createRunning ??= (async () => {
      await mkdir(this.directory, { recursive: true });
      await writeFile(path.join(this.directory, MANIFEST), manifest, { mode: 0o600 });
      await packWorker.open(this.contentFileId, path.join(this.directory, RAW));
      this.contentFileOpen = true;
      const journal = await open(path.join(this.directory, JOURNAL), 'w', 0o600);
      const headerLine = Buffer.from(`${JSON.stringify({ version: UNDO_FORMAT_VERSION, ...this.header } satisfies z.infer<typeof JournalHeader>)}\n`);
      await writeWhole(journal, headerLine, 0);
      this.journalLength = headerLine.length;
      this.journal = journal;
      this.unsyncedPaths.push(path.join(this.directory, MANIFEST), this.directory, path.dirname(this.directory));
    })();
    return this.createRunning;
  }

  /**
   * Reads and hashes, in the capture worker, each of `paths` that is a file, appending its
   * content to the step's content file, as long as the saved content stays within `maxBytes`;
   * reports what each path is. The next round makes the content durable.
   */
  async capture(paths: readonly Buffer[], maxBytes: number): Promise<CapturedPath[]> {
    if (this.failure) throw this.failure.error;
    const { results, length } = await packWorker.capture(this.contentFileId, [...paths], Math.max(0, maxBytes - this.contentLength));
    this.contentLength = Math.max(this.contentLength, length);
    this.unsyncedContent = true;
    return results;
  }

  /**
   * Queues a journal line. Returns the flush round after which it is durable (see durable()).
   * Call it only once the content the line points to was captured.
   */
  record(entry: JournalEntry): number {
    this.waiting.push(entry);
    return this.roundsStarted + 1;
  }

  /** Waits until the lines of `round` (and everything before them) are on disk. */
  async durable(round: number): Promise<void> {
    while (this.roundsDone < round) {
      // Rounds run one after another: one under way that started at `round` or later covers it.
      if (this.flushRunning && this.roundsStarted >= round) await this.flushRunning;
      else await this.flush();
    }
  }

  /** Group commit: makes everything recorded before the call durable; callers arriving while a round runs share the next. */
  flush(): Promise<void> {
    if (!this.flushRunning) {
      const round = this.flushRound().finally(() => {
        if (this.flushRunning === round) this.flushRunning = undefined;
      });
      this.flushRunning = round;
      return round;
    }
    this.flushNext ??= this.flushRunning
      .catch(() => {})
      .then(() => {
        this.flushNext = undefined;
        return this.flush();
      });
    return this.flushNext;
  }

  /**
   * Replaces the open step's header with its closing manifest and makes it durable. In place, not
   * through a temporary file and a rename: while the folder is in progress, a rollback reads the
   * journal and not the manifest, so a torn manifest is harmless; the step counts as closed only
   * once its folder is renamed into the log, after this returned.
   */
  writeManifest(text: string): Promise<void> {
    return writeFileSynced(path.join(this.directory, MANIFEST), text, 0o600);
  }

  /** Closes the open files; the folder stays as it is. */
  async close(): Promise<void> {
    await this.createRunning?.catch(() => {});
    const journal = this.journal;
    this.journal = undefined;
    const contentFileOpen = this.contentFileOpen;
    this.contentFileOpen = false;
    await Promise.all([journal?.close().catch(() => {}), contentFileOpen ? packWorker.close(this.contentFileId).catch(() => {}) : undefined]);
  }

  private async flushRound(): Promise<void> {
    if (this.failure) throw this.failure.error;
    const round = ++this.roundsStarted;
    // Taken now: what is recorded from here on belongs to the next round. These entries point only
    // at captures already answered, and the content file's sync is sent after those answers, so it
    // covers all of them.
    const entries = this.waiting;
    const paths = this.unsyncedPaths;
    const captured = this.unsyncedContent;
    this.waiting = [];
    this.unsyncedPaths = [];
    this.unsyncedContent = false;
    try {
      if (entries.length > 0 && !this.journal) throw new Error(`undo step ${this.header.stepId}: the step folder was not created`);
      const text = entries.length > 0 ? Buffer.from(entries.map((entry) => `${JSON.stringify(entry)}\n`).join('')) : undefined;
      if (text) this.checkSize(text.length, 'records');
      // The content and the lines are synced at once, not one after the other (see the top of
      // this file for why a line durable before its content is harmless).
      const appending = text ? this.append(text).catch(asUndoLogError) : undefined;
      const syncing = captured && this.contentFileOpen ? packWorker.sync(this.contentFileId) : undefined;
      await Promise.all([appending, syncing, ...paths.map((target) => fsyncPath(target).catch(asUndoLogError))]);
    } catch (error) {
      this.failure ??= { error };
      throw error;
    }
    this.roundsDone = round;
  }

  private async append(text: Buffer): Promise<void> {
    const position = this.journalLength;
    this.journalLength += text.length;
    await writeWhole(this.journal!, text, position);
    await this.journal!.datasync();
  }
}

/** Rethrows a file system's error as the undo log's, with its code, as the capture worker's errors are: a full disk is then known to be the state folder's. */
function asUndoLogError(error: unknown): never {
  throw prefixedError('undo log', error);
}

/** What an interrupted step's journal says was captured: the last preimage of each path, in journal order. */
export interface JournalContent {
  header?: z.infer<typeof JournalHeader>;
  preimages: Map<string, Preimage>;
  /** Complete lines that could not be read (a torn last line is expected after a crash, and not listed). */
  ignored: string[];
}

export async function readJournal(directory: string): Promise<JournalContent> {
  const content: JournalContent = { preimages: new Map(), ignored: [] };
  const text = await readFile(path.join(directory, JOURNAL), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  const lines = text.split('\n');
  // Text after the last newline is a line a crash cut short: its capture was never durable, so
  // nobody was told to go ahead with that path. Dropping it is the normal end of a journal.
  lines.pop();
  lines.forEach((line, number) => {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      content.ignored.push(`ignored line ${number + 1} of the journal: not JSON`);
      return;
    }
    if (number === 0) {
      const header = JournalHeader.safeParse(json);
      if (header.success) content.header = header.data;
      else content.ignored.push('ignored the journal\'s header: it is not one this version of Clud wrote');
      return;
    }
    const entry = JournalEntry.safeParse(json);
    if (!entry.success) content.ignored.push(`ignored line ${number + 1} of the journal: not a journal entry`);
    else content.preimages.set(entry.data.path, entry.data.pre);
  });
  return content;
}

const decompress = promisify(brotliDecompress);

/**
 * Reads saved contents back. A restore reads many files of the same frame, mostly one after
 * another: the last few frames stay decompressed.
 */
export class BlobReader {
  private readonly frames = new LruMap<string, Promise<Buffer>>(CACHED_FRAMES);

  constructor(private readonly stepDirectory: string) {}

  /** The streams that produce the content of `ref` (to pipe into a destination). */
  async streams(ref: BlobRef): Promise<Readable[]> {
    const file = path.join(this.stepDirectory, ref.file);
    if (ref.file === RAW) return [ref.size === 0 ? Readable.from([]) : createReadStream(file, { start: ref.offset, end: ref.offset + ref.size - 1 })];
    if (ref.file !== PACK) return [createReadStream(file, { start: ref.offset, end: ref.offset + ref.length - 1 }), createBrotliDecompress()];
    const frame = await this.frame(file, ref);
    if (ref.start + ref.size > frame.length) throw new Error('the saved content is corrupt (outside its frame)');
    return [Readable.from([frame.subarray(ref.start, ref.start + ref.size)])];
  }

  private frame(file: string, ref: BlobRef): Promise<Buffer> {
    const key = `${ref.file}:${ref.offset}`;
    let frame = this.frames.get(key);
    if (!frame) {
      frame = (async () => {
        const handle = await open(file, 'r');
        try {
          const compressed = Buffer.alloc(ref.length);
          const { bytesRead } = await handle.read(compressed, 0, ref.length, ref.offset);
          if (bytesRead !== ref.length) throw new Error('the saved content is corrupt (the pack is short)');
          return await decompress(compressed);
        } finally {
          await handle.close();
        }
      })();
      this.frames.set(key, frame);
      frame.catch(() => this.frames.delete(key));
    }
    return frame;
  }
}

const CACHED_FRAMES = 16;

export async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
