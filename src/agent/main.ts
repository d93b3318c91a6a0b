// The in-container agent, one self-contained bundle run by the image's Node.
//   agent prepare container start-up as root: the users' identities (init.ts)
//   agent init    then, as the sync user: keeps the resident sync agent running (supervisor.ts)
//   agent daemon  the resident sync agent, the one owner of the sync (daemon.ts, residentAgent.ts)
//   agent serve   one client's channel over stdio, relayed to the resident agent (relay.ts)
import { AGENT_SOCKET_PATH } from '../core/containerLayout';
import { runDaemon } from './daemon';
import { runPrepare } from './init';
import { log } from './log';
import { relay } from './relay';
import { superviseDaemon } from './supervisor';
import { AGENT_VERSION } from './version';
import { startDaemonIfNoneRuns } from './supervisor';

/** stdout carries protocol lines only: anything a library prints goes to stderr instead. */
function keepStdoutForProtocol(): void {
  const toStderr = (...args: unknown[]) => process.stderr.write(args.map(String).join(' ') + '\n');
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
}

const command = process.argv[2];
if (command === 'prepare') {
  runPrepare();
} else if (command === 'init') {
  superviseDaemon();
} else if (command === 'daemon') {
  keepStdoutForProtocol();
  process.on('uncaughtException', (error) => log('error', `uncaught exception: ${error.stack ?? error.message}`));
  process.on('unhandledRejection', (error) => log('error', `unhandled rejection: ${String(error)}`));
  void runDaemon();
} else if (command === 'serve') {
  keepStdoutForProtocol();
  void relay(process.stdin, process.stdout, { socketPath: AGENT_SOCKET_PATH, failpoint: process.env.CLUD_FAILPOINT, startDaemon: startDaemonIfNoneRuns }).then(() => process.exit(0));
} else if (command === 'version') {
  process.stdout.write(`${AGENT_VERSION}\n`);
} else {
  process.stderr.write('usage: agent prepare | init | daemon | serve | version\n');
  process.exitCode = 2;
}
