// Where a workspace's sync state lives on the host: outside the project folder and outside the
// container, so neither a wiped /workspace nor a removed container takes it along.
import * as path from 'node:path';
import type { HostPlatform } from './hostPath';

/** The folder holding every workspace's state, by the platform's convention for per-user state. */
export function stateRoot(env: NodeJS.ProcessEnv, platform: HostPlatform, homeDirectory: string): string {
  if (env.CLUD_STATE_DIR) return env.CLUD_STATE_DIR;
  if (platform === 'win32') return path.win32.join(env.LOCALAPPDATA ?? path.win32.join(homeDirectory, 'AppData', 'Local'), 'clud');
  if (platform === 'darwin') return path.posix.join(homeDirectory, 'Library', 'Application Support', 'clud');
  return path.posix.join(env.XDG_STATE_HOME || path.posix.join(homeDirectory, '.local', 'state'), 'clud');
}

/** One workspace's state folder; the container name already tells folders apart. */
export function workspaceStateDirectory(root: string, containerName: string, platform: HostPlatform): string {
  return (platform === 'win32' ? path.win32 : path.posix).join(root, 'workspaces', containerName);
}

/**
 * The agent reports places in the state folder as it sees them, under `containerStatePath`
 * (`/clud/state/kept/…`), a path that exists only in the container. This is the same place on
 * the host, where the user can open it.
 */
export function hostStatePath(containerPath: string, stateDirectory: string, containerStatePath: string, platform: HostPlatform): string {
  if (containerPath !== containerStatePath && !containerPath.startsWith(`${containerStatePath}/`)) return containerPath;
  const rest = containerPath.slice(containerStatePath.length);
  return stateDirectory + (platform === 'win32' ? rest.split('/').join('\\') : rest);
}

/** hostStatePath for every state-folder path inside a message (up to a space or closing punctuation). */
export function hostStatePathsIn(message: string, stateDirectory: string, containerStatePath: string, platform: HostPlatform): string {
  const prefix = containerStatePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return message.replace(new RegExp(`${prefix}(?:/[^\\s)'",;]*)?(?![^\\s)'",;])`, 'g'), (found) => hostStatePath(found, stateDirectory, containerStatePath, platform));
}
