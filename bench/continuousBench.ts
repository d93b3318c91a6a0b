// `npm run bench:continuous`: the incremental sync core (src/core/sync/incremental.ts and the
// state store) on generated trees of 2,000 / 10,000 / 100,000 files, in plain Node on local temp
// folders (inside the container /host and /workspace are local too; this does not go through
// Docker). Per size:
//   - a one-file cycle: one host file edited, the cycle given that dirty path (median of 7);
//   - a no-change full cycle (both trees scanned, caches warm) and a no-change periodic rescan
//     (runRescanCycle: both trees' metadata compared with the store) against a no-change
//     `rsync -a` of the same tree (medians of 3);
//   - the resident state: RSS and heap of a process holding the opened store (measured in a
//     child process, after a GC) and the store's bytes on disk.
// `-- --sizes 2000,10000`: other sizes.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runRescanCycle, runStoreCycle } from '../src/core/sync/engine';
import { stateStoreBytes, SyncStateStore } from '../src/core/sync/stateStore';
import { buildTree } from './trees';

const run = promisify(execFile);

interface Row {
  files: number;
  folders: number;
  oneFileCycleMs: number;
  fullNoChangeMs: number;
  rsyncNoChangeMs: number;
  ratioToRsync: number;
  rescanNoChangeMs: number;
  rescanRatioToRsync: number;
  stateRssMb: number;
  stateHeapMb: number;
  stateDiskMb: number;
  openStoreMs: number;
}

async function measure(files: number): Promise<Row> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'clud-continuous-bench-'));
  try {
    const host = path.join(work, 'host');
    const container = path.join(work, 'container');
    const state = path.join(work, 'state');
    const { folders, deepFolder } = buildTree(host, files);
    await run('cp', ['-a', host, container]);
    await run('sync');
    const roots = { host, container };
    const store = await SyncStateStore.open(state);
    const cycle = (dirty?: string[]) => runStoreCycle({ roots, excludes: [], policy: 'two-way-safe', store, ...(dirty && { dirty }) });
    console.error(`  ${files} files in ${folders} folders: first full cycle…`);
    await cycle();
    await run('sync');

    const oneFile: number[] = [];
    const probe = path.relative(host, path.join(deepFolder, 'probe.txt'));
    for (let i = 0; i < 7; i += 1) {
      writeFileSync(path.join(host, probe), `edit ${i}`);
      const started = performance.now();
      const result = await cycle([probe]);
      oneFile.push(performance.now() - started);
      if (result.report?.appliedCount !== 1) throw new Error(`one-file cycle applied ${result.report?.appliedCount ?? result.fullCycleNeeded}`);
    }
    const full: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const started = performance.now();
      const result = await cycle();
      full.push(performance.now() - started);
      if (result.report?.appliedCount !== 0) throw new Error('no-change full cycle changed something');
    }
    // The second full cycle read what the first one wrote into the container: caches are warm.
    const rescans: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const started = performance.now();
      const result = await runRescanCycle({ roots, excludes: [], policy: 'two-way-safe', store });
      rescans.push(performance.now() - started);
      if (result.rescan !== 'changes-only' || result.report.appliedCount !== 0) throw new Error(`a no-change rescan ran ${result.rescan} and applied ${result.report.appliedCount}`);
    }
    await store.close();
    const rsync: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const started = performance.now();
      await run('rsync', ['-a', `${host}/`, `${container}/`]);
      rsync.push(performance.now() - started);
    }
    const memory = JSON.parse((await run(process.execPath, ['--expose-gc', '--import', 'tsx', __filename, '--measure-state', state], { maxBuffer: 1 << 20 })).stdout) as { rssMb: number; heapMb: number; openMs: number };
    const fullNoChangeMs = median(full);
    const rsyncNoChangeMs = median(rsync);
    return {
      files, folders, oneFileCycleMs: round(median(oneFile)), fullNoChangeMs: Math.round(fullNoChangeMs), rsyncNoChangeMs: Math.round(rsyncNoChangeMs),
      ratioToRsync: round(fullNoChangeMs / rsyncNoChangeMs), rescanNoChangeMs: Math.round(median(rescans)), rescanRatioToRsync: round(median(rescans) / rsyncNoChangeMs), stateRssMb: memory.rssMb, stateHeapMb: memory.heapMb, openStoreMs: memory.openMs,
      stateDiskMb: round((await stateStoreBytes(state)) / 2 ** 20),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Child: what holding the opened store costs, over a bare Node process. */
async function measureState(state: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  gc();
  const before = process.memoryUsage();
  const started = performance.now();
  const store = await SyncStateStore.open(state);
  const openMs = Math.round(performance.now() - started);
  gc();
  const after = process.memoryUsage();
  process.stdout.write(JSON.stringify({ rssMb: Math.round((after.rss - before.rss) / 2 ** 20), heapMb: Math.round((after.heapUsed - before.heapUsed) / 2 ** 20), openMs, records: store.ancestor.size + store.host.size + store.container.size }));
  await store.close();
}

async function main(): Promise<void> {
  const sizesArg = process.argv.indexOf('--sizes');
  const sizes = sizesArg > 0 ? (process.argv[sizesArg + 1] ?? '').split(',').map(Number) : [2000, 10000, 100000];
  const rows: Row[] = [];
  for (const files of sizes) {
    rows.push(await measure(files));
    console.error(`  ${JSON.stringify(rows.at(-1))}`);
  }
  console.log('| files | folders | one-file cycle ms | no-change full cycle ms | no-change periodic rescan ms | no-change rsync -a ms | ratio (full / rescan) | state RSS MB (heap) | store on disk MB | store open ms |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(`| ${row.files} | ${row.folders} | ${row.oneFileCycleMs} | ${row.fullNoChangeMs} | ${row.rescanNoChangeMs} | ${row.rsyncNoChangeMs} | ${row.ratioToRsync} / ${row.rescanRatioToRsync} | ${row.stateRssMb} (${row.stateHeapMb}) | ${row.stateDiskMb} | ${row.openStoreMs} |`);
  }
  mkdirSync('bench-results', { recursive: true });
  writeFileSync(path.join('bench-results', 'continuous.json'), JSON.stringify(rows, null, 2));
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const round = (n: number): number => Math.round(n * 10) / 10;

if (process.argv[2] === '--measure-state') {
  measureState(process.argv[3] ?? '').then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });
} else {
  main().catch((error) => { console.error(error); process.exit(1); });
}
