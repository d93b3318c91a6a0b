// applyChanges on real trees: every change is checked against what the scan saw before its path
// is touched, files are written to a temporary name and renamed into place, and losing versions
// are copied aside first.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { applyChanges, type ApplyOptions, type ApplyOutcome } from '../../src/core/sync/apply';
import type { Entry } from '../../src/core/files/entry';
import type { Change, Side } from '../../src/core/sync/reconcile';
import { scanTree } from '../../src/core/sync/scan';
import { stagingThreads } from '../../src/core/sync/stagingThreads';
import { onSmallDisk } from '../helpers/tempDir';
import { DIR, inodeOf, link, makeTree, modeOf, mtimeOf, readTree, temporaryFiles, useSyncFixture, type SyncFixture } from '../helpers/syncTrees';

/** Half a second is exact in binary, so utimes sets it to the nanosecond and a copy compares exactly. */
const MTIME = 1_600_000_000_500;

async function snapshotOf(root: string): Promise<Map<string, Entry>> {
  return (await scanTree(root, { excludes: [] })).snapshot;
}

/** The entry the scan saw at `key`; fails the test when there is none. */
function entry(snapshot: Map<string, Entry>, key: string): Entry {
  const found = snapshot.get(key);
  assert.ok(found, `the scan saw ${key}`);
  return found;
}

const change = (side: Side, key: string, expected: Entry | undefined, next: Entry | undefined, keepLoser = false): Change => ({ path: key, side, expected, next, ...(keepLoser && { keepLoser }) });

interface Recorded { calls: string[]; options: ApplyOptions }

/** Apply options on the fixture, recording every beforeModify call as "side:path". */
function recordingOptions(fixture: SyncFixture, onCall?: (change: Change, found: Stats | undefined) => void): Recorded {
  const calls: string[] = [];
  const options: ApplyOptions = {
    roots: fixture.roots,
    keepDir: path.join(fixture.stateDir, 'kept'),
    beforeModify: async (planned, found) => {
      calls.push(`${planned.side}:${planned.path}`);
      onCall?.(planned, found);
    },
  };
  return { calls, options };
}

/** `count` small files at the top of `root`, f0.txt, f1.txt, … */
function writeFiles(root: string, count: number): void {
  for (let index = 0; index < count; index += 1) writeFileSync(path.join(root, `f${index}.txt`), `file ${index}\n`);
}

const skippedReasons = (outcome: ApplyOutcome): string[] => outcome.skipped.map(({ change: skipped, reason }) => `${skipped.side}:${skipped.path}: ${reason}`);

/**
 * This thread's time on a CPU so far, in ms, where Linux says it (/proc/thread-self/schedstat,
 * nanoseconds). Measured on the clock, a gap between two turns of the event loop also holds the
 * time the thread waited for a CPU the machine gave others, or slept (strace showed futex waits,
 * most likely V8's collector waiting for its helper threads on a CPU the staging threads share):
 * on the 2-core test machine, gaps of 76-92 ms on the clock held 4-20 ms of the thread on a CPU
 * and 0-11 ms waiting for one, and one gap of 111 ms failed a CI run.
 */
function threadCpuMs(): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1e6;
  } catch {
    return undefined;
  }
}

describe('unit: sync apply', () => {
  const fixture = useSyncFixture('clud-apply-');

  describe('carrying out changes', () => {
    it('a large file that finds the disk full is skipped for that reason, leaves nothing behind, and the next change still goes through', async function () {
      const f = fixture();
      await onSmallDisk(this, f.roots.container, '1m', async () => {
        writeFileSync(path.join(f.roots.host, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
        writeFileSync(path.join(f.roots.host, 'small.txt'), 'small\n');
        const snapshot = await snapshotOf(f.roots.host);
        const outcome = await applyChanges(
          [change('container', 'big.bin', undefined, entry(snapshot, 'big.bin')), change('container', 'small.txt', undefined, entry(snapshot, 'small.txt'))],
          recordingOptions(f).options,
        );
        // Not an error of the copy's own making (EBADF from closing a descriptor twice).
        assert.deepEqual(skippedReasons(outcome), ['container:big.bin: ENOSPC: no space left on device, write']);
        assert.equal(readFileSync(path.join(f.roots.container, 'small.txt'), 'utf8'), 'small\n');
        assert.deepEqual(temporaryFiles(f.roots.container), []);
      });
    });

    it('creates directories, files and links (a link as a link, never followed)', async () => {
      const f = fixture();
      makeTree(f.host, { d: DIR, 'd/f.txt': 'eff', 'd/up': link('../../outside'), empty: DIR });
      const host = await snapshotOf(f.host);
      const { calls, options } = recordingOptions(f);

      const outcome = await applyChanges(
        ['d', 'empty', 'd/f.txt', 'd/up'].map((key) => change('container', key, undefined, entry(host, key))),
        options,
      );

      assert.deepEqual(skippedReasons(outcome), []);
      assert.equal(outcome.applied.length, 4);
      assert.deepEqual(readTree(f.container), { d: DIR, 'd/f.txt': 'eff', 'd/up': link('../../outside'), empty: DIR });
      assert.deepEqual(readTree(f.host), readTree(f.container));
      assert.equal(outcome.bytesCopied, 3);
      // One batch per depth: d and empty (in either order), then what goes inside d.
      assert.deepEqual(calls.slice(0, 2).sort(), ['container:d', 'container:empty']);
      assert.deepEqual(calls.slice(2).sort(), ['container:d/f.txt', 'container:d/up']);
    });

    it('never sets setuid, setgid or sticky bits, and gives what it creates to the side owner', async function () {
      const f = fixture();
      makeTree(f.host, { 'suid.sh': { content: '#!/bin/sh\n', mode: 0o755, mtimeMs: MTIME }, shared: DIR, 'shared/f': 'x', 'ln': link('suid.sh') });
      execFileSync('chmod', ['4755', path.join(f.host, 'suid.sh')]);
      execFileSync('chmod', ['3777', path.join(f.host, 'shared')]);
      const host = await snapshotOf(f.host);
      assert.equal(modeOf(f.host, 'suid.sh'), 0o4755, 'the fixture has the bit');
      // The scan never reads the bits, so no entry carries them.
      const scanned = entry(host, 'suid.sh');
      assert.equal(scanned.kind === 'file' ? scanned.mode : undefined, 0o755);
      const owner = process.getuid?.() === 0 ? { uid: 4321, gid: 4322 } : undefined;
      const { options } = recordingOptions(f);
      // Even an entry that asks for the bits (from an older agreed state) lands without them.
      const suid = { ...entry(host, 'suid.sh'), mode: 0o4755 } as Entry;
      const shared = { ...entry(host, 'shared'), mode: 0o3777 } as Entry;
      const outcome = await applyChanges(
        [change('container', 'suid.sh', undefined, suid), change('container', 'shared', undefined, shared), change('container', 'shared/f', undefined, entry(host, 'shared/f')), change('container', 'ln', undefined, entry(host, 'ln'))],
        { ...options, owners: owner && { container: owner } },
      );
      assert.deepEqual(skippedReasons(outcome), []);
      assert.equal(modeOf(f.container, 'suid.sh'), 0o755);
      assert.equal(modeOf(f.container, 'shared'), 0o777);
      if (!owner) return;
      for (const key of ['suid.sh', 'shared', 'shared/f', 'ln']) {
        const stats = lstatSync(path.join(f.container, key));
        assert.deepEqual({ key, uid: stats.uid, gid: stats.gid }, { key, ...owner });
      }
    });

    it('lands files with the reconciled mode and mtime, and directories with their mode', async () => {
      const f = fixture();
      makeTree(f.host, { 'run.sh': { content: '#!/bin/sh\n', mode: 0o750, mtimeMs: MTIME }, private: DIR, 'data.txt': { content: 'new', mode: 0o604, mtimeMs: MTIME + 5_000 } });
      makeTree(f.container, { 'data.txt': { content: 'old', mode: 0o666, mtimeMs: MTIME - 60_000 } });
      execFileSync('chmod', ['0700', path.join(f.host, 'private')]);
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];

      const outcome = await applyChanges(
        [
          change('container', 'data.txt', entry(container, 'data.txt'), entry(host, 'data.txt')),
          change('container', 'private', undefined, entry(host, 'private')),
          change('container', 'run.sh', undefined, entry(host, 'run.sh')),
        ],
        recordingOptions(f).options,
      );

      assert.deepEqual(skippedReasons(outcome), []);
      assert.deepEqual(readTree(f.container), { 'data.txt': 'new', private: DIR, 'run.sh': '#!/bin/sh\n' });
      assert.equal(modeOf(f.container, 'run.sh'), 0o750);
      assert.equal(mtimeOf(f.container, 'run.sh'), MTIME);
      assert.equal(mtimeOf(f.container, 'run.sh'), (entry(host, 'run.sh') as { mtimeMs: number }).mtimeMs);
      assert.equal(modeOf(f.container, 'data.txt'), 0o604);
      assert.equal(mtimeOf(f.container, 'data.txt'), MTIME + 5_000);
      assert.equal(modeOf(f.container, 'private'), 0o700);
    });

    it('lets the event loop run while it copies a batch of small files (which it does with synchronous calls)', async () => {
      const f = fixture();
      const files = 3000;
      writeFiles(f.host, files);
      const host = await snapshotOf(f.host);
      // Every turn of the event loop, the time since the last one: the time this thread ran on a
      // CPU where Linux says it (see threadCpuMs), else the time on the clock.
      let longestGap = { ms: 0, clockMs: 0 };
      let last = { clock: performance.now(), cpu: threadCpuMs() };
      let ticking = true;
      const tick = () => {
        const now = { clock: performance.now(), cpu: threadCpuMs() };
        const clockMs = now.clock - last.clock;
        const ms = now.cpu !== undefined && last.cpu !== undefined ? now.cpu - last.cpu : clockMs;
        if (ms > longestGap.ms) longestGap = { ms, clockMs };
        last = now;
        if (ticking) setImmediate(tick);
      };
      const started = performance.now();
      setImmediate(tick);
      const outcome = await applyChanges([...host.keys()].map((key) => change('container', key, undefined, entry(host, key))), { roots: f.roots, keepDir: path.join(f.stateDir, 'kept') });
      const tookMs = performance.now() - started;
      ticking = false;
      tick();

      assert.equal(outcome.applied.length, files);
      // The apply yields every 20 ms; one file's calls and a collection fit in the rest.
      assert.ok(longestGap.ms < 100, `the apply ran ${Math.round(longestGap.ms)} ms at once (${Math.round(longestGap.clockMs)} ms on the clock), in an apply of ${Math.round(tookMs)} ms`);
    });

    it('replaces a file by rename: the inode changes and a reader holding the old file still reads the old content', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'new content' });
      makeTree(f.container, { 'a.txt': 'old content' });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
      const inodeBefore = inodeOf(f.container, 'a.txt');
      const reader = openSync(path.join(f.container, 'a.txt'), 'r');
      try {
        const outcome = await applyChanges([change('container', 'a.txt', entry(container, 'a.txt'), entry(host, 'a.txt'))], recordingOptions(f).options);

        assert.equal(outcome.applied.length, 1);
        assert.notEqual(inodeOf(f.container, 'a.txt'), inodeBefore);
        assert.equal(readFileSync(path.join(f.container, 'a.txt'), 'utf8'), 'new content');
        const buffer = Buffer.alloc(64);
        assert.equal(buffer.toString('utf8', 0, readSync(reader, buffer, 0, 64, 0)), 'old content');
      } finally {
        closeSync(reader);
      }
    });

    it('deletes files, links and emptied directories, deepest first', async () => {
      const f = fixture();
      makeTree(f.container, { d: DIR, 'd/e': DIR, 'd/e/f.txt': 'x', 'd/l': link('e'), keep: 'stays' });
      const container = await snapshotOf(f.container);

      const outcome = await applyChanges(
        ['d/e/f.txt', 'd/l', 'd/e', 'd'].map((key) => change('container', key, entry(container, key), undefined)),
        recordingOptions(f).options,
      );

      assert.deepEqual(skippedReasons(outcome), []);
      assert.deepEqual(readTree(f.container), { keep: 'stays' });
    });
  });

  describe('checking the target against the scan', () => {
    interface TargetCase {
      reason: RegExp;
      before: Parameters<typeof makeTree>[1];
      /** What happens to the container after its scan. */
      meddle: (root: string) => void;
      /** The change to the container, from the scan's entry at "t" (undefined when there was none). */
      planned: (expected: Entry | undefined, hostNext: Entry) => Change;
    }
    const cases: Record<string, TargetCase> = {
      'a file modified since the scan (update)': {
        reason: /modified since the scan/,
        before: { t: 'scanned' },
        meddle: (root) => writeFileSync(path.join(root, 't'), 'edited after the scan'),
        planned: (expected, next) => change('container', 't', expected, next),
      },
      'a file modified since the scan, same size (delete)': {
        reason: /modified since the scan/,
        before: { t: { content: 'scanned', mtimeMs: MTIME } },
        meddle: (root) => writeFileSync(path.join(root, 't'), 'SCANNED'),
        planned: (expected) => change('container', 't', expected, undefined),
      },
      'a file created since the scan': {
        reason: /created since the scan/,
        before: {},
        meddle: (root) => writeFileSync(path.join(root, 't'), 'created after the scan'),
        planned: (_expected, next) => change('container', 't', undefined, next),
      },
      'a file deleted since the scan': {
        reason: /deleted since the scan/,
        before: { t: 'scanned' },
        meddle: (root) => unlinkSync(path.join(root, 't')),
        planned: (expected, next) => change('container', 't', expected, next),
      },
      'a file that became a directory since the scan': {
        reason: /type changed since the scan/,
        before: { t: 'scanned' },
        meddle: (root) => {
          unlinkSync(path.join(root, 't'));
          makeTree(root, { 't/inside.txt': 'new' });
        },
        planned: (expected, next) => change('container', 't', expected, next),
      },
      'a symlink retargeted since the scan': {
        reason: /link retargeted since the scan/,
        before: { t: link('first') },
        meddle: (root) => {
          unlinkSync(path.join(root, 't'));
          symlinkSync('second', path.join(root, 't'));
        },
        planned: (expected) => change('container', 't', expected, undefined),
      },
    };

    for (const [name, { reason, before, meddle, planned }] of Object.entries(cases)) {
      it(`skips ${name} and leaves it untouched`, async () => {
        const f = fixture();
        makeTree(f.host, { t: 'host version' });
        makeTree(f.container, before);
        const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
        meddle(f.container);
        const afterMeddling = readTree(f.container);
        const { calls, options } = recordingOptions(f);

        const outcome = await applyChanges([planned(container.get('t'), entry(host, 't'))], options);

        assert.equal(outcome.applied.length, 0);
        assert.equal(outcome.skipped.length, 1);
        assert.match(outcome.skipped[0]!.reason, reason);
        assert.deepEqual(readTree(f.container), afterMeddling);
        assert.deepEqual(calls, [], 'beforeModify is not called for a skipped change');
        assert.deepEqual(outcome.kept, []);
        assert.deepEqual(temporaryFiles(f.container), []);
      });
    }

    it('goes on with the other changes after a skipped one', async () => {
      const f = fixture();
      makeTree(f.host, { a: 'host a', b: 'host b' });
      makeTree(f.container, { a: 'container a', b: 'container b' });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
      writeFileSync(path.join(f.container, 'a'), 'edited');

      const outcome = await applyChanges(['a', 'b'].map((key) => change('container', key, entry(container, key), entry(host, key))), recordingOptions(f).options);

      assert.deepEqual(outcome.skipped.map((skipped) => skipped.change.path), ['a']);
      assert.deepEqual(outcome.applied.map((applied) => applied.path), ['b']);
      assert.deepEqual(readTree(f.container), { a: 'edited', b: 'host b' });
    });

    it('skips a change below a parent replaced by a symlink since the scan, writing and deleting nothing outside the root', async () => {
      const f = fixture();
      makeTree(f.host, { d: DIR, 'd/new.txt': 'new' });
      makeTree(f.container, { d: DIR, 'd/old.txt': { content: 'old', mtimeMs: MTIME } });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
      // The same old.txt, metadata included, behind a link where the directory was.
      const outside = path.join(f.base, 'outside');
      makeTree(outside, { 'old.txt': { content: 'old', mtimeMs: MTIME } });
      renameSync(path.join(f.container, 'd'), path.join(f.container, 'd-moved'));
      symlinkSync(outside, path.join(f.container, 'd'));
      const { calls, options } = recordingOptions(f);

      const outcome = await applyChanges(
        [change('container', 'd/old.txt', entry(container, 'd/old.txt'), undefined), change('container', 'd/new.txt', undefined, entry(host, 'd/new.txt'))],
        options,
      );

      assert.equal(outcome.applied.length, 0);
      assert.deepEqual(outcome.skipped.map(({ reason }) => reason), ['parent d is no longer a folder', 'parent d is no longer a folder']);
      assert.deepEqual(readTree(outside), { 'old.txt': 'old' });
      assert.deepEqual(readTree(f.container), { d: link(outside), 'd-moved': DIR, 'd-moved/old.txt': 'old' });
      assert.deepEqual(calls, []);
    });

    it('skips deleting a directory that is no longer empty, and keeps what appeared in it', async () => {
      const f = fixture();
      makeTree(f.container, { d: DIR });
      const container = await snapshotOf(f.container);
      makeTree(f.container, { 'd/new.txt': 'written after the scan' });

      const outcome = await applyChanges([change('container', 'd', entry(container, 'd'), undefined)], recordingOptions(f).options);

      assert.equal(outcome.applied.length, 0);
      assert.equal(outcome.skipped.length, 1);
      assert.deepEqual(readTree(f.container), { d: DIR, 'd/new.txt': 'written after the scan' });
    });
  });

  describe('a burst of small files, staged on the staging threads', () => {
    afterEach(() => stagingThreads.stop());

    it('stages a few files on its own thread, and a burst on the threads, each landing with its content, mode, mtime and owner', async () => {
      const f = fixture();
      await stagingThreads.stop();
      const owner = process.getuid?.() === 0 ? { uid: 4321, gid: 4322 } : undefined;
      const files = 300;
      for (let index = 0; index < files; index += 1) makeTree(f.host, { [`f${index}.sh`]: { content: `#!/bin/sh\necho ${index}\n`, mode: index % 2 ? 0o750 : 0o640, mtimeMs: MTIME + index * 1000 } });
      const host = await snapshotOf(f.host);
      const changes = [...host.keys()].map((key) => change('container', key, undefined, entry(host, key)));

      const few = await applyChanges(changes.slice(0, 3), { ...recordingOptions(f).options, owners: owner && { container: owner } });
      assert.equal(few.applied.length, 3);
      assert.equal(stagingThreads.running, 0, 'three files start no thread');
      const burst = await applyChanges(changes.slice(3), { ...recordingOptions(f).options, owners: owner && { container: owner } });

      assert.deepEqual(skippedReasons(burst), []);
      assert.ok(stagingThreads.running > 0, 'the burst was staged on the threads');
      assert.deepEqual(readTree(f.container), readTree(f.host));
      assert.deepEqual(temporaryFiles(f.container), []);
      for (let index = 0; index < files; index += 1) {
        const key = `f${index}.sh`;
        const stats = lstatSync(path.join(f.container, key));
        assert.deepEqual({ key, mode: stats.mode & 0o7777, mtimeMs: stats.mtimeMs }, { key, mode: index % 2 ? 0o750 : 0o640, mtimeMs: MTIME + index * 1000 });
        if (owner) assert.deepEqual({ key, uid: stats.uid, gid: stats.gid }, { key, ...owner });
      }
      assert.equal(burst.bytesCopied, changes.slice(3).reduce((sum, { next }) => sum + (next?.kind === 'file' ? next.size : 0), 0));
    });

    it('starts the threads when told a burst is coming, and the burst is staged on those', async () => {
      const f = fixture();
      await stagingThreads.stop();
      stagingThreads.warm();
      const warmed = stagingThreads.running;
      assert.ok(warmed > 0, 'warm() started the threads');
      writeFiles(f.host, 200);
      const host = await snapshotOf(f.host);
      const burst = await applyChanges([...host.keys()].map((key) => change('container', key, undefined, entry(host, key))), recordingOptions(f).options);
      assert.deepEqual(skippedReasons(burst), []);
      assert.equal(stagingThreads.running, warmed, 'no other thread started');
      assert.deepEqual(readTree(f.container), readTree(f.host));
    });

    it('skips a source changed since the scan and a target created meanwhile, carrying the rest of the burst', async () => {
      const f = fixture();
      writeFiles(f.host, 200);
      const host = await snapshotOf(f.host);
      writeFileSync(path.join(f.host, 'f7.txt'), 'edited after the scan\n');
      writeFileSync(path.join(f.container, 'f9.txt'), 'written in the container meanwhile\n');

      const outcome = await applyChanges([...host.keys()].map((key) => change('container', key, undefined, entry(host, key))), recordingOptions(f).options);

      assert.ok(stagingThreads.running > 0, 'the burst was staged on the threads');
      assert.deepEqual(skippedReasons(outcome).sort(), ['container:f7.txt: source changed since the scan', 'container:f9.txt: created since the scan']);
      assert.equal(outcome.applied.length, 198);
      assert.equal(readFileSync(path.join(f.container, 'f9.txt'), 'utf8'), 'written in the container meanwhile\n');
      assert.equal(lstatSync(path.join(f.container, 'f7.txt'), { throwIfNoEntry: false }), undefined);
      assert.equal(readFileSync(path.join(f.container, 'f100.txt'), 'utf8'), 'file 100\n');
      assert.deepEqual(temporaryFiles(f.container), []);
    });

    it('keeps a process alive while its threads stage, and lets it exit as soon as the apply is done', async function () {
      this.timeout(60_000);
      const f = fixture();
      writeFiles(f.host, 200);
      // A process with nothing but the apply to wait for: the threads are all that is pending at times.
      const script = path.join(f.base, 'apply-burst.ts');
      writeFileSync(
        script,
        [
          `import { applyChanges } from ${JSON.stringify(path.resolve(__dirname, '../../src/core/sync/apply'))};`,
          `import { scanTree } from ${JSON.stringify(path.resolve(__dirname, '../../src/core/sync/scan'))};`,
          `const roots = ${JSON.stringify(f.roots)};`,
          'void scanTree(roots.host, { excludes: [] }).then(async ({ snapshot }) => {',
          "  const outcome = await applyChanges([...snapshot].map(([key, next]) => ({ path: key, side: 'container' as const, expected: undefined, next })), { roots, keepDir: roots.host + '-kept' });",
          "  console.log(`applied ${outcome.applied.length}`);",
          '});',
        ].join('\n'),
      );
      const started = performance.now();
      const output = execFileSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
      const tookMs = performance.now() - started;

      assert.equal(output.trim(), 'applied 200');
      assert.deepEqual(readTree(f.container), readTree(f.host));
      // The threads end 5 s after their last batch; the process must not wait for that.
      assert.ok(tookMs < 5000, `the process took ${Math.round(tookMs)} ms to exit`);
    });

    it("passes a thread's failure on with its errno code, and leaves no staged file", async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'a' });
      const hash = (entry(await snapshotOf(f.host), 'a.txt') as { hash: string }).hash;
      const staged = Buffer.from(path.join(f.container, 'missing-folder', '.clud-sync-0.tmp'));

      await assert.rejects(stagingThreads.stage({ source: Buffer.from(path.join(f.host, 'a.txt')), staged, size: 1, hash, mode: 0o644, mtimeMs: MTIME }), { code: 'ENOENT' });
      assert.equal(await stagingThreads.stage({ source: Buffer.from(path.join(f.host, 'gone.txt')), staged, size: 1, hash, mode: 0o644, mtimeMs: MTIME }), 'source-changed');
      assert.deepEqual(temporaryFiles(f.container), []);
    });
  });

  describe('checking the source', () => {
    const sourceCases: Record<string, (root: string) => void> = {
      'changed since the scan (same size, hash mismatch)': (root) => writeFileSync(path.join(root, 'a.txt'), 'HOST'),
      'changed since the scan (other size)': (root) => writeFileSync(path.join(root, 'a.txt'), 'a much longer host version'),
      'deleted since the scan': (root) => rmSync(path.join(root, 'a.txt')),
    };
    for (const [name, meddle] of Object.entries(sourceCases)) {
      it(`skips a source ${name}, leaves the target as it was and no temporary file`, async () => {
        const f = fixture();
        makeTree(f.host, { 'a.txt': 'host' });
        makeTree(f.container, { 'a.txt': 'container' });
        const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
        meddle(f.host);
        const { calls, options } = recordingOptions(f);

        const outcome = await applyChanges([change('container', 'a.txt', entry(container, 'a.txt'), entry(host, 'a.txt'), true)], options);

        assert.deepEqual(skippedReasons(outcome), ['container:a.txt: source changed since the scan']);
        assert.deepEqual(readTree(f.container), { 'a.txt': 'container' });
        assert.deepEqual(temporaryFiles(f.container), []);
        // The source is only read after beforeModify (staging writes next to the target), so the
        // hook saw this change once even though it was then skipped.
        assert.deepEqual(calls, ['container:a.txt']);
        assert.deepEqual(outcome.kept, [], 'nothing is kept for a change that was not made');
        assert.equal(outcome.bytesCopied, 0);
      });
    }

    it('copies from the given source tree instead of the other side', async () => {
      const f = fixture();
      const backup = path.join(f.base, 'backup');
      makeTree(backup, { container: DIR, 'container/a.txt': 'from the backup' });
      makeTree(f.host, { 'a.txt': 'host' });
      const source = await snapshotOf(path.join(backup, 'container'));

      const outcome = await applyChanges([change('container', 'a.txt', undefined, entry(source, 'a.txt'))], {
        ...recordingOptions(f).options,
        sources: { host: path.join(backup, 'host'), container: path.join(backup, 'container') },
      });

      assert.equal(outcome.applied.length, 1);
      assert.deepEqual(readTree(f.container), { 'a.txt': 'from the backup' });
    });

    // Regression test for a bug fixed after it was found.
    it('skips a source replaced by a FIFO since the scan instead of blocking on it', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'host' });
      const host = await snapshotOf(f.host);
      const fifo = path.join(f.host, 'a.txt');
      unlinkSync(fifo);
      execFileSync('mkfifo', [fifo]);

      const applying = applyChanges([change('container', 'a.txt', undefined, entry(host, 'a.txt'))], recordingOptions(f).options);
      const timedOut = Symbol('timed out');
      const winner = await Promise.race([applying, new Promise((resolve) => setTimeout(() => resolve(timedOut), 1000))]);
      if (winner === timedOut) {
        // Open the write end once, so the blocked reader gets end-of-file and its thread is freed.
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        await applying;
        assert.fail('applyChanges blocked on a FIFO source');
      }
      const outcome = winner as ApplyOutcome;
      assert.deepEqual(skippedReasons(outcome), ['container:a.txt: source changed since the scan']);
      assert.deepEqual(readTree(f.container), {});
    });
  });

  describe('keeping the losing version', () => {
    it('copies an overwritten file (content, mode, mtime) to <keepDir>/<side>/<path> first', async () => {
      const f = fixture();
      makeTree(f.host, { 'd/a.txt': 'host version' });
      makeTree(f.container, { 'd/a.txt': { content: 'container version', mode: 0o640, mtimeMs: MTIME } });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
      const { options } = recordingOptions(f);

      const outcome = await applyChanges([change('container', 'd/a.txt', entry(container, 'd/a.txt'), entry(host, 'd/a.txt'), true)], options);

      const kept = path.join(options.keepDir, 'container');
      assert.deepEqual(outcome.kept, [{ path: 'd/a.txt', side: 'container', keptAt: path.join(kept, 'd/a.txt') }]);
      assert.deepEqual(readTree(kept), { d: DIR, 'd/a.txt': 'container version' });
      assert.equal(modeOf(kept, 'd/a.txt'), 0o640);
      assert.equal(mtimeOf(kept, 'd/a.txt'), MTIME);
      assert.deepEqual(readTree(f.container), { d: DIR, 'd/a.txt': 'host version' });
    });

    it('copies a deleted file aside, and a replaced link as a link with its target', async () => {
      const f = fixture();
      makeTree(f.host, { l: 'now a file' });
      makeTree(f.container, { gone: DIR, 'gone/f.txt': 'deleted content', l: link('../somewhere') });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
      const { options } = recordingOptions(f);

      const outcome = await applyChanges(
        [
          change('container', 'gone/f.txt', entry(container, 'gone/f.txt'), undefined, true),
          change('container', 'gone', entry(container, 'gone'), undefined, true),
          change('container', 'l', entry(container, 'l'), entry(host, 'l'), true),
        ],
        options,
      );

      assert.deepEqual(skippedReasons(outcome), []);
      assert.deepEqual(outcome.kept.map((kept) => kept.path), ['gone/f.txt', 'l'], 'a directory has nothing to keep');
      assert.deepEqual(readTree(path.join(options.keepDir, 'container')), { gone: DIR, 'gone/f.txt': 'deleted content', l: link('../somewhere') });
      assert.deepEqual(readTree(f.container), { l: 'now a file' });
    });

    it('keeps nothing without keepLoser', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'host' });
      makeTree(f.container, { 'a.txt': 'container', 'b.txt': 'b' });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
      const { options } = recordingOptions(f);

      const outcome = await applyChanges([change('container', 'a.txt', entry(container, 'a.txt'), entry(host, 'a.txt')), change('container', 'b.txt', entry(container, 'b.txt'), undefined)], options);

      assert.equal(outcome.applied.length, 2);
      assert.deepEqual(outcome.kept, []);
      assert.deepEqual(readTree(f.base).state, undefined, 'the keep folder is not even created');
    });
  });

  describe('beforeModify', () => {
    it('is called once per touched path, before anything changes there, and not for skipped changes', async () => {
      const f = fixture();
      makeTree(f.host, { updated: 'new', 'sub/created': 'c' });
      makeTree(f.container, { updated: 'old', deleted: 'd', skipped: 'scanned', sub: DIR });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
      writeFileSync(path.join(f.container, 'skipped'), 'edited after the scan');
      const seen: Record<string, string | undefined> = {};
      const temporaries: string[] = [];
      const given: Record<string, Change> = {};
      const found: Record<string, string> = {};
      const { calls, options } = recordingOptions(f, (planned, stats) => {
        seen[planned.path] = readTree(f.container)[planned.path];
        temporaries.push(...temporaryFiles(f.container));
        given[planned.path] = planned;
        const now = lstatSync(path.join(f.container, planned.path), { throwIfNoEntry: false });
        found[planned.path] = stats === undefined ? 'nothing' : stats.ino === now?.ino && stats.mtimeMs === now.mtimeMs && stats.size === now.size ? 'what is there' : 'something else';
      });
      // Three batches (deletions, then writes at depth 1, then at depth 2), so no other change is
      // staging while a hook runs.
      const changes = [
        change('container', 'deleted', entry(container, 'deleted'), undefined),
        change('container', 'skipped', entry(container, 'skipped'), undefined),
        change('container', 'updated', entry(container, 'updated'), entry(host, 'updated')),
        change('container', 'sub/created', undefined, entry(host, 'sub/created')),
      ];

      const outcome = await applyChanges(changes, options);

      assert.deepEqual(calls, ['container:deleted', 'container:updated', 'container:sub/created']);
      assert.deepEqual(seen, { deleted: 'd', updated: 'old', 'sub/created': undefined }, 'each path was still as scanned when the hook ran');
      assert.deepEqual(temporaries, [], 'the hook ran before anything was staged');
      assert.deepEqual(given, { deleted: changes[0], updated: changes[2], 'sub/created': changes[3] }, 'the hook gets the change itself');
      assert.deepEqual(found, { deleted: 'what is there', updated: 'what is there', 'sub/created': 'nothing' }, 'and what the apply found at the path');
      assert.deepEqual(outcome.skipped.map(({ change: skipped }) => skipped.path), ['skipped']);
      assert.deepEqual(readTree(f.container), { skipped: 'edited after the scan', sub: DIR, 'sub/created': 'c', updated: 'new' });
    });

    it('a change whose saved version (what the hook reports) is not the one the scan saw is skipped, with its code', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'host' });
      makeTree(f.container, { 'a.txt': 'container' });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];

      const outcome = await applyChanges([change('container', 'a.txt', entry(container, 'a.txt'), entry(host, 'a.txt'))], {
        roots: f.roots,
        keepDir: path.join(f.stateDir, 'kept'),
        // As the undo step reports a capture that read other content than the scan (a same-tick rewrite).
        beforeModify: async () => ({ kind: 'file', hash: '0'.repeat(64) }),
      });

      assert.deepEqual(outcome.skipped.map(({ code, reason }) => `${code}: ${reason}`), ['changed-since-scan: modified since the scan']);
      assert.deepEqual(readTree(f.container), { 'a.txt': 'container' });
      assert.deepEqual(temporaryFiles(f.container), []);
    });

    it('a hook that throws skips the change and leaves the path as it was', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'host' });
      makeTree(f.container, { 'a.txt': 'container' });
      const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];

      const outcome = await applyChanges([change('container', 'a.txt', entry(container, 'a.txt'), entry(host, 'a.txt'), true)], {
        roots: f.roots,
        keepDir: path.join(f.stateDir, 'kept'),
        beforeModify: async () => {
          throw new Error('undo log is full');
        },
      });

      assert.deepEqual(skippedReasons(outcome), ['container:a.txt: undo log is full']);
      assert.deepEqual(readTree(f.container), { 'a.txt': 'container' });
      assert.deepEqual(temporaryFiles(f.container), []);
      mkdirSync(f.stateDir, { recursive: true });
      assert.deepEqual(readTree(f.stateDir), {}, 'nothing kept for a change that was not made');
    });
  });
});
