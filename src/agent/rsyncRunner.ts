import { execa } from 'execa';
import { MAX_CHANGED_PATHS, TRANSIENT_EXIT_CODES, VANISHED_EXIT_CODE, parseItemizedLine, parseRsyncOutput, rsyncArgs, rsyncErrors } from '../core/rsync';
import { withRetries } from '../core/retry';
import type { ProgressData, SyncDirection, SyncMetrics, SyncOptions } from '../core/protocol';

interface RsyncRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs one push or pull with rsync, retrying transient failures; never throws for rsync's own failures. */
export async function runSync(direction: SyncDirection, options: SyncOptions, onProgress: (data: ProgressData) => void = () => {}): Promise<SyncMetrics> {
  const started = Date.now();
  const args = rsyncArgs(direction, options);
  if (options.dryRun) args.unshift('--dry-run');
  const { value: run, retries } = await withRetries(() => runOnce(args, direction, onProgress), {
    retries: options.retries,
    shouldRetry: (result) => TRANSIENT_EXIT_CODES.has(result.exitCode),
  });
  const outcome = parseRsyncOutput(run.stdout);
  const errors = run.exitCode === 0 || run.exitCode === VANISHED_EXIT_CODE ? [] : describeFailure(run);
  return {
    direction,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ...outcome,
    changedPathsTruncated: outcome.changedPathsTruncated || outcome.changedPaths.length > MAX_CHANGED_PATHS,
    errors,
    retries,
  };
}

async function runOnce(args: string[], direction: SyncDirection, onProgress: (data: ProgressData) => void): Promise<RsyncRun> {
  const child = execa('rsync', args, { reject: false, stripFinalNewline: false, encoding: 'utf8' });
  let files = 0;
  let reported = -1;
  let lastReport = 0;
  const report = () => {
    if (files === reported) return;
    reported = files;
    lastReport = Date.now();
    onProgress({ phase: direction, message: `${files} file(s)`, files });
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (parseItemizedLine(line)?.changed) files += 1;
    if (Date.now() - lastReport > 200) report();
  });
  const result = await child;
  report();
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}

function describeFailure(run: RsyncRun): string[] {
  const errors = rsyncErrors(run.stderr);
  return errors.length ? errors : [`rsync exited with code ${run.exitCode}: ${run.stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`];
}
