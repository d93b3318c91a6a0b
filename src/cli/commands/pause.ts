import type { CommandSpec } from '../command';
import { formatLiveStatus } from '../format';

export const pause: CommandSpec = {
  name: 'pause',
  usage: 'clud pause [DIR] [--json]',
  summary: 'Pause auto-sync: nothing crosses on its own until `clud resume` (changes collect meanwhile; sync, push and pull still work).',
  options: {},
  async run({ workspace }) {
    const live = await workspace.pause();
    return { json: { ok: true, live }, text: `auto-sync paused: ${formatLiveStatus(live)}`, exitCode: 0 };
  },
};
