import { syncCommand } from './syncCommand';

export const syncNow = syncCommand('clud.syncNow', 'syncing', undefined);
