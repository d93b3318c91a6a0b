import type { CludCommand } from './command';
import { backupConflicts } from './backupConflicts';
import { keepBoth } from './keepBoth';
import { keepContainer } from './keepContainer';
import { keepHost } from './keepHost';
import { openConflictDiff } from './openConflictDiff';
import { openTerminal } from './openTerminal';
import { openClaudeCode } from './openClaudeCode';
import { openInBrowser } from './openInBrowser';
import { setApiKey } from './setApiKey';
import { pull } from './pull';
import { push } from './push';
import { rebuildImage } from './rebuildImage';
import { resume } from './resume';
import { pauseAutoSync } from './pauseAutoSync';
import { resumeAutoSync } from './resumeAutoSync';
import { retry } from './retry';
import { showLogs } from './showLogs';
import { startWorkspace } from './startWorkspace';
import { stopWorkspace } from './stopWorkspace';
import { syncNow } from './syncNow';
import { undoLastSync } from './undoSteps';
import { undoToHere } from './undoToHere';
import { undoLastTurn } from './undoLastTurn';

/** Every command of the extension, registered from here once (ids and titles are in package.json). */
export const COMMANDS: readonly CludCommand[] = [
  startWorkspace,
  stopWorkspace,
  push,
  pull,
  syncNow,
  rebuildImage,
  showLogs,
  openTerminal,
  openClaudeCode,
  openInBrowser,
  setApiKey,
  retry,
  resume,
  pauseAutoSync,
  resumeAutoSync,
  backupConflicts,
  openConflictDiff,
  keepHost,
  keepContainer,
  keepBoth,
  undoLastSync,
  undoToHere,
  undoLastTurn,
];
