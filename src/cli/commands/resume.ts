import type { CommandSpec } from '../command';
import { reportOutput } from './syncCommand';

export const resume: CommandSpec = {
  name: 'resume',
  usage: 'clud resume [DIR] [--json]',
  summary: 'Lift a safety halt: forget the last agreed state and merge both sides, deleting nothing.',
  options: {},
  async run({ workspace }) {
    return reportOutput(await workspace.syncCycle('two-way-safe', { reset: true }));
  },
};
