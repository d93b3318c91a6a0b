// Resolving a conflict by hand: keep the host's version, the container's, or both. The losing
// version is always kept aside first, and a normal sync cycle then records the agreement.
import { link, rename } from 'node:fs/promises';
import * as path from 'node:path';
import { MAX_LISTED, RESOLVE_POLICY_PREFIX, type SyncReport } from '../protocol';
import type { ApplyOutcome } from './apply';
import { applyRecorded, undoStepFields } from './recordedApply';
import { entriesEqual } from '../files/entry';
import type { Entry, Snapshot } from '../files/entry';
import { lstatOrUndefined } from '../files/fsEntry';
import { pinParent } from './beneath';
import { bytesFromName, joinBytes } from '../files/pathCodec';
import { keepUnder, replaceChecked } from '../files/replaceChecked';
import { otherSide } from './reconcile';
import type { Change, Side } from './reconcile';
import { newSyncId, runStoreCycle } from './engine';
import type { StoreCycleOptions } from './engine';
import { isIgnoredHere, scanTree } from './scan';
import { hostLinkLeavingFolder, linkLeavingReason } from './linksLeavingFolder';
import { SyncStateFiles } from './stateFiles';

export type KeepChoice = 'host' | 'container' | 'both';

/** The store holds the agreed state the closing cycle records the resolution in. */
export interface ResolveOptions extends Omit<StoreCycleOptions, 'policy' | 'reset' | 'dirty' | 'onlyPaths' | 'history'> {
  path: string;
  keep: KeepChoice;
}

const RESOLVE_BOTH = `${RESOLVE_POLICY_PREFIX}both`;

export async function resolveConflict(options: ResolveOptions): Promise<SyncReport> {
  const relative = normalizeRelative(options.path);
  let resolved: ApplyOutcome | undefined;
  let step: ReturnType<typeof undoStepFields> = {};
  let renamed: { from: string; to: string; shortened: boolean } | undefined;
  const state = new SyncStateFiles(options.store.directory);
  const decidedAt = Date.now();
  const [hostScan, containerScan] = await Promise.all([
    scanTree(options.roots.host, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store.host, accessAs: options.hostAccess }),
    scanTree(options.roots.container, { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store.container }),
  ]);
  const scans = { host: hostScan, container: containerScan };
  // The sync leaves a path ignored on either side alone on both; so does a resolve.
  const ignoredOnEither = (candidate: string, isDirectory: boolean) => isIgnoredHere(scans.host, candidate, isDirectory) || isIgnoredHere(scans.container, candidate, isDirectory);
  if (ignoredOnEither(relative, scans.host.snapshot.get(relative)?.kind === 'directory' || scans.container.snapshot.get(relative)?.kind === 'directory')) {
    throw new Error(`${relative} is ignored on one side; a sync never touches it, nor does a resolve`);
  }
  // A mistyped path would otherwise be a resolve of nothing that reports success.
  if (!scans.host.snapshot.has(relative) && !scans.container.snapshot.has(relative)) {
    throw new Error(`${relative} exists on neither side; nothing was changed (\`clud conflicts\` lists the conflicts by their paths)`);
  }
  const hostVersion = scans.host.snapshot.get(relative);
  // Two copies of one version are not two versions (a folder's are compared child by child, below).
  const same = hostVersion?.kind !== 'directory' && entriesEqual(hostVersion, scans.container.snapshot.get(relative));
  if (same && options.keep === 'both') throw new Error(`${relative} is not in conflict: both sides hold the same version, so there is nothing to keep twice; nothing was changed`);
  let notices: string[] = [];
  if (options.keep === 'both') {
    // The container's version moves to a sibling name; the next cycle then copies the host's
    // version into the container and the sibling to the host.
    const isDirectory = scans.container.snapshot.get(relative)?.kind === 'directory';
    if (!scans.container.snapshot.has(relative)) throw new Error(`${relative} does not exist in the container; keep host instead`);
    const sibling = await freeSiblingName(options.roots.container, relative, {
      ignored: (candidate) => ignoredOnEither(candidate, isDirectory),
      taken: (candidate) => scans.host.snapshot.has(candidate),
    });
    // Both names inside the parent folder as pinned (a sibling has the same parent): a folder of
    // /workspace swapped for a symlink meanwhile is not followed (see beneath.ts).
    const pinned = pinParent(options.roots.container, relative);
    if (!pinned.ok) throw new Error(`${relative} changed in the container while it was resolved (parent ${pinned.at} ${pinned.code === 'parent-replaced' ? 'is no longer a folder' : 'is gone'}); nothing was changed, run the command again`);
    try {
      await moveToFreeName(pinned.path, pinned.folder.path(sibling.name.slice(sibling.name.lastIndexOf('/') + 1)), scans.container.snapshot.get(relative)!, state.keptDirectory(`${newSyncId()}-resolve`), relative);
    } finally {
      pinned.folder.close();
    }
    renamed = { from: relative, to: sibling.name, shortened: sibling.shortened };
  } else {
    const winner: Side = options.keep;
    const loser = otherSide(winner);
    const [winnerScan, loserScan] = [scans[winner], scans[loser]];
    // Ignored files inside either version are not ours to delete or copy, and a folder holding
    // them could not be replaced: say so before changing anything.
    const under = (candidate: string) => candidate.startsWith(`${relative}/`);
    const blocking = [...loserScan.ignored, ...[...loserScan.snapshot.keys()].filter((candidate) => under(candidate) && ignoredOnEither(candidate, loserScan.snapshot.get(candidate)?.kind === 'directory'))].filter(under);
    if (blocking.length > 0) {
      throw new Error(`cannot replace ${relative} on the ${loser} side: it holds ignored files (${blocking.slice(0, 3).join(', ')}); move them away first, nothing was changed`);
    }
    const winnerVersion = new Map([...winnerScan.snapshot].filter(([candidate, entry]) => !(under(candidate) && ignoredOnEither(candidate, entry.kind === 'directory'))));
    const changes = replaceSubtree(relative, winnerVersion, loserScan.snapshot, loser);
    if (changes.length === 0) notices = [`${relative} is not in conflict: both sides hold the same version, so the resolve changed nothing`];
    const leaving = changes.map(hostLinkLeavingFolder).find((link) => link !== undefined);
    if (leaving) throw new Error(`cannot keep the container's version of ${relative}: ${leaving.path}: ${linkLeavingReason(leaving.target)}, and such a link is never written into your folder; nothing was changed`);
    const id = `${newSyncId()}-resolve`;
    const recorded = await applyRecorded(changes, { roots: options.roots, keepDir: state.keptDirectory(id), owners: options.owners, decidedAt }, options.undo, { syncId: id, policy: `${RESOLVE_POLICY_PREFIX}${options.keep}` });
    if (recorded.denied) throw new Error(`resolving ${relative} was stopped: ${recorded.denied.detail}; nothing was changed on the host`);
    const { outcome } = recorded;
    if (outcome.skipped.length > 0) {
      const first = outcome.skipped[0]!;
      throw new Error(`could not resolve ${relative}: ${first.change.path} on the ${first.change.side} side was ${first.reason}; nothing else was lost, run the command again`);
    }
    resolved = outcome;
    step = undoStepFields(recorded);
  }
  // After keep both, this cycle carries the container's version, moved to its sibling name, to the host: the resolve's step.
  const report = (await runStoreCycle({ ...options, policy: 'two-way-safe', ...(renamed && { stepPolicy: RESOLVE_BOTH }) })).report as SyncReport;
  if (renamed) {
    const moved = [
      { path: renamed.from, side: 'container' as const, action: 'delete' as const },
      { path: renamed.to, side: 'container' as const, action: 'create' as const },
    ];
    // A name cut short to fit is not where the user would look: say where it went.
    const notices = renamed.shortened ? [`the container's version of ${renamed.from} is at ${renamed.to}: the name was shortened to fit the ${NAME_MAX_BYTES}-byte limit on a name`, ...report.notices] : report.notices;
    return { ...report, notices, applied: [...moved, ...report.applied].slice(0, MAX_LISTED), appliedCount: report.appliedCount + 2, writtenCount: report.writtenCount + 1, deletedCount: report.deletedCount + 1 };
  }
  if (!resolved) return { ...report, notices: [...notices, ...report.notices] };
  // The report tells what the resolve itself did too, not only the cycle that recorded it.
  const deleted = resolved.applied.filter((change) => change.next === undefined).length;
  return {
    ...report,
    notices: [...notices, ...report.notices],
    applied: [...resolved.applied.map((change) => ({ path: change.path, side: change.side, action: change.next === undefined ? ('delete' as const) : change.expected === undefined ? ('create' as const) : ('update' as const) })), ...report.applied].slice(0, MAX_LISTED),
    appliedCount: report.appliedCount + resolved.applied.length,
    writtenCount: report.writtenCount + resolved.applied.length - deleted,
    deletedCount: report.deletedCount + deleted,
    kept: [...resolved.kept, ...report.kept],
    bytesCopied: report.bytesCopied + resolved.bytesCopied,
    ...(step.undoStep && step),
  };
}

/**
 * Changes that make the loser's subtree at `root` equal to the winner's. A path both have as a
 * file or link is replaced in place (one checked, atomic update, the old version kept aside); a
 * folder both have stays; everything else of the loser's goes first (deepest first, files kept
 * aside), then the winner's is created (shallowest first).
 */
export function replaceSubtree(root: string, winner: Snapshot, loser: Snapshot, loserSide: Side): Change[] {
  const under = (candidate: string) => candidate === root || candidate.startsWith(`${root}/`);
  const depth = (candidate: string) => candidate.split('/').length;
  const isFolder = (entry: Entry | undefined) => entry?.kind === 'directory';
  const sameShape = (candidate: string) => {
    const mine = loser.get(candidate);
    const theirs = winner.get(candidate);
    return mine !== undefined && theirs !== undefined && theirs.kind !== 'untracked' && isFolder(mine) === isFolder(theirs);
  };
  const removals = [...loser.entries()]
    .filter(([candidate]) => under(candidate) && !sameShape(candidate))
    .sort(([a], [b]) => depth(b) - depth(a) || (a < b ? -1 : 1))
    .map(([candidate, entry]): Change => ({ path: candidate, side: loserSide, expected: entry, next: undefined, keepLoser: entry.kind !== 'directory' || undefined }));
  const writes = [...winner.entries()]
    .filter(([candidate, entry]) => under(candidate) && entry.kind !== 'untracked' && !(sameShape(candidate) && (isFolder(entry) || entriesEqual(entry, loser.get(candidate)))))
    .sort(([a], [b]) => depth(a) - depth(b) || (a < b ? -1 : 1))
    .map(([candidate, entry]): Change => {
      const expected = sameShape(candidate) ? loser.get(candidate) : undefined;
      return { path: candidate, side: loserSide, expected, next: entry as Entry, keepLoser: expected ? true : undefined };
    });
  return [...removals, ...writes];
}

/**
 * Moves the container's version to its sibling name without replacing anything: a folder by
 * rename (onto a name that is free; at worst an empty folder that appeared is replaced), a file or
 * link by link() (which refuses a name taken meanwhile) and then replaceChecked's removal of the
 * old name, which leaves a version written there meanwhile in place.
 */
async function moveToFreeName(from: Buffer, to: Buffer, expected: Entry, keepDir: string, relative: string): Promise<void> {
  if (expected.kind === 'directory') {
    await rename(from, to);
    return;
  }
  await link(from, to);
  // What the old name is removed for: the inode now also at the sibling name.
  const foundAt = Date.now();
  const found = await lstatOrUndefined(to);
  const removed = await replaceChecked(from, undefined, { found, foundAt, hash: expected.kind === 'file' ? expected.hash : undefined, linkTarget: expected.kind === 'symlink' ? expected.target : undefined }, { keep: keepUnder(path.join(keepDir, 'container'), relative) });
  if (!removed.ok) throw new Error(`${relative} changed in the container while it was resolved (${removed.reason}); its version from before is at the sibling name, run the command again`);
}

/** The longest name (one path component) Linux file systems take, in bytes. */
export const NAME_MAX_BYTES = 255;

/** `name.container.ext`, else `name.ext.container`, numbered if taken (here or on the host); never an ignored name. */
async function freeSiblingName(root: string, relative: string, check: { ignored: (candidate: string) => boolean; taken: (candidate: string) => boolean }): Promise<{ name: string; shortened: boolean }> {
  for (const form of siblingNameForms(relative)) {
    for (let attempt = 1; attempt < 100; attempt += 1) {
      const candidate = form.name(attempt === 1 ? '' : `-${attempt}`);
      if (check.ignored(candidate)) break; // numbering does not make an ignored form synced
      if (!check.taken(candidate) && !(await lstatOrUndefined(joinBytes(root, candidate)))) return { name: candidate, shortened: form.shortened(attempt === 1 ? '' : `-${attempt}`) };
    }
  }
  throw new Error(`no free, synced name for the container's version of ${relative}; rename it yourself`);
}

/**
 * The sibling names for the container's version, `stem.container[-N].ext` then
 * `name.ext.container[-N]`. Where the suffix would push the last component over NAME_MAX_BYTES,
 * the stem (or name) is cut, at a character boundary, so that the whole fits.
 */
export function siblingNameForms(relative: string, nameMax = NAME_MAX_BYTES): { name(number: string): string; shortened(number: string): boolean }[] {
  const directory = relative.includes('/') ? relative.slice(0, relative.lastIndexOf('/') + 1) : '';
  const base = relative.slice(directory.length);
  const extension = path.posix.extname(base);
  const stem = base.slice(0, base.length - extension.length);
  const fitted = (head: string, tail: string) => {
    const room = nameMax - bytesFromName(tail).length;
    let cut = head;
    while (cut.length > 0 && bytesFromName(cut).length > room) cut = [...cut].slice(0, -1).join('');
    return { name: directory + cut + tail, shortened: cut !== head };
  };
  return [
    { name: (number: string) => fitted(stem, `.container${number}${extension}`).name, shortened: (number: string) => fitted(stem, `.container${number}${extension}`).shortened },
    { name: (number: string) => fitted(base, `.container${number}`).name, shortened: (number: string) => fitted(base, `.container${number}`).shortened },
  ];
}
function normalizeRelative(input: string): string {
  const normalized = path.posix.normalize(input.replace(/\\/g, '/')).replace(/^\.\/+/, '').replace(/\/+$/, '');
  if (!normalized || normalized === '.' || normalized.startsWith('../') || normalized === '..' || path.posix.isAbsolute(normalized)) {
    throw new Error(`"${input}" is not a path inside the workspace`);
  }
  return normalized;
}
