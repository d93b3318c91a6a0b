// Runs a command (Claude Code) in a workspace container against the fake Anthropic API
// (fakeAnthropic.ts), which runs in the same container on its loopback address, as the workspace
// user, for the length of the command. Everything goes through the real `clud exec`.
//
//   await installFakeAnthropic(dir, script);
//   const run = await runWithFakeAnthropic(dir, claudePrintCommand('rename the config loader'));
//   const requests = await fakeAnthropicRequests(dir);
//
// Or, for a Claude Code started some other way (`clud claude`, a terminal in VS Code), in the
// background, found through Claude Code's settings:
//
//   const fake = await startFakeAnthropicServer(dir);
//   await pointClaudeAt(dir, fake.baseUrl);
//   ...
//   await fake.stop();
import { API_KEY_FILE } from '../../src/core/containerLayout';
import type { FakeRequestRecord, FakeScript } from './fakeAnthropic';
import { scriptProblem } from './fakeAnthropic';
import { CLAUDE_CONFIG_FILE, CLAUDE_SETTINGS_FILE } from '../../src/core/host/codingAgent';
import { CONTAINER_WORKSPACE_PATH } from '../../src/core/containerLayout';
import { assertExit, helperProgram, runClud, waitFor, writeContainerFile } from './integration';
import type { CludRun } from './integration';

/** Where the fake's program, its script and its request log live in the container: coder's, outside /workspace (so none of it syncs). */
export const FAKE_ANTHROPIC_DIR = '/tmp/clud-fake-anthropic';
const PROGRAM = `${FAKE_ANTHROPIC_DIR}/fake-anthropic.js`;
const SCRIPT = `${FAKE_ANTHROPIC_DIR}/script.json`;
const LOG = `${FAKE_ANTHROPIC_DIR}/requests.jsonl`;
const URL_FILE = `${FAKE_ANTHROPIC_DIR}/url`;

/**
 * Claude Code's environment for a run against the fake: no traffic but the Messages API (no
 * telemetry, error reporting or update checks, which would wait for a network the container
 * lacks).
 */
export const CLAUDE_TEST_ENV: Readonly<Record<string, string>> = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
};

let bundle: string | undefined;

/** The fake and its entry point as one CommonJS script for the container's Node (built once per process). */
export function fakeAnthropicBundle(): string {
  bundle ??= helperProgram('fakeAnthropicMain.ts');
  return bundle;
}

/** Puts the fake and `script` into the container of `dir` (replacing an earlier script) and empties its request log. */
export async function installFakeAnthropic(dir: string, script: FakeScript): Promise<void> {
  const problem = scriptProblem(script);
  if (problem) throw new Error(`fake Anthropic API: ${problem}`);
  await writeContainerFile(dir, PROGRAM, fakeAnthropicBundle());
  await writeContainerFile(dir, SCRIPT, JSON.stringify(script, null, 2));
  await writeContainerFile(dir, LOG, '');
}

/** `claude -p PROMPT` printing its events as JSON lines, with permission prompts off (nobody is there to answer them). */
export function claudePrintCommand(prompt: string, extraArgs: string[] = []): string[] {
  return ['claude', '-p', prompt, '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions', ...extraArgs];
}

/**
 * Runs `command` in /workspace as the workspace user, with the fake listening beside it and
 * ANTHROPIC_BASE_URL pointing at it. The fake accepts only the key Clud stored for Claude Code
 * (the tmpfs file its apiKeyHelper prints), so a run also proves the key's path.
 */
export async function runWithFakeAnthropic(dir: string, command: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CludRun> {
  const env = Object.entries({ ...CLAUDE_TEST_ENV, ...options.env }).map(([name, value]) => `${name}=${value}`);
  return runClud(['exec', dir, '--', 'env', ...env, 'node', PROGRAM, '--script', SCRIPT, '--log', LOG, '--api-key-file', API_KEY_FILE, '--', ...command], { timeoutMs: options.timeoutMs ?? 300_000 });
}

/** Every request the fake received since it was installed, in order. */
export async function fakeAnthropicRequests(dir: string): Promise<FakeRequestRecord[]> {
  const run = await runClud(['exec', dir, '--', 'cat', LOG]);
  assertExit(run, 0);
  return run.stdout
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as FakeRequestRecord);
}

/** The JSON lines Claude Code printed with `--output-format stream-json` (other lines are left out). */
export function streamJsonEvents(stdout: string): Array<Record<string, unknown> & { type: string }> {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown> & { type: string });
}

/** The fake serving in the background in the container; `stop()` ends it. */
export interface FakeAnthropicServer {
  /** Its address inside the container (http://127.0.0.1:PORT). */
  baseUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts the installed fake in the background in the container of `dir`, as the workspace user,
 * serving the installed script until stopped (or until the container stops).
 */
export async function startFakeAnthropicServer(dir: string): Promise<FakeAnthropicServer> {
  const start = `rm -f ${URL_FILE} && node ${PROGRAM} --script ${SCRIPT} --log ${LOG} --api-key-file ${API_KEY_FILE} --url-file ${URL_FILE} > ${FAKE_ANTHROPIC_DIR}/server.out 2>&1 & echo $!`;
  const run = await runClud(['exec', dir, '--', 'sh', '-c', start]);
  assertExit(run, 0);
  const pid = run.stdout.trim();
  const baseUrl = await waitFor('the fake Anthropic API to listen', async () => {
    const url = await runClud(['exec', dir, '--', 'cat', URL_FILE]);
    return url.exitCode === 0 && url.stdout.trim() ? url.stdout.trim() : undefined;
  });
  return {
    baseUrl,
    async stop() {
      assertExit(await runClud(['exec', dir, '--', 'kill', pid]), 0);
    },
  };
}

/** Merges `patch` into a JSON file of the workspace user's in the container, objects key by key (node, as that user). */
export async function mergeJsonFile(dir: string, file: string, patch: Record<string, unknown>): Promise<void> {
  const script = `const fs = require('fs');
const [file, patch] = [process.argv[1], JSON.parse(process.argv[2])];
let current = {};
try { current = JSON.parse(fs.readFileSync(file, 'utf8')); } catch {}
const isObject = (item) => typeof item === 'object' && item !== null && !Array.isArray(item);
const merge = (into, from) => {
  for (const [key, value] of Object.entries(from)) into[key] = isObject(into[key]) && isObject(value) ? merge(into[key], value) : value;
  return into;
};
fs.writeFileSync(file, JSON.stringify(merge(current, patch), null, 2));`;
  assertExit(await runClud(['exec', dir, '--', 'node', '-e', script, file, JSON.stringify(patch)]), 0);
}

/**
 * Points every later Claude Code run in the container at `baseUrl`, through its user settings
 * (`env`), and lets an interactive session start without a person: the first-run onboarding
 * (which checks that api.anthropic.com answers), the question whether /workspace is trusted, and
 * the confirmation of --dangerously-skip-permissions are marked as done.
 */
export async function pointClaudeAt(dir: string, baseUrl: string): Promise<void> {
  await mergeJsonFile(dir, CLAUDE_SETTINGS_FILE, { env: { ...CLAUDE_TEST_ENV, ANTHROPIC_BASE_URL: baseUrl }, skipDangerousModePermissionPrompt: true });
  await mergeJsonFile(dir, CLAUDE_CONFIG_FILE, { hasCompletedOnboarding: true, projects: { [CONTAINER_WORKSPACE_PATH]: { hasTrustDialogAccepted: true } } });
}
