// The sync agent's own rights, for reading the host folder. The agent runs with CAP_DAC_OVERRIDE
// so that it can read what the workspace user writes in /workspace; on the host side it must
// still read no more than the folder's owner could, whose UID it has (ScanOptions.accessAs).
import type { AccessIdentity } from '../core/sync/scan';

export function hostAccess(): AccessIdentity | undefined {
  if (!process.getuid || !process.getgroups || !process.getgid) return undefined;
  return { uid: process.getuid(), gids: [process.getgid(), ...process.getgroups()] };
}
