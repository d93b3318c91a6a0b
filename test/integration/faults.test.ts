import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import {
  CLI_PATH,
  TEST_ENV,
  TestScope,
  assertExit,
  chownTree,
  containersFor,
  createWorkspace,
  describeRun,
  docker,
  dockerExec,
  lines,
  requireDocker,
  runClud,
  runCludJson,
  singleJsonObject,
  syncedProject,
  waitFor,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';

describe('integration: faults at the edges', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';

  before(async function () {
    await requireDocker();
    dir = await syncedProject(scope, { 'a.txt': 'a\n', 'src/b.txt': 'b\n' });
  });

  after(async function () {
    await scope.cleanup();
  });

  describe('one queue in the resident agent', function () {
    it('syncs requested at the same moment by separate clients all complete, one after another', async function () {
      const runs = await Promise.all([0, 1, 2].map(() => runCludJson(['sync', dir], { timeoutMs: 120_000 })));
      for (const { run } of runs) assertExit(run, 0);
      const windows = runs
        .map(({ json }) => json.report as { startedAt: string; durationMs: number })
        .map((report) => ({ start: Date.parse(report.startedAt), end: Date.parse(report.startedAt) + report.durationMs }))
        .sort((a, b) => a.start - b.start);
      for (let index = 1; index < windows.length; index += 1) assert.ok(windows[index]!.start >= windows[index - 1]!.end, `cycles overlapped: ${JSON.stringify(windows)}`);
    });
  });

  describe('container states and exec errors', function () {
    it('clud status tells a paused container from a running one, and commands say it is paused', async function () {
      const [info] = await containersFor(dir);
      const container = docker.getContainer(info!.Id);
      await container.pause();
      try {
        const { run, json } = await runCludJson(['status', dir]);
        assertExit(run, 0);
        assert.equal(json.state, 'paused', describeRun(run));
        const text = await runClud(['status', dir]);
        assert.match(text.stdout, /\(paused\)/, describeRun(text));
        const sync = await runClud(['sync', dir, '--json'], { timeoutMs: 60_000 });
        assertExit(sync, 1);
        assert.equal((singleJsonObject(sync).error as { code: string }).code, 'not-running');
        assert.match(sync.stderr, /paused/, describeRun(sync));
      } finally {
        await container.unpause();
      }
      const { json } = await runCludJson(['status', dir]);
      assert.equal(json.state, 'running');
    });

    it('reads a file of /workspace that is replaced over and over (as the sync does) whole every time, never a torn archive', async function () {
      // Versions of two sizes, each put in place by a rename, as the sync's apply does.
      const long = 'x'.repeat(20_000);
      const writer = dockerExec(dir, ['sh', '-c', `end=$(($(date +%s) + 8)); while [ $(date +%s) -lt $end ]; do printf '${long}' > r.tmp; mv r.tmp replaced.txt; printf 'y' > r.tmp; mv r.tmp replaced.txt; done`]);
      const workspace = createWorkspace(dir);
      const seen = new Set<number>();
      try {
        for (let read = 0; read < 150; read += 1) {
          const content = await workspace.readContainerFile('replaced.txt');
          if (content) {
            assert.ok(content.length === 1 || content.length === long.length, `a read of ${content.length} bytes`);
            seen.add(content.length);
          }
        }
      } finally {
        await writer;
      }
      assert.ok(seen.size > 0, 'no read found the file');
    });

    it('a command docker exec cannot start: its error is on stderr, and --json prints exactly one object', async function () {
      const run = await runClud(['exec', dir, '--json', '--', 'no-such-command-here'], { timeoutMs: 60_000 });
      assert.equal(run.exitCode, 127, describeRun(run));
      assert.deepEqual(singleJsonObject(run), { ok: false, exitCode: 127 });
      assert.match(run.stderr, /no-such-command-here/);
      assert.equal(lines(run.stderr).length, 1, describeRun(run));
    });
  });

  describe('Ctrl-C', function () {
    it('Ctrl-C on clud pull: the CLI exits 130, the agent stops writing, and the folder is rolled back to before the pull', async function () {
      await dockerExec(dir, ['sh', '-c', 'mkdir -p many && for i in $(seq 1 300); do echo $i > many/f$i.txt; done']);
      const hostMany = path.join(dir, 'many');
      const count = async () => (await readdir(hostMany).catch(() => [] as string[])).length;
      // The changes to the host start 300 ms apart, so the pull is still writing when interrupted.
      const child = spawn('node', [CLI_PATH, 'pull', dir], { env: { ...process.env, ...TEST_ENV, CLUD_FAILPOINT: 'slow-host-changes:300' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await waitFor('the pull to write some files', async () => ((await count()) >= 20 ? true : undefined), 60_000);
      child.kill('SIGINT');
      assert.equal(await exited, 130, stderr);
      assert.match(stderr, /interrupted/);
      assert.equal(lines(stderr).length, 1, stderr);
      const written = await count();
      assert.ok(written < 300, `the pull had finished before the interrupt (${written} files)`);

      // The agent stops at its next change and rolls back its undo step: the host loses the
      // files the pull had written, and nothing more arrives.
      await waitFor('the rollback', async () => ((await count()) === 0 ? true : undefined), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      assert.equal(await count(), 0, 'the agent went on writing after the CLI was gone');
      const agents = (await dockerExec(dir, ['sh', '-c', "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '[a]gent.* serve' && echo $p; done; true"], { user: 'root' })).stdout.toString('utf8');
      assert.equal(agents.trim(), '', `an agent session is still running: ${agents}`);

      // Nothing is lost or stuck: the next pull brings every file.
      const { run } = await runCludJson(['pull', dir]);
      assertExit(run, 0);
      assert.equal(await count(), 300);
    });
  });

  describe('the folder moved under a running workspace', function () {
    it("status says it is missing, and that the container's mount followed it: a sync still carries into it where it went", async function () {
      const moved = await syncedProject(scope, { 'keep/me.txt': 'mine\n' });
      const elsewhere = `${moved}-moved`;
      await rename(moved, elsewhere);
      try {
        const text = await runClud(['status', moved]);
        assertExit(text, 0);
        assert.match(text.stdout, /missing: deleted or moved; .*a moved folder is still synced where it went/, describeRun(text));
        assert.match(text.stdout, /move it back if you moved it/, describeRun(text));
        await dockerExec(moved, ['sh', '-c', 'echo from-container > made.txt']);
        const sync = await runCludJson(['sync', moved]);
        assertExit(sync.run, 0);
        assert.equal(await readFile(path.join(elsewhere, 'made.txt'), 'utf8'), 'from-container\n');
      } finally {
        await rename(elsewhere, moved);
      }
    });
  });

  // Last: it removes the container.
  describe('the folder deleted under a running workspace', function () {
    it('status says it is missing and how to put it back; a sync meanwhile halts; after a restart, resume fills an empty folder from /workspace', async function () {
      const gone = await syncedProject(scope, { 'keep/me.txt': 'mine\n' });
      await rm(gone, { recursive: true });
      // Docker reads no file of the container now (its bind mount's source is gone): the status says why, and what the agent says.
      const { run, json } = await runCludJson(['status', gone]);
      assertExit(run, 0);
      assert.equal(json.folderMissing, true, describeRun(run));
      const text = await runClud(['status', gone]);
      assert.match(text.stdout, /missing: deleted or moved/, describeRun(text));
      assert.match(text.stdout, /docker restart clud-/, describeRun(text));
      const sync = await runCludJson(['sync', gone]);
      assert.ok((sync.json.report as { halted?: unknown } | undefined)?.halted, describeRun(sync.run));
      assert.equal(((await runCludJson(['status', gone])).json.live as { state?: string } | undefined)?.state, 'halted');

      await mkdir(gone);
      await chownTree(gone);
      const [info] = await containersFor(gone);
      await docker.getContainer(info!.Id).restart();
      await waitFor('the agent after the restart', async () => (await runCludJson(['status', gone])).json.live, 60_000);
      assertExit(await runClud(['resume', gone], { timeoutMs: 120_000 }), 0);
      assert.equal(await readFile(path.join(gone, 'keep/me.txt'), 'utf8'), 'mine\n');
    });
  });

  describe('the initial copy', function () {
    it('runs in a process of its own: killed, the resident agent reports the copy failed and keeps serving', async function () {
      const killed = await scope.project({ 'a.txt': 'a\n' });
      const { run, json } = await runCludJson(['up', killed], { env: { CLUD_FAILPOINT: 'kill-initial-copy' } });
      assertExit(run, 1);
      const init = json.init as { phase: string; error?: string };
      assert.equal(init.phase, 'failed');
      assert.match(String(init.error), /initial copy's process killed by SIGKILL before it finished/);
      // The resident agent that started the copy still answers, and says the same.
      const status = await runClud(['status', killed]);
      assert.match(status.stdout, /^workspace: failed — the initial copy's process killed by SIGKILL before it finished\n {2}the container is running but the initial copy failed; fix the cause and run `clud up` again to retry it$/m, describeRun(status));
      // A pause needs a sync to pause: it says why there is none rather than answering as if it paused.
      const pause = await runClud(['pause', killed]);
      assertExit(pause, 1);
      assert.match(pause.stderr, /the initial copy into \/workspace has not completed \(the initial copy's process killed/);
      assert.equal(pause.stderr.split('clud up').length - 1, 1, `the way out is said once: ${pause.stderr}`);
      assertExit(await runClud(['down', killed, '--force']), 0);
    });

    it('stops when the resident agent dies during it, and the restarted agent reports it interrupted', async function () {
      const interrupted = await scope.project({ 'a.txt': 'a\n', 'src/b.txt': 'b\n' });
      const { run, json } = await runCludJson(['up', interrupted], { env: { CLUD_FAILPOINT: 'kill-agent-during-initial-copy' } });
      assertExit(run, 1);
      const init = json.init as { phase: string; error?: string };
      assert.equal(init.phase, 'failed');
      assert.match(String(init.error), /initial copy was interrupted: the sync agent restarted during it/);
      // The copy's process went with the agent that started it: nothing writes /workspace behind the new one's back.
      const [container] = await containersFor(interrupted);
      const processes = (await docker.getContainer(container!.Id).top({ ps_args: '-eo pid,args' })).Processes.flat().join('\n');
      assert.doesNotMatch(processes, /agent\.js initial-copy/);
      assert.match(processes, /agent\.js daemon/);
      assertExit(await runClud(['down', interrupted, '--force']), 0);
    });
  });

  describe('clud down', function () {
    it('a FIFO and a socket in /workspace do not make clud down refuse; an unsynced edit still does', async function () {
      const made = await dockerExec(dir, ['sh', '-c', 'mkfifo pipe && node -e "require(\'net\').createServer().listen(\'sock\', () => process.exit(0))"; ls -l pipe sock']);
      assert.equal(made.exitCode, 0, made.stderr);
      const sync = await runCludJson(['sync', dir]);
      assertExit(sync.run, 0);
      const problems = (sync.json.report as { problems: { path: string }[] }).problems.map((problem) => problem.path).sort();
      assert.deepEqual(problems, ['pipe', 'sock'], describeRun(sync.run));
      // Entries the sync leaves alone are not errors of the sync.
      const metrics = sync.json.metrics as { errors: string[]; problems: string[] };
      assert.deepEqual(metrics.errors, [], describeRun(sync.run));
      assert.deepEqual(metrics.problems.map((line) => line.split(' ')[0]).sort(), ['pipe', 'sock'], describeRun(sync.run));

      await dockerExec(dir, ['sh', '-c', 'echo edited > a.txt']);
      const refused = await runClud(['down', dir, '--json']);
      assertExit(refused, 1);
      assert.equal((singleJsonObject(refused).error as { code: string }).code, 'unsynced-changes');
      assert.match(refused.stderr, /a\.txt/);
      assert.doesNotMatch(refused.stderr, /pipe|sock/, describeRun(refused));

      assertExit((await runCludJson(['sync', dir])).run, 0);
      const down = await runCludJson(['down', dir]);
      assertExit(down.run, 0);
      assert.equal(down.json.removed, true);
      assert.deepEqual(await containersFor(dir), []);
    });
  });
});
