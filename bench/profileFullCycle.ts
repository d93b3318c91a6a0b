// Not a benchmark of record: one tree, a no-change full cycle timed (and profiled with
// `node --cpu-prof`), phase by phase, for finding where the rescan's time goes.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { runStoreCycle } from '../src/core/sync/engine';
import { SyncStateStore } from '../src/core/sync/stateStore';
import { buildTree } from './trees';

async function main(): Promise<void> {
  const work = process.argv[2] ?? '/tmp/engine-prof/tree';
  const files = Number(process.argv[3] ?? 30000);
  const host = path.join(work, 'host');
  const container = path.join(work, 'container');
  if (!existsSync(host)) {
    buildTree(host, files);
    execFileSync('cp', ['-a', host, container]);
  }
  const store = await SyncStateStore.open(path.join(work, 'state'));
  const roots = { host, container };
  const cycle = () => runStoreCycle({ roots, excludes: [], policy: 'two-way-safe', store });
  let started = performance.now();
  await cycle();
  console.log(`first ${Math.round(performance.now() - started)} ms`);
  for (let i = 0; i < Number(process.argv[4] ?? 3); i += 1) {
    started = performance.now();
    const result = await cycle();
    console.log(`no-change ${Math.round(performance.now() - started)} ms applied ${result.report?.appliedCount} rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB heap-after-gc ${heapAfterGc()} MB`);
  }
  await store.close();
  started = performance.now();
  execFileSync('rsync', ['-a', `${host}/`, `${container}/`]);
  console.log(`rsync -a ${Math.round(performance.now() - started)} ms`);
}
main().catch((error) => { console.error(error); process.exit(1); });

function heapAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round(process.memoryUsage().heapUsed / 2 ** 20);
}
