import type { Workspace } from '../core/workspace';

/** What a command hands back: one JSON object for --json, lines for people, and the exit code. */
export interface CommandOutput {
  json: Record<string, unknown>;
  text: string;
  exitCode: number;
}

export interface CommandContext {
  workspace: Workspace;
  flags: Record<string, string | boolean | string[] | undefined>;
  /** Arguments after `--` (only `exec` takes them). */
  rest: string[];
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  description: string;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** Whether arguments after `--` are required. */
  takesCommand?: boolean;
  run(context: CommandContext): Promise<CommandOutput>;
}
