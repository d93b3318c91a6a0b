// The on-disk half of an open step, in its in-progress folder:
//
//   manifest.json    the step's header while it is open (the whole manifest once it closes)
//   content.pack     gzip members one after another: the content of each captured file under 1 MiB
//   <index>.gz       the gzip of one larger file, streamed
//   journal.jsonl    a header line, then one line per captured (or forgotten) path
//
// Why one pack and one journal rather than a file or two per path: on a busy ext4 disk, creating
// a file is a journal transaction that can wait behind other commits, and a thousand captures
// took seconds; appending to two open files and syncing each once per round takes milliseconds.
//
// The write-ahead rule: a path counts as captured once its journal line is durable, and a line
// is written only after the content it points to is durable. flush() (group commit) keeps that
// order for everything recorded since the previous round: fdatasync the pack (and new large
// files, and the folder), then append the waiting lines and fdatasync the journal. A crash can
// tear the last line; that capture was not durable, so its caller had not changed the path yet.
import { createReadStream, fdatasync, writeSync } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { z } from 'zod';
import type { BlobRef, Preimage } from './records';
import { JOURNAL, JournalEntry, JournalHeader, MANIFEST, PACK, UNDO_FORMAT_VERSION } from './records';

export class StepJournal {
  private pack?: FileHandle;
  private journal?: FileHandle;
  private packLength = 0;
  private journalLength = 0;
  private packDirty = false;
  /** Lines recorded since the last round began, each ending in a newline. */
  private waiting: string[] = [];
  /** Files written whole (large blobs, the header manifest) and the folders holding new names. */
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
  ) {}

  /** Whether the folder was created (it stays true after close()). */
  get created(): boolean {
    return this.createRunning !== undefined;
  }

  /** Creates the folder, the pack and the journal, and writes `manifest` as the open step's header; once. */
  create(manifest: string): Promise<void> {
    this.createRunning ??= (async () => {
      await mkdir(this.directory, { recursive: true });
      await writeFile(path.join(this.directory, MANIFEST), manifest, { mode: 0o600 });
      this.pack = await open(path.join(this.directory, PACK), 'w', 0o600);
      const journal = await open(path.join(this.directory, JOURNAL), 'w', 0o600);
      const headerLine = Buffer.from(`${JSON.stringify({ version: UNDO_FORMAT_VERSION, ...this.header } satisfies z.infer<typeof JournalHeader>)}\n`);
      await journal.write(headerLine, 0, headerLine.length, 0);
      this.journalLength = headerLine.length;
      this.journal = journal;
      this.unsyncedPaths.push(path.join(this.directory, MANIFEST), this.directory, path.dirname(this.directory));
    })();
    return this.createRunning;
  }

  /** Appends gzipped content to the pack, synchronously (for small writes from page-cached files, cheaper than a trip to the thread pool). */
  appendSync(gzipped: Buffer): BlobRef {
    const ref = this.reserve(gzipped.length);
    writeSync(this.pack!.fd, gzipped, 0, gzipped.length, ref.offset);
    return ref;
  }

  async append(gzipped: Buffer): Promise<BlobRef> {
    const ref = this.reserve(gzipped.length);
    await this.pack!.write(gzipped, 0, gzipped.length, ref.offset);
    return ref;
  }

  /** A large file's own blob, written by the caller to `path.join(directory, name)`; the next round syncs it. */
  fileWritten(name: string, length: number): BlobRef {
    this.unsyncedPaths.push(path.join(this.directory, name));
    return { file: name, offset: 0, length };
  }

  /**
   * Queues a journal line. Returns the flush round after which it is durable (see durable()),
   * and its size. Call it only once the content the line points to is written.
   */
  record(entry: JournalEntry): { round: number; bytes: number } {
    const line = `${JSON.stringify(entry)}\n`;
    this.waiting.push(line);
    return { round: this.roundsStarted + 1, bytes: Buffer.byteLength(line) };
  }

  /** Waits until the lines of `round` (and everything before them) are on disk. */
  async durable(round: number): Promise<void> {
    while (this.roundsDone < round) await this.flush();
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

  /** Closes the open files; the folder stays as it is. */
  async close(): Promise<void> {
    await this.createRunning?.catch(() => {});
    const handles = [this.pack, this.journal];
    this.pack = undefined;
    this.journal = undefined;
    await Promise.all(handles.map((handle) => handle?.close().catch(() => {})));
  }

  private reserve(length: number): BlobRef {
    if (!this.pack) throw new Error(`undo step ${this.header.stepId}: the step folder was not created`);
    const offset = this.packLength;
    this.packLength += length;
    this.packDirty = true;
    return { file: PACK, offset, length };
  }

  private async flushRound(): Promise<void> {
    if (this.failure) throw this.failure.error;
    const round = ++this.roundsStarted;
    const lines = this.waiting;
    const paths = this.unsyncedPaths;
    const packDirty = this.packDirty;
    this.waiting = [];
    this.unsyncedPaths = [];
    this.packDirty = false;
    try {
      await Promise.all([packDirty && this.pack ? datasync(this.pack.fd) : undefined, ...paths.map(fsyncPath)]);
      if (lines.length > 0) {
        if (!this.journal) throw new Error(`undo step ${this.header.stepId}: the step folder was not created`);
        const text = Buffer.from(lines.join(''));
        await this.journal.write(text, 0, text.length, this.journalLength);
        this.journalLength += text.length;
        await this.journal.datasync();
      }
    } catch (error) {
      this.failure = { error };
      throw error;
    }
    this.roundsDone = round;
  }
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
    else if ('forget' in entry.data) content.preimages.delete(entry.data.forget);
    else content.preimages.set(entry.data.path, entry.data.pre);
  });
  return content;
}

/** The gzipped bytes of one saved file. */
export function readBlob(stepDirectory: string, ref: BlobRef): ReadStream {
  return createReadStream(path.join(stepDirectory, ref.file), { start: ref.offset, end: ref.offset + ref.length - 1 });
}

function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}

export async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
