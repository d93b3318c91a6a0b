import { CludError } from '../../core/errors';
import type { CommandSpec } from '../command';
import { questionHandler } from '../ask';
import { reportOutput } from './syncCommand';

const CHOICES = ['host', 'container', 'both'] as const;

export const resolve: CommandSpec = {
  name: 'resolve',
  usage: 'clud resolve [DIR] PATH --keep host|container|both [--json]',
  summary: "Settle a conflict: keep the host's version, the container's, or both (the container's as PATH's sibling NAME.container.EXT). The other version is kept aside.",
  options: { keep: { type: 'string', description: 'host, container or both' }, yes: { type: 'boolean', description: 'allow what a safeguard would ask about' } },
  positionals: { min: 1, max: 1, directoryFirst: true },
  async run({ workspace, flags, positionals }) {
    const keep = flags.keep as (typeof CHOICES)[number] | undefined;
    if (!keep || !CHOICES.includes(keep)) throw new CludError('bad-input', '--keep must be host, container or both', 'Example: clud resolve src/app.ts --keep host');
    return reportOutput(await workspace.resolve(positionals[0]!, keep, { onQuestion: questionHandler(flags) }), workspace.hostPath);
  },
};
