import * as vscode from 'vscode';
import type { CludCommand } from './command';

export const openInBrowser: CludCommand = {
  id: 'clud.openInBrowser',
  run: async ({ controller }) => {
    const { url } = await controller.workspace().uiAddress();
    await vscode.env.openExternal(vscode.Uri.parse(url));
  },
};
