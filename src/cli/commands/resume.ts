import type { CommandSpec } from '../command';
import { questionHandler } from '../ask';
import { formatLiveStatus, formatReport } from '../format';
import { reportOutput } from './syncCommand';

export const resume: CommandSpec = {
  name: 'resume',
  usage: 'clud resume [DIR] [--merge] [--yes] [--json]',
  summary:
    'Sync again after `clud pause` or a safety halt. After a pause, what changed meanwhile crosses as it would have, deletions included; after a halt (or with --merge) it forgets the last agreed state and merges both sides, deleting nothing.',
  options: {
    merge: { type: 'boolean', description: 'merge both sides, deleting nothing, even when nothing halted (what was deleted on one side comes back from the other)' },
    yes: { type: 'boolean', description: 'allow what a safeguard asks about: a background sync\'s question already waiting, and the merge\'s' },
  },
  async run({ workspace, flags }) {
    // VS Code's Resume Auto-Sync is `clud resume`; its Resume Sync After Halt is `clud resume --merge`.
    const result = await workspace.resume({ merge: flags.merge === true ? 'always' : 'after-halt', onQuestion: questionHandler(flags) });
    const merge = result.report ? reportOutput(result.report, workspace.hostPath) : undefined;
    const what = result.wasHalted ? 'halt lifted' : result.wasPaused ? 'auto-sync resumed' : 'nothing was paused or halted';
    const lines = [...(result.live ? [`${what}: ${formatLiveStatus(result.live)}`] : []), ...(result.report ? [formatReport(result.report, workspace.hostPath)] : [])];
    // With --json, the same object as every sync ({ ok, metrics, report }) when it merged: scripts read resume's merge as they read a sync.
    if (merge) return { ...merge, text: lines.join('\n') };
    return { json: { ok: true, ...(result.live && { live: result.live }) }, text: lines.join('\n'), exitCode: 0 };
  },
};
