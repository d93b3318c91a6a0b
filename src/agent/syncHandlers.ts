// The agent's three-way sync requests, answered by the resident agent. The agent sees both trees
// (the host folder is a bind mount) and the host-side state folder, so a whole cycle runs here,
// next to the files. Every request that can write runs as a job in the resident agent's one
// queue, with the undo log it opened (and recovered) once.
import { CONTAINER_STATE_PATH } from '../core/containerLayout';
import type { SafeguardQuestionInfo, UndoSettings } from '../core/protocol';
import { backupDifferences, listBackups, restoreBackup } from '../core/sync/backup';
import { compareWithAgreedState } from '../core/sync/compare';
import type { UndoRecording } from '../core/sync/recordedApply';
import { resolveConflict } from '../core/sync/resolve';
import { SyncStateFiles } from '../core/sync/stateFiles';
import { historyAnswer, listedReport } from '../core/sync/summary';
import type { UndoLog } from '../core/undo';
import { failpointHook } from './failpoint';
import { hostAccess } from './hostAccess';
import { RequestError, type Handlers, type RequestContext } from './server';
import { ROOTS, workspaceOwners, type ResidentAgent } from './residentAgent';

const stateFiles = () => new SyncStateFiles(CONTAINER_STATE_PATH);

function recording(undoLog: UndoLog, settings: UndoSettings, context: RequestContext): UndoRecording {
  return { log: undoLog, ask: context.ask, thresholds: { maxDeletions: settings.maxDeletions, largeFileBytes: settings.largeFileBytes } };
}

/** What a channel brings to its writing requests: its fault injection (tests only). */
export interface ChannelState {
  failpoint?: string;
}

export function createSyncHandlers(agent: ResidentAgent, channel: ChannelState): Pick<Handlers, 'sync' | 'history' | 'compare' | 'resolve' | 'backup' | 'listBackups' | 'restoreBackup' | 'undoHistory' | 'undo' | 'discardUndoLog'> {
  const ask = (context: RequestContext) => (question: SafeguardQuestionInfo) => context.ask(question);

  return {
    compare: (params) => agent.jobWithoutAsking((store) => compareWithAgreedState(ROOTS, { excludes: params.excludes, allowSecrets: params.allowSecrets, hostAccess: hostAccess(), store })),
    sync: (params, context) =>
      agent.requestCycle({
        policy: params.policy,
        reset: params.reset,
        ...(params.onlyPaths && { onlyPaths: params.onlyPaths }),
        retries: params.retries,
        signal: context.signal,
        ask: ask(context),
        undoThresholds: { maxDeletions: params.undo.maxDeletions, largeFileBytes: params.undo.largeFileBytes },
        excludes: params.excludes,
        allowSecrets: params.allowSecrets,
        beforeModify: failpointHook(channel.failpoint, context.signal),
      }),
    history: async () => ({ reports: historyAnswer(await stateFiles().readHistory()) }),
    resolve: (params, context) =>
      agent.job(
        async (store, undoLog) => {
          const report = await resolveConflict({ roots: ROOTS, store, excludes: params.excludes, allowSecrets: params.allowSecrets, path: params.path, keep: params.keep, undo: recording(undoLog, params.undo, context), owners: workspaceOwners(), hostAccess: hostAccess() });
          // It ends with a full cycle: the conflict it settled no longer stands, in the status too.
          agent.tookFullCycle(report);
          return listedReport(report);
        },
        ask(context),
      ),
    backup: (params) => agent.jobWithoutAsking((store) => backupDifferences({ roots: ROOTS, stateDir: CONTAINER_STATE_PATH, store, excludes: params.excludes, allowSecrets: params.allowSecrets, hostAccess: hostAccess() })),
    listBackups: async () => ({ backups: await listBackups(CONTAINER_STATE_PATH) }),
    restoreBackup: (params, context) =>
      agent.job(
        (store, undoLog) =>
          restoreBackup({ roots: ROOTS, stateDir: CONTAINER_STATE_PATH, store, excludes: params.excludes, allowSecrets: params.allowSecrets, id: params.backupId, side: params.side, undo: recording(undoLog, params.undo, context), owners: workspaceOwners(), hostAccess: hostAccess() }),
        ask(context),
      ),
    undoHistory: () => {
      const listed = async (undoLog: UndoLog, notices: string[]) => ({
        steps: await undoLog.list(),
        barriers: await undoLog.barriers(),
        disabledReason: undoLog.disabledReason,
        notices: [...agent.takeNotices(), ...notices],
        ...(agent.boundaries.running && { running: agent.boundaries.running.id }),
      });
      return agent
        .jobWithoutAsking(async (_store, undoLog) => {
          // Barriers as of now, not as of the last sync: the user may have edited since.
          if (!undoLog.disabledReason) await undoLog.detectBarriers(ROOTS.host);
          return listed(undoLog, []);
        })
        .catch((error: unknown) => {
          // The history is what someone asked a question wants to see. Steps are listed without
          // the queue (the held cycle's own step is not closed, so not among them); looking for
          // barriers writes, so it waits, and the ones found last are shown.
          if (!(error instanceof RequestError && error.code === 'awaiting-approval') || !agent.undo) return Promise.reject(error);
          return listed(agent.undo, [`${error.message}; barriers as of the last sync`]);
        });
    },
    undo: (params) =>
      agent.jobWithoutAsking(async (_store, undoLog) => {
        await undoLog.detectBarriers(ROOTS.host);
        // A turn or command still being recorded is refused, not taken back under the agent's feet.
        const running = agent.boundaries.running;
        const result = await undoLog.undo({ steps: params.steps, force: params.force, root: ROOTS.host, running });
        // Undone while it ran (forced: its Stop never came), it is over: later writes are not its.
        if (running && result.undone.some((step) => step.group?.id === running.id)) await agent.abandonOpenStep(running);
        return result;
      }),
    discardUndoLog: () =>
      agent.jobWithoutAsking(async (_store, undoLog) => {
        await undoLog.discard();
        return {};
      }),
  };
}
