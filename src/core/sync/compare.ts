// Which paths differ between the two trees right now, ignoring what either side ignores. Used
// before a container is removed (is anything only in /workspace?) and by conflict backups.
import type { Entry } from '../files/entry';
import { entriesEqual } from '../files/entry';
import type { Side } from './reconcile';
import { ignoredOnEitherSide, scanTree } from './scan';
import type { AccessIdentity } from './scan';
import type { SyncStateStore } from './stateStore';

export interface Difference {
  path: string;
  host?: Entry;
  container?: Entry;
}

export interface CompareOptions {
  excludes: readonly string[];
  allowSecrets?: readonly string[];
  /** The sync's state: its scan caches spare re-hashing unchanged files. */
  store?: SyncStateStore;
  hostAccess?: AccessIdentity;
}

export async function compareTrees(roots: Record<Side, string>, options: CompareOptions): Promise<Difference[]> {
  const [host, container] = await Promise.all([
    scanTree(roots.host, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store?.host, accessAs: options.hostAccess }),
    scanTree(roots.container, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store?.container }),
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

/** The differences, each with what both sides last agreed on at its path (from the store). */
export async function compareWithAgreedState(roots: Record<Side, string>, options: CompareOptions & { store: SyncStateStore }): Promise<{ differences: Array<Difference & { ancestor?: Entry }>; hasAgreedState: boolean }> {
  const differences = await compareTrees(roots, options);
  const { ancestor } = options.store;
  return { differences: differences.map((difference) => ({ ...difference, ancestor: ancestor.get(difference.path) })), hasAgreedState: ancestor.size > 0 };
}

/**
 * The changes made in /workspace that removing the container would lose: with an agreed state,
 * every path where the container is not what both last agreed; without one, every file or link
 * the container holds differently. A FIFO, socket or device holds no content and no sync can
 * ever carry it, so it never counts (it would make `clud down` refuse forever).
 */
export function changesLostWithContainer<T extends Difference & { ancestor?: Entry }>(differences: readonly T[], hasAgreedState: boolean): T[] {
  return differences.filter((difference) => {
    const container = difference.container;
    if (container?.kind === 'untracked' && container.special) return false;
    return hasAgreedState ? !entriesEqual(container, difference.ancestor) : container?.kind === 'file' || container?.kind === 'symlink';
  });
}
