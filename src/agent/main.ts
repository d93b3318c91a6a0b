// The in-container agent, one self-contained bundle run by the image's Node.
//   agent prepare container start-up as root: the users' identities (init.ts)
//   agent init    then, as the sync user: keeps the resident sync agent running (supervisor.ts)
//   agent daemon  the resident sync agent, the one owner of the sync (daemon.ts, residentAgent.ts)
//   agent initial-copy  the daemon's child that copies the host folder into a new /workspace (initialCopyProcess.ts)
//   agent serve   one client's channel over stdio, relayed to the resident agent (relay.ts)
//   agent hook E  a Claude Code hook (as the workspace user): marks a turn through the narrow channel
//   agent mcp     the Clud MCP server for Claude Code (as the workspace user), over stdio
import { AGENT_SOCKET_PATH } from '../core/containerLayout';
import { runDaemon } from './daemon';
import { runPrepare } from './init';
import { log } from './log';
import { relay } from './relay';
import { superviseDaemon } from './supervisor';
import { AGENT_VERSION } from './version';
import { startDaemonIfNoneRuns } from './supervisor';
import { readHookInput, runHook } from './hook';
import { runMcpServer } from './mcpServer';
import { runInitialCopyCommand } from './initialCopyProcess';

async function runHookCommand(event: string): Promise<void> {
  const problem = await runHook(event, await readHookInput(process.stdin));
  if (problem) process.stderr.write(`${problem}\n`);
  // Whatever happened, Claude Code goes on.
  process.exit(0);
}

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
} else if (command === 'initial-copy') {
  keepStdoutForProtocol();
  runInitialCopyCommand().then(
    () => process.exit(0),
    (error: unknown) => {
      log('error', `initial copy: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exit(1);
    },
  );
} else if (command === 'serve') {
  keepStdoutForProtocol();
  void relay(process.stdin, process.stdout, { socketPath: AGENT_SOCKET_PATH, failpoint: process.env.CLUD_FAILPOINT, startDaemon: startDaemonIfNoneRuns }).then(() => process.exit(0));
} else if (command === 'hook') {
  void runHookCommand(process.argv[3] ?? '');
} else if (command === 'mcp') {
  void runMcpServer(process.stdin, process.stdout).then(() => process.exit(0));
} else if (command === 'version') {
  process.stdout.write(`${AGENT_VERSION}\n`);
} else {
  process.stderr.write('usage: agent prepare | init | daemon | initial-copy | serve | hook EVENT | mcp | version\n');
  process.exitCode = 2;
}
