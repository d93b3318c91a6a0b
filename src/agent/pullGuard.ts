import { readdirSync } from 'node:fs';
import { CONTAINER_HOST_PATH, CONTAINER_WORKSPACE_PATH } from '../core/containerLayout';
import type { InitState } from '../core/protocol';
import { RequestError } from './server';

/**
 * A pull mirrors /workspace onto the user's folder with --delete, so an incomplete or wiped
 * /workspace would delete the user's files. Refuse in exactly those cases.
 */
export function assertPullSafe(init: InitState | undefined, workspacePath = CONTAINER_WORKSPACE_PATH, hostPath = CONTAINER_HOST_PATH): void {
  if (init && init.phase !== 'ready') {
    throw new RequestError('sync-halted', `pull refused: the initial copy into /workspace has not completed (${init.error ?? init.phase}); pulling now could delete files in your folder. Fix the cause and run \`clud up\` to retry the copy.`);
  }
  if (readdirSync(workspacePath).length === 0 && readdirSync(hostPath).length > 0) {
    throw new RequestError('sync-halted', 'pull halted: /workspace is empty while your folder is not; pulling would delete every file in it. Run `clud push` to copy your folder into the container again.');
  }
}
