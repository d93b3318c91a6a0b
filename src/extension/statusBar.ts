import * as vscode from 'vscode';
import { statusBarView } from '../core/ui/statusBar';
import type { WorkspaceController } from './controller';

/** The status-bar sync button: renders the controller's state; a click syncs (or starts, or retries). */
export function createStatusBar(controller: WorkspaceController): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('clud.status', vscode.StatusBarAlignment.Left, 100);
  item.name = 'Clud Workspace';
  const render = () => {
    const view = statusBarView(controller.viewState);
    item.text = view.text;
    item.tooltip = view.tooltip;
    item.command = view.command;
    item.backgroundColor = view.severity === 'normal' ? undefined : new vscode.ThemeColor(view.severity === 'error' ? 'statusBarItem.errorBackground' : 'statusBarItem.warningBackground');
  };
  render();
  item.show();
  const subscription = controller.onDidChange(render);
  return vscode.Disposable.from(item, subscription);
}
