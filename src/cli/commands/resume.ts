import type { CommandSpec } from '../command';
import { questionHandler } from '../ask';
import { formatLiveStatus, formatReport } from '../format';
import { reportOutput } from './syncCommand';

export const resume: CommandSpec = {
  name: 'resume',
  usage: 'clud resume [DIR] [--yes] [--json]',
  summary: 'Sync again after `clud pause` or a safety halt: forget the last agreed state and merge both sides, deleting nothing.',
  options: {
    yes: { type: 'boolean', description: 'allow what a safeguard would ask about during the merge' },
  },
  async run({ workspace, flags }) {
    const result = await workspace.resume({ merge: 'always', onQuestion: questionHandler(flags) });
    const merge = result.report ? reportOutput(result.report) : undefined;
    const what = result.wasHalted ? 'halt lifted' : result.wasPaused ? 'auto-sync resumed' : 'nothing was paused or halted';
    const lines = [...(result.live ? [`${what}: ${formatLiveStatus(result.live)}`] : []), ...(result.report ? [formatReport(result.report)] : [])];
    // With --json, the same object as every sync ({ ok, metrics, report }): scripts read resume's merge as they read a sync.
    if (merge) return { ...merge, text: lines.join('\n') };
    return { json: { ok: true, ...(result.live && { live: result.live }) }, text: lines.join('\n'), exitCode: 0 };
  },
};
