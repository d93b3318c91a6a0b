import type { CludCommand } from './command';
import { undoSteps } from './undoSteps';

/** From the History in the Clud view: takes back this sync and every newer one. */
export const undoToHere: CludCommand = {
  id: 'clud.undoToHere',
  run: (context, node) => {
    const steps = (node as { undoSteps?: unknown } | undefined)?.undoSteps;
    return undoSteps(context, typeof steps === 'number' && steps > 0 ? steps : 1);
  },
};
