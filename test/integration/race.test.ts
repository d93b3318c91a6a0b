// A writer racing `clud sync` in a real container: the container rewrites 2,000 files; while the
// sync writes them to the host, the host rewrites each (in place, as `printf > f` does, or as an
// editor saves: a temporary renamed over). Every version that was complete on disk must be
// found afterwards: in either tree, in the kept folder, or (last resort) restorable by
// `clud undo --force`. The old check-then-rename apply lost some in every round.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  INTEGRATION_TIMEOUT_MS,
  TestScope,
  cludSync,
  describeRun,
  execSh,
  linesUnder,
  requireDocker,
  runNodeAsOwner,
  runCludJson,
  runCludSync,
  stateDirectoryOf,
  syncedProject,
} from '../helpers/integration';
import type { ProjectFiles } from '../helpers/integration';

const FILES = 2000;
const ROUNDS = Number(process.env.CLUD_RACE_ROUNDS ?? 2);
const name = (index: number) => `f${String(index).padStart(4, '0')}.txt`;

// The host writer, a process of its own running as the folder's owner: once the sync writes the
// host, goes over the files in order (as the apply does), rewriting each once with a unique
// version, in place or by rename (until the stop file appears); prints the last version it
// completed at each path.
const HOST_WRITER = `
const fs = require('node:fs');
const path = require('node:path');
const [dir, files, round, stopFile] = process.argv.slice(1);
const last = {};
let written = 0;
const deadline = Date.now() + 120000; // never outlives a stuck test
const stopped = () => fs.existsSync(stopFile) || Date.now() > deadline;
// Start once the sync has begun writing the host (its first file holds the container's version):
// from then on the writes meet the apply's, not the scan's.
const first = path.join(dir, 'f0000.txt');
// (The file is briefly absent while the sync replaces it: moved aside, the new one linked in.)
const peek = () => { try { return fs.readFileSync(first, 'utf8'); } catch { return ''; } };
while (!stopped() && !peek().startsWith('round ' + round + ' container'));
for (let pass = 0; pass < 1 && !stopped(); pass += 1) {
  for (let index = 0; index < Number(files) && !stopped(); index += 1) {
    const name = 'f' + String(index).padStart(4, '0') + '.txt';
    const version = 'round ' + round + ' host-writer pass ' + pass + ' ' + name + '\\n';
    const full = path.join(dir, name);
    if ((index + pass) % 2 === 0) {
      fs.writeFileSync(full, version);
    } else {
      const temporary = path.join(dir, '.edit-' + index + '.swp');
      fs.writeFileSync(temporary, version);
      fs.renameSync(temporary, full);
    }
    last[name] = version;
    written += 1;
  }
}
process.stdout.write(JSON.stringify({ last, written }));
`;

async function startHostWriter(dir: string, round: number, stopFile: string): Promise<{ last: Record<string, string>; written: number }> {
  return JSON.parse(await runNodeAsOwner(['-e', HOST_WRITER, dir, String(FILES), String(round), stopFile], 'host writer')) as { last: Record<string, string>; written: number };
}

describe('integration: writers racing a sync', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(async function () {
    await requireDocker();
  });

  after(async function () {
    await scope.cleanup();
  });

  it(`${ROUNDS} rounds: ${FILES} files rewritten in the container, then on the host (in place and by rename) while clud sync writes them; every complete version survives`, async function () {
    const files: ProjectFiles = {};
    for (let index = 0; index < FILES; index += 1) files[name(index)] = `round 0 ${name(index)}\n`;
    const dir = await syncedProject(scope, files);
    const state = stateDirectoryOf(dir);
    // In the project (readable by the writer, which runs as the folder's owner), under a name the sync ignores.
    const stopFile = path.join(dir, '.race-stop.swp');
    const numbers: string[] = [];
    for (let round = 1; round <= ROUNDS; round += 1) {
      // The container changes every file, so the sync has 2,000 files to write to the host.
      await execSh(dir, `for i in $(seq 0 ${FILES - 1}); do f=$(printf 'f%04d.txt' $i); echo "round ${round} container set-up $f" > "$f"; done`);
      const expected = new Map<string, string>();
      for (let index = 0; index < FILES; index += 1) expected.set(`container:${name(index)}`, `round ${round} container set-up ${name(index)}`);

      await rm(stopFile, { force: true });
      const started = Date.now();
      const sync = runCludSync('sync', dir);
      const hostWriting = startHostWriter(dir, round, stopFile);
      const { run, output } = await sync;
      const syncMs = Date.now() - started;
      await writeFile(stopFile, 'stop');
      const host = await hostWriting;
      assert.equal(output.report.halted, undefined, describeRun(run));
      for (const [key, version] of Object.entries(host.last)) expected.set(`host:${key}`, version.trim());
      // A container version the host then rewrote was the user's to replace (a later cycle of
      // the sync carries the host's version over it); the others must survive too.
      for (const key of Object.keys(host.last)) expected.delete(`container:${key}`);

      const found = new Set<string>();
      await linesUnder(dir, found);
      await linesUnder(path.join(state, 'kept'), found);
      for (const line of (await execSh(dir, 'cat f*.txt')).split('\n')) if (line) found.add(line);
      let missing = [...expected].filter(([, version]) => !found.has(version));
      const report = output.report;
      numbers.push(`round ${round}: ${host.written} host writes during the sync; ${report.appliedCount} applied, ${report.skipped.length} skipped, ${report.conflicts.length} conflicts, ${report.kept.length} kept, ${report.retries} retries, ${syncMs} ms; ${missing.length} not in either tree or kept`);
      if (missing.length > 0) {
        // Last resort: what the undo log can bring back (a forced undo keeps what it overwrites).
        const undo = await runCludJson(['undo', dir, '--steps', '50', '--force']);
        const restored = new Set<string>();
        await linesUnder(dir, restored);
        await linesUnder(path.join(state, 'kept'), restored);
        missing = missing.filter(([, version]) => !restored.has(version));
        assert.deepEqual(missing.slice(0, 10), [], `${missing.length} complete version(s) lost, even after clud undo --force (exit ${undo.run.exitCode})\n${numbers.join('\n')}`);
      }

      await rm(stopFile, { force: true });
      // Both sides settle on one version of every file before the next round.
      const settled = Object.fromEntries([...Array(FILES).keys()].map((index) => [name(index), `round ${round} settled ${name(index)}\n`]));
      await Promise.all(Object.entries(settled).map(([key, content]) => writeFile(path.join(dir, key), content)));
      await execSh(dir, `for i in $(seq 0 ${FILES - 1}); do f=$(printf 'f%04d.txt' $i); echo "round ${round} settled $f" > "$f"; done`);
      await cludSync('sync', dir);
    }
    console.log(`      ${numbers.join('\n      ')}`);
  });
});
