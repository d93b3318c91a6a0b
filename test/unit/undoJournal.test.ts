import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { BlobRef, Preimage, PreimageOf } from '../../src/core/undo/records';
import { JOURNAL } from '../../src/core/undo/records';
import type { SizeCheck } from '../../src/core/undo/stepJournal';
import { BlobReader, FRAME_BYTES, readJournal, StepJournal, UNSEALED } from '../../src/core/undo/stepJournal';
import { fastTemporaryRoot } from '../helpers/undoTrees';

const filePre = (size: number): PreimageOf<'file'> => ({ kind: 'file', mode: 0o644, uid: 1000, gid: 1000, atimeMs: 1, mtimeMs: 1, xattrs: null, size, hash: 'h', blob: UNSEALED });

async function readBack(reader: BlobReader, ref: BlobRef): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline([...(await reader.streams(ref)), new Writable({ write: (chunk: Buffer, _encoding, done) => done(void chunks.push(chunk)) })]);
  return Buffer.concat(chunks);
}

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
    const round = journal.record({ path: 'a', pre: { kind: 'absent' } });
    assert.deepEqual([...(await readJournal(directory)).preimages], []);
    assert.equal((await readJournal(directory)).header?.root, '/host');
    await journal.durable(round);
    assert.deepEqual([...(await readJournal(directory)).preimages], [['a', { kind: 'absent' }]]);
  });

  it('one round serves every line recorded before it, and later lines get the next round', async () => {
    const first = journal.record({ path: 'a', pre: { kind: 'absent' } });
    const second = journal.record({ path: 'b', pre: { kind: 'absent' } });
    assert.equal(first, second);
    const flushing = journal.flush();
    const third = journal.record({ path: 'c', pre: { kind: 'absent' } });
    assert.equal(third, first + 1);
    await flushing;
    assert.deepEqual([...(await readJournal(directory)).preimages.keys()], ['a', 'b']);
    await journal.durable(third);
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

  it('packs contents into frames: a blob is set when its frame is sealed (once full, or at the next round), and reads back on its own', async () => {
    const contents = [Buffer.from('first file\n'), Buffer.from(''), randomBytes(FRAME_BYTES), Buffer.from('after the first frame\n')];
    const pres = contents.map((content) => filePre(content.length));
    journal.packContent(contents[0]!, pres[0]!);
    journal.packContent(contents[1]!, pres[1]!);
    assert.equal(pres[0]!.blob, UNSEALED, 'the frame is not full yet');
    journal.packContent(contents[2]!, pres[2]!);
    assert.deepEqual(pres.slice(0, 3).map(({ blob }) => [blob.offset, blob.start, blob.size]), [[0, 0, 11], [0, 11, 0], [0, 11, FRAME_BYTES]], 'one frame, sealed once full');
    journal.packContent(contents[3]!, pres[3]!);
    pres.forEach((pre, index) => journal.record({ path: `f${index}`, pre }));
    assert.equal(pres[3]!.blob, UNSEALED);
    await journal.flush();
    assert.equal(pres[3]!.blob.offset, pres[0]!.blob.length, 'the round sealed a second frame after the first');

    const reader = new BlobReader(directory);
    for (const [index, pre] of pres.entries()) assert.deepEqual(await readBack(reader, pre.blob), contents[index]);
    const { preimages } = await readJournal(directory);
    assert.deepEqual(pres.map((_pre, index) => (preimages.get(`f${index}`) as PreimageOf<'file'>).blob), pres.map(({ blob }) => blob), 'lines carry the sealed blobs');
  });

  it('checks each sealed frame and each round of lines against the size limit; a refusal fails this and every later round', async () => {
    const checked: Array<[string, number]> = [];
    let refuse = false;
    const check: SizeCheck = (bytes, what) => {
      checked.push([what, bytes]);
      if (refuse) throw new Error('over the limit');
    };
    await journal.close();
    journal = new StepJournal(path.join(base, 'in-progress', '000002-abcdef'), { stepId: '000002-abcdef', root: '/host' }, check);
    await journal.create('{}');
    journal.packContent(Buffer.alloc(1000, 1), filePre(1000));
    journal.record({ path: 'a', pre: { kind: 'absent' } });
    await journal.flush();
    assert.deepEqual(checked.map(([what]) => what), ['saved content', 'records']);
    assert.ok(checked[0]![1] < 100, 'the compressed size of the frame');
    assert.equal(checked[1]![1], Buffer.byteLength(`${JSON.stringify({ path: 'a', pre: { kind: 'absent' } })}\n`));

    refuse = true;
    journal.packContent(Buffer.alloc(1000, 2), filePre(1000));
    await assert.rejects(journal.flush(), /over the limit/);
    refuse = false;
    await assert.rejects(journal.flush(), /over the limit/);
    assert.throws(() => journal.packContent(Buffer.alloc(10), filePre(10)), /over the limit/);
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
