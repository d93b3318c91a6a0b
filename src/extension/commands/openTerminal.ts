import { openContainerTerminal } from '../containerTerminal';
import type { CludCommand } from './command';

export const openTerminal: CludCommand = {
  id: 'clud.openTerminal',
  run: async ({ controller }) => openContainerTerminal(controller),
};
