import * as path from 'node:path';
import * as vscode from 'vscode';
import { Coalescer } from '../core/ui/coalescer';
import type { WorkspaceController } from './controller';
import { readSettings } from './settings';

/**
 * Saving a file in the folder syncs that file into the container. Bursts of saves become one
 * request, and at most one runs at a time. Only while a workspace runs, and only if enabled.
 */
export function createAutoSync(controller: WorkspaceController): vscode.Disposable {
  const coalescer = new Coalescer<string>(async (paths) => {
    await controller.sync(undefined, paths).catch(() => {
      // The controller has already put the failure in the status bar and the log.
    });
  });
  const subscription = vscode.workspace.onDidSaveTextDocument((document) => {
    if (document.uri.scheme !== 'file') return;
    const state = controller.viewState.health.kind;
    if (state === 'stopped' || state === 'starting' || (state === 'error' && controller.viewState.health.kind === 'error' && controller.viewState.health.retry === 'start')) return;
    let enabled = true;
    try {
      enabled = readSettings(controller.folder.uri).config.autoSyncOnSave;
    } catch {
      return; // An invalid setting is reported when a command reads it.
    }
    if (!enabled) return;
    const relative = path.relative(controller.folder.uri.fsPath, document.uri.fsPath);
    if (!relative || relative.startsWith('..') || path.isAbsolute(relative)) return;
    coalescer.add(relative.split(path.sep).join('/'));
  });
  return vscode.Disposable.from(subscription, { dispose: () => coalescer.dispose() });
}
