import { displayPath, displayText } from '../../core/display';
import { describeUndoStep } from '../../core/stepLabel';
import type { CommandSpec } from '../command';

export const history: CommandSpec = {
  name: 'history',
  usage: 'clud history [DIR] [--json]',
  summary: 'List the steps that changed DIR and can be undone, newest first (Claude Code turns, `clud run` commands, checkpoints, bursts of syncs), with any barriers and the one still running.',
  options: {},
  async run({ workspace }) {
    const { steps, barriers, disabledReason, notices, running } = await workspace.undoHistory();
    const lines = [...notices.map((notice) => `note: ${displayText(notice)}`), ...(disabledReason ? [`undo is disabled: ${displayText(disabledReason)}`] : [])];
    if (steps.length === 0) lines.push('no undoable steps');
    const barrierLine = (barrier: (typeof barriers)[number]) => `     barrier: ${displayPath(barrier.path)} ${displayText(barrier.change)} (since ${barrier.detectedAt}; \`clud undo --force\` would overwrite it, keeping a copy)`;
    const listedUnder = new Set<(typeof barriers)[number]>();
    steps.forEach((step, index) => {
      const flags = [
        step.id === running ? 'still running: `clud undo` takes it back once it ends' : '',
        step.protected ? '' : `not undoable: ${displayText(step.unprotectedReason ?? 'over the size limit')}`,
        step.barriers ? `${step.barriers} barrier(s)` : '',
      ].filter(Boolean).join('; ');
      lines.push(`${String(index + 1).padStart(3)}. ${step.closedAt}  ${String(step.files).padStart(5)} path(s)  ${String(step.bytes).padStart(9)} bytes  ${describeUndoStep(step)}${flags ? `  (${flags})` : ''}`);
      // Each barrier under the step it stands in front of (a group's members are its steps).
      const members = new Set(step.steps ?? [step.id]);
      for (const barrier of barriers.filter((candidate) => members.has(candidate.stepId))) {
        lines.push(barrierLine(barrier));
        listedUnder.add(barrier);
      }
    });
    for (const barrier of barriers.filter((candidate) => !listedUnder.has(candidate))) lines.push(barrierLine(barrier));
    return { json: { ok: true, steps, barriers, disabledReason, notices, ...(running && { running }) }, text: lines.join('\n'), exitCode: 0 };
  },
};
