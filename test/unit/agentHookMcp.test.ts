import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runHook } from '../../src/agent/hook';
import { MCP_TOOLS } from '../../src/agent/mcpServer';
import { STEP_SOCKET_ENV } from '../../src/core/containerLayout';
import { assertSameTree, REPO_ROOT, snapshotTree } from '../helpers/undoTrees';
import { useStepChannel } from '../helpers/stepAgent';
import type { TestStepAgent } from '../helpers/stepAgent';

const AGENT_MAIN = path.join(REPO_ROOT, 'src', 'agent', 'main.ts');
let agentBundle = '';

/** The agent bundled as esbuild.mjs bundles it (one self-contained file), once per run. */
async function buildAgent(): Promise<string> {
  if (agentBundle) return agentBundle;
  const esbuild = await import('esbuild');
  const directory = await mkdtemp(path.join(tmpdir(), 'clud-agent-bundle-'));
  agentBundle = path.join(directory, 'agent.js');
  await esbuild.build({ entryPoints: [AGENT_MAIN], outfile: agentBundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'error', alias: { ssh2: path.join(REPO_ROOT, 'src/stubs/ssh2.ts') } });
  return agentBundle;
}

/** Runs the real agent bundle with `stdin`, as Claude Code runs it in the container. */
function runAgent(args: string[], stdin: string, socketPath: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [agentBundle, ...args], { env: { ...process.env, [STEP_SOCKET_ENV]: socketPath }, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
    child.stdin.end(stdin);
  });
}

/** Sends JSON-RPC lines to `agent mcp` and returns its replies by id. */
async function mcpSession(socketPath: string, messages: object[]): Promise<Map<unknown, { result?: Record<string, unknown>; error?: { code: number; message: string } }>> {
  const run = await runAgent(['mcp'], messages.map((message) => JSON.stringify(message)).join('\n') + '\n', socketPath);
  assert.equal(run.code, 0, run.stderr);
  const replies = run.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { jsonrpc: string; id: unknown });
  for (const reply of replies) assert.equal(reply.jsonrpc, '2.0');
  return new Map(replies.map((reply) => [reply.id, reply as never]));
}

const call = (id: number, name: string, args: object = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const textOf = (reply: { result?: Record<string, unknown> } | undefined) => ((reply?.result?.content as Array<{ text: string }> | undefined) ?? []).map((item) => item.text).join('\n');

describe('unit: agent hook and agent mcp, over a real step socket', function () {
  this.timeout(120_000);
  const served = useStepChannel('clud-agent-hook-');
  const { sample } = served;
  let agent: TestStepAgent;
  let socketPath: string;

  before(buildAgent);
  beforeEach(() => ({ agent, socketPath } = served));

  it('UserPromptSubmit opens a turn named by the prompt, Stop flushes and ends it; neither prints on stdout', async () => {
    const start = await runAgent(['hook', 'UserPromptSubmit'], JSON.stringify({ session_id: 's', hook_event_name: 'UserPromptSubmit', prompt: 'rename the config loader' }), socketPath);
    assert.deepEqual([start.code, start.stdout, start.stderr], [0, '', '']);
    assert.deepEqual(agent.boundaries.running && { kind: agent.boundaries.running.kind, label: agent.boundaries.running.label }, { kind: 'turn', label: 'rename the config loader' });
    agent.agentWrites('src/a.ts', 'renamed by the agent');
    const stop = await runAgent(['hook', 'Stop'], JSON.stringify({ session_id: 's', hook_event_name: 'Stop', stop_hook_active: false }), socketPath);
    assert.deepEqual([stop.code, stop.stdout, stop.stderr], [0, '', '']);
    assert.equal(agent.boundaries.running, undefined);
    assert.equal(await readFile(path.join(sample.workspace.root, 'src/a.ts'), 'utf8'), 'renamed by the agent');
    const [entry] = await sample.log.list();
    assert.deepEqual(entry?.group && { kind: entry.group.kind, label: entry.group.label }, { kind: 'turn', label: 'rename the config loader' });
  });

  it('a hook never blocks Claude Code: no agent, bad input or an unknown event exit 0 with a line on stderr', async () => {
    await served.channel!.close();
    served.channel = undefined;
    const unreachable = await runAgent(['hook', 'Stop'], '{}', socketPath);
    assert.equal(unreachable.code, 0);
    assert.equal(unreachable.stdout, '');
    assert.match(unreachable.stderr, /clud hook Stop: the sync agent is not reachable/);
    const unknown = await runAgent(['hook', 'PreToolUse'], '{}', socketPath);
    assert.equal(unknown.code, 0);
    assert.match(unknown.stderr, /unknown event "PreToolUse"/);
  });

  it('a prompt that is not JSON still opens a turn, unnamed', async () => {
    const seen: unknown[] = [];
    const problem = await runHook('UserPromptSubmit', 'not json', (async (method: string, params: unknown) => {
      seen.push([method, params]);
      return { group: { id: 'g', kind: 'turn', label: 'x' } };
    }) as never);
    assert.equal(problem, undefined);
    assert.deepEqual(seen, [['stepStart', { kind: 'turn', label: 'Claude Code turn' }]]);
  });

  it('a boundary whose changes a safeguard holds says so, and the turn still opens and ends', async () => {
    const held = "a change waits for the user's approval (60 files deleted in this sync (limit 50))";
    const seen: string[] = [];
    const requester = (async (method: string) => {
      seen.push(method);
      return method === 'stepStart' ? { group: { id: 'g', kind: 'turn', label: 'x' }, held } : method === 'stepEnd' ? { closed: { id: 'g', kind: 'turn', label: 'x' }, paths: [], pathsTruncated: false, held } : { applied: 0, conflicts: [], skipped: 0, held };
    }) as never;
    assert.equal(await runHook('UserPromptSubmit', '{"prompt":"p"}', requester), `clud hook UserPromptSubmit: changes are not in the user's folder yet: ${held} (the turn goes on; they cross once the user lets them)`);
    assert.match((await runHook('Stop', '{}', requester)) ?? '', /^clud hook Stop: changes are not in the user's folder yet: a change waits/);
    assert.deepEqual(seen, ['stepStart', 'syncNow', 'stepEnd']);
  });

  it('the MCP server answers initialize and tools/list with a schema for each tool', async () => {
    const replies = await mcpSession(socketPath, [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '1' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} },
      { jsonrpc: '2.0', id: 3, method: 'ping' },
    ]);
    assert.equal(replies.size, 3, 'a notification gets no answer');
    const init = replies.get(1)!.result!;
    assert.equal(init.protocolVersion, '2025-06-18');
    assert.deepEqual((init.serverInfo as { name: string }).name, 'clud');
    const tools = replies.get(2)!.result!.tools as Array<{ name: string; description: string; inputSchema: { type: string } }>;
    assert.deepEqual(tools.map((tool) => tool.name), ['status', 'sync_now', 'checkpoint', 'history', 'undo_last_step']);
    for (const tool of tools) {
      assert.equal(tool.inputSchema.type, 'object');
      assert.ok(tool.description.length > 20);
    }
    assert.deepEqual(replies.get(3)!.result, {});
  });

  it('each tool works through the narrow channel: status, sync_now, checkpoint, history, undo_last_step', async () => {
    agent.agentWrites('notes.md', 'written by the agent');
    const replies = await mcpSession(socketPath, [call(1, 'status'), call(2, 'sync_now'), call(3, 'checkpoint', { label: 'before the refactor' }), call(4, 'history', { limit: 5 }), call(5, 'undo_last_step'), call(6, 'undo_last_step')]);
    assert.match(textOf(replies.get(1)), /sync: idle \(auto-sync continuous\)\nchanges are waiting to cross\nno conflicts/);
    assert.match(textOf(replies.get(2)), /synced: 1 change\(s\) carried/);
    // The flushed burst is the step the checkpoint names.
    assert.match(textOf(replies.get(3)), /checkpoint "before the refactor": the changes since the last step are one undoable step/);
    assert.match(textOf(replies.get(4)), /^1\. checkpoint "before the refactor" \(1 path\(s\)\) at /);
    assert.match(textOf(replies.get(5)), /^undid the checkpoint "before the refactor" \(1 path\(s\)\)/);
    assert.equal(replies.get(5)!.result!.isError, false);
    assert.equal(replies.get(6)!.result!.isError, true);
    assert.match(textOf(replies.get(6)), /^undo_last_step failed \(refused\): there is nothing to undo/);
    assertSameTree(await snapshotTree(sample.workspace.root), sample.before);
  });

  it('a checkpoint with nothing new since the last one records nothing', async () => {
    agent.agentWrites('a.txt', 'one');
    const replies = await mcpSession(socketPath, [call(1, 'checkpoint', { label: 'first draft' }), call(2, 'checkpoint', { label: 'again' }), call(3, 'history')]);
    assert.match(textOf(replies.get(1)), /the changes since the last step are one undoable step/);
    assert.match(textOf(replies.get(2)), /checkpoint "again": nothing changed since the last step, so no step was recorded/);
    assert.equal(textOf(replies.get(3)).split('\n').length, 1);
    assert.match(textOf(replies.get(3)), /^1\. checkpoint "first draft" \(1 path\(s\)\)/);
  });

  it('bad calls get JSON-RPC errors: unknown tool, invalid arguments, unknown method, broken JSON', async () => {
    const run = await runAgent(['mcp'], ['{broken', JSON.stringify(call(1, 'rm_rf')), JSON.stringify(call(2, 'checkpoint', { label: '' })), JSON.stringify(call(3, 'history', { limit: 'ten' })), JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'resources/list' })].join('\n') + '\n', socketPath);
    const replies = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: unknown; error: { code: number; message: string } });
    assert.deepEqual(replies.map((reply) => [reply.id, reply.error.code]), [[null, -32700], [1, -32602], [2, -32602], [3, -32602], [4, -32601]]);
    assert.match(replies[1]!.error.message, /unknown tool "rm_rf"; the tools are status, sync_now/);
    assert.match(replies[2]!.error.message, /invalid arguments for checkpoint: label/);
  });

  it('without the sync agent a tool says so as a tool error', async () => {
    await served.channel!.close();
    served.channel = undefined;
    const replies = await mcpSession(socketPath, [call(1, 'status')]);
    assert.equal(replies.get(1)!.result!.isError, true);
    assert.match(textOf(replies.get(1)), /status failed \(agent-unavailable\).*The sync agent is not running/);
    assert.equal(MCP_TOOLS.length, 5);
  });
});
