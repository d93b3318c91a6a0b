// `agent hook <Event>`: Claude Code's hooks (configured in its user settings inside the container
// by configureClaude) tell the sync agent where a turn begins and ends, through the narrow channel
// only. A hook never gets in Claude Code's way: whatever fails, it exits 0, prints nothing on
// stdout (UserPromptSubmit's stdout would become part of the prompt) and says why on stderr.
import { z } from 'zod';
import { errorMessage } from '../core/errors';
import { requestStep } from './stepClient';

/** The hook events Clud configures, and what each does. */
export const HOOK_EVENTS = ['UserPromptSubmit', 'Stop', 'SessionEnd'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** The part of Claude Code's hook input Clud reads (it sends more: session id, transcript path, cwd). */
const HookInput = z.object({ prompt: z.string().optional() }).passthrough();

/** How long a hook waits for the sync agent: a turn's end flushes the turn's changes, which may take a while. */
export const HOOK_TIMEOUT_MS: Record<HookEvent, number> = { UserPromptSubmit: 20_000, Stop: 240_000, SessionEnd: 20_000 };

export type StepRequester = typeof requestStep;

/**
 * Runs one hook. Returns the line for stderr, or undefined when all went well. Never throws.
 * UserPromptSubmit opens a turn labelled with the prompt; Stop carries the turn's changes across
 * and ends it; SessionEnd ends a turn an interrupted session left open.
 */
export async function runHook(event: string, stdinText: string, request: StepRequester = requestStep): Promise<string | undefined> {
  if (!(HOOK_EVENTS as readonly string[]).includes(event)) return `clud hook: unknown event "${event}" (known: ${HOOK_EVENTS.join(', ')})`;
  const hookEvent = event as HookEvent;
  const timeoutMs = HOOK_TIMEOUT_MS[hookEvent];
  try {
    if (hookEvent === 'UserPromptSubmit') {
      let prompt = '';
      try {
        prompt = HookInput.parse(JSON.parse(stdinText)).prompt ?? '';
      } catch {
        // Without a readable prompt the turn is still a turn, only unnamed.
      }
      const started = await request('stepStart', { kind: 'turn', label: prompt || 'Claude Code turn' }, { timeoutMs });
      if (started.held) return heldLine(hookEvent, started.held);
    } else if (hookEvent === 'Stop') {
      await request('syncNow', {}, { timeoutMs });
      const ended = await request('stepEnd', { kind: 'turn' }, { timeoutMs });
      if (ended.held) return heldLine(hookEvent, ended.held);
    } else {
      await request('stepEnd', { kind: 'turn' }, { timeoutMs });
    }
    return undefined;
  } catch (error) {
    return `clud hook ${hookEvent}: ${errorMessage(error)} (the turn goes on; its changes still sync, only its undo step may be cut differently)`;
  }
}

/** What the hook says when changes could not cross at the boundary: the turn itself is not held. */
function heldLine(event: HookEvent, held: string): string {
  return `clud hook ${event}: changes are not in the user's folder yet: ${held} (the turn goes on; they cross once the user lets them)`;
}

/** Reads the hook's input (Claude Code writes a JSON object and closes stdin), at most 1 MiB and 5 s. */
export function readHookInput(stream: NodeJS.ReadableStream, limit = 1024 * 1024, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      clearTimeout(timer);
      stream.removeAllListeners('data');
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(done, timeoutMs);
    stream.on('data', (chunk: Buffer) => {
      if (size < limit) chunks.push(chunk.subarray(0, limit - size));
      size += chunk.length;
    });
    stream.on('end', done);
    stream.on('error', done);
  });
}
