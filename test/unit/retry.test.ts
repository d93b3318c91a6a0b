import assert from 'node:assert/strict';
import { backoffDelayMs, withRetries } from '../../src/core/retry';

/** An attempt function that returns the given results in turn and counts its calls. */
function scripted<T>(results: T[]) {
  let calls = 0;
  const attempt = async () => {
    const result = results[Math.min(calls, results.length - 1)]!;
    calls += 1;
    return result;
  };
  return { attempt, calls: () => calls };
}

/** A sleep that returns at once and records what it was asked to wait. */
function recordingSleep() {
  const delays: number[] = [];
  return { sleep: async (ms: number) => void delays.push(ms), delays };
}

describe('unit: retry', () => {
  describe('backoffDelayMs', () => {
    const cases: { attempt: number; base?: number; max?: number; expected: number }[] = [
      { attempt: 1, expected: 250 },
      { attempt: 2, expected: 500 },
      { attempt: 3, expected: 1000 },
      { attempt: 4, expected: 2000 },
      { attempt: 5, expected: 4000 },
      { attempt: 6, expected: 4000 },
      { attempt: 30, expected: 4000 },
      { attempt: 1, base: 100, max: 1000, expected: 100 },
      { attempt: 4, base: 100, max: 1000, expected: 800 },
      { attempt: 5, base: 100, max: 1000, expected: 1000 },
    ];
    for (const { attempt, base, max, expected } of cases) {
      it(`attempt ${attempt}${base === undefined ? '' : ` (base ${base}, cap ${max})`} waits ${expected} ms`, () => {
        assert.equal(backoffDelayMs(attempt, base, max), expected);
      });
    }

    it('doubles from one attempt to the next until the cap', () => {
      for (let attempt = 1; attempt < 5; attempt += 1) assert.equal(backoffDelayMs(attempt + 1), 2 * backoffDelayMs(attempt));
    });
  });

  describe('withRetries', () => {
    it('does not retry a result that needs no retry', async () => {
      const { attempt, calls } = scripted(['ok']);
      const { sleep, delays } = recordingSleep();
      assert.deepEqual(await withRetries(attempt, { retries: 3, shouldRetry: (value) => value !== 'ok', sleep }), { value: 'ok', retries: 0 });
      assert.equal(calls(), 1);
      assert.deepEqual(delays, []);
    });

    it('stops at the first success and reports the retries used', async () => {
      const { attempt, calls } = scripted([23, 30, 0, 23]);
      const { sleep, delays } = recordingSleep();
      const result = await withRetries(attempt, { retries: 5, shouldRetry: (code) => code !== 0, sleep });
      assert.deepEqual(result, { value: 0, retries: 2 });
      assert.equal(calls(), 3);
      assert.deepEqual(delays, [250, 500]);
    });

    it('stops after N retries and returns the last result', async () => {
      const { attempt, calls } = scripted([1, 2, 3, 4, 5, 6]);
      const { sleep, delays } = recordingSleep();
      const result = await withRetries(attempt, { retries: 3, shouldRetry: () => true, sleep });
      assert.deepEqual(result, { value: 4, retries: 3 });
      assert.equal(calls(), 4);
      assert.deepEqual(delays, [250, 500, 1000]);
    });

    it('never retries with retries: 0', async () => {
      const { attempt, calls } = scripted(['fail']);
      const { sleep, delays } = recordingSleep();
      assert.deepEqual(await withRetries(attempt, { retries: 0, shouldRetry: () => true, sleep }), { value: 'fail', retries: 0 });
      assert.equal(calls(), 1);
      assert.deepEqual(delays, []);
    });

    it('sleeps the capped backoff delays with a custom base', async () => {
      const { attempt } = scripted(['fail']);
      const { sleep, delays } = recordingSleep();
      await withRetries(attempt, { retries: 7, shouldRetry: () => true, sleep, baseDelayMs: 1000 });
      assert.deepEqual(delays, [1000, 2000, 4000, 4000, 4000, 4000, 4000]);
    });

    it('sleeps before each retry, not after it', async () => {
      const events: string[] = [];
      let calls = 0;
      await withRetries(
        async () => {
          events.push(`attempt ${++calls}`);
          return calls;
        },
        { retries: 2, shouldRetry: () => true, sleep: async (ms) => void events.push(`sleep ${ms}`) },
      );
      assert.deepEqual(events, ['attempt 1', 'sleep 250', 'attempt 2', 'sleep 500', 'attempt 3']);
    });

    it('passes an exception from an attempt through', async () => {
      const { sleep } = recordingSleep();
      await assert.rejects(
        withRetries(async () => Promise.reject(new Error('spawn rsync ENOENT')), { retries: 3, shouldRetry: () => true, sleep }),
        /spawn rsync ENOENT/,
      );
    });

    it('waits with a real timer when no sleep is given', async () => {
      const { attempt } = scripted(['fail', 'ok']);
      const started = Date.now();
      const result = await withRetries(attempt, { retries: 1, shouldRetry: (value) => value !== 'ok', baseDelayMs: 20 });
      assert.deepEqual(result, { value: 'ok', retries: 1 });
      assert.ok(Date.now() - started >= 15, `returned after ${Date.now() - started} ms`);
    });
  });
});
