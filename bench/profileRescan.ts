// Not a benchmark of record: the periodic rescan's walk (findChangedPaths) of both trees a
// `bench/memexp.ts copy` run left, timed (and profiled with `node --cpu-prof`) against `rsync -a`.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { findChangedPaths } from '../src/core/sync/rescan';
import { SyncStateStore } from '../src/core/sync/stateStore';

async function main(): Promise<void> {
  const work = process.argv[2] ?? '/dev/shm/copy-prof';
  const roots = { host: path.join(work, 'source'), container: path.join(work, 'target') };
  const store = await SyncStateStore.open(path.join(work, 'state'));
  for (let round = 0; round < Number(process.argv[3] ?? 3); round += 1) {
    let started = performance.now();
    const found = await findChangedPaths({ roots, excludes: [], store });
    const rescanMs = performance.now() - started;
    started = performance.now();
    execFileSync('rsync', ['-a', `${roots.host}/`, `${roots.container}/`]);
    const rsyncMs = performance.now() - started;
    console.log(`rescan ${Math.round(rescanMs)} ms (${'changed' in found ? `${found.changed.length} changed` : found.fullCycleNeeded}), rsync -a ${Math.round(rsyncMs)} ms, ratio ${(rescanMs / rsyncMs).toFixed(2)}`);
  }
  await store.close();
}
main().catch((error) => { console.error(error); process.exit(1); });
