import { API_KEY_OPTION, apiKeyFromFlags } from '../apiKey';
import type { CommandSpec } from '../command';
import { runOnTerminal } from '../terminal';

export const claude: CommandSpec = {
  name: 'claude',
  usage: 'clud claude [DIR] [--api-key KEY|-] [-- ARGS...]',
  summary: 'Run Claude Code in /workspace as the workspace user, on this terminal; exits with its exit code.',
  options: { ...API_KEY_OPTION },
  takesCommand: 'optional',
  async run({ workspace, flags, rest }) {
    const apiKey = await apiKeyFromFlags(flags, process.env, process.stdin);
    if (apiKey !== undefined) await workspace.setApiKey(apiKey);
    else if (!(await workspace.hasApiKey())) process.stderr.write('clud: no API key is stored in the workspace; Claude Code will ask you to log in with your Claude account (pass --api-key or set ANTHROPIC_API_KEY to use a key)\n');
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const session = await workspace.openClaude(rest, { tty });
    // The key, if read from standard input, consumed it: Claude Code then gets none.
    const exitCode = await runOnTerminal(session, { tty, stdin: flags['api-key'] === '-' ? undefined : process.stdin });
    return { json: { ok: exitCode === 0, exitCode }, text: '', exitCode };
  },
};
