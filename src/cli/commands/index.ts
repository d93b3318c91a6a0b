import type { CommandSpec } from '../command';
import { down } from './down';
import { exec } from './exec';
import { logs } from './logs';
import { pull } from './pull';
import { push } from './push';
import { status } from './status';
import { up } from './up';

/** Every `clud` command, registered here once. */
export const COMMANDS: readonly CommandSpec[] = [up, push, pull, status, exec, logs, down];
