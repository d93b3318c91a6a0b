import type { CommandSpec } from '../command';
import { ALLOW_SECRET_OPTION } from '../command';
import { formatStatus } from '../format';

export const up: CommandSpec = {
  name: 'up',
  usage: 'clud up [DIR] [--name NAME] [--image TAG] [--rebuild] [--extra-ca FILE]... [--allow-secret PATTERN]... [--json]',
  summary: 'Build the image if needed, start the workspace container and copy DIR into /workspace.',
  options: {
    image: { type: 'string', description: 'image tag to build and run (default niteris/clud:latest)' },
    'base-image': { type: 'string', description: "the Dockerfile's BASE_IMAGE (default debian:trixie-slim)" },
    'extra-ca': { type: 'string', multiple: true, description: 'PEM file of a certificate authority to trust in the image (repeatable)' },
    'allow-secret': ALLOW_SECRET_OPTION,
    rebuild: { type: 'boolean', description: 'rebuild the image and recreate the container (refused while /workspace has unsynced changes)' },
  },
  async run({ workspace, flags }) {
    const result = await workspace.up({ rebuild: flags.rebuild === true });
    const failed = result.init?.phase !== 'ready';
    const next = failed ? '\nThe container is running but the initial copy failed; fix the cause and run `clud up` again to retry it.' : '';
    return { json: { ok: !failed, ...result }, text: formatStatus(result) + next, exitCode: failed ? 1 : 0 };
  },
};
