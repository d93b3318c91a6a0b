import * as vscode from 'vscode';
import { promptForApiKey } from '../apiKey';
import type { CludCommand } from './command';

export const setApiKey: CludCommand = {
  id: 'clud.setApiKey',
  run: async ({ controller, secrets }) => {
    const key = await promptForApiKey(secrets);
    if (key === undefined) return;
    // A running workspace gets the new key at once; a later start gets it when Claude Code opens.
    const workspace = controller.workspace();
    if ((await workspace.status()).state === 'running') await workspace.setApiKey(key);
    void vscode.window.showInformationMessage('Clud: the API key is stored for Claude Code.');
  },
};
