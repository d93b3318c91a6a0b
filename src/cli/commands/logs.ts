import { displayText } from '../../core/display';
import type { CommandSpec } from '../command';
import { wholeNumberFlag } from '../flags';

export const logs: CommandSpec = {
  name: 'logs',
  usage: 'clud logs [DIR] [--tail N] [--json]',
  summary: "Print the workspace container's log (the agent's start-up and initial copy).",
  options: { tail: { type: 'string', description: 'only the last N lines' } },
  async run({ workspace, flags }) {
    const tail = flags.tail === undefined ? undefined : wholeNumberFlag('--tail', flags.tail, 0);
    const output = await workspace.logs(tail);
    return { json: { ok: true, ...output }, text: (output.stdout + output.stderr).replace(/\n$/, '').split('\n').map(displayText).join('\n'), exitCode: 0 };
  },
};
