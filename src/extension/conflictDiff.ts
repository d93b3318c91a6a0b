import * as vscode from 'vscode';
import type { WorkspaceController } from './controller';

export const CONTAINER_SCHEME = 'clud-container';

/** Read-only documents holding a file of the container's /workspace, for the diff editor. */
export function registerContainerDocuments(controller: WorkspaceController): vscode.Disposable {
  return vscode.workspace.registerTextDocumentContentProvider(CONTAINER_SCHEME, {
    provideTextDocumentContent: async (uri) => {
      const content = await controller.workspace().readContainerFile(uri.path.replace(/^\//, ''));
      return content ? content.toString('utf8') : '';
    },
  });
}

/** Opens VS Code's diff editor: the host's version on the left, the container's on the right. */
export async function openConflictDiff(controller: WorkspaceController, conflictPath: string): Promise<void> {
  const hostUri = vscode.Uri.joinPath(controller.folder.uri, ...conflictPath.split('/'));
  const containerUri = vscode.Uri.from({ scheme: CONTAINER_SCHEME, path: `/${conflictPath}` });
  await vscode.commands.executeCommand('vscode.diff', hostUri, containerUri, `${conflictPath} (host ↔ container)`);
}
