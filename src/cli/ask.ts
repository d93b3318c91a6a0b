// How the CLI answers a safeguard: --yes allows; on a terminal it asks; otherwise it denies (the
// safe answer), saying how to allow it. An answer given without asking is said on stderr: a
// background cycle's question answered this way does its work in that cycle, not in the command's
// own report.
import { createInterface } from 'node:readline/promises';
import type { QuestionHandler } from '../core/host/agentClient';
import { displayText } from '../core/display';
import type { SafeguardQuestionInfo } from '../core/protocol';

export function questionHandler(flags: Record<string, unknown>): QuestionHandler {
  return async (question) => {
    if (flags.yes === true) {
      process.stderr.write(`clud: safeguard: ${displayText(question.detail)}; allowed (--yes)\n`);
      return 'allow';
    }
    if (!process.stdin.isTTY || !process.stderr.isTTY) {
      process.stderr.write(`clud: safeguard: ${displayText(question.detail)}; denied (run with --yes to allow)\n`);
      return 'deny';
    }
    return (await askOnTerminal(question)) ?? 'deny';
  };
}

/** Asks on the terminal (stdin and stderr); undefined when there is none to ask on. */
export async function askOnTerminal(question: SafeguardQuestionInfo): Promise<'allow' | 'deny' | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`clud: safeguard: ${displayText(question.detail)}. Allow? [y/N] `);
    return /^y(es)?$/i.test(answer.trim()) ? 'allow' : 'deny';
  } finally {
    prompt.close();
  }
}
