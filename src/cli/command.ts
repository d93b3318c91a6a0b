import type { Workspace } from '../core/host/workspace';

/** What a command hands back: one JSON object for --json, lines for people, and the exit code. */
export interface CommandOutput {
  json: Record<string, unknown>;
  text: string;
  exitCode: number;
}

export interface CommandContext {
  workspace: Workspace;
  flags: Record<string, string | boolean | string[] | undefined>;
  /** Arguments after `--` (only `exec` and `claude` take them). */
  rest: string[];
  /** Positional arguments other than DIR (only commands declaring `positionals` get any). */
  positionals: string[];
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
  /** Whether arguments after `--` are required (true) or allowed ('optional'). */
  takesCommand?: boolean | 'optional';
  /** Positional arguments besides the optional DIR, e.g. resolve's PATH: `[DIR] PATH`. */
  positionals?: { min: number; max: number; directoryFirst: true };
  /** What Ctrl-C means for this command, said on stderr (default: work in the container stops at its next safe point). */
  interruptNote?: string;
  run(context: CommandContext): Promise<CommandOutput>;
}

/** `--allow-secret PATTERN` (repeatable), on the commands that copy files: up, sync, push, pull. */
export const ALLOW_SECRET_OPTION: OptionSpec = {
  type: 'string',
  multiple: true,
  description: 'sync files matching PATTERN (gitignore syntax) even though they look like secrets (repeatable)',
};
