import type { CommandSpec } from '../command';
import { formatStatus } from '../format';

export const status: CommandSpec = {
  name: 'status',
  usage: 'clud status [DIR] [--json]',
  summary: "Show the workspace container's state and the outcome of its initial copy.",
  options: {},
  async run({ workspace }) {
    const result = await workspace.status();
    return { json: { ok: true, ...result }, text: formatStatus(result), exitCode: 0 };
  },
};
