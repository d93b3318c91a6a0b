// Not a benchmark of record: a burst of new files written into one side of a running SyncSession
// (watchers, quiet period, cycles, as the resident agent runs it, without Docker or undo) on the
// trees a `bench/memexp.ts copy` run left; the time until every file is on the other side, and the
// cycles that carried them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SyncSession } from '../src/core/sync/session';

async function main(): Promise<void> {
  const work = process.argv[2] ?? '/dev/shm/copy-prof';
  const files = Number(process.argv[3] ?? 1000);
  const roots = { host: path.join(work, 'source'), container: path.join(work, 'target') };
  const session = await SyncSession.open({ roots, stateDir: path.join(work, 'state'), excludes: [], policy: 'two-way-safe', fullCycleIntervalMs: 600_000 });
  const cycles: string[] = [];
  session.on('cycle', (finished) => cycles.push(`${finished.kind} ${finished.dirtyPaths} dirty, ${finished.report.appliedCount} applied, ${finished.report.scanned.hashedFiles} hashed, ${finished.report.durationMs} ms ${JSON.stringify(finished.report.phasesMs)}`));
  await new Promise((resolve) => setTimeout(resolve, 3000));
  for (const [from, to] of [['host', 'container'], ['container', 'host']] as const) {
    for (let round = 0; round < 2; round += 1) {
      cycles.length = 0;
      const names = Array.from({ length: files }, (_, index) => `burst-${from}-${Date.now()}/d${index % 50}/f${index}.txt`);
      const content = 'x'.repeat(700) + '\n';
      const started = Date.now();
      for (const name of names) {
        mkdirSync(path.dirname(path.join(roots[from], name)), { recursive: true });
        writeFileSync(path.join(roots[from], name), content);
      }
      const written = Date.now() - started;
      while (!names.every((name) => existsSync(path.join(roots[to], name)) && readFileSync(path.join(roots[to], name), 'utf8') === content)) await new Promise((resolve) => setTimeout(resolve, 5));
      const arrived = Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      console.log(`${from} → ${to}: ${files} files written in ${written} ms, arrived after ${arrived} ms; cycles: ${cycles.join(' | ')}`);
    }
  }
  await session.close();
}
main().catch((error) => { console.error(error); process.exit(1); });
