import assert from 'node:assert/strict';
import * as path from 'node:path';
import { WalkedKind, WalkedStat, walkTree, type WalkResult } from '../../src/core/sync/treeWalk';
import { walkTreeOnWorker } from '../../src/core/sync/treeWalkWorker';
import { DIR, link, makeTree, useSyncFixture } from '../helpers/syncTrees';

/** A walk as comparable data: each path with its kind, size and link target, in walk order. */
function described(result: WalkResult): unknown {
  if ('problem' in result) return result;
  return result.paths.map((path, index) => {
    const stat = new WalkedStat(result.numbers).moveTo(index);
    return { path, kind: stat.kind, size: stat.kind === WalkedKind.file ? stat.size : undefined, target: result.targets.get(index), mtimeMs: stat.mtimeMs, ino: stat.ino };
  });
}

describe('unit: the rescan\'s tree walk, on this thread and on a worker', () => {
  const fixture = useSyncFixture('clud-walk-');

  it('walks what the rules keep, with metadata and link targets, the same on a worker thread', async () => {
    const f = fixture();
    makeTree(f.host, {
      'a.txt': 'a',
      '.gitignore': 'build/\n*.log\n',
      'debug.log': 'ignored by .gitignore',
      build: DIR,
      'build/out.js': 'not walked',
      node_modules: DIR,
      'node_modules/x/index.js': 'excluded',
      src: DIR,
      'src/deep/x.ts': 'x',
      'src/to-x': link('deep/x.ts'),
      'caf\udce9.txt': 'a name that is not UTF-8',
    });
    const here = await walkTree(f.host, ['node_modules/']);
    const there = await walkTreeOnWorker({ root: f.host, excludes: ['node_modules/'] });
    assert.deepEqual(described(there), described(here));
    const walked = described(here) as Array<{ path: string; kind: number; size?: number; target?: string }>;
    assert.deepEqual(walked.map((path) => path.path).sort(), ['.gitignore', 'a.txt', 'caf\udce9.txt', 'src', 'src/deep', 'src/deep/x.ts', 'src/to-x']);
    const linkWalked = walked.find((path) => path.path === 'src/to-x');
    assert.equal(linkWalked?.kind, WalkedKind.symlink);
    assert.equal(linkWalked?.target, 'deep/x.ts');
    assert.equal(walked.find((path) => path.path === 'src/deep/x.ts')?.size, 1);
    // A folder is walked before what is in it (the judgement skips a subtree by its folder).
    assert.ok(walked.findIndex((path) => path.path === 'src/deep') < walked.findIndex((path) => path.path === 'src/deep/x.ts'));
  });

  it('says why when a folder cannot be listed, on either thread', async () => {
    const f = fixture();
    const expected = { problem: 'cannot list the root: ENOENT' };
    assert.deepEqual(await walkTree(path.join(f.host, 'missing'), []), expected);
    assert.deepEqual(await walkTreeOnWorker({ root: path.join(f.host, 'missing'), excludes: [] }), expected);
  });
});
