// The initial copy's one pass (scan and tar stream) on real folders, unpacked by the real GNU tar.
// The container's own run (as the workspace user, /clud/host to /workspace) is covered by the
// integration tests (basics, secrets, unreadableFile, ownership).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { copyTree, recordCopiedState } from '../../src/agent/initialCopy';
import { nameFromBytes } from '../../src/core/files/pathCodec';
import { SyncStateStore } from '../../src/core/sync/stateStore';
import { useTempDir } from '../helpers/tempDir';
import { pastTimestampTick } from '../helpers/syncTrees';

const RECEIVER = (target: string) => ['tar', '--extract', '--file=-', `--directory=${target}`, '--preserve-permissions', '--no-same-owner', '--delay-directory-restore'];
const sha256 = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex');
/** Bigger than what the scan holds in memory for the secret check: read again by the copy. */
const BIG = Buffer.alloc(300 * 1024, 'b');
const ODD_NAME = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('.txt')]); // Latin-1, not UTF-8

function makeSource(root: string): void {
  mkdirSync(path.join(root, 'src/deep/er'), { recursive: true });
  writeFileSync(path.join(root, 'src/index.ts'), 'export {};\n');
  writeFileSync(path.join(root, 'src/deep/er/leaf.txt'), 'leaf\n');
  writeFileSync(path.join(root, 'run.sh'), '#!/bin/sh\n');
  chmodSync(path.join(root, 'run.sh'), 0o755);
  writeFileSync(path.join(root, 'big.bin'), BIG);
  writeFileSync(Buffer.concat([Buffer.from(`${root}/`), ODD_NAME]), 'odd\n');
  symlinkSync('src/index.ts', path.join(root, 'link'));
  writeFileSync(path.join(root, '.gitignore'), 'build/\n');
  mkdirSync(path.join(root, 'build'));
  writeFileSync(path.join(root, 'build/out.js'), 'built\n');
  writeFileSync(path.join(root, '.env'), 'TOKEN=x\n'); // a secret by its name
  writeFileSync(path.join(root, 'key.txt'), `-----BEGIN OPENSSH PRIVATE KEY-----\n${'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW'.repeat(2)}\n-----END OPENSSH PRIVATE KEY-----\n`); // by its content
  writeFileSync(path.join(root, 'private.txt'), 'mine\n');
  chmodSync(path.join(root, 'private.txt'), 0o600);
  mkdirSync(path.join(root, 'locked'));
  writeFileSync(path.join(root, 'locked/inside.txt'), 'x\n');
  chmodSync(path.join(root, 'locked'), 0o700);
  utimesSync(path.join(root, 'src/deep'), 1_600_000_000, 1_600_000_000.25);
}

/** Every path under `root`, sorted, as strings. */
function listTree(root: string, prefix = ''): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(Buffer.from(path.join(root, prefix)), { encoding: 'buffer', withFileTypes: true })) {
    const relative = prefix === '' ? entry.name.toString('latin1') : `${prefix}/${entry.name.toString('latin1')}`;
    names.push(relative);
    if (entry.isDirectory()) names.push(...listTree(root, relative));
  }
  return names.sort();
}

describe('initial copy: copyTree', () => {
  const temp = useTempDir('clud-initial-copy-');
  // Read as a user other than the files' owner (the tests may run as root): private.txt and
  // locked/ are unreadable to it by their modes, as the host folder's owner's are in the container.
  const stranger = { uid: 4242, gids: [4242] };

  it('copies exactly what the scan keeps, byte for byte with modes and times, and returns it as the agreed state', async () => {
    const source = path.join(temp(), 'source');
    const target = path.join(temp(), 'target');
    mkdirSync(source);
    mkdirSync(target);
    makeSource(source);
    const copy = await copyTree({ source, receiver: RECEIVER(target), scan: { excludes: [], accessAs: stranger } });
    assert.deepEqual(copy.errors, []);
    const expected = ['.gitignore', 'big.bin', 'caf\u00e9.txt', 'link', 'run.sh', 'src', 'src/deep', 'src/deep/er', 'src/deep/er/leaf.txt', 'src/index.ts'];
    assert.deepEqual(listTree(target), expected);
    assert.deepEqual(readFileSync(path.join(target, 'big.bin')), BIG);
    assert.equal(readFileSync(Buffer.concat([Buffer.from(`${target}/`), ODD_NAME]), 'utf8'), 'odd\n');
    assert.equal(readlinkSync(path.join(target, 'link')), 'src/index.ts');
    assert.equal(lstatSync(path.join(target, 'run.sh')).mode & 0o777, 0o755);
    assert.equal(lstatSync(path.join(target, 'src/deep')).mtimeMs, lstatSync(path.join(source, 'src/deep')).mtimeMs);
    assert.equal(lstatSync(path.join(target, 'big.bin')).mtimeMs, lstatSync(path.join(source, 'big.bin')).mtimeMs);
    // Kept out: ignored, secrets by name and content; not copied: what the stranger cannot read.
    assert.deepEqual(copy.scan.keptOut.map((kept) => kept.path), ['.env', 'key.txt']);
    assert.deepEqual(copy.scan.problems.map((problem) => problem.path).sort(), ['locked', 'private.txt']);
    assert.deepEqual([...copy.agreed.keys()].sort(), ['.gitignore', 'big.bin', nameFromBytes(ODD_NAME), 'link', 'run.sh', 'src', 'src/deep', 'src/deep/er', 'src/deep/er/leaf.txt', 'src/index.ts'].sort());
    const big = copy.agreed.get('big.bin');
    assert.ok(big?.kind === 'file' && big.hash === sha256(BIG));
    assert.equal(copy.files, 6);
    assert.equal(copy.bytes, [...copy.agreed.values()].reduce((sum, entry) => sum + (entry.kind === 'file' ? entry.size : 0), 0));
  });

  it('copies the files a previous cache spares hashing by reading them, and records both caches for the first sync', async () => {
    const source = path.join(temp(), 'source');
    mkdirSync(source);
    makeSource(source);
    await pastTimestampTick();
    // A first pass whose archive is thrown away: only its scan's cache is wanted.
    const warm = await copyTree({ source, receiver: ['sh', '-c', 'cat > /dev/null'], scan: { excludes: [] } });
    const target = path.join(temp(), 'target');
    mkdirSync(target);
    const copy = await copyTree({ source, receiver: RECEIVER(target), scan: { excludes: [], cache: warm.scan.cache } });
    assert.deepEqual(copy.errors, []);
    assert.equal(copy.scan.stats.hashedFiles, 0);
    assert.equal(readFileSync(path.join(target, 'src/deep/er/leaf.txt'), 'utf8'), 'leaf\n');
    assert.deepEqual(readFileSync(path.join(target, 'big.bin')), BIG);
    const stateDir = path.join(temp(), 'state');
    // Changed in /workspace before the state is recorded: no longer as the copy wrote it.
    writeFileSync(path.join(target, 'run.sh'), '#!/bin/sh\nexit 0\n');
    await recordCopiedState(stateDir, target, copy.agreed, copy.scan.cache);
    const store = await SyncStateStore.open(stateDir);
    const leaf = store.container.get('src/deep/er/leaf.txt');
    assert.equal(leaf?.hash, sha256('leaf\n'));
    assert.equal(leaf?.ino, lstatSync(path.join(target, 'src/deep/er/leaf.txt')).ino);
    assert.equal(store.container.get(nameFromBytes(ODD_NAME))?.hash, sha256('odd\n'));
    assert.equal(store.container.has('run.sh'), false);
    assert.equal(store.container.size, copy.files - 1);
    assert.deepEqual([...store.ancestor], [...copy.agreed]);
    assert.equal(store.host.size, copy.scan.cache.size);
    await store.close();
  });

  it("reports the receiver's failure as errors", async () => {
    const source = path.join(temp(), 'source');
    mkdirSync(source);
    makeSource(source);
    const copy = await copyTree({ source, receiver: RECEIVER(path.join(temp(), 'missing')), scan: { excludes: [] } });
    assert.ok(copy.errors.length > 0);
    assert.match(copy.errors[0]!, /^tar:/);
  });
});
