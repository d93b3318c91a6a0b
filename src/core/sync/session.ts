// One workspace's continuous sync, owned by one process (the resident agent, once it exists): the
// state store, a watcher on each root, the dirty set, and ONE queue through which every cycle
// and every client job that writes runs, so nothing races a background cycle.
//
// Dirty paths from either watcher (or hints from the editor) collect in one set; when the queue
// is free, they become one incremental cycle. A full cycle (the periodic truth) runs at start,
// every `fullCycleIntervalMs`, after a watcher overflowed or degraded, and whenever an incremental
// cycle cannot judge its region alone. A halt pauses background cycles until resume().
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import type { SyncReport } from '../protocol';
import type { ApplyOptions } from './apply';
import { runStoreCycle } from './incremental';
import type { Policy, Side } from './reconcile';
import type { UndoRecording } from './recordedApply';
import { SyncStateFiles } from './stateFiles';
import { SyncStateStore } from './stateStore';
import { TreeWatcher, type DirtyBatch, type WatchDegraded } from './watcher';

export interface SyncSessionOptions {
  roots: Record<Side, string>;
  stateDir: string;
  excludes: readonly string[];
  policy: Policy;
  /** How often the whole trees are rescanned even when no event came (Mutagen: 10 s). */
  fullCycleIntervalMs?: number;
  /** The watcher's quiet period. */
  quietMs?: number;
  /** Poll a side instead of watching it (e.g. a bind mount whose events do not arrive). */
  poll?: Partial<Record<Side, boolean>>;
  pollIntervalMs?: number;
  beforeModify?: ApplyOptions['beforeModify'];
  undo?: UndoRecording;
  /** Start with background cycles paused (auto-sync off or on-save): events still collect. */
  paused?: boolean;
}

export type CycleKind = 'incremental' | 'full';
export interface CycleFinished { kind: CycleKind; report: SyncReport; dirtyPaths: number }

export const DEFAULT_FULL_CYCLE_INTERVAL_MS = 10_000;

export class SyncSession extends EventEmitter<{
  started: [CycleKind];
  /** New dirty paths collected (changesWaiting may have changed). */
  dirty: [];
  cycle: [CycleFinished];
  degraded: [Side, WatchDegraded];
  halted: [{ side: Side; reason: string }];
  error: [Error];
}> {
  private readonly dirty = new Set<string>();
  /** Every time a watcher degraded (also before a listener could attach, during open()). */
  readonly degradedWatches: Array<WatchDegraded & { side: Side }> = [];
  private fullCycleWanted = true;
  private queue: Promise<unknown> = Promise.resolve();
  private drainScheduled = false;
  private readonly watchers: TreeWatcher[] = [];
  private fullCycleTimer: NodeJS.Timeout | undefined;
  private paused = false;
  private closed = false;
  private readonly files: SyncStateFiles;

  private constructor(private readonly options: SyncSessionOptions, readonly store: SyncStateStore) {
    super();
    this.files = new SyncStateFiles(options.stateDir);
  }

  /** Opens the state, starts both watchers and queues the first (full) cycle. */
  static async open(options: SyncSessionOptions): Promise<SyncSession> {
    const session = new SyncSession(options, await SyncStateStore.open(options.stateDir));
    if (options.paused || (await session.files.readHalt())) session.paused = true;
    for (const side of ['host', 'container'] as const) {
      const watcher = new TreeWatcher(options.roots[side], {
        excludes: options.excludes,
        onBatch: (batch) => session.onBatch(batch),
        ...(options.quietMs !== undefined && { quietMs: options.quietMs }),
        ...(options.poll?.[side] && { poll: true }),
        ...(options.pollIntervalMs !== undefined && { pollIntervalMs: options.pollIntervalMs }),
      });
      watcher.on('degraded', (reason) => {
        session.degradedWatches.push({ side, ...reason });
        session.emit('degraded', side, reason);
      });
      session.watchers.push(watcher);
      await watcher.start();
    }
    session.fullCycleTimer = setInterval(() => session.requestFullCycle(), options.fullCycleIntervalMs ?? DEFAULT_FULL_CYCLE_INTERVAL_MS);
    session.scheduleDrain();
    return session;
  }

  /** Paths that may have changed (e.g. a file the editor saved), as a watcher would report them. */
  markDirty(paths: Iterable<string>): void {
    for (const key of paths) this.dirty.add(key);
    this.emit('dirty');
    this.scheduleDrain();
  }

  requestFullCycle(): void {
    this.fullCycleWanted = true;
    this.scheduleDrain();
  }

  /** Whether either side has changes not yet carried (as far as events tell). */
  get changesWaiting(): boolean {
    return this.dirty.size > 0 || this.fullCycleWanted;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Background cycles stop; events still collect, so resume() carries what happened meanwhile. */
  pause(): void {
    this.paused = true;
  }

  /** Lifts a pause (not a halt: see resume()); background cycles carry what collected meanwhile. */
  unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    this.scheduleDrain();
  }

  /**
   * Runs one cycle now for what has collected, paused or not (a halt still stops it): the editor's
   * saves in on-save mode, and a client that wants the other side up to date before it goes on.
   */
  flush(): Promise<CycleFinished | undefined> {
    return this.runJob(() => this.cycle());
  }

  /** Lifts a pause and a halt (as today's resume: the agreed state is forgotten after a halt). */
  async resume(): Promise<void> {
    await this.runJob(async () => {
      if (await this.files.readHalt()) {
        await this.files.clearHalt();
        await this.store.commit({ ancestor: new Map([...this.store.ancestor.keys()].map((key) => [key, undefined])) });
      }
    });
    this.paused = false;
    this.requestFullCycle();
  }

  /**
   * Runs `job` in the session's one queue: no cycle runs while it does. Every client request that
   * writes (push, pull, resolve, undo, restore) goes through here.
   */
  runJob<T>(job: (store: SyncStateStore) => Promise<T>): Promise<T> {
    const run = this.queue.then(() => job(this.store));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.fullCycleTimer);
    for (const watcher of this.watchers) watcher.close();
    await this.queue;
    await this.store.close();
  }

  private onBatch(batch: DirtyBatch): void {
    if (batch.rescan) this.fullCycleWanted = true;
    for (const key of batch.paths) this.dirty.add(key);
    this.emit('dirty');
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.closed) return;
    this.drainScheduled = true;
    this.queue = this.queue.then(() => this.drain()).catch((error: unknown) => {
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
    });
  }

  /** One cycle for everything collected so far; then, if more came meanwhile, another. */
  private async drain(): Promise<void> {
    this.drainScheduled = false;
    if (this.closed || this.paused) return;
    await this.cycle();
    if (this.dirty.size > 0 || this.fullCycleWanted) this.scheduleDrain();
  }

  /** One cycle of what has collected (none when nothing has, or a halt stands). */
  private async cycle(): Promise<CycleFinished | undefined> {
    if (this.closed || (this.paused && (await this.files.readHalt()))) return undefined;
    if (!this.fullCycleWanted && this.dirty.size === 0) return undefined;
    const dirty = [...this.dirty];
    this.dirty.clear();
    let kind: CycleKind = this.fullCycleWanted ? 'full' : 'incremental';
    this.fullCycleWanted = false;
    const common = {
      roots: this.options.roots, excludes: this.options.excludes, policy: this.options.policy, store: this.store,
      keptRoot: path.join(this.options.stateDir, 'kept'), beforeModify: this.options.beforeModify, undo: this.options.undo,
    };
    this.emit('started', kind);
    this.options.undo?.log.prepareToRecord();
    let result = await runStoreCycle(kind === 'full' ? common : { ...common, dirty });
    if (result.fullCycleNeeded !== undefined) {
      kind = 'full';
      result = await runStoreCycle(common);
    }
    const report = result.report as SyncReport;
    if (report.halted) {
      await this.files.writeHalt({ ...report.halted, at: new Date().toISOString() });
      this.paused = true;
      this.emit('halted', report.halted);
    }
    // A change skipped because the file changed under it needs nothing here: that change was an
    // event too, so its path is dirty again already.
    const finished = { kind, report, dirtyPaths: dirty.length };
    this.emit('cycle', finished);
    return finished;
  }
}
