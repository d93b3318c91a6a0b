// A real Claude Code turn in the workspace container: the Claude Code of the image, run by `clud
// exec` as the workspace user in /workspace, talks to a scripted stand-in for the Anthropic API on
// the container's loopback address (test/helpers/fakeAnthropic.ts). The script's tool calls
// (Read, Write, Edit, Bash, and an MCP server's tool) change /workspace; Claude Code's hooks fire
// around the turn (the test's own beside Clud's); Clud's Stop hook carries the turn's changes to the
// host as one undo step, which is undone from there.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { CLAUDE_SETTINGS_FILE } from '../../src/core/host/codingAgent';
import type { FakeRequestRecord, FakeScript } from '../helpers/fakeAnthropic';
import { toolUseId } from '../helpers/fakeAnthropic';
import { claudePrintCommand, fakeAnthropicRequests, installFakeAnthropic, mergeJsonFile, pointClaudeAt, runWithFakeAnthropic, startFakeAnthropicServer, streamJsonEvents } from '../helpers/fakeAnthropicContainer';
import {
  CLI_PATH,
  INTEGRATION_TIMEOUT_MS,
  TEST_ENV,
  TestScope,
  apiKeyInput,
  cludUp,
  appliedChanges,
  assertExit,
  assertTreesEqual,
  cludSync,
  containerTree,
  describeRun,
  dockerExec,
  hashTree,
  readContainerFile,
  requireDocker,
  runClud,
  runCludJson,
  shellQuote,
  waitFor,
  writeHost,
} from '../helpers/integration';
import type { CludRun, Tree } from '../helpers/integration';

const FIRST_PROMPT = 'rename the config loader';
const SECOND_PROMPT = 'note the rename in the changelog';

const LOADER = 'export function loadConfig(): Record<string, string> {\n  return { mode: "dev" };\n}\n';
const MAIN = 'import { loadConfig } from "./config/loader";\n\nconsole.log(loadConfig());\n';
const RENAMED_MAIN = MAIN.replace('./config/loader', './config/configLoader');
const CONFIG_DOC = '# Configuration\n\n`loadConfig` lives in src/config/configLoader.ts.\n';
const CHANGELOG = '# Changelog\n\n- first release\n';
const NEW_CHANGELOG = '# Changelog\n\n- the config loader is now src/config/configLoader.ts\n- first release\n';

const PROJECT = {
  'README.md': '# app\n',
  'CHANGELOG.md': CHANGELOG,
  'src/main.ts': MAIN,
  'src/config/loader.ts': LOADER,
};

/**
 * Two turns, as a model would play them. The first renames a file the way Claude Code does it
 * (Write the new one, Edit the import, `rm` the old one through Bash; Edit needs a Read first) and
 * writes a document through the filesystem MCP server; the second, in the same conversation
 * (`--continue`), edits one more file, after a Read that fails (there is no HISTORY.md).
 */
const SCRIPT: FakeScript = {
  turns: [
    {
      prompt: FIRST_PROMPT,
      responses: [
        {
          content: [
            { type: 'text', text: 'Let me look at the loader and where it is used.' },
            { type: 'tool_use', name: 'Read', input: { file_path: '/workspace/src/config/loader.ts' } },
            { type: 'tool_use', name: 'Read', input: { file_path: '/workspace/src/main.ts' } },
          ],
        },
        {
          content: [
            { type: 'tool_use', name: 'Write', input: { file_path: '/workspace/src/config/configLoader.ts', content: LOADER } },
            { type: 'tool_use', name: 'Edit', input: { file_path: '/workspace/src/main.ts', old_string: './config/loader', new_string: './config/configLoader' } },
            { type: 'tool_use', name: 'Bash', input: { command: 'rm src/config/loader.ts', description: 'Remove the old loader' } },
          ],
        },
        { content: [{ type: 'tool_use', name: 'mcp__filesystem__write_file', input: { path: '/workspace/CONFIGURATION.md', content: CONFIG_DOC } }] },
        { content: [{ type: 'text', text: 'Renamed src/config/loader.ts to src/config/configLoader.ts and updated its import.' }] },
      ],
    },
    {
      prompt: SECOND_PROMPT,
      responses: [
        {
          content: [
            { type: 'tool_use', name: 'Read', input: { file_path: '/workspace/CHANGELOG.md' } },
            { type: 'tool_use', name: 'Read', input: { file_path: '/workspace/HISTORY.md' } },
          ],
        },
        { content: [{ type: 'tool_use', name: 'Edit', input: { file_path: '/workspace/CHANGELOG.md', old_string: '- first release', new_string: '- the config loader is now src/config/configLoader.ts\n- first release' } }] },
        { content: [{ type: 'text', text: 'Added the rename to the changelog.' }] },
      ],
    },
  ],
};

/** A session in a terminal, as a person would have it (`clud claude`, no prompt flags): one tool call, then the answer. */
const TERMINAL_PROMPT = 'add a license file';
const LICENSE = 'MIT License\n\nCopyright (c) the app authors\n';
const TERMINAL_SCRIPT: FakeScript = {
  turns: [
    {
      prompt: TERMINAL_PROMPT,
      responses: [{ content: [{ type: 'tool_use', name: 'Write', input: { file_path: '/workspace/LICENSE', content: LICENSE } }] }, { content: [{ type: 'text', text: 'Added a LICENSE file.' }] }],
    },
  ],
};

/**
 * Runs `command` on a pseudo-terminal of this machine (util-linux `script`, in every Debian), so
 * the program under it sees a TTY as in a person's terminal; `type` sends keys to it.
 */
function onTerminal(command: string[]): { type(keys: string): void; output(): string; exited: Promise<number> } {
  const env: Record<string, string | undefined> = { ...process.env, ...TEST_ENV, TERM: 'xterm-256color' };
  delete env.CLUD_PROGRESS;
  const child = spawn('script', ['--quiet', '--flush', '--return', '--command', command.map(shellQuote).join(' '), '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  return { type: (keys) => child.stdin.write(keys), output: () => output, exited };
}

/** Where the test's hooks append what Claude Code hands them (one JSON object per line): coder's, outside /workspace. */
const HOOK_LOG = '/tmp/clud-test-hooks.jsonl';
const HOOK_EVENTS = ['UserPromptSubmit', 'PostToolUse', 'PostToolUseFailure', 'Stop'] as const;

/**
 * Adds a command hook for each of HOOK_EVENTS to Claude Code's user settings in the container
 * (where Clud keeps the apiKeyHelper), keeping what is there.
 */
async function installTestHooks(dir: string): Promise<void> {
  const hook = { hooks: [{ type: 'command', command: `{ cat; echo; } >> ${HOOK_LOG}` }] };
  // Beside Clud's own hooks (a turn's start and end), which the arrays would otherwise replace.
  const current = (JSON.parse(await readContainerFile(dir, CLAUDE_SETTINGS_FILE)) as { hooks?: Record<string, unknown[]> }).hooks ?? {};
  await mergeJsonFile(dir, CLAUDE_SETTINGS_FILE, { hooks: Object.fromEntries(HOOK_EVENTS.map((event) => [event, [...(current[event] ?? []), hook]])) });
}

interface HookInput {
  hook_event_name: string;
  prompt?: string;
  tool_name?: string;
  last_assistant_message?: string;
}

async function hookInputs(dir: string): Promise<HookInput[]> {
  const run = await runClud(['exec', dir, '--', 'cat', HOOK_LOG]);
  assertExit(run, 0);
  return run.stdout
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as HookInput);
}

/** The result event Claude Code ends a `--output-format stream-json` run with. */
function resultOf(run: CludRun): Record<string, unknown> {
  const result = streamJsonEvents(run.stdout).filter((event) => event.type === 'result');
  assert.equal(result.length, 1, describeRun(run));
  return result[0]!;
}

async function existsInContainer(dir: string, relative: string): Promise<boolean> {
  return (await dockerExec(dir, ['test', '-e', relative])).exitCode === 0;
}

describe('integration: a Claude Code turn in the container, against a scripted Anthropic API', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  const key = `sk-ant-test-${randomBytes(12).toString('hex')}`;
  let dir = '';
  let original: Tree;
  let firstTurn: CludRun;
  let requestsOfFirstTurn: FakeRequestRecord[] = [];

  before(async function () {
    await requireDocker();
    dir = await scope.project(PROJECT);
    original = await hashTree(dir);
    // The key arrives on standard input; Claude Code gets it only through its apiKeyHelper.
    await cludUp(dir, ['--api-key', '-'], apiKeyInput(key));
    await installTestHooks(dir);
    await installFakeAnthropic(dir, SCRIPT);
    firstTurn = await runWithFakeAnthropic(dir, claudePrintCommand(FIRST_PROMPT));
    requestsOfFirstTurn = await fakeAnthropicRequests(dir);
  });

  after(async function () {
    await scope.cleanup();
  });

  it("plays the script's first turn to its end, with the key Clud stored, through the apiKeyHelper", function () {
    assertExit(firstTurn, 0);
    const events = streamJsonEvents(firstTurn.stdout);
    const init = events.find((event) => event.type === 'system' && event.subtype === 'init');
    assert.ok(init, describeRun(firstTurn));
    assert.equal(init.apiKeySource, 'apiKeyHelper', describeRun(firstTurn));
    const result = resultOf(firstTurn);
    assert.equal(result.subtype, 'success', describeRun(firstTurn));
    assert.equal(result.is_error, false);
    assert.equal(result.result, 'Renamed src/config/loader.ts to src/config/configLoader.ts and updated its import.');
    // With non-essential traffic off, Claude Code calls nothing but the Messages API, streaming:
    // one request per answer of the model, each answered from the script in order.
    assert.deepEqual(
      requestsOfFirstTurn.map((request) => `${request.method} ${request.path} ${request.kind} ${request.responseIndex}`),
      ['POST /v1/messages scripted 0', 'POST /v1/messages scripted 1', 'POST /v1/messages scripted 2', 'POST /v1/messages scripted 3'],
      JSON.stringify(requestsOfFirstTurn.map(({ body: _body, ...rest }) => rest)),
    );
    const scripted = requestsOfFirstTurn;
    assert.ok(
      requestsOfFirstTurn.every((request) => request.apiKeyMatched),
      'a request came without the stored key',
    );
    assert.ok(scripted.every((request) => request.stream === true));
    assert.match(scripted[0]!.lastUserText!, new RegExp(FIRST_PROMPT));
  });

  it('carries out the tool calls in /workspace (Write creates, Edit changes, Bash `rm` deletes), and the end of the turn carries them to the host with no sync asked for', async function () {
    const results = requestsOfFirstTurn.flatMap((request) => request.toolResults ?? []);
    assert.deepEqual(
      results.filter((result) => result.isError),
      [],
    );
    // Claude Code runs read-only tools of one answer at once, so their results come back in either order.
    assert.deepEqual(
      results.map((result) => result.toolUseId).sort(),
      [toolUseId(0, 1), toolUseId(0, 2), toolUseId(1, 0), toolUseId(1, 1), toolUseId(1, 2), toolUseId(2, 0)],
    );
    assert.equal(await readContainerFile(dir, 'src/config/configLoader.ts'), LOADER);
    assert.equal(await readContainerFile(dir, 'src/main.ts'), RENAMED_MAIN);
    assert.equal(await existsInContainer(dir, 'src/config/loader.ts'), false);
    // Auto-sync is off in the tests: Clud's Stop hook carried the turn across before its step closed.
    assertTreesEqual(await hashTree(dir), await containerTree(dir), ['host', 'container']);
    assert.notDeepEqual(await hashTree(dir), original);
    // The Read tool's result went back to the model with the file's text.
    assert.match(results.find((result) => result.toolUseId === toolUseId(0, 1))!.text, /loadConfig\(\): Record/);
  });

  it('reaches an MCP server: the filesystem server wrote the file, and its answer went back to the model', async function () {
    assert.equal(await readContainerFile(dir, 'CONFIGURATION.md'), CONFIG_DOC);
    const result = requestsOfFirstTurn.flatMap((request) => request.toolResults ?? []).find((candidate) => candidate.toolUseId === toolUseId(2, 0));
    assert.ok(result);
    assert.match(result.text, /Successfully wrote to \/workspace\/CONFIGURATION\.md/);
  });

  it("fires Claude Code's hooks from the user settings: UserPromptSubmit with the prompt, PostToolUse per tool call, then Stop", async function () {
    const inputs = await hookInputs(dir);
    assert.deepEqual(
      inputs.map((input) => input.hook_event_name),
      ['UserPromptSubmit', 'PostToolUse', 'PostToolUse', 'PostToolUse', 'PostToolUse', 'PostToolUse', 'PostToolUse', 'Stop'],
      JSON.stringify(inputs),
    );
    assert.equal(inputs[0]!.prompt, FIRST_PROMPT);
    assert.deepEqual(inputs.filter((input) => input.hook_event_name === 'PostToolUse').map((input) => input.tool_name).sort(), ['Bash', 'Edit', 'Read', 'Read', 'Write', 'mcp__filesystem__write_file']);
    assert.equal(inputs.at(-1)!.last_assistant_message, 'Renamed src/config/loader.ts to src/config/configLoader.ts and updated its import.');
  });

  it("the turn is one undo step labelled with its prompt; undoing it restores the folder byte for byte, /workspace too after the next sync", async function () {
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(appliedChanges(report), [], 'the turn had carried everything already');
    const history = await runCludJson(['history', dir]);
    const [turn] = history.json.steps as Array<{ group?: { kind: string; label: string } }>;
    assert.deepEqual(turn?.group && [turn.group.kind, turn.group.label], ['turn', FIRST_PROMPT], describeRun(history.run));
    assert.equal(await readFile(path.join(dir, 'src/main.ts'), 'utf8'), RENAMED_MAIN);

    const undo = await runCludJson(['undo', dir]);
    assertExit(undo.run, 0);
    assertTreesEqual(await hashTree(dir), original, ['host', 'before the turn']);
    await cludSync('sync', dir);
    assertTreesEqual(await containerTree(dir), original, ['container', 'before the turn']);
  });

  it('a second turn continues the conversation, and a failed tool call fires PostToolUseFailure; a host edit made after its sync is a barrier that undo will not cross', async function () {
    const second = await runWithFakeAnthropic(dir, claudePrintCommand(SECOND_PROMPT, ['--continue']));
    assertExit(second, 0);
    assert.equal(resultOf(second).result, 'Added the rename to the changelog.');
    const requests = (await fakeAnthropicRequests(dir)).filter((request) => request.kind === 'scripted');
    assert.deepEqual(
      requests.map((request) => request.responseIndex).slice(-3),
      [4, 5, 6],
      JSON.stringify(requests.map((request) => request.responseIndex)),
    );
    const failed = requests.flatMap((request) => request.toolResults ?? []).find((result) => result.toolUseId === toolUseId(4, 1));
    assert.equal(failed?.isError, true, JSON.stringify(failed));
    assert.equal(await readContainerFile(dir, 'CHANGELOG.md'), NEW_CHANGELOG);
    // The turn's hooks: a failed tool call fires PostToolUseFailure instead of PostToolUse.
    const inputs = await hookInputs(dir);
    const turn = inputs.slice(inputs.map((input) => input.hook_event_name).lastIndexOf('UserPromptSubmit'));
    assert.deepEqual(
      [turn[0], turn.at(-1)].map((input) => [input?.hook_event_name, input?.prompt]),
      [
        ['UserPromptSubmit', SECOND_PROMPT],
        ['Stop', undefined],
      ],
    );
    assert.deepEqual(
      turn
        .slice(1, -1)
        .map((input) => `${input.hook_event_name} ${input.tool_name}`)
        .sort(),
      ['PostToolUse Edit', 'PostToolUse Read', 'PostToolUseFailure Read'],
    );

    assert.equal(await readFile(path.join(dir, 'CHANGELOG.md'), 'utf8'), NEW_CHANGELOG, 'the turn carried its change');
    const mine = '# Changelog\n\n- my own words on the rename\n';
    await writeHost(dir, { 'CHANGELOG.md': mine });
    const refused = await runCludJson(['undo', dir]);
    assertExit(refused.run, 1);
    assert.match(String(refused.json.refused), /CHANGELOG\.md/, describeRun(refused.run));
    assert.equal(await readFile(path.join(dir, 'CHANGELOG.md'), 'utf8'), mine);
  });

  // Last: it leaves Claude Code's settings pointing at a fake that is gone.
  it('`clud claude` on a terminal: an interactive session, finding the fake through its settings, plays a turn and fires the same hooks', async function () {
    await installFakeAnthropic(dir, TERMINAL_SCRIPT);
    const fake = await startFakeAnthropicServer(dir);
    try {
      await pointClaudeAt(dir, fake.baseUrl);
      const hooksBefore = (await hookInputs(dir)).length;
      const terminal = onTerminal(['node', CLI_PATH, 'claude', dir, '--', '--dangerously-skip-permissions', TERMINAL_PROMPT]);
      const newHooks = async () => (await hookInputs(dir)).slice(hooksBefore);
      await waitFor('the Stop hook of the terminal session', async () => ((await newHooks()).some((input) => input.hook_event_name === 'Stop') ? true : undefined), 180_000).catch((error: unknown) => {
        terminal.type('\x03\x03');
        throw new Error(`${String(error)}; the terminal showed:\n${terminal.output().slice(-3000)}`);
      });
      // Clud's own Stop hook (it carries the turn to the host, then ends its step) may still run
      // after the test's has logged: a Ctrl-C then would interrupt it, not leave Claude Code.
      await waitFor('Clud\'s hooks to finish', async () => ((await dockerExec(dir, ['sh', '-c', 'pgrep -f "agent[.]js hook" || true'])).stdout.toString().trim() === '' ? true : undefined), 60_000);
      // Ctrl-C twice leaves Claude Code, as in a person's terminal.
      terminal.type('\x03');
      await new Promise((resolve) => setTimeout(resolve, 500));
      terminal.type('\x03');
      assert.equal(await terminal.exited, 0, terminal.output().slice(-3000));
      assert.deepEqual(
        (await newHooks()).map((input) => [input.hook_event_name, input.prompt ?? input.tool_name ?? input.last_assistant_message]),
        [
          ['UserPromptSubmit', TERMINAL_PROMPT],
          ['PostToolUse', 'Write'],
          ['Stop', 'Added a LICENSE file.'],
        ],
      );
      assert.equal(await readContainerFile(dir, 'LICENSE'), LICENSE);
      const requests = await fakeAnthropicRequests(dir);
      assert.deepEqual(
        requests.filter((request) => request.kind !== 'side').map((request) => `${request.kind} ${request.responseIndex}`),
        ['scripted 0', 'scripted 1'],
        JSON.stringify(requests.map(({ body: _body, ...rest }) => rest)),
      );
      assert.ok(requests.every((request) => request.apiKeyMatched));
    } finally {
      await fake.stop();
    }
  });
});
