// Whole sync cycles between two real folders and a state folder: scan, reconcile, apply, record.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lchownSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SyncReport } from '../../src/core/protocol';
import { describeReport } from '../../src/core/sync/summary';
import { runSyncCycle, SyncCancelled, withStateStore, type SyncCycleOptions } from '../../src/core/sync/engine';
import { BASE_FILE, JOURNAL_FILE } from '../../src/core/sync/stateStore';
import { HISTORY_FILE, SyncStateFiles } from '../../src/core/sync/stateFiles';
import { UndoLog } from '../../src/core/undo';
import type { Policy } from '../../src/core/sync/reconcile';
import { DIR, at, inodeOf, link, makeTree, modeOf, readTree, temporaryFiles, useSyncFixture, type SyncFixture, type TreeSpec, pastTimestampTick } from '../helpers/syncTrees';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** Exact in binary: see FileSpec.mtimeMs. */
const MTIME = 1_600_000_000_500;

const sync = (f: SyncFixture, policy: Policy = 'two-way-safe', extra: Partial<SyncCycleOptions> = {}): Promise<SyncReport> =>
  runSyncCycle({ roots: f.roots, stateDir: f.stateDir, policy, excludes: [], ...extra });

/** Both sides get `spec` through a first sync; the test starts from an agreed state. */
async function agreedOn(f: SyncFixture, spec: TreeSpec): Promise<void> {
  makeTree(f.host, spec);
  const report = await sync(f);
  assert.equal(report.halted, undefined);
  assert.deepEqual(report.conflicts, []);
  assert.deepEqual(readTree(f.container), readTree(f.host), 'the first sync made both sides equal');
}

const keptTree = (f: SyncFixture, report: SyncReport): Record<string, string> => {
  const directory = path.join(f.stateDir, 'kept', report.id);
  return existsSync(directory) ? readTree(directory) : {};
};

const agreedKeys = (f: SyncFixture): Promise<string[]> => withStateStore(f.stateDir, async (store) => [...store.ancestor.keys()]);

const actions = (report: SyncReport): string[] => report.applied.map((change) => `${change.action} ${change.side}:${change.path}`);

describe('unit: sync engine', () => {
  const fixture = useSyncFixture('clud-engine-');

  describe('two-way sync', () => {
    it('merges both sides on a first sync, then a second cycle applies nothing and a third hashes nothing', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'a', 'd/b.txt': 'b' });
      makeTree(f.container, { 'c.txt': 'c', 'd/e': DIR });

      const first = await sync(f);
      const expected = { 'a.txt': 'a', 'c.txt': 'c', d: DIR, 'd/b.txt': 'b', 'd/e': DIR };
      assert.deepEqual(readTree(f.host), expected);
      assert.deepEqual(readTree(f.container), expected);
      assert.deepEqual(actions(first), ['create container:a.txt', 'create host:c.txt', 'create container:d/b.txt', 'create host:d/e']);
      assert.equal(first.appliedCount, 4);
      assert.doesNotThrow(() => SyncReport.parse(first), 'the report matches the protocol schema');

      await pastTimestampTick();
      const second = await sync(f);
      assert.deepEqual({ applied: second.applied, appliedCount: second.appliedCount, skipped: second.skipped, conflicts: second.conflicts, kept: second.kept, bytesCopied: second.bytesCopied }, { applied: [], appliedCount: 0, skipped: [], conflicts: [], kept: [], bytesCopied: 0 });
      assert.deepEqual(readTree(f.host), expected);
      assert.deepEqual(readTree(f.container), expected);
      assert.equal((await sync(f)).scanned.hashedFiles, 0, 'unchanged files are not read again');
    });

    it('carries edits, creations and deletions from either side to the other', async () => {
      const f = fixture();
      await agreedOn(f, { 'edit-on-host.txt': 'v1', 'edit-in-container.txt': 'v1', 'delete-on-host.txt': 'x', 'old-dir/x.txt': 'x' });
      makeTree(f.host, { 'edit-on-host.txt': 'v2 host', 'new-on-host.txt': 'n' });
      rmSync(path.join(f.host, 'delete-on-host.txt'));
      makeTree(f.container, { 'edit-in-container.txt': 'v2 container' });
      rmSync(path.join(f.container, 'old-dir'), { recursive: true });

      const report = await sync(f);

      const expected = { 'edit-in-container.txt': 'v2 container', 'edit-on-host.txt': 'v2 host', 'new-on-host.txt': 'n' };
      assert.deepEqual(readTree(f.host), expected);
      assert.deepEqual(readTree(f.container), expected);
      assert.deepEqual(report.kept, [], 'only synced content was replaced or deleted');
      assert.deepEqual(report.conflicts, []);
    });

    it('keeps symlinks as links with relative and absolute targets, never following them, and reports one pointing outside', async () => {
      const f = fixture();
      const outside = path.join(f.base, 'outside');
      makeTree(outside, { 'secret.txt': 'outside the folder' });
      makeTree(f.host, {
        'real/f.txt': 'f',
        rel: link('real/f.txt'),
        dirlink: link('real'),
        dangling: link('does/not/exist'),
        abs: link(outside),
        up: link('../outside/secret.txt'),
      });

      const report = await sync(f);

      const expected = { abs: link(outside), dangling: link('does/not/exist'), dirlink: link('real'), real: DIR, 'real/f.txt': 'f', rel: link('real/f.txt'), up: link('../outside/secret.txt') };
      assert.deepEqual(readTree(f.container), expected);
      assert.deepEqual(readTree(f.host), expected);
      assert.deepEqual(readTree(outside), { 'secret.txt': 'outside the folder' }, 'nothing was written through a link');
      const outsideProblems = report.problems.filter((problem) => /outside/.test(problem.reason)).map((problem) => `${problem.side}:${problem.path}`);
      assert.deepEqual(outsideProblems.sort(), ['host:abs', 'host:up']);

      // A retargeted link is an edit like any other.
      rmSync(path.join(f.container, 'rel'));
      makeTree(f.container, { rel: link('real') });
      await sync(f);
      assert.equal(readTree(f.host).rel, link('real'));
    });

    it('never writes into the host a link made in the container that may lead outside the folder, and loses nothing for it', async () => {
      const f = fixture();
      await agreedOn(f, { 'notes.txt': 'the user\'s', 'real/f.txt': 'f', 'mine': link('/etc') });
      // A new link, a file replaced by a link, the user's own outside link retargeted, and one that
      // escapes only through another link (`self -> .` makes `self/..` the folder above the root).
      makeTree(f.container, { 'ssh': link('/root/.ssh'), 'self': link('.'), 'sneaky': link('self/../outside'), 'inside': link('real/f.txt') });
      rmSync(path.join(f.container, 'notes.txt'));
      makeTree(f.container, { 'notes.txt': link('../../home') });
      rmSync(path.join(f.container, 'mine'));
      makeTree(f.container, { 'mine': link('/var') });

      for (const round of ['first', 'second']) {
        const report = await sync(f);
        const host = readTree(f.host);
        assert.deepEqual(host, { 'notes.txt': 'the user\'s', 'real': DIR, 'real/f.txt': 'f', 'mine': link('/etc'), 'self': link('.'), 'inside': link('real/f.txt') }, `${round} cycle: only the links that stay inside reached the host`);
        const refused = report.problems.filter((problem) => problem.reason.endsWith('not written into your folder')).map((problem) => `${problem.side}:${problem.path}`);
        assert.deepEqual(refused.sort(), ['container:mine', 'container:notes.txt', 'container:sneaky', 'container:ssh'], `${round} cycle: each refused link is reported`);
        assert.deepEqual(report.conflicts, []);
      }
      assert.equal(readTree(f.container)['notes.txt'], link('../../home'), 'the container keeps its version');
      assert.ok(!(await agreedKeys(f)).includes('ssh'), 'a refused link is not agreed on');
    });

    it('propagates the executable bit, both ways', async () => {
      const f = fixture();
      await agreedOn(f, { 'run.sh': { content: '#!/bin/sh\n', mode: 0o644 } });
      chmodSync(path.join(f.container, 'run.sh'), 0o755);

      const report = await sync(f);
      assert.deepEqual(actions(report), ['update host:run.sh']);
      assert.equal(modeOf(f.host, 'run.sh'), 0o755);

      chmodSync(path.join(f.host, 'run.sh'), 0o644);
      await sync(f);
      assert.equal(modeOf(f.container, 'run.sh'), 0o644);
    });

    it('propagates empty directories and their deletion', async () => {
      const f = fixture();
      makeTree(f.host, { empty: DIR, 'nested/deeper/deepest': DIR });
      await sync(f);
      assert.deepEqual(readTree(f.container), { empty: DIR, nested: DIR, 'nested/deeper': DIR, 'nested/deeper/deepest': DIR });

      rmSync(path.join(f.container, 'nested'), { recursive: true });
      await sync(f);
      assert.deepEqual(readTree(f.host), { empty: DIR });
    });

    it('replaces a file by a directory, and the directory by a file again', async () => {
      const f = fixture();
      await agreedOn(f, { x: 'a file' });
      rmSync(path.join(f.host, 'x'));
      makeTree(f.host, { 'x/inner.txt': 'inside' });

      const toDirectory = await sync(f);
      assert.deepEqual(readTree(f.container), { x: DIR, 'x/inner.txt': 'inside' });
      assert.deepEqual(toDirectory.kept, []);

      rmSync(path.join(f.container, 'x'), { recursive: true });
      makeTree(f.container, { x: 'a file again' });
      await sync(f);
      assert.deepEqual(readTree(f.host), { x: 'a file again' });
      assert.deepEqual(readTree(f.container), { x: 'a file again' });
    });

    it('carries a case-only rename (Readme.md → README.md)', async () => {
      const f = fixture();
      await agreedOn(f, { 'Readme.md': '# hello' });
      renameSync(path.join(f.host, 'Readme.md'), path.join(f.host, 'README.md'));

      const report = await sync(f);

      assert.deepEqual(readTree(f.container), { 'README.md': '# hello' });
      assert.deepEqual(actions(report), ['delete container:Readme.md', 'create container:README.md']);
    });

    it('synchronizes names with spaces, a newline and bytes that are not UTF-8', async () => {
      const f = fixture();
      // "\udce9" and "\udcff" stand for the raw bytes 0xE9 and 0xFF (see pathCodec).
      const spec = { 'with space.txt': 'space', 'new\nline.txt': 'newline', 'caf\udce9.txt': 'latin-1', 'dir \udcff': DIR, 'dir \udcff/inner': 'inner' };
      makeTree(f.host, spec);

      await sync(f);

      assert.deepEqual(readTree(f.container), readTree(f.host));
      assert.deepEqual(Object.keys(readTree(f.container)).sort(), Object.keys(spec).sort());
      const rawNames = readdirSync(Buffer.from(f.container), { encoding: 'buffer' });
      assert.ok(rawNames.some((name) => name.equals(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]))), 'the byte 0xE9 reached the disk as is');

      // The agreed state kept the names: a deletion of each is carried, not undone.
      for (const key of ['caf\udce9.txt', 'new\nline.txt']) rmSync(at(f.container, key));
      await sync(f);
      assert.deepEqual(Object.keys(readTree(f.host)).sort(), ['dir \udcff', 'dir \udcff/inner', 'with space.txt']);
    });

    it('leaves a file edited on both sides as a conflict: both versions untouched, reported, nothing kept', async () => {
      const f = fixture();
      await agreedOn(f, { 'shared.txt': 'v1', 'other.txt': 'o' });
      makeTree(f.host, { 'shared.txt': 'host edit', 'other.txt': 'o2' });
      makeTree(f.container, { 'shared.txt': 'container edit' });

      const report = await sync(f);

      assert.deepEqual(report.conflicts.map((conflict) => conflict.path), ['shared.txt']);
      assert.deepEqual([report.conflicts[0]!.ancestor?.kind, report.conflicts[0]!.host?.kind, report.conflicts[0]!.container?.kind], ['file', 'file', 'file']);
      assert.deepEqual(readTree(f.host), { 'other.txt': 'o2', 'shared.txt': 'host edit' });
      assert.deepEqual(readTree(f.container), { 'other.txt': 'o2', 'shared.txt': 'container edit' });
      assert.deepEqual(report.kept, []);
      assert.deepEqual((await sync(f)).conflicts.map((conflict) => conflict.path), ['shared.txt'], 'still a conflict on the next cycle');
    });

    const winners: { policy: Policy; hostMtime: number; containerMtime: number; winner: 'host' | 'container' }[] = [
      { policy: 'host-wins', hostMtime: MTIME, containerMtime: MTIME + 60_000, winner: 'host' },
      { policy: 'container-wins', hostMtime: MTIME + 60_000, containerMtime: MTIME, winner: 'container' },
      { policy: 'newer-wins', hostMtime: MTIME, containerMtime: MTIME + 60_000, winner: 'container' },
      { policy: 'newer-wins', hostMtime: MTIME + 60_000, containerMtime: MTIME, winner: 'host' },
    ];
    for (const { policy, hostMtime, containerMtime, winner } of winners) {
      const loser = winner === 'host' ? 'container' : 'host';
      it(`${policy}: a file edited on both sides takes the ${winner}'s version (host mtime ${hostMtime > containerMtime ? 'newer' : 'older'}) and keeps the ${loser}'s under kept/<id>/`, async () => {
        const f = fixture();
        await agreedOn(f, { 'd/shared.txt': 'v1' });
        makeTree(f.host, { 'd/shared.txt': { content: 'host edit', mtimeMs: hostMtime } });
        makeTree(f.container, { 'd/shared.txt': { content: 'container edit', mtimeMs: containerMtime } });

        const report = await sync(f, policy);

        const won = `${winner} edit`;
        assert.deepEqual(report.conflicts, []);
        assert.deepEqual(readTree(f.host), { d: DIR, 'd/shared.txt': won });
        assert.deepEqual(readTree(f.container), { d: DIR, 'd/shared.txt': won });
        assert.deepEqual(keptTree(f, report), { [loser]: DIR, [`${loser}/d`]: DIR, [`${loser}/d/shared.txt`]: `${loser} edit` });
        assert.deepEqual(report.kept, [{ path: 'd/shared.txt', side: loser, keptAt: path.join(f.stateDir, 'kept', report.id, loser, 'd/shared.txt') }]);
      });
    }

    it('newer-wins: equal mtimes stay a conflict', async () => {
      const f = fixture();
      await agreedOn(f, { 'shared.txt': 'v1' });
      makeTree(f.host, { 'shared.txt': { content: 'host edit', mtimeMs: MTIME } });
      makeTree(f.container, { 'shared.txt': { content: 'container edit', mtimeMs: MTIME } });

      const report = await sync(f, 'newer-wins');

      assert.deepEqual(report.conflicts.map((conflict) => conflict.path), ['shared.txt']);
      assert.deepEqual([readTree(f.host)['shared.txt'], readTree(f.container)['shared.txt']], ['host edit', 'container edit']);
    });
  });

  describe('a safeguard question', () => {
    it('the time it waits for its answer is reported apart from the sync\'s own', async () => {
      const f = fixture();
      await agreedOn(f, { 'keep.txt': 'k', ...Object.fromEntries(Array.from({ length: 60 }, (_, index) => [`doomed/f${index}.txt`, `${index}`])) });
      rmSync(path.join(f.container, 'doomed'), { recursive: true });
      const { log } = await UndoLog.open(path.join(f.stateDir, 'undo'), { keptDirectory: path.join(f.stateDir, 'kept') });
      const report = await sync(f, 'two-way-safe', { undo: { log, thresholds: { maxDeletions: 50 }, ask: () => new Promise((resolve) => setTimeout(() => resolve('allow'), 300)) } });
      assert.equal(report.deletedCount, 61);
      assert.ok((report.waitedForAnswerMs ?? 0) >= 290 && report.waitedForAnswerMs! <= report.durationMs, JSON.stringify([report.waitedForAnswerMs, report.durationMs]));
      assert.match(describeReport(report), /in \d+ ms, after \d+ ms waiting for an answer$/);
      const quiet = await sync(f);
      assert.equal(quiet.waitedForAnswerMs, undefined, 'a cycle that asked nothing');
    });
  });

  describe('cancelled (the requester went away)', () => {
    it('stops before the next change, rolls back its host changes with the undo step, and writes no agreed state', async () => {
      const f = fixture();
      await agreedOn(f, { 'keep.txt': 'k' });
      const files = Object.fromEntries(Array.from({ length: 40 }, (_, index) => [`new/f${index}.txt`, `content ${index}`]));
      makeTree(f.container, files);
      const { log } = await UndoLog.open(path.join(f.stateDir, 'undo'), { keptDirectory: path.join(f.stateDir, 'kept') });
      const controller = new AbortController();
      let started = 0;
      await assert.rejects(
        sync(f, 'pull', {
          undo: { log },
          signal: controller.signal,
          beforeModify: async (change) => {
            if (change.side === 'host' && ++started === 5) controller.abort();
          },
        }),
        SyncCancelled,
      );
      assert.ok(started < 40, `${started} changes were started`);
      assert.deepEqual(readTree(f.host), { 'keep.txt': 'k' }, 'the host is as it was before the sync');
      // The next cycle carries everything.
      const next = await sync(f, 'pull', { undo: { log } });
      assert.equal(next.appliedCount, 41);
      assert.deepEqual(readTree(f.host), readTree(f.container));
    });

    it('a change whose hook was under way when the cancel came does not write', async () => {
      const f = fixture();
      await agreedOn(f, { 'keep.txt': 'k' });
      makeTree(f.container, Object.fromEntries(Array.from({ length: 40 }, (_, index) => [`f${index}.txt`, `content ${index}`])));
      const controller = new AbortController();
      let started = 0;
      let cancelledIn: string | undefined;
      await assert.rejects(
        sync(f, 'pull', {
          signal: controller.signal,
          // The fifth hook is the one running when the cancel comes (no undo log: nothing is rolled back).
          beforeModify: async (change) => {
            if (change.side !== 'host' || ++started !== 5) return;
            cancelledIn = change.path;
            controller.abort();
          },
        }),
        SyncCancelled,
      );
      assert.equal(started, 5);
      assert.ok(cancelledIn);
      assert.equal(readTree(f.host)[cancelledIn], undefined, `${cancelledIn} was written after the cancel`);
      assert.equal(readTree(f.host)['keep.txt'], 'k');
    });

    it('a target rewritten after the scan within the tick of its last change is compared by content, and kept', async () => {
      // On a coarse file-system clock, a rewrite of the same size in the tick of the last change
      // keeps size and times; the rewrite is made so here by putting its mtime back.
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a1', 'd/t.txt': 'same' });
      writeFileSync(at(f.host, 'a.txt'), 'a2');
      writeFileSync(at(f.host, 'd/t.txt'), 'HOST');
      // The agent's own rewrite, with the same content, stamped by a clock a little ahead of the
      // agent's (so that the scan, whenever this machine gets to it, is within a tick of it), on a
      // multiple of 1/8 s (exact in binary: utimes sets it to the nanosecond).
      const stamped = new Date(Math.ceil((Date.now() + 500) / 125) * 125);
      writeFileSync(at(f.container, 'd/t.txt'), 'same');
      utimesSync(at(f.container, 'd/t.txt'), stamped, stamped);
      const report = await sync(f, 'two-way-safe', {
        // a.txt is carried before d/t.txt (shallower first): meanwhile the agent rewrites d/t.txt
        // in that tick, and the apply reaches d/t.txt more than a tick after the stamp.
        beforeModify: async (change) => {
          if (change.path !== 'a.txt') return;
          writeFileSync(at(f.container, 'd/t.txt'), 'SAME');
          utimesSync(at(f.container, 'd/t.txt'), stamped, stamped);
          while (Date.now() < stamped.getTime() + 50) await new Promise((resolve) => setTimeout(resolve, 10));
        },
      });
      assert.equal(readTree(f.container)['d/t.txt'], 'SAME', "the agent's rewrite was replaced");
      assert.deepEqual(report.skipped.map((skipped) => `${skipped.side}:${skipped.path}: ${skipped.reason}`), ['container:d/t.txt: modified since the scan']);
      assert.equal(readTree(f.container)['a.txt'], 'a2');
    });

    it('an already aborted signal changes nothing', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a' });
      makeTree(f.container, { 'b.txt': 'b' });
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(sync(f, 'two-way-safe', { signal: controller.signal }), SyncCancelled);
      assert.deepEqual(readTree(f.host), { 'a.txt': 'a' });
    });
  });

  describe('push and pull', () => {
    const directions = [
      { policy: 'push', source: 'host', target: 'container' },
      { policy: 'pull', source: 'container', target: 'host' },
    ] as const;
    for (const { policy, source, target } of directions) {
      it(`${policy} makes the ${target} an exact copy of the ${source} and keeps what only the ${target} had under kept/`, async () => {
        const f = fixture();
        makeTree(f[source], { 'a.txt': 'source a', 'd/b.txt': 'b', 'run.sh': { content: 'x', mode: 0o755 }, l: link('a.txt') });
        makeTree(f[target], { 'a.txt': 'target a', 'extra.txt': 'extra', 'only/x.txt': 'x', 'run.sh': { content: 'x', mode: 0o644 }, l: link('d') });
        const sourceBefore = readTree(f[source]);

        const report = await sync(f, policy);

        assert.equal(report.halted, undefined);
        assert.deepEqual(report.conflicts, []);
        assert.deepEqual(readTree(f[source]), sourceBefore, `the ${source} is not changed`);
        assert.deepEqual(readTree(f[target]), sourceBefore);
        assert.equal(modeOf(f[target], 'run.sh'), 0o755);
        const kept = { [target]: DIR, [`${target}/a.txt`]: 'target a', [`${target}/extra.txt`]: 'extra', [`${target}/l`]: link('d'), [`${target}/only`]: DIR, [`${target}/only/x.txt`]: 'x', [`${target}/run.sh`]: 'x' };
        assert.deepEqual(keptTree(f, report), kept, 'the executable bit makes run.sh another version too');
        assert.equal(modeOf(path.join(f.stateDir, 'kept', report.id, target), 'run.sh'), 0o644);
      });
    }

    it('push overwrites an edit made in the container since the last sync, keeping it aside', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'v1' });
      makeTree(f.container, { 'a.txt': 'container edit' });

      const report = await sync(f, 'push');

      assert.deepEqual(readTree(f.container), { 'a.txt': 'v1' });
      assert.deepEqual(keptTree(f, report), { container: DIR, 'container/a.txt': 'container edit' });
    });
  });

  describe('safety halt', () => {
    it('halts when a side is emptied after a sync, changes nothing, stays halted, and reset merges without deleting', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a', 'd/b.txt': 'b' });
      for (const name of readdirSync(f.host)) rmSync(path.join(f.host, name), { recursive: true });
      const containerBefore = readTree(f.container);

      const halted = await sync(f);
      assert.equal(halted.halted?.side, 'host');
      assert.deepEqual(halted.applied, []);
      assert.deepEqual(readTree(f.container), containerBefore);

      makeTree(f.host, { 'new.txt': 'new' });
      const stillHalted = await sync(f);
      assert.equal(stillHalted.halted?.side, 'host', 'the halt persists until a reset');
      assert.deepEqual(readTree(f.container), containerBefore);
      assert.deepEqual(readTree(f.host), { 'new.txt': 'new' });

      const reset = await sync(f, 'two-way-safe', { reset: true });
      assert.equal(reset.halted, undefined);
      const merged = { 'a.txt': 'a', d: DIR, 'd/b.txt': 'b', 'new.txt': 'new' };
      assert.deepEqual(readTree(f.host), merged);
      assert.deepEqual(readTree(f.container), merged);
      assert.equal(reset.applied.filter((change) => change.action === 'delete').length, 0);
      assert.equal((await sync(f)).halted, undefined, 'the halt is gone for good');
    });

    it('halts when the container is emptied, whatever the policy', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a' });
      rmSync(path.join(f.container, 'a.txt'));

      const report = await sync(f, 'host-wins');

      assert.equal(report.halted?.side, 'container');
      assert.deepEqual(readTree(f.host), { 'a.txt': 'a' });
    });

    const emptySources = [
      { policy: 'push', empty: 'host', full: 'container' },
      { policy: 'pull', empty: 'container', full: 'host' },
    ] as const;
    for (const { policy, empty, full } of emptySources) {
      it(`a ${policy} from an empty ${empty} halts even on a first sync`, async () => {
        const f = fixture();
        makeTree(f[full], { 'a.txt': 'a', 'd/b.txt': 'b' });

        const report = await sync(f, policy);

        assert.equal(report.halted?.side, empty);
        assert.deepEqual(readTree(f[full]), { 'a.txt': 'a', d: DIR, 'd/b.txt': 'b' });
        assert.deepEqual(readTree(f[empty]), {});
      });
    }

    it('halts, changing nothing, when a root is missing', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a' });
      rmSync(f.host, { recursive: true });

      const report = await sync(f);

      assert.equal(report.halted?.side, 'host');
      assert.match(report.halted!.reason, /does not exist/);
      assert.deepEqual(readTree(f.container), { 'a.txt': 'a' });
    });
  });

  describe('ignored paths', () => {
    it('leaves a path ignored on only one side untouched on both sides', async () => {
      const f = fixture();
      makeTree(f.host, { '.gitignore': 'secret.txt\nbuild/\n', 'secret.txt': 'host secret', 'build/out.js': 'host build' });
      makeTree(f.container, { '.gitignore': '# nothing ignored here\n', 'secret.txt': 'container secret', 'build/out.js': 'container build' });
      const [hostBefore, containerBefore] = [readTree(f.host), readTree(f.container)];

      const report = await sync(f);

      assert.deepEqual(readTree(f.host), hostBefore);
      assert.deepEqual(readTree(f.container), containerBefore);
      assert.deepEqual(report.conflicts.map((conflict) => conflict.path), ['.gitignore'], 'only the .gitignore files themselves disagree');
      assert.deepEqual(actions(report), [], 'nothing was even attempted');
      assert.deepEqual(report.skipped, []);
      assert.deepEqual(report.kept, []);
    });

    it('neither copies nor deletes an excluded path', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a' });
      makeTree(f.host, { 'node_modules/x.js': 'host dep', 'b.swp': 'swap' });
      makeTree(f.container, { 'node_modules/y.js': 'container dep' });

      await sync(f, 'push', { excludes: ['node_modules'] });

      assert.deepEqual(readTree(f.container), { 'a.txt': 'a', node_modules: DIR, 'node_modules/y.js': 'container dep' });
    });

    it('a file kept out as a secret for a while keeps its agreed entry: once the secret is gone, the host\'s version crosses, not a conflict', async () => {
      const f = fixture();
      await agreedOn(f, { 'config.yml': 'name: app\n' });
      const token = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;
      makeTree(f.host, { 'config.yml': `name: app\ntoken: ${token}\n` });
      const keptOut = await sync(f);
      assert.deepEqual(keptOut.keptOut.map((secret) => [secret.path, secret.side]), [['config.yml', 'host']]);
      assert.equal(readTree(f.container)['config.yml'], 'name: app\n', 'the secret reached the container');

      // The user takes the token out again; the container's copy is still the one both agreed on.
      makeTree(f.host, { 'config.yml': 'name: app\nport: 8080\n' });
      const after = await sync(f);
      assert.deepEqual([after.conflicts, actions(after)], [[], ['update container:config.yml']]);
      assert.equal(readTree(f.container)['config.yml'], 'name: app\nport: 8080\n');
    });

    it("says where the other side's version of a file kept out as a secret is no longer the agreed one, on either side", async () => {
      const f = fixture();
      await agreedOn(f, { 'config.yml': 'name: app\n', 'notes.md': 'notes\n' });
      const token = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;
      const otherSides = async () => (await sync(f)).keptOut.map((secret) => [secret.side, secret.path, secret.otherSide]);
      makeTree(f.host, { 'config.yml': `name: app\ntoken: ${token}\n` });
      assert.deepEqual(await otherSides(), [['host', 'config.yml', undefined]], 'the container holds the agreed copy');
      makeTree(f.container, { 'config.yml': 'name: app\nport: 8080\n' });
      assert.deepEqual(await otherSides(), [['host', 'config.yml', 'changed']]);
      rmSync(path.join(f.container, 'config.yml'));
      assert.deepEqual(await otherSides(), [['host', 'config.yml', 'deleted']]);
      assert.match(readFileSync(path.join(f.host, 'config.yml'), 'utf8'), /token/, "the container's deletion reached the host");

      makeTree(f.container, { 'notes.md': `notes\ntoken: ${token}\n` });
      makeTree(f.host, { 'notes.md': 'notes, edited\n' });
      assert.deepEqual(await otherSides(), [['host', 'config.yml', 'deleted'], ['container', 'notes.md', 'changed']]);
      assert.equal(readFileSync(path.join(f.host, 'notes.md'), 'utf8'), 'notes, edited\n');
    });

    it('says nothing of the other side where both keep the file out (its version is unknown, and kept out there too)', async () => {
      const f = fixture();
      makeTree(f.host, { '.env': 'A=1\n' });
      await sync(f, 'two-way-safe', { allowSecrets: ['.env'] });
      makeTree(f.host, { '.env': 'A=2\n' });
      makeTree(f.container, { '.env': 'A=3\n' });
      const report = await sync(f);
      assert.deepEqual(report.keptOut.map((secret) => [secret.side, secret.path, secret.otherSide]), [['host', '.env', undefined], ['container', '.env', undefined]]);
      assert.deepEqual([readFileSync(path.join(f.host, '.env'), 'utf8'), readFileSync(path.join(f.container, '.env'), 'utf8')], ['A=2\n', 'A=3\n']);
    });

    // Regression test for a bug fixed after it was found.
    it('does not create on a side a path that side ignores but does not have', async () => {
      const f = fixture();
      makeTree(f.host, { '.gitignore': 'secret.txt\n' });
      makeTree(f.container, { '.gitignore': '# nothing ignored here\n', 'secret.txt': 'container secret' });

      const report = await sync(f);

      assert.deepEqual(readTree(f.host), { '.gitignore': 'secret.txt\n' });
      assert.deepEqual(actions(report), []);
    });
  });

  describe('onlyPaths', () => {
    it('carries only the given paths and the folders above them; the next full cycle carries the rest', async () => {
      const f = fixture();
      await agreedOn(f, { 'keep.txt': 'k' });
      makeTree(f.host, { 'd/e/saved.txt': 'just saved', 'd/other.txt': 'later', 'top.txt': 'later' });

      const partial = await sync(f, 'two-way-safe', { onlyPaths: ['d/e/saved.txt'] });

      assert.deepEqual(actions(partial), ['create container:d', 'create container:d/e', 'create container:d/e/saved.txt']);
      assert.deepEqual(readTree(f.container), { d: DIR, 'd/e': DIR, 'd/e/saved.txt': 'just saved', 'keep.txt': 'k' });
      await sync(f);
      assert.deepEqual(readTree(f.container), readTree(f.host));
    });
  });

  describe('changes made while a cycle runs', () => {
    it('does not clobber a file edited between the scan and the apply; the next cycle carries the edit', async () => {
      const f = fixture();
      await agreedOn(f, { 'd/a.txt': 'a', 'b.txt': 'b v1', 'stays.txt': 's' });
      // Deletions go deepest first, one batch per depth: host:d/a.txt is done before
      // container:b.txt is even checked, so the hook of the first edits the target of the second.
      rmSync(path.join(f.container, 'd/a.txt'));
      rmSync(path.join(f.host, 'b.txt'));
      const calls: string[] = [];

      const report = await sync(f, 'two-way-safe', {
        beforeModify: async ({ side, path: key }) => {
          calls.push(`${side}:${key}`);
          if (side === 'host' && key === 'd/a.txt') writeFileSync(path.join(f.container, 'b.txt'), 'b edited during the sync');
        },
      });

      assert.deepEqual(calls, ['host:d/a.txt']);
      assert.deepEqual(report.skipped.map(({ path: key, side, reason }) => `${side}:${key}: ${reason}`), ['container:b.txt: modified since the scan']);
      assert.deepEqual(readTree(f.container), { 'b.txt': 'b edited during the sync', d: DIR, 'stays.txt': 's' });
      assert.deepEqual(readTree(f.host), { d: DIR, 'stays.txt': 's' });

      const next = await sync(f);
      assert.deepEqual(next.skipped, []);
      assert.deepEqual(next.conflicts, []);
      assert.deepEqual(readTree(f.host), { 'b.txt': 'b edited during the sync', d: DIR, 'stays.txt': 's' }, 'the edit beat the deletion');
    });

    it('leaves the agreed state of a skipped update as it was, so the next cycle sees both edits as a conflict', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a', 'b.txt': 'b v1', 'stays.txt': 's' });
      rmSync(path.join(f.container, 'a.txt')); // delete host:a.txt, in the deletion batch
      makeTree(f.host, { 'b.txt': 'b v2 from the host' }); // update container:b.txt, in the later write batch

      const report = await sync(f, 'two-way-safe', {
        beforeModify: async ({ side, path: key }) => {
          if (side === 'host' && key === 'a.txt') writeFileSync(path.join(f.container, 'b.txt'), 'b edited in the container during the sync');
        },
      });
      assert.deepEqual(report.skipped.map(({ path: key, side }) => `${side}:${key}`), ['container:b.txt']);

      // Had the ancestor taken the host's v2, the container's edit would now look like the only
      // change and overwrite v2 without keeping it.
      const next = await sync(f);
      assert.deepEqual(next.conflicts.map((conflict) => conflict.path), ['b.txt']);
      assert.equal(readTree(f.host)['b.txt'], 'b v2 from the host');
      assert.equal(readTree(f.container)['b.txt'], 'b edited in the container during the sync');
    });
  });

  describe('state files', () => {
    it('records the agreed state in the store, the history by appending, leaving no temporary file, and keeps a file named __proto__', async () => {
      const f = fixture();
      // A computed key: a literal `__proto__:` would set the object's prototype instead.
      makeTree(f.host, { ['__proto__']: 'proto', constructor: 'c', 'd/__proto__': 'nested' });
      await sync(f);
      const historyInode = inodeOf(f.stateDir, HISTORY_FILE);

      assert.deepEqual((await agreedKeys(f)).sort(), ['__proto__', 'constructor', 'd', 'd/__proto__']);
      assert.equal(existsSync(path.join(f.stateDir, 'ancestor.json')), false, 'no whole-tree state file');
      rmSync(path.join(f.container, '__proto__'));
      rmSync(path.join(f.container, 'd/__proto__'));
      const second = await sync(f);

      assert.deepEqual(readTree(f.host), { constructor: 'c', d: DIR }, 'the deletions were carried, not undone');
      assert.deepEqual(second.kept, []);
      assert.deepEqual((await agreedKeys(f)).sort(), ['constructor', 'd']);
      assert.deepEqual(temporaryFiles(f.stateDir), []);
      assert.equal(inodeOf(f.stateDir, HISTORY_FILE), historyInode, 'the report was appended to the history, which was not rewritten');
      const history = await new SyncStateFiles(f.stateDir).readHistory();
      assert.deepEqual(history.map((report) => report.id), [second.id, history[1]!.id]);
    });

    it('writes nothing to the store in a cycle that changes nothing, and still records the cycle', async () => {
      const f = fixture();
      await agreedOn(f, { 'a.txt': 'a', 'd/b.txt': 'b', 'd/e': DIR });
      await pastTimestampTick();
      await sync(f); // caches the container files the first cycle wrote
      const files = [BASE_FILE, JOURNAL_FILE, HISTORY_FILE];
      const identities = () => files.map((name) => {
        const stats = statSync(path.join(f.stateDir, name));
        return `${name} ${stats.ino}:${stats.size}:${stats.mtimeMs}`;
      });
      const before = identities();

      const quiet = await sync(f);

      assert.equal(quiet.appliedCount, 0);
      assert.equal(quiet.scanned.hashedFiles, 0);
      const after = identities();
      assert.deepEqual(after.slice(0, 2), before.slice(0, 2), 'the store was not written');
      assert.notEqual(after[2], before[2], 'the history still gets the cycle');
      assert.equal((await new SyncStateFiles(f.stateDir).readHistory())[0]!.id, quiet.id);

      writeFileSync(path.join(f.host, 'a.txt'), 'edited');
      await sync(f);
      assert.notEqual(identities()[1], after[1], 'an edit appends to the journal');
      const agreed = await withStateStore(f.stateDir, async (store) => store.ancestor.get('a.txt'));
      assert.equal(agreed?.kind === 'file' && agreed.size, 'edited'.length);
      assert.deepEqual(temporaryFiles(f.stateDir), []);
    });
  });

  describe('files the sync cannot read', () => {
    it('reports an unreadable file and never overwrites or deletes it', async function () {
      const f = fixture();
      await agreedOn(f, { 'edited.txt': 'v1', 'deleted.txt': 'v1', 'fine.txt': 'v1' });
      makeTree(f.host, { 'new-locked.txt': 'host only' });
      makeTree(f.container, { 'edited.txt': 'container edit', 'fine.txt': 'v2' });
      rmSync(path.join(f.container, 'deleted.txt'));
      const locked = ['edited.txt', 'deleted.txt', 'new-locked.txt'];
      for (const key of locked) chmodSync(path.join(f.host, key), 0o000);

      const report = await syncUnprivileged(f, this);

      for (const key of locked) assert.equal(modeOf(f.host, key), 0o000, `${key} keeps its mode`);
      for (const key of locked) chmodSync(path.join(f.host, key), 0o644);
      assert.deepEqual(readTree(f.host), { 'deleted.txt': 'v1', 'edited.txt': 'v1', 'fine.txt': 'v2', 'new-locked.txt': 'host only' });
      assert.deepEqual(readTree(f.container), { 'edited.txt': 'container edit', 'fine.txt': 'v2' });
      const problems = report.problems.map((problem) => `${problem.side}:${problem.path}`).sort();
      assert.deepEqual(problems, ['host:deleted.txt', 'host:edited.txt', 'host:new-locked.txt']);
      assert.ok(report.problems.every((problem) => /permission denied/.test(problem.reason)), JSON.stringify(report.problems));
      assert.deepEqual(report.kept, []);
    });
  });
});

/**
 * Runs one two-way-safe cycle as a user the test's chmod 000 applies to: tests run as root,
 * which reads everything, so then the cycle runs in a child process as uid/gid 1000 (the
 * fixture is handed over to that user first); run as anyone else, it runs here.
 */
async function syncUnprivileged(f: SyncFixture, test: Mocha.Context): Promise<SyncReport> {
  if (process.getuid === undefined) test.skip();
  if (process.getuid!() !== 0) return sync(f);
  const chownTree = (directory: string): void => {
    lchownSync(directory, 1000, 1000);
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) chownTree(full);
      else lchownSync(full, 1000, 1000);
    }
  };
  chownTree(f.base);
  const script = path.join(f.base, 'sync-child.mjs');
  writeFileSync(script, `
    import { runSyncCycle } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'src/core/sync/engine.ts')).href)};
    const report = await runSyncCycle(JSON.parse(process.argv[2]));
    process.stdout.write(JSON.stringify(report));
  `);
  const options: SyncCycleOptions = { roots: f.roots, stateDir: f.stateDir, policy: 'two-way-safe', excludes: [] };
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], { uid: 1000, gid: 1000, cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(child.status, 0, `child sync failed: ${child.error?.message ?? child.stderr}`);
  return SyncReport.parse(JSON.parse(child.stdout));
}
