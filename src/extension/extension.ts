// The VS Code shell around the core. This first cut registers the workspace commands on the same
// Workspace class the CLI uses; the status bar, tree view and auto-sync come with the extension issue.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parseConfig } from '../core/config';
import { DockerodeEngine } from '../core/docker/dockerodeEngine';
import { CludError, errorMessage } from '../core/errors';
import { Workspace } from '../core/workspace';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Clud', { log: true });
  context.subscriptions.push(output);

  const workspaceFor = (onProgress?: (message: string) => void): Workspace | undefined => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) {
      void vscode.window.showErrorMessage('Clud: open a folder first.');
      return undefined;
    }
    const settings = vscode.workspace.getConfiguration('clud');
    const config = parseConfig({ imageTag: settings.get('imageTag') ?? undefined, containerName: settings.get('containerName') || undefined }, (key) => `clud.${key}`);
    return new Workspace({
      hostPath: folder.uri.fsPath,
      platform: process.platform === 'win32' ? 'win32' : process.platform === 'darwin' ? 'darwin' : 'linux',
      config,
      engine: new DockerodeEngine(),
      resources: { agentBundlePath: path.join(context.extensionPath, 'dist', 'agent.js'), containerDir: path.join(context.extensionPath, 'container') },
      onProgress: (event) => {
        output.info(`[${event.phase}] ${event.message}`);
        onProgress?.(event.message);
      },
    });
  };

  const run = (title: string, work: (workspace: Workspace) => Promise<string>) => () =>
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Clud: ${title}` }, async (progress) => {
      try {
        const workspace = workspaceFor((message) => progress.report({ message }));
        if (!workspace) return;
        void vscode.window.showInformationMessage(`Clud: ${await work(workspace)}`);
      } catch (error) {
        output.error(errorMessage(error));
        const hint = error instanceof CludError && error.hint ? ` ${error.hint.split('\n')[0]}` : '';
        const choice = await vscode.window.showErrorMessage(`Clud: ${errorMessage(error)}.${hint}`, 'Show Logs');
        if (choice === 'Show Logs') output.show();
      }
    });

  const commands: Array<[string, string, (workspace: Workspace) => Promise<string>]> = [
    ['clud.startWorkspace', 'Starting workspace', async (workspace) => {
      const result = await workspace.up();
      return result.init?.phase === 'ready' ? `${result.containerName} is running and synced.` : `${result.containerName} is running, but the initial copy failed: ${result.init?.error}`;
    }],
    ['clud.stopWorkspace', 'Stopping workspace', async (workspace) => ((await workspace.down()).removed ? 'workspace removed.' : 'no workspace was running.')],
    ['clud.push', 'Pushing', async (workspace) => summarize(await workspace.push())],
    ['clud.pull', 'Pulling', async (workspace) => summarize(await workspace.pull())],
  ];
  for (const [id, title, work] of commands) context.subscriptions.push(vscode.commands.registerCommand(id, run(title, work)));
}

function summarize(metrics: { direction: string; filesTransferred: number; filesDeleted: number; errors: string[] }): string {
  return `${metrics.direction}: ${metrics.filesTransferred} transferred, ${metrics.filesDeleted} deleted${metrics.errors.length ? `, ${metrics.errors.length} error(s)` : ''}.`;
}

export function deactivate(): void {}
