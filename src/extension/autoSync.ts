import * as path from 'node:path';
import * as vscode from 'vscode';
import { errorMessage } from '../core/errors';
import { Coalescer } from '../core/ui/coalescer';
import type { WorkspaceController } from './controller';

/** Hints are cheap and the agent waits for a quiet moment itself: a short gathering delay keeps latency low. */
const HINT_DELAY_MS = 50;

/**
 * The editor's saves and file events become `hint` requests to the resident agent (in the
 * continuous and on-save modes of `clud.autoSync`), so a saved file crosses without waiting for
 * a watcher or a rescan. Bursts become one request. With an agent that has no resident sync, a
 * save syncs that file as a request, as before. Changed `clud.*` settings are sent to the agent.
 */
export function createAutoSync(controller: WorkspaceController): vscode.Disposable {
  const saves = new Coalescer<string>((paths) => controller.pathsChanged(paths, true), HINT_DELAY_MS);
  const fileEvents = new Coalescer<string>((paths) => controller.pathsChanged(paths, false), HINT_DELAY_MS);
  const relative = (uri: vscode.Uri): string | undefined => {
    if (uri.scheme !== 'file') return undefined;
    const inFolder = path.relative(controller.folder.uri.fsPath, uri.fsPath);
    if (!inFolder || inFolder.startsWith('..') || path.isAbsolute(inFolder)) return undefined;
    const posix = inFolder.split(path.sep).join('/');
    // git's own files change on every git command and never sync as files.
    return posix === '.git' || posix.startsWith('.git/') ? undefined : posix;
  };
  const onFileEvent = (uri: vscode.Uri) => {
    const file = relative(uri);
    if (file !== undefined) fileEvents.add(file);
  };
  const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(controller.folder, '**/*'));
  return vscode.Disposable.from(
    vscode.workspace.onDidSaveTextDocument((document) => {
      const file = relative(document.uri);
      if (file !== undefined) saves.add(file);
    }),
    watcher,
    watcher.onDidCreate(onFileEvent),
    watcher.onDidChange(onFileEvent),
    watcher.onDidDelete(onFileEvent),
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (!change.affectsConfiguration('clud', controller.folder.uri)) return;
      const autoSyncChanged = change.affectsConfiguration('clud.autoSync', controller.folder.uri) || change.affectsConfiguration('clud.autoSyncOnSave', controller.folder.uri);
      controller.sendLiveSettings({ autoSyncChanged }).catch((error: unknown) => void vscode.window.showErrorMessage(`Clud: ${errorMessage(error)}`));
    }),
    { dispose: () => (saves.dispose(), fileEvents.dispose()) },
  );
}
