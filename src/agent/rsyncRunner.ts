// rsync for the bulk copies: the initial copy of the host folder into a new /workspace (the list of
// paths comes from the same scanner every sync uses).
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { CONTAINER_HOST_PATH, CONTAINER_STATE_PATH, CONTAINER_WORKSPACE_PATH } from '../core/containerLayout';
import type { ProgressData, SyncMetrics, SyncOptions } from '../core/protocol';
import { withRetries } from '../core/retry';
import { MAX_CHANGED_PATHS, TRANSIENT_EXIT_CODES, VANISHED_EXIT_CODE, initialCopyArgs, parseItemizedLine, parseRsyncOutput, rsyncErrors } from '../core/rsync';
import type { Entry, FileEntry } from '../core/files/entry';
import { bytesFromName, joinBytes } from '../core/files/pathCodec';
import type { ScanCache } from '../core/sync/scan';
import { scanTree } from '../core/sync/scan';
import { withStateStore } from '../core/sync/engine';
import type { SyncStateStore } from '../core/sync/stateStore';
import { hostAccess } from './hostAccess';

interface RsyncRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Copies the host folder into /workspace: the scanner picks the paths (ignore rules applied), rsync copies
 * them, retrying transient failures. What the scanner cannot read (an unreadable file or folder,
 * a socket, a device) is not copied and is reported in `notCopied`, not as an error: it is left
 * alone on both sides like an ignored path, so one such file never blocks the workspace.
 */
export async function runInitialCopy(options: SyncOptions, onProgress: (data: ProgressData) => void = () => {}): Promise<SyncMetrics> {
  if (!existsSync(CONTAINER_STATE_PATH)) return copyWithState(options, onProgress, undefined);
  return withStateStore(CONTAINER_STATE_PATH, (store) => copyWithState(options, onProgress, store));
}

async function copyWithState(options: SyncOptions, onProgress: (data: ProgressData) => void, store: SyncStateStore | undefined): Promise<SyncMetrics> {
  const started = Date.now();
  onProgress({ phase: 'scan', message: 'scanning the folder' });
  const scan = await scanTree(CONTAINER_HOST_PATH, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: store?.host, accessAs: hostAccess() });
  // The hashes are the first sync's host scan: keeping them spares hashing the folder twice.
  await store?.commit({ host: store.diff('host', scan.cache) }).catch(() => {});
  const list = Buffer.concat(
    [...scan.snapshot].filter(([, entry]) => entry.kind !== 'untracked').flatMap(([path]) => [bytesFromName(path), Buffer.from([0])]),
  );
  const { value: run, retries } = await withRetries(() => runRsync(initialCopyArgs(), list, onProgress), {
    retries: options.retries,
    shouldRetry: (result) => TRANSIENT_EXIT_CODES.has(result.exitCode),
  });
  const outcome = parseRsyncOutput(run.stdout);
  const errors = run.exitCode === 0 || run.exitCode === VANISHED_EXIT_CODE ? [] : describeFailure(run);
  if (errors.length === 0 && store) await recordCopiedState(store, scan.snapshot, scan.cache);
  return {
    direction: 'push',
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ...outcome,
    changedPathsTruncated: outcome.changedPathsTruncated || outcome.changedPaths.length > MAX_CHANGED_PATHS,
    errors,
    retries,
    keptOut: scan.keptOut,
    notCopied: scan.problems.map((problem) => ({ path: problem.path, reason: problem.reason })),
  };
}

/**
 * The copy is the first agreed state: the host scan's entries, now on both sides. Recording it
 * lets the first sync tell which side changed (without it every difference is a conflict), and
 * the container's cache entries spare re-hashing the files rsync just wrote.
 */
async function recordCopiedState(store: SyncStateStore, snapshot: ReadonlyMap<string, Entry>, hostCache: ScanCache): Promise<void> {
  const agreed = new Map([...snapshot].filter(([, entry]) => entry.kind !== 'untracked'));
  const cache: ScanCache = new Map();
  const files = [...agreed].filter((pair): pair is [string, FileEntry] => pair[1].kind === 'file');
  for (let start = 0; start < files.length; start += 64) {
    await Promise.all(
      files.slice(start, start + 64).map(async ([path, entry]) => {
        const stats = await lstat(joinBytes(CONTAINER_WORKSPACE_PATH, path)).catch(() => undefined);
        // Only what rsync demonstrably wrote as scanned (same size and time) inherits the hash.
        if (stats?.isFile() && stats.size === entry.size && Math.abs(stats.mtimeMs - entry.mtimeMs) < 1) {
          cache.set(path, { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, mode: stats.mode, hash: entry.hash, secret: hostCache.get(path)?.secret });
        }
      }),
    );
  }
  await store.commit({ ancestor: store.diff('ancestor', agreed), container: store.diff('container', cache) });
}

async function runRsync(args: string[], input: Buffer, onProgress: (data: ProgressData) => void): Promise<RsyncRun> {
  const child = execa('rsync', args, { reject: false, stripFinalNewline: false, encoding: 'utf8', input });
  let files = 0;
  let reported = -1;
  let lastReport = 0;
  const report = () => {
    if (files === reported) return;
    reported = files;
    lastReport = Date.now();
    onProgress({ phase: 'copy', message: `${files} file(s)`, files });
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
