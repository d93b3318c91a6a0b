// The fake Anthropic API as a program, for running beside Claude Code inside the container:
//
//   node fake-anthropic.js --script SCRIPT.json --log LOG.jsonl [--api-key-file FILE] -- CMD ARGS...
//   node fake-anthropic.js --script SCRIPT.json --log LOG.jsonl [--api-key-file FILE] --url-file FILE
//
// It listens on 127.0.0.1 (a port the system picks) and appends one JSON line per request to LOG
// (a FakeRequestRecord). With a command, it runs CMD with ANTHROPIC_BASE_URL pointing at itself
// and the same standard streams, and when CMD exits, stops and exits with CMD's code (128 + n for
// a signal); SIGINT and SIGTERM are passed on to CMD. One process, started and ended with the
// command, so nothing is left listening in the container. Without one, it writes its address to
// the URL file and serves until SIGINT or SIGTERM, for a Claude Code that finds it through its
// settings (`env.ANTHROPIC_BASE_URL`), e.g. one started by `clud claude`. The key to expect is read
// from a file, so that it is in no argv.
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { FakeScript } from './fakeAnthropic';
import { startFakeAnthropic } from './fakeAnthropic';

const USAGE = 'usage: fake-anthropic --script FILE --log FILE [--api-key-file FILE] (-- CMD ARGS... | --url-file FILE)';

interface Arguments {
  script: string;
  log: string;
  apiKeyFile?: string;
  urlFile?: string;
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
    if (!['--script', '--log', '--api-key-file', '--url-file'].includes(name) || value === undefined) throw new Error(`${USAGE} (bad argument ${name})`);
    values.set(name, value);
  }
  const script = values.get('--script');
  const log = values.get('--log');
  const urlFile = values.get('--url-file');
  if (!script || !log || (command.length === 0) === (urlFile === undefined)) throw new Error(USAGE);
  return { script, log, apiKeyFile: values.get('--api-key-file'), urlFile, command };
}

async function main(): Promise<number> {
  const args = parseArguments(process.argv.slice(2));
  const script = JSON.parse(readFileSync(args.script, 'utf8')) as FakeScript;
  const apiKey = args.apiKeyFile === undefined ? undefined : readFileSync(args.apiKeyFile, 'utf8').trim();
  const fake = await startFakeAnthropic(script, { apiKey, onRequest: (record) => appendFileSync(args.log, JSON.stringify(record) + '\n') });
  if (args.urlFile !== undefined) {
    writeFileSync(args.urlFile, fake.baseUrl + '\n');
    await new Promise<void>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => resolve());
    });
    await fake.close();
    return 0;
  }
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
