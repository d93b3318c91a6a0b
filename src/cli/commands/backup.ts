import { displayPath, displayText } from '../../core/display';
import { CludError } from '../../core/errors';
import { questionHandler } from '../ask';
import type { CommandSpec } from '../command';

export const backup: CommandSpec = {
  name: 'backup',
  usage: 'clud backup [DIR] [--list | --restore ID --side host|container] [--json]',
  summary: 'Copy both versions of every file that differs between DIR and /workspace into a timestamped backup outside both; list or restore backups.',
  options: {
    list: { type: 'boolean', description: 'list the backups' },
    restore: { type: 'string', description: 'restore the backup with this id' },
    side: { type: 'string', description: 'with --restore: which side gets its backed-up versions back' },
    yes: { type: 'boolean', description: 'allow what a safeguard would ask about' },
  },
  async run({ workspace, flags }) {
    if (flags.list) {
      const backups = await workspace.listBackups();
      const text = backups.length ? backups.map((item) => `${item.id}  ${item.createdAt}  ${item.entries.length} path(s)`).join('\n') : 'no backups';
      return { json: { ok: true, backups }, text, exitCode: 0 };
    }
    if (typeof flags.restore === 'string') {
      if (flags.side !== 'host' && flags.side !== 'container') throw new CludError('bad-input', '--restore needs --side host or --side container');
      const result = await workspace.restoreBackup(flags.restore, flags.side, questionHandler(flags));
      const more = (count: number | undefined, what: string) => (count ? [`  … and ${count} more ${what}`] : []);
      const lines = [
        `restored ${result.appliedCount} path(s) on the ${flags.side} side`,
        ...result.kept.map((kept) => `  kept the replaced ${displayPath(kept.path)} at ${displayPath(kept.keptAt)}`),
        ...more(result.unlisted?.kept, 'kept'),
        ...result.skipped.map((skipped) => `  skipped ${displayPath(skipped.path)}: ${displayText(skipped.reason)}`),
        ...more(result.unlisted?.skipped, 'skipped'),
      ];
      return { json: { ok: result.skipped.length === 0, ...result }, text: lines.join('\n'), exitCode: result.skipped.length ? 1 : 0 };
    }
    const manifest = await workspace.backup();
    const text = manifest.entries.length ? `backup ${manifest.id}: ${manifest.entries.length} differing path(s) saved in ${workspace.stateDirectory}/backups/${manifest.id}` : `backup ${manifest.id}: the two sides do not differ`;
    return { json: { ok: true, backup: manifest, directory: `${workspace.stateDirectory}/backups/${manifest.id}` }, text, exitCode: 0 };
  },
};
