// When a subscribed channel to the resident agent ends, whether and when to open it again. Pure:
// the live channel (channel.ts) asks it after every failed or ended connection.
import type { CludErrorCode } from '../errors';

export interface ReconnectPolicy {
  /** The wait before the first reopening; each consecutive failure multiplies it by `factor`. */
  initialDelayMs: number;
  factor: number;
  maxDelayMs: number;
  /**
   * `agent-unavailable` before any subscription ever worked: the container's agent has no
   * resident sync (an older image), or it is still starting. After this many tries, give up.
   */
  unavailableAttempts: number;
  /** A subscription that lasted this long starts the backoff over; a shorter one counts as a failure (an agent that keeps dying). */
  stableMs: number;
}

export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = { initialDelayMs: 250, factor: 2, maxDelayMs: 10_000, unavailableAttempts: 6, stableMs: 5_000 };

export type ReconnectDecision = { action: 'retry'; delayMs: number } | { action: 'give-up' };

export interface ConnectionLoss {
  /** Consecutive failures before this one (0: the first since the last subscription that worked). */
  attempt: number;
  /** Why: the CludError code, or `channel-ended` when a subscribed channel closed. */
  code: CludErrorCode | 'channel-ended';
  /** Whether a subscription on this workspace ever worked. */
  everConnected: boolean;
}

/** Codes that mean the workspace itself is gone or misconfigured: reopening cannot help. */
const FINAL: ReadonlySet<ConnectionLoss['code']> = new Set<ConnectionLoss['code']>(['not-running', 'name-taken', 'invalid-config', 'folder-missing']);

export function decideReconnect(policy: ReconnectPolicy, loss: ConnectionLoss): ReconnectDecision {
  if (FINAL.has(loss.code)) return { action: 'give-up' };
  if (loss.code === 'agent-unavailable' && !loss.everConnected && loss.attempt + 1 >= policy.unavailableAttempts) return { action: 'give-up' };
  return { action: 'retry', delayMs: backoffDelay(policy, loss.attempt) };
}

export function backoffDelay(policy: ReconnectPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, Math.round(policy.initialDelayMs * policy.factor ** Math.max(0, attempt)));
}
