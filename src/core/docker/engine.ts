// The narrow interface Clud needs from a container engine, in plain data. The dockerode
// implementation is the real one; a Podman or docker-CLI backend would implement the same.
import type { Readable, Writable } from 'node:stream';

export interface ImageInfo {
  id: string;
  labels: Record<string, string>;
}

export interface ContainerInfo {
  id: string;
  name: string;
  /** Up and able to run an exec: not paused, not between restarts. */
  running: boolean;
  /** Docker's state word: created, running, paused, restarting, removing, exited, dead. */
  status: string;
  image: string;
  imageId: string;
  labels: Record<string, string>;
  /** When the container last started (ISO time from the engine), or undefined if never. */
  startedAt: string | undefined;
  /** Published ports of the running container: container port ("8743/tcp") to host address and port. */
  ports: Record<string, { hostIp: string; hostPort: number }>;
}

export type MountSpec =
  | { Type: 'bind'; Source: string; Target: string; ReadOnly: boolean }
  /** A named volume, created by the engine on first use. */
  | { Type: 'volume'; Source: string; Target: string; ReadOnly: boolean }
  /** An anonymous volume: made with the container, and removed with it (removeContainer removes its volumes). */
  | { Type: 'volume'; Target: string; ReadOnly: boolean }
  /** Memory-backed; `mode` is the permission bits of its root. */
  | { Type: 'tmpfs'; Target: string; TmpfsOptions: { Mode: number; SizeBytes: number } };

export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  mounts: MountSpec[];
  /** The only capabilities the container keeps (all others are dropped), e.g. `CHOWN`. */
  capabilities: readonly string[];
  /** No process may gain privileges it did not start with (setuid/setgid binaries, file capabilities). */
  noNewPrivileges: boolean;
  /** Container port ("8743/tcp") published on a host address; hostPort '' lets the engine choose a free one. */
  ports?: Record<string, { hostIp: string; hostPort: string }>;
}

export interface BuildSpec {
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** The Dockerfile stage to build (the last one when absent). */
  target?: string;
}

export interface ExecSpec {
  cmd: string[];
  user: string;
  workingDir: string;
  env?: Record<string, string>;
  attachStdin: boolean;
  /** A terminal: stdout and stderr arrive together on stdout, and the size can be set. */
  tty?: boolean;
}

/** A running exec: its stdio as Node streams and its exit code once it ends. */
export interface ExecSession {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit code after the process has ended. */
  exitCode: Promise<number>;
  /** Sets the terminal size of a `tty` exec. */
  resize(rows: number, columns: number): Promise<void>;
}

export interface ContainerEngine {
  /** Throws CludError('docker-unreachable') with a way out when the engine does not answer. */
  ping(): Promise<void>;
  inspectImage(reference: string): Promise<ImageInfo | undefined>;
  buildImage(context: Readable, spec: BuildSpec, onLog: (line: string) => void, signal?: AbortSignal): Promise<ImageInfo>;
  inspectContainer(nameOrId: string): Promise<ContainerInfo | undefined>;
  /** The new container's id; undefined when a container of that name exists already (made meanwhile by someone else). */
  createContainer(spec: ContainerSpec): Promise<string | undefined>;
  startContainer(id: string): Promise<void>;
  stopContainer(id: string, timeoutSeconds?: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  /** Removes a named volume; nothing when it does not exist. */
  removeVolume(name: string): Promise<void>;
  exec(id: string, spec: ExecSpec): Promise<ExecSession>;
  /** One file's content from the container's filesystem, without an exec; undefined if absent. */
  readFile(id: string, path: string): Promise<Buffer | undefined>;
  /** Writes one file into the container's filesystem (directory must exist), without an exec. */
  writeFile(id: string, directory: string, name: string, content: Buffer, mode: number): Promise<void>;
  logs(id: string, options: { tail?: number }): Promise<{ stdout: string; stderr: string }>;
}

/** What `clud status` says about a container: Docker's own word where "running" would mislead. */
export type ContainerState = 'missing' | 'running' | 'paused' | 'restarting' | 'stopped';

/** Docker reports a paused or restarting container as Running; neither can run an exec. */
export function containerState(info: Pick<ContainerInfo, 'running' | 'status'> | undefined): ContainerState {
  if (!info) return 'missing';
  if (info.status === 'paused' || info.status === 'restarting') return info.status;
  return info.running ? 'running' : 'stopped';
}
