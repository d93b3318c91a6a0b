// Symlinks whose target may lead out of the synced folder. The sync never follows a link, but the
// user's own tools do: a link the coding agent made in /workspace, carried into the user's folder,
// would let an editor, a build script or `rm -rf` of that path reach whatever the agent pointed it
// at (`~/.ssh`, `..`). So such a link is never written into the user's folder; one the user made
// there still crosses into the container (it points at nothing of the user's in there) and is
// reported.
import { pathDepth } from '../files/entry';
import type { Entry } from '../files/entry';
import type { Change } from './reconcile';

/**
 * Whether following `target`, the target of a link at `path` (a snapshot key), may lead out of
 * the folder. Judged from the text alone, conservatively: an absolute target leaves; a relative
 * one stays only if its `..` components all come first and climb no higher than the link's own
 * folder is deep. A `..` after a name is refused even when it looks harmless: the name may itself
 * be a link (`a -> .` makes `a/..` the folder above the root), and the kernel resolves `..` from
 * where the link led, not from the text.
 */
export function linkMayLeaveFolder(path: string, target: string): boolean {
  if (target.startsWith('/')) return true;
  let climbs = 0;
  let descended = false;
  for (const component of target.split('/')) {
    if (component === '' || component === '.') continue;
    if (component !== '..') descended = true;
    else if (descended) return true;
    else climbs += 1;
  }
  return climbs > pathDepth(path);
}

/** How the scan reports such a link (on either side), and what a refusal adds to it. */
export function linkLeavingReason(target: string): string {
  return `symlink may lead outside the folder: ${target}`;
}

export interface RefusedLink {
  path: string;
  target: string;
}

/** The link `change` would write into the host, if it may leave the folder. */
export function hostLinkLeavingFolder(change: Change): RefusedLink | undefined {
  const next = change.next;
  if (change.side !== 'host' || next?.kind !== 'symlink' || !linkMayLeaveFolder(change.path, next.target)) return undefined;
  return { path: change.path, target: next.target };
}

/**
 * Reconcile's result without the changes that would write into the host a link that may leave
 * the folder (`refused`). Their paths keep their agreed entries, so the next cycle sees the same
 * difference and refuses it again, and nothing is lost on either side.
 */
export function withoutLinksLeavingFolder<T extends { changes: Change[]; ancestorUpdates: Map<string, Entry | undefined> }>(result: T): T & { refused: RefusedLink[] } {
  const refused: RefusedLink[] = [];
  const changes = result.changes.filter((change) => {
    const link = hostLinkLeavingFolder(change);
    if (link) refused.push(link);
    return !link;
  });
  if (refused.length === 0) return { ...result, refused };
  const ancestorUpdates = new Map(result.ancestorUpdates);
  for (const { path } of refused) ancestorUpdates.delete(path);
  return { ...result, changes, ancestorUpdates, refused };
}
