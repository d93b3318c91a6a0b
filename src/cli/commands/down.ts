import type { CommandSpec } from '../command';

export const down: CommandSpec = {
  name: 'down',
  usage: 'clud down [DIR] [--force] [--purge] [--json]',
  summary: 'Stop and remove the workspace container (refused while /workspace has changes DIR lacks, unless --force).',
  options: {
    force: { type: 'boolean', description: "remove even if /workspace has changes that DIR lacks (they are lost)" },
    purge: { type: 'boolean', description: "also remove the coding agent's state volume (Claude Code's configuration and login, ~/.config, ~/.local)" },
  },
  async run({ workspace, flags }) {
    const result = await workspace.down({ force: flags.force === true, purge: flags.purge === true });
    return { json: { ok: true, ...result }, text: (result.removed ? `removed ${result.containerName}` : `no container ${result.containerName}`) + (result.purged ? ' and its agent state' : ''), exitCode: 0 };
  },
};
