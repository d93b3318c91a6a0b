import type { CludCommand } from './command';

/** Pause Auto-Sync: the resident agent stops syncing on its own; changes collect until resumed. */
export const pauseAutoSync: CludCommand = {
  id: 'clud.pauseAutoSync',
  run: ({ controller }) => controller.pauseAutoSync(),
};
