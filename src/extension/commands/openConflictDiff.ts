import { openConflictDiff as openDiff } from '../conflictDiff';
import { pathArgument } from './command';
import type { CludCommand } from './command';
import { pickConflict } from './keepVersion';

export const openConflictDiff: CludCommand = {
  id: 'clud.openConflictDiff',
  run: async ({ controller }, argument) => {
    const conflictPath = pathArgument(argument) ?? (await pickConflict(controller.viewState.conflicts.map((conflict) => conflict.path)));
    if (conflictPath) await openDiff(controller, conflictPath);
  },
};
