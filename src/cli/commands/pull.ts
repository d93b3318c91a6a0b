import { syncCommand } from './syncCommand';

export const pull = syncCommand('pull', "Copy the container's /workspace back into DIR (one-way: DIR ends up like /workspace; DIR's .git and ignored files are never touched).");
