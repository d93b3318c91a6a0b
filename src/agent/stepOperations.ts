// The narrow channel's operations on top of the resident agent's pieces: its step boundaries,
// its undo log, its job queue and a flush. The daemon builds the agent and passes it here; the
// channel (stepChannel.ts) and the unit tests call the result.
import type { StepChannelStatus, SyncNowResult } from '../core/protocol';
import { describeGroup } from '../core/undo';
import type { StepBoundaries, StepGroup, StepSummary, UndoLog } from '../core/undo';
import { RequestError } from './server';
import { StepChannelError } from './stepChannel';
import type { StepOperations } from './stepChannel';

export interface StepAgent {
  boundaries: StepBoundaries;
  /** Runs `job` in the session's one queue, so that no sync cycle runs meanwhile. */
  runJob<T>(job: () => Promise<T>): Promise<T>;
  undoLog(): UndoLog | Promise<UndoLog>;
  /** The host folder as the agent sees it (the undo log's root). */
  hostRoot: string;
  /**
   * Carries every waiting change across now (a cycle through the queue, recorded into the
   * boundaries' current group) and resolves once it is done.
   */
  flush(): Promise<SyncNowResult>;
  /**
   * Brings the agent's new commits to the host as its branches (and the user's to the container),
   * as a sync does; a failure is the exchange's own report, never the step's.
   */
  exchangeHistory(): Promise<void>;
  status(): Omit<StepChannelStatus, 'openStep'>;
  /** Keeps the open turn or command (none: removes it), so that an agent restarted meanwhile goes on recording into it. */
  keepOpenStep(group: StepGroup | undefined): Promise<void>;
}

/** The history as the narrow channel shows it: kinds, labels, counts; no host paths. */
export function historyEntry(step: StepSummary) {
  return {
    id: step.id,
    kind: step.group?.kind ?? ('sync' as const),
    label: step.group?.label ?? '',
    closedAt: step.closedAt,
    files: step.files,
    undoable: step.protected && step.barriers === 0,
    barriers: step.barriers,
  };
}

export function createStepOperations(agent: StepAgent): StepOperations {
  const { boundaries } = agent;
  /**
   * Runs a boundary's `work` in the queue. A question that holds the queue does not stop it: the
   * cycle that asks took its group when it began, and records into that group once answered.
   */
  const atBoundary = <T>(work: () => Promise<T>): Promise<T> =>
    agent.runJob(work).catch((error: unknown) => (error instanceof RequestError && error.code === 'awaiting-approval' ? work() : Promise.reject(error)));
  return {
    // What waited before the turn is not the turn's: it is flushed into the group before.
    stepStart: async ({ kind, label }) => {
      const flushed = await agent.flush().catch(() => undefined);
      const group = await atBoundary(async () => {
        const opened = boundaries.open(kind, label);
        await agent.keepOpenStep(opened);
        return opened;
      });
      return { group, ...(flushed?.held && { held: flushed.held }) };
    },
    // The turn's last changes are carried before it ends, so its step holds the whole turn; its
    // commits are on the host as the agent's branches once it has ended (an end that closed
    // nothing, Claude Code's SessionEnd after its Stop, has no commits of its own to bring).
    stepEnd: async ({ kind, group }) => {
      const flushed = await agent.flush().catch(() => undefined);
      const closed = await atBoundary(async () => {
        const ended = boundaries.close({ kind, id: group });
        if (ended) await agent.keepOpenStep(undefined);
        return ended;
      });
      if (closed) await agent.exchangeHistory();
      const held = flushed?.held && { held: flushed.held };
      return closed ? { closed: closed.group, paths: closed.paths, pathsTruncated: closed.pathsTruncated, ...held } : { paths: [], pathsTruncated: false, ...held };
    },
    checkpoint: async ({ label }) => {
      await agent.flush();
      const checkpoint = await agent.runJob(async () => {
        const outcome = boundaries.checkpoint(label);
        await agent.keepOpenStep(outcome.continued);
        if (outcome.recorded > 0) await (await agent.undoLog()).relabelGroups(outcome.groups, outcome.closed);
        return { closed: outcome.closed, steps: outcome.recorded, ...(outcome.continued && { continued: outcome.continued }) };
      });
      await agent.exchangeHistory();
      return checkpoint;
    },
    status: async () => ({ ...agent.status(), ...(boundaries.running && { openStep: boundaries.running }) }),
    syncNow: () => agent.flush(),
    history: async () => ({ steps: (await (await agent.undoLog()).list()).map(historyEntry) }),
    undoLastStep: async () => {
      const undone = await agent.runJob(async () => {
        const log = await agent.undoLog();
        if (log.disabledReason) throw new StepChannelError('refused', log.disabledReason);
        // A step without a group was the user's own request (a sync, pull, resolve, restore): theirs to undo, not the agent's.
        const [newest] = await log.list();
        if (newest && !newest.group) throw new StepChannelError('refused', "the newest step is the user's own (a sync, pull, resolve or restore they asked for); only they can undo it");
        const result = await log.undo({ steps: 1, force: false, root: agent.hostRoot, running: boundaries.running });
        // Not forced from here: the user forces an undo (their CLI or editor), the agent does not.
        if (result.refusedCode === 'still-running' && boundaries.running) {
          throw new StepChannelError('refused', `${describeGroup(boundaries.running)} is still running; a step can be undone once it has ended`);
        }
        if (result.refusedCode === 'changed-since') {
          const paths = [...new Set(result.barriers.map((barrier) => barrier.path))];
          throw new StepChannelError('refused', `the user changed ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', …' : ''} after that step; their edits win, so it cannot be undone from here`);
        }
        if (result.refused) throw new StepChannelError('refused', result.refused);
        if (result.problems.length > 0 || result.undone.length === 0) throw new StepChannelError('internal', result.stoppedBefore?.reason ?? `the step could not be restored completely: ${result.problems.join('; ')}`);
        return result.undone[0]!;
      });
      // The host is back as it was; the next cycle puts /workspace back too, so the agent sees it at once.
      await agent.flush().catch(() => undefined);
      const entry = historyEntry(undone);
      return { undone: { id: entry.id, kind: entry.kind, label: entry.label, files: entry.files } };
    },
  };
}
