// The on-disk half of an open step, in its in-progress folder:
//
//   manifest.json    the step's header while it is open (the whole manifest once it closes)
//   content.pack     frames one after another, each a brotli stream of several captured files'
//                    contents (files under 1 MiB)
//   <index>.br       the brotli stream of one larger file
//   journal.jsonl    a header line, then one line per captured (or forgotten) path
//
// Why one pack and one journal rather than a file or two per path: on a busy ext4 disk, creating
// a file is a journal transaction that can wait behind other commits, and a thousand captures
// took seconds; appending to two open files and syncing each once per round takes milliseconds.
// Why frames: compressing a thousand small files one call each cost more than the compression;
// one call per frame (about 1 MiB) is cheaper and packs tighter (similar files share a window).
//
// The write-ahead rule: a path counts as captured once its journal line is durable, and a line
// is written only after the content it points to is durable. flush() (group commit) keeps that
// order for everything recorded since the previous round: seal the open frame, fdatasync the
// pack (and new large files, and the folder), then append the waiting lines and fdatasync the
// journal. A crash can tear the last line; that capture was not durable, so its caller had not
// changed the path yet.
import { createReadStream, fdatasync, writeSync } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { brotliDecompress, createBrotliDecompress } from 'node:zlib';
import { promisify } from 'node:util';
import type { z } from 'zod';
import { compressFrame } from './capture';
import type { BlobRef, Preimage } from './records';
import { JOURNAL, JournalEntry, JournalHeader, MANIFEST, PACK, UNDO_FORMAT_VERSION } from './records';

/** Contents are packed into frames of about this many bytes before compressing. */
export const FRAME_BYTES = 1024 ** 2;

/** What a packed preimage's blob is until its frame is sealed (never written: a blob's length is positive). */
export const UNSEALED: BlobRef = Object.freeze({ file: PACK, offset: 0, length: 0, start: 0, size: 0 });

/** Checks bytes about to be written against the step's size limit; throws to refuse them. */
export type SizeCheck = (bytes: number, what: 'saved content' | 'records') => void;

export class StepJournal {
  private pack?: FileHandle;
  private journal?: FileHandle;
  private packLength = 0;
  private journalLength = 0;
  private packDirty = false;
  /** Contents waiting to be sealed into the next frame, and the preimages that will point at them. */
  private frame: Array<{ content: Buffer; into: { blob: BlobRef } }> = [];
  private frameBytes = 0;
  /** Entries recorded since the last round began; serialized when the round writes them (their blobs are known by then). */
  private waiting: JournalEntry[] = [];
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
    private readonly checkSize: SizeCheck = () => {},
  ) {}

  /** Whether the folder was created (it stays true after close()). */
  get created(): boolean {
    return this.createRunning !== undefined;
  }

  /** Whether packed contents wait for their frame to be sealed. */
  get hasUnsealedContent(): boolean {
    return this.frame.length > 0;
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

  /**
   * Packs a file's content: `into.blob` is set when its frame is sealed, which happens once the
   * frame is full, or at the next flush round at the latest (so before the line pointing at it is
   * written). Synchronous: sealing compresses and writes on this thread.
   */
  packContent(content: Buffer, into: { blob: BlobRef }): void {
    if (this.failure) throw this.failure.error;
    this.frame.push({ content, into });
    this.frameBytes += content.length;
    if (this.frameBytes >= FRAME_BYTES) this.sealFrame();
  }

  /** A large file's own blob, written by the caller to `path.join(directory, name)`; the next round syncs it. */
  fileWritten(name: string, length: number, size: number): BlobRef {
    this.unsyncedPaths.push(path.join(this.directory, name));
    return { file: name, offset: 0, length, start: 0, size };
  }

  /**
   * Queues a journal line. Returns the flush round after which it is durable (see durable()).
   * Call it only once the content the line points to is written or packed.
   */
  record(entry: JournalEntry): number {
    this.waiting.push(entry);
    return this.roundsStarted + 1;
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

  /** Compresses the waiting contents as one frame and writes it; a failure fails every later round too. */
  private sealFrame(): void {
    if (this.frame.length === 0) return;
    const parts = this.frame;
    this.frame = [];
    this.frameBytes = 0;
    try {
      if (!this.pack) throw new Error(`undo step ${this.header.stepId}: the step folder was not created`);
      const compressed = compressFrame(Buffer.concat(parts.map(({ content }) => content)));
      this.checkSize(compressed.length, 'saved content');
      const offset = this.packLength;
      writeSync(this.pack.fd, compressed, 0, compressed.length, offset);
      this.packLength += compressed.length;
      this.packDirty = true;
      let start = 0;
      for (const { content, into } of parts) {
        into.blob = { file: PACK, offset, length: compressed.length, start, size: content.length };
        start += content.length;
      }
    } catch (error) {
      this.failure ??= { error };
      throw error;
    }
  }

  private async flushRound(): Promise<void> {
    if (this.failure) throw this.failure.error;
    const round = ++this.roundsStarted;
    this.sealFrame();
    const entries = this.waiting;
    const paths = this.unsyncedPaths;
    const packDirty = this.packDirty;
    this.waiting = [];
    this.unsyncedPaths = [];
    this.packDirty = false;
    try {
      await Promise.all([packDirty && this.pack ? datasync(this.pack.fd) : undefined, ...paths.map(fsyncPath)]);
      if (entries.length > 0) {
        if (!this.journal) throw new Error(`undo step ${this.header.stepId}: the step folder was not created`);
        const text = Buffer.from(entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''));
        this.checkSize(text.length, 'records');
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

const decompress = promisify(brotliDecompress);

/**
 * Reads saved contents back. A restore reads many files of the same frame, mostly one after
 * another: the last few frames stay decompressed.
 */
export class BlobReader {
  private readonly frames = new Map<string, Promise<Buffer>>();

  constructor(private readonly stepDirectory: string) {}

  /** The streams that produce the content of `ref` (to pipe into a destination). */
  async streams(ref: BlobRef): Promise<Readable[]> {
    const file = path.join(this.stepDirectory, ref.file);
    if (ref.file !== PACK) return [createReadStream(file, { start: ref.offset, end: ref.offset + ref.length - 1 }), createBrotliDecompress()];
    const frame = await this.frame(file, ref);
    if (ref.start + ref.size > frame.length) throw new Error('the saved content is corrupt (outside its frame)');
    return [Readable.from([frame.subarray(ref.start, ref.start + ref.size)])];
  }

  private frame(file: string, ref: BlobRef): Promise<Buffer> {
    const key = `${ref.file}:${ref.offset}`;
    let frame = this.frames.get(key);
    if (frame) {
      // Most recently used last.
      this.frames.delete(key);
      this.frames.set(key, frame);
    } else {
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
      for (const old of this.frames.keys()) {
        if (this.frames.size <= CACHED_FRAMES) break;
        this.frames.delete(old);
      }
    }
    return frame;
  }
}

const CACHED_FRAMES = 16;

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
