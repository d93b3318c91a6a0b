// `clud run` and `clud checkpoint` with the real CLI, the real agent and a real container: a
// command as one undoable step, its --json events, Ctrl-C in the middle of it, and the Clud MCP
// server and hooks as the workspace user runs them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_PATH, INTEGRATION_TIMEOUT_MS, REPO_ROOT, TEST_ENV, TestScope, assertExit, describeRun, dockerExec, execSh, hashTree, requireDocker, runClaudeHook, runClud, runCludJson, waitFor } from '../helpers/integration';

interface RunEvent {
  type: string;
  [key: string]: unknown;
}

/** Calls one tool of the Clud MCP server in the container, as Claude Code would; returns its text. */
async function mcpCall(dir: string, name: string, args: object = {}): Promise<string> {
  const lines = [
    { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'it', version: '1' } } },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: args } },
  ];
  const run = await runClud(['exec', dir, '-i', '--', 'node', '/opt/clud/agent.js', 'mcp'], { input: lines.map((line) => JSON.stringify(line)).join('\n') + '\n' });
  assertExit(run, 0);
  const reply = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: number; result?: { content: Array<{ text: string }>; isError: boolean } }).find((line) => line.id === 2);
  assert.equal(reply?.result?.isError, false, describeRun(run));
  return reply!.result!.content.map((item) => item.text).join('\n');
}

const events = (stdout: string): RunEvent[] => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as RunEvent);

describe('integration: clud run and checkpoint', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir: string;

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'keep.txt': 'keep\n', 'doomed.txt': 'doomed\n', 'src/app.ts': 'export const app = 1;\n' });
    // Continuous sync, as users have it: steps group what the background cycles carry.
    const up = await runCludJson(['up', dir], { env: { CLUD_AUTO_SYNC: 'continuous' } });
    assertExit(up.run, 0);
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
    await waitFor('/workspace follows the undo', async () => ((await execSh(dir, 'cat doomed.txt 2>/dev/null; test -e made.txt || echo gone')) === 'doomed\ngone\n' ? true : undefined), 60_000);
    assert.equal(await execSh(dir, 'stat -c %U doomed.txt src/app.ts'), 'coder\ncoder\n', 'what the background cycle wrote in /workspace is the workspace user\'s');
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
    assert.doesNotMatch(stderr, /setsid|did not exit normally/);
    assert.equal(await readFile(path.join(dir, 'partial.txt'), 'utf8'), 'partial\n', 'what it changed reached the host');
    assert.equal((await execSh(dir, 'ps -eo args | grep -c "^sleep 300" || true')).trim(), '0', 'the sleep it started was stopped too');
    assertExit((await runCludJson(['undo', dir])).run, 0);
    assert.deepEqual(await hashTree(dir), before);
  });

  it('a turn marked by the hooks is one step labelled with its prompt; undo refuses it while it runs, then takes it back', async () => {
    const before = await hashTree(dir);
    const start = await runClaudeHook(dir, 'UserPromptSubmit', { prompt: 'rename the\nconfig loader' });
    assertExit(start, 0);
    assert.equal(start.stdout, '', 'a hook prints nothing Claude Code would add to the prompt');
    assert.equal(start.stderr, '', describeRun(start));
    await execSh(dir, 'echo "export const renamed = 1;" > src/app.ts; echo new > turn.txt');
    // The agent's own MCP server sees the turn being recorded.
    const status = await mcpCall(dir, 'status');
    assert.match(status, /recording: turn "rename the config loader"/);
    await waitFor('the turn\'s change reaches the host', async () => ((await readFile(path.join(dir, 'turn.txt'), 'utf8').catch(() => '')) === 'new\n' ? true : undefined), 60_000);
    const refused = await runCludJson(['undo', dir]);
    assertExit(refused.run, 1);
    assert.match(String(refused.json.refused), /the turn "rename the config loader" is still running/);
    assert.equal(refused.json.refusedCode, 'still-running');
    const refusedText = await runClud(['undo', dir]);
    assertExit(refusedText, 1);
    assert.match(refusedText.stdout, /^ {2}--force undoes it anyway/m, describeRun(refusedText));
    // The history says which step is still being recorded.
    const whileRunning = await runClud(['history', dir]);
    assert.match(whileRunning.stdout, /^ {2}1\. .*turn "rename the config loader" {2}\(still running: `clud undo` takes it back once it ends\)$/m, describeRun(whileRunning));

    await execSh(dir, 'rm keep.txt');
    const stop = await runClaudeHook(dir, 'Stop');
    assertExit(stop, 0);
    assert.equal(stop.stderr, '', describeRun(stop));
    await assert.rejects(readFile(path.join(dir, 'keep.txt')), 'Stop carried the turn\'s last change before the step closed');
    const history = await runCludJson(['history', dir]);
    const [newest] = history.json.steps as Array<{ group?: { kind: string; label: string }; files: number }>;
    assert.deepEqual(newest?.group && { kind: newest.group.kind, label: newest.group.label }, { kind: 'turn', label: 'rename the config loader' });
    assert.equal(newest?.files, 3, JSON.stringify(history.json, null, 1));
    assert.match((await runClud(['history', dir])).stdout, /turn "rename the config loader"$/m);

    assertExit((await runCludJson(['undo', dir])).run, 0);
    assert.deepEqual(await hashTree(dir), before, 'the whole turn was one step');
    await waitFor('/workspace follows the undo', async () => ((await execSh(dir, 'cat keep.txt 2>/dev/null; test -e turn.txt || echo gone')) === 'keep\ngone\n' ? true : undefined), 60_000);
  });

  it('a turn survives a SIGKILL of the resident agent: the cycles after the restart join it, and Stop closes it as one step', async () => {
    const before = await hashTree(dir);
    assertExit(await runClaudeHook(dir, 'UserPromptSubmit', { prompt: 'survive a restart' }), 0);
    await execSh(dir, 'echo before > before-kill.txt');
    await waitFor('the first change on the host', async () => ((await readFile(path.join(dir, 'before-kill.txt'), 'utf8').catch(() => '')) === 'before\n' ? true : undefined), 60_000);
    const killed = await dockerExec(dir, ['pkill', '-KILL', '-f', '[a]gent.js daemon'], { user: 'root' });
    assert.equal(killed.exitCode, 0, `no resident agent was killed: ${killed.stderr}`);
    // The restarted agent still records the turn.
    await waitFor('the restarted agent recording the turn', async () => (/recording: turn "survive a restart"/.test(await mcpCall(dir, 'status').catch(() => '')) ? true : undefined), 60_000);
    await execSh(dir, 'echo after > after-kill.txt');
    await waitFor('the second change on the host', async () => ((await readFile(path.join(dir, 'after-kill.txt'), 'utf8').catch(() => '')) === 'after\n' ? true : undefined), 60_000);
    assertExit(await runClaudeHook(dir, 'Stop', {}), 0);
    const history = await runCludJson(['history', dir]);
    const [newest] = history.json.steps as Array<{ group?: { kind: string; label: string }; files: number }>;
    assert.deepEqual(newest?.group && { kind: newest.group.kind, label: newest.group.label }, { kind: 'turn', label: 'survive a restart' });
    assert.equal(newest?.files, 2, `the turn is not one step of both files: ${JSON.stringify(history.json, null, 1)}`);
    assertExit((await runCludJson(['undo', dir])).run, 0);
    assert.deepEqual(await hashTree(dir), before, 'the whole turn was one step');
  });

  it('a turn whose Stop never came: clud undo --force takes it back and ends it, so a later write is a step of its own', async () => {
    const before = await hashTree(dir);
    assertExit(await runClaudeHook(dir, 'UserPromptSubmit', { prompt: 'never ends' }), 0);
    await execSh(dir, 'echo half > half-done.txt');
    await waitFor('the turn\'s change on the host', async () => ((await readFile(path.join(dir, 'half-done.txt'), 'utf8').catch(() => '')) === 'half\n' ? true : undefined), 60_000);
    // Claude Code was killed: no Stop comes.
    const forced = await runCludJson(['undo', dir, '--force']);
    assertExit(forced.run, 0);
    assert.deepEqual(await hashTree(dir), before);
    assert.doesNotMatch(await mcpCall(dir, 'status'), /recording: turn/, 'the turn undone is still being recorded');
    await execSh(dir, 'echo later > after-the-undo.txt');
    await waitFor('the later change on the host', async () => ((await readFile(path.join(dir, 'after-the-undo.txt'), 'utf8').catch(() => '')) === 'later\n' ? true : undefined), 60_000);
    const history = await runCludJson(['history', dir]);
    const [newest] = history.json.steps as Array<{ group?: { kind: string; label: string } }>;
    assert.notEqual(newest?.group?.label, 'never ends', `a write after the undo joined the undone turn: ${JSON.stringify(history.json, null, 1)}`);
    assertExit((await runCludJson(['undo', dir])).run, 0);
  });

  it('clud checkpoint names what changed since the last step; the agent\'s undo_last_step takes it back', async () => {
    const before = await hashTree(dir);
    await execSh(dir, 'echo draft > draft.txt');
    await waitFor('the change reaches the host', async () => ((await readFile(path.join(dir, 'draft.txt'), 'utf8').catch(() => '')) === 'draft\n' ? true : undefined), 60_000);
    const { run, json } = await runCludJson(['checkpoint', dir, 'first draft']);
    assertExit(run, 0);
    assert.equal((json.closed as { kind: string; label: string }).label, 'first draft');
    assert.ok((json.steps as number) >= 1, describeRun(run));
    assert.match((await runClud(['history', dir])).stdout, /checkpoint: first draft/);
    assert.match(await mcpCall(dir, 'history'), /^1\. checkpoint "first draft"/);
    assert.match(await mcpCall(dir, 'undo_last_step'), /^undid the checkpoint "first draft"/);
    assert.deepEqual(await hashTree(dir), before);
  });

  it('while the user has paused auto-sync, a turn\'s end and the agent\'s sync_now carry nothing; clud resume does', async () => {
    assertExit(await runClud(['pause', dir]), 0);
    try {
      assertExit(await runClaudeHook(dir, 'UserPromptSubmit', { prompt: 'while paused' }), 0);
      await execSh(dir, 'echo paused > while-paused.txt');
      assert.match(await mcpCall(dir, 'sync_now'), /^not synced: the user paused auto-sync; your changes wait in \/workspace until the user lets the sync go on$/);
      assertExit(await runClaudeHook(dir, 'Stop', {}), 0);
      await assert.rejects(readFile(path.join(dir, 'while-paused.txt')), 'a step boundary carried a change past the pause');
    } finally {
      assertExit(await runClud(['resume', dir]), 0);
    }
    // Resumed, the continuous sync carries what waited.
    await waitFor('while-paused.txt on the host', async () => ((await readFile(path.join(dir, 'while-paused.txt'), 'utf8').catch(() => '')) === 'paused\n' ? true : undefined), 30_000);
  });

  it('a command whose deletions a safeguard asks about ends at once, saying they wait; allowed, they are part of its step', async () => {
    await execSh(dir, 'mkdir -p many && for i in $(seq 1 60); do echo $i > many/f$i.txt; done');
    await waitFor('the 60 files on the host', async () => ((await readFile(path.join(dir, 'many/f60.txt'), 'utf8').catch(() => '')) === '60\n' ? true : undefined), 30_000);
    await sleep(3500); // a quiet period: the files' burst is a step of its own
    // The end of the step carries what waits; that cycle meets the safeguard and asks. It waited for an answer nobody was asked for.
    const started = Date.now();
    const run = await runClud(['run', dir, '--json', '--', 'sh', '-c', 'rm -r many'], { timeoutMs: 60_000 });
    assertExit(run, 0);
    assert.ok(Date.now() - started < 30_000, `clud run took ${Date.now() - started} ms`);
    const completed = events(run.stdout).at(-1)!;
    assert.equal(completed.type, 'step_completed', describeRun(run));
    assert.match(String(completed.held), /waits for the user's approval \(60 files deleted in this sync/, describeRun(run));
    assert.equal((await readFile(path.join(dir, 'many/f1.txt'), 'utf8')), '1\n', 'a held deletion reached the host');

    assertExit(await runClud(['sync', dir, '--yes']), 0);
    await assert.rejects(readFile(path.join(dir, 'many/f1.txt')), 'the allowed deletion did not reach the host');
    const [latest] = (await runCludJson(['history', dir])).json.steps as Array<{ group?: { kind: string; label: string }; files: number }>;
    assert.deepEqual([latest?.group?.kind, latest?.group?.label, latest?.files], ['command', "sh -c 'rm -r many'", 61], 'the deletions were recorded in the command\'s step');
  });

  it('the Clud MCP server runs as the workspace user and lists its tools; the step socket is the only way in', async () => {
    const probe = [
      '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"it","version":"1"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}',
    ].join('\n');
    const mcp = await runClud(['exec', dir, '-i', '--', 'node', '/opt/clud/agent.js', 'mcp'], { input: probe + '\n' });
    assertExit(mcp, 0);
    const replies = mcp.stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: number; result: { tools?: Array<{ name: string }> } });
    assert.deepEqual(replies.find((reply) => reply.id === 2)?.result.tools?.map((tool) => tool.name), ['status', 'sync_now', 'checkpoint', 'history', 'undo_last_step']);
    assert.equal((await execSh(dir, 'stat -c "%U %a" /run/clud; stat -c "%F %a" /run/clud/steps.sock')).trim(), 'clud 755\nsocket 666', 'the sync agent makes the socket; coder reaches it and plants nothing beside it');
    // The main channel's socket stays out of coder's reach.
    const main = await runClud(['exec', dir, '--', 'node', '-e', "require('net').connect('/var/lib/clud/agent.sock').on('error', (e) => { console.log(e.code); process.exit(0) }).on('connect', () => { console.log('connected'); process.exit(0) })"]);
    assert.equal(main.stdout.trim(), 'EACCES', describeRun(main));
  });
});
