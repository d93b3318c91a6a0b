// Fault injection for the crash-recovery tests, in the real agent in a real container:
// CLUD_FAILPOINT=kill-after-host-changes:N makes the agent SIGKILL itself right after it has
// started the Nth change to the host in a sync (its preimage is in the undo log, the change may
// be half done), exactly as a crash there would. CLUD_FAILPOINT=slow-host-changes:MS starts the
// changes to the host one at a time, MS ms apart (the apply has many under way at once), so that
// a test can interrupt a sync while it writes; an interrupt ends the waits at once.
// CLUD_FAILPOINT=fail-initial-copy makes the initial copy report an error, as a copy that tar
// could not finish does (the container's start-up gets it through the container's environment);
// CLUD_FAILPOINT=kill-initial-copy makes the initial copy's process SIGKILL itself as it starts,
// as a copy killed by the kernel's out-of-memory killer would be; kill-agent-during-initial-copy
// makes the resident agent SIGKILL itself once the copy reported progress.
// CLUD_FAILPOINT=slow-background-question:MS opens a background cycle's safeguard question MS ms
// after the cycle asks it, so that a test can queue a request behind the cycle before it opens.
// Unset, it does nothing.
import { setTimeout } from 'node:timers/promises';
import type { Change } from '../core/sync/reconcile';

export function failpointHook(spec = process.env.CLUD_FAILPOINT, signal?: AbortSignal): ((change: Change) => Promise<void>) | undefined {
  const slow = /^slow-host-changes:(\d+)$/.exec(spec ?? '');
  if (slow) {
    const delayMs = Number(slow[1]);
    let previous = Promise.resolve();
    return (change) => {
      if (change.side !== 'host') return Promise.resolve();
      previous = previous.then(() => (signal?.aborted ? undefined : setTimeout(delayMs, undefined, { signal }).catch(() => undefined)));
      return previous;
    };
  }
  const match = /^kill-after-host-changes:(\d+)$/.exec(spec ?? '');
  if (!match) return undefined;
  const limit = Number(match[1]);
  let seen = 0;
  return async (change) => {
    if (change.side !== 'host') return;
    seen += 1;
    if (seen > limit) process.kill(process.pid, 'SIGKILL');
  };
}

/** Whether the initial copy must fail (see above). */
export function initialCopyMustFail(spec = process.env.CLUD_FAILPOINT): boolean {
  return spec === 'fail-initial-copy';
}

/** Whether the initial copy's process must kill itself (see above). */
export function initialCopyMustDie(spec = process.env.CLUD_FAILPOINT): boolean {
  return spec === 'kill-initial-copy';
}

/** Whether the resident agent must kill itself during the initial copy (see above). */
export function agentMustDieDuringInitialCopy(spec = process.env.CLUD_FAILPOINT): boolean {
  return spec === 'kill-agent-during-initial-copy';
}

/** How long a background cycle's question waits before it opens (see above); undefined: not at all. */
export function questionDelayMs(spec = process.env.CLUD_FAILPOINT): number | undefined {
  const match = /^slow-background-question:(\d+)$/.exec(spec ?? '');
  return match ? Number(match[1]) : undefined;
}
