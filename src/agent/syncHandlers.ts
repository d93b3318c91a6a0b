// The agent's three-way sync requests. The agent sees both trees (the host folder is a bind mount) and the
// host-side state folder, so a whole cycle runs here, next to the files. Every request that can
// write to the host runs under the sync lock with the undo log open (opening it rolls back a step
// a crashed agent left in progress).
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONTAINER_HOST_PATH, CONTAINER_STATE_PATH, CONTAINER_WORKSPACE_PATH, WORKSPACE_USER } from '../core/containerLayout';
import type { SyncReport, UndoSettings } from '../core/protocol';
import { withRetries } from '../core/retry';
import type { ApplyOptions } from '../core/sync/apply';
import { backupDifferences, listBackups, restoreBackup } from '../core/sync/backup';
import { compareTrees } from '../core/sync/compare';
import { runSyncCycle } from '../core/sync/engine';
import { mergeReports } from '../core/sync/summary';
import type { Policy } from '../core/sync/reconcile';
import type { UndoRecording } from '../core/sync/recordedApply';
import { resolveConflict } from '../core/sync/resolve';
import { SyncStateFiles } from '../core/sync/stateFiles';
import { UndoLog } from '../core/undo';
import { failpointHook } from './failpoint';
import { hostAccess } from './hostAccess';
import { findPasswdEntry } from './system';
import { readInitState } from './initStateFile';
import { log } from './log';
import { exchangeGitHistory } from './gitExchange';
import { RequestError } from './server';
import type { Handlers, RequestContext } from './server';
import { withSyncLock } from './syncLock';

const roots = { host: CONTAINER_HOST_PATH, container: CONTAINER_WORKSPACE_PATH };

/**
 * What the apply creates in /workspace goes to the workspace user (the sync agent writes it with
 * CAP_CHOWN); on the host it stays the sync user's, the folder owner's IDs. Read per request:
 * `prepare` may have moved the workspace user's IDs since this process started.
 */
function owners(): ApplyOptions['owners'] {
  const user = findPasswdEntry(readFileSync('/etc/passwd', 'utf8'), WORKSPACE_USER);
  return user ? { container: { uid: user.uid, gid: user.gid } } : {};
}
const stateFiles = () => new SyncStateFiles(CONTAINER_STATE_PATH);

/** Sync needs the state folder and a complete initial copy: a half-copied /workspace read against an old agreed state would look like deletions. */
function assertReadyToSync(): void {
  if (!existsSync(CONTAINER_STATE_PATH)) {
    throw new RequestError('sync-halted', `this container has no sync state folder at ${CONTAINER_STATE_PATH} (it was made by an older Clud); run \`clud pull\`, then \`clud up --rebuild\``);
  }
  const init = readInitState();
  if (init && init.phase !== 'ready') {
    throw new RequestError('sync-halted', `sync refused: the initial copy into /workspace has not completed (${init.error ?? init.phase}); run \`clud up\` to retry it`);
  }
}

/** Opens the undo log (under the sync lock), recovering a step a crashed agent left open; `notices` says so. */
async function openUndoLog(settings: UndoSettings, notices: string[] = []): Promise<UndoLog> {
  const { log: undoLog, recovered } = await UndoLog.open(path.join(CONTAINER_STATE_PATH, 'undo'), {
    keptDirectory: path.join(CONTAINER_STATE_PATH, 'kept'),
    limits: { maxSteps: settings.maxSteps, maxLogBytes: settings.maxLogBytes, maxStepBytes: settings.maxStepBytes },
  });
  for (const step of recovered) {
    const what = step.outcome === 'rolled-back' ? 'rolled back the changes an interrupted sync had begun' : step.outcome === 'undo-completed' ? 'finished an interrupted undo' : 'could not roll back an interrupted sync that was too large to record';
    const notice = `${what} (${step.paths} path(s) in your folder${step.kept.length ? `; versions it replaced are kept in ${path.dirname(step.kept[0]!.keptAt)}` : ''})`;
    notices.push(notice);
    log('warn', `undo log: ${notice}`, { step: step.id, kept: step.kept, problems: step.problems });
  }
  return undoLog;
}

function recording(undoLog: UndoLog, settings: UndoSettings, context: RequestContext): UndoRecording {
  return { log: undoLog, ask: context.ask, thresholds: { maxDeletions: settings.maxDeletions, largeFileBytes: settings.largeFileBytes } };
}

/** A request that waits for the sync lock says so, as progress the CLI prints on stderr. */
const lockWait = (context: RequestContext) => ({ onWait: (message: string) => context.progress({ phase: 'lock', message }), signal: context.signal });

/** A change skipped because its file moved under it: another cycle, a moment later, will carry it. */
const isTransient = (report: SyncReport) => report.skipped.some((skipped) => skipped.code === 'changed-since-scan' || skipped.code === 'source-changed');

interface CycleRequest {
  policy: Policy;
  excludes: readonly string[];
  allowSecrets: readonly string[];
  reset: boolean;
  onlyPaths?: readonly string[];
  undo: UndoSettings;
  /** Extra cycles allowed for changes skipped because their file moved (the `syncRetries` setting). */
  retries: number;
}

async function syncCycle(request: CycleRequest, context: RequestContext): Promise<SyncReport> {
  assertReadyToSync();
  const notices: string[] = [];
  const undo = recording(await openUndoLog(request.undo, notices), request.undo, context);
  let merged: SyncReport | undefined;
  const { retries: used } = await withRetries(
    async () => {
      const run = await runSyncCycle({ roots, stateDir: CONTAINER_STATE_PATH, policy: request.policy, excludes: request.excludes, allowSecrets: request.allowSecrets, reset: request.reset && !merged, onlyPaths: request.onlyPaths, undo, beforeModify: failpointHook(), signal: context.signal, owners: owners(), hostAccess: hostAccess() });
      merged = merged ? mergeReports(merged, run) : run;
      return run;
    },
    { retries: request.retries, shouldRetry: (result) => !result.halted && !result.denied && isTransient(result) },
  );
  const report = merged!;
  report.retries = used;
  report.notices = [...notices, ...report.notices];
  // The repositories are not merged file by file: history crosses as git objects and refs.
  if (!report.halted) report.git = await exchangeGitHistory();
  return report;
}

export function createSyncHandlers(): Pick<Handlers, 'sync' | 'history' | 'compare' | 'resolve' | 'backup' | 'listBackups' | 'restoreBackup' | 'undoHistory' | 'undo' | 'discardUndoLog'> {
  return {
    compare: async (params) => {
      const state = existsSync(CONTAINER_STATE_PATH) ? stateFiles() : undefined;
      const caches = state ? await state.readCaches() : {};
      const ancestor = state ? await state.readAncestor() : new Map();
      const differences = await compareTrees(roots, { excludes: params.excludes, allowSecrets: params.allowSecrets, caches, hostAccess: hostAccess() });
      return { differences: differences.map((difference) => ({ ...difference, ancestor: ancestor.get(difference.path) })), hasAgreedState: ancestor.size > 0 };
    },
    sync: (params, context) => withSyncLock(() => syncCycle(params, context), lockWait(context)),
    history: async () => ({ reports: await stateFiles().readHistory() }),
    resolve: (params, context) =>
      withSyncLock(async () => {
        assertReadyToSync();
        const undo = recording(await openUndoLog(params.undo), params.undo, context);
        return resolveConflict({ roots, stateDir: CONTAINER_STATE_PATH, excludes: params.excludes, allowSecrets: params.allowSecrets, path: params.path, keep: params.keep, undo, owners: owners(), hostAccess: hostAccess() });
      }, lockWait(context)),
    backup: (params) =>
      withSyncLock(async () => {
        assertReadyToSync();
        return backupDifferences({ roots, stateDir: CONTAINER_STATE_PATH, excludes: params.excludes, allowSecrets: params.allowSecrets, hostAccess: hostAccess() });
      }),
    listBackups: async () => ({ backups: await listBackups(CONTAINER_STATE_PATH) }),
    restoreBackup: (params, context) =>
      withSyncLock(async () => {
        assertReadyToSync();
        const undo = recording(await openUndoLog(params.undo), params.undo, context);
        return restoreBackup({ roots, stateDir: CONTAINER_STATE_PATH, excludes: params.excludes, allowSecrets: params.allowSecrets, id: params.backupId, side: params.side, undo, owners: owners(), hostAccess: hostAccess() });
      }),
    undoHistory: () =>
      withSyncLock(async () => {
        const notices: string[] = [];
        const undoLog = await openUndoLog(UNDO_DEFAULTS, notices);
        // Barriers as of now, not as of the last sync: the user may have edited since.
        if (!undoLog.disabledReason) await undoLog.detectBarriers(roots.host);
        return { steps: await undoLog.list(), barriers: await undoLog.barriers(), disabledReason: undoLog.disabledReason, notices };
      }),
    undo: (params) =>
      withSyncLock(async () => {
        assertReadyToSync();
        const undoLog = await openUndoLog(UNDO_DEFAULTS);
        await undoLog.detectBarriers(roots.host);
        return undoLog.undo({ steps: params.steps, force: params.force, root: roots.host });
      }),
    discardUndoLog: () =>
      withSyncLock(async () => {
        await (await openUndoLog(UNDO_DEFAULTS)).discard();
        return {};
      }),
  };
}

/** Reading or undoing does not evict: the limits that matter are the ones a sync sends. */
const UNDO_DEFAULTS: UndoSettings = { maxSteps: 10_000, maxLogBytes: Number.MAX_SAFE_INTEGER, maxStepBytes: Number.MAX_SAFE_INTEGER, maxDeletions: 50, largeFileBytes: 10 * 1024 ** 2 };
