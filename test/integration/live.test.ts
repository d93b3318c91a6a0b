// The live controls of the CLI against the resident agent in a real container: `clud watch`
// (events as they happen, reconnecting after the agent is killed), `clud pause`/`clud resume`,
// `clud status`'s live state and `clud up --auto-sync`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { AgentEvent, LiveStatus, SyncReport } from '../../src/core/protocol';
import { containerNameFor } from '../../src/core/host/hostPath';
import {
  CLI_PATH,
  INTEGRATION_TIMEOUT_MS,
  REPO_ROOT,
  TEST_ENV,
  TestScope,
  assertExit,
  chownTree,
  cludSync,
  cludUp,
  describeRun,
  execSh,
  requireDocker,
  runClaudeHook,
  runClud,
  runCludJson,
  waitFor,
} from '../helpers/integration';

type WatchLine = ({ time: string } & AgentEvent) | { time: string; type: 'connection'; state: string; code?: string };

/** `clud watch DIR --json` in the background, its lines parsed as they come. */
async function startWatch(dir: string) {
  const { execa } = await import('execa');
  const child = execa('node', [CLI_PATH, 'watch', dir, '--json'], { reject: false, env: { ...process.env, ...TEST_ENV }, cwd: REPO_ROOT, buffer: false, stdin: 'ignore' });
  const lines: WatchLine[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop()!;
    for (const line of parts) if (line) lines.push(JSON.parse(line) as WatchLine);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return {
    lines,
    stderr: () => stderr,
    async until(what: string, found: (line: WatchLine) => boolean, timeoutMs = 30_000): Promise<WatchLine> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.find(found);
        if (line) return line;
        if (Date.now() > deadline) assert.fail(`clud watch never printed ${what}; it printed:\n${lines.map((item) => JSON.stringify(item)).join('\n').slice(-4000)}\nstderr: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async interrupt(): Promise<number | undefined> {
      child.kill('SIGINT');
      return (await child).exitCode;
    },
    stop() {
      child.kill('SIGKILL');
    },
  };
}

const applied = (name: string) => (line: WatchLine) => line.type === 'cycle-finished' && line.report.applied.some((change) => change.path === name);

async function waitForFile(file: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) assert.fail(`${file} never appeared on the host`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return readFile(file, 'utf8');
}

/**
 * SIGKILLs the resident agent (`agent daemon`) in DIR's container, as root, by its PID. The
 * pattern is anchored at the end of the command line, so that it does not match this shell's own.
 */
async function killResidentAgent(dir: string): Promise<void> {
  const script = `for d in /proc/[0-9]*; do c=$(tr '\\000' ' ' < $d/cmdline 2>/dev/null); case "$c" in *" /opt/clud/agent.js daemon ") kill -9 \${d#/proc/} && echo killed;; esac; done`;
  const { stdout } = await promisify(execFile)('docker', ['exec', '--user', 'root', containerNameFor(dir, 'linux'), 'sh', '-c', script]);
  assert.match(stdout, /killed/, `no resident agent was killed: ${stdout}`);
}

async function liveStatus(dir: string): Promise<LiveStatus> {
  const { run, json } = await runCludJson(['status', dir]);
  assertExit(run, 0);
  assert.ok(json.live, `clud status has no live state\n${describeRun(run)}`);
  return json.live as LiveStatus;
}

describe('integration: live sync controls (clud watch, pause, resume, up --auto-sync)', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  const watches: Array<{ stop(): void }> = [];

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'README.md': 'hello\n' });
    // The suite's environment turns auto-sync off (CLUD_AUTO_SYNC in TEST_ENV); the flag wins.
    await cludUp(dir, ['--auto-sync', 'continuous']);
  });

  afterEach(() => {
    for (const watch of watches.splice(0)) watch.stop();
  });

  after(async function () {
    await scope.cleanup();
  });

  it('clud watch --json shows a file written in /workspace cross to the host, with no command run; Ctrl-C ends it with 130', async function () {
    const watch = await startWatch(dir);
    watches.push(watch);
    const first = await watch.until('the status it subscribed with', (line) => line.type === 'status');
    assert.equal(first.type === 'status' && first.status.autoSync, 'continuous');
    await execSh(dir, 'echo from-container > written-in-container.txt');
    assert.equal(await waitForFile(path.join(dir, 'written-in-container.txt')), 'from-container\n');
    const carried = await watch.until('the cycle that carried the file', applied('written-in-container.txt'));
    await watch.until('a status back to idle', (line) => line.type === 'status' && line.status.state === 'idle' && !line.status.changesWaiting);
    // The watchers' events for what the cycle wrote bring a cycle that finds nothing: shown as
    // syncing, never as changes waiting, which flickered after every cycle that wrote.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = watch.lines.slice(watch.lines.indexOf(carried));
    assert.deepEqual(after.filter((line) => line.type === 'status' && line.status.changesWaiting), [], `clud watch printed:\n${after.map((line) => JSON.stringify(line)).join('\n')}`);
    assert.equal(await watch.interrupt(), 130);
  });

  it('clud pause holds changes (clud status says paused), also across a SIGKILL of the resident agent; clud resume carries them, deletions included', async function () {
    await execSh(dir, 'echo doomed > deleted-while-paused.txt');
    assert.equal(await waitForFile(path.join(dir, 'deleted-while-paused.txt')), 'doomed\n');
    const pause = await runCludJson(['pause', dir]);
    assertExit(pause.run, 0);
    assert.equal((pause.json.live as LiveStatus).state, 'paused');
    await execSh(dir, 'echo while-paused > while-paused.txt; rm deleted-while-paused.txt');
    // An agent that dies while paused comes back paused: it does not start syncing behind the user's back.
    await killResidentAgent(dir);
    await waitFor('the restarted agent', async () => ((await liveStatus(dir).catch(() => undefined))?.state === 'paused' ? true : undefined), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(existsSync(path.join(dir, 'while-paused.txt')), false, 'a paused sync carried a change');
    const paused = await liveStatus(dir);
    assert.equal(paused.state, 'paused');
    const statusText = await runClud(['status', dir]);
    assert.match(statusText.stdout, /^sync: +paused/m, describeRun(statusText));

    const resume = await runCludJson(['resume', dir]);
    assertExit(resume.run, 0);
    // After a pause there is nothing to merge: the sync goes on from where it stopped.
    assert.deepEqual(Object.keys(resume.json).sort(), ['live', 'ok'], `resume after a pause merges nothing\n${describeRun(resume.run)}`);
    assert.notEqual((resume.json.live as LiveStatus).state, 'paused');
    assert.equal(await waitForFile(path.join(dir, 'while-paused.txt')), 'while-paused\n');
    // A deletion made while paused crosses too (a merge that deletes nothing would bring the file back).
    await waitFor('deleted-while-paused.txt gone from the host', async () => (existsSync(path.join(dir, 'deleted-while-paused.txt')) ? undefined : true), 30_000);
    assert.equal((await execSh(dir, 'test -e deleted-while-paused.txt && echo present || echo absent')).trim(), 'absent');

    // --merge (VS Code's Resume Sync After Halt) merges both sides whether or not anything halted.
    const merged = await runCludJson(['resume', dir, '--merge']);
    assertExit(merged.run, 0);
    assert.deepEqual(Object.keys(merged.json).sort(), ['metrics', 'ok', 'report'], `resume --merge prints its merge as a sync does\n${describeRun(merged.run)}`);
  });

  it('clud resume after a halt reports the merge that lifted it: no background cycle merges first', async function () {
    await execSh(dir, 'mkdir -p wiped && for i in $(seq 1 20); do echo $i > wiped/f$i.txt; done');
    await waitFor('the 20 files on the host', async () => (existsSync(path.join(dir, 'wiped/f20.txt')) ? true : undefined), 30_000);
    await execSh(dir, 'find . -mindepth 1 -delete');
    await waitFor('the sync halted on the emptied /workspace', async () => ((await liveStatus(dir)).state === 'halted' ? true : undefined), 30_000);
    const resumed = await runCludJson(['resume', dir]);
    assertExit(resumed.run, 0);
    const report = resumed.json.report as SyncReport;
    assert.ok(
      report.applied.some((change) => change.side === 'container' && change.path === 'wiped/f20.txt'),
      `the merge that restored /workspace is not the one reported\n${describeRun(resumed.run)}`,
    );
    assert.equal((await execSh(dir, 'cat wiped/f20.txt')).trim(), '20');
  });

  it('a background cycle that would delete 60 files waits for approval; history, undo, down, checkpoint and Claude Code\'s hooks say so at once; clud sync asks once and denies without a terminal; clud sync --yes allows it', async function () {
    await execSh(dir, 'mkdir -p doomed && for i in $(seq 1 60); do echo $i > doomed/f$i.txt; done');
    await waitFor('the 60 files on the host', async () => (existsSync(path.join(dir, 'doomed/f60.txt')) ? true : undefined), 30_000);
    await execSh(dir, 'rm -rf doomed');
    const waiting = await waitFor('the agent waiting for approval', async () => {
      const live = await liveStatus(dir);
      return live.state === 'waiting-for-approval' ? live : undefined;
    }, 30_000);
    assert.equal(waiting.question?.question.kind, 'many-deletions');
    assert.match((await runClud(['status', dir])).stdout, /^sync: +waiting for approval/m);
    assert.equal(existsSync(path.join(dir, 'doomed/f1.txt')), true, 'a held deletion reached the host');

    // The history, which someone asked wants to see, answers, with the question named.
    const history = await runClud(['history', dir], { timeoutMs: 30_000 });
    assertExit(history, 0);
    assert.match(history.stdout, /^note: a background sync is waiting for approval: 60 files deleted.*; barriers as of the last sync$/m, describeRun(history));
    // Requests that cannot answer the question do not wait behind it with nothing said.
    for (const args of [['undo', dir], ['down', dir], ['checkpoint', dir, 'while asking']]) {
      const refused = await runClud(args, { timeoutMs: 30_000 });
      assertExit(refused, 1);
      assert.match(refused.stderr, /a background sync is waiting for approval: 60 files deleted/, describeRun(refused));
      assert.match(refused.stderr, /`clud sync --yes` allows it/, describeRun(refused));
    }
    // Claude Code's hooks do not hold its prompt or its turn's end behind the question (they waited up to 20 s and 240 s).
    for (const event of ['UserPromptSubmit', 'Stop']) {
      const started = Date.now();
      const hook = await runClaudeHook(dir, event, { prompt: 'while asking' }, { timeoutMs: 60_000 });
      assertExit(hook, 0);
      assert.ok(Date.now() - started < 10_000, `the ${event} hook waited ${Date.now() - started} ms`);
      assert.match(hook.stderr, /waiting for approval|waits for the user's approval/, describeRun(hook));
    }
    assert.equal((await liveStatus(dir)).state, 'waiting-for-approval', 'a refused request answered the question');

    // clud resume can answer: without a terminal or --yes it denies, and resumed, the sync meets the deletion and asks again.
    const resumed = await runClud(['resume', dir], { timeoutMs: 30_000 });
    assertExit(resumed, 0);
    assert.match(resumed.stderr, /safeguard: 60 files deleted.*denied/, describeRun(resumed));
    await waitFor('the deletion asked about again', async () => ((await liveStatus(dir)).state === 'waiting-for-approval' ? true : undefined), 30_000);

    // The request is asked the held question first, then its own cycle meets the same deletion: one question.
    const denied = await runClud(['sync', dir]);
    assertExit(denied, 1);
    assert.equal(denied.stderr.match(/safeguard: .*denied/g)?.length, 1, `asked more than once:\n${describeRun(denied)}`);
    assert.equal(existsSync(path.join(dir, 'doomed/f1.txt')), true, 'a denied deletion reached the host');
    // Held, and saying why: not a pause the user made, which `clud resume` would simply lift.
    assert.match((await liveStatus(dir)).denied?.detail ?? '', /60 files deleted/);
    assert.match((await runClud(['status', dir])).stdout, /^sync: +paused after a denied safeguard \(60 files deleted.*`clud sync --yes` allows it/m);

    const allowed = await runClud(['sync', dir, '--yes']);
    assertExit(allowed, 0);
    assert.match(allowed.stderr, /safeguard: 60 files deleted.*; allowed \(--yes\)/, describeRun(allowed));
    assert.equal((await liveStatus(dir)).denied, undefined, 'an allowed sync left background cycles held');
    assert.equal(existsSync(path.join(dir, 'doomed')), false, 'the allowed deletion did not reach the host');
    await waitFor('the agent idle again', async () => ((await liveStatus(dir)).state === 'idle' ? true : undefined), 30_000);
  });

  it('clud sync --yes that answers a waiting background cycle reports that cycle\'s changes as its own', async function () {
    await execSh(dir, 'mkdir -p answered && for i in $(seq 1 60); do echo $i > answered/f$i.txt; done');
    await waitFor('the 60 files on the host', async () => (existsSync(path.join(dir, 'answered/f60.txt')) ? true : undefined), 30_000);
    await execSh(dir, 'rm -rf answered');
    await waitFor('the agent waiting for approval', async () => ((await liveStatus(dir)).state === 'waiting-for-approval' ? true : undefined), 30_000);
    const allowed = await runCludJson(['sync', dir, '--yes']);
    assertExit(allowed.run, 0);
    const report = allowed.json.report as SyncReport;
    assert.equal(existsSync(path.join(dir, 'answered')), false, 'the allowed deletion did not reach the host');
    assert.ok(report.deletedCount >= 60, `the sync reported ${report.deletedCount} deletions\n${describeRun(allowed.run)}`);
    assert.ok(report.applied.some((change) => change.path === 'answered/f1.txt' && change.side === 'host'), describeRun(allowed.run));
  });

  it('clud watch reconnects after the resident agent is SIGKILLed, and shows the next change', async function () {
    const watch = await startWatch(dir);
    watches.push(watch);
    await watch.until('its first status', (line) => line.type === 'status');
    await killResidentAgent(dir);
    await watch.until('that it lost the agent', (line) => line.type === 'connection' && line.state === 'reconnecting');
    await watch.until('that it reconnected', (line) => line.type === 'connection' && line.state === 'connected' && line !== watch.lines[0]);
    await execSh(dir, 'echo after-kill > after-kill.txt');
    assert.equal(await waitForFile(path.join(dir, 'after-kill.txt')), 'after-kill\n');
    await watch.until('the cycle after the restart', applied('after-kill.txt'));
  });

  it('clud up --auto-sync off stops syncing on its own (sync still carries); continuous starts it again', async function () {
    const off = await runCludJson(['up', dir, '--auto-sync', 'off']);
    assertExit(off.run, 0);
    assert.equal((off.json.live as LiveStatus | undefined)?.autoSync, 'off', describeRun(off.run));
    await execSh(dir, 'echo auto-sync-off > auto-sync-off.txt');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(existsSync(path.join(dir, 'auto-sync-off.txt')), false, 'auto-sync off carried a change');
    const sync = await cludSync('sync', dir);
    assert.ok(sync.report.applied.some((change) => change.path === 'auto-sync-off.txt'), JSON.stringify(sync.report.applied));

    const continuous = await runCludJson(['up', dir, '--auto-sync', 'continuous']);
    assertExit(continuous.run, 0);
    assert.equal((continuous.json.live as LiveStatus | undefined)?.autoSync, 'continuous');
    await execSh(dir, 'echo continuous-again > continuous-again.txt');
    assert.equal(await waitForFile(path.join(dir, 'continuous-again.txt')), 'continuous-again\n');
  });

  it('an unknown --auto-sync mode is refused, naming the flag', async function () {
    const run = await runClud(['up', dir, '--auto-sync', 'sometimes']);
    assert.notEqual(run.exitCode, 0);
    assert.match(run.stderr, /--auto-sync/, describeRun(run));
  });
});

describe("integration: the agent's commits in clud watch, with continuous sync", function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  after(async function () {
    await scope.cleanup();
  });

  it('a commit in the container is said as it reaches the host, by the background exchange, with no command run', async function () {
    await requireDocker();
    const dir = await scope.project({ 'a.txt': 'a\n' });
    const git = (...args: string[]) => promisify(execFile)('git', ['-c', 'safe.directory=*', '-c', 'user.name=U', '-c', 'user.email=u@example.com', '-c', 'init.defaultBranch=main', '-c', 'commit.gpgSign=false', ...args], { cwd: dir });
    await git('init', '-q');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'first');
    await chownTree(dir);
    await cludUp(dir, ['--auto-sync', 'continuous']);
    const watch = await startWatch(dir);
    try {
      await execSh(dir, 'echo agent > agent.txt && git add agent.txt && git -c user.name=A -c user.email=a@example.com commit -q -m "agent work"');
      const said = await watch.until('the background exchange', (line) => line.type === 'git-exchanged');
      assert.deepEqual(said.type === 'git-exchanged' && said.lines, [`agent: 1 new commit on clud/${path.basename(dir)}/main`]);
    } finally {
      watch.stop();
    }
  });
});

describe('integration: a request queued behind a background cycle whose question opens while it waits', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  /** How long the failpoint keeps a background cycle's question from opening: the window a request is queued in. */
  const QUESTION_DELAY_MS = 5000;

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'a.txt': 'a\n' });
    await cludUp(dir, ['--auto-sync', 'continuous'], { env: { CLUD_FAILPOINT: `slow-background-question:${QUESTION_DELAY_MS}` } });
  });

  after(async function () {
    await scope.cleanup();
  });

  /** Deletes 60 synced files in /workspace, and returns once the background cycle that asks about it holds the queue, its question not yet open. */
  async function holdQueueWithQuestionPending(folder: string): Promise<void> {
    await execSh(dir, `mkdir -p ${folder} && for i in $(seq 1 60); do echo $i > ${folder}/f$i.txt; done`);
    await waitFor(`the 60 files of ${folder} on the host`, async () => (existsSync(path.join(dir, folder, 'f60.txt')) ? true : undefined), 30_000);
    await execSh(dir, `rm -rf ${folder}`);
    const syncing = await waitFor('the background cycle under way', async () => ((await liveStatus(dir)).state === 'syncing' ? true : undefined), 10_000);
    assert.equal(syncing, true);
  }

  it('a request that cannot answer is refused when the question opens, not left waiting; one that can is asked it', async function () {
    await holdQueueWithQuestionPending('doomed');
    const undo = await runClud(['undo', dir], { timeoutMs: 60_000 });
    assertExit(undo, 1);
    assert.match(undo.stderr, /a background sync is waiting for approval: 60 files deleted/, describeRun(undo));
    assertExit(await runClud(['sync', dir, '--yes']), 0);
    assert.equal(existsSync(path.join(dir, 'doomed')), false);

    // The history, queued as well, is answered from the log once the question opens.
    await holdQueueWithQuestionPending('doomed-history');
    const history = await runClud(['history', dir], { timeoutMs: 60_000 });
    assertExit(history, 0);
    assert.match(history.stdout, /^note: a background sync is waiting for approval: 60 files deleted/m, describeRun(history));
    assertExit(await runClud(['sync', dir, '--yes']), 0);

    await holdQueueWithQuestionPending('doomed-too');
    const sync = await runClud(['sync', dir], { timeoutMs: 60_000 });
    assertExit(sync, 1);
    assert.match(sync.stderr, /safeguard: 60 files deleted.*denied/, describeRun(sync));
    assert.equal(existsSync(path.join(dir, 'doomed-too/f1.txt')), true, 'a denied deletion reached the host');
    assertExit(await runClud(['sync', dir, '--yes']), 0);

    // clud resume queues a job too, and can answer.
    await holdQueueWithQuestionPending('doomed-three');
    const resume = await runClud(['resume', dir], { timeoutMs: 60_000 });
    assertExit(resume, 0);
    assert.match(resume.stderr, /safeguard: 60 files deleted.*denied/, describeRun(resume));
  });
});
