import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { RequestError } from '../../src/agent/server';
import { isCludAgent, syncWaiting, withSyncLock } from '../../src/agent/syncLock';
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
    assert.equal(during?.split(' ')[0], String(process.pid));
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
        assert.equal(readFileSync(lockFile(), 'utf8').split(' ')[0], String(process.pid));
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

  it('waits while another live sync process holds the lock', async () => {
    writeFileSync(lockFile(), String(process.ppid));
    let started = false;
    const locked = withSyncLock(async () => void (started = true), { file: lockFile(), pollMs: 5, isSyncProcess: () => true });
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
    const polling = withSyncLock(async () => void (started = true), { file: lockFile(), pollMs: 5, isSyncProcess: () => true });
    await sleep(30);
    assert.equal(existsSync(`${lockFile()}.waiting`), true);
    unlinkSync(lockFile());
    await polling;
    assert.equal(started, true);
    assert.equal(existsSync(`${lockFile()}.waiting`), false);
  });

  it('takes over a lock held by a live process that is not a Clud agent (anything that wrote the file, or a reused PID)', async () => {
    // The parent (npm or a shell) is alive and is not `node …/agent.js`.
    writeFileSync(lockFile(), String(process.ppid));
    let ran = false;
    await withSyncLock(async () => void (ran = true), { file: lockFile(), pollMs: 5, maxWaitMs: 2_000 });
    assert.equal(ran, true);
  });

  it('takes over a lock whose PID was reused by a process started later than the owner', async () => {
    // Even an agent: the start time recorded beside the PID is not that process's.
    writeFileSync(lockFile(), `${process.ppid} 1`);
    let ran = false;
    await withSyncLock(async () => void (ran = true), { file: lockFile(), pollMs: 5, maxWaitMs: 2_000, isSyncProcess: () => true });
    assert.equal(ran, true);
  });

  it('records its own start time beside its PID', async () => {
    const content = await withSyncLock(async () => readFileSync(lockFile(), 'utf8'), { file: lockFile(), pollMs: 5 });
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
    assert.equal(content, `${process.pid} ${start}`);
  });

  it('says what it waits for, and gives up with sync-busy after maxWaitMs while a live sync holds the lock', async () => {
    writeFileSync(lockFile(), String(process.ppid));
    const said: string[] = [];
    let ran = false;
    const started = Date.now();
    await assert.rejects(
      withSyncLock(async () => void (ran = true), { file: lockFile(), pollMs: 5, maxWaitMs: 100, isSyncProcess: () => true, onWait: (message) => said.push(message) }),
      (error: unknown) => error instanceof RequestError && error.code === 'sync-busy' && new RegExp(`process ${process.ppid}`).test(error.message),
    );
    assert.ok(Date.now() - started < 2_000);
    assert.equal(ran, false);
    assert.ok(said.length >= 1 && new RegExp(`waiting for another sync .*${process.ppid}`).test(said[0]!), JSON.stringify(said));
    assert.equal(readFileSync(lockFile(), 'utf8'), String(process.ppid), "the live owner's lock was left alone");
    assert.equal(existsSync(`${lockFile()}.waiting`), false);
  });

  it('isCludAgent: a node process running agent.js or a copied agent-<hash>.js is an agent; others are not', async () => {
    const script = path.join(tempDir(), 'agent-0123abcd.js');
    writeFileSync(script, 'setTimeout(() => {}, 30_000);');
    const child = spawn(process.execPath, [script], { stdio: 'ignore' });
    try {
      await sleep(100);
      assert.equal(isCludAgent(child.pid!), true);
      assert.equal(isCludAgent(process.pid), false, 'mocha is not an agent');
      assert.equal(isCludAgent(process.ppid), false);
    } finally {
      child.kill();
    }
  });

  it('reports an error other than "file exists" instead of waiting forever', async () => {
    const file = path.join(tempDir(), 'no-such-dir', 'sync.lock');
    await assert.rejects(withSyncLock(async () => undefined, { file, pollMs: 5 }), /ENOENT/);
  });
});
