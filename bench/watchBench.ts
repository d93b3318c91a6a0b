// `npm run bench:watch`: which file watcher the resident agent should use, measured on generated
// trees of 2,000 / 10,000 / 100,000 files in real folder depths (about 10 files a folder, 5 subfolders, up to 6
// levels deep). Each watcher runs in its own child process, so that its inotify watches (the
// `inotify wd:` lines in /proc/PID/fdinfo) and its resident memory are its own:
//   chokidar 4, @parcel/watcher 2 (native, prebuilt), plain fs.watch on every folder, and the
//   TreeWatcher of src/core/sync/watcher.ts (fs.watch per folder plus coalescing).
// Then each is started again inside a user namespace whose inotify watch limit is half the
// folder count (unshare, /proc/sys/user/max_inotify_watches: the machine's own limit is not
// touched), to see what it does on ENOSPC.
// scripts/watchBench.sh installs the two libraries into bench-results/watch-deps (they are not
// dependencies of the extension or the agent) and runs this with tsx.
// `-- --sizes 2000,10000`: other tree sizes; `-- --watchers parcel,TreeWatcher`: only those.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, readFileSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { TreeWatcher } from '../src/core/sync/watcher';
import { buildTree } from './trees';

const run = promisify(execFile);
const WATCHERS = ['chokidar', 'parcel', 'fs.watch', 'TreeWatcher'] as const;
type WatcherName = (typeof WATCHERS)[number];
const LATENCY_SAMPLES = 15;

interface ChildResult {
  watcher: WatcherName;
  startMs: number;
  watches: number;
  rssMb: number;
  baselineRssMb: number;
  latencyP50Ms?: number;
  latencyMaxMs?: number;
  error?: string;
  seenAfterError?: boolean;
}

// --- child: one watcher on one tree ---------------------------------------------------------

async function child(name: WatcherName, root: string, deepFolder: string): Promise<void> {
  const baselineRssMb = process.memoryUsage().rss / 2 ** 20;
  const deps = createRequire(path.join(process.env.CLUD_WATCH_DEPS ?? path.resolve('bench-results/watch-deps'), 'node_modules', 'x.js'));
  const seen = new Map<string, () => void>();
  let error: string | undefined;
  const onPath = (absolute: string) => seen.get(path.resolve(absolute))?.();
  const started = process.hrtime.bigint();
  let close: () => Promise<void> | void = () => undefined;
  try {
    if (name === 'chokidar') {
      const chokidar = deps('chokidar') as typeof import('chokidar');
      const watcher = chokidar.watch(root, { ignoreInitial: true, persistent: true });
      watcher.on('all', (_event: string, file: string) => onPath(file));
      watcher.on('error', (e: unknown) => { error ??= String((e as Error).message ?? e); });
      await new Promise<void>((resolve) => watcher.on('ready', () => resolve()));
      close = () => watcher.close();
    } else if (name === 'parcel') {
      const parcel = deps('@parcel/watcher') as typeof import('@parcel/watcher');
      const subscription = await parcel.subscribe(root, (e, events) => {
        if (e) error ??= e.message;
        for (const event of events) onPath(event.path);
      }, { backend: 'inotify' });
      close = () => subscription.unsubscribe();
    } else if (name === 'fs.watch') {
      const watchers: FSWatcher[] = [];
      const walk = (folder: string) => {
        const watcher = watch(folder, (_event, file) => { if (file) onPath(path.join(folder, file.toString())); });
        watcher.on('error', (e) => { error ??= e.message; });
        watchers.push(watcher);
        for (const entry of readdirSync(folder, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(folder, entry.name));
      };
      walk(root);
      close = () => watchers.forEach((w) => w.close());
    } else {
      const watcher = new TreeWatcher(root, { excludes: [], onBatch: (batch) => {
        // A rescan batch (polling) covers every path.
        if (batch.rescan) for (const waiting of [...seen.values()]) waiting();
        for (const p of batch.paths) onPath(path.join(root, p));
      } });
      watcher.on('degraded', (d) => { error ??= `${d.code}: ${d.message}`; });
      await watcher.start();
      close = () => watcher.close();
    }
  } catch (e) {
    error ??= `${(e as NodeJS.ErrnoException).code ?? ''} ${(e as Error).message}`.trim();
  }
  const startMs = Number(process.hrtime.bigint() - started) / 1e6;
  const watches = countInotifyWatches();
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  const latencies: number[] = [];
  // A write in the deepest folder; the time until the watcher reports that path.
  for (let i = 0; i < LATENCY_SAMPLES; i += 1) {
    const file = path.resolve(deepFolder, `probe-${i}.txt`);
    const latency = await new Promise<number | undefined>((resolve) => {
      const t0 = process.hrtime.bigint();
      const timer = setTimeout(() => resolve(undefined), 3000);
      seen.set(file, () => { clearTimeout(timer); seen.delete(file); resolve(Number(process.hrtime.bigint() - t0) / 1e6); });
      writeFileSync(file, `probe ${i}`);
    });
    if (latency === undefined) break;
    latencies.push(latency);
    await new Promise((r) => setTimeout(r, 20));
  }
  await close();
  latencies.sort((a, b) => a - b);
  const result: ChildResult = {
    watcher: name, startMs: Math.round(startMs), watches, rssMb: Math.round(rssMb), baselineRssMb: Math.round(baselineRssMb),
    ...(latencies.length === LATENCY_SAMPLES && { latencyP50Ms: round(latencies[Math.floor(latencies.length / 2)]), latencyMaxMs: round(latencies[latencies.length - 1]) }),
    ...(error !== undefined && { error: error.replace(/'?\/tmp\/clud-watch-bench-[^ ]*/g, 'PATH').slice(0, 160), seenAfterError: latencies.length === LATENCY_SAMPLES }),
  };
  process.stdout.write(JSON.stringify(result));
}

function countInotifyWatches(): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      count += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((line) => line.startsWith('inotify wd:')).length;
    } catch { /* closed meanwhile */ }
  }
  return count;
}

// --- parent: trees and the table ------------------------------------------------------------

async function runChild(name: WatcherName, root: string, deepFolder: string, watchLimit?: number): Promise<ChildResult> {
  const script = `${process.execPath} --import tsx ${JSON.stringify(__filename)} --child ${name} ${JSON.stringify(root)} ${JSON.stringify(deepFolder)}`;
  const command = watchLimit === undefined ? ['sh', '-c', script] : ['unshare', '--user', '--map-root-user', 'sh', '-c', `echo ${watchLimit} > /proc/sys/user/max_inotify_watches && ${script}`];
  const { stdout } = await run(command[0], command.slice(1), { maxBuffer: 1 << 20, timeout: 300_000 });
  return JSON.parse(stdout) as ChildResult;
}

async function main(): Promise<void> {
  const sizesArg = process.argv.indexOf('--sizes');
  const sizes = sizesArg > 0 ? process.argv[sizesArg + 1].split(',').map(Number) : [2000, 10000, 100000];
  const watchersArg = process.argv.indexOf('--watchers');
  const watchers = watchersArg > 0 ? (process.argv[watchersArg + 1].split(',') as WatcherName[]) : WATCHERS;
  const unshareWorks = await run('unshare', ['--user', '--map-root-user', 'true']).then(() => true, () => false);
  const rows: Array<ChildResult & { files: number; folders: number; limit?: number }> = [];
  for (const files of sizes) {
    const work = await mkdtemp(path.join(os.tmpdir(), 'clud-watch-bench-'));
    try {
      const { folders, deepFolder } = buildTree(path.join(work, 'tree'), files);
      await run('sync');
      console.error(`tree: ${files} files in ${folders} folders`);
      for (const name of watchers) {
        rows.push({ files, folders, ...(await runChild(name, path.join(work, 'tree'), deepFolder)) });
        console.error(`  ${JSON.stringify(rows[rows.length - 1])}`);
      }
      if (unshareWorks && files === sizes[0]) {
        const limit = Math.floor(folders / 2);
        for (const name of watchers) {
          rows.push({ files, folders, limit, ...(await runChild(name, path.join(work, 'tree'), deepFolder, limit).catch((e: Error) => ({ watcher: name, startMs: 0, watches: 0, rssMb: 0, baselineRssMb: 0, error: `child failed: ${e.message.split('\n')[0]}` }))) });
          console.error(`  ${JSON.stringify(rows[rows.length - 1])}`);
        }
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  console.log('| files | folders | watcher | watch limit | inotify watches | RSS MB (node alone) | start-up ms | event latency p50 / max ms | on error |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const latency = row.latencyP50Ms === undefined ? 'events lost' : `${row.latencyP50Ms} / ${row.latencyMaxMs}`;
    console.log(`| ${row.files} | ${row.folders} | ${row.watcher} | ${row.limit ?? '-'} | ${row.watches} | ${row.rssMb} (${row.baselineRssMb}) | ${row.startMs} | ${latency} | ${row.error ?? '-'} |`);
  }
  mkdirSync('bench-results', { recursive: true });
  writeFileSync(path.join('bench-results', 'watch.json'), JSON.stringify(rows, null, 2));
}

const round = (n: number) => Math.round(n * 10) / 10;

if (process.argv[2] === '--child') {
  child(process.argv[3] as WatcherName, process.argv[4], process.argv[5]).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
