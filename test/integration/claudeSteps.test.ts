// A real Claude Code turn as one undoable step: Claude Code of the image, run as the workspace
// user against the scripted Anthropic API (test/helpers/fakeAnthropic.ts), with the hooks and the
// Clud MCP server Clud configures. The turn edits, creates and deletes files and calls the Clud MCP
// server; its Stop hook carries its changes to the host before the step closes; the history shows
// the step under its prompt; undo restores the folder byte for byte, and a file the user edited
// meanwhile is a barrier.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { FakeScript } from '../helpers/fakeAnthropic';
import { toolUseId } from '../helpers/fakeAnthropic';
import { claudePrintCommand, fakeAnthropicRequests, installFakeAnthropic, runWithFakeAnthropic } from '../helpers/fakeAnthropicContainer';
import { INTEGRATION_TIMEOUT_MS, TestScope, apiKeyInput, assertExit, assertTreesEqual, cludUp, containerTree, describeRun, hashTree, readContainerFile, requireDocker, runClud, runCludJson, waitFor, writeHost } from '../helpers/integration';
import type { Tree } from '../helpers/integration';

const PROMPT = 'rename the config loader';
const LOADER = 'export function loadConfig() {\n  return {};\n}\n';
const MAIN = 'import { loadConfig } from "./config/loader";\n';
const PROJECT = { 'README.md': '# app\n', 'NOTES.md': 'notes\n', 'src/main.ts': MAIN, 'src/config/loader.ts': LOADER };

const SCRIPT: FakeScript = {
  turns: [
    {
      prompt: PROMPT,
      responses: [
        { content: [{ type: 'tool_use', name: 'Read', input: { file_path: '/workspace/src/main.ts' } }] },
        {
          content: [
            { type: 'tool_use', name: 'Write', input: { file_path: '/workspace/src/config/configLoader.ts', content: LOADER } },
            { type: 'tool_use', name: 'Edit', input: { file_path: '/workspace/src/main.ts', old_string: './config/loader', new_string: './config/configLoader' } },
            { type: 'tool_use', name: 'Bash', input: { command: 'rm src/config/loader.ts && echo more >> NOTES.md', description: 'Remove the old loader' } },
          ],
        },
        { content: [{ type: 'tool_use', name: 'mcp__clud__status', input: {} }] },
        { content: [{ type: 'text', text: 'Renamed the loader.' }] },
      ],
    },
  ],
};

describe('integration: a Claude Code turn is one undoable step (hooks, the Clud MCP server)', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  const key = `sk-ant-test-${randomBytes(12).toString('hex')}`;
  let dir = '';
  let original: Tree;

  before(async function () {
    await requireDocker();
    dir = await scope.project(PROJECT);
    original = await hashTree(dir);
    // Auto-sync off (the test default): only the turn's own hooks carry its changes.
    await cludUp(dir, ['--api-key', '-'], apiKeyInput(key));
    await installFakeAnthropic(dir, SCRIPT);
  });
  after(() => scope.cleanup());

  it('the turn runs with Clud\'s hooks and MCP server; at its end its changes are on the host, as one step labelled with its prompt', async function () {
    const turn = await runWithFakeAnthropic(dir, claudePrintCommand(PROMPT));
    assertExit(turn, 0);
    const requests = await fakeAnthropicRequests(dir);
    const results = requests.flatMap((request) => request.toolResults ?? []);
    const status = results.find((result) => result.toolUseId === toolUseId(2, 0));
    assert.ok(status && !status.isError, JSON.stringify(results));
    assert.match(status.text, /recording: turn "rename the config loader"/, `the Clud MCP server saw the turn being recorded: ${status.text}`);

    // No sync was asked for: the Stop hook carried the turn across before its step closed.
    assert.equal(await readFile(path.join(dir, 'src/config/configLoader.ts'), 'utf8'), LOADER);
    assert.equal(await readFile(path.join(dir, 'src/main.ts'), 'utf8'), MAIN.replace('./config/loader', './config/configLoader'));
    await assert.rejects(readFile(path.join(dir, 'src/config/loader.ts')));
    assertTreesEqual(await hashTree(dir), await containerTree(dir));

    const history = await runCludJson(['history', dir]);
    const steps = history.json.steps as Array<{ group?: { kind: string; label: string }; files: number }>;
    assert.equal(steps.length, 1, describeRun(history.run));
    assert.deepEqual(steps[0]!.group && { kind: steps[0]!.group.kind, label: steps[0]!.group.label }, { kind: 'turn', label: PROMPT });
    assert.equal(steps[0]!.files, 4);
    assert.match((await runClud(['history', dir])).stdout, /turn "rename the config loader"/);
  });

  it('a file the user edited since is a barrier; once it is put back, undo restores the folder byte for byte, and /workspace follows', async function () {
    const turnVersion = await readFile(path.join(dir, 'NOTES.md'), 'utf8');
    await writeHost(dir, { 'NOTES.md': 'the user wrote this\n' });
    const refused = await runCludJson(['undo', dir]);
    assertExit(refused.run, 1);
    assert.match(String(refused.json.refused), /NOTES\.md/);
    assert.equal(await readFile(path.join(dir, 'NOTES.md'), 'utf8'), 'the user wrote this\n', 'the user\'s edit wins');

    await writeHost(dir, { 'NOTES.md': turnVersion });
    const undo = await runCludJson(['undo', dir]);
    assertExit(undo.run, 0);
    assertTreesEqual(await hashTree(dir), original, ['host', 'before the turn']);
    // The next cycle brings /workspace back too (a sync here: auto-sync is off in the tests).
    assertExit(await runClud(['sync', dir]), 0);
    await waitFor('/workspace to be as before the turn', async () => ((await readContainerFile(dir, 'src/config/loader.ts')) === LOADER ? true : undefined), 60_000);
    assertTreesEqual(await containerTree(dir), original, ['container', 'before the turn']);
  });
});
