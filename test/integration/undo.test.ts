// The undo log in a real container with the real agent: `clud history` and `clud undo` after syncs
// that wrote to the host, barriers (a later host edit that an undo would destroy), the deletion
// safeguard, and the rollback of a sync killed in the middle of its host changes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, lutimes, readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { CludError } from '../../src/core/errors';
import { ResultSchemas, UndoResultSchema } from '../../src/core/protocol';
import type { ResultOf, UndoResultInfo } from '../../src/core/protocol';
import {
  INTEGRATION_TIMEOUT_MS,
  TestScope,
  USER_GID,
  USER_UID,
  appliedChanges,
  assertExit,
  assertTreesEqual,
  cludSync,
  cludUp,
  containerTree,
  createWorkspace,
  describeRun,
  diffTimes,
  diffTrees,
  execSh,
  foreignOwners,
  hashTree,
  hostStatePath,
  requireDocker,
  runClud,
  runCludJson,
  runCludSync,
  stateDirectoryOf,
  treeTimes,
  writeContainer,
  writeHost,
} from '../helpers/integration';
import type { CludRun, ProjectFiles, Tree } from '../helpers/integration';

/** What `clud history --json` prints: `ok`, then the agent's undoHistory result. */
type History = ResultOf<'undoHistory'>;

/** `clud history DIR --json`, which must succeed with undo enabled; returns the steps and barriers. */
async function cludHistory(dir: string): Promise<History> {
  const { run, json } = await runCludJson(['history', dir]);
  assertExit(run, 0);
  const { ok, ...rest } = json;
  assert.equal(ok, true, describeRun(run));
  const parsed = ResultSchemas.undoHistory.strict().safeParse(rest);
  assert.ok(parsed.success, `not an undo history: ${parsed.error?.message}\n${describeRun(run)}`);
  assert.equal(parsed.data.disabledReason, undefined, describeRun(run));
  return parsed.data;
}

/** `clud undo DIR ...args --json`, whatever its exit code; `ok` must agree with it. */
async function cludUndo(dir: string, args: string[] = []): Promise<{ run: CludRun; result: UndoResultInfo }> {
  const { run, json } = await runCludJson(['undo', dir, ...args]);
  const { ok, ...rest } = json;
  assert.equal(ok, run.exitCode === 0, `ok disagrees with the exit code\n${describeRun(run)}`);
  const parsed = UndoResultSchema.strict().safeParse(rest);
  assert.ok(parsed.success, `not an undo result: ${parsed.error?.message}\n${describeRun(run)}`);
  return { run, result: parsed.data };
}

/** Restored mtimes may differ from the originals by rounding only. */
const MTIME_TOLERANCE_MS = 1;

const execFileAsync = promisify(execFile);

/**
 * The user.* extended attributes of every entry under `root`, as sorted "path name=0x…" lines,
 * read with getfattr (the attr package, which scripts/provision.sh installs) rather than with the
 * code under test.
 */
async function treeXattrs(root: string): Promise<string[]> {
  const { stdout } = await execFileAsync('getfattr', ['--recursive', '--physical', '--no-dereference', '--dump', '--match=^user\\.', '--encoding=hex', '.'], { cwd: root });
  const found: string[] = [];
  let file = '';
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
    else if (line) found.push(`${file} ${line}`);
  }
  return found.sort();
}

/** Gives each of `relatives` (under `dir`) an extended attribute user.clud-test naming it. */
async function setXattrs(dir: string, relatives: string[]): Promise<void> {
  for (const relative of relatives) await execFileAsync('setfattr', ['--name=user.clud-test', `--value=${relative} as it was`, relative], { cwd: dir });
}

/** The host folder byte for byte (content, modes, symlink targets), every entry's mtime, and extended attributes. */
interface HostSnapshot {
  tree: Tree;
  times: Map<string, number>;
  xattrs: string[];
}

async function snapshot(dir: string): Promise<HostSnapshot> {
  return { tree: await hashTree(dir), times: await treeTimes(dir), xattrs: await treeXattrs(dir) };
}

/** The host folder must be exactly as in `before`, owned by the test user throughout. */
async function assertHostIs(dir: string, before: HostSnapshot, what: string): Promise<void> {
  const now = await snapshot(dir);
  assertTreesEqual(before.tree, now.tree, ['before', what]);
  assert.deepEqual(diffTimes(before.times, now.times, MTIME_TOLERANCE_MS), [], `modification times differ ${what}`);
  assert.deepEqual(now.xattrs, before.xattrs, `extended attributes differ ${what}`);
  assert.deepEqual(await foreignOwners(dir, USER_UID, USER_GID), [], `owners differ ${what}`);
}

/**
 * Gives every entry under `root` (itself included) its own mtime in 2021, deepest first, so that
 * an undo that restored content but not times would show, and a sync would not set them by luck.
 */
async function ageTree(root: string): Promise<void> {
  let second = Date.UTC(2021, 0, 1) / 1000;
  const visit = async (file: string): Promise<void> => {
    const info = await lstat(file);
    if (info.isDirectory()) for (const name of (await readdir(file)).sort()) await visit(path.join(file, name));
    second += 61;
    await lutimes(file, second + 0.123456, second + 0.123456);
  };
  await visit(root);
}

/** A project with old mtimes (see ageTree), its container up, and a first sync that finds nothing to do. */
async function agedProject(scope: TestScope, files: ProjectFiles): Promise<string> {
  const dir = await scope.project(files);
  await ageTree(dir);
  await cludUp(dir);
  const { report } = await cludSync('sync', dir);
  assert.deepEqual(appliedChanges(report), [], 'the first sync after the initial copy changed something');
  return dir;
}

/** The folder of each test, all brought up in `before` (see there). */
const PROJECTS = {
  history: { 'a.txt': 'a v0\n', 'b.txt': 'b v0\n' },
  bytes: {
    'overwrite.txt': 'v0\n',
    'binary.bin': randomBytes(50_000),
    'private.txt': { content: 'secret v0\n', mode: 0o600 },
    'gone.txt': 'deleted in the container\n',
    'old/top.txt': 'old top\n',
    'old/sub/file.txt': 'old file\n',
    'old/sub/deeper/x.txt': 'old x\n',
    'tool.sh': { content: '#!/bin/sh\necho tool\n', mode: 0o644 },
    link: { symlink: 'overwrite.txt' },
    'keep/untouched.txt': 'untouched\n',
    'naïve name with spaces.txt': 'v0\n',
    'becomes-folder': 'a file, then a folder\n',
    'becomes-link/inner.txt': 'a folder, then a symlink\n',
  },
  steps: { 'a.txt': 'a v0\n', 'b.txt': 'b v0\n', 'dir/c.txt': 'c v0\n', 'x.sh': 'echo x\n' },
  barrier: { 'a.txt': 'a v0\n', 'b.txt': 'b v0\n' },
  // More files than the deletion safeguard allows by default (50).
  safeguard: Object.fromEntries([['keep.txt', 'keep\n'], ...Array.from({ length: 60 }, (_, index) => [`many/f${index}.txt`, `file ${index}\n`])]),
  // Small files, and one large enough (over 1 MiB) to be compressed into a stream of its own.
  compaction: { 'small.txt': 'small v0\n', 'large.bin': Buffer.alloc(1_500_000, 'a large file that compresses well\n'), 'sub/other.txt': 'other v0\n' },
  // 15 files to overwrite and 15 to delete.
  crash: Object.fromEntries([['stays.txt', 'stays\n'], ...Array.from({ length: 15 }, (_, index) => [[`upd/f${index}.txt`, `v0 ${index}\n`], [`del/g${index}.txt`, `deleted in the container ${index}\n`]]).flat()]),
} satisfies Record<string, ProjectFiles>;

describe('integration: undo', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dirs: Record<keyof typeof PROJECTS, string>;

  before(async function () {
    await requireDocker();
    // `clud up` mostly waits on the engine: every test's folder comes up at once, after a first
    // one alone (which builds the image if it is out of date).
    const [first, ...rest] = Object.entries(PROJECTS);
    const ready = [[first![0], await agedProject(scope, first![1])]];
    ready.push(...(await Promise.all(rest.map(async ([name, files]) => [name, await agedProject(scope, files)]))));
    dirs = Object.fromEntries(ready) as typeof dirs;
  });

  after(async function () {
    await scope.cleanup();
  });

  it('clud history lists a step for a sync that changed the host, and none for one that changed only the container', async function () {
    const dir = dirs.history;
    assert.deepEqual((await cludHistory(dir)).steps, [], 'the initial copy or the first sync made an undo step');

    await writeHost(dir, { 'b.txt': 'b: host edit\n', 'host-new.txt': 'new on the host\n' });
    const push = await cludSync('sync', dir);
    assert.deepEqual(appliedChanges(push.report), ['container create host-new.txt', 'container update b.txt']);
    assert.equal(push.report.undoStep, undefined, 'a sync that changed only the container made an undo step');
    assert.deepEqual(await cludHistory(dir), { steps: [], barriers: [], notices: [] });

    await writeContainer(dir, { 'a.txt': 'a: container edit\n', 'made/new.txt': 'made in the container\n' });
    const pull = await cludSync('sync', dir);
    assert.deepEqual(appliedChanges(pull.report), ['host create made', 'host create made/new.txt', 'host update a.txt']);
    const { steps, barriers } = await cludHistory(dir);
    assert.equal(steps.length, 1, JSON.stringify(steps));
    const step = steps[0]!;
    assert.equal(step.id, pull.report.undoStep);
    assert.equal(step.syncId, pull.report.id);
    assert.deepEqual({ policy: step.policy, files: step.files, protected: step.protected, barriers: step.barriers }, { policy: 'two-way-safe', files: 3, protected: true, barriers: 0 });
    assert.ok(step.bytes > 0, JSON.stringify(step));
    assert.deepEqual(barriers, []);

    const text = await runClud(['history', dir]);
    assertExit(text, 0);
    assert.match(text.stdout, /^\s*1\. \S+\s+3 path\(s\)\s+\d+ bytes\s+two-way-safe sync$/m, describeRun(text));
  });

  it('clud undo after a pull puts the host folder back byte for byte (content, modes, links, type changes, times, extended attributes); the next sync brings the container in line', async function () {
    const dir = dirs.bytes;
    // Extended attributes on files the pull overwrites and deletes, and on a folder it deletes.
    await setXattrs(dir, ['overwrite.txt', 'private.txt', 'old', 'old/sub/file.txt']);
    const before = await snapshot(dir);
    assert.equal(before.xattrs.length, 4, before.xattrs.join('\n'));
    await execSh(
      dir,
      [
        "printf 'container v1\\n' > overwrite.txt",
        'head -c 70000 /dev/urandom > binary.bin',
        "printf 'secret v1, longer\\n' > private.txt",
        'rm gone.txt',
        'rm -r old',
        'chmod +x tool.sh',
        'ln -sfn keep/untouched.txt link',
        'mkdir -p made/deeper && echo new > made/deeper/new.txt && echo top > made/top.txt && ln -s top.txt made/link-to-top',
        'echo created > keep/created.txt',
        "echo v1 > 'naïve name with spaces.txt'",
        'rm becomes-folder && mkdir becomes-folder && echo inside > becomes-folder/inside.txt',
        'rm -r becomes-link && ln -s keep becomes-link',
      ].join(' && '),
    );
    const { report } = await cludSync('pull', dir);
    assert.deepEqual(appliedChanges(report), [
      'host create becomes-folder/inside.txt',
      'host create keep/created.txt',
      'host create made',
      'host create made/deeper',
      'host create made/deeper/new.txt',
      'host create made/link-to-top',
      'host create made/top.txt',
      'host delete becomes-link/inner.txt',
      'host delete gone.txt',
      'host delete old',
      'host delete old/sub',
      'host delete old/sub/deeper',
      'host delete old/sub/deeper/x.txt',
      'host delete old/sub/file.txt',
      'host delete old/top.txt',
      'host update becomes-folder',
      'host update becomes-link',
      'host update binary.bin',
      'host update link',
      'host update naïve name with spaces.txt',
      'host update overwrite.txt',
      'host update private.txt',
      'host update tool.sh',
    ]);
    assertTreesEqual(await hashTree(dir), await containerTree(dir), ['host after the pull', 'container']);
    assert.notDeepEqual(await treeXattrs(dir), before.xattrs, 'the pull left every extended attribute in place: nothing for the undo to restore');
    const [step] = (await cludHistory(dir)).steps;
    assert.equal(step?.id, report.undoStep);
    // The container has getfattr and setfattr: the step captured extended attributes (else a note says not).
    assert.deepEqual(step?.notes, []);

    const { run, result } = await cludUndo(dir);
    assertExit(run, 0);
    assert.deepEqual(result.undone.map((undone) => undone.id), [report.undoStep], describeRun(run));
    assert.deepEqual([result.refused, result.barriers, result.kept, result.problems, result.stoppedBefore], [undefined, [], [], [], undefined], describeRun(run));
    await assertHostIs(dir, before, 'after clud undo');
    // Undo is a pop: the undone step is gone.
    assert.deepEqual((await cludHistory(dir)).steps, []);

    // The container still has the pulled versions; the next sync carries the host's back to it,
    // and writes nothing to the host (so it makes no undo step).
    const sync = await cludSync('sync', dir);
    assert.deepEqual(sync.report.conflicts, []);
    assert.ok(sync.report.applied.every((change) => change.side === 'container'), JSON.stringify(sync.report.applied));
    assert.equal(sync.report.undoStep, undefined);
    assertTreesEqual(await hashTree(dir), await containerTree(dir), ['host after the undo', 'container after the next sync']);
    await assertHostIs(dir, before, 'after the sync that followed the undo');
    assert.deepEqual((await cludHistory(dir)).steps, []);
  });

  it('clud undo pops the newest sync; clud undo --steps 2 takes back the two before it', async function () {
    const dir = dirs.steps;
    const beforeAll = await snapshot(dir);
    const syncs: string[] = [];
    const syncStep = async (command: 'sync' | 'pull', script: string) => {
      await execSh(dir, script);
      const { report } = await cludSync(command, dir);
      assert.ok(report.undoStep, `the ${command} made no undo step: ${JSON.stringify(report)}`);
      syncs.push(report.undoStep);
    };
    await syncStep('sync', 'echo a1 > a.txt && rm b.txt && mkdir -p newdir/sub && echo n > newdir/sub/n.txt && echo d > newdir/d.txt');
    await syncStep('pull', 'echo a2 > a.txt && rm -r newdir/sub && chmod +x x.sh && echo c2 > dir/c.txt');
    const beforeThird = await snapshot(dir);
    await syncStep('sync', 'echo a3 > a.txt && echo new > dir/new.txt && rm newdir/d.txt');
    assert.deepEqual(
      (await cludHistory(dir)).steps.map((step) => [step.id, step.policy]),
      [
        [syncs[2], 'two-way-safe'],
        [syncs[1], 'pull'],
        [syncs[0], 'two-way-safe'],
      ],
    );

    const last = await cludUndo(dir);
    assertExit(last.run, 0);
    assert.deepEqual(last.result.undone.map((step) => step.id), [syncs[2]]);
    await assertHostIs(dir, beforeThird, 'after undoing the third sync');
    assert.deepEqual((await cludHistory(dir)).steps.map((step) => step.id), [syncs[1], syncs[0]]);

    const two = await cludUndo(dir, ['--steps', '2']);
    assertExit(two.run, 0);
    assert.deepEqual(two.result.undone.map((step) => step.id), [syncs[1], syncs[0]], describeRun(two.run));
    assert.equal(two.result.stoppedBefore, undefined, describeRun(two.run));
    await assertHostIs(dir, beforeAll, 'after clud undo --steps 2');
    assert.deepEqual((await cludHistory(dir)).steps, []);

    await cludSync('sync', dir);
    assertTreesEqual(await hashTree(dir), await containerTree(dir), ['host', 'container after the next sync']);
    await assertHostIs(dir, beforeAll, 'after the sync that followed the undo');
  });

  it('the container compresses a step after the sync that wrote it, and undo restores from the compressed step byte for byte', async function () {
    const dir = dirs.compaction;
    const before = await snapshot(dir);
    await execSh(dir, "printf 'small v1\\n' > small.txt && head -c 10 /dev/urandom > large.bin && rm -r sub");
    const { report } = await cludSync('pull', dir);
    assert.ok(report.undoStep, JSON.stringify(report));
    // The sync wrote the step's saved content as read; the container's long-lived agent compresses it.
    const stepDirectory = path.join(stateDirectoryOf(dir), 'undo', 'steps', report.undoStep);
    let files: string[] = [];
    for (const started = Date.now(); Date.now() - started < 30_000; await new Promise((resolve) => setTimeout(resolve, 200))) {
      files = (await readdir(stepDirectory)).sort();
      if (!files.includes('content.raw')) break;
    }
    assert.deepEqual(files, ['000001.br', 'content.pack', 'manifest.json'], 'not compacted within 30 s');
    const [step] = (await cludHistory(dir)).steps;
    assert.ok(step && step.bytes < 100_000, `the compacted step takes ${step?.bytes} bytes`);

    const { run, result } = await cludUndo(dir);
    assertExit(run, 0);
    assert.deepEqual([result.undone.map((undone) => undone.id), result.problems], [[report.undoStep], []], describeRun(run));
    await assertHostIs(dir, before, 'after undoing the compacted step');
  });

  it('a host edit made after a sync is a barrier: clud undo is refused; --force undoes and keeps the edit aside', async function () {
    const dir = dirs.barrier;
    const state = stateDirectoryOf(dir);
    await writeContainer(dir, { 'a.txt': 'a: container\n' });
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(appliedChanges(report), ['host update a.txt']);
    await writeHost(dir, { 'a.txt': 'a: my edit\n' });
    const edited = await snapshot(dir);

    const refused = await cludUndo(dir);
    assertExit(refused.run, 1);
    assert.match(String(refused.result.refused), /a\.txt/, describeRun(refused.run));
    assert.deepEqual(refused.result.barriers.map((barrier) => [barrier.stepId, barrier.path]), [[report.undoStep, 'a.txt']], describeRun(refused.run));
    assert.deepEqual(refused.result.undone, []);
    await assertHostIs(dir, edited, 'after the refused undo');

    const history = await cludHistory(dir);
    assert.deepEqual(history.steps.map((step) => [step.id, step.barriers]), [[report.undoStep, 1]]);
    assert.deepEqual(history.barriers.map((barrier) => [barrier.stepId, barrier.path]), [[report.undoStep, 'a.txt']]);
    const text = await runClud(['history', dir]);
    assertExit(text, 0);
    assert.match(text.stdout, /1 barrier\(s\)/, describeRun(text));
    assert.match(text.stdout, /barrier: a\.txt /, describeRun(text));

    const forced = await cludUndo(dir, ['--force']);
    assertExit(forced.run, 0);
    assert.deepEqual(forced.result.undone.map((step) => step.id), [report.undoStep], describeRun(forced.run));
    assert.deepEqual(forced.result.barriers.map((barrier) => barrier.path), ['a.txt'], describeRun(forced.run));
    assert.deepEqual(forced.result.kept.map((kept) => kept.path), ['a.txt'], describeRun(forced.run));
    assert.equal(await readFile(hostStatePath(state, forced.result.kept[0]!.keptAt), 'utf8'), 'a: my edit\n');
    assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), 'a v0\n');
    assert.deepEqual(await cludHistory(dir), { steps: [], barriers: [], notices: [] });
  });

  it('clud history lists a barrier under the step it stands in front of, not under the last one', async function () {
    const dir = dirs.barrier;
    // The undo above put the host back; the container follows first.
    await cludSync('sync', dir);
    await writeContainer(dir, { 'a.txt': 'a: container again\n' });
    const older = (await cludSync('sync', dir)).report.undoStep;
    await writeContainer(dir, { 'b.txt': 'b: container\n' });
    const newer = (await cludSync('sync', dir)).report.undoStep;
    assert.ok(older && newer && older !== newer, `steps ${older} and ${newer}`);
    // A barrier in front of the newer step, which is listed first.
    await writeHost(dir, { 'b.txt': 'b: my edit\n' });
    const text = await runClud(['history', dir]);
    assertExit(text, 0);
    const listed = text.stdout.split('\n');
    const newerLine = listed.findIndex((line) => line.startsWith('  1. '));
    assert.match(listed[newerLine]!, /1 barrier\(s\)/, describeRun(text));
    assert.match(listed[newerLine + 1]!, /^ {5}barrier: b\.txt /, describeRun(text));
    assert.match(listed[newerLine + 2]!, /^ {2}2\. /, describeRun(text));
    assert.equal(listed.filter((line) => line.includes('barrier: ')).length, 1, describeRun(text));
  });

  it('a pull that would delete more host files than the safeguard allows is denied without --yes and changes nothing; with --yes it goes through', async function () {
    const dir = dirs.safeguard;
    await setXattrs(dir, ['many', 'many/f0.txt', 'many/f59.txt']);
    const before = await snapshot(dir);
    await execSh(dir, 'rm -r many');

    // No --yes and no terminal (execa gives none): the safeguard's question is answered "deny".
    const { run, output } = await runCludSync('pull', dir);
    assertExit(run, 1);
    assert.equal(output.report.denied?.kind, 'many-deletions', describeRun(run));
    assert.match(String(output.report.denied?.detail), /files deleted in this sync \(limit 50\)/, describeRun(run));
    assert.match(run.stderr, /safeguard: .*denied \(run with --yes to allow\)/, describeRun(run));
    assert.deepEqual([output.report.appliedCount, output.report.undoStep], [0, undefined], describeRun(run));
    await assertHostIs(dir, before, 'after the denied pull');
    assert.deepEqual((await cludHistory(dir)).steps, []);

    const allowed = await cludSync('pull', dir, ['--yes']);
    assert.deepEqual([allowed.report.deletedCount, allowed.metrics.filesDeleted], [61, 61], JSON.stringify(allowed.metrics));
    assert.deepEqual([...(await hashTree(dir)).keys()], ['keep.txt']);
    // And the deletions are one step that brings every file back.
    const undo = await cludUndo(dir);
    assertExit(undo.run, 0);
    assert.deepEqual(undo.result.undone.map((step) => step.id), [allowed.report.undoStep]);
    await assertHostIs(dir, before, 'after undoing the allowed pull');
  });

  it('a pull killed at any point of its host changes is rolled back by the next session: the host is exactly as before', async function () {
    const dir = dirs.crash;
    // 15 overwrites, 15 deletions, and a new folder with 15 files: 46 changes to the host.
    await execSh(dir, 'rm del/g*.txt && mkdir new && for i in $(seq 0 14); do echo "container $i" > upd/f$i.txt && echo "new $i" > new/h$i.txt; done');
    const total = 46;
    await setXattrs(dir, ['upd/f0.txt', 'upd/f14.txt', 'del', 'del/g0.txt', 'del/g14.txt']);
    const before = await snapshot(dir);

    const crash = async (afterChanges: number) => {
      // Only this session's agent gets the failpoint.
      const crashing = createWorkspace(dir, {}, { agentEnv: { CLUD_FAILPOINT: `kill-after-host-changes:${afterChanges}` } });
      await assert.rejects(crashing.pull(), (error: CludError) => error.code === 'agent-exited', `the pull killed after ${afterChanges} host change(s) did not fail`);
    };

    for (const afterChanges of [0, 1, total / 2]) {
      await crash(afterChanges);
      if (afterChanges >= total / 2) {
        assert.notDeepEqual(diffTrees(before.tree, await hashTree(dir)), [], `the pull killed after ${afterChanges} host change(s) left the host untouched: the crash came too early to test anything`);
      }
      // A plain `clud history` opens the undo log, which rolls the interrupted step back.
      assert.deepEqual((await cludHistory(dir)).steps, [], `the interrupted pull left an undo step (killed after ${afterChanges})`);
      await assertHostIs(dir, before, `after the recovery of a pull killed after ${afterChanges} host change(s)`);
    }

    // All but one: recovered by the next `clud sync`, which then carries every change (none of
    // them is on the host any more), and whose undo brings back the host as it was before all this.
    await crash(total - 1);
    assert.notDeepEqual(diffTrees(before.tree, await hashTree(dir)), [], 'the pull killed before its last host change left the host untouched');
    const { report } = await cludSync('sync', dir);
    assert.deepEqual([report.appliedCount, report.writtenCount, report.deletedCount], [total, 31, 15], JSON.stringify(report.applied));
    assert.ok(report.applied.every((change) => change.side === 'host'), JSON.stringify(report.applied));
    assertTreesEqual(await hashTree(dir), await containerTree(dir), ['host after the sync', 'container']);
    assert.deepEqual((await cludHistory(dir)).steps.map((step) => step.id), [report.undoStep]);
    const undo = await cludUndo(dir);
    assertExit(undo.run, 0);
    await assertHostIs(dir, before, 'after undoing the sync that followed the crash');
  });

  // Regression test for a bug fixed after it was found.
  it('clud history shows a barrier as soon as the host file is edited, before any undo', async function () {
    const dir = await agedProject(scope, { 'a.txt': 'a v0\n' });
    await writeContainer(dir, { 'a.txt': 'a: container\n' });
    const { report } = await cludSync('sync', dir);
    await writeHost(dir, { 'a.txt': 'a: my edit\n' });
    const history = await cludHistory(dir);
    assert.deepEqual(history.steps.map((step) => [step.id, step.barriers]), [[report.undoStep, 1]]);
    assert.deepEqual(history.barriers.map((barrier) => [barrier.stepId, barrier.path]), [[report.undoStep, 'a.txt']]);
  });

  // Regression test for a bug fixed after it was found.
  it('the rollback of an interrupted sync is reported to the user', async function () {
    const files: ProjectFiles = {};
    for (let index = 0; index < 40; index += 1) files[`f${index}.txt`] = `v0 ${index}\n`;
    const dir = await agedProject(scope, files);
    await execSh(dir, 'for f in f*.txt; do echo changed > "$f"; done');
    const crashing = createWorkspace(dir, {}, { agentEnv: { CLUD_FAILPOINT: 'kill-after-host-changes:30' } });
    await assert.rejects(crashing.pull(), (error: CludError) => error.code === 'agent-exited');
    const history = await runClud(['history', dir]);
    assertExit(history, 0);
    const logs = await runClud(['logs', dir]);
    assert.match(`${history.stdout}${history.stderr}${logs.stdout}${logs.stderr}`, /rolled back|recover/i, `${describeRun(history)}\n${describeRun(logs)}`);
  });
});
