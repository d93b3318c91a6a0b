import { displayText } from '../../core/display';
import { checkpoint as takeCheckpoint } from '../../core/host/runStep';
import type { CommandSpec } from '../command';

export const checkpoint: CommandSpec = {
  name: 'checkpoint',
  usage: 'clud checkpoint [DIR] [LABEL] [--json]',
  summary: 'Carry what waits across, then end the current undo step under LABEL (default: the time), a restore point `clud history` lists and `clud undo` counts.',
  options: {},
  positionals: { min: 0, max: 1, directoryFirst: true },
  async run({ workspace, positionals }) {
    const label = positionals[0] ?? `checkpoint ${new Date().toISOString()}`;
    const result = await takeCheckpoint(workspace, label);
    const text = result.steps > 0 ? `checkpoint "${displayText(result.closed.label)}": the changes since the last step are one undoable step` : `checkpoint "${displayText(result.closed.label)}": nothing changed since the last step; no step recorded`;
    return { json: { ok: true, ...result }, text, exitCode: 0 };
  },
};
