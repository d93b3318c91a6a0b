// `clud`: the headless twin of the VS Code extension, on the same core.
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { configFromEnvironment, parseConfig } from '../core/config';
import { DockerodeEngine } from '../core/docker/dockerodeEngine';
import { CludError, errorMessage } from '../core/errors';
import { stateRoot } from '../core/stateDirectory';
import { Workspace } from '../core/workspace';
import type { CommandSpec, OptionSpec } from './command';
import { COMMANDS } from './commands';

const COMMON_OPTIONS: Record<string, OptionSpec> = {
  name: { type: 'string', description: 'container name (default: derived from DIR)' },
  json: { type: 'boolean', description: 'print one JSON object on stdout' },
  help: { type: 'boolean', description: 'show help' },
};

/** CLI flag for each config key, so an invalid value is reported as the flag the user typed. */
const FLAG_FOR_SETTING: Record<string, string> = { containerName: '--name', imageTag: '--image', baseImage: '--base-image', extraCaCertificates: '--extra-ca' };

export async function main(argv: string[]): Promise<number> {
  const [commandName, ...args] = argv;
  const json = args.includes('--json');
  if (!commandName || commandName === '--help' || commandName === '-h' || commandName === 'help') {
    process.stdout.write(usage());
    return commandName ? 0 : 2;
  }
  const command = COMMANDS.find((candidate) => candidate.name === commandName);
  try {
    if (!command) throw new CludError('bad-input', `unknown command "${commandName}"`, 'Run `clud --help` for the list.');
    const terminator = args.indexOf('--');
    const ownArgs = terminator === -1 ? args : args.slice(0, terminator);
    const rest = terminator === -1 ? [] : args.slice(terminator + 1);
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
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals };
  } catch (error) {
    // Node's first sentence says it, e.g. "Unknown option '--frobnicate'"; the rest is advice for scripts.
    throw new CludError('bad-input', errorMessage(error).split('. ')[0]!.replace(/\.$/, ''), `Usage: ${command.usage}`);
  }
}

/** DIR is optional and comes first: `[DIR] PATH` means one positional is PATH, two are DIR and PATH. */
function splitPositionals(command: CommandSpec, positionals: string[]): { directory: string | undefined; others: string[] } {
  const spec = command.positionals ?? { min: 0, max: 0, directoryFirst: true };
  if (positionals.length < spec.min) throw new CludError('bad-input', 'missing argument', `Usage: ${command.usage}`);
  if (positionals.length > spec.max + 1) throw new CludError('bad-input', `unexpected argument "${positionals[spec.max + 1]}"`, `Usage: ${command.usage}`);
  const hasDirectory = positionals.length > spec.min && positionals.length - 1 >= spec.min;
  return hasDirectory ? { directory: positionals[0], others: positionals.slice(1) } : { directory: undefined, others: positionals };
}

function createWorkspace(values: Record<string, unknown>, dir: string | undefined, json: boolean): Workspace {
  const config = parseConfig(
    {
      ...configFromEnvironment(process.env, path.delimiter),
      ...(values.name !== undefined && { containerName: values.name }),
      ...(values.image !== undefined && { imageTag: values.image }),
      ...(values['base-image'] !== undefined && { baseImage: values['base-image'] }),
      ...(values['extra-ca'] !== undefined && { extraCaCertificates: (values['extra-ca'] as string[]).map((file) => path.resolve(file)) }),
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
    onProgress: (event) => {
      // Progress goes to stderr so that stdout holds only the result (and, with --json, one object).
      if (!json || process.env.CLUD_PROGRESS === '1') process.stderr.write(`[${event.phase}] ${event.message}\n`);
    },
  });
}

function reportError(error: unknown, json: boolean): number {
  const cludError = error instanceof CludError ? error : new CludError('agent-failed', errorMessage(error));
  const hint = cludError.hint?.split('\n')[0];
  process.stderr.write(`clud: ${cludError.message}${hint ? ` (${hint})` : ''}\n`);
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

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
