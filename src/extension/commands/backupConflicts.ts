import * as vscode from 'vscode';
import { showFailure } from '../notify';
import type { CludCommand } from './command';

export const backupConflicts: CludCommand = {
  id: 'clud.backupConflicts',
  run: async ({ controller, output }) => {
    try {
      const backup = await controller.backup();
      const choice = await vscode.window.showInformationMessage(
        backup.files ? `Clud: backed up both versions of ${backup.files} differing file(s).` : 'Clud: the two sides do not differ; the backup is empty.',
        'Reveal Backup',
      );
      if (choice) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(backup.directory));
    } catch (error) {
      void showFailure(error, () => controller.backup(), output);
    }
  },
};
