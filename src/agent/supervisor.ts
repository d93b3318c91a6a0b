// `agent init`, the container's long-lived process under tini: it keeps the resident sync agent
// (`agent daemon`) running. A daemon that exits for any reason (a crash, SIGKILL, the OOM
// killer) is started again; the new one recovers the undo log's open step and the state store's
// journal, and clients that were attached are told (`agent-restarted`) by their relay.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { AGENT_STATE_DIR } from '../core/containerLayout';
import { log } from './log';

/** Restarts come quickly at first, then no faster than this, while the daemon keeps dying at start. */
const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 10_000;
/** A daemon that ran this long was healthy: the next restart is quick again. */
const HEALTHY_AFTER_MS = 30_000;
/**
 * V8's young generation may grow to 16 MB per semi-space and stays that big once a scan has
 * grown it: 40 MB of a resident agent that should hold little more than its state. Measured on a
 * no-change rescan of 100,000 files: 40 MB less at the same speed with 2 MB. A burst pays for it
 * in scavenges (about a fifth of the agent's main thread over four 1,000-file bursts), and 8 MB
 * costs more memory than the goal leaves (docs/ARCHITECTURE.md). --expose-gc: the agent
 * collects its garbage after a rescan of a large heap, and at rest after work (memory.ts).
 */
const DAEMON_NODE_OPTIONS = '--max-semi-space-size=2 --expose-gc';

/**
 * glibc gives each thread that allocates a malloc arena of its own and keeps what was freed in
 * it: the periodic rescan's walk thread, started for each rescan, left 15-40 MB of RSS behind at
 * 100,000 files (bench/memexp.ts, after a full collection: 175-202 MB with the default arenas,
 * 161-162 MB with two).
 */
const DAEMON_MALLOC_ARENAS = '2';

/**
 * glibc returns freed memory at the top of its heap only past a threshold that grows with the
 * largest block freed so far, up to 32 MB: V8's compiler, done with the agent's code at start-up,
 * left about 10 MB that way. A fixed threshold (its default start, 128 KiB) gives it back.
 * Measured on loading the agent's bundle: 76 MB RSS with the growing threshold, 67 MB with this;
 * the resident agent at rest at 100,000 files: 184 MB, 167-169 MB with this.
 */
const DAEMON_MALLOC_TRIM_THRESHOLD = String(128 * 1024);

/** The resident agent's environment: this one, with its V8 options and malloc settings. */
function daemonEnvironment(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_OPTIONS: [process.env.NODE_OPTIONS, DAEMON_NODE_OPTIONS].filter(Boolean).join(' '),
    MALLOC_ARENA_MAX: DAEMON_MALLOC_ARENAS,
    MALLOC_TRIM_THRESHOLD_: DAEMON_MALLOC_TRIM_THRESHOLD,
  };
}

export function superviseDaemon(agentPath = process.argv[1]!): void {
  let child: ChildProcess | undefined;
  let stopping = false;
  let delay = FIRST_DELAY_MS;
  const start = () => {
    const startedAt = Date.now();
    child = spawn(process.execPath, [agentPath, 'daemon'], { stdio: ['ignore', 'inherit', 'inherit'], env: daemonEnvironment() });
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

/**
 * For a container started by an earlier Clud, whose init keeps no resident agent: starts one,
 * detached (tini adopts it), unless a resident agent runs already. It is not restarted if it
 * dies; the next client starts another.
 */
export function startDaemonIfNoneRuns(agentPath = process.argv[1]!): void {
  if (daemonRunning()) return;
  log('warn', 'this container has no resident sync agent (it was started by an earlier Clud): starting one');
  // Its log goes to a file: nothing reads the stderr of a process started from an exec.
  const logFile = openSync(path.join(AGENT_STATE_DIR, 'daemon.log'), 'a');
  spawn(process.execPath, [agentPath, 'daemon'], { detached: true, stdio: ['ignore', logFile, logFile], env: daemonEnvironment() }).unref();
}

function daemonRunning(): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args[2] === 'daemon' && args[1]?.endsWith('.js')) return true;
    } catch {
      // Gone meanwhile.
    }
  }
  return false;
}
