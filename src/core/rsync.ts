// The initial copy as one rsync run inside the container, and how rsync's output becomes
// metrics. Pure: the agent runs the command (src/agent/rsyncRunner.ts).
import { CONTAINER_HOST_PATH, CONTAINER_WORKSPACE_PATH, WORKSPACE_USER } from './containerLayout';

/** Exit codes that can pass on a second try: socket/IO errors, partial transfers, timeouts. */
export const TRANSIENT_EXIT_CODES: ReadonlySet<number> = new Set([10, 11, 12, 23, 30, 35]);
/** "Some files vanished before they could be transferred": the tree changed while we read it. */
export const VANISHED_EXIT_CODE = 24;
export const MAX_CHANGED_PATHS = 1000;

/**
 * How rsync writes into /workspace: its receiving side runs as the workspace user, with no
 * capabilities, started through rsync's remote-shell hook (`-e`): rsync runs the hook with the
 * "host" and then the receiver's command line, so the host name `env` makes the hook run
 * `env rsync --server …` as that user. A workspace-user process that swaps a folder of /workspace
 * for a symlink to the host folder or the state folder then sends the receiver only where the
 * workspace user may write anyway, which is neither; and what it writes is the workspace user's
 * without chowning. Dropping to the user needs CAP_SETUID/CAP_SETGID in the sync agent
 * (container/as-sync-user).
 */
export const RECEIVE_AS_WORKSPACE_USER = ['-e', `setpriv --reuid=${WORKSPACE_USER} --regid=${WORKSPACE_USER} --init-groups --inh-caps=-all --ambient-caps=-all --`];

/** The rsync destination for `path` in the container, received through RECEIVE_AS_WORKSPACE_USER. */
export const receivedAsWorkspaceUser = (path: string): string => `env:${path}`;

/**
 * The initial copy of the host folder into a new /workspace: rsync copies exactly the paths the scanner
 * chose (NUL-separated on stdin), so .gitignore rules, negations included, mean the same thing here
 * as in every later sync. Without --recursive, a listed directory is created, not walked.
 */
export function initialCopyArgs(): string[] {
  return [
    '--files-from=-',
    '--from0',
    '--links',
    '--perms',
    // setuid, setgid and sticky never cross (as in every sync: see permissionBits).
    '--chmod=ug-s,o-t',
    '--times',
    // Everything in /workspace belongs to the workspace user: the receiver runs as that user.
    ...RECEIVE_AS_WORKSPACE_USER,
    // No --inplace/--append: rsync writes a temporary file and renames it into place.
    '--stats',
    '--no-human-readable',
    '--out-format=%i %n',
    `${CONTAINER_HOST_PATH}/`,
    receivedAsWorkspaceUser(`${CONTAINER_WORKSPACE_PATH}/`),
  ];
}

export interface RsyncOutcome {
  filesTransferred: number;
  filesDeleted: number;
  bytesTransferred: number;
  changedPaths: string[];
  changedPathsTruncated: boolean;
}

/** Reads `--stats` and `--out-format=%i %n` output. Numbers may carry digit separators. */
export function parseRsyncOutput(stdout: string): RsyncOutcome {
  const stat = (label: string): number => {
    const match = new RegExp(`^${label}: ([\\d,.]+)`, 'm').exec(stdout);
    return match ? Number(match[1]!.replace(/[,.]/g, '')) : 0;
  };
  const changedPaths: string[] = [];
  let changedPathsTruncated = false;
  for (const line of stdout.split('\n')) {
    const item = parseItemizedLine(line);
    if (!item || !item.changed) continue;
    if (changedPaths.length >= MAX_CHANGED_PATHS) {
      changedPathsTruncated = true;
      break;
    }
    changedPaths.push(item.path);
  }
  return {
    filesTransferred: stat('Number of regular files transferred'),
    filesDeleted: stat('Number of deleted files'),
    bytesTransferred: stat('Total transferred file size'),
    changedPaths,
    changedPathsTruncated,
  };
}

export interface ItemizedLine {
  path: string;
  deleted: boolean;
  /** False for a directory whose only change is its timestamp, which rsync reports every run. */
  changed: boolean;
}

/** One `%i %n` line: an 11-character change summary, a space, the path (rsync escapes odd bytes as \#ooo). */
export function parseItemizedLine(line: string): ItemizedLine | undefined {
  if (line.startsWith('*deleting ')) {
    return { path: stripDirSlash(line.slice('*deleting '.length).trimStart()), deleted: true, changed: true };
  }
  const match = /^([<>ch.*][fdLDS][.+?a-zA-Z ]{9}) (.+)$/.exec(line);
  if (!match) return undefined;
  const [, summary, name] = match as unknown as [string, string, string];
  const path = stripDirSlash(name);
  if (path === '.' || path === '') return undefined;
  // rsync lists every directory whose timestamp it set; only other attribute changes count.
  const timestampOnlyDirectory = summary[0] === '.' && summary[1] === 'd' && /^[.tT]*$/.test(summary.slice(2));
  return { path, deleted: false, changed: !timestampOnlyDirectory };
}

function stripDirSlash(name: string): string {
  return name.endsWith('/') ? name.slice(0, -1) : name;
}

/** rsync's own error lines on stderr, without its noise. */
export function rsyncErrors(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('rsync:') || line.startsWith('rsync error:') || line.startsWith('file has vanished'));
}
