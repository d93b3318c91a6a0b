import type * as vscode from 'vscode';
import type { WorkspaceController } from '../controller';
import type { Logger } from '../log';

export interface CommandContext {
  controller: WorkspaceController;
  log: Logger;
  output: vscode.LogOutputChannel;
  /** VS Code's SecretStorage: where the Anthropic API key is kept (see apiKey.ts). */
  secrets: vscode.SecretStorage;
}

/** One command: its id (declared in package.json) and what it does. */
export interface CludCommand {
  id: string;
  run(context: CommandContext, ...args: unknown[]): Thenable<unknown>;
}

/** Tree items pass their node (its raw `path`; the label is escaped for display); the palette passes nothing; scripts pass a path. */
export function pathArgument(argument: unknown): string | undefined {
  if (typeof argument === 'string') return argument;
  if (argument && typeof argument === 'object' && 'path' in argument && typeof (argument as { path: unknown }).path === 'string') return (argument as { path: string }).path;
  if (argument && typeof argument === 'object' && 'label' in argument && typeof (argument as { label: unknown }).label === 'string') return (argument as { label: string }).label;
  return undefined;
}
