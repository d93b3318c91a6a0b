// `clud run` and `clud checkpoint` on top of Workspace: a command in /workspace as one undoable
// step (stepStart, the command, stepEnd, which carries its changes across first), and a named
// restore point, both through the resident agent's step boundaries.
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { ResultOf, StepGroupInfo } from '../protocol';
import type { Workspace } from './workspace';

export interface RunStepIo {
  stdout: Writable;
  stderr: Writable;
  /** Aborting it interrupts the command (SIGINT to its process group, SIGKILL 5 s later); its step still closes, undoable for what it changed. */
  signal?: AbortSignal;
  /** Called once the step is open. */
  onStarted?(group: StepGroupInfo): void;
}

export interface RunStepResult {
  group: StepGroupInfo;
  exitCode: number;
  cancelled: boolean;
  /** Host paths the step changed. */
  paths: string[];
  pathsTruncated: boolean;
  /** Why changes waiting when it ended had not reached the folder (see StepEndResult). */
  held?: string;
}

/** A command line as a label: each argument shell-quoted when it needs it. */
export function commandLine(cmd: readonly string[]): string {
  return cmd.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Runs `cmd` in /workspace as the workspace user, as one step. */
export async function runAsStep(workspace: Workspace, cmd: string[], io: RunStepIo): Promise<RunStepResult> {
  return workspace.withSession(async (session) => {
    const { group } = await session.client.request('stepStart', { kind: 'command', label: commandLine(cmd) });
    io.onStarted?.(group);
    const { exitCode, cancelled } = await execInterruptible(workspace, cmd, io);
    // The agent carries what the command changed before it ends the step, whatever the exit code.
    const ended = await session.client.request('stepEnd', { group: group.id });
    return { group, exitCode, cancelled, paths: ended.paths, pathsTruncated: ended.pathsTruncated, ...(ended.held && { held: ended.held }) };
  });
}

/**
 * Runs the command in a process group of its own (setsid), led by a shell whose PID is in a file
 * in the workspace user's /tmp, so that an interrupt reaches the command and everything it
 * started: a `docker exec` cannot be signalled through the Engine API. The shell outlives the
 * interrupt (a trap, which its child does not inherit, unlike an ignored signal) and exits with
 * the command's status: a leader killed by the signal would have `setsid -w` print "child did
 * not exit normally" under the user's output.
 */
async function execInterruptible(workspace: Workspace, cmd: string[], io: RunStepIo): Promise<{ exitCode: number; cancelled: boolean }> {
  const pidFile = `/tmp/clud-run-${randomBytes(6).toString('hex')}.pid`;
  const wrapped = ['setsid', '-w', '/bin/sh', '-c', 'echo $$ > "$0"; trap : INT; "$@"', pidFile, ...cmd];
  let cancelled = false;
  const interrupt = () => {
    cancelled = true;
    const script = 'pid=$(cat "$1" 2>/dev/null) || exit 0; kill -INT "-$pid" 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "-$pid" 2>/dev/null || exit 0; sleep 0.5; done; kill -KILL "-$pid" 2>/dev/null; exit 0';
    void workspace.exec(['/bin/sh', '-c', script, 'clud run', pidFile], { stdout: io.stderr, stderr: io.stderr }).catch(() => undefined);
  };
  if (io.signal?.aborted) interrupt();
  io.signal?.addEventListener('abort', interrupt, { once: true });
  try {
    const exitCode = await workspace.exec(wrapped, { stdout: io.stdout, stderr: io.stderr });
    return { exitCode, cancelled };
  } finally {
    io.signal?.removeEventListener('abort', interrupt);
    void workspace.exec(['rm', '-f', pidFile], { stdout: io.stderr, stderr: io.stderr }).catch(() => undefined);
  }
}

/** Ends the current step under `label` (after carrying what waits), so it can be undone as one. */
export function checkpoint(workspace: Workspace, label: string): Promise<ResultOf<'checkpoint'>> {
  return workspace.withSession((session) => session.client.request('checkpoint', { label }));
}
