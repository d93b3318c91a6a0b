// The MCP servers Clud configures for Claude Code inside the container: a small built-in catalogue
// of servers installed in the image (container/Dockerfile pins their versions), the defaults, and
// the merge into Claude Code's user-scope configuration. Pure: no Docker, no file system.
import { z } from 'zod';
import { AGENT_PATH, CLAUDE_CONFIG_DIR, CONTAINER_WORKSPACE_PATH } from '../containerLayout';
import { CludError } from '../errors';

/** One stdio MCP server as Claude Code's configuration stores it. */
export const McpServerEntry = z
  .object({
    command: z.string().min(1),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
  })
  .strict();
export type McpServerEntry = z.infer<typeof McpServerEntry>;

const serverName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'must use only letters, digits, "_" and "-"');

/** A setting's item: a catalogue name, or a full entry with its name. */
export const McpServerSetting = z.union([serverName, McpServerEntry.extend({ name: serverName }).strict()]);
export type McpServerSetting = z.infer<typeof McpServerSetting>;

/**
 * Servers installed in the image. clud (Clud's own, `agent mcp`: status, sync_now, checkpoint,
 * history, undo_last_step over the narrow channel), filesystem (the reference server, rooted at /workspace), git
 * (@cyanheads/git-mcp-server: the reference git and fetch servers are Python packages that are
 * neither on npm nor in Debian) and fetch (mcp-fetch-server, which refuses private addresses) run
 * by default; the others are there to be named.
 */
export const MCP_CATALOGUE: Readonly<Record<string, McpServerEntry>> = {
  clud: { command: 'node', args: [AGENT_PATH, 'mcp'], env: {} },
  filesystem: { command: 'mcp-server-filesystem', args: [CONTAINER_WORKSPACE_PATH], env: {} },
  git: { command: 'git-mcp-server', args: [], env: { MCP_TRANSPORT_TYPE: 'stdio', MCP_LOG_LEVEL: 'warning', GIT_BASE_DIR: CONTAINER_WORKSPACE_PATH } },
  fetch: { command: 'mcp-fetch-server', args: [], env: {} },
  memory: { command: 'mcp-server-memory', args: [], env: { MEMORY_FILE_PATH: `${CLAUDE_CONFIG_DIR}/memory.jsonl` } },
  'sequential-thinking': { command: 'mcp-server-sequential-thinking', args: [], env: {} },
};

export const DEFAULT_MCP_SERVERS: readonly string[] = ['clud', 'filesystem', 'git', 'fetch'];

/**
 * The servers to configure: the defaults plus the settings' servers, in order; a full entry with
 * a catalogue name replaces that server. An unknown name is an error naming it.
 */
export function resolveMcpServers(settings: readonly McpServerSetting[], settingName = 'mcpServers'): Record<string, McpServerEntry> {
  const servers: Record<string, McpServerEntry> = {};
  for (const name of DEFAULT_MCP_SERVERS) servers[name] = MCP_CATALOGUE[name]!;
  for (const setting of settings) {
    if (typeof setting === 'string') {
      const entry = MCP_CATALOGUE[setting];
      if (!entry) {
        throw new CludError('bad-input', `unknown MCP server "${setting}" in ${settingName}`, `Name one of ${Object.keys(MCP_CATALOGUE).join(', ')}, or give a full entry {"name", "command", "args", "env"}.`);
      }
      servers[setting] = entry;
    } else {
      const { name, ...entry } = setting;
      servers[name] = entry;
    }
  }
  return servers;
}

/**
 * Parses a list as the CLI and CLUD_MCP_SERVERS take it: comma-separated names, or a JSON array
 * of names and entries. An invalid entry is an error naming its place.
 */
export function parseMcpServerList(text: string, source: string): McpServerSetting[] {
  const trimmed = text.trim();
  let items: unknown[];
  if (trimmed.startsWith('[')) {
    try {
      items = JSON.parse(trimmed) as unknown[];
    } catch (error) {
      throw new CludError('bad-input', `${source} is not valid JSON: ${(error as Error).message}`, 'Give comma-separated names, or a JSON array of names and {"name", "command", "args", "env"} entries.');
    }
    if (!Array.isArray(items)) throw new CludError('bad-input', `${source} must be a JSON array`, 'Give comma-separated names, or a JSON array.');
  } else {
    items = trimmed.split(',').map((name) => name.trim()).filter(Boolean);
  }
  return items.map((item, index) => {
    const parsed = McpServerSetting.safeParse(item);
    if (!parsed.success) {
      const label = typeof item === 'string' ? `"${item}"` : `entry ${index + 1}`;
      throw new CludError('bad-input', `invalid MCP server ${label} in ${source}: ${parsed.error.issues[0]!.message}`, 'An entry is a catalogue name or {"name", "command", "args", "env"}.');
    }
    return parsed.data;
  });
}

/** The key in Claude Code's configuration where Clud notes which user-scope servers it put there. */
export const CLUD_MANAGED_KEY = 'cludManagedMcpServers';

/**
 * Claude Code's user configuration (`$CLAUDE_CONFIG_DIR/.claude.json`) with Clud's servers in its
 * user scope (`mcpServers`). Servers Clud added earlier and no longer wants are removed; servers
 * the user added themselves (`claude mcp add -s user`) are kept; everything else is untouched.
 */
export function mergeClaudeConfig(existing: Record<string, unknown>, servers: Record<string, McpServerEntry>): Record<string, unknown> {
  const previous = new Set(Array.isArray(existing[CLUD_MANAGED_KEY]) ? (existing[CLUD_MANAGED_KEY] as unknown[]).filter((name): name is string => typeof name === 'string') : []);
  const current = isRecord(existing.mcpServers) ? existing.mcpServers : {};
  const mcpServers: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(current)) if (!previous.has(name) && !(name in servers)) mcpServers[name] = entry;
  for (const [name, entry] of Object.entries(servers)) mcpServers[name] = { type: 'stdio', command: entry.command, args: entry.args, env: entry.env };
  return { ...existing, mcpServers, [CLUD_MANAGED_KEY]: Object.keys(servers) };
}

/** The hooks Clud puts in Claude Code's user settings: `agent hook <Event>` marks a turn's start and end (src/agent/hook.ts). */
export const CLUD_HOOK_COMMAND = `node ${AGENT_PATH} hook`;
/** Seconds Claude Code gives each hook: Stop carries the turn's changes across before the turn's step ends. */
export const CLUD_HOOKS: Readonly<Record<string, number>> = { UserPromptSubmit: 30, Stop: 300, SessionEnd: 30 };

/**
 * Claude Code's settings (`$CLAUDE_CONFIG_DIR/settings.json`) with Clud's hooks, and Clud's key
 * helper while a key is stored (see withKeyHelper). The user's own hooks stay; Clud's (recognised
 * by their command) are replaced, so running it again changes nothing.
 */
export function mergeClaudeSettings(existing: Record<string, unknown>, keyHelper: { path: string; keyStored: boolean }): Record<string, unknown> {
  const hooks: Record<string, unknown> = isRecord(existing.hooks) ? { ...existing.hooks } : {};
  const isClud = (hook: unknown) => isRecord(hook) && typeof hook.command === 'string' && hook.command.startsWith(CLUD_HOOK_COMMAND);
  for (const [event, timeout] of Object.entries(CLUD_HOOKS)) {
    const matchers = (Array.isArray(hooks[event]) ? (hooks[event] as unknown[]) : [])
      .map((matcher) => (isRecord(matcher) && Array.isArray(matcher.hooks) ? { ...matcher, hooks: matcher.hooks.filter((hook) => !isClud(hook)) } : matcher))
      .filter((matcher) => !(isRecord(matcher) && Array.isArray(matcher.hooks) && matcher.hooks.length === 0));
    hooks[event] = [...matchers, { hooks: [{ type: 'command', command: `${CLUD_HOOK_COMMAND} ${event}`, timeout }] }];
  }
  return withKeyHelper({ ...existing, hooks }, keyHelper);
}

/**
 * The settings naming Clud's key helper exactly while Clud holds a key: a helper turns Claude
 * Code's own login (a Claude account) off, and Clud's fails once the key is gone (it lives on a
 * tmpfs, gone when the container stops). A helper of the user's own stays as it is.
 */
export function withKeyHelper(settings: Record<string, unknown>, keyHelper: { path: string; keyStored: boolean }): Record<string, unknown> {
  if (keyHelper.keyStored) return { ...settings, apiKeyHelper: keyHelper.path };
  if (settings.apiKeyHelper !== keyHelper.path) return settings;
  const { apiKeyHelper: _cluds, ...rest } = settings;
  return rest;
}

/** The user-scope MCP server names in Claude Code's configuration. */
export function configuredMcpServers(config: Record<string, unknown>): string[] {
  return isRecord(config.mcpServers) ? Object.keys(config.mcpServers) : [];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
