// The Clud view's content as plain data, built from the same status value as the status bar.
// The extension maps each node to a vscode.TreeItem; contextValue drives the menus in package.json.
import { displayPath, displayText, formatBytes } from '../display';
import { describeUndoStep } from '../stepLabel';
import { describeAgentBranch } from '../git/refNames';
import { describeReport, describeSecretOtherSide, summarizeReport } from '../sync/summary';
import type { GitExchange } from '../protocol';
import { unlistedCount, type WorkspaceViewState } from './state';

export interface TreeNode {
  id: string;
  /** Shown as it is: every name from a tree in it has gone through displayPath. */
  label: string;
  /** The raw relative path a conflict node stands for (its label is escaped for display). */
  path?: string;
  description?: string;
  tooltip?: string;
  /** A codicon id, e.g. "check". */
  icon?: string;
  contextValue?: string;
  expanded?: boolean;
  command?: { command: string; title: string; arguments?: unknown[] };
  children?: TreeNode[];
  /** On an undo step: how many steps "Undo to here" takes back. */
  undoSteps?: number;
}

const HEALTH_LABEL: Record<WorkspaceViewState['health']['kind'], string> = {
  stopped: 'stopped',
  starting: 'starting',
  syncing: 'syncing',
  synced: 'synced',
  conflict: 'conflict',
  'changes-waiting': 'changes waiting',
  'waiting-for-approval': 'waiting for approval',
  paused: 'paused',
  halted: 'halted',
  error: 'error',
};

/** Empty while nothing runs, so VS Code shows the welcome view with its Start button instead. */
export function buildTree(state: WorkspaceViewState): TreeNode[] {
  if (state.health.kind === 'stopped') return [];
  const nodes: TreeNode[] = [workspaceNode(state)];
  const last = state.history[0];
  if (last) nodes.push(lastSyncNode(last));
  const git = state.history.find((report) => report.git)?.git;
  if (git && (git.branches.length > 0 || git.problems.length > 0)) nodes.push(gitNode(git));
  if (state.conflicts.length > 0) {
    const count = state.conflicts.length + unlistedCount(state, 'conflicts');
    const listed: TreeNode[] = state.conflicts.map((conflict) => ({
      id: `conflict:${conflict.path}`,
      label: displayPath(conflict.path),
      path: conflict.path,
      // A conflict no report at hand described is named alone: "deleted" on both would be wrong.
      description: conflict.host || conflict.container ? `host: ${conflict.host?.kind ?? 'deleted'} · container: ${conflict.container?.kind ?? 'deleted'}` : 'both sides changed',
      tooltip: 'Both sides changed this path since the last sync. Compare them, then keep one version or both.',
      icon: 'diff',
      contextValue: conflict.host?.kind === 'file' && conflict.container?.kind === 'file' ? 'conflict.file' : 'conflict',
      command: { command: 'clud.openConflictDiff', title: 'Compare', arguments: [conflict.path] },
    }));
    // Past the agent's list (its first MAX_LISTED), conflicts are counted: they are listed as those are resolved.
    if (count > listed.length) listed.push({ id: 'conflicts:unlisted', label: `… and ${count - listed.length} more`, tooltip: 'Only the first conflicts are listed; as those are resolved, the rest are listed.', icon: 'warning' });
    nodes.push({ id: 'conflicts', label: 'Conflicts', description: String(count), icon: 'warning', expanded: true, contextValue: 'conflicts', children: listed });
  }
  if (state.health.kind === 'waiting-for-approval') {
    nodes.splice(1, 0, {
      id: 'question',
      label: 'Waiting for approval',
      description: displayText(state.health.detail),
      tooltip: `A sync holds this change until you allow or deny it: ${displayText(state.health.detail)}`,
      icon: 'question',
      contextValue: 'question',
    });
  }
  const problems = [...state.problems];
  for (const watch of state.live?.degraded ?? []) problems.unshift({ path: '', side: watch.side, reason: `watcher on the ${watch.side} side: ${watch.reason}` });
  if (state.live?.failed) problems.unshift({ path: '', side: '', reason: `the last sync failed: ${state.live.failed.reason}; the next change or rescan tries again` });
  if (state.health.kind === 'halted') problems.unshift({ path: '', side: '', reason: `sync halted: ${state.health.reason}` });
  if (state.health.kind === 'error') problems.unshift({ path: '', side: '', reason: state.health.message });
  if (problems.length > 0) {
    nodes.push({
      id: 'problems',
      label: 'Problems',
      description: String(problems.length + unlistedCount(state, 'problems')),
      icon: 'error',
      expanded: true,
      contextValue: 'problems',
      children: problems.map((problem, index) => ({
        id: `problem:${index}`,
        label: problem.path ? displayPath(problem.path) : displayText(problem.reason),
        description: problem.path ? `${problem.side}: ${displayText(problem.reason)}` : undefined,
        tooltip: displayText(problem.reason),
        icon: 'circle-filled',
        contextValue: 'problem',
      })),
    });
  }
  const { keptOut } = state;
  if (keptOut.length > 0) {
    nodes.push({
      id: 'keptOut',
      label: 'Kept out',
      description: String(keptOut.length + unlistedCount(state, 'keptOut')),
      tooltip: 'Files that hold credentials stay on their side: never copied, overwritten or deleted. The setting clud.allowSecrets lets named files through.',
      icon: 'lock',
      contextValue: 'keptOut',
      children: keptOut.map((secret) => {
        const otherSide = describeSecretOtherSide(secret);
        return {
          id: `keptOut:${secret.side}:${secret.path}`,
          label: displayPath(secret.path),
          description: `${secret.side}: ${displayText(secret.reason)}${otherSide ? `; ${otherSide}` : ''}`,
          tooltip: `Not copied to the ${secret.side === 'host' ? 'container' : 'host'}: ${displayText(secret.reason)}${otherSide ? ` (${otherSide})` : ''}`,
          icon: 'lock',
          contextValue: 'keptOutFile',
        };
      }),
    });
  }
  if (state.undoSteps.length > 0 || state.undoDisabledReason) {
    nodes.push({
      id: 'undo',
      label: 'History',
      description: state.undoDisabledReason ? 'undo disabled' : `${state.undoSteps.length} undoable`,
      tooltip: state.undoDisabledReason ? displayText(state.undoDisabledReason) : 'Steps that changed your folder, newest first: Claude Code turns, commands, checkpoints, syncs. "Undo to here" puts the folder back as it was before that step.',
      icon: 'history',
      expanded: true,
      children: state.undoSteps.map((step, index) => ({
        id: `undo:${step.id}`,
        label: describeUndoStep(step),
        description: `${new Date(step.closedAt).toLocaleTimeString()} · ${step.files} path(s) · ${formatBytes(step.bytes)}${step.protected ? '' : ' · not undoable'}${step.barriers ? ` · ${step.barriers} barrier(s)` : ''}`,
        tooltip: step.protected ? `Undo the newest ${index + 1} step(s), back to before this one.` : displayText(step.unprotectedReason ?? 'Too large to keep: cannot be undone.'),
        icon: step.protected ? (step.barriers ? 'lock' : 'discard') : 'circle-slash',
        // "Undo to here" takes back this step and every newer one.
        contextValue: step.protected ? 'undoStep' : 'undoStep.unprotected',
        undoSteps: index + 1,
      })),
    });
  }
  if (state.history.length > 0) {
    nodes.push({
      id: 'history',
      label: 'Recent syncs',
      description: String(state.history.length),
      icon: 'history',
      children: state.history.map((report) => ({
        id: `history:${report.id}`,
        label: new Date(report.startedAt).toLocaleTimeString(),
        description: displayText(describeReport(report)),
        tooltip: `${report.id}\n${displayText(describeReport(report))}`,
        icon: report.halted ? 'error' : report.conflicts.length ? 'warning' : 'pass',
        contextValue: 'historyEntry',
      })),
    });
  }
  return nodes;
}

function workspaceNode(state: WorkspaceViewState): TreeNode {
  return {
    id: 'workspace',
    label: state.containerName ?? 'Workspace',
    description: HEALTH_LABEL[state.health.kind],
    icon: 'vm-running',
    expanded: true,
    contextValue: `workspace.${state.health.kind}`,
    children: [
      { id: 'workspace:folder', label: 'Folder', description: state.hostPath ?? '', icon: 'folder' },
      { id: 'workspace:image', label: 'Image', description: state.image ?? 'unknown', icon: 'package' },
      { id: 'workspace:state', label: 'State', description: HEALTH_LABEL[state.health.kind], icon: 'pulse' },
      ...(state.live ? [{ id: 'workspace:autoSync', label: 'Auto-sync', description: state.live.state === 'paused' ? `${state.live.autoSync} (paused)` : state.live.autoSync, icon: 'sync' }] : []),
    ],
  };
}

/** The agent's branches in the folder's repository and how far each is ahead, from the newest sync that carried history. */
function gitNode(git: GitExchange): TreeNode {
  return {
    id: 'git',
    label: "Agent's branches",
    description: git.branches.length ? git.branches.map((branch) => branch.hostName).join(', ') : undefined,
    tooltip: 'The container\'s git branches, brought into your repository as clud/<workspace>/<branch>. Merge, cherry-pick or delete them with git.',
    icon: 'git-branch',
    expanded: true,
    children: [
      ...git.branches.map((branch) => ({ id: `git:${branch.hostName}`, label: branch.hostName, description: describeAgentBranch(branch).slice(branch.hostName.length + 2), tooltip: `tip ${branch.tip}`, icon: 'git-commit' })),
      ...git.lines.map((line, index) => ({ id: `git:line:${index}`, label: line, icon: 'arrow-swap' })),
      ...git.problems.map((problem, index) => ({ id: `git:problem:${index}`, label: problem, tooltip: problem, icon: 'warning' })),
    ],
  };
}

function lastSyncNode(report: NonNullable<WorkspaceViewState['history'][0]>): TreeNode {
  const summary = summarizeReport(report);
  const row = (key: string, label: string, value: string | number): TreeNode => ({ id: `lastSync:${key}`, label, description: String(value) });
  return {
    id: 'lastSync',
    label: 'Last sync',
    description: new Date(report.startedAt).toLocaleTimeString(),
    icon: 'sync',
    expanded: true,
    children: [
      row('policy', 'Policy', report.policy),
      row('duration', 'Duration', `${report.durationMs} ms`),
      row('files', 'Files', `${summary.filesTransferred} copied, ${summary.filesDeleted} deleted`),
      row('bytes', 'Bytes', summary.bytesTransferred),
      row('conflicts', 'Conflicts', summary.conflicts),
      row('errors', 'Errors', summary.errors.length),
      row('problems', 'Left alone', summary.problems.length),
      row('retries', 'Retries', report.retries),
    ],
  };
}
