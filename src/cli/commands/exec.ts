import type { CommandSpec } from '../command';

export const exec: CommandSpec = {
  name: 'exec',
  usage: 'clud exec [DIR] [-i] -- CMD [ARGS...]',
  summary: 'Run CMD in /workspace as the workspace user; exits with its exit code.',
  options: { interactive: { type: 'boolean', description: 'pass this process\'s stdin to CMD (-i)' } },
  takesCommand: true,
  async run({ workspace, flags, rest }) {
    const exitCode = await workspace.exec(rest, { stdin: flags.interactive === true ? process.stdin : undefined, stdout: process.stdout, stderr: process.stderr });
    // In --json mode the command's own output still streams; the JSON object comes last.
    return { json: { ok: exitCode === 0, exitCode }, text: '', exitCode };
  },
};
