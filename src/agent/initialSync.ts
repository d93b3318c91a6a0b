import type { InitState, ProgressData, SyncOptions } from '../core/protocol';
import { readInitState, writeInitState } from './initStateFile';
import { CONTAINER_HOST_PATH, CONTAINER_WORKSPACE_PATH } from '../core/containerLayout';
import { seedContainerRepository } from '../core/git/bridge';
import { initialCopyMustFail } from './failpoint';
import { runInitialCopy } from './initialCopy';

/**
 * Copies the host folder into /workspace and records the outcome in the init state, so that a failure is
 * visible to `clud status` and can be retried, instead of leaving a half-copied tree unreported.
 */
export async function runInitialSync(options: SyncOptions, onProgress: (data: ProgressData) => void): Promise<InitState> {
  const previous = readInitState();
  const base = { warnings: previous?.warnings ?? [], workspaceUid: previous?.workspaceUid, workspaceGid: previous?.workspaceGid, syncUid: previous?.syncUid, syncGid: previous?.syncGid, attempts: (previous?.attempts ?? 0) + 1 };
  writeInitState({ ...base, phase: 'syncing' });
  let lastWrite = 0;
  const metrics = await runInitialCopy(options, (data) => {
    onProgress(data);
    // The host polls the state file during `up`; keep its progress fresh without rewriting per file.
    if (Date.now() - lastWrite > 500) {
      lastWrite = Date.now();
      writeInitState({ ...base, phase: 'syncing', progress: data });
    }
  });
  // The container's repository is a clone of the host's, not a copy of its files: the agent
  // commits there, and each sync carries history both ways (src/core/git/bridge.ts). A folder
  // whose repository cannot be cloned still gets its files; the warning says why there is no git.
  const seeded = await seedContainerRepository({ host: CONTAINER_HOST_PATH, container: CONTAINER_WORKSPACE_PATH });
  if (initialCopyMustFail()) metrics.errors.push('the copy was made to fail (CLUD_FAILPOINT=fail-initial-copy)');
  if (seeded.problem) base.warnings = [...base.warnings.filter((warning) => !warning.startsWith('git: ')), seeded.problem];
  if (metrics.errors.length > 0) {
    const error = `initial copy of the project folder to /workspace is incomplete: ${metrics.errors.length} error(s), first: ${metrics.errors[0]}`;
    return writeInitState({ ...base, phase: 'failed', error, initialSync: metrics });
  }
  return writeInitState({ ...base, phase: 'ready', initialSync: metrics });
}
