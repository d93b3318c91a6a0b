import assert from 'node:assert/strict';
import { SYNC_LOCK_PATH } from '../../src/core/containerLayout';
import {
  TestScope,
  assertExit,
  containersFor,
  describeRun,
  docker,
  dockerExec,
  lines,
  requireDocker,
  runClud,
  runCludJson,
  singleJsonObject,
  syncedProject,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';

/** Runs `cmd` in the workspace container of `dir` as root, detached or waited for. */
async function rootExec(dir: string, cmd: string[], options: { detach?: boolean } = {}): Promise<string> {
  const [info] = (await containersFor(dir)).filter((candidate) => candidate.State === 'running');
  assert.ok(info, `no running container for ${dir}`);
  const exec = await docker.getContainer(info.Id).exec({ Cmd: cmd, User: 'root', AttachStdout: !options.detach, AttachStderr: !options.detach });
  if (options.detach) {
    await exec.start({ Detach: true });
    return '';
  }
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('close', resolve).on('error', reject));
  // Multiplexed frames: 8-byte headers then payload; strip them.
  const raw = Buffer.concat(chunks);
  const out: Buffer[] = [];
  for (let offset = 0; offset + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(offset + 4);
    out.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}

/** The PID (in the container) of the newest process whose command line contains `marker`. */
async function pidOf(dir: string, marker: string): Promise<number> {
  const out = await rootExec(dir, ['sh', '-c', `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q -- ${JSON.stringify(marker)} && echo \${p#/proc/}; done | sort -n | tail -1`]);
  const pid = Number(out.trim());
  assert.ok(Number.isInteger(pid) && pid > 0, `no process ${marker}: ${JSON.stringify(out)}`);
  return pid;
}

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

  describe('the sync lock', function () {
    it('a lock written by a process that is not a sync (a live PID of something else) is taken over: clud sync neither hangs nor waits', async function () {
      await rootExec(dir, ['sh', '-c', 'exec -a not-an-agent sleep 600'], { detach: true });
      const pid = await pidOf(dir, 'sleep 600');
      await rootExec(dir, ['sh', '-c', `printf %s ${pid} > ${SYNC_LOCK_PATH} && chmod 666 ${SYNC_LOCK_PATH}`]);
      const started = Date.now();
      const run = await runClud(['sync', dir, '--json'], { timeoutMs: 60_000 });
      assertExit(run, 0);
      assert.ok(Date.now() - started < 30_000, `clud sync took ${Date.now() - started} ms`);
      await rootExec(dir, ['kill', String(pid)]);
    });

    it('a live sync holding the lock: clud sync says on stderr what it waits for, then runs once it is free', async function () {
      // A process that looks like an agent to the lock (its command line names agent.js).
      await rootExec(dir, ['sh', '-c', 'exec node -e "setTimeout(() => {}, 600000)" /opt/clud/agent.js'], { detach: true });
      const pid = await pidOf(dir, 'setTimeout');
      await rootExec(dir, ['sh', '-c', `printf %s ${pid} > ${SYNC_LOCK_PATH} && chmod 666 ${SYNC_LOCK_PATH}`]);
      const running = runClud(['sync', dir], { timeoutMs: 120_000 });
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      await rootExec(dir, ['kill', String(pid)]);
      const run = await running;
      assertExit(run, 0);
      assert.match(run.stderr, new RegExp(`waiting for another sync of this workspace \\(agent process ${pid}\\)`), describeRun(run));
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

    it('a command docker exec cannot start: its error is on stderr, and --json prints exactly one object', async function () {
      const run = await runClud(['exec', dir, '--json', '--', 'no-such-command-here'], { timeoutMs: 60_000 });
      assert.equal(run.exitCode, 127, describeRun(run));
      assert.deepEqual(singleJsonObject(run), { ok: false, exitCode: 127 });
      assert.match(run.stderr, /no-such-command-here/);
      assert.equal(lines(run.stderr).length, 1, describeRun(run));
    });
  });

  // Last: it removes the container.
  describe('clud down', function () {
    it('a FIFO and a socket in /workspace do not make clud down refuse; an unsynced edit still does', async function () {
      const made = await dockerExec(dir, ['sh', '-c', 'mkfifo pipe && node -e "require(\'net\').createServer().listen(\'sock\', () => process.exit(0))"; ls -l pipe sock']);
      assert.equal(made.exitCode, 0, made.stderr);
      const sync = await runCludJson(['sync', dir]);
      assertExit(sync.run, 0);
      const problems = (sync.json.report as { problems: { path: string }[] }).problems.map((problem) => problem.path).sort();
      assert.deepEqual(problems, ['pipe', 'sock'], describeRun(sync.run));

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
