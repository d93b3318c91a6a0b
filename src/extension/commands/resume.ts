import { displayText } from '../../core/display';
import * as vscode from 'vscode';
import { describeReport } from '../../core/sync/summary';
import { showFailure } from '../notify';
import type { CludCommand } from './command';

/** Resume Sync After Halt (`clud resume --merge`): the halt is lifted and both sides merged, deleting nothing (a pause is lifted too). */
export const resume: CludCommand = {
  id: 'clud.resume',
  run: async ({ controller, output }) => {
    try {
      const result = await controller.resume();
      void vscode.window.showInformationMessage(displayText(`Clud: resumed.${result.report ? ` ${describeReport(result.report)}` : ''}`));
    } catch (error) {
      void showFailure(error, () => controller.resume(), output);
    }
  },
};
