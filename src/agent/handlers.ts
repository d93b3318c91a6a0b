import { PROTOCOL_VERSION } from '../core/protocol';
import type { SyncOptions } from '../core/protocol';
import type { Handlers } from './server';
import { readInitState } from './initStateFile';
import { runInitialSync } from './initialSync';
import { createSyncHandlers } from './syncHandlers';
import { withSyncLock } from './syncLock';
import { AGENT_VERSION } from './version';

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
  };
}
