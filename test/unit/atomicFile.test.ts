import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from '../../src/core/atomicFile';
import { inodeOf } from '../helpers/syncTrees';
import { useTempDir } from '../helpers/tempDir';

const Schema = z.object({ name: z.string(), count: z.number().int().default(0) });

describe('unit: atomicFile', () => {
  const tempDir = useTempDir('clud-atomic-');

  describe('writeFileAtomic', () => {
    it('writes a string or a Buffer, creating the parent folders', async () => {
      const dir = tempDir();
      await writeFileAtomic(path.join(dir, 'a/b/text.json'), 'héllo');
      await writeFileAtomic(path.join(dir, 'bytes.bin'), Buffer.from([0, 0xff, 0x80]));
      assert.equal(readFileSync(path.join(dir, 'a/b/text.json'), 'utf8'), 'héllo');
      assert.deepEqual([...readFileSync(path.join(dir, 'bytes.bin'))], [0, 0xff, 0x80]);
    });

    it('replaces an existing file by rename: a reader of the old file still reads it whole, and no temporary file is left', async () => {
      const dir = tempDir();
      const file = path.join(dir, 'state.json');
      writeFileSync(file, 'old state');
      const inodeBefore = inodeOf(dir, 'state.json');
      const reader = openSync(file, 'r');
      try {
        await writeFileAtomic(file, 'new state, longer than the old one');

        assert.equal(readFileSync(file, 'utf8'), 'new state, longer than the old one');
        assert.notEqual(inodeOf(dir, 'state.json'), inodeBefore);
        const buffer = Buffer.alloc(100);
        assert.equal(buffer.toString('utf8', 0, readSync(reader, buffer, 0, 100, 0)), 'old state');
        assert.deepEqual(readdirSync(dir), ['state.json']);
      } finally {
        closeSync(reader);
      }
    });

    it('ends concurrent writes with one of them whole and no temporary file', async () => {
      const dir = tempDir();
      const file = path.join(dir, 'state.json');
      const contents = Array.from({ length: 10 }, (_, index) => String(index).repeat(10_000 + index));

      await Promise.all(contents.map((content) => writeFileAtomic(file, content)));

      assert.ok(contents.includes(readFileSync(file, 'utf8')), 'the file holds one whole write');
      assert.deepEqual(readdirSync(dir), ['state.json']);
    });

    it('fails when the rename fails, removing its temporary file', async () => {
      const dir = tempDir();
      const target = path.join(dir, 'occupied');
      mkdirSync(path.join(target, 'child'), { recursive: true });

      await assert.rejects(writeFileAtomic(target, 'x'), (error: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(error.code ?? ''));

      assert.deepEqual(readdirSync(dir), ['occupied']);
      assert.deepEqual(readdirSync(target), ['child']);
    });
  });

  describe('writeJsonAtomic and readJsonFile', () => {
    it('round-trips a value, applying the schema defaults on the way back', async () => {
      const file = path.join(tempDir(), 'value.json');
      await writeJsonAtomic(file, { name: 'x' });
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { name: 'x' });
      assert.deepEqual(await readJsonFile(file, Schema), { name: 'x', count: 0 });
    });

    it('reads an absent file as undefined', async () => {
      assert.equal(await readJsonFile(path.join(tempDir(), 'missing.json'), Schema), undefined);
    });

    it('rejects a file that is not JSON, naming the file', async () => {
      const file = path.join(tempDir(), 'broken.json');
      writeFileSync(file, '{"name": "x"');
      await assert.rejects(readJsonFile(file, Schema), (error: Error) => error.message === `state file ${file} is not valid JSON`);
    });

    it('rejects JSON of the wrong shape, naming the file and the field', async () => {
      const file = path.join(tempDir(), 'wrong.json');
      writeFileSync(file, '{"name": 5}');
      await assert.rejects(readJsonFile(file, Schema), (error: Error) => error.message.startsWith(`state file ${file} is invalid: `) && error.message.includes('name'));
    });

    it('passes on an error other than "absent", such as a folder where the file should be', async () => {
      const dir = tempDir();
      await assert.rejects(readJsonFile(dir, Schema), (error: NodeJS.ErrnoException) => error.code === 'EISDIR');
    });
  });
});
