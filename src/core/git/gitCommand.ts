// How Clud runs git on a repository it does not trust. The container's repository is written by
// the coding agent, so its config, hooks and files are hostile input to a process that can reach
// the host folder. Every git child gets: no system or global config, hooks and fsmonitor off, no
// automatic gc or maintenance, no reflogs, a safe.directory entry for exactly the paths it names
// (the container's repository may belong to another UID), and none of the caller's capabilities.
// Every git process that opens the container's repository runs as the workspace user: whatever
// that repository holds (a symbolic link swapped into .git, say) can then reach only what the
// workspace user could reach anyway, never the host folder or the state folder.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { WORKSPACE_USER } from '../containerLayout';

export interface GitRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface GitOptions {
  /** The repository (`--git-dir`). */
  gitDir?: string;
  /** The working tree (`--work-tree`), only for commands that need one. */
  workTree?: string;
  /** Paths added as safe.directory entries (both repositories a command touches). */
  safeDirectories?: readonly string[];
  input?: string;
  /** The command opens the container's repository: run it as the workspace user (see above). */
  asWorkspaceUser?: boolean;
}

/**
 * Configuration given on the command line: it overrides every repository's config. git does not
 * hand it to the upload-pack or receive-pack it starts for a local path (it clears
 * GIT_CONFIG_PARAMETERS for a process in another repository), so those are started with the same
 * `-c` options on their own command line (`remoteProgram`).
 */
const SAFE_CONFIG = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  // receive-pack would run this through the shell to list an alternate's refs; `true` lists none.
  'core.alternateRefsCommand=true',
  'core.logAllRefUpdates=false',
  'gc.auto=0',
  'maintenance.auto=false',
  'receive.autogc=false',
  // Received objects stay one pack file (never loose objects spread over objects/xx/ folders).
  'receive.unpackLimit=1',
  'fetch.unpackLimit=1',
  'transfer.unpackLimit=1',
  // A shallow host repository (a depth-limited clone) can seed the container's.
  'receive.shallowUpdate=true',
  'push.recurseSubmodules=no',
  'fetch.recurseSubmodules=false',
  'push.gpgSign=false',
  'protocol.allow=never',
  'protocol.file.allow=always',
];

export function gitArgs(args: readonly string[], options: GitOptions = {}): string[] {
  const config = [...SAFE_CONFIG, ...(options.safeDirectories ?? []).map((directory) => `safe.directory=${directory}`)];
  return [
    ...config.flatMap((entry) => ['-c', entry]),
    ...(options.gitDir ? [`--git-dir=${options.gitDir}`] : []),
    ...(options.workTree ? [`--work-tree=${options.workTree}`] : []),
    ...args,
  ];
}

/** Shell-quoted for the command git runs through the shell for `--upload-pack` and `--receive-pack`. */
const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * The `--upload-pack` / `--receive-pack` command for a fetch from or push to the other local
 * repository: that program reads the other repository's config, so it gets the safe
 * configuration on its own command line, where it outranks that repository's.
 */
export function remoteProgram(program: 'upload-pack' | 'receive-pack', options: GitOptions = {}): string {
  // The other repository is always the container's: its program runs as the workspace user.
  return [...identityPrefix({ asWorkspaceUser: true }), 'git', ...gitArgs([program], { safeDirectories: options.safeDirectories })].map(shellQuote).join(' ');
}

export const GIT_ENVIRONMENT: Readonly<Record<string, string>> = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_OPTIONAL_LOCKS: '0',
  // Never a pager, an editor or an askpass program.
  GIT_PAGER: 'cat',
  GIT_EDITOR: 'true',
  GIT_ASKPASS: 'true',
  LC_ALL: 'C',
};

/** True when this process holds effective capabilities it is not root for (the sync agent after dropping root). */
function holdsCapabilities(): boolean {
  if (process.getuid?.() === 0) return false;
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((entry) => entry.startsWith('CapEff:'));
    return !!line && /[1-9a-f]/i.test(line.slice('CapEff:'.length));
  } catch {
    return false;
  }
}

/**
 * What a capable non-root caller (the sync agent: CAP_DAC_OVERRIDE and friends) puts before git:
 * a command on the container's repository runs as the workspace user with no capabilities; one on
 * the host's keeps only CAP_SETUID and CAP_SETGID. Elsewhere (tests, a root caller) git runs as
 * the caller.
 */
function identityPrefix(options: Pick<GitOptions, 'asWorkspaceUser'>): string[] {
  if (!holdsCapabilities()) return [];
  if (options.asWorkspaceUser) return ['setpriv', `--reuid=${WORKSPACE_USER}`, `--regid=${WORKSPACE_USER}`, '--init-groups', '--inh-caps=-all', '--ambient-caps=-all', '--'];
  // Only what it takes to start the container's side of a fetch or push as the workspace user
  // (`remoteProgram`): no capability that reads or writes files beyond the sync user's own.
  return ['setpriv', '--inh-caps=-all,+setuid,+setgid', '--ambient-caps=-all,+setuid,+setgid', '--'];
}

/** Runs git with the safe configuration; never throws for a non-zero exit. */
export async function runGit(args: readonly string[], options: GitOptions = {}): Promise<GitRun> {
  const [file, ...argv] = [...identityPrefix(options), 'git', ...gitArgs(args, options)];
  return runProgram(file!, argv, { env: { ...process.env, ...GIT_ENVIRONMENT }, input: options.input });
}

/**
 * A git child that has not finished by then is killed and reported: the sync holds its lock while
 * git runs, and a repository must not be able to hold it forever. Generous, for a first clone of
 * a large repository on a slow disk.
 */
export const GIT_TIMEOUT_MS = 15 * 60 * 1000;

/** Runs a program to its end, collecting its output; a program that cannot start is exit code -1. */
export function runProgram(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<GitRun> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? GIT_TIMEOUT_MS, killSignal: 'SIGKILL' });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
    let spawnError: Error | undefined;
    child.on('error', (error) => (spawnError = error));
    child.on('close', (code, signal) =>
      resolve({
        exitCode: code ?? -1,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: child.killed
          ? `fatal: ${file} did not finish in ${Math.round((options.timeoutMs ?? GIT_TIMEOUT_MS) / 1000)} s and was stopped`
          : Buffer.concat(stderr).toString('utf8') || (signal ? `fatal: ${file} was killed by ${signal}` : spawnError ? `fatal: ${file}: ${spawnError.message}` : ''),
      }),
    );
  });
}

/** The last meaningful line of git's error output, for a one-line report. */
export function gitFailure(run: GitRun): string {
  const lines = run.stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('hint:'));
  // A push names each refused ref on a "! [remote rejected] ... (reason)" line: more telling than its summary.
  const rejected = lines.find((line) => line.startsWith('! '));
  const fatal = lines.find((line) => line.startsWith('fatal:') || line.startsWith('error:'));
  return (rejected ?? fatal ?? lines.at(-1) ?? `git exited with code ${run.exitCode}`).replace(/^(fatal|error): /, '');
}
