import * as vscode from 'vscode';
import { apiKeyOrPrompt } from '../apiKey';
import { openContainerTerminal } from '../containerTerminal';
import type { CludCommand } from './command';

export const openClaudeCode: CludCommand = {
  id: 'clud.openClaudeCode',
  run: async ({ controller, secrets }) => {
    const key = await apiKeyOrPrompt(secrets);
    if (key === undefined) {
      void vscode.window.showWarningMessage('Clud: Claude Code needs an Anthropic API key; run "Clud: Set API Key" to give one.');
      return;
    }
    // The container's key lives on a tmpfs, gone after a restart: it is handed over on every open.
    const workspace = controller.workspace();
    await workspace.setApiKey(key);
    return openContainerTerminal(controller, { name: 'Claude Code', open: () => workspace.openClaude([], { tty: true }) });
  },
};
