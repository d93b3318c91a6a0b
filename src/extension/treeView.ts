import * as vscode from 'vscode';
import { buildTree } from '../core/ui/tree';
import type { TreeNode } from '../core/ui/tree';
import type { WorkspaceController } from './controller';

const REFRESH_DELAY_MS = 150;

/** The Clud view: the same state as the status bar, as a tree; refreshes are debounced. */
class WorkspaceTreeProvider implements vscode.TreeDataProvider<TreeNode> {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: TreeNode[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly controller: WorkspaceController) {
    this.roots = buildTree(controller.viewState);
  }

  scheduleRefresh(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.roots = buildTree(this.controller.viewState);
      this.changed.fire(undefined);
    }, REFRESH_DELAY_MS);
  }

  getChildren(node?: TreeNode): TreeNode[] {
    return node ? (node.children ?? []) : this.roots;
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const state = node.children?.length ? (node.expanded ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed) : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, state);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.contextValue = node.contextValue;
    if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
    if (node.command) item.command = node.command;
    return item;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
  }
}

export function createTreeView(controller: WorkspaceController): vscode.Disposable {
  const provider = new WorkspaceTreeProvider(controller);
  const view = vscode.window.createTreeView('clud.workspace', { treeDataProvider: provider, showCollapseAll: true });
  const subscription = controller.onDidChange(() => provider.scheduleRefresh());
  return vscode.Disposable.from(view, subscription, provider);
}
