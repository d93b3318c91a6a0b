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

export interface IdentityPlan {
  uid: number;
  gid: number;
  warnings: string[];
}

/**
 * Which UID/GID the workspace user should have: the host folder owner's, so that files the sync
 * writes to the host belong to that user. A root-owned folder is the exception: the workspace user
 * must never be root, so it keeps its own IDs and the caller is warned that writes may fail.
 */
export function planWorkspaceIdentity(hostOwner: { uid: number; gid: number }, user: PasswdEntry): IdentityPlan {
  if (hostOwner.uid === 0) {
    return {
      uid: user.uid,
      gid: user.gid,
      warnings: [`/host belongs to root; the workspace user keeps UID ${user.uid}, so pulls cannot write root-only files. Use a folder owned by your own user.`],
    };
  }
  return { uid: hostOwner.uid, gid: hostOwner.gid, warnings: [] };
}
