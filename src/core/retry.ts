/** Exponential backoff: the delay before retry `attempt` (1-based), capped. */
export function backoffDelayMs(attempt: number, baseDelayMs = 250, maxDelayMs = 4000): number {
  return Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
}

export interface RetryResult<T> {
  value: T;
  retries: number;
}

/**
 * Runs `attempt` until `shouldRetry` says its result is final or `retries` are used up. It
 * retries on results rather than exceptions because a failed sync cycle is a result (its report
 * and its errors) that the caller still reports.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  options: { retries: number; shouldRetry: (value: T) => boolean; sleep?: (ms: number) => Promise<void>; baseDelayMs?: number },
): Promise<RetryResult<T>> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let value = await attempt();
  let retries = 0;
  while (retries < options.retries && options.shouldRetry(value)) {
    retries += 1;
    await sleep(backoffDelayMs(retries, options.baseDelayMs));
    value = await attempt();
  }
  return { value, retries };
}
