// Which paths differ between the two trees right now, ignoring what either side ignores. Used
// before a container is removed (is anything only in /workspace?) and by conflict backups.
import type { Entry } from './entry';
import { entriesEqual } from './entry';
import type { Side } from './reconcile';
import { ignoredOnEitherSide, scanTree } from './scan';
import type { AccessIdentity, ScanCache } from './scan';

export interface Difference {
  path: string;
  host?: Entry;
  container?: Entry;
}

export async function compareTrees(roots: Record<Side, string>, options: { excludes: readonly string[]; caches?: Partial<Record<Side, ScanCache>>; hostAccess?: AccessIdentity }): Promise<Difference[]> {
  const [host, container] = await Promise.all([
    scanTree(roots.host, { excludes: options.excludes, cache: options.caches?.host, accessAs: options.hostAccess }),
    scanTree(roots.container, { excludes: options.excludes, cache: options.caches?.container }),
  ]);
  // The same paths a sync leaves alone: a difference there is one no sync would ever carry.
  const isIgnored = ignoredOnEitherSide(host, container);
  const differences: Difference[] = [];
  for (const path of new Set([...host.snapshot.keys(), ...container.snapshot.keys()])) {
    if (isIgnored(path)) continue;
    const hostEntry = host.snapshot.get(path);
    const containerEntry = container.snapshot.get(path);
    if (entriesEqual(hostEntry, containerEntry)) continue;
    differences.push({ path, ...(hostEntry && { host: hostEntry }), ...(containerEntry && { container: containerEntry }) });
  }
  return differences.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
