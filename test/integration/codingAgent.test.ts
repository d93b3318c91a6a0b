// The coding agent in the box: Claude Code, its MCP servers, the API key's path and the agent
// state volume, in the real image and real containers. The key is followed up to Claude Code's
// `apiKeyHelper` handing it to the workspace user; claudeTurn.test.ts follows it into requests
// to a scripted Anthropic API.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { API_KEY_FILE, API_KEY_HELPER_PATH, CLAUDE_CONFIG_DIR, agentVolumeName } from '../../src/core/containerLayout';
import {
  INTEGRATION_TIMEOUT_MS,
  TEST_STATE_ROOT,
  TestScope,
  apiKeyInput,
  cludUp,
  assertExit,
  describeRun,
  docker,
  execSh,
  requireDocker,
  runClud,
  runCludJson,
} from '../helpers/integration';

/**
 * Speaks MCP to one server over stdio inside the container: initialize, the initialized
 * notification, tools/list; prints {serverInfo, tools} as JSON. Run with node as the workspace user.
 */
const MCP_PROBE = `
const { spawn } = require('node:child_process');
const entry = JSON.parse(process.argv[1]);
const child = spawn(entry.command, entry.args || [], { env: { ...process.env, ...(entry.env || {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
let buffer = '', stderr = '', serverInfo;
const send = (message) => child.stdin.write(JSON.stringify({ jsonrpc: '2.0', ...message }) + '\\n');
const timer = setTimeout(() => { console.error('timeout; stderr: ' + stderr.slice(-2000)); process.exit(2); }, 60000);
child.stderr.on('data', (chunk) => { stderr += chunk; });
child.on('exit', (code) => { console.error('server exited ' + code + ': ' + stderr.slice(-2000)); process.exit(3); });
child.stdout.on('data', (chunk) => {
  buffer += chunk;
  let newline;
  while ((newline = buffer.indexOf('\\n')) >= 0) {
    const line = buffer.slice(0, newline).trim();
    buffer = buffer.slice(newline + 1);
    if (!line) continue;
    const message = JSON.parse(line);
    if (message.id === 1) {
      serverInfo = message.result.serverInfo;
      send({ method: 'notifications/initialized' });
      send({ id: 2, method: 'tools/list', params: {} });
    } else if (message.id === 2) {
      clearTimeout(timer);
      console.log(JSON.stringify({ serverInfo, tools: message.result.tools.map((tool) => tool.name) }));
      child.removeAllListeners('exit');
      child.kill();
      process.exit(0);
    }
  }
});
send({ id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'clud-test', version: '1' } } });
`;

async function containerOf(dir: string): Promise<string> {
  const { run, json } = await runCludJson(['status', dir]);
  assertExit(run, 0);
  return json.containerName as string;
}

/** Runs a command in the container as `user`, through the Docker API; returns exit code and output. */
async function dockerExec(container: string, user: string, cmd: string[]): Promise<{ exitCode: number; output: string }> {
  const exec = await docker.getContainer(container).exec({ Cmd: cmd, User: user, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise((resolve) => stream.on('end', resolve));
  const info = await exec.inspect();
  return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8') };
}

async function filesContaining(root: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && (await readFile(full)).includes(needle)) found.push(full);
    }
  };
  await walk(root);
  return found;
}

async function containersFor(dir: string): Promise<number> {
  return (await docker.listContainers({ all: true, filters: { label: [`clud.hostPath=${dir}`] } })).length;
}

describe('integration: the coding agent in the box', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  const key = `sk-ant-test-${randomBytes(12).toString('hex')}`;
  let dir = '';
  let container = '';

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'README.md': '# project\n', 'src/main.ts': 'export const x = 1;\n' });
    // The key arrives on standard input (`--api-key -`), the way that keeps it out of argv.
    await cludUp(dir, ['--api-key', '-', '--mcp-servers', 'memory'], apiKeyInput(key));
    container = await containerOf(dir);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('runs `claude --version` in the container as the workspace user (clud claude)', async function () {
    const run = await runClud(['claude', dir, '--', '--version']);
    assertExit(run, 0);
    assert.match(run.stdout, /^\d+\.\d+\.\d+ \(Claude Code\)/, describeRun(run));
    // A key is stored (up's --api-key): no word of logging in.
    assert.doesNotMatch(run.stderr, /no API key/, describeRun(run));
    assert.equal((await execSh(dir, 'id -un')).trim(), 'coder');
  });

  it("puts every configured MCP server in Claude Code's user scope, and each answers initialize and tools/list over stdio", async function () {
    const config = JSON.parse((await dockerExec(container, 'coder', ['cat', `${CLAUDE_CONFIG_DIR}/.claude.json`])).output) as { mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }> };
    assert.deepEqual(Object.keys(config.mcpServers), ['clud', 'filesystem', 'git', 'fetch', 'memory']);
    for (const [name, entry] of Object.entries(config.mcpServers)) {
      const run = await runClud(['exec', dir, '--', 'node', '-e', MCP_PROBE, JSON.stringify(entry)]);
      assertExit(run, 0);
      const answer = JSON.parse(run.stdout.trim().split('\n').pop()!) as { serverInfo: { name: string }; tools: string[] };
      assert.ok(answer.tools.length > 0, `${name} lists no tools: ${run.stdout}`);
      assert.ok(answer.serverInfo.name, `${name} gave no serverInfo`);
    }
    // Claude Code's own view of its configuration: it starts each server and reports it connected.
    const list = await runClud(['exec', dir, '--', 'claude', 'mcp', 'list'], { timeoutMs: 180_000 });
    assertExit(list, 0);
    for (const name of ['clud', 'filesystem', 'git', 'fetch', 'memory']) assert.match(list.stdout, new RegExp(`^${name}: .*Connected`, 'm'), describeRun(list));
    const status = await runCludJson(['status', dir]);
    assert.deepEqual(status.json.mcpServers, ['clud', 'filesystem', 'git', 'fetch', 'memory']);
    assert.match((await runClud(['status', dir])).stdout, /MCP: +clud, filesystem, git, fetch, memory/);
  });

  it("hands the key to the workspace user through Claude Code's apiKeyHelper, and it is nowhere else", async function () {
    const settings = JSON.parse((await dockerExec(container, 'coder', ['cat', `${CLAUDE_CONFIG_DIR}/settings.json`])).output) as { apiKeyHelper: string };
    assert.equal(settings.apiKeyHelper, API_KEY_HELPER_PATH);
    const helper = await dockerExec(container, 'coder', ['sh', '-c', settings.apiKeyHelper]);
    assert.equal(helper.output.trim(), key);
    // Another user of the container cannot read it.
    const other = await dockerExec(container, 'nobody', ['cat', API_KEY_FILE]);
    assert.notEqual(other.exitCode, 0);
    assert.doesNotMatch(other.output, new RegExp(key));
    // Not in the container's configuration, its logs, the state folder, /workspace or the host folder.
    const inspect = await docker.getContainer(container).inspect();
    assert.ok(!JSON.stringify(inspect).includes(key), 'docker inspect shows the key');
    const logs = await runClud(['logs', dir]);
    assert.ok(!(logs.stdout + logs.stderr).includes(key), 'the container logs show the key');
    assert.deepEqual(await filesContaining(TEST_STATE_ROOT, key), []);
    assert.deepEqual(await filesContaining(dir, key), []);
    const inWorkspace = await dockerExec(container, 'root', ['grep', '-rl', key, '/workspace', CLAUDE_CONFIG_DIR]);
    assert.equal(inWorkspace.exitCode, 1, `found: ${inWorkspace.output}`);
  });

  it('changes the key without a rebuild (ANTHROPIC_API_KEY on `clud up`)', async function () {
    const newKey = `sk-ant-test-${randomBytes(12).toString('hex')}`;
    const { run, json } = await runCludJson(['up', dir], { env: { ANTHROPIC_API_KEY: newKey } });
    assertExit(run, 0);
    assert.equal(json.built, false);
    assert.equal(json.created, false);
    assert.equal((await dockerExec(container, 'coder', [API_KEY_HELPER_PATH])).output.trim(), newKey);
  });

  it('with no key stored (a restart emptied its tmpfs), Claude Code gets no key helper and offers its own login; a key given again brings the helper back', async function () {
    const settings = async () => JSON.parse((await dockerExec(container, 'coder', ['cat', `${CLAUDE_CONFIG_DIR}/settings.json`])).output) as { apiKeyHelper?: string };
    await docker.getContainer(container).restart();
    const helper = await dockerExec(container, 'coder', [API_KEY_HELPER_PATH]);
    assert.notEqual(helper.exitCode, 0);
    assert.match(helper.output, /no API key is stored in this workspace/);
    // A helper in the settings turns Claude Code's own login off: `clud claude` takes Clud's out first.
    const run = await runClud(['claude', dir, '--', '-p', 'hello'], { timeoutMs: 120_000 });
    assert.match(run.stderr, /no API key is stored in the workspace; Claude Code will ask you to log in with your Claude account/, describeRun(run));
    assert.match(run.stdout + run.stderr, /Not logged in/, describeRun(run));
    assert.equal((await settings()).apiKeyHelper, undefined);
    const again = `sk-ant-test-${randomBytes(12).toString('hex')}`;
    await cludUp(dir, [], { env: { ANTHROPIC_API_KEY: again } });
    assert.equal((await settings()).apiKeyHelper, API_KEY_HELPER_PATH);
    assert.equal((await dockerExec(container, 'coder', [API_KEY_HELPER_PATH])).output.trim(), again);
  });

  it("keeps the agent state across `clud down` and `clud up`, but not /workspace's volume; `clud down --purge` removes the agent state", async function () {
    const workspaceMount = async () => (await docker.getContainer(container).inspect()).Mounts.find((mount) => mount.Destination === '/workspace');
    const first = await workspaceMount();
    assert.equal(first?.Type, 'volume', '/workspace is a volume of its own, not the container layer');
    await execSh(dir, `echo kept > ${CLAUDE_CONFIG_DIR}/marker && echo mine > ~/.config/marker`);
    assertExit(await runClud(['down', dir]), 0);
    await assert.rejects(docker.getVolume(first!.Name!).inspect(), /no such volume/i, "/workspace's volume went with its container");
    const again = await runCludJson(['up', dir]);
    assertExit(again.run, 0);
    assert.equal(again.json.created, true);
    assert.equal((await execSh(dir, `cat ${CLAUDE_CONFIG_DIR}/marker ~/.config/marker`)).trim(), 'kept\nmine');
    const second = await workspaceMount();
    assert.equal(second?.Type, 'volume');
    assert.notEqual(second?.Name, first?.Name, 'a new container starts from a new /workspace');
    assert.equal((await execSh(dir, 'stat -c %U /workspace')).trim(), 'coder', 'the volume is the workspace user\'s, as the image made /workspace');
    const purge = await runClud(['down', dir, '--purge']);
    assertExit(purge, 0);
    assert.match(purge.stdout, /and its agent state/);
    await assert.rejects(docker.getVolume(agentVolumeName(container)).inspect(), /no such volume/i);
  });

  describe('bad input: one clear line, nothing started', function () {
    async function refused(args: string[], pattern: RegExp, exitCode: number, options: { input?: string; env?: Record<string, string | undefined> } = {}): Promise<void> {
      const fresh = await scope.project({ 'a.txt': 'a\n' });
      const run = await runClud(['up', fresh, ...args], options);
      assertExit(run, exitCode);
      assert.equal(run.stderr.trim().split('\n').length, 1, describeRun(run));
      assert.match(run.stderr, pattern, describeRun(run));
      assert.equal(await containersFor(fresh), 0, 'a container was created');
    }

    it('an invalid port', async function () {
      await refused(['--ui', '--port', 'http'], /^clud: invalid port "http"/, 2);
      await refused(['--ui', '--port', '70000'], /^clud: invalid port "70000"/, 2);
    });

    it('a taken port asked for explicitly', async function () {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        await refused(['--ui', '--port', String(port)], new RegExp(`^clud: port ${port} on 127.0.0.1 is taken`), 1);
      } finally {
        server.close();
      }
    });

    it('an unknown MCP server name', async function () {
      await refused(['--mcp-servers', 'memory,nosuch'], /^clud: unknown MCP server "nosuch" in --mcp-servers/, 2);
      await refused([], /^clud: Invalid setting|^clud: invalid MCP server/, 2, { env: { CLUD_MCP_SERVERS: '[{"name": "x"}]' } });
    });

    it('an empty key', async function () {
      await refused(['--api-key', ''], /^clud: the API key is empty/, 2);
      await refused(['--api-key', '-'], /^clud: the API key is empty/, 2, { input: '\n' });
    });
  });
});
