// A StepAgent for unit tests: real step boundaries and a real undo log on a real temporary tree;
// "the coding agent" queues writes, and flush() carries them to the host as one recorded cycle
// into the current group, as the resident agent's cycle does.
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { SyncNowResult } from '../../src/core/protocol';
import { StepBoundaries } from '../../src/core/undo';
import type { StepGroup, UndoLog } from '../../src/core/undo';
import { serveStepChannel } from '../../src/agent/stepChannel';
import type { StepChannelServer } from '../../src/agent/stepChannel';
import type { StepAgent } from '../../src/agent/stepOperations';
import { createStepOperations } from '../../src/agent/stepOperations';
import { ops, useUndoSample } from './undoTrees';
import type { UndoSample } from './undoTrees';

export interface TestStepAgent extends StepAgent {
  /** A change the coding agent made, carried to the host by the next flush. */
  agentWrites(key: string, content: string): void;
  /** A save by the user on the host, straight into the folder. */
  userWrites(key: string, content: string): Promise<void>;
  flushes: number;
  /** How many times the git history was exchanged. */
  exchanges: number;
  /** What keepOpenStep was last given. */
  keptOpenStep?: StepGroup;
}

export function testStepAgent(log: UndoLog, hostRoot: string, boundaries = new StepBoundaries()): TestStepAgent {
  let queue: Promise<unknown> = Promise.resolve();
  const pending = new Map<string, string>();
  const agent: TestStepAgent = {
    boundaries,
    hostRoot,
    flushes: 0,
    exchanges: 0,
    undoLog: () => log,
    runJob<T>(job: () => Promise<T>): Promise<T> {
      const run = queue.then(job, job);
      queue = run.catch(() => undefined);
      return run;
    },
    flush(): Promise<SyncNowResult> {
      return agent.runJob(async () => {
        agent.flushes += 1;
        const changes = [...pending];
        pending.clear();
        if (changes.length === 0) return { applied: 0, conflicts: [], skipped: 0 };
        const group = boundaries.current();
        const writer = await log.beginStep({ syncId: `cycle-${agent.flushes}`, policy: 'two-way-safe', root: hostRoot, group });
        for (const [key, content] of changes) await ops.write(writer, hostRoot, key, content);
        if (await writer.close()) boundaries.recorded(group, changes.map(([key]) => key));
        return { applied: changes.length, conflicts: [], skipped: 0 };
      });
    },
    exchangeHistory: () =>
      agent.runJob(async () => {
        agent.exchanges += 1;
      }),
    status: () => ({ state: 'idle', autoSync: 'continuous', changesWaiting: pending.size > 0, conflicts: [] }),
    keepOpenStep: async (group) => {
      agent.keptOpenStep = group;
    },
    agentWrites: (key, content) => void pending.set(key, content),
    userWrites: (key, content) => writeFile(path.join(hostRoot, key), content),
  };
  return agent;
}

/** A narrow step channel served for each test (see useStepChannel). */
export interface StepChannelSample {
  sample: UndoSample;
  /** The agent behind the channel, over the sample's tree and undo log. */
  agent: TestStepAgent;
  /** The channel's socket, beside the sample's tree. */
  socketPath: string;
  /** The channel while it serves (a test may close it, and set this to a server of its own, closed after it too). */
  channel?: StepChannelServer;
}

/** For each test: a fresh undo sample, a test step agent over it, and the real step channel serving that agent on a socket; closed after the test. */
export function useStepChannel(prefix: string): StepChannelSample {
  const sample = useUndoSample(prefix);
  const served = { sample } as StepChannelSample;
  beforeEach(async () => {
    served.socketPath = path.join(path.dirname(sample.workspace.root), 'steps.sock');
    served.agent = testStepAgent(sample.log, sample.workspace.root);
    served.channel = await serveStepChannel(served.socketPath, createStepOperations(served.agent));
  });
  afterEach(async () => {
    await served.channel?.close();
    served.channel = undefined;
  });
  return served;
}
