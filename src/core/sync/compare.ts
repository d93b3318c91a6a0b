// Which paths differ between the two trees right now, ignoring what either side ignores. Used
// before a container is removed (is anything only in /workspace?) and by conflict backups.
import type { Entry, Snapshot } from '../files/entry';
import type { SecretOtherSide } from '../protocol';
import { entriesEqual, permissionBits } from '../files/entry';
import { hashFile, lstatOrUndefined } from '../files/fsEntry';
import { joinBytes } from '../files/pathCodec';
import type { Side } from './reconcile';
import { ignoredOnEitherSide, scanTree } from './scan';
import type { AccessIdentity, ScanResult } from './scan';
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
  return differencesOf(await scanBoth(roots, options));
}

function scanBoth(roots: Record<Side, string>, options: CompareOptions): Promise<[ScanResult, ScanResult]> {
  return Promise.all([
    scanTree(roots.host, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store?.host, accessAs: options.hostAccess }),
    scanTree(roots.container, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store?.container }),
  ]);
}

function differencesOf([host, container]: [ScanResult, ScanResult]): Difference[] {
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

/** A difference with what both sides last agreed on at its path; `heldBySecret`: see compareWithAgreedState. */
export type AgreedDifference = Difference & { ancestor?: Entry; heldBySecret?: Side };

/**
 * The differences, each with what both sides last agreed on at its path (from the store), and
 * the container's versions that no sync carries because a secret keeps them apart where they
 * are not what both last agreed (`heldBySecret`: the side whose file holds the secret): of a file
 * the host keeps out (the host's is never overwritten), and of one the container keeps out (it
 * is never copied to the host). Either is the container's alone, and goes with it.
 */
export async function compareWithAgreedState(roots: Record<Side, string>, options: CompareOptions & { store: SyncStateStore }): Promise<{ differences: AgreedDifference[]; hasAgreedState: boolean }> {
  const [host, container] = await scanBoth(roots, options);
  const { ancestor } = options.store;
  const differences: AgreedDifference[] = differencesOf([host, container]).map((difference) => ({ ...difference, ancestor: ancestor.get(difference.path) }));
  for (const { path } of host.keptOut) {
    const entry = container.snapshot.get(path);
    if (entry && secretOtherSide(path, container, ancestor) === 'changed') differences.push({ path, container: entry, ancestor: ancestor.get(path), heldBySecret: 'host' });
  }
  for (const { path } of container.keptOut) {
    const entry = await secretFileEntry(roots.container, path);
    if (entry && !entriesEqual(entry, ancestor.get(path))) differences.push({ path, container: entry, ancestor: ancestor.get(path), heldBySecret: 'container' });
  }
  return { differences: differences.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), hasAgreedState: ancestor.size > 0 };
}

/** A file kept out as a secret, which its scan leaves out of the snapshot (unread, if by its name), read now. */
async function secretFileEntry(root: string, path: string): Promise<Entry | undefined> {
  const at = joinBytes(Buffer.from(root), path);
  const stats = await lstatOrUndefined(at);
  if (!stats?.isFile()) return undefined;
  const hash = await hashFile(at).catch(() => undefined);
  return hash === undefined ? { kind: 'untracked', reason: 'unreadable' } : { kind: 'file', size: stats.size, mtimeMs: stats.mtimeMs, mode: permissionBits(stats.mode), hash };
}

/**
 * Where one side keeps `path` out as a secret, how the other side's version differs from what
 * both last agreed: `changed` (or new there), `deleted`, or undefined where it is the agreed one,
 * or where the other side keeps it out too (its version is a secret that stays there as well,
 * and that side says so). No sync carries it while the secret stands, so the difference stays,
 * and someone should know.
 */
export function secretOtherSide(path: string, other: Pick<ScanResult, 'snapshot' | 'keptOut'>, ancestor: Snapshot): SecretOtherSide | undefined {
  if (other.keptOut.some((secret) => secret.path === path)) return undefined;
  const entry = other.snapshot.get(path);
  if (entriesEqual(entry, ancestor.get(path))) return undefined;
  return entry ? 'changed' : 'deleted';
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
