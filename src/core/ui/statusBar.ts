// How the status value looks in the status bar: text with a codicon, a tooltip, and what a click does.
import { displayPath, displayText } from '../display';
import { describeReport } from '../sync/summary';
import type { WorkspaceViewState } from './state';

export interface StatusBarView {
  text: string;
  tooltip: string;
  /** Command id run on click. */
  command: string;
  /** Background: VS Code's warning or error colour for states that need the user. */
  severity: 'normal' | 'warning' | 'error';
}

export function statusBarView(state: WorkspaceViewState): StatusBarView {
  const last = state.history[0];
  const lastLine = last ? `Last sync: ${displayText(describeReport(last))}` : 'No sync yet';
  switch (state.health.kind) {
    case 'stopped':
      return { text: '$(circle-slash) Clud', tooltip: 'Clud: no workspace container is running. Click to start one.', command: 'clud.startWorkspace', severity: 'normal' };
    case 'starting':
      return { text: '$(loading~spin) Clud: starting', tooltip: `Clud: ${displayText(state.health.message)}`, command: 'clud.showLogs', severity: 'normal' };
    case 'syncing':
      return { text: '$(sync~spin) Clud: syncing', tooltip: `Clud: ${displayText(state.health.message)}\n${lastLine}`, command: 'clud.showLogs', severity: 'normal' };
    case 'synced':
      return { text: '$(check) Clud: synced', tooltip: `Clud: ${state.containerName ?? 'workspace'} is in sync. Click to sync now.\n${lastLine}`, command: 'clud.syncNow', severity: 'normal' };
    case 'conflict':
      return { text: `$(warning) Clud: ${state.conflicts.length} conflict${state.conflicts.length === 1 ? '' : 's'}`, tooltip: `Clud: both sides changed ${state.conflicts.map((conflict) => displayPath(conflict.path)).slice(0, 5).join(', ')}. Open the Clud view to resolve. Click to sync now.\n${lastLine}`, command: 'clud.syncNow', severity: 'warning' };
    case 'error':
      return { text: '$(error) Clud: error', tooltip: `Clud: ${displayText(state.health.message)}${state.health.hint ? `\n${displayText(state.health.hint)}` : ''}\n${lastLine}`, command: 'clud.retry', severity: 'error' };
  }
}
