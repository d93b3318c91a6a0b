import { displayPath } from '../../core/display';
import type { CommandSpec } from '../command';

export const conflicts: CommandSpec = {
  name: 'conflicts',
  usage: 'clud conflicts [DIR] [--json]',
  summary: 'List the conflicts found by the last sync (run `clud sync` to refresh).',
  options: {},
  async run({ workspace }) {
    const [latest] = await workspace.history();
    const found = latest?.conflicts ?? [];
    const lines = latest ? [`${found.length} conflict(s) as of sync ${latest.id} (${latest.startedAt})`] : ['no sync has run yet'];
    for (const conflict of found) {
      lines.push(`  ${displayPath(conflict.path)}  host: ${conflict.host?.kind ?? 'absent'}, container: ${conflict.container?.kind ?? 'absent'}`);
    }
    return { json: { ok: true, syncId: latest?.id, conflicts: found }, text: lines.join('\n'), exitCode: 0 };
  },
};
