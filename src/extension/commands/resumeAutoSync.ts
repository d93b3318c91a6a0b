import type { CludCommand } from './command';

/** Resume Auto-Sync: lifts a pause (and a halt, merging both sides without deleting), like `clud resume`. */
export const resumeAutoSync: CludCommand = {
  id: 'clud.resumeAutoSync',
  run: ({ controller }) => controller.resume(),
};
