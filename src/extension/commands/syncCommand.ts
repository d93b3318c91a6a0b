import { displayText } from '../../core/display';
import * as vscode from 'vscode';
import type { Policy } from '../../core/sync/reconcile';
import { describeReport } from '../../core/sync/summary';
import { showFailure } from '../notify';
import type { CludCommand } from './command';

/** Push, Pull and Sync Now differ only in policy (Sync Now uses the clud.syncPolicy setting). */
export function syncCommand(id: string, title: string, policy: Policy | undefined): CludCommand {
  return {
    id,
    run: ({ controller, output }) =>
      vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Clud: ${title}` }, async () => {
        try {
          const report = await controller.sync(policy);
          if (report.halted) void vscode.window.showWarningMessage(displayText(`Clud: ${describeReport(report)}. Nothing was changed.`), 'Resume').then((choice) => choice && vscode.commands.executeCommand('clud.resume'));
        } catch (error) {
          void showFailure(error, () => controller.sync(policy), output);
        }
      }),
  };
}
