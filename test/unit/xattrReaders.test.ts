import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { arch } from 'node:os';
import * as path from 'node:path';
import { GetfattrReader } from '../../src/core/undo/getfattrReader';
import { SCRIPT_FILE, SyscallXattrReader, syscallReaderUsable } from '../../src/core/undo/syscallXattrReader';
import type { Xattrs } from '../../src/core/undo/xattrs';
import { useTempDir } from '../helpers/tempDir';

function setfattr(target: Buffer, name: string, value: string, noDereference = false): void {
  const result = spawnSync('setfattr', [...(noDereference ? ['-h'] : []), '-n', name, '-v', value, target.toString()], { encoding: 'utf8' });
  assert.equal(result.status, 0, `setfattr ${name}: ${result.stderr}`);
}

describe('unit: extended attribute readers', () => {
  const tempDir = useTempDir('clud-xattr-');

  it("the syscall reader's perl script compiles (perl -c)", () => {
    const result = spawnSync('perl', ['-c', SCRIPT_FILE], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /syntax OK/);
  });

  it('the syscall reader runs here (perl and a known architecture)', async function () {
    // Elsewhere the getfattr reader is the one in use, and this says nothing.
    if (!['x64', 'arm64'].includes(arch())) this.skip();
    assert.equal(await syscallReaderUsable(), true);
  });

  it('the syscall reader finds what getfattr finds: names, binary and empty values, links, folders, odd names, missing paths', async () => {
    const root = tempDir();
    const at = (name: string | Buffer) => Buffer.concat([Buffer.from(`${root}/`), Buffer.isBuffer(name) ? name : Buffer.from(name)]);
    writeFileSync(at('plain.txt'), 'no attributes');
    writeFileSync(at('with.txt'), 'attributes');
    setfattr(at('with.txt'), 'user.text', 'hello');
    setfattr(at('with.txt'), 'user.binary', '0x00ff10');
    setfattr(at('with.txt'), 'user.empty', '');
    mkdirSync(at('folder'));
    setfattr(at('folder'), 'user.folder', 'documentation');
    symlinkSync('with.txt', path.join(root, 'link'));
    setfattr(at('link'), 'trusted.link', 'on the link itself', true);
    const odd = Buffer.concat([Buffer.from('odd \n name '), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);
    writeFileSync(at(odd), 'odd');
    // setfattr takes its path as an argument, which cannot hold these bytes: a hard link can.
    linkSync(at(odd), at('odd-alias'));
    setfattr(at('odd-alias'), 'user.odd', 'yes');
    const paths = [at('plain.txt'), at('with.txt'), at('folder'), at('link'), at(odd), at('missing')];

    const syscall = new SyscallXattrReader();
    const found = await Promise.all(paths.map((target) => syscall.read(target)));
    const expected: Array<Xattrs | undefined> = [
      [],
      [
        ['user.binary', Buffer.from([0x00, 0xff, 0x10]).toString('base64')],
        ['user.empty', ''],
        ['user.text', Buffer.from('hello').toString('base64')],
      ],
      [['user.folder', Buffer.from('documentation').toString('base64')]],
      [['trusted.link', Buffer.from('on the link itself').toString('base64')]],
      [['user.odd', Buffer.from('yes').toString('base64')]],
      undefined,
    ];
    assert.deepEqual(found, expected);
    // getfattr's line protocol cannot carry the name with a newline: compare the others.
    const getfattr = new GetfattrReader();
    const byGetfattr = await Promise.all(paths.map((target, index) => (index === 4 ? Promise.resolve(expected[4]) : getfattr.read(target))));
    assert.deepEqual(byGetfattr, expected);
  });

  it('the syscall reader answers many paths asked at once, in order, and keeps answering after a burst', async () => {
    const root = tempDir();
    const paths = Array.from({ length: 300 }, (_, index) => {
      const target = Buffer.from(path.join(root, `f${index}`));
      writeFileSync(target, String(index));
      if (index % 7 === 0) setfattr(target, 'user.index', String(index));
      return target;
    });
    const reader = new SyscallXattrReader();
    const found = await Promise.all(paths.map((target) => reader.read(target)));
    found.forEach((attributes, index) => assert.deepEqual(attributes, index % 7 === 0 ? [['user.index', Buffer.from(String(index)).toString('base64')]] : [], `f${index}`));
    assert.deepEqual(await reader.read(paths[7]!), [['user.index', Buffer.from('7').toString('base64')]]);
    // In batches with one promise each, interleaved with single reads, a missing path among them.
    const missing = Buffer.from(path.join(root, 'missing'));
    const [first, single, second] = await Promise.all([reader.readMany(paths.slice(0, 150)), reader.read(paths[14]!), reader.readMany([...paths.slice(150), missing])]);
    assert.deepEqual([...first, ...second.slice(0, -1)], found);
    assert.deepEqual(single, found[14]);
    assert.equal(second.at(-1), undefined, 'a missing path has no attributes to read');
    assert.deepEqual(await reader.readMany([]), []);
  });
});
