// What a capture comes to (src/core/undo/captures.ts: pure, a table of cases each): the preimage
// of what the capture worker found, the version it saved, and whether a path is still as its
// capture found it when its change begins (if not, the recorder captures it again).
import assert from 'node:assert/strict';
import type { CapturedPath, CapturedStats } from '../../src/core/undo/packWorker';
import type { Preimage } from '../../src/core/undo/records';
import { preimageOf, unchangedSince, versionOf } from '../../src/core/undo/captures';
import type { StatsNow } from '../../src/core/undo/captures';

const stats: CapturedStats = { dev: 1, ino: 10, mode: 0o100644, uid: 1000, gid: 1000, size: 5, atimeMs: 1, mtimeMs: 2, ctimeMs: 3 };
const folderStats: CapturedStats = { ...stats, ino: 11, mode: 0o40755, size: 4096 };
const blob = { file: 'content.raw', offset: 0, length: 5, start: 0, size: 5 };
const owner = { uid: 1000, gid: 1000, atimeMs: 1, mtimeMs: 2 };
const file: Preimage = { kind: 'file', mode: 0o644, ...owner, xattrs: null, size: 5, hash: 'h', blob };
const folder: Preimage = { kind: 'directory', mode: 0o755, ...owner, xattrs: null, metadataOnly: false };
const now = (changes: Partial<CapturedStats>, base = stats): StatsNow => ({ ...base, ...changes, isDirectory: () => ((changes.mode ?? base.mode) & 0o170000) === 0o40000 });

describe('unit: undo captures', () => {
  describe('preimageOf: what the capture worker found, as a preimage', () => {
    const cases: Array<{ description: string; found: CapturedPath; expected: Preimage }> = [
      { description: 'nothing there', found: { kind: 'absent' }, expected: { kind: 'absent' } },
      { description: 'a file: its permission bits, owner, times, and the content saved', found: { kind: 'file', stats, hash: 'h', blob }, expected: file },
      { description: 'a link: its target', found: { kind: 'symlink', stats, target: Buffer.from('../a') }, expected: { kind: 'symlink', mode: 0o644, ...owner, xattrs: null, target: '../a' } },
      { description: 'a folder: its own preimage, not a parent\'s record', found: { kind: 'directory', stats: folderStats }, expected: folder },
    ];
    for (const { description, found, expected } of cases) it(description, () => assert.deepEqual(preimageOf('p', found), expected));

    it('refuses what it cannot capture, naming the path: an error, a device or socket', () => {
      assert.throws(() => preimageOf('a/b', { kind: 'error', message: 'EACCES' }), /^Error: a\/b: EACCES$/);
      assert.throws(() => preimageOf('fifo', { kind: 'other', stats }), /fifo is neither a file, a folder nor a link/);
    });
  });

  describe('versionOf: the version a preimage saved', () => {
    const cases: Array<[Preimage, unknown]> = [
      [file, { kind: 'file', hash: 'h' }],
      [{ kind: 'symlink', mode: 0o777, ...owner, xattrs: null, target: 't' }, { kind: 'symlink', target: 't' }],
      [folder, { kind: 'directory' }],
      [{ kind: 'absent' }, { kind: 'absent' }],
    ];
    for (const [pre, expected] of cases) it(`${pre.kind}`, () => assert.deepEqual(versionOf(pre), expected));
  });

  describe('unchangedSince: is the path still as its capture found it?', () => {
    const cases: Array<{ description: string; capture: { pre: Preimage; stats?: CapturedStats }; found: StatsNow | undefined; unchanged: boolean }> = [
      { description: 'a file with every stat the same', capture: { pre: file, stats }, found: now({}), unchanged: true },
      { description: 'a file whose ctime moved (content, mode, owner or xattrs changed in place)', capture: { pre: file, stats }, found: now({ ctimeMs: 4 }), unchanged: false },
      { description: 'a file rewritten with the same size and mtime set back, ctime moved', capture: { pre: file, stats }, found: now({ ctimeMs: 9 }), unchanged: false },
      { description: 'a file that grew', capture: { pre: file, stats }, found: now({ size: 6 }), unchanged: false },
      { description: 'a file with a new mtime', capture: { pre: file, stats }, found: now({ mtimeMs: 5 }), unchanged: false },
      { description: 'another file under the same name (a new inode)', capture: { pre: file, stats }, found: now({ ino: 99 }), unchanged: false },
      { description: 'a file whose owner changed', capture: { pre: file, stats }, found: now({ uid: 0 }), unchanged: false },
      { description: 'a file that went', capture: { pre: file, stats }, found: undefined, unchanged: false },
      { description: 'a folder whose times moved (the step changed something inside it)', capture: { pre: folder, stats: folderStats }, found: now({ mtimeMs: 50, ctimeMs: 50, size: 8192 }, folderStats), unchanged: true },
      { description: 'a folder whose mode changed', capture: { pre: folder, stats: folderStats }, found: now({ mode: 0o40700 }, folderStats), unchanged: false },
      { description: 'a folder replaced by a file on the same inode number', capture: { pre: folder, stats: folderStats }, found: now({ mode: 0o100755 }, folderStats), unchanged: false },
      { description: 'nothing then and nothing now', capture: { pre: { kind: 'absent' } }, found: undefined, unchanged: true },
      { description: 'nothing then, something now', capture: { pre: { kind: 'absent' } }, found: now({}), unchanged: false },
      { description: 'a parent\'s record (no stats of its own capture): never taken as unchanged', capture: { pre: { ...folder, metadataOnly: true } }, found: now({}, folderStats), unchanged: false },
    ];
    for (const { description, capture, found, unchanged } of cases) it(`${description}: ${unchanged ? 'unchanged' : 'changed'}`, () => assert.equal(unchangedSince(capture, found), unchanged));
  });
});
