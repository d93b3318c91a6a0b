import type { CommandSpec } from '../command';

export const down: CommandSpec = {
  name: 'down',
  usage: 'clud down [DIR] [--force] [--json]',
  summary: 'Stop and remove the workspace container (refused while /workspace has changes DIR lacks, unless --force).',
  options: { force: { type: 'boolean', description: "remove even if /workspace has changes that DIR lacks (they are lost)" } },
  async run({ workspace, flags }) {
    const result = await workspace.down({ force: flags.force === true });
    return { json: { ok: true, ...result }, text: result.removed ? `removed ${result.containerName}` : `no container ${result.containerName}`, exitCode: 0 };
  },
};
