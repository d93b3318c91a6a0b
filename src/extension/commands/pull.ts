import { syncCommand } from './syncCommand';

export const pull = syncCommand('clud.pull', 'pulling from the container', 'pull');
