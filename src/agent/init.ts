// The container's start-up (see container/entrypoint.sh): `prepare` as root, then `init` (the
// resident agent's supervisor) as the sync user. The container keeps running even when something
// failed; the init state says what.
import { execaSync } from 'execa';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { AGENT_STATE_DIR, CONTAINER_HOST_PATH, CONTAINER_WORKSPACE_PATH, STEP_SOCKET_DIR, SYNC_ONLY_PATH, SYNC_USER, WORKSPACE_USER } from '../core/containerLayout';
import { errorMessage } from '../core/errors';
import { readInitState, writeInitState } from './initStateFile';
import { log } from './log';
import { findPasswdEntry, isMountPoint, planIdentities, takenIds } from './system';
import type { IdentityPlan, PasswdEntry, UserIds } from './system';

/**
 * `agent prepare`, as root: validates the container, gives the sync user the host folder owner's
 * UID/GID and the workspace user others. It never fails the container: a problem is written to the
 * init state, which `init` (next, as the sync user) and `clud status` report.
 */
export function runPrepare(): void {
  const previous = readInitState();
  try {
    const { users, plan } = planUsers();
    assignIdentities(users, plan);
    // A completed earlier copy is carried over: init must not copy the host folder over it again.
    const earlierCopy = previous?.phase === 'ready' ? previous.initialSync : undefined;
    writeInitState({
      phase: 'starting',
      warnings: plan.warnings,
      workspaceUid: plan.workspace.uid,
      workspaceGid: plan.workspace.gid,
      syncUid: plan.sync.uid,
      syncGid: plan.sync.gid,
      attempts: previous?.attempts ?? 0,
      initialSync: earlierCopy,
    });
  } catch (error) {
    const message = errorMessage(error);
    log('error', message);
    writeInitState({ phase: 'failed', error: message, warnings: [], attempts: (previous?.attempts ?? 0) + 1 });
  }
}

interface ImageUsers {
  sync: PasswdEntry;
  workspace: PasswdEntry;
}

function planUsers(): { users: ImageUsers; plan: IdentityPlan } {
  if (!existsSync(CONTAINER_HOST_PATH)) throw new Error(`${CONTAINER_HOST_PATH} does not exist: the project folder must be bind-mounted there (clud up does this)`);
  if (!isMountPoint(readFileSync('/proc/self/mountinfo', 'utf8'), CONTAINER_HOST_PATH)) {
    throw new Error(`${CONTAINER_HOST_PATH} is not a mount: the project folder must be bind-mounted there (clud up does this)`);
  }
  const passwd = readFileSync('/etc/passwd', 'utf8');
  const users = { sync: findPasswdEntry(passwd, SYNC_USER), workspace: findPasswdEntry(passwd, WORKSPACE_USER) };
  if (!users.sync || !users.workspace) throw new Error(`the image has no user "${users.sync ? WORKSPACE_USER : SYNC_USER}"; rebuild it with \`clud up --rebuild\``);
  const owner = statSync(CONTAINER_HOST_PATH);
  const taken = { uids: takenIds(passwd, [SYNC_USER, WORKSPACE_USER]), gids: takenIds(readFileSync('/etc/group', 'utf8'), [SYNC_USER, WORKSPACE_USER]) };
  const plan = planIdentities({ uid: owner.uid, gid: owner.gid }, { sync: users.sync, workspace: users.workspace }, taken);
  for (const warning of plan.warnings) log('warn', warning);
  return { users: { sync: users.sync, workspace: users.workspace }, plan };
}

function assignIdentities(users: ImageUsers, plan: IdentityPlan): void {
  if (process.getuid?.() !== 0) throw new Error('agent prepare must run as root to set up the users');
  // The workspace user first: it may hold the IDs the sync user is about to take.
  setIds(users.workspace, plan.workspace);
  setIds(users.sync, plan.sync);
  execaSyncChecked('chown', ['-R', `${plan.workspace.uid}:${plan.workspace.gid}`, CONTAINER_WORKSPACE_PATH, users.workspace.home]);
  // Not recursive on SYNC_ONLY_PATH: the host folder and the state folder are mounted inside it.
  execaSyncChecked('chown', ['-R', `${plan.sync.uid}:${plan.sync.gid}`, AGENT_STATE_DIR]);
  execaSyncChecked('chown', [`${plan.sync.uid}:${plan.sync.gid}`, SYNC_ONLY_PATH]);
  execaSyncChecked('chmod', ['0700', SYNC_ONLY_PATH, AGENT_STATE_DIR]);
  // The narrow channel's folder: the sync agent makes its socket there; the workspace user may reach it, not create anything.
  execaSyncChecked('mkdir', ['-p', STEP_SOCKET_DIR]);
  execaSyncChecked('chown', [`${plan.sync.uid}:${plan.sync.gid}`, STEP_SOCKET_DIR]);
  execaSyncChecked('chmod', ['0755', STEP_SOCKET_DIR]);
}

function setIds(user: PasswdEntry, ids: UserIds): void {
  if (user.uid === ids.uid && user.gid === ids.gid) return;
  // -o: the host's IDs may already belong to another account in the image; sharing is fine.
  execaSyncChecked('groupmod', ['-o', '-g', String(ids.gid), user.name]);
  execaSyncChecked('usermod', ['-o', '-u', String(ids.uid), '-g', String(ids.gid), user.name]);
  log('info', `user ${user.name} now has UID ${ids.uid} and GID ${ids.gid}`);
}

function execaSyncChecked(file: string, args: string[]): void {
  const run = execaSync(file, args, { reject: false, encoding: 'utf8' });
  if (run.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${String(run.stderr).trim() || `exit ${run.exitCode}`}`);
}
