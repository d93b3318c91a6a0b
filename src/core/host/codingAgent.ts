// The coding agent's side of a workspace container: the agent-state volume and the key's tmpfs
// handed to the workspace user, Claude Code's configuration (MCP servers, the key helper), the API
// key, and the browser IDE. Everything goes through ContainerEngine; secrets only ever travel on
// an exec's standard input, never in argv, the environment or the container's configuration.
import { createServer } from 'node:net';
import {
  AGENT_HOME_PATH,
  API_KEY_FILE,
  API_KEY_HELPER_PATH,
  CLAUDE_CONFIG_DIR,
  CONTAINER_WORKSPACE_PATH,
  SECRETS_PATH,
  START_UI_PATH,
  UI_AUTH_ENV,
  WORKSPACE_USER,
} from '../containerLayout';
import type { ContainerEngine } from '../docker/engine';
import { CludError } from '../errors';
import { configuredMcpServers, mergeClaudeConfig, mergeClaudeSettings, withKeyHelper } from './mcp';
import type { McpServerEntry } from './mcp';

export const CLAUDE_CONFIG_FILE = `${CLAUDE_CONFIG_DIR}/.claude.json`;
export const CLAUDE_SETTINGS_FILE = `${CLAUDE_CONFIG_DIR}/settings.json`;

export type UiAuth = 'none' | 'password';

interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, with `input` (if any) as its whole standard input. */
export async function runInContainer(engine: ContainerEngine, containerId: string, cmd: string[], options: { user: string; input?: string; env?: Record<string, string> }): Promise<ExecResult> {
  const exec = await engine.exec(containerId, { cmd, user: options.user, workingDir: CONTAINER_WORKSPACE_PATH, attachStdin: options.input !== undefined, env: options.env });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  exec.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  exec.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  if (options.input !== undefined) exec.stdin.end(options.input);
  const exitCode = await exec.exitCode;
  return { exitCode, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
}

/**
 * Gives the agent-state volume and the secrets tmpfs to the workspace user. Runs as root after
 * start-up, when `prepare` has given coder the host folder owner's UID; the volume is walked only
 * when its owner is not coder already (a new volume, or a folder of another owner).
 */
export async function prepareAgentHome(engine: ContainerEngine, containerId: string): Promise<void> {
  const script = [
    'set -e',
    `chown ${WORKSPACE_USER}: ${SECRETS_PATH} && chmod 0700 ${SECRETS_PATH}`,
    `[ "$(stat -c %u ${AGENT_HOME_PATH})" = "$(id -u ${WORKSPACE_USER})" ] || chown -R ${WORKSPACE_USER}: ${AGENT_HOME_PATH}`,
    `chmod 0700 ${AGENT_HOME_PATH}`,
  ].join('\n');
  const result = await runInContainer(engine, containerId, ['sh', '-c', script], { user: 'root' });
  if (result.exitCode !== 0) throw new CludError('agent-failed', `could not prepare the coding agent's folders: ${lastLine(result.stderr)}`, 'Run `clud up --rebuild`; if it persists, `clud down --purge` resets the agent state.');
}

/** Writes a file as the workspace user, from stdin, by temp file and rename, readable only by that user. */
async function writeAsWorkspaceUser(engine: ContainerEngine, containerId: string, file: string, content: string): Promise<void> {
  const script = 'umask 077 && cat > "$1.tmp" && mv "$1.tmp" "$1"';
  const result = await runInContainer(engine, containerId, ['sh', '-c', script, 'write', file], { user: WORKSPACE_USER, input: content });
  if (result.exitCode !== 0) throw new CludError('agent-failed', `could not write ${file} in the container: ${lastLine(result.stderr)}`, 'Run `clud logs` and `clud up` again.');
}

/** Writes one of Claude Code's JSON files as the workspace user: indented, with a final newline. */
function writeJson(engine: ContainerEngine, containerId: string, file: string, value: Record<string, unknown>): Promise<void> {
  return writeAsWorkspaceUser(engine, containerId, file, JSON.stringify(value, null, 2) + '\n');
}

async function readJson(engine: ContainerEngine, containerId: string, file: string): Promise<Record<string, unknown>> {
  const content = await engine.readFile(containerId, file).catch(() => undefined);
  if (!content) return {};
  try {
    const value = JSON.parse(content.toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    throw new CludError('agent-failed', `${file} in the container is not valid JSON`, 'Fix or delete it (`clud exec -- rm FILE`), then run `clud up` again.');
  }
}

/**
 * Puts Clud's MCP servers in Claude Code's user scope, and its hooks, and its key helper while a
 * key is stored, in Claude Code's settings.
 */
export async function configureClaude(engine: ContainerEngine, containerId: string, servers: Record<string, McpServerEntry>): Promise<void> {
  const config = mergeClaudeConfig(await readJson(engine, containerId, CLAUDE_CONFIG_FILE), servers);
  await writeJson(engine, containerId, CLAUDE_CONFIG_FILE, config);
  const settings = mergeClaudeSettings(await readJson(engine, containerId, CLAUDE_SETTINGS_FILE), { path: API_KEY_HELPER_PATH, keyStored: await hasApiKey(engine, containerId) });
  await writeJson(engine, containerId, CLAUDE_SETTINGS_FILE, settings);
}

/**
 * Names Clud's key helper in Claude Code's settings if and only if a key is stored now (see
 * withKeyHelper): before Claude Code starts, after the key changed, or after a restart of the
 * container took it away. Writes only when that changes them.
 */
export async function settleKeyHelper(engine: ContainerEngine, containerId: string): Promise<void> {
  const existing = await readJson(engine, containerId, CLAUDE_SETTINGS_FILE);
  const settings = withKeyHelper(existing, { path: API_KEY_HELPER_PATH, keyStored: await hasApiKey(engine, containerId) });
  if (JSON.stringify(settings) !== JSON.stringify(existing)) await writeJson(engine, containerId, CLAUDE_SETTINGS_FILE, settings);
}

/** The MCP servers in Claude Code's user scope, as its configuration in the container lists them. */
export async function readMcpServers(engine: ContainerEngine, containerId: string): Promise<string[]> {
  return configuredMcpServers(await readJson(engine, containerId, CLAUDE_CONFIG_FILE).catch(() => ({})));
}

/** An empty or multi-line key is refused before anything starts. */
export function validateApiKey(key: string): string {
  const trimmed = key.trim();
  if (!trimmed) throw new CludError('bad-input', 'the API key is empty', 'Pass the key with --api-key KEY, ANTHROPIC_API_KEY, or `--api-key -` and the key on standard input.');
  if (/\s/.test(trimmed)) throw new CludError('bad-input', 'the API key contains white space', 'Pass the key alone, on one line.');
  return trimmed;
}

/** Stores the key on the container's tmpfs, for Claude Code's `apiKeyHelper`. No rebuild, no restart. */
export async function writeApiKey(engine: ContainerEngine, containerId: string, key: string): Promise<void> {
  await writeAsWorkspaceUser(engine, containerId, API_KEY_FILE, validateApiKey(key) + '\n');
}

/** Whether a key is stored: asked inside the container, since Docker's archive API does not see into a tmpfs. */
export async function hasApiKey(engine: ContainerEngine, containerId: string): Promise<boolean> {
  return (await runInContainer(engine, containerId, ['test', '-s', API_KEY_FILE], { user: WORKSPACE_USER })).exitCode === 0;
}

/**
 * Starts code-server as the workspace user in /workspace unless it runs already. Returns whether
 * this call started it (only then does a new password take effect).
 */
export async function startUi(engine: ContainerEngine, containerId: string, auth: UiAuth, password?: string): Promise<'started' | 'running'> {
  const result = await runInContainer(engine, containerId, [START_UI_PATH], {
    user: WORKSPACE_USER,
    env: { [UI_AUTH_ENV]: auth },
    input: auth === 'password' ? `${password ?? ''}\n` : undefined,
  });
  const word = result.stdout.trim().split('\n').pop();
  if (result.exitCode !== 0 || (word !== 'started' && word !== 'running')) {
    throw new CludError('ui-failed', `code-server did not start: ${lastLine(result.stderr) || `exit code ${result.exitCode}`}`, 'Run `clud exec -- cat /tmp/clud-ui.log` to see why, then `clud up --ui` again.');
  }
  return word;
}

/** Waits until code-server answers HTTP on the host port. */
export async function waitForUi(url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    // A timer of our own: AbortSignal.timeout's is unref'd, and while docker-proxy holds a
    // connection to a code-server that is not listening yet nothing else keeps Node's loop alive.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 5000);
    try {
      const response = await fetch(url, { redirect: 'manual', signal: abort.signal });
      if (response.status < 500) return;
      lastError = `HTTP ${response.status}`;
    } catch (error) {
      lastError = (error as Error).message;
    } finally {
      clearTimeout(timer);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new CludError('ui-failed', `code-server did not answer on ${url} (${lastError})`, 'Run `clud exec -- cat /tmp/clud-ui.log` to see why.');
}

/** Whether a port on the host's loopback is free, by listening on it for a moment. */
export function loopbackPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}
