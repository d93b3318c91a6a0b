import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SyncStateFiles } from '../../src/core/sync/stateFiles';
import { periodicFullCycleDue, SyncSession, type CycleFinished, type SyncSessionOptions } from '../../src/core/sync/session';
import { UndoLog, type SafeguardQuestion } from '../../src/core/undo';
import { onSmallDisk, useTempDir } from '../helpers/tempDir';

async function waitFor(condition: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function write(root: string, relative: string, content: string): void {
  mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
  writeFileSync(path.join(root, relative), content);
}

const REPO_ROOT = path.resolve(__dirname, '..', '..');

function spawnSyncOrThrow(command: string, args: string[]): void {
  const run = spawnSync(command, args);
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${run.stderr}`);
}
const readOr = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : undefined);

describe('unit: sync session (continuous sync on real trees)', () => {
  let session: SyncSession | undefined;
  // Before the temporary folder goes (hooks run in the order they were added).
  /** Closes the session (a cycle under way finishes first); before a test's own disk goes, too. */
  const closeSession = async () => {
    await session?.close();
    session = undefined;
  };
  afterEach(async function () {
    this.timeout(60_000);
    await closeSession();
  });
  const tempDir = useTempDir('clud-session-');

  async function start(extra: Partial<SyncSessionOptions> = {}) {
    const roots = { host: path.join(tempDir(), 'host'), container: path.join(tempDir(), 'container') };
    mkdirSync(roots.host, { recursive: true });
    mkdirSync(roots.container, { recursive: true });
    write(roots.host, 'README.md', 'hello');
    const cycles: CycleFinished[] = [];
    session = await SyncSession.open({ roots, stateDir: path.join(tempDir(), 'state'), excludes: [], policy: 'two-way-safe', quietMs: 50, ...extra });
    session.on('cycle', (cycle) => cycles.push(cycle));
    await waitFor(() => readOr(path.join(roots.container, 'README.md')) === 'hello' && cycles.length > 0, 'the first full cycle');
    return { roots, cycles };
  }

  it('carries a container write to the host and a host deletion to the container, with no command', async () => {
    const { roots, cycles } = await start();
    write(roots.container, 'src/new.ts', 'from the agent');
    await waitFor(() => readOr(path.join(roots.host, 'src/new.ts')) === 'from the agent', 'the container write on the host');
    // The cycle reports once it has recorded what it did, a moment after the file is across.
    await waitFor(() => cycles.some((cycle) => cycle.kind === 'incremental' && cycle.report.appliedCount > 0), 'an incremental cycle that carried it');
    rmSync(path.join(roots.host, 'README.md'));
    await waitFor(() => !existsSync(path.join(roots.container, 'README.md')), 'the host deletion in the container');
  });

  it('flush() carries at once what collected, in off mode too; while the user has paused auto-sync it carries nothing', async () => {
    // A quiet period longer than the test: the watchers report nothing on their own. (A path
    // marked dirty is a hint, which a cycle may carry before the flush does: either way it has
    // crossed once the flush resolves.)
    const { roots } = await start({ quietMs: 60_000 });
    write(roots.container, 'now.txt', 'flushed');
    session!.markDirty(['now.txt']);
    assert.equal(session!.flushHeld, undefined);
    await session!.flush();
    assert.equal(readOr(path.join(roots.host, 'now.txt')), 'flushed');

    await session!.pause();
    write(roots.container, 'held.txt', 'waits for resume');
    session!.markDirty(['held.txt']);
    assert.equal(session!.flushHeld, 'the user paused auto-sync');
    assert.equal(await session!.flush(), undefined, 'a flush crossed the pause');
    assert.equal(readOr(path.join(roots.host, 'held.txt')), undefined, 'a flush carried a change past the pause');
    await session!.resume();
    await waitFor(() => readOr(path.join(roots.host, 'held.txt')) === 'waits for resume', 'the held change after resume');

    // The modes say when background cycles run; a boundary's flush carries in each of them.
    await session!.configure({ autoSync: 'off' });
    write(roots.container, 'off.txt', 'off');
    session!.requestFullCycle(); // what a watcher would report: off mode leaves it to a client
    assert.equal(session!.flushHeld, undefined);
    await session!.flush();
    assert.equal(readOr(path.join(roots.host, 'off.txt')), 'off');
  });

  it('a pause holds across a restart of the session until resume, and resume is kept too', async () => {
    const { roots } = await start();
    await session!.pause();
    const options = { roots, stateDir: path.join(tempDir(), 'state'), excludes: [], policy: 'two-way-safe' as const, quietMs: 50 };
    await session!.close();
    session = await SyncSession.open(options);
    assert.equal(session.status().paused, true, 'the session reopened unpaused');
    write(roots.container, 'held.txt', 'waits for resume');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(readOr(path.join(roots.host, 'held.txt')), undefined, 'a paused session carried a change on its own after a restart');
    await session.resume();
    await waitFor(() => readOr(path.join(roots.host, 'held.txt')) === 'waits for resume', 'the held change after resume');
    await session.close();
    session = await SyncSession.open(options);
    assert.equal(session.status().paused, false, 'a resumed session reopened paused');
  });

  it('carries a burst of 500 files in a few cycles', async function () {
    this.timeout(60_000);
    const { roots, cycles } = await start();
    const before = cycles.length;
    for (let i = 0; i < 500; i += 1) write(roots.container, `gen/part${i % 10}/f${i}.txt`, `${i}`);
    const arrived = () => Array.from({ length: 500 }, (_, i) => i).every((i) => readOr(path.join(roots.host, `gen/part${i % 10}/f${i}.txt`)) === `${i}`);
    // Events are hints and the periodic full cycle (every 10 s) is the truth: on a loaded machine a
    // file of the burst has been seen to arrive only with that cycle, so the wait allows for it.
    await waitFor(arrived, 'the whole burst on the host', 30_000);
    await waitFor(() => !session?.changesWaiting, 'the queue to drain');
    const used = cycles.length - before;
    assert.ok(used <= 15, `${used} cycles for 500 files`);
  });

  it('keeps both versions when both sides edit one file', async () => {
    const { roots, cycles } = await start();
    await session?.pause();
    write(roots.host, 'README.md', 'host edit');
    write(roots.container, 'README.md', 'container edit');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await session?.resume();
    await waitFor(() => cycles.some((cycle) => cycle.report.conflicts.some((conflict) => conflict.path === 'README.md')), 'the conflict');
    assert.equal(readOr(path.join(roots.host, 'README.md')), 'host edit');
    assert.equal(readOr(path.join(roots.container, 'README.md')), 'container edit');
    assert.deepEqual(session?.status().conflicts, ['README.md']);
    // The cycle that found it carried nothing, and is in the history all the same: it is where
    // `clud conflicts` learns what each side holds. A full cycle that finds it again is not.
    const history = new SyncStateFiles(path.join(tempDir(), 'state'));
    const describing = async () => (await history.readHistory()).filter((report) => report.conflicts.some((conflict) => conflict.path === 'README.md' && conflict.host && conflict.container));
    assert.equal((await describing()).length, 1, 'the history does not describe the conflict once');
    const beforeFull = cycles.length;
    session!.requestFullCycle();
    await waitFor(() => cycles.slice(beforeFull).some((cycle) => cycle.kind === 'full'), 'a full cycle');
    assert.equal((await describing()).length, 1, 'a full cycle that found the standing conflict again was kept in the history');
    // An incremental cycle that looks only at another path leaves the conflict standing.
    const before = cycles.length;
    write(roots.container, 'other.txt', 'unrelated');
    await waitFor(() => cycles.slice(before).some((cycle) => cycle.kind === 'incremental' && cycle.report.appliedCount > 0), 'the incremental cycle that carried other.txt');
    assert.deepEqual(session?.status().conflicts, ['README.md']);
  });

  it('says what stood when it stopped until its first cycle looks again: a conflict across a restart while paused, and its end', async () => {
    const { roots, cycles } = await start();
    const options = { roots, stateDir: path.join(tempDir(), 'state'), excludes: [], policy: 'two-way-safe' as const, quietMs: 50 };
    await session!.pause();
    write(roots.host, 'README.md', 'host edit');
    write(roots.container, 'README.md', 'container edit');
    write(roots.host, '.env', 'TOKEN=1');
    await session!.resume();
    await waitFor(() => cycles.some((cycle) => cycle.report.conflicts.length > 0) && session!.status().keptOut.length > 0, 'the conflict and the secret');
    await session!.pause();
    await session!.close();
    // Paused: no cycle runs after the restart, and the status still says what stands.
    session = await SyncSession.open(options);
    assert.deepEqual([session.status().conflicts, session.status().keptOut.map((secret) => secret.path)], [['README.md'], ['.env']]);
    write(roots.host, 'README.md', 'container edit');
    await session.resume();
    await waitFor(() => session!.status().conflicts.length === 0, 'the conflict gone once both sides agree');
    await session.pause();
    await session.close();
    session = await SyncSession.open(options);
    assert.deepEqual([session.status().conflicts, session.status().keptOut.map((secret) => secret.path)], [[], ['.env']]);
  });

  it('says what it leaves out while it stands: a secret kept out and a FIFO, through cycles that look elsewhere, until it is gone', async () => {
    const { roots, cycles } = await start({ fullCycleIntervalMs: 60_000 });
    write(roots.host, '.env', 'TOKEN=1');
    spawnSyncOrThrow('mkfifo', [path.join(roots.container, 'pipe')]);
    const standing = () => [...session!.status().keptOut.map((item) => `kept out ${item.side} ${item.path}`), ...session!.status().problems.map((item) => `problem ${item.side} ${item.path}`)];
    await waitFor(() => standing().length === 2, 'both reported');
    assert.deepEqual(standing(), ['kept out host .env', 'problem container pipe']);
    const before = cycles.length;
    write(roots.container, 'other.txt', 'unrelated');
    await waitFor(() => cycles.slice(before).some((cycle) => cycle.kind === 'incremental' && cycle.report.appliedCount > 0), 'the cycle that carried other.txt');
    assert.deepEqual(standing(), ['kept out host .env', 'problem container pipe'], 'a cycle that looked elsewhere cleared them');
    rmSync(path.join(roots.container, 'pipe'));
    await waitFor(() => standing().length === 1, 'the FIFO gone from the problems');
    assert.deepEqual(standing(), ['kept out host .env']);
    assert.equal(existsSync(path.join(roots.container, '.env')), false);
  });

  it('a change it could not carry (a full disk) stands as changes waiting, with why, until a cycle carries it', async function () {
    const host = path.join(tempDir(), 'host');
    mkdirSync(host);
    await onSmallDisk(this, host, '1m', async () => {
      const { roots, cycles } = await start();
      write(roots.container, 'big.bin', 'x'.repeat(3 * 1024 * 1024));
      await waitFor(() => cycles.some((cycle) => cycle.report.skipped.some((skipped) => skipped.path === 'big.bin')), 'the cycle that could not carry it');
      const notCarried = () => session!.status().problems.filter((problem) => problem.path === 'big.bin').map((problem) => `${problem.side}: ${problem.reason}`);
      assert.deepEqual(notCarried(), ['host: not carried: ENOSPC: no space left on device, write']);
      assert.equal(session!.status().changesWaiting, true, 'the status says nothing waits while the sides differ');
      // A cycle that carries another path leaves it standing.
      const before = cycles.length;
      write(roots.container, 'small.txt', 'fits');
      await waitFor(() => cycles.slice(before).some((cycle) => cycle.report.appliedCount > 0), 'the cycle that carried small.txt');
      assert.equal(readOr(path.join(roots.host, 'small.txt')), 'fits');
      assert.equal(notCarried().length, 1);
      assert.equal(session!.status().changesWaiting, true);
      // Once there is nothing left to carry, nothing stands.
      rmSync(path.join(roots.container, 'big.bin'));
      await waitFor(() => notCarried().length === 0 && !session!.status().changesWaiting, 'the standing change gone');
      await closeSession();
    });
  });

  it('a background cycle that fails as a whole (its state folder full) says why in the status until a cycle finishes', async function () {
    const stateDir = path.join(tempDir(), 'state');
    mkdirSync(stateDir);
    await onSmallDisk(this, stateDir, '256k', async () => {
      const { roots, cycles } = await start();
      const filler = path.join(stateDir, 'filler');
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k', 'count=1000']); // until the disk is full
      // Enough files that the cycle's line of the state journal needs pages the disk no longer has.
      for (let index = 0; index < 100; index += 1) write(roots.container, `burst/a-file-with-a-rather-long-name-${index}.txt`, `${index}`);
      // Read once no cycle runs: the watchers' later events for the burst start cycles that fail
      // the same way, and while one runs the status says syncing, not changes waiting.
      await waitFor(() => session!.status().failed !== undefined && !session!.status().busy, 'the failed cycle in the status, the agent idle');
      assert.match(session!.status().failed!.reason, /^sync state: ENOSPC/);
      assert.equal(session!.status().changesWaiting, true);
      rmSync(filler);
      const before = cycles.length;
      write(roots.container, 'two.txt', 'two');
      await waitFor(() => cycles.length > before && session!.status().failed === undefined, 'a cycle that finished');
      await waitFor(() => readOr(path.join(roots.host, 'two.txt')) === 'two' && readOr(path.join(roots.host, 'burst/a-file-with-a-rather-long-name-99.txt')) === '99', 'the files on the host');
      await closeSession();
    });
  });

  it('halts on a wiped /workspace, leaves the host intact and stops background cycles', async () => {
    const { roots } = await start();
    write(roots.host, 'more/file.txt', 'keep me');
    await waitFor(() => existsSync(path.join(roots.container, 'more/file.txt')), 'the second file');
    const halted: unknown[] = [];
    session?.on('halted', (halt) => halted.push(halt));
    rmSync(roots.container, { recursive: true });
    mkdirSync(roots.container);
    await waitFor(() => halted.length > 0, 'the halt');
    assert.equal(session?.isPaused, true);
    assert.equal(readOr(path.join(roots.host, 'README.md')), 'hello');
    assert.equal(readOr(path.join(roots.host, 'more/file.txt')), 'keep me');
  });

  it('still carries changes when a side is polled by setting', async () => {
    const { roots } = await start({ poll: { host: true }, pollIntervalMs: 200 });
    assert.deepEqual(session?.degradedWatches.map((reason) => [reason.side, reason.code]), [['host', 'WATCH_POLLING']]);
    write(roots.host, 'polled.txt', 'seen by polling');
    await waitFor(() => readOr(path.join(roots.container, 'polled.txt')) === 'seen by polling', 'the polled host write');
  });

  it('loses nothing when the owner is SIGKILLed mid-cycle, and syncs on when opened again', async function () {
    this.timeout(120_000);
    const roots = { host: path.join(tempDir(), 'host'), container: path.join(tempDir(), 'container') };
    const stateDir = path.join(tempDir(), 'state');
    for (let i = 0; i < 3000; i += 1) write(roots.host, `src/m${i % 30}/f${i}.txt`, `file ${i} `.repeat(20));
    mkdirSync(roots.container, { recursive: true });
    const script = `
      const { SyncSession } = require(${JSON.stringify(path.join(REPO_ROOT, 'src/core/sync/session.ts'))});
      SyncSession.open(${JSON.stringify({ roots, stateDir, excludes: [], policy: 'two-way-safe', quietMs: 50 })}).then(() => process.stdout.write('open\\n'));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    // Killed once the first cycle has copied some of the files, not all.
    await waitFor(() => existsSync(path.join(roots.container, 'src')) && readdirSync(path.join(roots.container, 'src')).length >= 3, 'the copy under way', 60_000);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const copiedBeforeKill = readdirSync(path.join(roots.container, 'src'), { recursive: true }).filter((name) => String(name).endsWith('.txt')).length;

    session = await SyncSession.open({ roots, stateDir, excludes: [], policy: 'two-way-safe', quietMs: 50 });
    // Done when nothing waits and no cycle runs: files arrive in the order reconcile visits
    // them (src/m29 before src/m3), so no one file is the last.
    await waitFor(() => readOr(path.join(roots.container, 'src/m29/f2999.txt')) !== undefined && !session?.changesWaiting && !session?.status().busy, 'the copy finished after the restart', 60_000);
    for (let i = 0; i < 3000; i += 1) {
      const relative = `src/m${i % 30}/f${i}.txt`;
      assert.equal(readOr(path.join(roots.host, relative)), `file ${i} `.repeat(20), `host ${relative}`);
      assert.equal(readOr(path.join(roots.container, relative)), `file ${i} `.repeat(20), `container ${relative}`);
    }
    write(roots.container, 'after.txt', 'next change');
    await waitFor(() => readOr(path.join(roots.host, 'after.txt')) === 'next change', 'the next change');
    assert.ok(copiedBeforeKill < 3000, `killed mid-copy (${copiedBeforeKill} files were across)`);
  });

  it('runs client jobs in the same queue as cycles', async () => {
    await start();
    // Quiet first: the first cycle's own writes are events too, and their cycle may be queued.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await waitFor(() => !session!.changesWaiting && !session!.status().busy, 'the queue to drain');
    const order: string[] = [];
    const job = session!.runJob(async () => {
      order.push('job start');
      await new Promise((resolve) => setTimeout(resolve, 100));
      order.push('job end');
    });
    session!.requestFullCycle();
    session!.once('cycle', () => order.push('cycle'));
    await job;
    await waitFor(() => order.includes('cycle'), 'the cycle');
    assert.deepEqual(order, ['job start', 'job end', 'cycle']);
  });

  it('runs a client\'s push as one job of the queue, with its report, and a reset lifts a halt', async () => {
    const { roots } = await start();
    await session!.pause();
    write(roots.host, 'pushed.txt', 'by request');
    write(roots.container, 'README.md', 'container only edit');
    const report = await session!.runRequestCycle({ policy: 'push' });
    assert.equal(readOr(path.join(roots.container, 'pushed.txt')), 'by request');
    assert.equal(readOr(path.join(roots.container, 'README.md')), 'hello', 'a push makes /workspace the host folder');
    assert.ok(report.applied.some((change) => change.path === 'pushed.txt' && change.side === 'container'), JSON.stringify(report.applied));
    assert.equal(session!.status().lastCycle?.kind, 'request');

    rmSync(roots.container, { recursive: true });
    mkdirSync(roots.container);
    const halted = await session!.runRequestCycle({ policy: 'two-way-safe' });
    assert.equal(halted.halted?.side, 'container');
    assert.equal(session!.status().halt?.side, 'container');
    const reset = await session!.runRequestCycle({ policy: 'two-way-safe', reset: true });
    assert.equal(reset.halted, undefined);
    assert.equal(session!.status().halt, undefined);
    assert.equal(readOr(path.join(roots.container, 'pushed.txt')), 'by request', 'the reset merged both sides, deleting nothing');
  });

  it('holds every other cycle while a background question waits, and a denial pauses background sync until a client syncs', async function () {
    this.timeout(60_000);
    const roots = { host: path.join(tempDir(), 'host'), container: path.join(tempDir(), 'container') };
    const stateDir = path.join(tempDir(), 'state');
    for (let i = 0; i < 5; i += 1) write(roots.host, `many/f${i}.txt`, `${i}`);
    write(roots.host, 'README.md', 'stays');
    mkdirSync(roots.container, { recursive: true });
    const { log } = await UndoLog.open(path.join(stateDir, 'undo'), { keptDirectory: path.join(stateDir, 'kept') });
    let answer: ((value: 'allow' | 'deny') => void) | undefined;
    const asked: SafeguardQuestion[] = [];
    session = await SyncSession.open({
      roots, stateDir, excludes: [], policy: 'two-way-safe', quietMs: 50,
      undo: { log, thresholds: { maxDeletions: 2 }, ask: (question) => new Promise((resolve) => { asked.push(question); answer = resolve; }) },
    });
    const cycles: CycleFinished[] = [];
    session.on('cycle', (cycle) => cycles.push(cycle));
    await waitFor(() => readOr(path.join(roots.container, 'many/f4.txt')) === '4' && !session!.changesWaiting && !session!.status().busy, 'the first cycle');

    rmSync(path.join(roots.container, 'many'), { recursive: true });
    await waitFor(() => session!.status().question !== undefined, 'the question');
    assert.equal(session!.status().question?.kind, 'many-deletions');
    // Meanwhile nothing else runs: a job waits behind the question.
    let jobRan = false;
    const job = session.runJob(async () => { jobRan = true; });
    write(roots.container, 'other.txt', 'waits too');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(jobRan, false, 'a job ran while the question waited');
    assert.equal(readOr(path.join(roots.host, 'other.txt')), undefined, 'another path was synced past the question');

    answer!('deny');
    await job;
    await waitFor(() => session!.isPaused, 'background sync held after the denial');
    assert.equal(session!.status().heldBy?.kind, 'many-deletions');
    assert.equal(readOr(path.join(roots.host, 'many/f0.txt')), '0', 'the denied deletions were not carried');
    const questions = asked.length;
    write(roots.container, 'later.txt', 'not synced while held');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(asked.length, questions, 'the held question was asked again');
    assert.equal(readOr(path.join(roots.host, 'later.txt')), undefined);

    // A client's own sync answers for the whole tree and lifts the hold.
    const report = await session.runRequestCycle({ policy: 'two-way-safe', ask: async () => 'allow' });
    assert.equal(report.denied, undefined);
    assert.equal(session.isPaused, false);
    assert.equal(existsSync(path.join(roots.host, 'many/f0.txt')), false);
    assert.equal(readOr(path.join(roots.host, 'later.txt')), 'not synced while held');
  });

  it('stops syncing what configure() newly excludes, and syncs on-save hints only in that mode', async () => {
    const { roots } = await start();
    await session!.configure({ excludes: ['*.log'] });
    write(roots.container, 'build.log', 'excluded now');
    write(roots.container, 'kept.txt', 'still synced');
    await waitFor(() => readOr(path.join(roots.host, 'kept.txt')) === 'still synced', 'the synced file');
    await waitFor(() => !session!.changesWaiting && !session!.status().busy, 'the queue to drain');
    assert.equal(readOr(path.join(roots.host, 'build.log')), undefined);

    await session!.configure({ autoSync: 'on-save' });
    await waitFor(() => !session!.changesWaiting && !session!.status().busy, 'the queue to drain');
    write(roots.container, 'agent.txt', 'waits for a sync');
    write(roots.host, 'saved.txt', 'saved in the editor');
    session!.markDirty(['saved.txt']);
    await waitFor(() => readOr(path.join(roots.container, 'saved.txt')) === 'saved in the editor', 'the hinted save');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(readOr(path.join(roots.host, 'agent.txt')), undefined, 'on-save carried a change nobody saved');
    assert.equal(session!.changesWaiting, true);
  });

  it("waits a hundred times the last rescan's CPU time before the next periodic one: at most a hundredth of a core at rest", () => {
    const cases: Array<[now: number, last: { endedAt: number; costMs: number }, due: boolean]> = [
      [10_000, { endedAt: 0, costMs: 0 }, true],
      [10_000, { endedAt: 0, costMs: 100 }, true],
      [10_000, { endedAt: 0, costMs: 120 }, false],
      [199_000, { endedAt: 0, costMs: 2_000 }, false],
      [200_000, { endedAt: 0, costMs: 2_000 }, true],
      [260_000, { endedAt: 60_000, costMs: 2_000 }, true],
    ];
    for (const [now, last, due] of cases) assert.equal(periodicFullCycleDue(now, last), due, JSON.stringify({ now, last }));
  });

  it('counts the jobs queued behind the one running (what long background work gives way to)', async () => {
    await start();
    let release: () => void = () => {};
    const running = session!.runJob(() => new Promise<void>((resolve) => { release = resolve; }));
    const queued = session!.runJob(async () => undefined);
    await waitFor(() => session!.status().busy, 'the first job to start');
    assert.equal(session!.jobsWaiting, 1);
    release();
    await Promise.all([running, queued]);
    assert.equal(session!.jobsWaiting, 0);
  });

  it('a housekeeping job leaves the status as it is: the status bar does not say syncing for it', async () => {
    await start();
    await waitFor(() => !session!.status().busy, 'the first cycle to end');
    let busyInside = true;
    await session!.runJob(async () => { busyInside = session!.status().busy; }, { housekeeping: true });
    assert.equal(busyInside, false);
    let busyInRequest = false;
    await session!.runJob(async () => { busyInRequest = session!.status().busy; });
    assert.equal(busyInRequest, true);
  });
});
