import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Preimage } from '../../src/core/undo/records';
import { JOURNAL } from '../../src/core/undo/records';
import { readBlob, readJournal, StepJournal } from '../../src/core/undo/stepJournal';
import { fastTemporaryRoot } from '../helpers/undoTrees';

const folderPre = (mtimeMs: number): Preimage => ({ kind: 'directory', mode: 0o755, uid: 1000, gid: 1000, atimeMs: mtimeMs, mtimeMs, xattrs: null, metadataOnly: true });

describe('unit: undo step journal (pack + journal, group commit)', () => {
  let base: string;
  let journal: StepJournal;
  let directory: string;

  beforeEach(async () => {
    base = mkdtempSync(path.join(fastTemporaryRoot(), 'clud-undo-journal-'));
    directory = path.join(base, 'in-progress', '000001-abcdef');
    journal = new StepJournal(directory, { stepId: '000001-abcdef', root: '/host' });
    await journal.create('{}');
  });
  afterEach(async () => {
    await journal.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('writes a recorded line only in a flush round: before it, a crash would find only the header', async () => {
    const { round } = journal.record({ path: 'a', pre: { kind: 'absent' } });
    assert.deepEqual([...(await readJournal(directory)).preimages], []);
    assert.equal((await readJournal(directory)).header?.root, '/host');
    await journal.durable(round);
    assert.deepEqual([...(await readJournal(directory)).preimages], [['a', { kind: 'absent' }]]);
  });

  it('one round serves every line recorded before it, and later lines get the next round', async () => {
    const first = journal.record({ path: 'a', pre: { kind: 'absent' } });
    const second = journal.record({ path: 'b', pre: { kind: 'absent' } });
    assert.equal(first.round, second.round);
    const flushing = journal.flush();
    const third = journal.record({ path: 'c', pre: { kind: 'absent' } });
    assert.equal(third.round, first.round + 1);
    await flushing;
    assert.deepEqual([...(await readJournal(directory)).preimages.keys()], ['a', 'b']);
    await journal.durable(third.round);
    assert.deepEqual([...(await readJournal(directory)).preimages.keys()], ['a', 'b', 'c']);
  });

  it('a later line for a path replaces the earlier one, and forget removes it', async () => {
    journal.record({ path: 'dir', pre: folderPre(1) });
    journal.record({ path: 'gone', pre: { kind: 'absent' } });
    journal.record({ path: 'dir', pre: folderPre(2) });
    journal.record({ forget: 'gone' });
    await journal.flush();
    const { preimages, ignored } = await readJournal(directory);
    assert.deepEqual([...preimages], [['dir', folderPre(2)]]);
    assert.deepEqual(ignored, []);
  });

  it('packs content one blob after another, each readable on its own, synchronously or not', async () => {
    const contents = [Buffer.from('first file\n'), Buffer.alloc(70_000, 7), Buffer.from('')];
    const refs = [journal.appendSync(gzipSync(contents[0]!)), await journal.append(gzipSync(contents[1]!)), journal.appendSync(gzipSync(contents[2]!))];
    assert.deepEqual(refs.map((ref) => ref.file), ['content.pack', 'content.pack', 'content.pack']);
    assert.equal(refs[1]!.offset, refs[0]!.length);
    await journal.flush();
    for (const [index, ref] of refs.entries()) assert.deepEqual(gunzipSync(await buffer(readBlob(directory, ref))), contents[index]);
  });

  it('ignores a torn last line quietly, and reports a damaged complete line', async () => {
    journal.record({ path: 'a', pre: { kind: 'absent' } });
    await journal.flush();
    await appendFile(path.join(directory, JOURNAL), 'not json\n{"path":"b","pre":{"kind":"absent"}}\n{"path":"c","pre":{"ki');
    const { preimages, ignored } = await readJournal(directory);
    assert.deepEqual([...preimages.keys()], ['a', 'b']);
    assert.deepEqual(ignored, ['ignored line 3 of the journal: not JSON']);
  });

  it('a failed round fails every later one: what reached the disk is unknown', async () => {
    journal.record({ path: 'a', pre: { kind: 'absent' } });
    await journal.close();
    await assert.rejects(journal.flush(), /not created/);
    journal.record({ path: 'b', pre: { kind: 'absent' } });
    await assert.rejects(journal.flush(), /not created/);
    assert.match(await readFile(path.join(directory, JOURNAL), 'utf8'), /^\{"version":\d+,"stepId":"000001-abcdef","root":"\/host"\}\n$/);
  });
});
