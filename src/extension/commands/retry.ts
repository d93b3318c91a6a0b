import * as vscode from 'vscode';
import { showFailure } from '../notify';
import type { CludCommand } from './command';

export const retry: CludCommand = {
  id: 'clud.retry',
  run: async ({ controller, output }) => {
    if (controller.viewState.health.kind === 'stopped') return vscode.commands.executeCommand('clud.startWorkspace');
    await Promise.resolve(controller.retry()).catch((error: unknown) => showFailure(error, () => controller.retry(), output));
  },
};
