// `clud`: the headless twin of the VS Code extension, on the same core.
import { statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { configFromEnvironment, parseConfig } from '../core/host/config';
import { DockerodeEngine } from '../core/docker/dockerodeEngine';
import { displayText } from '../core/display';
import { CludError, errorMessage } from '../core/errors';
import { stateRoot } from '../core/host/stateDirectory';
import { Workspace } from '../core/host/workspace';
import type { CommandSpec, OptionSpec } from './command';
import { COMMANDS } from './commands';
import { deliverInterrupt } from './interrupt';

const COMMON_OPTIONS: Record<string, OptionSpec> = {
  name: { type: 'string', description: 'container name (default: derived from DIR)' },
  json: { type: 'boolean', description: 'print one JSON object on stdout' },
  help: { type: 'boolean', description: 'show help' },
};

/** CLI flag for each config key, so an invalid value is reported as the flag the user typed. */
const FLAG_FOR_SETTING: Record<string, string> = { containerName: '--name', imageTag: '--image', baseImage: '--base-image', extraCaCertificates: '--extra-ca', allowSecrets: '--allow-secret', autoSync: '--auto-sync' };

export async function main(argv: string[]): Promise<number> {
  const [commandName, ...args] = argv;
  // Everything after `--` belongs to the command run in the container (`clud exec DIR -- ls --json`).
  const terminator = args.indexOf('--');
  const ownArgs = terminator === -1 ? args : args.slice(0, terminator);
  const rest = terminator === -1 ? [] : args.slice(terminator + 1);
  const json = ownArgs.includes('--json');
  if (!commandName || commandName === '--help' || commandName === '-h' || commandName === 'help') {
    process.stdout.write(usage());
    return commandName ? 0 : 2;
  }
  const command = COMMANDS.find((candidate) => candidate.name === commandName);
  if (command?.interruptNote) interruptNote = command.interruptNote;
  try {
    if (!command) throw new CludError('bad-input', `unknown command "${commandName}"`, 'Run `clud --help` for the list.');
    const { values, positionals } = parseCommandArgs(command, ownArgs);
    if (values.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    const { directory, others } = splitPositionals(command, positionals);
    if (command.takesCommand === true && rest.length === 0) throw new CludError('bad-input', 'no command given after --', `Usage: ${command.usage}`);
    if (!command.takesCommand && rest.length > 0) throw new CludError('bad-input', `clud ${command.name} takes no command after --`, `Usage: ${command.usage}`);
    const workspace = createWorkspace(values, directory, json);
    const output = await command.run({ workspace, flags: values, rest, positionals: others });
    if (json) process.stdout.write(JSON.stringify(output.json) + '\n');
    else if (output.text) process.stdout.write(output.text + '\n');
    return output.exitCode;
  } catch (error) {
    return reportError(error, json);
  }
}

function parseCommandArgs(command: CommandSpec, args: string[]) {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries({ ...COMMON_OPTIONS, ...command.options })) {
    options[name] = spec.multiple ? { type: spec.type, multiple: true } : { type: spec.type };
  }
  if (command.options.interactive) options.interactive = { type: 'boolean', short: 'i' };
  try {
    const parsed = parseArgs({ args: attachDashValues(args, options), options, allowPositionals: true, strict: true });
    return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals };
  } catch (error) {
    // Node's first sentence says it, e.g. "Unknown option '--frobnicate'"; the rest is advice for scripts.
    throw new CludError('bad-input', errorMessage(error).split(/\.(?:\s|$)/)[0]!, `Usage: ${command.usage}`);
  }
}

/**
 * `--steps -1`: Node's parser refuses a value starting with a dash as ambiguous. A value that
 * reads as a number is a value, not a flag, so it is attached (`--steps=-1`) and the command
 * says what is wrong with it.
 */
function attachDashValues(args: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const attached: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const next = args[index + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      attached.push(`${arg}=${next}`);
      index++;
    } else {
      attached.push(arg);
    }
  }
  return attached;
}

/** DIR is optional and comes first: `[DIR] PATH` means one positional is PATH, two are DIR and PATH. */
function splitPositionals(command: CommandSpec, positionals: string[]): { directory: string | undefined; others: string[] } {
  const spec = command.positionals ?? { min: 0, max: 0, directoryFirst: true };
  if (positionals.length < spec.min) throw new CludError('bad-input', 'missing argument', `Usage: ${command.usage}`);
  if (positionals.length > spec.max + 1) throw new CludError('bad-input', `unexpected argument "${positionals[spec.max + 1]}"`, `Usage: ${command.usage}`);
  const hasDirectory = positionals.length > spec.min && positionals.length - 1 >= spec.min;
  if (!hasDirectory) return { directory: undefined, others: positionals };
  // `clud resolve src/a.txt DIR`: a file where DIR goes, before another argument, is the two
  // swapped, not a project without a container. (A DIR alone is checked by the command.)
  if (spec.min > 0 && statSync(positionals[0]!, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new CludError('bad-input', `${displayText(positionals[0]!)} is not a folder: DIR, the project folder, comes first`, `Usage: ${command.usage}`);
  }
  return { directory: positionals[0], others: positionals.slice(1) };
}

function createWorkspace(values: Record<string, unknown>, dir: string | undefined, json: boolean): Workspace {
  const environment = configFromEnvironment(process.env, path.delimiter);
  const config = parseConfig(
    {
      ...environment,
      ...(values.name !== undefined && { containerName: values.name }),
      ...(values.image !== undefined && { imageTag: values.image }),
      ...(values['base-image'] !== undefined && { baseImage: values['base-image'] }),
      ...(values['auto-sync'] !== undefined && { autoSync: values['auto-sync'] }),
      ...(values['extra-ca'] !== undefined && { extraCaCertificates: (values['extra-ca'] as string[]).map((file) => path.resolve(file)) }),
      // The flag adds to CLUD_ALLOW_SECRETS rather than replacing it.
      ...(values['allow-secret'] !== undefined && { allowSecrets: [...(environment.allowSecrets ?? []), ...(values['allow-secret'] as string[])] }),
    },
    (key) => FLAG_FOR_SETTING[key] ?? key,
  );
  const platform = process.platform === 'win32' ? 'win32' : process.platform === 'darwin' ? 'darwin' : 'linux';
  return new Workspace({
    hostPath: path.resolve(dir ?? '.'),
    platform,
    config,
    engine: new DockerodeEngine(),
    stateRoot: stateRoot(process.env, platform, os.homedir()),
    // Shipped beside the bundle: dist/agent.js and container/ next to dist/.
    resources: { agentBundlePath: path.join(__dirname, 'agent.js'), containerDir: path.join(__dirname, '..', 'container') },
    // The agent's fault injection (src/agent/failpoint.ts), for the tests that interrupt a sync.
    ...(process.env.CLUD_FAILPOINT && { agentEnv: { CLUD_FAILPOINT: process.env.CLUD_FAILPOINT } }),
    onProgress: (event) => {
      // Progress goes to stderr so that stdout holds only the result (and, with --json, one object).
      if (!json || process.env.CLUD_PROGRESS === '1') process.stderr.write(`[${event.phase}] ${displayText(event.message)}\n`);
    },
  });
}

function reportError(error: unknown, json: boolean): number {
  const cludError = error instanceof CludError ? error : new CludError('agent-failed', errorMessage(error));
  const hint = cludError.hint?.split('\n')[0];
  process.stderr.write(`clud: ${displayText(cludError.message)}${hint ? ` (${displayText(hint)})` : ''}\n`);
  if (json) process.stdout.write(JSON.stringify({ ok: false, error: { code: cludError.code, message: cludError.message, hint: cludError.hint } }) + '\n');
  return cludError.code === 'bad-input' ? 2 : 1;
}

function usage(): string {
  const lines = ['Clud Workspace: a Docker workspace for a coding agent, kept in sync with your folder.', '', 'Commands:'];
  for (const command of COMMANDS) lines.push(`  ${command.usage}`, `      ${command.summary}`);
  lines.push('', 'DIR defaults to the current folder. Every command takes --name NAME and --json.', '');
  return lines.join('\n');
}

function commandHelp(command: CommandSpec): string {
  const lines = [`Usage: ${command.usage}`, '', command.summary, '', 'Options:'];
  for (const [name, spec] of Object.entries({ ...command.options, ...COMMON_OPTIONS })) lines.push(`  --${name}${spec.type === 'string' ? ' VALUE' : ''}  ${spec.description}`);
  return lines.join('\n') + '\n';
}

/**
 * `clud sync | head -1`: the reader has what it wanted and closed the pipe. Nothing more can be
 * said on stdout, so the CLI exits as a program killed by SIGPIPE would (quietly, 128 + 13),
 * instead of crashing with a stack trace. Closing ends any agent session, whose agent then stops
 * at its next safe point.
 */
export function exitQuietlyOnClosedStdout(stream: NodeJS.WriteStream, exit: (code: number) => void): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') exit(process.exitCode === undefined ? 141 : Number(process.exitCode));
    else throw error;
  });
}

/**
 * Ctrl-C: exiting closes the agent session's `docker exec`, whose stdin then ends; the agent
 * takes that as the request being cancelled and stops at its next safe point (a sync's host
 * changes are rolled back with its undo step). 130 is the shell's code for an interrupt.
 */
let interruptNote = 'interrupted; work in the container stops at its next safe point (a sync rolls back what it changed in the folder)';

function exitOnInterrupt(): void {
  process.on('SIGINT', () => {
    if (deliverInterrupt()) return;
    process.stderr.write(`clud: ${interruptNote}\n`);
    process.exit(130);
  });
}

if (require.main === module) {
  exitQuietlyOnClosedStdout(process.stdout, (code) => process.exit(code));
  exitOnInterrupt();
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
