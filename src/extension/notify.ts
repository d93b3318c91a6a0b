import { displayText } from '../core/display';
import * as vscode from 'vscode';
import { CludError, errorMessage } from '../core/errors';

/**
 * Shows a failure with what to do next: Retry runs the action again, Show Logs opens the log,
 * Rebuild Image appears when the image or agent may be at fault.
 */
export async function showFailure(error: unknown, retry: () => unknown, output: vscode.OutputChannel): Promise<void> {
  const hint = error instanceof CludError && error.hint ? ` ${displayText(forEditor(error.hint.split('\n')[0]!))}` : '';
  const actions = ['Retry', 'Show Logs'];
  if (error instanceof CludError && (error.code === 'image-build-failed' || error.code === 'agent-failed' || error.code === 'agent-exited')) actions.push('Rebuild Image');
  const choice = await vscode.window.showErrorMessage(`Clud: ${displayText(forEditor(errorMessage(error)))}.${hint}`, ...actions);
  if (choice === 'Retry') await Promise.resolve(retry()).catch(() => {});
  else if (choice === 'Show Logs') output.show();
  else if (choice === 'Rebuild Image') await vscode.commands.executeCommand('clud.rebuildImage');
}

/** The core's messages name `clud` commands; in the editor, name the commands there instead. */
const EDITOR_COMMANDS: Array<[RegExp, string]> = [
  [/`clud up --rebuild`/g, '"Clud: Rebuild Image"'],
  [/`clud up`/g, '"Clud: Start Workspace"'],
  [/`clud sync`( \(or `clud pull`\))?/g, '"Clud: Sync Now"'],
  [/`clud pull`/g, '"Clud: Pull from Container"'],
  [/`clud push`/g, '"Clud: Push to Container"'],
  [/`clud resume`/g, '"Clud: Resume Sync After Halt"'],
  [/`clud logs`/g, '"Clud: Show Logs"'],
  [/`clud status`( and "Clud: Show Logs")?/g, '"Clud: Show Logs"'],
  [/pass --force to remove the container anyway/g, 'choose Stop and Discard'],
  [/`clud down --force` to drop them/g, '"Clud: Stop Workspace" and Stop and Discard to drop them'],
];

export function forEditor(text: string): string {
  return EDITOR_COMMANDS.reduce((result, [pattern, replacement]) => result.replace(pattern, replacement), text);
}
