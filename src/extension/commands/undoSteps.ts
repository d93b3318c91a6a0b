import { displayText } from '../../core/display';
import * as vscode from 'vscode';
import { containerAfterUndo, forcedUndo } from '../../core/stepLabel';
import { showFailure } from '../notify';
import type { CludCommand, CommandContext } from './command';

/**
 * Undo the newest `steps` syncs. Where forcing would undo what was refused (a later change in the
 * way, which forcing keeps aside, or a turn that never ended), say what and ask first.
 */
export async function undoSteps({ controller, output }: CommandContext, steps: number): Promise<void> {
  try {
    let result = await controller.undo(steps);
    const forcing = result.refused ? forcedUndo(result) : undefined;
    if (forcing) {
      const choice = await vscode.window.showWarningMessage(`Clud: ${forcing.question}`, { modal: true, detail: forcing.detail }, 'Undo Anyway');
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
    const message = displayText(`Clud: undid ${result.undone.length} step(s).${kept}${stopped}${problems} ${containerAfterUndo(controller.viewState.live)}`);
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
