// What a step's captures come to when it closes, and its size against the single-step limit
// (stepRecords.ts: pure, a table of cases each).
import assert from 'node:assert/strict';
import type { Preimage } from '../../src/core/undo/records';
import { Manifest, UNDO_FORMAT_VERSION, UnprotectedMarker } from '../../src/core/undo/records';
import { changedCount, contentLimit, countedRecords, overLimitReason, overStepLimit, withoutUnchanged } from '../../src/core/undo/stepRecords';

const inode = { mode: 0o644, uid: 0, gid: 0, atimeMs: 1, mtimeMs: 2, xattrs: null };
const file: Preimage = { kind: 'file', ...inode, size: 1, hash: 'h', blob: { file: 'content.raw', offset: 0, length: 1, start: 0, size: 1 } };
const folder: Preimage = { kind: 'directory', ...inode, mode: 0o755, metadataOnly: false };
const parentFolder: Preimage = { ...folder, metadataOnly: true };
const absent: Preimage = { kind: 'absent' };

describe('unit: undo step records', () => {
  describe('countedRecords: the records of the changed paths and their parents', () => {
    const cases: Array<{ description: string; captures: Array<[string, Preimage]>; changed: string[]; expected: Array<[string, Preimage]> }> = [
      { description: 'nothing changed: nothing counts', captures: [['', parentFolder], ['a', file]], changed: [], expected: [] },
      {
        description: 'a changed path counts as captured, its parents as recorded',
        captures: [['', parentFolder], ['d', parentFolder], ['d/f', file]],
        changed: ['d/f'],
        expected: [['d/f', file], ['d', parentFolder], ['', parentFolder]],
      },
      {
        description: 'a path captured and never changed does not count',
        captures: [['', parentFolder], ['a', file], ['b', file]],
        changed: ['a'],
        expected: [['a', file], ['', parentFolder]],
      },
      {
        description: 'a folder captured for a change of its own that it did not get counts only as the parent of a changed path: by its mode and times',
        captures: [['', parentFolder], ['d', folder], ['d/f', file], ['e', folder]],
        changed: ['d/f'],
        expected: [['d/f', file], ['d', parentFolder], ['', parentFolder]],
      },
      {
        description: 'a missing parent counts as created by the step; a file above nothing changed does not',
        captures: [['', parentFolder], ['n', absent], ['n/f', file], ['x', file]],
        changed: ['n/f'],
        expected: [['n/f', file], ['n', absent], ['', parentFolder]],
      },
      {
        description: 'a folder changed itself after a path inside it keeps its own record',
        captures: [['', parentFolder], ['d', folder], ['d/f', file]],
        changed: ['d/f', 'd'],
        expected: [['d/f', file], ['d', folder], ['', parentFolder]],
      },
      {
        description: 'a path changed that could not be captured has no record (it was not changed)',
        captures: [['', parentFolder], ['a', file]],
        changed: ['a', 'gone'],
        expected: [['a', file], ['', parentFolder]],
      },
      {
        description: 'a folder recorded only as a parent makes no parents of its own count',
        captures: [['', parentFolder], ['d', parentFolder]],
        changed: ['d'],
        expected: [['d', parentFolder]],
      },
    ];
    for (const { description, captures, changed, expected } of cases) {
      it(description, () => assert.deepEqual([...countedRecords(new Map(captures.map(([key, pre]) => [key, { pre }])), changed)], expected));
    }
  });

  describe('withoutUnchanged and changedCount: what the manifest records and counts', () => {
    const cases: Array<{ description: string; records: Array<[string, Preimage]>; leftAbsent: string[]; expected: string[]; changed: number }> = [
      { description: 'nothing recorded', records: [], leftAbsent: [], expected: [], changed: 0 },
      {
        description: 'a path the step created stays; one it left absent goes, with the parents of nothing',
        records: [['', parentFolder], ['made', absent], ['d', parentFolder], ['d/gone', absent]],
        leftAbsent: ['d/gone'],
        expected: ['', 'made'],
        changed: 1,
      },
      {
        description: 'a changed file keeps every parent up to the root; folders count as changed, parents do not',
        records: [['', parentFolder], ['a', parentFolder], ['a/b', folder], ['a/b/f', file], ['z', parentFolder]],
        leftAbsent: [],
        expected: ['', 'a', 'a/b', 'a/b/f'],
        changed: 2,
      },
      {
        description: 'a path that existed before is kept whatever is there now',
        records: [['', parentFolder], ['f', file]],
        leftAbsent: ['f'],
        expected: ['', 'f'],
        changed: 1,
      },
    ];
    for (const { description, records, leftAbsent, expected, changed } of cases) {
      it(description, () => {
        const kept = withoutUnchanged(new Map(records), (key) => leftAbsent.includes(key));
        assert.deepEqual([...kept.keys()], expected);
        assert.equal(changedCount(kept), changed);
      });
    }
  });

  describe('the single-step limit', () => {
    const cases: Array<{ description: string; recordBytes: number; contentBytes: number; max: number; over: boolean; room: number }> = [
      { description: 'an empty step', recordBytes: 0, contentBytes: 0, max: 100, over: false, room: 100 },
      { description: 'records and content exactly at the limit are within it', recordBytes: 40, contentBytes: 60, max: 100, over: false, room: 60 },
      { description: 'one byte over', recordBytes: 41, contentBytes: 60, max: 100, over: true, room: 59 },
      { description: 'records alone over the limit leave no room for content', recordBytes: 150, contentBytes: 0, max: 100, over: true, room: 0 },
    ];
    for (const { description, recordBytes, contentBytes, max, over, room } of cases) {
      it(description, () => {
        assert.equal(overStepLimit({ recordBytes, contentBytes }, max), over);
        assert.equal(contentLimit(recordBytes, max), room);
      });
    }
    it('says what went over which limit', () => assert.equal(overLimitReason('saved content', 256 * 1024 ** 2), "the step's saved content went over the 256 MiB limit of one step"));
  });

  describe('the count of changed paths on disk', () => {
    const manifest = { version: UNDO_FORMAT_VERSION, id: '000001-abcdef', syncId: 's', policy: 'pull', root: '/host', startedAt: 't', closedAt: 't', protected: true, bytes: 1, notes: [], records: [] };
    it('a manifest reads its `paths`', () => assert.equal(Manifest.parse({ ...manifest, paths: 3 }).paths, 3));
    it('a manifest of an older log, which called the count `files`, reads as `paths`', () => assert.equal(Manifest.parse({ ...manifest, files: 3 }).paths, 3));
    it('an unprotected marker of an older log too', () => assert.deepEqual(UnprotectedMarker.parse({ reason: 'r', files: 2 }), { reason: 'r', paths: 2 }));
    it('a manifest with neither is not one', () => assert.equal(Manifest.safeParse(manifest).success, false));
  });
});
