// Not a benchmark of record: the memory a process keeps after the initial copy of a tree and three
// periodic rescans (run with --expose-gc), with the copy made in the same process (`copy`) or not
// (the state a previous `copy` run left), for deciding where the initial copy runs.
import { execSync } from 'node:child_process';
import * as path from 'node:path';
import { copyTree, recordCopiedState } from '../src/agent/initialCopy';
import { runRescanCycle } from '../src/core/sync/engine';
import { SyncStateStore } from '../src/core/sync/stateStore';
import { buildTree } from './trees';
import { existsSync } from 'node:fs';

async function copyAndRecord(source: string, target: string, state: string): Promise<void> {
  const copy = await copyTree({ source, receiver: ['tar', '--extract', '--file=-', `--directory=${target}`, '--preserve-permissions', '--no-same-owner', '--delay-directory-restore'], scan: { excludes: [] } });
  await recordCopiedState(state, target, copy.agreed, copy.scan.cache);
}

const rss = () => Math.round(process.memoryUsage().rss / 2 ** 20);
async function main(): Promise<void> {
  const work = '/dev/shm/copy-prof';
  const source = path.join(work, 'source');
  const target = path.join(work, 'target');
  const state = path.join(work, 'state');
  if (!existsSync(source)) buildTree(source, Number(process.argv[3] ?? 100000));
  if (process.argv[2] === 'copy') {
    execSync(`rm -rf ${target} ${state} && mkdir ${target} ${state}`);
    await copyAndRecord(source, target, state);
    console.log(`after copy rss ${rss()} MB`);
  }
  const store = await SyncStateStore.open(state);
  console.log(`store open rss ${rss()} MB`);
  for (let i = 0; i < 3; i += 1) {
    const result = await runRescanCycle({ roots: { host: source, container: target }, excludes: [], policy: 'two-way-safe', store });
    console.log(`rescan ${result.rescan} ${result.walkMs} ms rss ${rss()} MB`);
  }
  const usage = () => `rss ${rss()} MB heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MB external ${Math.round(process.memoryUsage().external / 2 ** 20)} MB`;
  for (let wait = 0; wait < 4; wait += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10000));
    console.log(`after ${(wait + 1) * 10} s at rest: ${usage()}`);
  }
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  console.log(`idle rss ${rss()} MB heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MB of ${Math.round(process.memoryUsage().heapTotal / 2 ** 20)} MB external ${Math.round(process.memoryUsage().external / 2 ** 20)} MB`);
  await store.close();
}
main().catch((error) => { console.error(error); process.exit(1); });
