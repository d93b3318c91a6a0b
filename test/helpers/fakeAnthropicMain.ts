// The fake Anthropic API as a program, for running beside Claude Code inside the container:
//
//   node fake-anthropic.js --script SCRIPT.json --log LOG.jsonl [--api-key-file FILE] -- CMD ARGS...
//
// It listens on 127.0.0.1 (a port the system picks), runs CMD with ANTHROPIC_BASE_URL pointing at
// itself and the same standard streams, appends one JSON line per request to LOG (a
// FakeRequestRecord), and when CMD exits, stops and exits with CMD's code (128 + n for a signal).
// SIGINT and SIGTERM are passed on to CMD. One process, started and ended with the command, so
// nothing is left listening in the container. The key to expect is read from a file, so that it
// is in no argv.
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { FakeScript } from './fakeAnthropic';
import { startFakeAnthropic } from './fakeAnthropic';

interface Arguments {
  script: string;
  log: string;
  apiKeyFile?: string;
  command: string[];
}

function parseArguments(argv: string[]): Arguments {
  const separator = argv.indexOf('--');
  const options = separator === -1 ? argv : argv.slice(0, separator);
  const command = separator === -1 ? [] : argv.slice(separator + 1);
  const values = new Map<string, string>();
  for (let index = 0; index < options.length; index += 2) {
    const name = options[index]!;
    const value = options[index + 1];
    if (!['--script', '--log', '--api-key-file'].includes(name) || value === undefined) throw new Error(`usage: fake-anthropic --script FILE --log FILE [--api-key-file FILE] -- CMD ARGS... (bad argument ${name})`);
    values.set(name, value);
  }
  const script = values.get('--script');
  const log = values.get('--log');
  if (!script || !log || command.length === 0) throw new Error('usage: fake-anthropic --script FILE --log FILE [--api-key-file FILE] -- CMD ARGS...');
  return { script, log, apiKeyFile: values.get('--api-key-file'), command };
}

async function main(): Promise<number> {
  const args = parseArguments(process.argv.slice(2));
  const script = JSON.parse(readFileSync(args.script, 'utf8')) as FakeScript;
  const apiKey = args.apiKeyFile === undefined ? undefined : readFileSync(args.apiKeyFile, 'utf8').trim();
  const fake = await startFakeAnthropic(script, { apiKey, onRequest: (record) => appendFileSync(args.log, JSON.stringify(record) + '\n') });
  const child = spawn(args.command[0]!, args.command.slice(1), { stdio: 'inherit', env: { ...process.env, ANTHROPIC_BASE_URL: fake.baseUrl } });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  const code = await new Promise<number>((resolve) => {
    child.on('error', (error) => {
      console.error(`fake-anthropic: cannot run ${args.command[0]}: ${error.message}`);
      resolve(127);
    });
    child.on('exit', (exitCode, signal) => resolve(exitCode ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  await fake.close();
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`fake-anthropic: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
