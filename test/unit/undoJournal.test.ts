import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { BlobRef, Manifest, Preimage, PreimageOf } from '../../src/core/undo/records';
import { JOURNAL, manifestText, RAW, UNDO_FORMAT_VERSION } from '../../src/core/undo/records';
import type { SizeCheck } from '../../src/core/undo/stepJournal';
import type { CapturedPath } from '../../src/core/undo/packWorker';
import { LARGE_CONTENT_BYTES } from '../../src/core/undo/packWorker';
import { BlobReader, readJournal, StepJournal } from '../../src/core/undo/stepJournal';
import { fastTemporaryRoot } from '../helpers/undoTrees';

const filePre = (size: number): PreimageOf<'file'> => ({ kind: 'file', mode: 0o644, uid: 1000, gid: 1000, atimeMs: 1, mtimeMs: 1, xattrs: null, size, hash: 'h', blob: { file: RAW, offset: 0, length: size, start: 0, size } });

async function readBack(reader: BlobReader, ref: BlobRef): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline([...(await reader.streams(ref)), new Writable({ write: (chunk: Buffer, _encoding, done) => done(void chunks.push(chunk)) })]);
  return Buffer.concat(chunks);
}

const folderPre = (mtimeMs: number): Preimage => ({ kind: 'directory', mode: 0o755, uid: 1000, gid: 1000, atimeMs: mtimeMs, mtimeMs, xattrs: null, metadataOnly: true });

describe('unit: undo step journal (content file + journal, group commit)', () => {
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

  it('a later line for a path replaces the earlier one', async () => {
    journal.record({ path: 'dir', pre: folderPre(1) });
    journal.record({ path: 'new', pre: { kind: 'absent' } });
    journal.record({ path: 'dir', pre: folderPre(2) });
    await journal.flush();
    const { preimages, ignored } = await readJournal(directory);
    assert.deepEqual([...preimages], [['dir', folderPre(2)], ['new', { kind: 'absent' }]]);
    assert.deepEqual(ignored, []);
  });

  it('captures in the worker: each file\'s content is appended as read, hashed, and reads back on its own; other kinds are reported', async () => {
    const files = path.join(base, 'files');
    mkdirSync(files);
    // Small ones gathered in the worker's buffer, a large one written past it, and small ones that
    // no longer fit in the buffer together.
    const contents = [Buffer.from('first file\n'), Buffer.from(''), randomBytes(LARGE_CONTENT_BYTES + 3), Buffer.from('after the large one\n'), ...[1, 2, 3].map(() => randomBytes(400_000))];
    const fileNames = contents.map((_content, index) => `f${index}`);
    contents.forEach((content, index) => writeFileSync(path.join(files, fileNames[index]!), content));
    symlinkSync('f0', path.join(files, 'link'));
    mkdirSync(path.join(files, 'folder'));
    const names = [...fileNames, 'link', 'folder', 'missing', 'missing/below'];
    const found = await journal.capture(names.map((name) => Buffer.from(path.join(files, name))), Number.MAX_SAFE_INTEGER);
    assert.deepEqual(found.map(({ kind }) => kind), [...fileNames.map(() => 'file'), 'symlink', 'directory', 'absent', 'absent']);
    const saved = found.slice(0, contents.length) as Array<Extract<CapturedPath, { kind: 'file' }>>;
    assert.deepEqual(saved.map(({ hash }) => hash), contents.map((content) => createHash('sha256').update(content).digest('hex')));
    const offsets = contents.map((_content, index) => contents.slice(0, index).reduce((sum, earlier) => sum + earlier.length, 0));
    assert.deepEqual(saved.map(({ blob }) => [blob.file, blob.offset, blob.size]), contents.map((content, index) => [RAW, offsets[index], content.length]), 'one after another');
    assert.equal(journal.contentBytes, offsets.at(-1)! + contents.at(-1)!.length);
    assert.equal((found[contents.length] as Extract<CapturedPath, { kind: 'symlink' }>).target.toString(), 'f0');

    saved.forEach(({ blob, hash }, index) => journal.record({ path: `f${index}`, pre: { ...filePre(blob.size), hash, blob } }));
    await journal.flush();
    const reader = new BlobReader(directory);
    for (const [index, { blob }] of saved.entries()) assert.deepEqual(await readBack(reader, blob), contents[index]);
    const { preimages } = await readJournal(directory);
    assert.deepEqual(saved.map((_file, index) => (preimages.get(`f${index}`) as PreimageOf<'file'>).blob), saved.map(({ blob }) => blob), 'lines carry the blobs');
  });

  it('does not read a file larger than the room left; checks each round of lines against the size limit; a refusal fails this and every later round', async () => {
    const checked: Array<[string, number]> = [];
    let refuse = false;
    const check: SizeCheck = (bytes, what) => {
      checked.push([what, bytes]);
      if (refuse) throw new Error('over the limit');
    };
    await journal.close();
    journal = new StepJournal(path.join(base, 'in-progress', '000002-abcdef'), { stepId: '000002-abcdef', root: '/host' }, check);
    await journal.create('{}');
    writeFileSync(path.join(base, 'big'), Buffer.alloc(1000, 1));
    const [first] = await journal.capture([Buffer.from(path.join(base, 'big'))], 1500);
    assert.equal(first!.kind, 'file');
    const [second] = await journal.capture([Buffer.from(path.join(base, 'big'))], 1500);
    assert.equal(second!.kind, 'too-large', 'only 500 bytes of room were left');
    assert.equal(journal.contentBytes, 1000);
    journal.record({ path: 'a', pre: { kind: 'absent' } });
    await journal.flush();
    assert.deepEqual(checked, [['records', Buffer.byteLength(`${JSON.stringify({ path: 'a', pre: { kind: 'absent' } })}\n`)]]);

    refuse = true;
    journal.record({ path: 'b', pre: { kind: 'absent' } });
    await assert.rejects(journal.flush(), /over the limit/);
    refuse = false;
    await assert.rejects(journal.flush(), /over the limit/);
    await assert.rejects(journal.capture([Buffer.from(path.join(base, 'big'))], 1500), /over the limit/);
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

describe('unit: a closed step manifest\'s text (manifestText)', () => {
  const manifest = (root: string): Manifest => ({ version: UNDO_FORMAT_VERSION, id: '000001-abcdef', syncId: 's', policy: 'pull', root, startedAt: 't', closedAt: 't', protected: true, paths: 1, bytes: 123, notes: [], records: [{ path: 'a', pre: filePre(3) }] });
  const base = Buffer.byteLength(JSON.stringify({ ...manifest('/host'), bytes: 0 })) - 1;
  // The count's own digits are part of what it counts: totals just below and above 10, 100, 1000 and 10000 bytes.
  const cases: Array<[string, number, string]> = [];
  for (const total of [base + 1, 99, 100, 999, 1000, 9999, 10_000, 10_001, 123_456_789]) {
    for (const digits of [1, 2, 3, 4, 5, 9]) if (total - base - digits >= 0) cases.push([`${total - base - digits} bytes of other files`, total - base - digits, '/host']);
  }
  cases.push(['a root whose text looks like the field', 500, '/h/"bytes":0,"x"'], ['a root of characters over one byte', 500, '/hôst/ünïcode/日本']);
  for (const [name, filesBytes, root] of cases) {
    it(name, () => {
      const value = manifest(root);
      const text = manifestText(value, filesBytes);
      assert.equal(value.bytes, filesBytes + Buffer.byteLength(text), 'the count is the other files and the text itself');
      assert.deepEqual(JSON.parse(text), value, 'the text is the manifest, with the count');
    });
  }
});
