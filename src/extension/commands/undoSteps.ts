import { displayPath, displayText } from '../../core/display';
import * as vscode from 'vscode';
import { showFailure } from '../notify';
import type { CludCommand, CommandContext } from './command';

/**
 * Undo the newest `steps` syncs. Where a later change would be destroyed (a barrier), say which
 * and ask before forcing; forcing keeps those changes aside.
 */
export async function undoSteps({ controller, output }: CommandContext, steps: number): Promise<void> {
  try {
    let result = await controller.undo(steps);
    if (result.refused && result.barriers.length > 0) {
      const paths = result.barriers.map((barrier) => displayPath(barrier.path)).slice(0, 5).join(', ');
      const choice = await vscode.window.showWarningMessage(
        `Clud: ${paths} changed after that sync. Undo anyway?`,
        { modal: true, detail: 'Your later versions of these files are copied aside first, then the folder is put back as it was.' },
        'Undo Anyway',
      );
      if (choice !== 'Undo Anyway') return;
      result = await controller.undo(steps, true);
    }
    if (result.refused) {
      void vscode.window.showWarningMessage(displayText(`Clud: nothing undone: ${result.refused}`));
      return;
    }
    const kept = result.kept.length ? ` ${result.kept.length} later version(s) kept aside.` : '';
    const stopped = result.stoppedBefore ? ` Stopped early: ${result.stoppedBefore.reason}.` : '';
    const problems = result.problems.length ? ` Could not restore exactly: ${result.problems.slice(0, 3).join('; ')}.` : '';
    const message = displayText(`Clud: undid ${result.undone.length} sync(s).${kept}${stopped}${problems} The next sync brings the container in line.`);
    if (problems) void vscode.window.showWarningMessage(message, 'Show Logs').then((choice) => choice && output.show());
    else void vscode.window.showInformationMessage(message);
  } catch (error) {
    void showFailure(error, () => controller.undo(steps), output);
  }
}

export const undoLastSync: CludCommand = {
  id: 'clud.undoLastSync',
  run: (context) => undoSteps(context, 1),
};
