// Resolving a conflict by hand: keep the host's version, the container's, or both. The losing
// version is always kept aside first, and a normal sync cycle then records the agreement.
import { rename } from 'node:fs/promises';
import * as path from 'node:path';
import type { SyncReport } from '../protocol';
import type { ApplyOutcome } from './apply';
import { applyRecorded } from './recordedApply';
import type { Entry, Snapshot } from './entry';
import { lstatOrUndefined } from './fsEntry';
import { joinBytes } from './pathCodec';
import type { Change, Side } from './reconcile';
import { runSyncCycle } from './engine';
import type { SyncCycleOptions } from './engine';
import { scanTree } from './scan';
import { SyncStateFiles } from './stateFiles';
import { newSyncId } from './engine';

export type KeepChoice = 'host' | 'container' | 'both';

export interface ResolveOptions extends Omit<SyncCycleOptions, 'policy' | 'reset'> {
  path: string;
  keep: KeepChoice;
}

export async function resolveConflict(options: ResolveOptions): Promise<SyncReport> {
  const relative = normalizeRelative(options.path);
  let resolved: ApplyOutcome | undefined;
  let stepId: string | undefined;
  if (options.keep === 'both') {
    // The container's version moves to a sibling name; the next cycle then copies the host's
    // version into the container and the sibling to the host.
    const sibling = await freeSiblingName(options.roots.container, relative);
    await rename(joinBytes(options.roots.container, relative), joinBytes(options.roots.container, sibling));
  } else {
    const winner: Side = options.keep;
    const loser: Side = winner === 'host' ? 'container' : 'host';
    const [winnerScan, loserScan] = await Promise.all([scanTree(options.roots[winner], { excludes: options.excludes }), scanTree(options.roots[loser], { excludes: options.excludes })]);
    // Ignored files inside the loser's version are not ours to delete, and the folder holding
    // them could not be replaced: say so before changing anything.
    const blocking = [...loserScan.ignored].filter((ignoredPath) => ignoredPath.startsWith(`${relative}/`));
    if (blocking.length > 0) {
      throw new Error(`cannot replace ${relative} on the ${loser} side: it holds ignored files (${blocking.slice(0, 3).join(', ')}); move them away first, nothing was changed`);
    }
    const changes = replaceSubtree(relative, winnerScan.snapshot, loserScan.snapshot, loser);
    const state = new SyncStateFiles(options.stateDir);
    const id = `${newSyncId()}-resolve`;
    const recorded = await applyRecorded(changes, { roots: options.roots, keepDir: state.keptDirectory(id) }, options.undo, { syncId: id, policy: `resolve: keep ${options.keep}` });
    if (recorded.denied) throw new Error(`resolving ${relative} was stopped: ${recorded.denied.detail}; nothing was changed on the host`);
    const { outcome } = recorded;
    if (outcome.skipped.length > 0) {
      const first = outcome.skipped[0]!;
      throw new Error(`could not resolve ${relative}: ${first.change.path} on the ${first.change.side} side was ${first.reason}; nothing else was lost, run the command again`);
    }
    resolved = outcome;
    stepId = recorded.stepId;
  }
  const report = await runSyncCycle({ ...options, policy: 'two-way-safe' });
  if (!resolved) return report;
  // The report tells what the resolve itself did too, not only the cycle that recorded it.
  const deleted = resolved.applied.filter((change) => change.next === undefined).length;
  return {
    ...report,
    applied: [...resolved.applied.map((change) => ({ path: change.path, side: change.side, action: change.next === undefined ? ('delete' as const) : change.expected === undefined ? ('create' as const) : ('update' as const) })), ...report.applied].slice(0, 1000),
    appliedCount: report.appliedCount + resolved.applied.length,
    writtenCount: report.writtenCount + resolved.applied.length - deleted,
    deletedCount: report.deletedCount + deleted,
    kept: [...resolved.kept, ...report.kept],
    bytesCopied: report.bytesCopied + resolved.bytesCopied,
    undoStep: stepId ?? report.undoStep,
  };
}

/** Changes that make the loser's subtree at `root` equal to the winner's: delete (keeping files aside), then create. */
export function replaceSubtree(root: string, winner: Snapshot, loser: Snapshot, loserSide: Side): Change[] {
  const under = (candidate: string) => candidate === root || candidate.startsWith(`${root}/`);
  const depth = (candidate: string) => candidate.split('/').length;
  const removals = [...loser.entries()]
    .filter(([candidate]) => under(candidate))
    .sort(([a], [b]) => depth(b) - depth(a) || (a < b ? -1 : 1))
    .map(([candidate, entry]): Change => ({ path: candidate, side: loserSide, expected: entry, next: undefined, keepLoser: entry.kind !== 'directory' || undefined }));
  const creations = [...winner.entries()]
    .filter(([candidate, entry]) => under(candidate) && entry.kind !== 'untracked')
    .sort(([a], [b]) => depth(a) - depth(b) || (a < b ? -1 : 1))
    .map(([candidate, entry]): Change => ({ path: candidate, side: loserSide, expected: undefined, next: entry as Entry }));
  return [...removals, ...creations];
}

async function freeSiblingName(root: string, relative: string): Promise<string> {
  const extension = path.posix.extname(relative);
  const stem = relative.slice(0, relative.length - extension.length);
  for (let attempt = 1; ; attempt += 1) {
    const candidate = `${stem}.container${attempt === 1 ? '' : `-${attempt}`}${extension}`;
    if (!(await lstatOrUndefined(joinBytes(root, candidate)))) return candidate;
  }
}

function normalizeRelative(input: string): string {
  const normalized = path.posix.normalize(input.replace(/\\/g, '/')).replace(/^\.\/+/, '').replace(/\/+$/, '');
  if (!normalized || normalized === '.' || normalized.startsWith('../') || normalized === '..' || path.posix.isAbsolute(normalized)) {
    throw new Error(`"${input}" is not a path inside the workspace`);
  }
  return normalized;
}
