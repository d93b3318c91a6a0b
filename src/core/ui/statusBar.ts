// How the status value looks in the status bar: text with a codicon, a tooltip, and what a click does.
import { displayPath, displayText } from '../display';
import { describeReport } from '../sync/summary';
import { unlistedCount, type WorkspaceViewState } from './state';

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
  const lastLine = (last ? `Last sync: ${displayText(describeReport(last))}` : 'No sync yet') + (state.live ? `\nAuto-sync: ${state.live.autoSync}${degradedLine(state)}` : '');
  switch (state.health.kind) {
    case 'stopped':
      return { text: '$(circle-slash) Clud', tooltip: 'Clud: no workspace container is running. Click to start one.', command: 'clud.startWorkspace', severity: 'normal' };
    case 'starting':
      return { text: '$(loading~spin) Clud: starting', tooltip: `Clud: ${displayText(state.health.message)}`, command: 'clud.showLogs', severity: 'normal' };
    case 'syncing':
      return { text: '$(sync~spin) Clud: syncing', tooltip: `Clud: ${displayText(state.health.message)}\n${lastLine}`, command: 'clud.showLogs', severity: 'normal' };
    case 'synced':
      return { text: '$(check) Clud: synced', tooltip: `Clud: ${state.containerName ?? 'workspace'} is in sync. Click to sync now.\n${lastLine}`, command: 'clud.syncNow', severity: 'normal' };
    case 'conflict': {
      const count = state.conflicts.length + unlistedCount(state, 'conflicts');
      return { text: `$(warning) Clud: ${count} conflict${count === 1 ? '' : 's'}`, tooltip: `Clud: both sides changed ${state.conflicts.map((conflict) => displayPath(conflict.path)).slice(0, 5).join(', ')}. Open the Clud view to resolve. Click to sync now.\n${lastLine}`, command: 'clud.syncNow', severity: 'warning' };
    }
    case 'changes-waiting':
      return {
        text: '$(clock) Clud: changes waiting',
        tooltip: `Clud: one side has changes the other lacks${state.live?.autoSync === 'continuous' ? '; they sync in a moment' : ` (auto-sync is ${state.live?.autoSync ?? 'off'})`}. Click to sync now.\n${lastLine}`,
        command: 'clud.syncNow',
        severity: 'normal',
      };
    case 'waiting-for-approval':
      return { text: '$(question) Clud: waiting for approval', tooltip: `Clud: a sync waits for your answer: ${displayText(state.health.detail)}\n${lastLine}`, command: 'clud.showLogs', severity: 'warning' };
    case 'paused': {
      const why = state.health.denied
        ? `auto-sync is paused: you denied "${displayText(state.health.denied)}". Changes collect meanwhile. Click to resume: the question is asked again.`
        : 'auto-sync is paused; changes collect until you resume. Click to resume.';
      return { text: '$(debug-pause) Clud: paused', tooltip: `Clud: ${why}\n${lastLine}`, command: 'clud.resumeAutoSync', severity: 'warning' };
    }
    case 'halted':
      return { text: '$(error) Clud: halted', tooltip: `Clud: sync halted: ${displayText(state.health.reason)}\nNothing was changed. Click to resume: both sides are merged again, nothing is deleted.\n${lastLine}`, command: 'clud.resume', severity: 'error' };
    case 'error':
      return { text: '$(error) Clud: error', tooltip: `Clud: ${displayText(state.health.message)}${state.health.hint ? `\n${displayText(state.health.hint)}` : ''}\n${lastLine}`, command: 'clud.retry', severity: 'error' };
  }
}

function degradedLine(state: WorkspaceViewState): string {
  return (state.live?.degraded ?? []).map((watch) => `\nWatcher (${watch.side}): ${displayText(watch.reason)}`).join('');
}
