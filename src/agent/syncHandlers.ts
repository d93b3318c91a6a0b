// The agent's three-way sync requests, answered by the resident agent. The agent sees both trees
// (the host folder is a bind mount) and the host-side state folder, so a whole cycle runs here,
// next to the files. Every request that can write runs as a job in the resident agent's one
// queue, with the undo log it opened (and recovered) once.
import * as path from 'node:path';
import { CONTAINER_STATE_PATH } from '../core/containerLayout';
import type { SafeguardQuestionInfo, SyncReport, UndoSettings } from '../core/protocol';
import { withRetries } from '../core/retry';
import { backupDifferences, listBackups, restoreBackup } from '../core/sync/backup';
import { compareTrees } from '../core/sync/compare';
import { runStoreCycle } from '../core/sync/incremental';
import { mergeReports } from '../core/sync/summary';
import type { Policy } from '../core/sync/reconcile';
import type { UndoRecording } from '../core/sync/recordedApply';
import { resolveConflict } from '../core/sync/resolve';
import { SyncStateFiles } from '../core/sync/stateFiles';
import type { UndoLog } from '../core/undo';
import { failpointHook } from './failpoint';
import { hostAccess } from './hostAccess';
import { exchangeGitHistory } from './gitExchange';
import type { Handlers, RequestContext } from './server';
import { ROOTS, workspaceOwners, type ResidentAgent } from './residentAgent';

const stateFiles = () => new SyncStateFiles(CONTAINER_STATE_PATH);

function recording(undoLog: UndoLog, settings: UndoSettings, context: RequestContext): UndoRecording {
  return { log: undoLog, ask: context.ask, thresholds: { maxDeletions: settings.maxDeletions, largeFileBytes: settings.largeFileBytes } };
}

/** A change skipped because its file moved under it: another cycle, a moment later, will carry it. */
const isTransient = (report: SyncReport) => report.skipped.some((skipped) => skipped.code === 'changed-since-scan' || skipped.code === 'source-changed');

/** What a channel brings to its writing requests: its fault injection (tests only). */
export interface ChannelState {
  failpoint?: string;
}

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

export function createSyncHandlers(agent: ResidentAgent, channel: ChannelState): Pick<Handlers, 'sync' | 'history' | 'compare' | 'resolve' | 'backup' | 'listBackups' | 'restoreBackup' | 'undoHistory' | 'undo' | 'discardUndoLog'> {
  const ask = (context: RequestContext) => (question: SafeguardQuestionInfo) => context.ask(question);

  const syncCycle = (request: CycleRequest, context: RequestContext) =>
    agent.requestCycle(async (store, undoLog) => {
      const undo = recording(undoLog, request.undo, context);
      const beforeModify = failpointHook(channel.failpoint);
      let merged: SyncReport | undefined;
      const { retries: used } = await withRetries(
        async () => {
          const result = await runStoreCycle({ roots: ROOTS, excludes: request.excludes, policy: request.policy, store, keptRoot: path.join(CONTAINER_STATE_PATH, 'kept'), undo, beforeModify });
          const run = result.report!;
          merged = merged ? mergeReports(merged, run) : run;
          return run;
        },
        { retries: request.retries, shouldRetry: (result) => !result.halted && !result.denied && isTransient(result) },
      );
      const report = merged!;
      report.retries = used;
      // The repositories are not merged file by file: history crosses as git objects and refs.
      if (!report.halted) report.git = await exchangeGitHistory();
      return report;
    }, ask(context));

  return {
    compare: (params) =>
      agent.job(async () => {
        const state = stateFiles();
        const caches = await state.readCaches();
        const ancestor = await state.readAncestor();
        const differences = await compareTrees(ROOTS, { excludes: params.excludes, allowSecrets: params.allowSecrets, caches, hostAccess: hostAccess() });
        return { differences: differences.map((difference) => ({ ...difference, ancestor: ancestor.get(difference.path) })), hasAgreedState: ancestor.size > 0 };
      }),
    sync: (params, context) => syncCycle(params, context),
    history: async () => ({ reports: await stateFiles().readHistory() }),
    resolve: (params, context) =>
      agent.job(
        (_store, undoLog) =>
          resolveConflict({ roots: ROOTS, stateDir: CONTAINER_STATE_PATH, excludes: params.excludes, allowSecrets: params.allowSecrets, path: params.path, keep: params.keep, undo: recording(undoLog, params.undo, context), owners: workspaceOwners(), hostAccess: hostAccess() }),
        ask(context),
      ),
    backup: (params) => agent.job(() => backupDifferences({ roots: ROOTS, stateDir: CONTAINER_STATE_PATH, excludes: params.excludes, allowSecrets: params.allowSecrets, hostAccess: hostAccess() })),
    listBackups: async () => ({ backups: await listBackups(CONTAINER_STATE_PATH) }),
    restoreBackup: (params, context) =>
      agent.job(
        (_store, undoLog) =>
          restoreBackup({ roots: ROOTS, stateDir: CONTAINER_STATE_PATH, excludes: params.excludes, allowSecrets: params.allowSecrets, id: params.backupId, side: params.side, undo: recording(undoLog, params.undo, context), owners: workspaceOwners(), hostAccess: hostAccess() }),
        ask(context),
      ),
    undoHistory: () =>
      agent.job(async (_store, undoLog) => {
        // Barriers as of now, not as of the last sync: the user may have edited since.
        if (!undoLog.disabledReason) await undoLog.detectBarriers(ROOTS.host);
        return { steps: await undoLog.list(), barriers: await undoLog.barriers(), disabledReason: undoLog.disabledReason, notices: agent.takeNotices() };
      }),
    undo: (params) =>
      agent.job(async (_store, undoLog) => {
        await undoLog.detectBarriers(ROOTS.host);
        return undoLog.undo({ steps: params.steps, force: params.force, root: ROOTS.host });
      }),
    discardUndoLog: () =>
      agent.job(async (_store, undoLog) => {
        await undoLog.discard();
        return {};
      }),
  };
}
