import { syncCommand } from './syncCommand';

export const pull = syncCommand('pull', "Make DIR like the container's /workspace (never DIR's .git or ignored files). What only DIR had is kept aside in the state folder, never lost.");
