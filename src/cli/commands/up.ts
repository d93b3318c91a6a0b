import { displayText } from '../../core/display';
import { CludError } from '../../core/errors';
import { parseMcpServerList } from '../../core/host/mcp';
import { API_KEY_OPTION, apiKeyFromFlags } from '../apiKey';
import type { CommandSpec } from '../command';
import { ALLOW_SECRET_OPTION } from '../command';
import { formatStatus } from '../format';
import { openInBrowser } from '../openUrl';

export const up: CommandSpec = {
  name: 'up',
  usage: 'clud up [DIR] [--ui] [--port N] [--open] [--auth none|password] [--api-key KEY|-] [--mcp-servers LIST] [--auto-sync continuous|on-save|off] [--name NAME] [--image TAG] [--rebuild] [--extra-ca FILE]... [--allow-secret PATTERN]... [--json]',
  summary: 'Build the image if needed, start the workspace container and copy DIR into /workspace; Claude Code is set up inside, and with --ui the browser IDE.',
  options: {
    image: { type: 'string', description: 'image tag to build and run (default niteris/clud:latest; the UI image is TAG-ui)' },
    'base-image': { type: 'string', description: "the Dockerfile's BASE_IMAGE (default debian:trixie-slim)" },
    'extra-ca': { type: 'string', multiple: true, description: 'PEM file of a certificate authority to trust in the image (repeatable)' },
    'allow-secret': ALLOW_SECRET_OPTION,
    rebuild: { type: 'boolean', description: 'rebuild the image and recreate the container (refused while /workspace has unsynced changes)' },
    ui: { type: 'boolean', description: 'run the browser IDE (code-server) on 127.0.0.1 (recreates a container made without it)' },
    port: { type: 'string', description: "the IDE's host port (default 8743 when free, else a free one; a taken port is an error)" },
    open: { type: 'boolean', description: 'open the IDE in the browser' },
    auth: { type: 'string', description: 'code-server authentication: none (default, loopback only) or password (printed once)' },
    ...API_KEY_OPTION,
    'auto-sync': { type: 'string', description: 'when the sync runs on its own: continuous (default: as soon as either side changes), on-save (only what an editor reports saved) or off (only sync, push and pull)' },
    'mcp-servers': { type: 'string', description: 'MCP servers on top of filesystem, git and fetch: names from the catalogue, comma-separated, or a JSON array of names and entries' },
  },
  async run({ workspace, flags }) {
    const uiPort = flags.port === undefined ? undefined : parsePort(String(flags.port));
    const auth = flags.auth === undefined ? undefined : parseAuth(String(flags.auth));
    const mcpServers = typeof flags['mcp-servers'] === 'string' ? parseMcpServerList(flags['mcp-servers'], '--mcp-servers') : undefined;
    const apiKey = await apiKeyFromFlags(flags, process.env, process.stdin);
    const wantsUi = flags.ui === true || uiPort !== undefined || auth !== undefined || flags.open === true ? true : undefined;
    const result = await workspace.up({ rebuild: flags.rebuild === true, ui: wantsUi, uiPort, uiAuth: auth, apiKey, mcpServers });
    const failed = result.init?.phase !== 'ready';
    const lines = [formatStatus(result)];
    if (result.ui?.password) lines.push(`IDE password: ${result.ui.password} (shown once; \`clud up --ui --auth password\` after a restart makes a new one)`);
    for (const warning of result.warnings ?? []) lines.push(`warning: ${displayText(warning)}`);
    // A failed copy's way out is in the status above; a copy that reports no end has none there.
    if (failed && result.init?.phase !== 'failed') lines.push('The container is running but the initial copy did not complete; run `clud up` again to retry it.');
    if (flags.open === true && result.ui) openInBrowser(result.ui.url);
    return { json: { ok: !failed, ...result }, text: lines.join('\n'), exitCode: failed ? 1 : 0 };
  },
};

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) throw new CludError('bad-input', `invalid port "${text}"`, 'Give a port number from 1 to 65535.');
  return port;
}

function parseAuth(text: string): 'none' | 'password' {
  if (text !== 'none' && text !== 'password') throw new CludError('bad-input', `invalid --auth "${text}"`, 'Use --auth none or --auth password.');
  return text;
}
