// Host folders as Docker sees them. Users run Docker Desktop on Windows and macOS too, so host
// paths are handled with the path API of the host's platform, never by string concatenation.
import { createHash } from 'node:crypto';
import * as path from 'node:path';

import { CONTAINER_HOST_PATH } from '../containerLayout';

export type HostPlatform = 'linux' | 'darwin' | 'win32';

function pathApi(platform: HostPlatform): path.PlatformPath {
  return platform === 'win32' ? path.win32 : path.posix;
}

/** An absolute, normalised host folder path with no trailing separator. */
export function normalizeHostPath(hostPath: string, platform: HostPlatform, cwd?: string): string {
  const api = pathApi(platform);
  const absolute = cwd === undefined ? api.resolve(hostPath) : api.resolve(cwd, hostPath);
  // Drive letters are case-insensitive; one spelling keeps names and mounts stable.
  return platform === 'win32' ? absolute.replace(/^[a-z]:/, (drive) => drive.toUpperCase()) : absolute;
}

export interface BindMount {
  Type: 'bind';
  Source: string;
  Target: string;
  ReadOnly: false;
}

/** A read-write bind mount in Docker Engine API form. */
export function bindMount(hostPath: string, containerPath: string, platform: HostPlatform): BindMount {
  // The Mounts API takes the source verbatim, so "C:\Users\me" needs no colon-escaping as -v would.
  return { Type: 'bind', Source: normalizeHostPath(hostPath, platform), Target: containerPath, ReadOnly: false };
}

/** The bind mount of the project folder at CONTAINER_HOST_PATH. */
export function hostFolderMount(hostPath: string, platform: HostPlatform): BindMount {
  return bindMount(hostPath, CONTAINER_HOST_PATH, platform);
}

/**
 * A container name that is stable for one folder and different for two folders with the same
 * base name: `clud-<base name>-<8 hex of the path's hash>`.
 */
export function containerNameFor(hostPath: string, platform: HostPlatform): string {
  const normalized = normalizeHostPath(hostPath, platform);
  // Windows paths compare case-insensitively, so C:\Proj and c:\proj are one folder.
  const identity = platform === 'win32' ? normalized.toLowerCase() : normalized;
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 8);
  const base = pathApi(platform).basename(normalized).toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 40);
  return `clud-${base || 'root'}-${hash}`;
}

/**
 * The workspace's name in the host repository's refs (`clud/<name>/<branch>`): the folder's base
 * name, or the container name when the user chose one (two containers on one folder stay apart).
 */
export function gitNamespaceSource(hostPath: string, containerName: string, platform: HostPlatform): string {
  const normalized = normalizeHostPath(hostPath, platform);
  return containerName === containerNameFor(normalized, platform) ? pathApi(platform).basename(normalized) : containerName;
}

/** Converts a relative host path to the forward-slash form used in the protocol and state. */
export function toProtocolPath(relativePath: string, platform: HostPlatform): string {
  return platform === 'win32' ? relativePath.split(path.win32.sep).join('/') : relativePath;
}
