// The VS Code shell around the core: one controller per window (its first folder), the status bar
// and the tree render its state, and every command comes from one table. Activation is cheap: it
// only looks for this folder's running container; nothing is built or started until asked.
import { displayText } from '../core/display';
import * as vscode from 'vscode';
import { errorMessage } from '../core/errors';
import { createAutoSync } from './autoSync';
import { COMMANDS } from './commands';
import type { CommandContext } from './commands/command';
import { registerContainerDocuments } from './conflictDiff';
import { WorkspaceController } from './controller';
import { Logger } from './log';
import { createStatusBar } from './statusBar';
import { createTreeView } from './treeView';

export interface CludExtensionApi {
  controller: WorkspaceController | undefined;
  /** Where the Clud log channel's file lives (the extension-host tests read it). */
  logUri: vscode.Uri;
}

export function activate(context: vscode.ExtensionContext): CludExtensionApi {
  const output = vscode.window.createOutputChannel('Clud', { log: true });
  const log = new Logger(output);
  context.subscriptions.push(output);
  void vscode.commands.executeCommand('setContext', 'clud.running', false);

  const folder = vscode.workspace.workspaceFolders?.[0];
  const controller = folder ? new WorkspaceController(folder, context.extensionPath, log) : undefined;
  const commandContext: CommandContext | undefined = controller ? { controller, log, output, secrets: context.secrets } : undefined;
  for (const command of COMMANDS) {
    context.subscriptions.push(
      vscode.commands.registerCommand(command.id, async (...args: unknown[]) => {
        if (!commandContext) {
          void vscode.window.showErrorMessage('Clud: open a folder first; Clud gives a folder its workspace container.');
          return;
        }
        try {
          return await command.run(commandContext, ...args);
        } catch (error) {
          log.error('command.failed', { command: command.id, message: errorMessage(error) });
          void vscode.window.showErrorMessage(displayText(`Clud: ${errorMessage(error)}`), 'Show Logs').then((choice) => choice && output.show());
        }
      }),
    );
  }
  if (controller) {
    context.subscriptions.push(controller, createStatusBar(controller), createTreeView(controller), createAutoSync(controller), registerContainerDocuments(controller));
    controller.attach().catch((error: unknown) => log.info('attach.skipped', { reason: errorMessage(error) }));
  }
  void runTestsIfAsked(context);
  return { controller, logUri: context.logUri };
}

/**
 * Extension-host tests inside a real VS Code (code-server here, where @vscode/test-electron cannot
 * download one): CLUD_EXTENSION_TESTS names a bundle exporting `run(api)`, which this loads.
 */
async function runTestsIfAsked(context: vscode.ExtensionContext): Promise<void> {
  const entry = process.env.CLUD_EXTENSION_TESTS;
  if (!entry) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tests = require(entry) as { run(extensionContext: vscode.ExtensionContext): Promise<void> };
  await tests.run(context);
}

export function deactivate(): void {}
