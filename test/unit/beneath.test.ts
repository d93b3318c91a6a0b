// A folder swapped for a symlink to an outside folder, at every point between the apply's look at
// a path and its write, never lets a write, deletion or mode change reach the outside folder: every
// name is resolved inside the parent folder as it was reached, without following a link.
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyChanges, type ApplyOptions } from '../../src/core/sync/apply';
import { backupDifferences } from '../../src/core/sync/backup';
import { openPinnedCount, pinFolder, pinParent, setPinStepHookForTests } from '../../src/core/sync/beneath';
import type { Entry } from '../../src/core/files/entry';
import type { Change, Side } from '../../src/core/sync/reconcile';
import { setStagedAttributes } from '../../src/core/files/replaceChecked';
import { scanTree } from '../../src/core/sync/scan';
import { DIR, link, makeTree, modeOf, readTree, useSyncFixture, type SyncFixture } from '../helpers/syncTrees';

const MTIME = 1_600_000_000_500;

async function snapshotOf(root: string): Promise<Map<string, Entry>> {
  return (await scanTree(root, { excludes: [] })).snapshot;
}

/**
 * The process's open descriptors, but tsx's: tsx, which runs these tests, opens its compile cache
 * folder (/tmp/tsx-<uid>) and closes it on its own schedule, which a count across one test caught
 * as a descriptor gone (33 before, 32 after, the one gone being that folder).
 */
const openDescriptors = (): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return !path.basename(readlinkSync(`/proc/self/fd/${fd}`)).startsWith('tsx-');
    } catch {
      return false; // closed meanwhile (the descriptor readdir itself used)
    }
  }).length;

/** Everything observable about a tree: entries, contents, link targets and modes. */
function fingerprint(root: string): string {
  const tree = readTree(root);
  return JSON.stringify(Object.keys(tree).map((key) => [key, tree[key], lstatSync(path.join(root, key)).mode]));
}

/** Moves `root/key` to `root/key.moved` and puts a symlink to `outside` in its place. */
function swapForLink(root: string, key: string, outside: string): void {
  renameSync(path.join(root, key), path.join(root, `${key}.moved`));
  symlinkSync(outside, path.join(root, key));
}

describe('unit: beneath (paths pinned below a root)', () => {
  const fixture = useSyncFixture('clud-beneath-');
  afterEach(() => setPinStepHookForTests(undefined));

  it('pins a folder through real folders only: a symlink or a file on the way is parent-replaced, a missing folder parent-missing', () => {
    const f = fixture();
    const outside = path.join(f.base, 'outside');
    makeTree(f.container, { a: DIR, 'a/b': DIR, 'a/file': 'x' });
    makeTree(outside, { c: DIR });
    symlinkSync(outside, path.join(f.container, 'a/link'));
    const before = openDescriptors();

    const pinned = pinFolder(f.container, 'a/b');
    assert.ok(pinned.ok);
    writeFileSync(pinned.folder.path('made'), 'inside');
    pinned.folder.close();
    pinned.folder.close(); // closing twice is harmless
    assert.equal(readTree(f.container)['a/b/made'], 'inside');

    assert.deepEqual(pinFolder(f.container, 'a/link/c'), { ok: false, code: 'parent-replaced', at: 'a/link' });
    assert.deepEqual(pinParent(f.container, 'a/link/c/x'), { ok: false, code: 'parent-replaced', at: 'a/link' });
    assert.deepEqual(pinParent(f.container, 'a/file/x'), { ok: false, code: 'parent-replaced', at: 'a/file' });
    assert.deepEqual(pinParent(f.container, 'a/gone/x'), { ok: false, code: 'parent-missing', at: 'a/gone' });
    assert.equal(openPinnedCount(), 0);
    assert.equal(openDescriptors(), before, 'no descriptor leaks');
  });

  it('a folder swapped during the walk is refused; one swapped after it was pinned is still the one written into', () => {
    const f = fixture();
    const outside = path.join(f.base, 'outside');
    makeTree(f.container, { a: DIR, 'a/b': DIR });
    mkdirSync(outside);
    // Swapped after its parent was pinned, before it is opened: the walk meets the link.
    setPinStepHookForTests((_root, key) => {
      if (key === 'a') swapForLink(path.join(f.container, 'a'), 'b', outside);
    });
    assert.deepEqual(pinParent(f.container, 'a/b/post-commit'), { ok: false, code: 'parent-replaced', at: 'a/b' });

    // Swapped once pinned: the name still means the folder that was reached, now at d.moved.
    makeTree(f.container, { c: DIR, 'c/d': DIR });
    setPinStepHookForTests((_root, key) => {
      if (key === 'c/d') swapForLink(path.join(f.container, 'c'), 'd', outside);
    });
    const pinned = pinParent(f.container, 'c/d/post-commit');
    assert.ok(pinned.ok);
    writeFileSync(pinned.path, '#!/bin/sh\n', { flag: 'wx' });
    pinned.folder.close();
    assert.deepEqual(readdirSync(outside), []);
    assert.equal(readTree(f.container)['c/d.moved/post-commit'], '#!/bin/sh\n');
    assert.equal(openPinnedCount(), 0);
  });

  it("the apply pins each folder once per batch, for all of that batch's changes in it, and closes it after", async () => {
    const f = fixture();
    const files: Record<string, string> = {};
    for (let index = 0; index < 100; index += 1) files[`a/f${index}.txt`] = `content ${index}`;
    makeTree(f.container, { a: DIR, ...files });
    makeTree(f.host, { a: DIR });
    const container = await snapshotOf(f.container);
    const changes = Object.keys(files).map((key): Change => ({ path: key, side: 'host', expected: undefined, next: container.get(key) }));
    const walks: string[] = [];
    setPinStepHookForTests((root, key) => {
      if (key === 'a') walks.push(root === f.host ? 'host' : 'container');
    });
    const descriptors = openDescriptors();

    const outcome = await applyChanges(changes, { roots: f.roots, keepDir: path.join(f.stateDir, 'kept') });

    assert.equal(outcome.applied.length, 100);
    assert.deepEqual(readTree(f.host), readTree(f.container));
    // One walk to a/ on the host (the targets' parent) and one in the container (the sources'), not one per file and side.
    assert.deepEqual(walks.sort(), ['container', 'host']);
    assert.equal(openPinnedCount(), 0);
    assert.equal(openDescriptors(), descriptors, 'no descriptor leaks');
  });

  it('setStagedAttributes never follows a symlink put in place of the staged name', () => {
    const f = fixture();
    makeTree(f.base, { 'victim.sh': { content: 'x', mode: 0o644 } });
    symlinkSync(path.join(f.base, 'victim.sh'), path.join(f.container, 'staged'));
    assert.throws(() => setStagedAttributes(Buffer.from(path.join(f.container, 'staged')), { mode: 0o777, mtimeMs: MTIME }), { code: 'ELOOP' });
    assert.equal(modeOf(f.base, 'victim.sh'), 0o644);
  });

  it("a backup reads the container's version through the pinned parent: a folder swapped for a link fails the backup instead of copying what it points at", async () => {
    const f = fixture();
    const outside = path.join(f.base, 'outside');
    makeTree(f.host, { x: DIR, 'x/notes.txt': 'host version' });
    makeTree(f.container, { x: DIR, 'x/notes.txt': 'container version' });
    makeTree(outside, { 'notes.txt': 'not for the backup' });
    let swapped = false;
    setPinStepHookForTests((root, key) => {
      if (swapped || root !== f.container || key !== '') return;
      swapped = true;
      swapForLink(f.container, 'x', outside);
    });
    await assert.rejects(backupDifferences({ roots: f.roots, stateDir: f.stateDir, excludes: [] }), /x\/notes\.txt changed on the container side while it was backed up \(parent x is no longer a folder\)/);
    assert.ok(swapped);
    // The host's version was copied before the container's was refused; nothing from outside.
    assert.ok(!Object.values(readTree(path.join(f.stateDir, 'backups'))).includes('not for the backup'));
    assert.equal(openPinnedCount(), 0);
  });

  describe('the apply, with the parent swapped for a link to an outside folder between its look and its write', () => {
    const change = (side: Side, key: string, expected: Entry | undefined, next: Entry | undefined): Change => ({ path: key, side, expected, next });

    interface Case {
      /** The container's tree at the scan (the host has the next versions). */
      container: Record<string, string | { content: string; mode?: number; mtimeMs?: number }>;
      host: Record<string, string | { content: string; mode?: number; mtimeMs?: number }>;
      change: (host: Map<string, Entry>, container: Map<string, Entry>) => Change;
    }
    const file = (content: string) => ({ content, mode: 0o644, mtimeMs: MTIME });
    // Each kind of operation the apply does by path: the outside folder holds an entry of the same
    // name and the same metadata, which the old check-then-write would have written, replaced or
    // deleted through the link.
    const cases: Record<string, Case> = {
      'creating a file (staged, then linked into place)': {
        container: { x: DIR },
        host: { x: DIR, 'x/post-commit': file('#!/bin/sh\necho pwned\n') },
        change: (host) => change('container', 'x/post-commit', undefined, host.get('x/post-commit')),
      },
      'replacing a file (moved aside, verified, linked)': {
        container: { x: DIR, 'x/post-commit': file('old') },
        host: { x: DIR, 'x/post-commit': file('#!/bin/sh\necho pwned\n') },
        change: (host, container) => change('container', 'x/post-commit', container.get('x/post-commit'), host.get('x/post-commit')),
      },
      'deleting a file': {
        container: { x: DIR, 'x/post-commit': file('old') },
        host: { x: DIR },
        change: (_host, container) => change('container', 'x/post-commit', container.get('x/post-commit'), undefined),
      },
      'creating a link': {
        container: { x: DIR },
        host: { x: DIR, 'x/post-commit': link('/bin/true') },
        change: (host) => change('container', 'x/post-commit', undefined, host.get('x/post-commit')),
      },
      'creating a folder': {
        container: { x: DIR },
        host: { x: DIR, 'x/hooks': DIR },
        change: (host) => change('container', 'x/hooks', undefined, host.get('x/hooks')),
      },
      'changing a folder mode': {
        container: { x: DIR, 'x/hooks': DIR },
        host: { x: DIR, 'x/hooks': DIR },
        change: (host) => change('container', 'x/hooks', { kind: 'directory', mode: 0o755 } as Entry, { ...host.get('x/hooks')!, mode: 0o777 } as Entry),
      },
      'deleting a folder': {
        container: { x: DIR, 'x/hooks': DIR },
        host: { x: DIR },
        change: (_host, container) => change('container', 'x/hooks', container.get('x/hooks'), undefined),
      },
    };

    for (const [name, spec] of Object.entries(cases)) {
      it(`${name}: nothing outside changes, and no descriptor leaks`, async () => {
        const f: SyncFixture = fixture();
        const outside = path.join(f.base, 'outside');
        makeTree(f.host, spec.host);
        makeTree(f.container, spec.container);
        // The outside folder looks exactly like x did at the scan.
        mkdirSync(outside);
        makeTree(outside, Object.fromEntries(Object.entries(spec.container).filter(([key]) => key.startsWith('x/')).map(([key, value]) => [key.slice(2), value])));
        const [host, container] = [await snapshotOf(f.host), await snapshotOf(f.container)];
        const before = fingerprint(outside);
        const descriptors = openDescriptors();
        let swapped = false;
        const options: ApplyOptions = {
          roots: f.roots,
          keepDir: path.join(f.stateDir, 'kept'),
          // After the apply looked at the path and pinned its parent, before anything is written.
          beforeModify: async () => {
            swapForLink(f.container, 'x', outside);
            swapped = true;
          },
        };

        const outcome = await applyChanges([spec.change(host, container)], options);

        assert.ok(swapped, 'the swap happened');
        assert.equal(fingerprint(outside), before, `outside unchanged (${JSON.stringify(outcome.skipped.map((skip) => skip.reason))})`);
        assert.equal(openPinnedCount(), 0);
        assert.equal(openDescriptors(), descriptors, 'no descriptor leaks');
        // Whatever was carried out happened in the folder that was x.
        if (outcome.applied.length === 1 && spec.change(host, container).next) assert.ok(readTree(f.container)[`x.moved/${spec.change(host, container).path.slice(2)}`] !== undefined);
      });
    }

    it('swapped at every step of the walk, in many rounds: nothing outside changes', async () => {
      const f = fixture();
      const outside = path.join(f.base, 'outside');
      makeTree(f.host, { x: DIR, 'x/y': DIR, 'x/y/post-commit': file('#!/bin/sh\n') });
      makeTree(f.container, { x: DIR, 'x/y': DIR });
      makeTree(outside, { y: DIR });
      const host = await snapshotOf(f.host);
      const before = fingerprint(outside);
      for (const [root, key] of [[f.container, ''], [f.container, 'x'], [f.container, 'x/y'], [f.host, 'x/y']] as const) {
        makeTree(f.container, { x: DIR, 'x/y': DIR });
        let done = false;
        setPinStepHookForTests((pinnedRoot, pinnedKey) => {
          if (done || pinnedRoot !== root || pinnedKey !== key) return;
          done = true;
          swapForLink(f.container, 'x', outside);
        });
        const outcome = await applyChanges([change('container', 'x/y/post-commit', undefined, host.get('x/y/post-commit'))], { roots: f.roots, keepDir: path.join(f.stateDir, 'kept') });
        setPinStepHookForTests(undefined);
        assert.ok(done, `swapped after pinning ${root === f.host ? 'host' : 'container'}:${key || '(root)'}`);
        assert.equal(fingerprint(outside), before, `outside unchanged when swapped after ${key || '(root)'}: ${JSON.stringify(outcome.skipped)}`);
        assert.equal(openPinnedCount(), 0);
        // Reset: the link goes, the moved folder is dropped.
        renameSync(path.join(f.container, 'x'), path.join(f.base, `link-${Math.random()}`));
        renameSync(path.join(f.container, 'x.moved'), path.join(f.base, `moved-${Math.random()}`));
      }
      mkdirSync(path.join(f.base, 'done'));
    });
  });
});
