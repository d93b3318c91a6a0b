// How a push or pull is expressed as one rsync run inside the container, and how rsync's output
// becomes metrics. Pure: the agent runs the command (src/agent/rsyncRunner.ts).
import { CONTAINER_HOST_PATH, CONTAINER_WORKSPACE_PATH } from './containerLayout';
import type { SyncDirection } from './protocol';

/**
 * Never synced either way: editor and OS litter that differs per machine, and the temporary
 * files of Clud's own atomic writes (left behind only by a crash mid-write).
 */
export const BUILTIN_EXCLUDES: readonly string[] = ['.DS_Store', 'Thumbs.db', '.#*', '*.swp', '*.swx', '.~lock.*#', '.clud-sync-*.tmp'];

/** Exit codes that can pass on a second try: socket/IO errors, partial transfers, timeouts. */
export const TRANSIENT_EXIT_CODES: ReadonlySet<number> = new Set([10, 11, 12, 23, 30, 35]);
/** "Some files vanished before they could be transferred": the tree changed while we read it. */
export const VANISHED_EXIT_CODE = 24;
export const MAX_CHANGED_PATHS = 1000;

export interface SyncEndpoints {
  source: string;
  target: string;
}

export function endpointsFor(direction: SyncDirection): SyncEndpoints {
  // Trailing slashes: copy the folder's contents, not the folder itself.
  return direction === 'push'
    ? { source: `${CONTAINER_HOST_PATH}/`, target: `${CONTAINER_WORKSPACE_PATH}/` }
    : { source: `${CONTAINER_WORKSPACE_PATH}/`, target: `${CONTAINER_HOST_PATH}/` };
}

export function rsyncArgs(direction: SyncDirection, options: { excludes: readonly string[] }): string[] {
  const { source, target } = endpointsFor(direction);
  return [
    // Not --archive: owner, group and devices are left to the running user, so everything written
    // to the host belongs to the host folder's owner, whom the agent runs as.
    '--recursive',
    '--links',
    '--perms',
    '--times',
    '--no-owner',
    '--no-group',
    // Extraneous files on the target go, but excluded (ignored) ones are never deleted, because
    // rsync protects excluded names from --delete unless --delete-excluded is given.
    '--delete',
    // No --inplace/--append: rsync writes a temporary file and renames it over the old one, so a
    // reader never sees a half-written file.
    '--stats',
    '--no-human-readable',
    '--out-format=%i %n',
    ...BUILTIN_EXCLUDES.map((pattern) => `--exclude=${pattern}`),
    // The container may rewrite its own .git, but the host's repository is the user's record.
    ...(direction === 'pull' ? ['--exclude=.git'] : []),
    ...options.excludes.map((pattern) => `--exclude=${pattern}`),
    // Every .gitignore at every level, read as exclude rules for its own directory and below.
    '--filter=:- .gitignore',
    source,
    target,
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
  const attributeOnlyDirectory = summary[0] === '.' && summary[1] === 'd';
  return { path, deleted: false, changed: !attributeOnlyDirectory };
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
