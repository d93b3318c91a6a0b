// Bounded concurrency (src/core/limited.ts): never more than the limit at once, work started in
// the order it came, and a failure neither loses a slot nor stops what was asked to go on.
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { forEachLimited, Limiter } from '../../src/core/limited';

/** A task that records when it starts, finishes a few event-loop turns later, and counts how many run at once. */
function tracker() {
  const started: number[] = [];
  let running = 0;
  let most = 0;
  const task = async (id: number, fail = false): Promise<number> => {
    started.push(id);
    running += 1;
    most = Math.max(most, running);
    for (let index = 0; index < (id % 3) + 1; index += 1) await turn();
    running -= 1;
    if (fail) throw new Error(`task ${id} failed`);
    return id;
  };
  return { task, started, most: () => most, running: () => running };
}

describe('unit: bounded concurrency (limited.ts)', () => {
  it('a Limiter runs at most its limit at once, starts tasks in the order they came, and returns each its own result', async () => {
    const { task, started, most } = tracker();
    const limiter = new Limiter(3);
    const ids = Array.from({ length: 40 }, (_, index) => index);
    const results = await Promise.all(ids.map((id) => limiter.run(() => task(id))));
    assert.deepEqual(results, ids);
    assert.deepEqual(started, ids);
    assert.equal(most(), 3);
  });

  it('a failing task of a Limiter rejects only its own run and hands its slot on', async () => {
    const { task, most, running } = tracker();
    const limiter = new Limiter(2);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, id) => limiter.run(() => task(id, id % 2 === 0))));
    assert.deepEqual(outcomes.map((outcome) => outcome.status), Array.from({ length: 10 }, (_, id) => (id % 2 === 0 ? 'rejected' : 'fulfilled')));
    assert.equal(most(), 2);
    assert.equal(running(), 0);
    // Every slot came back: two new tasks run at once again.
    const again = tracker();
    await Promise.all([0, 1, 2, 3].map((id) => limiter.run(() => again.task(id))));
    assert.equal(again.most(), 2);
  });

  it('forEachLimited runs every item at most `limit` at once, in order, and throws the first failure after the rest ran', async () => {
    const { task, started, most } = tracker();
    const ids = Array.from({ length: 20 }, (_, index) => index);
    await assert.rejects(forEachLimited(ids, 4, async (id) => void (await task(id, id === 5))), /task 5 failed/);
    assert.deepEqual(started, ids);
    assert.equal(most(), 4);
  });

  it('forEachLimited with stopOnFailure starts no item after the first failure', async () => {
    const { task, started } = tracker();
    const ids = Array.from({ length: 20 }, (_, index) => index);
    await assert.rejects(forEachLimited(ids, 2, async (id) => void (await task(id, id === 3)), { stopOnFailure: true }), /task 3 failed/);
    assert.ok(started.length < ids.length, `started ${started.length} of ${ids.length}`);
    assert.deepEqual(started, ids.slice(0, started.length));
  });
});
