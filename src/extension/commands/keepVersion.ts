import { displayPath, displayText } from '../../core/display';
import * as vscode from 'vscode';
import { describeReport } from '../../core/sync/summary';
import { showFailure } from '../notify';
import { pathArgument } from './command';
import type { CludCommand } from './command';

export function keepVersion(id: string, choice: 'host' | 'container' | 'both'): CludCommand {
  return {
    id,
    run: async ({ controller, output }, argument) => {
      const conflictPath = pathArgument(argument) ?? (await pickConflict(controller.viewState.conflicts.map((conflict) => conflict.path)));
      if (!conflictPath) return;
      try {
        const report = await controller.resolve(conflictPath, choice);
        const kept = report.kept.length ? ` The other version is kept at ${report.kept[0]!.keptAt}.` : '';
        void vscode.window.showInformationMessage(displayText(`Clud: kept the ${choice === 'both' ? 'two versions' : `${choice} version`} of ${conflictPath}.${kept} ${describeReport(report)}`));
      } catch (error) {
        void showFailure(error, () => controller.resolve(conflictPath, choice), output);
      }
    },
  };
}

export async function pickConflict(paths: string[]): Promise<string | undefined> {
  if (paths.length === 0) {
    void vscode.window.showInformationMessage('Clud: there are no conflicts.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(paths.map((path) => ({ label: displayPath(path), path })), { placeHolder: 'Which conflict?' });
  return picked?.path;
}

