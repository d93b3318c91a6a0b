import { syncCommand } from './syncCommand';

export const sync = syncCommand('sync', 'Three-way sync of DIR and /workspace: changes on either side cross over; edits to the same file on both sides become a conflict that keeps both.');
