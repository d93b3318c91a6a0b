import * as vscode from 'vscode';
import { showFailure } from '../notify';
import type { CludCommand } from './command';

export const startWorkspace: CludCommand = {
  id: 'clud.startWorkspace',
  run: ({ controller, output }, options?: unknown) =>
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Clud', cancellable: true }, async (progress, token) => {
      const abort = new AbortController();
      token.onCancellationRequested(() => abort.abort());
      const rebuild = (options as { rebuild?: boolean } | undefined)?.rebuild === true;
      try {
        await controller.start({ rebuild, signal: abort.signal, progress: (message) => progress.report({ message: message.slice(0, 120) }) });
      } catch (error) {
        if (!abort.signal.aborted) void showFailure(error, () => vscode.commands.executeCommand('clud.startWorkspace', options), output);
      }
    }),
};
