import type { CludCommand } from './command';

/** Resume Auto-Sync (`clud resume`): lifts a pause; after a halt it also merges both sides without deleting. */
export const resumeAutoSync: CludCommand = {
  id: 'clud.resumeAutoSync',
  run: ({ controller }) => controller.resume('after-halt'),
};
