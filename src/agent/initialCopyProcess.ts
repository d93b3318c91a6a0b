// The initial copy runs in a process of its own, started by the resident agent: the copy holds
// the whole tree's scan and the archive's buffers, and a process that exits gives all of that
// back to the system, where the resident agent would keep the pages for the container's life
// (numbers in docs/ARCHITECTURE.md, "The initial copy").
//
// The resident agent sends the sync options on the child's stdin; the child answers on stdout
// with InitialCopyMessage lines (progress, then the init state), and logs on stderr as any
// agent process does.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { InitState, ProgressData } from '../core/protocol';
import { parseInitialCopyMessage, SyncOptions, type InitialCopyMessage } from '../core/protocol';
import { agentMustDieDuringInitialCopy, initialCopyMustDie } from './failpoint';
import { readInitState, writeInitState } from './initStateFile';
import { runInitialSync } from './initialSync';

/** The resident agent's side: runs the initial copy in `agent initial-copy` and returns the init state it ended in. */
export async function runInitialSyncInChild(options: SyncOptions, onProgress: (data: ProgressData) => void): Promise<InitState> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'initial-copy'], { stdio: ['pipe', 'pipe', 'inherit'] });
  // Kept open: the child takes its end as this process's death (see runInitialCopyCommand).
  child.stdin.write(`${JSON.stringify(options)}\n`);
  let finalState: InitState | undefined;
  const exited = new Promise<string>((resolve) => {
    child.on('error', (error) => resolve(`could not start: ${error.message}`));
    child.on('close', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
  });
  for await (const line of createInterface({ input: child.stdout })) {
    const message = parseInitialCopyMessage(line);
    if (message?.kind === 'progress') {
      if (agentMustDieDuringInitialCopy()) process.kill(process.pid, 'SIGKILL');
      onProgress(message.data);
    } else if (message?.kind === 'done') {
      finalState = message.state;
    }
  }
  child.stdin.end();
  const how = await exited;
  if (finalState) return finalState;
  // Died before it said how the copy ended (killed, out of memory): a failure the user can retry.
  const previous = readInitState();
  return writeInitState({ warnings: [], attempts: 1, ...previous, phase: 'failed', error: `the initial copy's process ${how} before it finished`, progress: undefined });
}

/**
 * `agent initial-copy`: the child's side. The options are stdin's first line; stdin then stays
 * open while the resident agent lives: its end means the agent died (a restarted one would not
 * know of this copy), and the copy stops rather than write on in /workspace behind its back.
 */
export async function runInitialCopyCommand(): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) return;
  process.stdin.once('end', () => process.exit(1));
  const options = SyncOptions.parse(JSON.parse(first.value));
  if (initialCopyMustDie()) process.kill(process.pid, 'SIGKILL');
  const send = (message: InitialCopyMessage) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const state = await runInitialSync(options, (data) => send({ kind: 'progress', data }));
  send({ kind: 'done', state });
}
