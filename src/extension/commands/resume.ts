import { displayText } from '../../core/display';
import * as vscode from 'vscode';
import { describeReport } from '../../core/sync/summary';
import { showFailure } from '../notify';
import type { CludCommand } from './command';

export const resume: CludCommand = {
  id: 'clud.resume',
  run: async ({ controller, output }) => {
    try {
      const report = await controller.resume();
      void vscode.window.showInformationMessage(displayText(`Clud: resumed. ${describeReport(report)}`));
    } catch (error) {
      void showFailure(error, () => controller.resume(), output);
    }
  },
};
