// The in-container agent, one self-contained bundle run by the image's Node.
//   agent prepare container start-up as root: the workspace user's identity (init.ts)
//   agent init    then, as that user: the initial copy, then stay up (init.ts)
//   agent serve   one control-channel session over stdio, as the workspace user
import { serveChannel } from './server';
import { createHandlers } from './handlers';
import { runInit, runPrepare } from './init';
import { log } from './log';
import { AGENT_VERSION } from './version';

async function runServe(): Promise<void> {
  // stdout carries protocol lines only: anything a library prints goes to stderr instead.
  const toStderr = (...args: unknown[]) => process.stderr.write(args.map(String).join(' ') + '\n');
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
  process.on('uncaughtException', (error) => process.stderr.write(`agent: uncaught exception: ${error.stack ?? error.message}\n`));
  process.on('unhandledRejection', (error) => process.stderr.write(`agent: unhandled rejection: ${String(error)}\n`));
  await serveChannel(process.stdin, process.stdout, createHandlers());
  process.exit(0);
}

const command = process.argv[2];
if (command === 'prepare') {
  runPrepare();
} else if (command === 'init') {
  void runInit().catch((error: unknown) => log('error', `init crashed: ${String(error)}`));
} else if (command === 'serve') {
  void runServe();
} else if (command === 'version') {
  process.stdout.write(`${AGENT_VERSION}\n`);
} else {
  process.stderr.write('usage: agent prepare | init | serve | version\n');
  process.exitCode = 2;
}
