// The git identity the coding agent commits under: the user's, as git reads it in their folder
// (the repository's own setting, else their global one), given to the workspace user the way the
// Dev Containers extension copies a user's git identity into a container. Without one, the
// agent's first `git commit` stops at "Author identity unknown" and no branch reaches the user.
// Only the name and the e-mail address cross: the rest of the user's git configuration (signing,
// credential helpers, includes of host paths) would fail or leak in the container.
import { AGENT_HOME_PATH, WORKSPACE_USER } from '../containerLayout';
import type { ContainerEngine } from '../docker/engine';
import { gitFailure, runProgram } from '../git/gitCommand';
import { runInContainer } from './codingAgent';

export interface GitIdentity {
  name: string;
  email: string;
}

/**
 * git's own file of the workspace user's global settings (`~/.config/git/config`, where
 * `~/.config` is the agent-state volume): an identity set there outlives the container.
 */
export const CONTAINER_GIT_CONFIG = `${AGENT_HOME_PATH}/config/git/config`;

/** user.name and user.email as git reads them in `folder`; undefined when either is unset or git is missing. */
export async function hostGitIdentity(folder: string): Promise<GitIdentity | undefined> {
  const read = async (key: string) => {
    const run = await runProgram('git', ['-C', folder, 'config', '--get', key], { timeoutMs: 10_000 });
    return run.exitCode === 0 ? run.stdout.trim() || undefined : undefined;
  };
  const [name, email] = await Promise.all([read('user.name'), read('user.email')]);
  return name && email ? { name, email } : undefined;
}

/**
 * Sets the workspace user's identity to `identity` where it has none: a name or address set in
 * the container (by the user, or by the agent) is kept. Returns a problem to show, or undefined.
 */
export async function configureGitIdentity(engine: ContainerEngine, containerId: string, identity: GitIdentity): Promise<string | undefined> {
  const script = [
    'mkdir -p "$(dirname "$1")"',
    '[ -n "$(git config --global --get user.name)" ] || git config --file "$1" user.name "$2"',
    '[ -n "$(git config --global --get user.email)" ] || git config --file "$1" user.email "$3"',
  ].join(' && ');
  const result = await runInContainer(engine, containerId, ['sh', '-c', script, 'git-identity', CONTAINER_GIT_CONFIG, identity.name, identity.email], { user: WORKSPACE_USER });
  if (result.exitCode === 0) return undefined;
  return `git: the container's git identity was not set (${gitFailure(result)}); set one there with \`clud exec -- git config --global user.name …\` and user.email`;
}
