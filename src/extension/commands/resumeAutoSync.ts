import type { CludCommand } from './command';

/** Resume Auto-Sync: lifts a pause; after a halt it also merges both sides without deleting, like `clud resume`. */
export const resumeAutoSync: CludCommand = {
  id: 'clud.resumeAutoSync',
  run: ({ controller }) => controller.resume('after-halt'),
};
