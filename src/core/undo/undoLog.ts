// The undo log: every sync that writes to the host becomes a step that can be undone, newest
// first. Layout of the directory it is given (outside both synced trees):
//
//   VERSION               format version; a mismatch disables undo until discard()
//   in-progress/<id>/     the step being written (write-ahead); rolled back by open() after a crash
//   steps/<id>/           closed steps: manifest.json, and content.raw + journal.jsonl until the step is
//                         compacted, then content.pack and <n>.br (see stepJournal.ts, compaction.ts)
//   undoing/<id>/         a step whose undo is under way; open() finishes it after a crash
//   trash/                evicted steps, removed right after being moved there
//   barriers.json         barriers last detected
//
// A closed step may carry its group (steps/<id>/group.json: a turn, a command, a checkpoint, a
// burst of background syncs). list() and undo() count groups: consecutive steps with the same
// group id are one entry, undone together, newest step first.
//
// Step ids are "<6-digit sequence>-<random>", so they sort oldest first.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import * as path from 'node:path';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from '../atomicFile';
import { regionFilter } from '../files/entry';
import { lstatOrUndefined } from '../files/fsEntry';
import { joinBytes } from '../files/pathCodec';
import type { UndoRefusalCode } from '../protocol';
import { findBarriers, inBarrierScope } from './barriers';
import { compactStep, holdsRawContent, holdsUncompactedFiles } from './compaction';
import type { BarrierScope, FoundBarrier } from './barriers';
import { currentPostimage, describeDifference, identityOf, keepCurrent, subtree } from './fsState';
import { BarriersFile, GROUP, isUnder, Manifest, MANIFEST, StepGroupRecord, UNDO_FORMAT_VERSION, UnprotectedMarker, UNPROTECTED } from './records';
import type { StepRecord } from './records';
import { removeTree, restoreRecords } from './restore';
import { fsyncPath, readJournal } from './stepJournal';
import { StepWriter } from './stepWriter';
import type { Barrier, KeptVersion, RecoveredStep, StepGroup, StepMeta, StepSummary, UndoLimits, UndoResult } from './types';
import { DEFAULT_LIMITS, DEFAULT_THRESHOLDS } from './types';
import { packWorker } from './packWorker';
import { startXattrReader, XATTR_TOOLS_MISSING, xattrToolsAvailable } from './xattrs';
import { formatBytes } from '../display';

export interface UndoLogOptions {
  /** Where versions that a forced undo or a crash recovery would overwrite are copied (outside both trees). */
  keptDirectory: string;
  limits?: Partial<UndoLimits>;
  /** The host root to roll interrupted steps back in, when it is not the one they recorded (same folder, other mount). */
  root?: string;
  /** Capture extended attributes (default true; needs getfattr/setfattr, else recorded as not captured). */
  xattrs?: boolean;
  /**
   * Roll back steps a crash left open and finish interrupted undos (default true). Only a process
   * that reports what it recovered should: a sync does, compaction in the background does not.
   */
  recover?: boolean;
  /** Test seam: runs after a closing step's manifest is written, before the step is promoted. */
  hooks?: { beforePromote?: (stepId: string) => void | Promise<void> };
}

const SEQUENCE_DIGITS = 6;
const sequenceOf = (id: string): number => Number.parseInt(id.slice(0, id.indexOf('-')), 10) || 0;
const byAge = (a: string, b: string): number => sequenceOf(a) - sequenceOf(b) || (a < b ? -1 : a > b ? 1 : 0);

export class UndoLog {
  private openStep?: StepWriter;
  /** Set while an undo runs: no step may open meanwhile (both change the host tree). */
  private undoRunning = false;
  /** Closed steps never change (but for dropPreimages, which updates this), so each manifest is read once. */
  private readonly manifests = new Map<string, Manifest>();
  /** Each closed step's group as read from its group.json (null: none), read once like the manifests. */
  private readonly groups = new Map<string, StepGroup | null>();
  private lastSequence = 0;
  private disabled?: string;
  private readonly limits: UndoLimits;
  /**
   * The ids in steps/, oldest first, as last read, and kept as this log moves steps in and out:
   * the resident agent's log is the folder's one owner. Undefined: read it again.
   */
  private stepIds: string[] | undefined;

  private constructor(
    readonly directory: string,
    private readonly options: UndoLogOptions,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
  }

  /**
   * Opens (creating if needed) the log in `directory`: checks the format version, then rolls back
   * any step a crash left in progress and finishes any interrupted undo. Call it only while no
   * other process writes to the log (under the sync lock): a step another live process is writing
   * would be rolled back too.
   */
  static async open(directory: string, options: UndoLogOptions): Promise<{ log: UndoLog; recovered: RecoveredStep[] }> {
    const log = new UndoLog(directory, options);
    await mkdir(directory, { recursive: true });
    log.disabled = await log.checkVersion();
    if (log.disabled) return { log, recovered: [] };
    for (const sub of ['steps', 'in-progress', 'undoing', 'trash']) await mkdir(path.join(directory, sub), { recursive: true });
    for (const name of await readdir(path.join(directory, 'trash'))) await removeTree(Buffer.from(path.join(directory, 'trash', name)));
    const ids = await Promise.all(['steps', 'in-progress', 'undoing'].map((sub) => readdir(path.join(directory, sub))));
    log.lastSequence = Math.max(0, ...ids.flat().map(sequenceOf));
    const recovered: RecoveredStep[] = [];
    if (options.recover === false) return { log, recovered };
    for (const id of ids[2]!.sort(byAge).reverse()) recovered.push(await log.finishInterruptedUndo(id));
    for (const id of ids[1]!.sort(byAge).reverse()) recovered.push(await log.recoverOpenStep(id));
    await log.enforceLimits();
    return { log, recovered };
  }

  /**
   * Starts the helpers a step captures with (the capture worker, the attribute reader), which
   * take tens of milliseconds to start: a sync calls this before it scans, so that they are ready
   * by the time it applies.
   */
  prepareToRecord(): void {
    if (this.disabled) return;
    packWorker.warm();
    if (this.options.xattrs !== false) void startXattrReader().catch(() => {});
  }

  /** Why undo is off (format version mismatch), until discard(). */
  get disabledReason(): string | undefined {
    return this.disabled;
  }

  /**
   * Starts recording a step. Only one step may be open at a time. When the log is disabled the
   * writer still checks safeguards but records nothing (close() returns undefined). `group`:
   * the group the step joins (see StepBoundaries); without it, the step is a group of its own.
   */
  async beginStep(meta: StepMeta & { group?: StepGroup }): Promise<StepWriter> {
    if (this.openStep) throw new Error(`undo step ${this.openStep.id} is still open`);
    if (this.undoRunning) throw new Error('an undo is running; sync after it');
    this.lastSequence += 1;
    const id = `${String(this.lastSequence).padStart(SEQUENCE_DIGITS, '0')}-${randomBytes(3).toString('hex')}`;
    const captureXattrs = this.options.xattrs !== false && (await xattrToolsAvailable());
    const writer = new StepWriter(
      {
        id,
        directory: path.join(this.directory, 'in-progress', id),
        persist: this.disabled === undefined,
        captureXattrs,
        notes: this.options.xattrs !== false && !captureXattrs ? [XATTR_TOOLS_MISSING] : [],
        limits: this.limits,
        thresholds: { ...DEFAULT_THRESHOLDS, ...meta.thresholds },
        keptDirectory: path.join(this.options.keptDirectory, `rollback-${id}`),
        promote: (manifest) => this.promote(manifest, meta.group),
        finished: () => {
          if (this.openStep === writer) this.openStep = undefined;
        },
        beforePromote: this.options.hooks?.beforePromote,
      },
      meta,
    );
    this.openStep = writer;
    return writer;
  }

  /**
   * Groups of steps newest first (consecutive steps with the same group id are one entry, whose
   * `id` is the group's and `steps` its members), with the barriers last detected for them.
   */
  async list(): Promise<StepSummary[]> {
    if (this.disabled) return [];
    const barriers = await this.barriers();
    return (await this.loadGroups()).map((members) => groupSummaryOf(members, (id) => barriers.filter((barrier) => barrier.stepId === id).length));
  }

  /**
   * Puts every step of the groups `groupIds` into `group` (a checkpoint names the changes made
   * since the last boundary, which may be several bursts: they become one). Returns how many
   * steps it changed.
   */
  async relabelGroups(groupIds: readonly string[], group: StepGroup): Promise<number> {
    if (this.disabled || groupIds.length === 0) return 0;
    const wanted = new Set(groupIds);
    const record = StepGroupRecord.parse(group);
    let changed = 0;
    for (const members of await this.loadGroups()) {
      if (!members[0]!.group || !wanted.has(members[0]!.group.id)) continue;
      for (const { manifest } of members) {
        await writeJsonAtomic(path.join(this.directory, 'steps', manifest.id, GROUP), record);
        this.groups.set(manifest.id, record);
        changed += 1;
      }
    }
    return changed;
  }

  /** The barriers recorded at the last detectBarriers() or undo(). */
  async barriers(): Promise<Barrier[]> {
    if (this.disabled) return [];
    return (await readJsonFile(this.barriersPath, BarriersFile).catch(() => undefined))?.barriers ?? [];
  }

  /**
   * Compares every step's postimages with what came after it (a newer step's preimage, or the
   * disk under `root`), records the barriers found in barriers.json (keeping when each was first
   * seen) and returns them. Call it after each sync; undo() checks again itself. `except`: a
   * step not to check, such as the one the sync just closed, whose postimages are what it wrote
   * moments ago (an edit since is found at the next check). `paths`: the region an incremental
   * cycle looked at (see regionFilter); a barrier can only have come or gone there, since the
   * cycle saw every change to the tree as an event or a rescan. Default: everywhere.
   */
  async detectBarriers(root: string, options: { except?: string; paths?: readonly string[] } = {}): Promise<Barrier[]> {
    if (this.disabled) return [];
    const steps = (await this.loadSteps()).filter((manifest) => manifest.protected);
    const scope: BarrierScope = {
      ...(options.except !== undefined && { steps: new Set(steps.map((manifest) => manifest.id).filter((id) => id !== options.except)) }),
      ...(options.paths && { paths: regionFilter(options.paths) }),
    };
    return this.recordBarriers(await findBarriers(root, steps, scope), scope);
  }

  /**
   * Undoes the newest `steps` steps under `root`, newest first, each as a whole. Refuses (undoing
   * nothing) when the log is disabled, a step is open, or barriers stand in the way and `force`
   * is false; with `force`, each barrier's current version is copied to the kept folder before it
   * is overwritten, and the barrier is removed. Stops before an unprotected step. A step whose
   * restore had problems stays in the log and undo stops there. `steps` counts groups (see
   * list()); `running`: the group still being recorded into (a turn or a command that has not
   * ended), which is refused rather than undone under the agent's feet.
   */
  async undo(options: { steps: number; force: boolean; root: string; running?: StepGroup }): Promise<UndoResult> {
    if (this.disabled) return refusal('unavailable', this.disabled);
    if (this.openStep) return refusal('busy', `a sync is being recorded (step ${this.openStep.id}); undo after it`);
    if (this.undoRunning) return refusal('busy', 'another undo is running');
    this.undoRunning = true;
    try {
      return await this.undoSteps(options);
    } finally {
      this.undoRunning = false;
    }
  }

  private async undoSteps(options: { steps: number; force: boolean; root: string; running?: StepGroup }): Promise<UndoResult> {
    const result: UndoResult = { undone: [], barriers: [], kept: [], problems: [] };
    const refuse = (code: UndoRefusalCode, reason: string, more: Pick<UndoResult, 'barriers' | 'running'> = { barriers: [] }) => ({ ...result, refused: reason, refusedCode: code, ...more });
    if (!Number.isInteger(options.steps) || options.steps < 1) return refuse('invalid', 'the number of steps to undo must be at least 1');
    if (!(await lstatOrUndefined(joinBytes(options.root, '')))?.isDirectory()) return refuse('invalid', `${options.root} is not a folder`);

    const groups = await this.loadGroups();
    const newestFirst = groups.flat().map(({ manifest }) => manifest);
    if (newestFirst.length === 0) return refuse('nothing-to-undo', 'there is nothing to undo');
    const targetGroups: Array<Array<{ manifest: Manifest; group?: StepGroup }>> = [];
    for (const members of groups.slice(0, options.steps)) {
      const group = members[0]!.group;
      // Forced: a turn whose Stop never came (Claude Code killed, say) stays open until the next prompt.
      if (group && options.running && group.id === options.running.id && !options.force) {
        return refuse('still-running', `${describeGroup(group)} is still running; undo it once it has ended (forcing undoes it anyway, if it will not end)`, { barriers: [], running: group });
      }
      const wall = members.find(({ manifest }) => !manifest.protected)?.manifest;
      if (wall) {
        result.stoppedBefore = { stepId: wall.id, reason: `step ${wall.id} (sync ${wall.syncId}) cannot be undone: ${wall.unprotectedReason ?? 'it kept no preimages'}` };
        break;
      }
      targetGroups.push(members);
    }
    if (!result.stoppedBefore && options.steps > groups.length) result.stoppedBefore = { reason: `the log holds only ${groups.length} step(s)` };
    if (targetGroups.length === 0) return refuse('cannot-undo', result.stoppedBefore!.reason);
    const targets = targetGroups.flat().map(({ manifest }) => manifest);

    const protectedOldestFirst = newestFirst.filter((manifest) => manifest.protected).reverse();
    const targetScope = { steps: new Set(targets.map((manifest) => manifest.id)) };
    const blocking = await this.recordBarriers(await findBarriers(options.root, protectedOldestFirst, targetScope), targetScope);
    if (blocking.length > 0 && !options.force) {
      const listed = blocking.slice(0, 5).map((barrier) => `${barrier.path} (${barrier.change}, step ${barrier.stepId})`).join('; ');
      return refuse('changed-since', `undo would overwrite ${blocking.length} change(s) made after the sync: ${listed}${blocking.length > 5 ? '; …' : ''}. Force it to undo anyway (those versions are kept aside)`, { barriers: blocking });
    }

    let remaining = protectedOldestFirst;
    const undoneIds = new Set<string>();
    for (const manifest of targets) {
      // Newer targets are undone by now, so this step's barriers are against the disk.
      const crossed = options.force ? await findBarriers(options.root, remaining, { steps: new Set([manifest.id]) }) : [];
      const keepRoot = path.join(this.options.keptDirectory, `undo-${manifest.id}`);
      const alreadyKept = new Map<string, string>();
      for (const barrier of crossed) {
        const kept = await keepCurrent(options.root, barrier.path, keepRoot);
        if (kept) result.kept.push(kept);
        if (kept) alreadyKept.set(kept.path, kept.keptAt);
      }
      const undoing = path.join(this.directory, 'undoing', manifest.id);
      await rename(path.join(this.directory, 'steps', manifest.id), undoing);
      this.stepIds = undefined;
      await Promise.all([fsyncPath(path.join(this.directory, 'steps')), fsyncPath(path.join(this.directory, 'undoing'))]);
      // A version written after the barriers were looked at is kept too, next to them.
      const problems = await restoreRecords({ root: options.root, stepDir: undoing, records: manifest.records, checkPostimages: true, keepRoot, alreadyKept, onKept: (version) => result.kept.push(version) });
      if (problems.length > 0) {
        await rename(undoing, path.join(this.directory, 'steps', manifest.id));
        this.stepIds = undefined;
        result.problems.push(...problems);
        result.stoppedBefore = { stepId: manifest.id, reason: `step ${manifest.id} could not be restored completely; it stays in the log` };
        break;
      }
      await removeTree(Buffer.from(undoing));
      result.barriers.push(...crossed.map((barrier) => ({ ...barrier, detectedAt: new Date().toISOString() })));
      undoneIds.add(manifest.id);
      remaining = remaining.filter((other) => other.id !== manifest.id);
      await this.removeBarriersOf(new Set([manifest.id]));
    }
    // A group counts as undone only whole; one a problem stopped in the middle stays listed (with its remaining steps).
    for (const members of targetGroups) {
      if (!members.every(({ manifest }) => undoneIds.has(manifest.id))) {
        if (members.some(({ manifest }) => undoneIds.has(manifest.id)) && result.stoppedBefore && members[0]!.group) {
          result.stoppedBefore = { ...result.stoppedBefore, reason: `${describeGroup(members[0]!.group)} was undone only in part: ${result.stoppedBefore.reason}` };
        }
        break;
      }
      result.undone.push(groupSummaryOf(members, (id) => result.barriers.filter((barrier) => barrier.stepId === id).length));
    }
    return result;
  }

  /** Closed steps newest first, in groups: consecutive steps with the same group id (a step without one is a group of its own). */
  private async loadGroups(): Promise<Array<Array<{ manifest: Manifest; group?: StepGroup }>>> {
    const newestFirst = (await this.loadSteps()).reverse();
    const withGroups = await Promise.all(newestFirst.map(async (manifest) => ({ manifest, group: (await this.loadGroup(manifest.id)) ?? undefined })));
    const groups: Array<Array<{ manifest: Manifest; group?: StepGroup }>> = [];
    for (const step of withGroups) {
      const last = groups.at(-1);
      const lastGroup = last?.[0]!.group;
      if (last && lastGroup && step.group && lastGroup.id === step.group.id) last.push(step);
      else groups.push([step]);
    }
    return groups;
  }

  private async loadGroup(id: string): Promise<StepGroup | null> {
    const cached = this.groups.get(id);
    if (cached !== undefined) return cached;
    const group = (await readJsonFile(path.join(this.directory, 'steps', id, GROUP), StepGroupRecord).catch(() => undefined)) ?? null;
    this.groups.set(id, group);
    return group;
  }

  /**
   * Compresses the saved content of closed steps that still hold it as read, newest first (see
   * compaction.ts). Refused while a step is open or an undo runs. `stop()` is asked between
   * steps, so that a sync waiting for the log is not kept waiting long. Returns the ids
   * compacted. The limits are applied by the next sync, which knows the ones the user set.
   */
  async compact(options: { stop?: () => boolean } = {}): Promise<string[]> {
    if (this.disabled || this.openStep || this.undoRunning) return [];
    const compacted: string[] = [];
    for (const id of (await readdir(path.join(this.directory, 'steps')).catch(() => [] as string[])).sort(byAge).reverse()) {
      if (options.stop?.()) break;
      const directory = path.join(this.directory, 'steps', id);
      // Most steps are compacted already: their folder says so without reading their manifest.
      if (!(await holdsUncompactedFiles(directory))) continue;
      const manifest = await this.loadStep(id);
      if (!manifest.closedAt) continue;
      const next = await compactStep(directory, manifest);
      if (next !== manifest) {
        this.manifests.set(id, next);
        compacted.push(id);
      }
    }
    return compacted;
  }

  /** Deletes the whole log (all steps, barriers) and starts a new one in the current format; re-enables undo. */
  async discard(): Promise<void> {
    if (this.openStep) throw new Error(`undo step ${this.openStep.id} is still open`);
    if (this.undoRunning) throw new Error('an undo is running');
    for (const name of await readdir(this.directory).catch(() => [] as string[])) await removeTree(Buffer.from(path.join(this.directory, name)));
    await this.writeVersion();
    for (const sub of ['steps', 'in-progress', 'undoing', 'trash']) await mkdir(path.join(this.directory, sub), { recursive: true });
    this.disabled = undefined;
    this.lastSequence = 0;
    this.manifests.clear();
    this.stepIds = undefined;
  }

  private get barriersPath(): string {
    return path.join(this.directory, 'barriers.json');
  }

  private async checkVersion(): Promise<string | undefined> {
    const file = path.join(this.directory, 'VERSION');
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) {
      const present = await readdir(this.directory);
      if (present.length === 0) {
        await this.writeVersion();
        return undefined;
      }
      return `undo is disabled: ${this.directory} holds an undo log without a VERSION file (an unknown format); discard the old undo log to turn undo back on`;
    }
    if (text.trim() !== String(UNDO_FORMAT_VERSION)) {
      return `undo is disabled: the undo log in ${this.directory} has format version ${JSON.stringify(text.trim())}, this version of Clud uses ${UNDO_FORMAT_VERSION}; discard the old undo log to turn undo back on`;
    }
    return undefined;
  }

  private writeVersion(): Promise<void> {
    return writeFileAtomic(path.join(this.directory, 'VERSION'), `${UNDO_FORMAT_VERSION}\n`);
  }

  /** Closed steps, oldest first. A step whose manifest cannot be read is listed as unprotected. */
  private async loadSteps(): Promise<Manifest[]> {
    if (!this.stepIds) {
      this.stepIds = (await readdir(path.join(this.directory, 'steps')).catch(() => [] as string[])).sort(byAge);
      const present = new Set(this.stepIds);
      for (const id of this.manifests.keys()) if (!present.has(id)) this.manifests.delete(id);
      for (const id of this.groups.keys()) if (!present.has(id)) this.groups.delete(id);
    }
    return Promise.all(this.stepIds.map((id) => this.loadStep(id)));
  }

  private manifestPath(id: string): string {
    return path.join(this.directory, 'steps', id, MANIFEST);
  }

  private async loadStep(id: string): Promise<Manifest> {
    const cached = this.manifests.get(id);
    if (cached) return cached;
    const manifest = await readJsonFile(this.manifestPath(id), Manifest).catch(() => undefined);
    if (manifest?.closedAt) {
      this.manifests.set(id, manifest);
      return manifest;
    }
    return { version: UNDO_FORMAT_VERSION, id, syncId: '?', policy: '?', root: '', startedAt: '', closedAt: '', protected: false, unprotectedReason: 'its manifest is missing or unreadable', paths: 0, bytes: 0, notes: [], records: [] };
  }

  private async promote(manifest: Manifest, group?: StepGroup): Promise<StepSummary> {
    // Written before the rename that closes the step: a closed step never lacks the group it was recorded in.
    if (group) await writeJsonAtomic(path.join(this.directory, 'in-progress', manifest.id, GROUP), StepGroupRecord.parse(group));
    this.groups.set(manifest.id, group ?? null);
    await rename(path.join(this.directory, 'in-progress', manifest.id), path.join(this.directory, 'steps', manifest.id));
    // The newest: its sequence is the highest.
    this.stepIds?.push(manifest.id);
    await Promise.all([fsyncPath(path.join(this.directory, 'steps')), fsyncPath(path.join(this.directory, 'in-progress'))]);
    // As written: no need to read a large manifest back right away.
    if (manifest.protected) this.manifests.set(manifest.id, manifest);
    // Its content is still as read, several times what it will take once compacted: its size is
    // weighed against the log's limit from the next sync on, not to evict older steps now.
    await this.enforceLimits({ notWeighed: holdsRawContent(manifest) ? manifest.id : undefined });
    const kept = (await this.loadSteps()).find((step) => step.id === manifest.id);
    return { ...summaryOf(kept ?? manifest, 0), ...(group && { group }) };
  }

  /**
   * The limits count what the user undoes as one: groups (list(): a turn, a command, a burst of
   * syncs), evicted whole, oldest first. Evicting part of one would leave a rest whose undo stops
   * in the group's middle as if it were its start. Steps older than an unprotected one can never
   * be undone (undo is a pop), so they go first. The newest group alone over the log's size, or
   * over `maxStoredSteps` syncs, keeps its newest syncs within them, and the oldest of those loses
   * its preimages: undo then refuses the group whole and says why.
   */
  private async enforceLimits(options: { notWeighed?: string } = {}): Promise<void> {
    // Oldest first, and each group's steps oldest first.
    const groups = (await this.loadGroups()).reverse().map((members) => members.map(({ manifest }) => manifest).reverse());
    const evict: Manifest[] = [];
    const stepCount = () => groups.reduce((sum, members) => sum + members.length, 0);
    const total = () => groups.reduce((sum, members) => members.reduce((inner, manifest) => inner + (manifest.id === options.notWeighed ? 0 : manifest.bytes), sum), 0);
    const over = () => total() > this.limits.maxLogBytes || stepCount() > this.limits.maxStoredSteps;
    for (let older = groups.flat().map((manifest) => manifest.protected).lastIndexOf(false); older > 0; ) {
      const taken = groups[0]!.splice(0, older);
      evict.push(...taken);
      older -= taken.length;
      if (groups[0]!.length === 0) groups.shift();
    }
    while (groups.length > this.limits.maxSteps) evict.push(...groups.shift()!);
    while (groups.length > 1 && over()) evict.push(...groups.shift()!);
    const only = groups.length === 1 ? groups[0]! : undefined;
    if (only && over()) {
      const limit = `the ${formatBytes(this.limits.maxLogBytes)} limit of the whole log`;
      const reason =
        stepCount() > this.limits.maxStoredSteps ? `the step it belongs to recorded more than ${this.limits.maxStoredSteps} syncs, the most the log keeps`
        : only.length > 1 ? `the step it belongs to takes over ${limit}`
        : `it takes ${formatBytes(only[0]!.bytes)}, over ${limit}`;
      while (only.length > 1 && over()) evict.push(only.shift()!);
      if (only[0]!.protected) await this.dropPreimages(only[0]!, reason);
    }
    for (const manifest of evict) {
      const trash = path.join(this.directory, 'trash', manifest.id);
      await rename(path.join(this.directory, 'steps', manifest.id), trash);
      this.stepIds = undefined;
      await removeTree(Buffer.from(trash));
    }
    if (evict.length > 0) await this.removeBarriersOf(new Set(evict.map((manifest) => manifest.id)));
  }

  private async dropPreimages(manifest: Manifest, reason: string): Promise<void> {
    const directory = path.join(this.directory, 'steps', manifest.id);
    const wall: Manifest = { ...manifest, protected: false, unprotectedReason: reason, records: [] };
    await writeJsonAtomic(path.join(directory, MANIFEST), wall);
    this.manifests.set(manifest.id, wall);
    // A step that cannot be undone has no barriers (a look scoped to some paths would not drop them).
    await this.removeBarriersOf(new Set([manifest.id]));
    for (const name of await readdir(directory)) if (name !== MANIFEST && name !== GROUP) await removeTree(Buffer.from(path.join(directory, name)));
  }

  /** Saves the barriers found in `scope` in place of those recorded there before, keeping first-seen times. */
  private async recordBarriers(found: FoundBarrier[], scope: BarrierScope): Promise<Barrier[]> {
    const previous = await this.barriers();
    const keyOf = (barrier: FoundBarrier) => `${barrier.stepId}\0${barrier.path}`;
    const seen = new Map(previous.map((barrier) => [keyOf(barrier), barrier]));
    const now = new Date().toISOString();
    const current = found.map((barrier) => ({ ...barrier, detectedAt: seen.get(keyOf(barrier))?.detectedAt ?? now }));
    // A barrier can be found from outside its own path's scope (a file added in a folder a step
    // created is found from the folder, above another path of the region): it is recorded once.
    const foundAgain = new Set(found.map(keyOf));
    const kept = previous.filter((barrier) => !inBarrierScope(barrier, scope) && !foundAgain.has(keyOf(barrier)));
    const next = [...kept, ...current];
    if (JSON.stringify(next) !== JSON.stringify(previous)) await writeJsonAtomic(this.barriersPath, { version: UNDO_FORMAT_VERSION, barriers: next });
    return current;
  }

  private async removeBarriersOf(stepIds: ReadonlySet<string>): Promise<void> {
    const previous = await this.barriers();
    const next = previous.filter((barrier) => !stepIds.has(barrier.stepId));
    if (next.length !== previous.length) await writeJsonAtomic(this.barriersPath, { version: UNDO_FORMAT_VERSION, barriers: next });
  }

  /**
   * A step a crash left open: put every captured path back (the journal is the truth; the
   * manifest may be missing or corrupt). What is on disk now and differs from the
   * preimage is copied to the kept folder first, in case someone changed it after the crash.
   */
  private async recoverOpenStep(id: string): Promise<RecoveredStep> {
    const directory = path.join(this.directory, 'in-progress', id);
    const header = await readJsonFile(path.join(directory, MANIFEST), Manifest).catch(() => undefined);
    const marker = await readJsonFile(path.join(directory, UNPROTECTED), UnprotectedMarker).catch(() => undefined);
    if (marker) {
      // Its preimages are gone: it cannot be rolled back; it stays as a step that cannot be undone.
      const base = header ?? { version: UNDO_FORMAT_VERSION, id, syncId: '?', policy: '?', root: this.options.root ?? '', startedAt: '', protected: false, paths: marker.paths, bytes: 0, notes: [], records: [] };
      const wall: Manifest = { ...base, closedAt: new Date().toISOString(), protected: false, unprotectedReason: `${marker.reason}; the sync was interrupted`, records: [] };
      await writeJsonAtomic(path.join(directory, MANIFEST), wall);
      await rename(directory, path.join(this.directory, 'steps', id));
      this.stepIds = undefined;
      return { id, outcome: 'unprotected', paths: marker.paths, kept: [], problems: [] };
    }
    // A line the journal could not keep (torn by a power cut) was never durable, so its caller
    // had not changed the path yet: nothing to undo there.
    const journal = await readJournal(directory);
    const root = this.options.root ?? journal.header?.root ?? header?.root;
    if (journal.preimages.size === 0 || root === undefined) {
      await removeTree(Buffer.from(directory));
      return { id, outcome: 'rolled-back', paths: 0, kept: [], problems: journal.ignored };
    }
    const records = [...journal.preimages].map(([key, pre]) => ({ path: key, pre }));
    const keepRoot = path.join(this.options.keptDirectory, `recovered-${id}`);
    const kept = await this.keepDiffering(root, records, keepRoot);
    const alreadyKept = new Map(kept.map((version) => [version.path, version.keptAt]));
    const problems = await restoreRecords({ root, stepDir: directory, records, checkPostimages: false, keepRoot, alreadyKept, onKept: (version) => kept.push(version) });
    // With problems the folder stays, and the next open() tries again.
    if (problems.length === 0) await removeTree(Buffer.from(directory));
    return { id, outcome: 'rolled-back', paths: records.filter(({ pre }) => !(pre.kind === 'directory' && pre.metadataOnly)).length, kept, problems: [...journal.ignored, ...problems] };
  }

  /** An undo a crash interrupted was already decided (barriers kept aside): finish it. */
  private async finishInterruptedUndo(id: string): Promise<RecoveredStep> {
    const directory = path.join(this.directory, 'undoing', id);
    const manifest = await readJsonFile(path.join(directory, MANIFEST), Manifest).catch(() => undefined);
    if (!manifest) {
      await removeTree(Buffer.from(directory));
      return { id, outcome: 'undo-completed', paths: 0, kept: [], problems: ['its manifest was unreadable; the undo could not be finished'] };
    }
    const kept: KeptVersion[] = [];
    const problems = await restoreRecords({ root: this.options.root ?? manifest.root, stepDir: directory, records: manifest.records, checkPostimages: false, keepRoot: path.join(this.options.keptDirectory, `undo-${id}`), onKept: (version) => kept.push(version) });
    if (problems.length === 0) await removeTree(Buffer.from(directory));
    else {
      await rename(directory, path.join(this.directory, 'steps', id));
      this.stepIds = undefined;
    }
    await this.removeBarriersOf(new Set([id]));
    return { id, outcome: 'undo-completed', paths: manifest.paths, kept, problems };
  }

  /** Copies aside what differs from the preimage and would be lost by restoring it (files, links, folders holding files). */
  private async keepDiffering(root: string, records: ReadonlyArray<Pick<StepRecord, 'path' | 'pre'>>, keepRoot: string): Promise<KeptVersion[]> {
    const kept: KeptVersion[] = [];
    for (const record of [...records].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      if (record.path === '' || kept.some((version) => isUnder(record.path, version.path))) continue;
      const now = await currentPostimage(joinBytes(root, record.path)).catch(() => undefined);
      if (!now || now.kind === 'absent' || describeDifference(identityOf(record.pre), identityOf(now)) === undefined) continue;
      if (now.kind === 'directory') {
        if (record.pre.kind === 'directory') continue; // its entries are records of their own
        if (!(await subtree(root, record.path)).some(([, stats]) => !stats.isDirectory())) continue;
      }
      const version = await keepCurrent(root, record.path, keepRoot);
      if (version) kept.push(version);
    }
    return kept;
  }
}

const refusal = (code: UndoRefusalCode, reason: string): UndoResult => ({ undone: [], barriers: [], kept: [], problems: [], refused: reason, refusedCode: code });

/** How a group is named in a sentence: "the turn 'rename the loader'", "the command 'npm test'". */
export function describeGroup(group: StepGroup): string {
  if (group.kind === 'sync' || group.label === '') return `the ${group.kind === 'sync' ? 'sync' : group.kind} step ${group.id}`;
  return `the ${group.kind} ${JSON.stringify(group.label)}`;
}

/**
 * One entry for a group's members (newest first): the group's id, kind and label, the newest
 * member's sync and close time, the oldest's start, the paths changed by any member (each once),
 * bytes and barriers summed, protected only when every member is.
 */
function groupSummaryOf(members: ReadonlyArray<{ manifest: Manifest; group?: StepGroup }>, barriersOf: (stepId: string) => number): StepSummary {
  const newest = members[0]!.manifest;
  if (members.length === 1) return { ...summaryOf(newest, barriersOf(newest.id)), ...(members[0]!.group && { id: members[0]!.group.id, group: members[0]!.group }), steps: [newest.id] };
  const paths = new Set<string>();
  let unlisted = 0;
  for (const { manifest } of members) {
    if (manifest.records.length === 0) unlisted += manifest.paths;
    for (const record of manifest.records) if (!(record.pre.kind === 'directory' && record.pre.metadataOnly)) paths.add(record.path);
  }
  const wall = members.find(({ manifest }) => !manifest.protected)?.manifest;
  const group = members[0]!.group!;
  return {
    id: group.id,
    syncId: newest.syncId,
    policy: newest.policy,
    startedAt: members.at(-1)!.manifest.startedAt,
    closedAt: newest.closedAt ?? '',
    files: paths.size + unlisted,
    bytes: members.reduce((sum, { manifest }) => sum + manifest.bytes, 0),
    protected: wall === undefined,
    ...(wall && { unprotectedReason: wall.unprotectedReason ?? 'it kept no preimages' }),
    notes: [...new Set(members.flatMap(({ manifest }) => manifest.notes))],
    barriers: members.reduce((sum, { manifest }) => sum + barriersOf(manifest.id), 0),
    group,
    steps: members.map(({ manifest }) => manifest.id),
  };
}

function summaryOf(manifest: Manifest, barriers: number): StepSummary {
  return {
    id: manifest.id,
    syncId: manifest.syncId,
    policy: manifest.policy,
    startedAt: manifest.startedAt,
    closedAt: manifest.closedAt ?? '',
    files: manifest.paths,
    bytes: manifest.bytes,
    protected: manifest.protected,
    ...(manifest.unprotectedReason !== undefined && { unprotectedReason: manifest.unprotectedReason }),
    notes: manifest.notes,
    barriers,
  };
}


