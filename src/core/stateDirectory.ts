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
