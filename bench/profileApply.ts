// Not a benchmark of record: the apply alone (no watcher, no undo, no Docker) creating a burst of
// small files in a few folders, a tree copied into another on a RAM disk, round after round. It
// isolates what the apply's own file-system calls cost from the rest of a cycle; `watched` puts a
// TreeWatcher on the tree written to, as the resident agent has, so its events' cost shows;
// `replace` has each file replace an older version of itself (replaceChecked's whole path).
//   node --import tsx bench/profileApply.ts [files] [folders] [rounds] [work folder] [watched|-] [replace]
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyChanges } from '../src/core/sync/apply';
import type { Change } from '../src/core/sync/reconcile';
import { TreeWatcher } from '../src/core/sync/watcher';

/** The files land five levels down, as they often do in a source tree. */
const BURST_FOLDER = 'burst/src/module';

async function main(): Promise<void> {
  const [files, folders, rounds] = [Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 50), Number(process.argv[4] ?? 8)];
  const work = process.argv[5] ?? '/dev/shm/clud-profile-apply';
  const watched = process.argv[6] === 'watched';
  const replace = process.argv[7] === 'replace';
  const older = `${'y'.repeat(700)}\n`;
  const olderTime = Date.now() - 3_600_000;
  const content = `${'x'.repeat(700)}\n`;
  const next = { kind: 'file', size: content.length, mtimeMs: 1_700_000_000_000, mode: 0o644, hash: createHash('sha256').update(content).digest('hex') } as const;
  const times: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    rmSync(work, { recursive: true, force: true });
    const roots = { host: path.join(work, 'host'), container: path.join(work, 'container') };
    const changes: Change[] = [];
    for (let folder = 0; folder < folders; folder += 1) for (const root of Object.values(roots)) mkdirSync(path.join(root, BURST_FOLDER, `d${folder}`), { recursive: true });
    for (let index = 0; index < files; index += 1) {
      const key = `${BURST_FOLDER}/d${index % folders}/f${index}.txt`;
      writeFileSync(path.join(roots.container, key), content);
      if (replace) {
        const target = path.join(roots.host, key);
        writeFileSync(target, older);
        utimesSync(target, olderTime / 1000, olderTime / 1000);
        const found = lstatSync(target);
        changes.push({ path: key, side: 'host', expected: { kind: 'file', size: found.size, mtimeMs: found.mtimeMs, mode: 0o644, hash: createHash('sha256').update(older).digest('hex') }, next });
      } else {
        changes.push({ path: key, side: 'host', expected: undefined, next });
      }
    }
    const watcher = watched ? new TreeWatcher(roots.host, { excludes: [], onBatch: () => {} }) : undefined;
    await watcher?.start();
    const started = performance.now();
    const outcome = await applyChanges(changes, { roots, keepDir: path.join(work, 'kept') });
    times.push(Math.round(performance.now() - started));
    if (watcher) {
      // The events of the last changes arrive after the apply: let them in before the next round.
      await new Promise((resolve) => setTimeout(resolve, 300));
      watcher.close();
    }
    if (outcome.applied.length !== files) throw new Error(`applied ${outcome.applied.length} of ${files}`);
  }
  rmSync(work, { recursive: true, force: true });
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`${files} files in ${folders} folders${watched ? ', watched' : ''}${replace ? ', each replacing an older version' : ''}: ${times.join(', ')} ms; median ${sorted[Math.floor(sorted.length / 2)]} ms`);
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
