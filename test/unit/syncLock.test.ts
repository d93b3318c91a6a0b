import assert from 'node:assert/strict';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { syncWaiting, withSyncLock } from '../../src/agent/syncLock';
import { useTempDir } from '../helpers/tempDir';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A PID that no process has right now, starting from 999999. */
function deadPid(): number {
  for (let pid = 999_999; pid < 1_100_000; pid += 1) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
  throw new Error('no free PID found');
}

describe('unit: syncLock', () => {
  const tempDir = useTempDir('clud-synclock-');
  const lockFile = () => path.join(tempDir(), 'sync.lock');

  it("returns the work's value and holds a lock file with this process's PID meanwhile", async () => {
    let during: string | undefined;
    const value = await withSyncLock(
      async () => {
        during = readFileSync(lockFile(), 'utf8');
        return 'done';
      },
      { file: lockFile(), pollMs: 5 },
    );
    assert.equal(value, 'done');
    assert.equal(during, String(process.pid));
  });

  it('removes the lock file afterwards', async () => {
    await withSyncLock(async () => undefined, { file: lockFile(), pollMs: 5 });
    assert.equal(existsSync(lockFile()), false);
  });

  it('removes the lock file when the work throws, and passes the error on', async () => {
    await assert.rejects(
      withSyncLock(
        async () => {
          throw new Error('rsync crashed');
        },
        { file: lockFile(), pollMs: 5 },
      ),
      /rsync crashed/,
    );
    assert.equal(existsSync(lockFile()), false);
  });

  it('can be taken again after it was released', async () => {
    const runs: number[] = [];
    for (const run of [1, 2, 3]) await withSyncLock(async () => void runs.push(run), { file: lockFile(), pollMs: 5 });
    assert.deepEqual(runs, [1, 2, 3]);
  });

  // Regression: a lock file holding this process's own PID used to be taken for stale, so two
  // requests of one session could run their syncs at once.
  it('runs two concurrent calls in one process one after the other', async () => {
    const order: string[] = [];
    const work = (name: string) => async () => {
      order.push(`${name} start`);
      await sleep(20);
      order.push(`${name} end`);
    };
    await Promise.all([withSyncLock(work('A'), { file: lockFile(), pollMs: 2 }), withSyncLock(work('B'), { file: lockFile(), pollMs: 2 })]);
    assert.ok(
      order.join(', ') === 'A start, A end, B start, B end' || order.join(', ') === 'B start, B end, A start, A end',
      `the two runs overlapped: ${order.join(', ')}`,
    );
  });

  it('takes over a stale lock file whose owner PID is dead', async () => {
    const pid = deadPid();
    writeFileSync(lockFile(), String(pid));
    let ran = false;
    await withSyncLock(
      async () => {
        ran = true;
        assert.equal(readFileSync(lockFile(), 'utf8'), String(process.pid));
      },
      { file: lockFile(), pollMs: 5 },
    );
    assert.equal(ran, true);
    assert.equal(existsSync(lockFile()), false);
  });

  for (const content of ['not a pid', '-5', '0']) {
    it(`takes over a lock file holding ${JSON.stringify(content)}`, async () => {
      writeFileSync(lockFile(), content);
      let ran = false;
      await withSyncLock(async () => void (ran = true), { file: lockFile(), pollMs: 5 });
      assert.equal(ran, true);
    });
  }

  it('waits while another live process holds the lock', async () => {
    writeFileSync(lockFile(), String(process.ppid));
    let started = false;
    const locked = withSyncLock(async () => void (started = true), { file: lockFile(), pollMs: 5 });
    await sleep(40);
    assert.equal(started, false, 'the work ran while another process held the lock');
    unlinkSync(lockFile());
    await locked;
    assert.equal(started, true);
  });

  it('tells the holder when a request waits: one queued in this process, or another process polling (its .waiting file)', async () => {
    const seen: boolean[] = [];
    let release!: () => void;
    const holding = withSyncLock(
      async () => {
        seen.push(syncWaiting(lockFile()));
        await new Promise<void>((resolve) => (release = resolve));
      },
      { file: lockFile(), pollMs: 2 },
    );
    await sleep(10);
    const queued = withSyncLock(async () => void seen.push(syncWaiting(lockFile())), { file: lockFile(), pollMs: 2 });
    seen.push(syncWaiting(lockFile()));
    release();
    await Promise.all([holding, queued]);
    assert.deepEqual(seen, [false, true, false], 'nobody waits, then the queued request, then nobody again');

    // Another process holds the lock: a request of this one polls and leaves a .waiting file,
    // which goes once it has the lock.
    writeFileSync(lockFile(), String(process.ppid));
    let started = false;
    const polling = withSyncLock(async () => void (started = true), { file: lockFile(), pollMs: 5 });
    await sleep(30);
    assert.equal(existsSync(`${lockFile()}.waiting`), true);
    unlinkSync(lockFile());
    await polling;
    assert.equal(started, true);
    assert.equal(existsSync(`${lockFile()}.waiting`), false);
  });

  it('reports an error other than "file exists" instead of waiting forever', async () => {
    const file = path.join(tempDir(), 'no-such-dir', 'sync.lock');
    await assert.rejects(withSyncLock(async () => undefined, { file, pollMs: 5 }), /ENOENT/);
  });
});
