import * as vscode from 'vscode';
import { displayText } from '../../core/display';
import { describeUndoStep, lastTurnUndo } from '../../core/stepLabel';
import { showFailure } from '../notify';
import type { CludCommand } from './command';
import { undoSteps } from './undoSteps';

/** Puts the folder back as it was before Claude Code's last turn (and whatever came after it, asking first). */
export const undoLastTurn: CludCommand = {
  id: 'clud.undoLastTurn',
  run: async (context) => {
    let plan;
    try {
      plan = lastTurnUndo(await context.controller.undoHistory());
    } catch (error) {
      return showFailure(error, () => context.controller.undoHistory(), context.output);
    }
    if (!plan) {
      void vscode.window.showInformationMessage('Clud: no Claude Code turn to undo: none of the undoable steps is a turn.');
      return;
    }
    if (plan.newer.length > 0) {
      const names = plan.newer.slice(0, 3).map((step) => describeUndoStep(step)).join(', ');
      const choice = await vscode.window.showWarningMessage(
        displayText(`Clud: ${plan.newer.length} newer step(s) (${names}${plan.newer.length > 3 ? ', …' : ''}) came after ${describeUndoStep(plan.turn)}; undo them too?`),
        { modal: true, detail: 'Undo takes steps back newest first, so the turn can only be undone with everything after it.' },
        'Undo All',
      );
      if (choice !== 'Undo All') return;
    }
    return undoSteps(context, plan.steps);
  },
};
