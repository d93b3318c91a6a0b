import { displayText } from '../../core/display';
import * as vscode from 'vscode';
import { CludError } from '../../core/errors';
import { showFailure } from '../notify';
import type { CludCommand } from './command';

export const stopWorkspace: CludCommand = {
  id: 'clud.stopWorkspace',
  run: async ({ controller, output }) => {
    try {
      await controller.stop();
    } catch (error) {
      if (!(error instanceof CludError && error.code === 'unsynced-changes')) {
        void showFailure(error, () => controller.stop(), output);
        return;
      }
      // Removing the container discards /workspace: ask, and offer the safe way first.
      const choice = await vscode.window.showWarningMessage(displayText(`Clud: ${error.message}. Stopping removes the container and its copy.`), { modal: true }, 'Sync, Then Stop', 'Stop and Discard');
      if (choice === 'Sync, Then Stop') {
        const report = await controller.sync();
        if (report.conflicts.length > 0 || report.halted) {
          void vscode.window.showWarningMessage('Clud: the sync left conflicts or halted; the workspace keeps running until they are settled.');
          return;
        }
        await controller.stop().catch((stopError: unknown) => showFailure(stopError, () => controller.stop(), output));
      } else if (choice === 'Stop and Discard') {
        await controller.stop({ force: true }).catch((stopError: unknown) => showFailure(stopError, () => controller.stop({ force: true }), output));
      }
    }
  },
};
