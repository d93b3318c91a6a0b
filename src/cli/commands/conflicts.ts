import { describeConflicts } from '../../core/sync/summary';
import type { CommandSpec } from '../command';
import { formatConflict } from '../format';

export const conflicts: CommandSpec = {
  name: 'conflicts',
  usage: 'clud conflicts [DIR] [--json]',
  summary: 'List the conflicts standing now, with what each side holds.',
  options: {},
  async run({ workspace }) {
    const reports = await workspace.history();
    // The resident agent knows which conflicts stand; the reports tell what each side holds. An
    // agent without a live status leaves the newest report's list.
    const live = await workspace.liveStatus();
    const [latest] = reports;
    const found = live ? describeConflicts(live.conflicts, reports.flatMap((report) => report.conflicts)) : (latest?.conflicts ?? []);
    const unlisted = live ? live.unlisted.conflicts : (latest?.unlisted?.conflicts ?? 0);
    const lines = live || latest ? [`${found.length + unlisted} conflict(s)${live ? '' : ` as of sync ${latest!.id} (${latest!.startedAt})`}`] : ['no sync has run yet'];
    for (const conflict of found) lines.push(...formatConflict(conflict, workspace.hostPath));
    if (unlisted > 0) lines.push(`  … and ${unlisted} more (listed as the first ones are resolved)`);
    return { json: { ok: true, ...(latest && { syncId: latest.id }), conflicts: found, unlisted }, text: lines.join('\n'), exitCode: 0 };
  },
};
