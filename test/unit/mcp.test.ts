import assert from 'node:assert/strict';
import { validateApiKey } from '../../src/core/host/codingAgent';
import { configFromEnvironment, parseConfig } from '../../src/core/host/config';
import { agentVolumeName, uiImageTag } from '../../src/core/containerLayout';
import { CludError } from '../../src/core/errors';
import { CLUD_MANAGED_KEY, DEFAULT_MCP_SERVERS, MCP_CATALOGUE, configuredMcpServers, mergeClaudeConfig, mergeClaudeSettings, parseMcpServerList, resolveMcpServers, withKeyHelper } from '../../src/core/host/mcp';

function thrown(work: () => unknown): CludError {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof CludError, `expected a CludError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}


const HELPER = '/opt/clud/api-key-helper.sh';
describe('MCP servers', function () {
  it('configures clud, filesystem (rooted at /workspace), git and fetch by default', function () {
    const servers = resolveMcpServers([]);
    assert.deepEqual(Object.keys(servers), ['clud', 'filesystem', 'git', 'fetch']);
    assert.deepEqual(servers.filesystem!.args, ['/workspace']);
    assert.deepEqual(DEFAULT_MCP_SERVERS, ['clud', 'filesystem', 'git', 'fetch']);
  });

  it('adds catalogue servers by name and full entries; an entry with a catalogue name replaces it', function () {
    const servers = resolveMcpServers(['memory', { name: 'mine', command: 'my-server', args: ['--x'], env: { A: 'b' } }, { name: 'fetch', command: 'other-fetch', args: [], env: {} }]);
    assert.deepEqual(Object.keys(servers), ['clud', 'filesystem', 'git', 'fetch', 'memory', 'mine']);
    assert.deepEqual(servers.mine, { command: 'my-server', args: ['--x'], env: { A: 'b' } });
    assert.equal(servers.fetch!.command, 'other-fetch');
    assert.equal(servers.memory, MCP_CATALOGUE.memory);
  });

  it('refuses an unknown name, naming it and where it came from', function () {
    const error = thrown(() => resolveMcpServers(['filesystem', 'nosuch'], '--mcp-servers'));
    assert.equal(error.code, 'bad-input');
    assert.match(error.message, /unknown MCP server "nosuch" in --mcp-servers/);
    assert.match(error.hint!, /memory/);
  });

  it('parses comma-separated names and JSON arrays; an invalid entry is named', function () {
    assert.deepEqual(parseMcpServerList(' memory , sequential-thinking,', '--mcp-servers'), ['memory', 'sequential-thinking']);
    assert.deepEqual(parseMcpServerList('["memory", {"name": "x", "command": "y"}]', 'CLUD_MCP_SERVERS'), ['memory', { name: 'x', command: 'y', args: [], env: {} }]);
    assert.match(thrown(() => parseMcpServerList('[{"name": "x"}]', 'CLUD_MCP_SERVERS')).message, /invalid MCP server entry 1 in CLUD_MCP_SERVERS/);
    assert.match(thrown(() => parseMcpServerList('bad name!', '--mcp-servers')).message, /invalid MCP server "bad name!" in --mcp-servers/);
    assert.match(thrown(() => parseMcpServerList('[oops', '--mcp-servers')).message, /--mcp-servers is not valid JSON/);
  });

  it('reads CLUD_MCP_SERVERS into the config, and the clud.mcpServers setting validates entries', function () {
    assert.deepEqual(parseConfig(configFromEnvironment({ CLUD_MCP_SERVERS: 'memory' }, ':')).mcpServers, ['memory']);
    assert.equal(thrown(() => parseConfig({ mcpServers: [{ name: 'x', command: '' }] }, (key) => `clud.${key}`)).code, 'invalid-config');
  });

  it("merges into Claude Code's user scope: keeps the user's own servers and other keys, drops servers Clud no longer wants", function () {
    const first = mergeClaudeConfig({ userID: 'u', mcpServers: { own: { command: 'own' } } }, resolveMcpServers(['memory']));
    assert.equal(first.userID, 'u');
    assert.deepEqual(configuredMcpServers(first), ['own', 'clud', 'filesystem', 'git', 'fetch', 'memory']);
    assert.deepEqual(first[CLUD_MANAGED_KEY], ['clud', 'filesystem', 'git', 'fetch', 'memory']);
    const second = mergeClaudeConfig(first, resolveMcpServers([]));
    assert.deepEqual(configuredMcpServers(second), ['own', 'clud', 'filesystem', 'git', 'fetch']);
    assert.deepEqual((second.mcpServers as Record<string, unknown>).git, { type: 'stdio', ...MCP_CATALOGUE.git });
  });

  it("sets the key helper in Claude Code's settings while a key is stored, keeping the rest", function () {
    const merged = mergeClaudeSettings({ theme: 'dark', apiKeyHelper: 'old' }, { path: HELPER, keyStored: true });
    assert.equal(merged.theme, 'dark');
    assert.equal(merged.apiKeyHelper, HELPER);
  });

  it("takes Clud's key helper out while no key is stored, so that Claude Code offers its own login; a helper of the user's stays", function () {
    const noKey = { path: HELPER, keyStored: false };
    assert.deepEqual(withKeyHelper({ theme: 'dark', apiKeyHelper: HELPER }, noKey), { theme: 'dark' });
    assert.deepEqual(withKeyHelper({ apiKeyHelper: '/home/me/vault-key.sh' }, noKey), { apiKeyHelper: '/home/me/vault-key.sh' });
    assert.equal('apiKeyHelper' in mergeClaudeSettings({ apiKeyHelper: HELPER }, noKey), false);
    assert.deepEqual(withKeyHelper({}, { path: HELPER, keyStored: true }), { apiKeyHelper: HELPER });
  });

  it("adds Clud's hooks (turn start and end) beside the user's own, once however often it runs", function () {
    const own = { matcher: '', hooks: [{ type: 'command', command: 'echo mine' }] };
    const first = mergeClaudeSettings({ hooks: { Stop: [own], PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'check' }] }] } }, { path: HELPER, keyStored: true });
    const second = mergeClaudeSettings(first, { path: HELPER, keyStored: true });
    assert.deepEqual(second, first);
    const hooks = second.hooks as Record<string, Array<{ hooks: Array<{ command: string; timeout?: number }> }>>;
    assert.deepEqual(Object.keys(hooks).sort(), ['PreToolUse', 'SessionEnd', 'Stop', 'UserPromptSubmit']);
    assert.deepEqual(hooks.Stop![0], own, "the user's Stop hook stays");
    assert.deepEqual(hooks.Stop![1]!.hooks, [{ type: 'command', command: 'node /opt/clud/agent.js hook Stop', timeout: 300 }]);
    assert.equal(hooks.UserPromptSubmit!.length, 1);
    assert.equal(hooks.UserPromptSubmit![0]!.hooks[0]!.command, 'node /opt/clud/agent.js hook UserPromptSubmit');
    assert.equal(hooks.PreToolUse!.length, 1);
  });

  it('configures the Clud MCP server: the agent bundle, `mcp`', function () {
    assert.deepEqual(MCP_CATALOGUE.clud, { command: 'node', args: ['/opt/clud/agent.js', 'mcp'], env: {} });
  });
});

describe('the coding agent: names and key', function () {
  it("derives the UI image's tag from the workspace image's", function () {
    assert.equal(uiImageTag('niteris/clud:latest'), 'niteris/clud:latest-ui');
    assert.equal(uiImageTag('clud-it-runtime:latest'), 'clud-it-runtime:latest-ui');
    assert.equal(uiImageTag('localhost:5000/clud'), 'localhost:5000/clud:latest-ui');
    assert.equal(agentVolumeName('clud-proj-1234'), 'clud-proj-1234-agent-state');
  });

  it('refuses an empty key or one with white space inside; trims the line end', function () {
    assert.equal(validateApiKey('sk-abc\n'), 'sk-abc');
    assert.equal(thrown(() => validateApiKey('  \n')).code, 'bad-input');
    assert.match(thrown(() => validateApiKey('sk a')).message, /white space/);
  });
});
