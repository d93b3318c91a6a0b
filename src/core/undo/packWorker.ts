// The undo log's content mover, on a worker thread of its own. Capturing a preimage means reading
// the file, hashing it and appending it to the step's content file; compacting a closed step means
// compressing that content. For a sync that replaces a thousand small files this is a tenth of a
// second of CPU or more, and on the main thread it stalled the apply it was meant to run beside.
// Here it runs on another core, and the main thread only sends paths and receives what was found.
//
// While a step is open, contents go to its content file, `content.raw`, uncompressed, one after
// another: compressing them there and then cost more CPU than the rest of the capture together,
// on the sync's critical path. Compaction (after the step closed, outside any sync) compresses
// them into frames of about 1 MiB in `content.pack` (brotli at quality 1: over twice as fast as
// gzip's fastest level on source text, and tighter), and each content of 1 MiB or more into a
// stream of its own, `<n>.br`.
//
// This module is the client; the worker's code is packWorkerThread.ts, bundled as
// PACK_WORKER_BUNDLE (workerThread.ts).
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startWorkerThread } from '../workerThread';
import type { BlobRef } from './records';
import { PACK, RAW } from './records';
import { prefixedError } from '../errors';

/** Contents are compressed together in frames of about this many bytes. */
export const FRAME_BYTES = 1024 ** 2;
/** A content this large is compressed into a stream of its own rather than into a frame. */
export const LARGE_CONTENT_BYTES = 1024 ** 2;

/** The lstat fields a capture reports, enough to tell later whether the path changed since. */
export interface CapturedStats {
  dev: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** What the worker found at one path; a file's content is saved at `blob`. */
export type CapturedPath =
  | { kind: 'absent' }
  | { kind: 'file'; stats: CapturedStats; hash: string; blob: BlobRef }
  | { kind: 'symlink'; stats: CapturedStats; target: Buffer }
  | { kind: 'directory' | 'other'; stats: CapturedStats }
  /** A file larger than the room left in the step: not read. */
  | { kind: 'too-large'; stats: CapturedStats }
  | { kind: 'error'; message: string };

/** Where compaction put one raw content (given as its raw blob), in order. */
export type CompactedBlobs = BlobRef[];

/** What the worker is started with: the names of the raw and the compacted content files. */
export interface PackWorkerData {
  raw: string;
  pack: string;
}

/** A request to the worker; `contentFile` names a step's open content file (content.raw) by a number of the client's. */
export type PackWorkerRequest = { id: number } & (
  | { op: 'open'; contentFile: number; path: string }
  | { op: 'capture'; contentFile: number; paths: Uint8Array[]; maxBytes: number }
  | { op: 'sync'; contentFile: number }
  | { op: 'close'; contentFile: number }
  | { op: 'compact'; directory: string; contents: Array<{ offset: number; size: number }>; frameBytes: number; largeBytes: number }
);

/** The worker's answer to the request with the same id. */
export interface PackWorkerReply {
  id: number;
  error?: { message: string; code?: string };
  results?: Array<Exclude<CapturedPath, { kind: 'symlink' }> | { kind: 'symlink'; stats: CapturedStats; target: Uint8Array }>;
  length?: number;
  compacted?: Array<[file: string, offset: number, length: number, start: number]>;
}

/** The worker's bundled code, defined by esbuild in the agent's bundle (esbuild.mjs); undefined under tsx. */
declare const PACK_WORKER_BUNDLE: string | undefined;

function startPackThread(workerData: PackWorkerData): Worker {
  return startWorkerThread(typeof PACK_WORKER_BUNDLE === 'string' ? PACK_WORKER_BUNDLE : undefined, path.join(__dirname, 'packWorkerThread.ts'), workerData);
}

/**
 * How long the worker may sit idle, with no request under way and no content file open, before it
 * stops. Its thread is about 8 MB of the resident agent's memory (5 MB of it given back when it
 * stops, measured in the image's Node), held for good after the first sync that wrote to the host;
 * starting it again takes tens of milliseconds, and a sync warms it before its apply.
 */
const IDLE_STOP_MS = 30_000;

/**
 * The client: one worker per process, started at first use (or by warm()), stopped once idle for
 * `idleStopMs`, and restarted after a crash (the content files it had open fail, and with them
 * their steps). It does not keep the process alive while idle.
 */
export class PackWorkerClient {
  private worker?: Worker;
  private nextRequest = 1;
  private nextContentFile = 1;
  private readonly pending = new Map<number, { resolve: (reply: PackWorkerReply) => void; reject: (error: Error) => void }>();
  /** Content files the worker holds open: it must not stop while a step may still write to one. */
  private readonly openFiles = new Set<number>();
  private idleTimer?: NodeJS.Timeout;

  constructor(private readonly idleStopMs = IDLE_STOP_MS) {}

  /** Whether the worker thread is running (for tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** A number for a new step's content file, for open() and the requests after it. */
  newContentFileId(): number {
    return this.nextContentFile++;
  }

  /** Starts the worker ahead of its first use (that takes tens of milliseconds). */
  warm(): void {
    this.start();
    this.stopWhenIdle();
  }

  /** Creates the content file at `path`, known to the worker as `contentFile` until close(). */
  async open(contentFile: number, path: string): Promise<void> {
    this.openFiles.add(contentFile);
    try {
      await this.request({ op: 'open', contentFile, path });
    } catch (error) {
      this.openFiles.delete(contentFile);
      throw error;
    }
  }

  /**
   * Appends, in order, the content of each path that is a file of at most `maxBytes` bytes to the
   * content file, and reports what each path is; also the content file's length after them.
   */
  async capture(contentFile: number, paths: Buffer[], maxBytes: number): Promise<{ results: CapturedPath[]; length: number }> {
    const reply = await this.request({ op: 'capture', contentFile, paths, maxBytes });
    const results = (reply.results ?? []).map((result): CapturedPath => (result.kind === 'symlink' ? { ...result, target: Buffer.from(result.target) } : result));
    return { results, length: reply.length ?? 0 };
  }

  /** Makes everything appended so far durable; returns the content file's length. */
  async sync(contentFile: number): Promise<number> {
    return (await this.request({ op: 'sync', contentFile })).length ?? 0;
  }

  async close(contentFile: number): Promise<void> {
    try {
      await this.request({ op: 'close', contentFile });
    } finally {
      this.openFiles.delete(contentFile);
      this.stopWhenIdle();
    }
  }

  /**
   * Compresses the raw contents of the closed step in `directory` (given by their raw blobs) and
   * syncs what it wrote; returns each one's new blob. The raw file is left for the caller to
   * remove once the manifest points at the new blobs.
   */
  async compact(directory: string, contents: readonly BlobRef[]): Promise<CompactedBlobs> {
    const reply = await this.request({ op: 'compact', directory, contents: contents.map(({ offset, size }) => ({ offset, size })), frameBytes: FRAME_BYTES, largeBytes: LARGE_CONTENT_BYTES });
    return (reply.compacted ?? []).map(([file, offset, length, start], index) => ({ file, offset, length, start, size: contents[index]!.size }));
  }

  private request(message: DistributiveOmit<PackWorkerRequest, 'id'>): Promise<PackWorkerReply> {
    return new Promise((resolve, reject) => {
      clearTimeout(this.idleTimer);
      const worker = this.start();
      const id = this.nextRequest++;
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ ...message, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = startPackThread({ raw: RAW, pack: PACK });
    this.worker = worker;
    worker.unref();
    worker.on('message', (reply: PackWorkerReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) {
        worker.unref();
        this.stopWhenIdle();
      }
      if (reply.error) waiter.reject(prefixedError('undo log', reply.error));
      else waiter.resolve(reply);
    });
    const fail = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const { reject } of this.pending.values()) reject(new Error(`undo log: the capture worker stopped (${error.message})`));
      this.pending.clear();
      // Their descriptors went with the worker: the steps writing to them fail.
      this.openFiles.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    return worker;
  }

  /** Stops the worker after `idleStopMs` with nothing under way and no content file open. */
  private stopWhenIdle(): void {
    clearTimeout(this.idleTimer);
    if (!this.worker || this.pending.size > 0 || this.openFiles.size > 0) return;
    this.idleTimer = setTimeout(() => {
      const worker = this.worker;
      if (!worker || this.pending.size > 0 || this.openFiles.size > 0) return;
      // Forgotten first: its exit is then no failure of anything.
      this.worker = undefined;
      void worker.terminate();
    }, this.idleStopMs);
    this.idleTimer.unref();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export const packWorker = new PackWorkerClient();
