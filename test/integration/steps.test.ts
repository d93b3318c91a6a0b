// `clud run` and `clud checkpoint` with the real CLI, the real agent and a real container: a
// command as one undoable step, its --json events, Ctrl-C in the middle of it, and the Clud MCP
// server and hooks as the workspace user runs them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { CLI_PATH, INTEGRATION_TIMEOUT_MS, REPO_ROOT, TEST_ENV, TestScope, assertExit, cludSync, cludUp, describeRun, execSh, hashTree, requireDocker, runClud, runCludJson } from '../helpers/integration';

interface RunEvent {
  type: string;
  [key: string]: unknown;
}

const events = (stdout: string): RunEvent[] => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as RunEvent);

describe('integration: clud run and checkpoint', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir: string;

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'keep.txt': 'keep\n', 'doomed.txt': 'doomed\n', 'src/app.ts': 'export const app = 1;\n' });
    await cludUp(dir);
  });
  after(() => scope.cleanup());

  it('--json: step_started, the output, then step_completed with the exit code and the paths it changed; undo takes the command back as one step', async () => {
    const before = await hashTree(dir);
    const run = await runClud(['run', dir, '--json', '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; echo made > made.txt; rm doomed.txt; echo "export const app = 2;" > src/app.ts; exit 3']);
    assertExit(run, 3);
    const lines = events(run.stdout);
    assert.equal(lines[0]?.type, 'step_started', describeRun(run));
    assert.deepEqual(lines[0]?.command, ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; echo made > made.txt; rm doomed.txt; echo "export const app = 2;" > src/app.ts; exit 3']);
    const output = lines.filter((line) => line.type === 'output');
    assert.equal(output.filter((line) => line.stream === 'stdout').map((line) => line.data).join(''), 'to-stdout\n');
    assert.equal(output.filter((line) => line.stream === 'stderr').map((line) => line.data).join(''), 'to-stderr\n');
    const completed = lines.at(-1)!;
    assert.equal(completed.type, 'step_completed');
    assert.equal(lines.filter((line) => line.type === 'step_completed').length, 1);
    assert.equal(completed.exitCode, 3);
    assert.deepEqual((completed.paths as string[]).sort(), ['doomed.txt', 'made.txt', 'src/app.ts']);
    assert.equal(await readFile(path.join(dir, 'made.txt'), 'utf8'), 'made\n', 'the change reached the host');

    const undo = await runCludJson(['undo', dir]);
    assertExit(undo.run, 0);
    assert.deepEqual(await hashTree(dir), before, 'the command was one step');
    await cludSync('sync', dir);
    assert.equal(await execSh(dir, 'cat doomed.txt; test ! -e made.txt && echo gone'), 'doomed\ngone\n', '/workspace follows the undo');
  });

  it('Ctrl-C stops the command and everything it started; what it changed is one undoable step; exit 130', async () => {
    const before = await hashTree(dir);
    const child = spawn(process.execPath, [CLI_PATH, 'run', dir, '--', 'sh', '-c', 'echo partial > partial.txt; echo started; sleep 300 & wait'], { cwd: REPO_ROOT, env: { ...process.env, ...TEST_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the command did not start: ${stdout} ${stderr}`)), 120_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('started')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const interruptedAt = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130, `stdout: ${stdout}\nstderr: ${stderr}`);
    assert.ok(Date.now() - interruptedAt < 60_000, 'the command stopped promptly');
    assert.match(stderr, /interrupted; stopping the command/);
    assert.equal(await readFile(path.join(dir, 'partial.txt'), 'utf8'), 'partial\n', 'what it changed reached the host');
    assert.equal((await execSh(dir, 'ps -eo args | grep -c "^sleep 300" || true')).trim(), '0', 'the sleep it started was stopped too');
    assertExit((await runCludJson(['undo', dir])).run, 0);
    assert.deepEqual(await hashTree(dir), before);
  });

  it('the Clud MCP server runs as the workspace user and lists its tools; a hook with no resident agent exits 0', async () => {
    const probe = [
      '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"it","version":"1"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}',
    ].join('\n');
    const mcp = await runClud(['exec', dir, '-i', '--', 'node', '/opt/clud/agent.js', 'mcp'], { input: probe + '\n' });
    assertExit(mcp, 0);
    const replies = mcp.stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: number; result: { tools?: Array<{ name: string }> } });
    assert.deepEqual(replies.find((reply) => reply.id === 2)?.result.tools?.map((tool) => tool.name), ['status', 'sync_now', 'checkpoint', 'history', 'undo_last_step']);
    const hook = await runClud(['exec', dir, '-i', '--', 'node', '/opt/clud/agent.js', 'hook', 'UserPromptSubmit'], { input: '{"prompt":"hello"}' });
    assertExit(hook, 0);
    assert.equal(hook.stdout, '', 'a hook prints nothing Claude Code would add to the prompt');
    assert.equal((await execSh(dir, 'stat -c "%U %a" /run/clud')).trim(), 'clud 755', 'the step socket folder: the sync agent writes, coder reaches');
  });
});
