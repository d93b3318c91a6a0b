import { syncCommand } from './syncCommand';

export const push = syncCommand('clud.push', 'pushing to the container', 'push');
