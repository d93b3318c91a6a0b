import { syncCommand } from './syncCommand';

export const push = syncCommand('push', "Make the container's /workspace like DIR. What only the container had is kept aside in the state folder, never lost.");
