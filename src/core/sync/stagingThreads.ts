// Where a burst's small files are staged: on worker threads beside the agent's own, which checks,
// links and records the files meanwhile. A small file's staging (stageSmallFile.ts: open, read,
// hash, create, write, chown, chmod, utimes, close) is most of what its apply costs, and the
// kernel does that work for two threads at once: on this machine's disk, two staging threads
// applied 1,000 new files in 300-350 ms against 520-590 ms on the agent's thread alone
// (bench/profileApply.ts; three threads on its two cores were slower than two). The threads cost
// about 19 MB and 30 ms to start (87-102 ms in the container while a burst was being written), so
// a cycle of a few files stages on the agent's own thread (applyChanges decides), the threads end
// once idle, and the watchers start them when a burst begins (warm()), so that they are running
// by the time its cycle applies it. Their code is stagingThread.ts, bundled as
// STAGING_THREAD_BUNDLE (workerThread.ts).
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startWorkerThread } from '../workerThread';
import type { StageRequest, StageResult } from './stageSmallFile';

/** The thread's bundled code, defined by esbuild (esbuild.mjs); undefined under tsx. */
declare const STAGING_THREAD_BUNDLE: string | undefined;

export interface StagingBatch {
  id: number;
  requests: StageRequest[];
}

/** A staging that threw: its message and errno code, as a thread can pass them on. */
export type StagingOutcome = StageResult | { error: string; code?: string };

export interface StagingReply {
  id: number;
  results: StagingOutcome[];
}

/** Two threads measured best on two cores; more cores than that are not measured. */
const THREADS = Math.min(2, os.availableParallelism());

/**
 * An apply with at least this many small files stages them on the staging threads: starting them
 * costs about 30 ms, which a few files' staging does not earn back.
 */
export const STAGING_THREADS_MIN_FILES = 128;

/** How long the threads stay after their last batch: a burst arrives as a few cycles in a row. */
const IDLE_MS = 5000;

interface Queued {
  request: StageRequest;
  resolve: (result: StageResult) => void;
  reject: (error: Error) => void;
}

class StagingThreads {
  private readonly threads: Array<Worker | undefined> = [];
  private readonly pending = new Map<number, { thread: Worker; batch: Queued[] }>();
  private queued: Queued[] = [];
  private nextId = 0;
  private idleTimer?: NodeJS.Timeout;

  /** Stages one file on a thread. Requests made in one turn of the event loop go as one batch per thread. */
  stage(request: StageRequest): Promise<StageResult> {
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) queueMicrotask(() => this.send());
      // Copied into buffers of their own: a pooled Buffer would carry its whole pool to the thread.
      this.queued.push({ request: { ...request, source: new Uint8Array(request.source), staged: new Uint8Array(request.staged) }, resolve, reject });
    });
  }

  private send(): void {
    clearTimeout(this.idleTimer);
    const queued = this.queued;
    this.queued = [];
    const count = Math.min(THREADS, queued.length);
    for (let index = 0; index < count; index += 1) {
      const batch = queued.filter((_, position) => position % count === index);
      const id = this.nextId++;
      const thread = this.thread(index);
      this.pending.set(id, { thread, batch });
      // Held while it has work: an awaited apply keeps the process alive.
      thread.ref();
      thread.postMessage({ id, requests: batch.map(({ request }) => request) } satisfies StagingBatch);
    }
  }

  private thread(index: number): Worker {
    const running = this.threads[index];
    if (running) return running;
    const thread = startWorkerThread(typeof STAGING_THREAD_BUNDLE === 'string' ? STAGING_THREAD_BUNDLE : undefined, path.join(__dirname, 'stagingThread.ts'));
    thread.on('message', ({ id, results }: StagingReply) => {
      const { batch } = this.pending.get(id)!;
      this.pending.delete(id);
      if (![...this.pending.values()].some((pending) => pending.thread === thread)) thread.unref();
      batch.forEach(({ resolve, reject }, position) => {
        const result = results[position]!;
        if (typeof result === 'string') resolve(result);
        else reject(Object.assign(new Error(result.error), result.code && { code: result.code }));
      });
      if (this.pending.size === 0) this.endWhenIdle();
    });
    const failed = (error: Error) => {
      if (this.threads[index] === thread) this.threads[index] = undefined;
      for (const [id, { thread: owner, batch }] of this.pending) {
        if (owner !== thread) continue;
        this.pending.delete(id);
        for (const { reject } of batch) reject(error);
      }
    };
    thread.on('error', failed);
    thread.on('exit', (code) => failed(new Error(`a staging thread exited (code ${code})`)));
    // Idle, never what keeps a process (a CLI command, a test run) alive; after the listeners,
    // since adding a 'message' listener references the thread again.
    thread.unref();
    this.threads[index] = thread;
    return thread;
  }

  /**
   * Starts the threads now, if they are not running, for a burst whose cycle is coming (the
   * watchers say so): they then start while the burst's writes settle, not in its apply. They end
   * after IDLE_MS if no batch comes.
   */
  warm(): void {
    for (let index = 0; index < THREADS; index += 1) this.thread(index);
    if (this.pending.size === 0) this.endWhenIdle();
  }

  /** Ends the threads IDLE_MS from now, unless a batch comes first (send() stops the timer). */
  private endWhenIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.stop(), IDLE_MS).unref();
  }

  /** Threads running now (for tests: a few files start none). */
  get running(): number {
    return this.threads.filter(Boolean).length;
  }

  /** Ends the threads once nothing is pending; the next batch starts new ones. */
  async stop(): Promise<void> {
    if (this.pending.size > 0) return;
    clearTimeout(this.idleTimer);
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((thread) => thread?.terminate()));
  }
}

export const stagingThreads = new StagingThreads();
