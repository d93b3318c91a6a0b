// Facts about the container's system, parsed from its text files. Pure functions so that the
// checks `init` depends on are unit-tested in plain Node.

/** Whether `mountPoint` appears as a mount point in /proc/self/mountinfo. */
export function isMountPoint(mountinfo: string, mountPoint: string): boolean {
  return mountinfo.split('\n').some((line) => {
    // Field 5 is the mount point, with spaces and other bytes escaped as octal (\040).
    const field = line.split(' ')[4];
    return field !== undefined && unescapeMountField(field) === mountPoint;
  });
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function findPasswdEntry(passwd: string, name: string): PasswdEntry | undefined {
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] !== name || fields.length < 7) continue;
    return { name, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]! };
  }
  return undefined;
}

/** The numeric IDs (field 2 of passwd or group lines: UIDs or GIDs) of every entry but those named in `except`. */
export function takenIds(table: string, except: readonly string[]): Set<number> {
  const ids = new Set<number>();
  for (const line of table.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 3 || except.includes(fields[0]!)) continue;
    const id = Number(fields[2]);
    if (Number.isInteger(id)) ids.add(id);
  }
  return ids;
}

export interface UserIds {
  uid: number;
  gid: number;
}

export interface IdentityPlan {
  /** The sync agent's user: the host folder owner's IDs, so what it writes to the host belongs to the owner. */
  sync: UserIds;
  /** The workspace user: never the sync user's UID or GID, so it cannot signal, trace or read into the sync agent. */
  workspace: UserIds;
  warnings: string[];
}

/** The first ID from `start` up that is neither taken nor excluded. */
function freeId(start: number, taken: ReadonlySet<number>, excluded: number): number {
  let id = start;
  while (taken.has(id) || id === excluded) id++;
  return id;
}

/**
 * Which IDs the two users get. The sync user takes the host folder owner's, except for a
 * root-owned folder: it must never be root, so it keeps its own and the caller is warned that what
 * it writes there will not belong to root. The workspace user keeps its image IDs unless they are the sync user's; then it
 * moves to the next free ID from 1000 up (`taken`: IDs other accounts hold).
 */
export function planIdentities(hostOwner: UserIds, users: { sync: PasswdEntry; workspace: PasswdEntry }, taken: { uids: ReadonlySet<number>; gids: ReadonlySet<number> }): IdentityPlan {
  const warnings: string[] = [];
  let sync: UserIds = { uid: hostOwner.uid, gid: hostOwner.gid };
  if (hostOwner.uid === 0) {
    sync = { uid: users.sync.uid, gid: users.sync.gid };
    warnings.push(`the project folder belongs to root; the sync user keeps UID ${sync.uid} (it never runs as root), so what pulls write there belongs to UID ${sync.uid}. Use a folder owned by your own user.`);
  }
  const workspace: UserIds = {
    uid: users.workspace.uid === sync.uid || users.workspace.uid === 0 ? freeId(1000, taken.uids, sync.uid) : users.workspace.uid,
    gid: users.workspace.gid === sync.gid || users.workspace.gid === 0 ? freeId(1000, taken.gids, sync.gid) : users.workspace.gid,
  };
  return { sync, workspace, warnings };
}
