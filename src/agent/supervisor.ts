// `agent init`, the container's long-lived process under tini: it keeps the resident sync agent
// (`agent daemon`) running. A daemon that exits for any reason (a crash, SIGKILL, the OOM
// killer) is started again; the new one recovers the undo log's open step and the state store's
// journal, and clients that were attached are told (`agent-restarted`) by their relay.
import { spawn, type ChildProcess } from 'node:child_process';
import { log } from './init';

/** Restarts come quickly at first, then no faster than this, while the daemon keeps dying at start. */
const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 10_000;
/** A daemon that ran this long was healthy: the next restart is quick again. */
const HEALTHY_AFTER_MS = 30_000;

export function superviseDaemon(agentPath = process.argv[1]!): void {
  let child: ChildProcess | undefined;
  let stopping = false;
  let delay = FIRST_DELAY_MS;
  const start = () => {
    const startedAt = Date.now();
    child = spawn(process.execPath, [agentPath, 'daemon'], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code, signal) => {
      if (stopping) process.exit(0);
      delay = Date.now() - startedAt > HEALTHY_AFTER_MS ? FIRST_DELAY_MS : Math.min(delay * 2, MAX_DELAY_MS);
      log('error', `the resident sync agent exited (${signal ?? `code ${code}`}); starting it again in ${delay} ms`);
      setTimeout(start, delay);
    });
  };
  const stop = () => {
    stopping = true;
    if (!child || child.exitCode !== null || child.signalCode !== null) process.exit(0);
    child.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  start();
}
