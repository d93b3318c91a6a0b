import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AgentSession } from '../../src/core/host/workspace';
import {
  HOST_CA_BUNDLE,
  TestScope,
  assertExit,
  createWorkspace,
  describeRun,
  docker,
  lines,
  requireDocker,
  runClud,
  runCludJson,
  startClud,
  waitFor,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';
import type { CludRun } from '../helpers/integration';

// One container for every test here: they only read /workspace or run commands that leave it as it was.
describe('integration: exec in the workspace', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  let up: CludRun;
  let upJson: Record<string, unknown>;

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'pyproject.toml': '[project]\nname = "clud"\n' });
    ({ run: up, json: upJson } = await runCludJson(['up', dir]));
  });

  after(async function () {
    await scope.cleanup();
  });

  it('clud up reports the workspace ready, and exit codes of clud exec pass through', async function () {
    assertExit(up, 0);
    assert.equal(upJson.ok, true, describeRun(up));
    assert.equal(upJson.state, 'running', describeRun(up));
    assert.equal((upJson.init as { phase?: string }).phase, 'ready', describeRun(up));

    const found = await runClud(['exec', dir, '--', 'grep', '-q', 'clud', 'pyproject.toml']);
    assertExit(found, 0);
    const missing = await runClud(['exec', dir, '--', 'grep', '-q', 'nope', 'pyproject.toml']);
    assertExit(missing, 1);
    const other = await runClud(['exec', dir, '--', 'sh', '-c', 'exit 42']);
    assertExit(other, 42);
  });

  it("runs commands in /workspace as the workspace user, the sync agent as the folder owner's UID 1000, and nothing but tini (PID 1) as root", async function () {
    const pwd = await runClud(['exec', dir, '--', 'pwd']);
    assertExit(pwd, 0);
    assert.equal(pwd.stdout.trim(), '/workspace');
    const uid = await runClud(['exec', dir, '--', 'id', '-u']);
    assertExit(uid, 0);
    // The workspace user never has the folder owner's UID: that one is the sync agent's.
    const workspaceUid = Number(uid.stdout.trim());
    assert.ok(Number.isInteger(workspaceUid) && workspaceUid !== 1000 && workspaceUid !== 0, uid.stdout);

    // Processes the host starts besides the init: an open agent session and a long command.
    let session: AgentSession | undefined;
    const sleeper = await startClud(['exec', dir, '--', 'sleep', '20']);
    try {
      session = await createWorkspace(dir).openSession();
      // PID|Name|real effective saved fs UIDs, for every process of the container's PID namespace.
      const script =
        'for f in /proc/[0-9]*/status; do p=${f#/proc/}; p=${p%/status}; ' +
        'n=$(sed -n "s/^Name:\\t//p" "$f" 2>/dev/null); u=$(sed -n "s/^Uid:\\t//p" "$f" 2>/dev/null); ' +
        '[ -n "$u" ] && echo "$p|$n|$u"; done; true';
      const processes = await waitFor('the sleep process in the container', async () => {
        const run = await runClud(['exec', dir, '--', 'sh', '-c', script]);
        assertExit(run, 0);
        const rows = lines(run.stdout).map((line) => {
          const [pid, name, uids] = line.split('|') as [string, string, string];
          return { pid: Number(pid), name, uids: uids.trim().split(/\s+/).map(Number) };
        });
        return rows.some((row) => row.name === 'sleep') ? rows : undefined;
      });
      const init = processes.find((row) => row.pid === 1);
      assert.equal(init?.name, 'tini', JSON.stringify(processes));
      const rootProcesses = processes.filter((row) => row.pid !== 1 && row.uids.some((id) => id === 0));
      assert.deepEqual(rootProcesses, [], `processes running as root besides PID 1: ${JSON.stringify(processes)}`);
      // node: the init and the session's agent, both the sync agent; the rest is the workspace user's.
      for (const row of processes.filter((candidate) => candidate.pid !== 1)) {
        const expected = row.name === 'node' ? 1000 : workspaceUid;
        assert.deepEqual(row.uids, [expected, expected, expected, expected], JSON.stringify(row));
      }
      assert.ok(processes.filter((row) => row.name === 'node').length >= 2, `expected the init and the session's agent: ${JSON.stringify(processes)}`);

      // The engine's view agrees: only tini has UID 0.
      const top = (await docker.getContainer(String(upJson.containerId)).top({ ps_args: '-eo pid,uid,comm' })) as { Titles: string[]; Processes: string[][] };
      const uidColumn = top.Titles.indexOf('UID');
      const commandColumn = top.Titles.indexOf('COMMAND');
      assert.ok(uidColumn >= 0 && commandColumn >= 0, JSON.stringify(top));
      const engineRoot = top.Processes.filter((row) => row[uidColumn] === '0').map((row) => row[commandColumn]);
      assert.deepEqual(engineRoot, ['tini'], JSON.stringify(top));
    } finally {
      await session?.close();
      await sleeper.stop();
    }
  });

  it('trusts the extra CA certificates: Node in the container fetches through the TLS-inspecting proxy', async function () {
    const fetchRun = await runClud([
      'exec',
      dir,
      '--',
      'node',
      '-e',
      "fetch('https://registry.npmjs.org/zod').then(r => process.exit(r.status === 200 ? 0 : 1), () => process.exit(2))",
    ]);
    assertExit(fetchRun, 0);

    // The certificate file given in CLUD_EXTRA_CA_CERTIFICATES is the one installed in the image.
    const expected = createHash('sha256').update(await readFile(HOST_CA_BUNDLE)).digest('hex');
    const installed = await runClud(['exec', dir, '--', 'sha256sum', '/usr/local/share/ca-certificates/clud/clud-extra-0.crt']);
    assertExit(installed, 0);
    assert.equal(installed.stdout.split(' ')[0], expected, describeRun(installed));
    const extraCerts = await runClud(['exec', dir, '--', 'printenv', 'NODE_EXTRA_CA_CERTS']);
    assertExit(extraCerts, 0);
    assert.equal(extraCerts.stdout.trim(), '/etc/ssl/certs/ca-certificates.crt');
  });

  it("clud logs shows the init's JSON log lines", async function () {
    const text = await runClud(['logs', dir]);
    assertExit(text, 0);
    const records = lines(text.stdout).map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return assert.fail(`a log line is not JSON: ${line}\n${describeRun(text)}`);
      }
    });
    for (const record of records) {
      assert.equal(record.source, 'init', JSON.stringify(record));
      assert.ok(typeof record.time === 'string' && !Number.isNaN(Date.parse(record.time)), JSON.stringify(record));
      assert.ok(['info', 'warn', 'error'].includes(String(record.level)), JSON.stringify(record));
    }
    const done = records.find((record) => record.message === 'initial copy done');
    assert.ok(done, `no "initial copy done" line\n${describeRun(text)}`);
    assert.equal(done.files, 1);
    assert.equal(done.level, 'info');

    const { run, json } = await runCludJson(['logs', dir]);
    assertExit(run, 0);
    assert.equal(json.ok, true);
    assert.match(String(json.stderr), /"message":"initial copy done"/);
  });
});
