// Where the CLI takes Claude Code's API key from: `--api-key KEY`, `--api-key -` (the key on
// standard input, which keeps it out of the host's process list and shell history), or
// ANTHROPIC_API_KEY. The key goes into the container on an exec's stdin only (src/core/host/codingAgent.ts).
import type { OptionSpec } from './command';
import { validateApiKey } from '../core/host/codingAgent';

export const API_KEY_OPTION: Record<string, OptionSpec> = {
  'api-key': { type: 'string', description: "Claude Code's Anthropic API key, or - to read it from standard input (default: ANTHROPIC_API_KEY)" },
};

export async function apiKeyFromFlags(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, stdin: NodeJS.ReadableStream): Promise<string | undefined> {
  const flag = flags['api-key'];
  if (flag === '-') return validateApiKey(await readAll(stdin));
  if (typeof flag === 'string') return validateApiKey(flag);
  if (env.ANTHROPIC_API_KEY) return validateApiKey(env.ANTHROPIC_API_KEY);
  return undefined;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
