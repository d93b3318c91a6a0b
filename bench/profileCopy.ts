// Not a benchmark of record: the initial copy of one tree into a local folder (and profiled with
// `node --cpu-prof`), against a tar pipe of the same tree, for finding where the copy's time goes:
// the scan and the archive, then the first agreed state written as the copy writes it.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { copyTree, recordCopiedState } from '../src/agent/initialCopy';
import { buildTree } from './trees';

async function main(): Promise<void> {
  const work = process.argv[2] ?? '/dev/shm/copy-prof';
  const files = Number(process.argv[3] ?? 100000);
  const source = path.join(work, 'source');
  const target = path.join(work, 'target');
  const state = path.join(work, 'state');
  if (!existsSync(source)) buildTree(source, files);
  for (let round = 0; round < Number(process.argv[4] ?? 2); round += 1) {
    execSync(`rm -rf ${target} && mkdir ${target}`);
    let started = performance.now();
    execSync(`tar -C ${source} -cf - . | tar -C ${target} -xf -`);
    const tarMs = performance.now() - started;
    execSync(`rm -rf ${target} ${state} && mkdir ${target}`);
    started = performance.now();
    const copy = await copyTree({ source, receiver: ['tar', '--extract', '--file=-', `--directory=${target}`, '--preserve-permissions', '--no-same-owner', '--delay-directory-restore'], scan: { excludes: [] } });
    const copyMs = performance.now() - started;
    started = performance.now();
    await recordCopiedState(state, target, copy.agreed, copy.scan.cache);
    const recordMs = performance.now() - started;
    console.log(`tar pipe ${Math.round(tarMs)} ms, copy ${Math.round(copyMs)} ms (${(copyMs / tarMs).toFixed(2)}x), first agreed state ${Math.round(recordMs)} ms, ${copy.files} files, errors ${copy.errors.length}, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB`);
  }
}
main().catch((error) => { console.error(error); process.exit(1); });
