// `agent daemon`: the resident sync agent's process (see residentAgent.ts), listening on its Unix
// socket. `agent init` starts it and starts it again whenever it exits (supervisor.ts).
import { connect, createServer } from 'node:net';
import { rmSync } from 'node:fs';
import { AGENT_SOCKET_PATH, STEP_SOCKET_PATH } from '../core/containerLayout';
import { errorMessage } from '../core/errors';
import { createHandlers } from './handlers';
import { log } from './log';
import { ResidentAgent } from './residentAgent';
import { serveChannel } from './server';
import { serveStepChannel } from './stepChannel';

export async function runDaemon(socketPath = AGENT_SOCKET_PATH): Promise<void> {
  if (await answers(socketPath)) {
    log('info', 'a resident sync agent runs already; this one exits');
    return;
  }
  const agent = new ResidentAgent();
  // A socket file left by a previous process that was killed: nobody listens on it any more.
  rmSync(socketPath, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    void serveChannel(socket, socket, createHandlers(agent), { answerElsewhere: (questionId, answer) => agent.answer(questionId, answer) }).then(() => socket.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  const stop = () => {
    server.close();
    void agent.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log('info', 'resident sync agent listening', { pid: process.pid });
  // The narrow channel for the workspace user's hooks and MCP server (see stepChannel.ts).
  await serveStepChannel(STEP_SOCKET_PATH, agent.steps).catch((error: unknown) => log('warn', `step channel unavailable (turns are not marked as steps): ${errorMessage(error)}`));
  await agent.start();
}

/** Whether a resident agent listens on the socket already (two must never own one workspace). */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
