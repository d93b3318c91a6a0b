// Barriers: a path a step touched that something else changed afterwards. Undoing the step would
// destroy that change, so it is refused unless forced. For each path, the state a step left
// (its postimage) is compared with what came next: the preimage of the next newer step that
// touched the path (it saw the path before changing it), or, when no newer step touched it, the
// disk. Inside a folder the step created, anything no step accounts for is also a barrier, since
// undo would delete it with the folder.
import { joinBytes } from '../files/pathCodec';
import type { Identity } from './fsState';
import { nonFolderAncestor } from '../files/fsEntry';
import { childKeys, currentPostimage, describeDifference, identityOf } from './fsState';
import type { Manifest, Postimage, StepRecord } from './records';

export interface FoundBarrier {
  stepId: string;
  path: string;
  change: string;
}

/** Which barriers a look is for: those of some steps (default all), at some paths (default all). */
export interface BarrierScope {
  steps?: ReadonlySet<string>;
  /** Whether a path is looked at (see regionFilter in entry.ts): only there can a barrier have come or gone. */
  paths?: (key: string) => boolean;
}

/** Whether a barrier found before falls in `scope`, i.e. is looked for again (and dropped if not found). */
export function inBarrierScope(barrier: FoundBarrier, scope: BarrierScope): boolean {
  return (!scope.steps || scope.steps.has(barrier.stepId)) && (!scope.paths || scope.paths(barrier.path));
}

/**
 * `steps` oldest first, protected ones only (a step's barriers depend on it and newer steps).
 * Only the records in `scope` are compared with the disk: after an incremental cycle, those at the
 * paths it looked at, so that its cost follows the change, not the size of the log.
 */
export async function findBarriers(root: string, steps: readonly Manifest[], scope: BarrierScope = {}): Promise<FoundBarrier[]> {
  const byPath = new Map<string, Array<{ step: number; record: StepRecord }>>();
  /** Each record's next touch of its path, by a newer step (a file the agent saves all afternoon has thousands). */
  const nextTouch = new Map<StepRecord, { step: number; record: StepRecord }>();
  steps.forEach((manifest, step) => {
    for (const record of manifest.records) {
      if (scope.paths && !scope.paths(record.path)) continue;
      const touch = { step, record };
      const list = byPath.get(record.path);
      if (!list) byPath.set(record.path, [touch]);
      else {
        nextTouch.set(list.at(-1)!.record, touch);
        list.push(touch);
      }
    }
  });
  // Made when a folder a step created is looked into, of that step only.
  const pathsOf = new Map<number, Set<string>>();
  const pathsOfStep = (index: number) => {
    let paths = pathsOf.get(index);
    if (!paths) pathsOf.set(index, (paths = new Set(steps[index]!.records.map((record) => record.path))));
    return paths;
  };
  const disk = new Map<string, Promise<Postimage | { kind: 'other' }>>();
  const onDisk = (key: string, hint?: Postimage) => {
    let state = disk.get(key);
    if (!state) disk.set(key, (state = currentPostimage(joinBytes(root, key), hint)));
    return state;
  };

  const found: FoundBarrier[] = [];
  const folders = new Set<string>();
  for (const [index, manifest] of steps.entries()) {
    if (scope.steps && !scope.steps.has(manifest.id)) continue;
    for (const record of manifest.records) {
      if (!byPath.has(record.path)) continue; // outside scope.paths: byPath holds exactly the paths in it
      const next = nextTouch.get(record);
      const nextId = next ? steps[next.step]!.id : undefined;
      const blocked = next || record.path === '' ? undefined : nonFolderAncestor(root, record.path, folders);
      if (blocked) {
        // Nothing can be below a non-folder (short of following a link out of the tree): the
        // path counts as absent, which is no change if the step left it absent.
        if (record.post?.kind !== 'absent' && !(record.pre.kind === 'directory' && record.pre.metadataOnly)) found.push({ stepId: manifest.id, path: record.path, change: `its parent ${blocked} is no longer a folder` });
        continue;
      }
      const after: Identity = next ? identityOf(next.record.pre) : identityOf(await onDisk(record.path, record.post));
      const suffix = nextId ? ` before step ${nextId}` : '';
      if (record.pre.kind === 'directory' && record.pre.metadataOnly) {
        // A folder the step only added to or removed from: only its disappearance matters.
        if (after.kind !== 'directory') found.push({ stepId: manifest.id, path: record.path, change: `folder ${describeDifference({ kind: 'directory', mode: 0 }, after) ?? 'changed'}${suffix}` });
        continue;
      }
      if (!record.post) {
        found.push({ stepId: manifest.id, path: record.path, change: 'the step does not know what it left there (it could not be read back, or the change did not finish)' });
        continue;
      }
      const change = describeDifference(identityOf(record.post), after);
      if (change) found.push({ stepId: manifest.id, path: record.path, change: `${change}${suffix}` });
      else if (record.pre.kind === 'absent' && record.post.kind === 'directory' && !next) {
        for (const child of await childKeys(root, record.path)) {
          if (pathsOfStep(index).has(child)) continue;
          // Created by a newer step: undone (removed) before this one.
          const firstLater = byPath.get(child)?.find((touch) => touch.step > index);
          if (firstLater?.record.pre.kind === 'absent') continue;
          found.push({ stepId: manifest.id, path: child, change: 'added inside a folder this step created' });
        }
      }
    }
  }
  return found;
}
