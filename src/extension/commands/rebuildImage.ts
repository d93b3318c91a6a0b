import * as vscode from 'vscode';
import type { CludCommand } from './command';

export const rebuildImage: CludCommand = {
  id: 'clud.rebuildImage',
  run: () => vscode.commands.executeCommand('clud.startWorkspace', { rebuild: true }),
};
