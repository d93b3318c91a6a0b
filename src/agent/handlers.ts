import { PROTOCOL_VERSION } from '../core/protocol';
import type { SyncOptions } from '../core/protocol';
import type { Handlers } from './server';
import { readInitState } from './initStateFile';
import { runInitialSync } from './initialSync';
import { createSyncHandlers } from './syncHandlers';
import { withSyncLock } from './syncLock';
import { AGENT_VERSION } from './version';
import { RequestError } from './server';

const notResident = async (): Promise<never> => {
  throw new RequestError('agent-unavailable', 'this agent has no resident sync agent yet');
};

/** The agent's answers to each request of the protocol (it runs as the workspace user). */
export function createHandlers(): Handlers {
  return {
    hello: async () => ({ protocolVersion: PROTOCOL_VERSION, agentVersion: AGENT_VERSION }),
    status: async () => ({
      agentVersion: AGENT_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      uid: process.getuid?.() ?? -1,
      gid: process.getgid?.() ?? -1,
      cwd: process.cwd(),
      init: readInitState(),
    }),
    retryInitialSync: (options: SyncOptions, context) => withSyncLock(() => runInitialSync(options, context.progress)),
    ...createSyncHandlers(),
    // The resident agent's requests: answered once the resident agent serves them (issue 14, under way).
    subscribe: notResident,
    pause: notResident,
    resume: notResident,
    configure: notResident,
    hint: notResident,
    stepStart: notResident,
    stepEnd: notResident,
    checkpoint: notResident,
  };
}
