import { syncCommand } from './syncCommand';

export const push = syncCommand('push', "Copy DIR's changes into the container's /workspace (one-way: /workspace ends up like DIR, ignored files aside).");
