import type { CommandSpec } from '../command';
import { down } from './down';
import { exec } from './exec';
import { logs } from './logs';
import { pull } from './pull';
import { push } from './push';
import { status } from './status';
import { up } from './up';
import { sync } from './sync';
import { conflicts } from './conflicts';
import { resolve } from './resolve';
import { backup } from './backup';
import { resume } from './resume';
import { history } from './history';
import { undo } from './undo';
import { claude } from './claude';
import { ui } from './ui';
import { run } from './run';
import { checkpoint } from './checkpoint';
import { watch } from './watch';
import { pause } from './pause';

/** Every `clud` command, registered here once. */
export const COMMANDS: readonly CommandSpec[] = [up, push, pull, sync, status, watch, pause, resume, conflicts, resolve, backup, history, undo, checkpoint, exec, run, claude, ui, logs, down];
