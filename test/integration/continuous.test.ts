// Continuous sync by the resident agent, in a real container: changes cross with no command run.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  TestScope,
  assertExit,
  containerTree,
  execSh,
  hashTree,
  diffTrees,
  describeRun,
  dockerExec,
  keptVersions,
  readContainerFile,
  requireDocker,
  runClud,
  runCludJson,
  stateDirectoryOf,
  waitFor,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';

const CONTINUOUS = { CLUD_AUTO_SYNC: 'continuous' };

/** A folder with `files`, up with continuous sync (and `env`), its initial copy done. */
async function continuousProject(scope: TestScope, files: Record<string, string>, env: Record<string, string> = {}): Promise<string> {
  const dir = await scope.project(files);
  const { run } = await runCludJson(['up', dir], { env: { ...CONTINUOUS, ...env } });
  assertExit(run, 0);
  return dir;
}

/** The resident agent's cycles that changed something, from its log (one JSON object per line). */
async function loggedCycles(dir: string): Promise<Array<{ kind: string; applied: number; time: string; rescan?: string }>> {
  const run = await runClud(['logs', dir]);
  return `${run.stdout}\n${run.stderr}`
    .split('\n')
    .flatMap((line) => {
      try {
        const record = JSON.parse(line) as { kind?: string; applied?: number; time?: string; rescan?: string };
        return typeof record.applied === 'number' && record.kind ? [{ kind: record.kind, applied: record.applied, time: record.time ?? '', ...(record.rescan && { rescan: record.rescan }) }] : [];
      } catch {
        return [];
      }
    });
}

const hostTree = (dir: string) => hashTree(dir);
/** Whether both trees are equal now; false while a file is being replaced under the listing. */
async function sameTrees(dir: string): Promise<boolean> {
  try {
    return diffTrees(await hostTree(dir), await containerTree(dir)).length === 0;
  } catch {
    return false;
  }
}

/** Whether the resident agent logged a halt. */
async function loggedHalt(dir: string): Promise<boolean> {
  const run = await runClud(['logs', dir]);
  return `${run.stdout}\n${run.stderr}`.split('\n').some((line) => {
    try {
      return (JSON.parse(line) as { halted?: boolean }).halted === true;
    } catch {
      return false;
    }
  });
}

describe('integration: continuous sync by the resident agent', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(async function () {
    await requireDocker();
  });

  after(async function () {
    await scope.cleanup();
  });

  describe('changes cross on their own', function () {
    let dir = '';
    before(async function () {
      dir = await continuousProject(scope, { 'a.txt': 'a\n', 'gone-on-host.txt': 'x\n', 'gone-in-container.txt': 'y\n', 'moved/keep.txt': 'k\n' });
    });

    it('a file written in /workspace reaches the host, and a host write reaches /workspace, with no command', async function () {
      await execSh(dir, 'echo from-container > /workspace/c.txt');
      await waitFor('the container file on the host', async () => (existsSync(path.join(dir, 'c.txt')) ? true : undefined), 10_000);
      assert.equal(await readFile(path.join(dir, 'c.txt'), 'utf8'), 'from-container\n');
      await writeFile(path.join(dir, 'h.txt'), 'from-host\n');
      const seen = await waitFor('the host file in /workspace', async () => (await readContainerFile(dir, 'h.txt').catch(() => undefined)) ?? undefined, 10_000);
      assert.equal(seen, 'from-host\n');
    });

    it('a deletion crosses each way', async function () {
      await rm(path.join(dir, 'gone-on-host.txt'));
      await execSh(dir, 'rm /workspace/gone-in-container.txt');
      await waitFor('both deletions', async () => ((await containerTree(dir)).has('gone-on-host.txt') || existsSync(path.join(dir, 'gone-in-container.txt')) ? undefined : true), 10_000);
    });

    it('a folder of 1,000 files renamed in /workspace arrives renamed on the host, complete', async function () {
      await execSh(dir, 'mkdir -p /workspace/big && cd /workspace/big && for i in $(seq 1 1000); do echo "file $i" > f$i.txt; done');
      await waitFor('1,000 files on the host', async () => (await sameTrees(dir) ? true : undefined), 60_000);
      await execSh(dir, 'mv /workspace/big /workspace/renamed');
      await waitFor('the renamed folder on the host', async () => (!existsSync(path.join(dir, 'big')) && (await sameTrees(dir)) ? true : undefined), 60_000);
      assert.equal(await readFile(path.join(dir, 'renamed', 'f1000.txt'), 'utf8'), 'file 1000\n');
    });

    it('a burst of 5,000 files each way arrives complete and byte-identical, in few cycles', async function () {
      const before = (await loggedCycles(dir)).length;
      await execSh(dir, 'mkdir -p /workspace/gen && cd /workspace/gen && for d in $(seq 1 50); do mkdir d$d; for i in $(seq 1 100); do echo "gen $d $i" > d$d/f$i.txt; done; done');
      for (let folder = 1; folder <= 50; folder += 1) {
        await mkdir(path.join(dir, 'host-gen', `d${folder}`), { recursive: true });
        await Promise.all(Array.from({ length: 100 }, (_, index) => writeFile(path.join(dir, 'host-gen', `d${folder}`, `f${index}.txt`), `host ${folder} ${index}\n`)));
      }
      await waitFor('10,000 files on both sides', async () => (await sameTrees(dir) ? true : undefined), 240_000);
      const cycles = (await loggedCycles(dir)).slice(before);
      const carried = cycles.reduce((sum, cycle) => sum + cycle.applied, 0);
      assert.ok(carried >= 10_000, `the cycles carried ${carried} changes`);
      assert.ok(cycles.length <= 100, `${cycles.length} cycles for 10,000 files`);
    });

    it('a write no watcher sees (node_modules has no watch) arrives with the periodic rescan, carried as a change, not by a full cycle', async function () {
      // The folder itself is seen from its parent's watch; what is written in it later is not.
      await execSh(dir, 'mkdir -p /workspace/node_modules/pkg');
      await waitFor('node_modules on the host', async () => (existsSync(path.join(dir, 'node_modules', 'pkg')) ? true : undefined), 10_000);
      const before = (await loggedCycles(dir)).length;
      await execSh(dir, 'echo "module.exports = 1" > /workspace/node_modules/pkg/index.js');
      // The rescan runs every 10 s, or every hundred times its last CPU time on a tree that costs
      // more: this one holds the 10,000 files of the burst above, about 0.5 s of CPU here.
      await waitFor('the unwatched write on the host', async () => (existsSync(path.join(dir, 'node_modules', 'pkg', 'index.js')) ? true : undefined), 240_000);
      assert.equal(await readFile(path.join(dir, 'node_modules', 'pkg', 'index.js'), 'utf8'), 'module.exports = 1\n');
      // The cycle is logged once it has finished, a moment after the file is in place.
      const carried = await waitFor('the cycle that carried it in the log', async () => {
        const cycles = (await loggedCycles(dir)).slice(before).filter((cycle) => cycle.applied > 0);
        return cycles.length > 0 ? cycles : undefined;
      }, 10_000);
      assert.deepEqual(carried.map((cycle) => [cycle.kind, cycle.rescan, cycle.applied]), [['full', 'changes-only', 1]]);
    });

    it('a host rename of a folder crosses too', async function () {
      await rename(path.join(dir, 'moved'), path.join(dir, 'moved-on-host'));
      await waitFor('the host rename in /workspace', async () => {
        // A listing taken while the sync moves the file fails: asked again, as sameTrees does.
        const tree = await containerTree(dir).catch(() => undefined);
        return tree?.has('moved-on-host/keep.txt') && !tree.has('moved/keep.txt') ? true : undefined;
      }, 20_000);
    });

    it("a secret the sync keeps out stays in the agent's status while other changes cross", async function () {
      const keptOut = async () => {
        const { json } = await runCludJson(['status', dir]);
        return ((json.live as { keptOut?: Array<{ path: string; side: string }> } | undefined)?.keptOut ?? []).map((secret) => `${secret.side} ${secret.path}`);
      };
      await writeFile(path.join(dir, '.env'), 'TOKEN=1\n');
      await waitFor('.env kept out in the status', async () => ((await keptOut()).includes('host .env') ? true : undefined), 20_000);
      await execSh(dir, 'echo later > /workspace/later.txt');
      await waitFor('a later change on the host', async () => (existsSync(path.join(dir, 'later.txt')) ? true : undefined), 10_000);
      assert.deepEqual(await keptOut(), ['host .env']);
      assert.equal((await containerTree(dir)).has('.env'), false, 'the secret crossed');
    });
  });

  it('both sides edit one file during continuous sync: a conflict, both versions kept, nothing lost', async function () {
    const dir = await continuousProject(scope, { 'shared.txt': 'original\n' });
    // Both edits at the same instant (one clock: the container's is the host's), so that neither
    // has crossed when the other is made: a `clud exec` takes longer to start than a cycle.
    const at = Date.now() + 3_000;
    const containerEdit = execSh(dir, `while [ $(date +%s%3N) -lt ${at} ]; do :; done; echo container-version > /workspace/shared.txt`);
    await new Promise((resolve) => setTimeout(resolve, at - Date.now()));
    await writeFile(path.join(dir, 'shared.txt'), 'host-version\n');
    await containerEdit;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const host = await readFile(path.join(dir, 'shared.txt'), 'utf8');
    const container = await readContainerFile(dir, 'shared.txt');
    const versions = new Set([host, container, ...(await keptVersions(stateDirectoryOf(dir), 'host', 'shared.txt')), ...(await keptVersions(stateDirectoryOf(dir), 'container', 'shared.txt'))]);
    assert.ok(versions.has('host-version\n'), `the host's version is lost: ${JSON.stringify([...versions])}`);
    assert.ok(versions.has('container-version\n'), `the container's version is lost: ${JSON.stringify([...versions])}`);
    if (host === container) return; // one edit crossed before the other was made: no conflict to list
    // The conflict stands while other changes cross: the cycle that carries an unrelated file
    // looks only at that file and does not clear it.
    await writeFile(path.join(dir, 'unrelated.txt'), 'unrelated\n');
    await waitFor('the unrelated file in /workspace', async () => (await readContainerFile(dir, 'unrelated.txt').catch(() => undefined)) ?? undefined, 20_000);
    const listed = await runCludJson(['conflicts', dir]);
    assertExit(listed.run, 0);
    assert.deepEqual((listed.json.conflicts as Array<{ path: string }>).map((item) => item.path), ['shared.txt'], describeRun(listed.run));
  });

  it('SIGKILL of the resident agent: it comes back, nothing is lost, and the next change still crosses', async function () {
    const dir = await continuousProject(scope, { 'a.txt': 'a\n' });
    await execSh(dir, 'mkdir -p /workspace/many && cd /workspace/many && for i in $(seq 1 2000); do echo "m $i" > m$i.txt; done');
    // Killed in the middle of carrying them (or just after): the journal and the undo log recover.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await dockerExec(dir, ['pkill', '-KILL', '-f', '[a]gent.js daemon'], { user: 'root' });
    await waitFor('the agent back and both trees equal', async () => (await sameTrees(dir) ? true : undefined), 120_000);
    await writeFile(path.join(dir, 'after.txt'), 'after the crash\n');
    assert.equal(await waitFor('a change after the restart', async () => (await readContainerFile(dir, 'after.txt').catch(() => undefined)) ?? undefined, 20_000), 'after the crash\n');
    const { run, json } = await runCludJson(['sync', dir]);
    assertExit(run, 0);
    assert.equal((json.report as { appliedCount: number }).appliedCount, 0, 'continuous sync left something for an explicit sync');
  });

  it('a wiped /workspace during continuous sync halts it, and the host folder stays intact', async function () {
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, index) => [`keep/f${index}.txt`, `keep ${index}\n`]));
    const dir = await continuousProject(scope, files);
    const before = await hostTree(dir);
    await execSh(dir, 'rm -rf /workspace/* /workspace/.[!.]* 2>/dev/null; true');
    await waitFor('the halt', async () => ((await loggedHalt(dir)) ? true : undefined), 30_000);
    const { run, json } = await runCludJson(['sync', dir]);
    assertExit(run, 1);
    assert.equal((json.report as { halted?: { side: string } }).halted?.side, 'container', 'a sync after the halt is refused');
    assert.deepEqual(diffTrees(before, await hostTree(dir), ['before', 'after']), [], 'the host folder changed');
  });

  it('the polling fallback, forced by a setting, still carries changes both ways', async function () {
    const dir = await continuousProject(scope, { 'a.txt': 'a\n' }, { CLUD_POLL: 'host,container' });
    await execSh(dir, 'echo polled-container > /workspace/p.txt');
    await writeFile(path.join(dir, 'q.txt'), 'polled-host\n');
    await waitFor('both polled files across', async () => (existsSync(path.join(dir, 'p.txt')) && (await readContainerFile(dir, 'q.txt').catch(() => undefined)) === 'polled-host\n' ? true : undefined), 30_000);

    // `up --auto-sync` on the running container changes the mode, and nothing else it did not name.
    const { run } = await runCludJson(['up', dir, '--auto-sync', 'on-save'], { env: CONTINUOUS });
    assertExit(run, 0);
    const settings = await dockerExec(dir, ['cat', '/var/lib/clud/live-settings.json'], { user: 'root' });
    assert.equal(settings.exitCode, 0, settings.stderr);
    const live = JSON.parse(settings.stdout.toString('utf8')) as { autoSync: string; poll: { host: boolean; container: boolean } };
    assert.deepEqual({ autoSync: live.autoSync, poll: live.poll }, { autoSync: 'on-save', poll: { host: true, container: true } });
  });
});
