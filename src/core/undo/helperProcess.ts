// A long-lived helper process that the attribute readers feed requests over stdin and read
// answers from stdout. Starting a process per request is what they avoid; this one keeps Node
// alive only while answers are awaited.
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

/** Starts `command`; `output` gets its stdout (latin1: one character per byte), `stopped` runs once when it exits or fails. */
export function startHelper(command: string, args: readonly string[], handlers: { output: (chunk: string) => void; stopped: () => void }): ChildProcessWithoutNullStreams {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  setChildReferenced(child, false);
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', handlers.output);
  child.stderr.resume();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    handlers.stopped();
  };
  child.on('exit', stop);
  child.on('error', stop);
  child.stdin.on('error', stop);
  return child;
}

/** Whether the helper (and its pipes) keeps Node's event loop alive: only while answers are awaited. */
export function setChildReferenced(child: ChildProcessWithoutNullStreams, referenced: boolean): void {
  for (const handle of [child, child.stdin, child.stdout, child.stderr] as Array<{ ref?: () => void; unref?: () => void }>) {
    if (referenced) handle.ref?.();
    else handle.unref?.();
  }
}
