import { displayPath, displayText } from '../../core/display';
import { containerAfterUndo, describeUndoStep, forcedUndo } from '../../core/stepLabel';
import type { CommandSpec } from '../command';
import { wholeNumberFlag } from '../flags';

export const undo: CommandSpec = {
  name: 'undo',
  usage: 'clud undo [DIR] [--steps N] [--force] [--discard-log] [--json]',
  summary: "Put DIR back as it was before its last N steps changed it (default 1): a Claude Code turn, a `clud run` command, a checkpoint or a burst of syncs is one step. Refused where that would destroy a later change, unless --force (which keeps that change aside).",
  options: {
    steps: { type: 'string', description: 'how many steps (turns, commands, checkpoints, bursts of syncs) to take back, newest first (default 1)' },
    force: { type: 'boolean', description: 'undo across barriers; the versions overwritten are kept aside' },
    'discard-log': { type: 'boolean', description: 'discard an undo log of another format version, which disables undo' },
  },
  async run({ workspace, flags }) {
    if (flags['discard-log']) {
      await workspace.discardUndoLog();
      return { json: { ok: true, discarded: true }, text: 'discarded the undo log', exitCode: 0 };
    }
    const steps = flags.steps === undefined ? 1 : wholeNumberFlag('--steps', flags.steps, 1);
    const result = await workspace.undo(steps, flags.force === true);
    const lines: string[] = [];
    if (result.refused) lines.push(`nothing undone: ${displayText(result.refused)}`);
    if (result.refused && forcedUndo(result)) lines.push('  --force undoes it anyway (later versions of its files are kept aside)');
    for (const step of result.undone) lines.push(`undid ${describeUndoStep(step)} of ${step.closedAt} (${step.files} path(s))`);
    for (const barrier of result.barriers) lines.push(`  ${result.refused ? 'blocked by' : 'crossed'} barrier: ${displayPath(barrier.path)} ${displayText(barrier.change)}`);
    for (const kept of result.kept) lines.push(`  kept the overwritten ${displayPath(kept.path)} at ${displayPath(kept.keptAt)}`);
    if (result.stoppedBefore) lines.push(`  stopped: ${displayText(result.stoppedBefore.reason)}`);
    for (const problem of result.problems) lines.push(`  problem: ${displayText(problem)}`);
    if (result.undone.length) lines.push(containerAfterUndo(await workspace.liveStatus().catch(() => undefined)));
    const ok = !result.refused && result.problems.length === 0;
    return { json: { ok, ...result }, text: lines.join('\n'), exitCode: ok ? 0 : 1 };
  },
};
