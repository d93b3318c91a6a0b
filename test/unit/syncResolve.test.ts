// Resolving a conflict by hand on real trees: keep the host's version, the container's, or both.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { runSyncCycle, withStateStore } from '../../src/core/sync/engine';
import { resolveConflict, siblingNameForms, type KeepChoice } from '../../src/core/sync/resolve';
import { UndoLog } from '../../src/core/undo';
import { rmSync } from 'node:fs';
import { DIR, link, makeTree, readTree, useSyncFixture, type SyncFixture, type TreeSpec } from '../helpers/syncTrees';

const sync = (f: SyncFixture) => runSyncCycle({ roots: f.roots, stateDir: f.stateDir, policy: 'two-way-safe', excludes: [] });
const resolve = (f: SyncFixture, relative: string, keep: KeepChoice) => withStateStore(f.stateDir, (store) => resolveConflict({ roots: f.roots, store, excludes: [], path: relative, keep }));

/** Sets up a conflict at `conflictPath`: the sides hold `host` and `container` after a sync reported it. */
async function conflictOn(f: SyncFixture, conflictPath: string, common: TreeSpec, host: TreeSpec, container: TreeSpec): Promise<void> {
  makeTree(f.host, common);
  await sync(f);
  makeTree(f.host, host);
  makeTree(f.container, container);
  const report = await sync(f);
  assert.deepEqual(report.conflicts.map((conflict) => conflict.path), [conflictPath], 'the setup made a conflict');
}

/** What resolve kept aside: the one `kept/<id>-resolve` folder's tree. */
function keptByResolve(f: SyncFixture): Record<string, string> {
  const folders = readdirSync(path.join(f.stateDir, 'kept')).filter((name) => name.endsWith('-resolve'));
  assert.equal(folders.length, 1, `one resolve folder in ${folders.join(', ')}`);
  return readTree(path.join(f.stateDir, 'kept', folders[0]!));
}

describe('unit: sync resolve', () => {
  const fixture = useSyncFixture('clud-resolve-');

  describe('a file edited on both sides', () => {
    const setUp = (f: SyncFixture) => conflictOn(f, 'src/app.ts', { 'src/app.ts': 'v1', 'other.txt': 'o' }, { 'src/app.ts': 'host version' }, { 'src/app.ts': 'container version' });

    it('keep both: the container version becomes name.container.ext and the host version stays at the path, on both sides', async () => {
      const f = fixture();
      await setUp(f);

      const report = await resolve(f, 'src/app.ts', 'both');

      const expected = { 'other.txt': 'o', src: DIR, 'src/app.container.ts': 'container version', 'src/app.ts': 'host version' };
      assert.deepEqual(readTree(f.host), expected);
      assert.deepEqual(readTree(f.container), expected);
      assert.deepEqual(report.conflicts, []);
      assert.deepEqual((await sync(f)).appliedCount, 0, 'the sides agree afterwards');
    });

    // Keep host changes nothing on the host: no step.
    for (const keep of ['container', 'both'] as const) {
      it(`keep ${keep} is an undo step named by it (for keep both, the cycle that carries the container's version to the host)`, async () => {
        const f = fixture();
        await setUp(f);
        const { log } = await UndoLog.open(path.join(f.stateDir, 'undo'), { keptDirectory: path.join(f.stateDir, 'kept') });
        await withStateStore(f.stateDir, (store) => resolveConflict({ roots: f.roots, store, excludes: [], path: 'src/app.ts', keep, undo: { log } }));
        assert.deepEqual((await log.list()).map((step) => step.policy), [`resolve: keep ${keep}`]);
      });
    }

    it('keep both on a name too long for the .container suffix: a shortened name that fits, and the report says where it went', async () => {
      const f = fixture();
      const long = `src/${'n'.repeat(250)}.ts`; // 253 bytes: ".container" would make it 263
      await conflictOn(f, long, { [long]: 'v1' }, { [long]: 'host version' }, { [long]: 'container version' });

      const report = await resolve(f, long, 'both');

      const shortened = `src/${'n'.repeat(255 - '.container.ts'.length)}.container.ts`;
      assert.equal(readTree(f.host)[shortened], 'container version');
      assert.equal(readTree(f.host)[long], 'host version');
      assert.deepEqual(readTree(f.host), readTree(f.container));
      assert.ok(report.notices.some((notice) => notice.includes(shortened) && /shortened/.test(notice)), JSON.stringify(report.notices));
    });

    it('a path on neither side (mistyped) is refused, and nothing changes', async () => {
      const f = fixture();
      await setUp(f);
      for (const keep of ['host', 'container', 'both'] as const) await assert.rejects(resolve(f, 'src/app.tsx', keep), /src\/app\.tsx exists on neither side; nothing was changed/);
      assert.deepEqual(readTree(f.host), { 'other.txt': 'o', src: DIR, 'src/app.ts': 'host version' });
      assert.deepEqual(readTree(f.container), { 'other.txt': 'o', src: DIR, 'src/app.ts': 'container version' });
    });

    it('a path both sides hold the same version of: keep host or container says it was not in conflict, keep both is refused', async () => {
      const f = fixture();
      await setUp(f);
      for (const keep of ['host', 'container'] as const) {
        const report = await resolve(f, 'other.txt', keep);
        assert.deepEqual(report.notices, ['other.txt is not in conflict: both sides hold the same version, so the resolve changed nothing'], keep);
      }
      await assert.rejects(resolve(f, 'other.txt', 'both'), /other\.txt is not in conflict: both sides hold the same version, so there is nothing to keep twice/);
      assert.deepEqual(readTree(f.container), { 'other.txt': 'o', src: DIR, 'src/app.ts': 'container version' }, 'keep both made a copy');
    });

    it('siblingNameForms: a name that fits is left whole; multi-byte names are cut at a character boundary', () => {
      const [first, second] = siblingNameForms('dir/app.ts');
      assert.equal(first!.name(''), 'dir/app.container.ts');
      assert.equal(first!.shortened(''), false);
      assert.equal(second!.name('-2'), 'dir/app.ts.container-2');
      const wide = `${'é'.repeat(126)}.md`; // 255 bytes
      const [fitted] = siblingNameForms(wide);
      const name = fitted!.name('');
      assert.ok(Buffer.byteLength(name) <= 255 && name.endsWith('.container.md') && !name.includes('\uFFFD'), name);
      assert.equal(fitted!.shortened(''), true);
    });

    it('keep both: picks a free sibling name when name.container.ext is taken', async () => {
      const f = fixture();
      makeTree(f.host, { 'src/app.container.ts': 'an older copy' });
      await setUp(f);

      await resolve(f, 'src/app.ts', 'both');

      assert.deepEqual(readTree(f.host), readTree(f.container));
      assert.equal(readTree(f.host)['src/app.container.ts'], 'an older copy');
      assert.equal(readTree(f.host)['src/app.container-2.ts'], 'container version');
      assert.equal(readTree(f.host)['src/app.ts'], 'host version');
    });

    for (const winner of ['host', 'container'] as const) {
      const loser = winner === 'host' ? 'container' : 'host';
      it(`keep ${winner}: both sides end with the ${winner}'s version and the ${loser}'s is kept under kept/`, async () => {
        const f = fixture();
        await setUp(f);

        const report = await resolve(f, 'src/app.ts', winner);

        const expected = { 'other.txt': 'o', src: DIR, 'src/app.ts': `${winner} version` };
        assert.deepEqual(readTree(f.host), expected);
        assert.deepEqual(readTree(f.container), expected);
        assert.deepEqual(keptByResolve(f), { [loser]: DIR, [`${loser}/src`]: DIR, [`${loser}/src/app.ts`]: `${loser} version` });
        assert.deepEqual(report.conflicts, []);
        assert.equal((await sync(f)).appliedCount, 0);
      });
    }
  });

  describe('a directory on the host where the container has a file', () => {
    const setUp = (f: SyncFixture) => conflictOn(f, 'x', { 'keep.txt': 'k' }, { 'x/a.txt': 'in the host directory', 'x/sub/b.txt': 'b' }, { x: 'container file' });

    it('keep host: the container gets the directory and its file is kept', async () => {
      const f = fixture();
      await setUp(f);

      await resolve(f, 'x', 'host');

      const expected = { 'keep.txt': 'k', x: DIR, 'x/a.txt': 'in the host directory', 'x/sub': DIR, 'x/sub/b.txt': 'b' };
      assert.deepEqual(readTree(f.host), expected);
      assert.deepEqual(readTree(f.container), expected);
      assert.deepEqual(keptByResolve(f), { container: DIR, 'container/x': 'container file' });
    });

    it("keep container: the host gets the file and the directory's files are kept", async () => {
      const f = fixture();
      await setUp(f);

      await resolve(f, 'x', 'container');

      assert.deepEqual(readTree(f.host), { 'keep.txt': 'k', x: 'container file' });
      assert.deepEqual(readTree(f.container), { 'keep.txt': 'k', x: 'container file' });
      assert.deepEqual(keptByResolve(f), { host: DIR, 'host/x': DIR, 'host/x/a.txt': 'in the host directory', 'host/x/sub': DIR, 'host/x/sub/b.txt': 'b' });
    });

    it('keep both: the file moves to x.container and the directory stays at x, on both sides', async () => {
      const f = fixture();
      await setUp(f);

      const report = await resolve(f, 'x', 'both');

      const expected = { 'keep.txt': 'k', x: DIR, 'x.container': 'container file', 'x/a.txt': 'in the host directory', 'x/sub': DIR, 'x/sub/b.txt': 'b' };
      assert.deepEqual(readTree(f.host), expected);
      assert.deepEqual(readTree(f.container), expected);
      assert.deepEqual(report.conflicts, []);
    });
  });

  // Regression test for a bug fixed after it was found.
  it('keep container over a host directory holding an ignored file changes nothing when it cannot finish', async () => {
    const f = fixture();
    await conflictOn(f, 'x', { '.gitignore': '*.log\n', 'keep.txt': 'k' }, { 'x/a.txt': 'in the host directory', 'x/debug.log': 'ignored' }, { x: 'container file' });
    const hostBefore = readTree(f.host);

    await assert.rejects(resolve(f, 'x', 'container'));

    assert.deepEqual(readTree(f.host), hostBefore);
  });

  describe('paths outside the workspace', () => {
    const refused: [string, KeepChoice][] = [['../x', 'both'], ['/etc/x', 'host'], ['a/../../x', 'container'], ['..', 'both'], ['.', 'host']];
    for (const [outside, keep] of refused) {
      it(`refuses ${JSON.stringify(outside)} (keep ${keep}) and changes nothing`, async () => {
        const f = fixture();
        makeTree(f.base, { x: 'next to the roots' });
        makeTree(f.host, { a: 'host' });
        makeTree(f.container, { a: 'container' });
        await withStateStore(f.stateDir, async () => undefined); // the caller opens the store before asking
        const before = readTree(f.base);

        await assert.rejects(resolve(f, outside, keep), /is not a path inside the workspace/);

        assert.deepEqual(readTree(f.base), before, 'no sync cycle ran (no history), nothing was kept');
      });
    }
  });
  describe('a container version that is a link which may lead outside the folder', () => {
    it('keep container is refused and changes nothing: such a link is never written into the host', async () => {
      const f = fixture();
      makeTree(f.host, { 'config.json': 'v1' });
      await sync(f);
      makeTree(f.host, { 'config.json': 'host version' });
      rmSync(path.join(f.container, 'config.json'));
      makeTree(f.container, { 'config.json': link('/etc/shadow') });
      assert.deepEqual((await sync(f)).conflicts.map((conflict) => conflict.path), ['config.json'], 'the setup made a conflict');

      await assert.rejects(resolve(f, 'config.json', 'container'), /config\.json: symlink may lead outside the folder: \/etc\/shadow, .*nothing was changed/);
      assert.deepEqual(readTree(f.host), { 'config.json': 'host version' });
      assert.deepEqual(readTree(f.container), { 'config.json': link('/etc/shadow') });
    });
  });
});
