// Which link targets may lead out of the synced folder, from their text alone (linksLeavingFolder.ts).
import assert from 'node:assert/strict';
import { hostLinkLeavingFolder, linkMayLeaveFolder, withoutLinksLeavingFolder } from '../../src/core/sync/linksLeavingFolder';
import type { Change } from '../../src/core/sync/reconcile';

describe('unit: links that may leave the folder', () => {
  const table: Array<[path: string, target: string, leaves: boolean]> = [
    ['link', 'file.txt', false],
    ['link', './a/./b', false],
    ['link', '.', false],
    ['link', '', false],
    ['a/b/link', '../../c', false],
    ['a/b/link', '../../../c', true],
    ['link', '..', true],
    ['link', '../x', true],
    ['link', '/etc/passwd', true],
    ['a/link', '/a/file', true],
    // A `..` after a name: the name may itself be a link (`self -> .`), so it is judged as leaving.
    ['link', 'self/../x', true],
    ['a/b/link', 'c/../..', true],
    ['a/link', '../a/../b', true],
    ['a/link', '..//b', false],
  ];
  for (const [path, target, leaves] of table) {
    it(`${path} -> ${JSON.stringify(target)}: ${leaves ? 'may leave' : 'stays inside'}`, () => {
      assert.equal(linkMayLeaveFolder(path, target), leaves);
    });
  }

  it('takes out only the changes that would write such a link into the host, with their agreed entries', () => {
    const link = (target: string) => ({ kind: 'symlink', target }) as const;
    const file = { kind: 'file', size: 1, mtimeMs: 1, mode: 0o644, hash: 'h' } as const;
    const changes: Change[] = [
      { path: 'out', side: 'host', expected: undefined, next: link('/etc') },
      { path: 'out', side: 'container', expected: undefined, next: link('/etc') },
      { path: 'in', side: 'host', expected: file, next: link('f') },
      { path: 'gone', side: 'host', expected: link('/etc'), next: undefined },
      { path: 'f', side: 'host', expected: undefined, next: file },
    ];
    const ancestorUpdates = new Map(changes.map((change) => [change.path, change.next]));
    const result = withoutLinksLeavingFolder({ changes, ancestorUpdates });
    assert.deepEqual(result.refused, [{ path: 'out', target: '/etc' }]);
    assert.deepEqual(result.changes, changes.slice(1));
    assert.deepEqual([...result.ancestorUpdates.keys()], ['in', 'gone', 'f']);
    assert.equal(ancestorUpdates.size, 4, 'the given map is left as it was');
    assert.equal(hostLinkLeavingFolder(changes[1]!), undefined, 'a link written into the container is not judged');
  });
});
