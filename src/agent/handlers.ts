import { PROTOCOL_VERSION } from '../core/protocol';
import type { Handlers } from './server';
import { readInitState } from './initStateFile';
import type { ResidentAgent } from './residentAgent';
import { createSyncHandlers, type ChannelState } from './syncHandlers';
import { AGENT_VERSION } from './version';

/** The resident agent's answers to each request of one client's channel. */
export function createHandlers(agent: ResidentAgent): Handlers {
  const channel: ChannelState = {};
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
    retryInitialSync: (options, context) => agent.retryInitialCopy(options, context.progress),
    subscribe: async (_params, context) => {
      const unsubscribe = agent.subscribe((event) => context.sendEvent(event));
      context.signal.addEventListener('abort', unsubscribe, { once: true });
      return agent.status();
    },
    pause: async () => agent.pause(),
    resume: (_params, context) => agent.resume((question) => context.ask(question)),
    configure: (params) => agent.configure(params),
    hint: async (params) => {
      agent.hint(params.paths);
      return {};
    },
    failpoint: async (params) => {
      channel.failpoint = params.spec;
      return {};
    },
    ...createSyncHandlers(agent, channel),
    stepStart: (params) => agent.steps.stepStart(params),
    stepEnd: (params) => agent.steps.stepEnd(params),
    checkpoint: (params) => agent.steps.checkpoint(params),
  };
}
