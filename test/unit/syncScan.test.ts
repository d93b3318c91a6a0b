import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assertWellFormedSnapshot, type Entry, type FileEntry } from '../../src/core/files/entry';
import { UNKNOWN_CTIME } from '../../src/core/files/fsEntry';
import { joinBytes, nameFromBytes } from '../../src/core/files/pathCodec';
import { mayRead, scanPaths, scanTree, type ScanCache, type ScanCacheEntry, type ScanResult } from '../../src/core/sync/scan';
import { pastTimestampTick, withinOneTick } from '../helpers/syncTrees';
import { useTempDir } from '../helpers/tempDir';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const sha256 = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex');

/** Writes files (string values) and empty directories (null values), parents created as needed. */
function makeTree(root: string, tree: Record<string, string | null>): void {
  for (const [relative, content] of Object.entries(tree)) {
    const full = path.join(root, relative);
    if (content === null) {
      mkdirSync(full, { recursive: true });
    } else {
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  }
}

/** The mode bits as the scan should report them, whatever the umask the tests run under. */
const modeOf = (file: string): number => statSync(file).mode & 0o7777;

function fileAt(result: ScanResult, key: string): FileEntry {
  const entry = result.snapshot.get(key);
  assert.equal(entry?.kind, 'file', `${key} is a file`);
  return entry as FileEntry;
}

const scan = (root: string, cache?: ScanCache, excludes: readonly string[] = []): Promise<ScanResult> => scanTree(root, { excludes, ...(cache && { cache }) });

describe('unit: sync scan', () => {
  const tempDir = useTempDir('clud-scan-');

  describe('entries', () => {
    it('records files, directories (empty ones too) and symlinks, parents first, siblings sorted', async () => {
      const root = tempDir();
      makeTree(root, { 'b.txt': 'bee', 'a/inner.txt': 'inner', 'a/empty': null, 'c': null });
      symlinkSync('a/inner.txt', path.join(root, 'link'));
      const stat = statSync(path.join(root, 'b.txt'));

      const { snapshot, problems, stats } = await scan(root);

      assert.deepEqual([...snapshot.keys()], ['a', 'a/empty', 'a/inner.txt', 'b.txt', 'c', 'link']);
      assert.deepEqual(snapshot.get('b.txt'), { kind: 'file', size: 3, mtimeMs: stat.mtimeMs, mode: stat.mode & 0o7777, hash: sha256('bee') });
      assert.deepEqual(snapshot.get('a/empty'), { kind: 'directory', mode: modeOf(path.join(root, 'a/empty')) });
      assert.deepEqual(snapshot.get('link'), { kind: 'symlink', target: 'a/inner.txt' });
      assert.deepEqual(problems, []);
      assert.deepEqual({ ...stats, durationMs: 0 }, { files: 2, directories: 3, symlinks: 1, hashedFiles: 2, hashedBytes: 8, durationMs: 0 });
      assertWellFormedSnapshot(snapshot, 'scan', { allowUntracked: true });
    });

    it('keeps the permission bits, the executable bit included', async () => {
      const root = tempDir();
      makeTree(root, { 'run.sh': '#!/bin/sh\n', 'data.txt': 'x', private: null });
      chmodSync(path.join(root, 'run.sh'), 0o755);
      chmodSync(path.join(root, 'data.txt'), 0o600);
      chmodSync(path.join(root, 'private'), 0o700);
      const result = await scan(root);
      assert.equal(fileAt(result, 'run.sh').mode, 0o755);
      assert.equal(fileAt(result, 'data.txt').mode, 0o600);
      assert.deepEqual(result.snapshot.get('private'), { kind: 'directory', mode: 0o700 });
    });

    it('never reads setuid, setgid or sticky bits: they are no part of an entry', async () => {
      const root = tempDir();
      makeTree(root, { 'suid.sh': '#!/bin/sh\n', 'sgid.sh': '#!/bin/sh\n', shared: null });
      chmodSync(path.join(root, 'suid.sh'), 0o4755);
      chmodSync(path.join(root, 'sgid.sh'), 0o2750);
      chmodSync(path.join(root, 'shared'), 0o1777);
      const result = await scan(root);
      assert.equal(fileAt(result, 'suid.sh').mode, 0o755);
      assert.equal(fileAt(result, 'sgid.sh').mode, 0o750);
      assert.deepEqual(result.snapshot.get('shared'), { kind: 'directory', mode: 0o777 });
    });

    it("with accessAs, reads only what that user's permission bits allow, though the process could read more", async function () {
      if (process.getuid?.() !== 0) this.skip(); // needs files of other owners, and a process that reads them anyway
      const root = tempDir();
      makeTree(root, { 'mine.txt': 'm', 'roots.txt': 'r', 'group.txt': 'g', 'public.txt': 'p', 'closed/inside.txt': 'i', 'open/inside.txt': 'o' });
      const owned = (relative: string, uid: number, gid: number, mode: number) => {
        chownSync(path.join(root, relative), uid, gid);
        chmodSync(path.join(root, relative), mode);
      };
      chownSync(root, 1234, 1234);
      owned('mine.txt', 1234, 1234, 0o600);
      owned('roots.txt', 0, 0, 0o600);
      owned('group.txt', 0, 2000, 0o640);
      owned('public.txt', 0, 0, 0o604);
      owned('closed', 0, 0, 0o700);
      owned('open', 0, 0, 0o755);
      owned('open/inside.txt', 0, 0, 0o644);
      const result = await scanTree(root, { excludes: [], accessAs: { uid: 1234, gids: [1234, 2000] } });
      const kinds = Object.fromEntries([...result.snapshot].map(([key, value]) => [key, value.kind === 'untracked' ? value.reason : value.kind]));
      assert.deepEqual(kinds, {
        closed: 'cannot list directory: permission denied (its mode keeps out UID 1234)',
        'group.txt': 'file',
        'mine.txt': 'file',
        open: 'directory',
        'open/inside.txt': 'file',
        'public.txt': 'file',
        'roots.txt': 'cannot read: permission denied (its mode keeps out UID 1234)',
      });
      // Without accessAs, the process's own rights apply (root reads everything).
      assert.equal((await scan(root)).snapshot.get('roots.txt')?.kind, 'file');
    });

    it('with accessAs, scanPaths does not reach past a folder that user may not search', async function () {
      if (process.getuid?.() !== 0) this.skip();
      const root = tempDir();
      makeTree(root, { 'closed/inside.txt': 'i' });
      chownSync(root, 1234, 1234);
      chownSync(path.join(root, 'closed'), 0, 0);
      chmodSync(path.join(root, 'closed'), 0o700);
      chmodSync(path.join(root, 'closed/inside.txt'), 0o644);
      const result = await scanPaths(root, ['closed/inside.txt'], { excludes: [], accessAs: { uid: 1234, gids: [1234] } });
      assert.deepEqual(result.incomplete, [{ path: 'closed/inside.txt', at: 'closed' }], 'the caller widens the region to the folder');
      assert.equal(result.snapshot.has('closed/inside.txt'), false);
      const widened = await scanPaths(root, ['closed'], { excludes: [], accessAs: { uid: 1234, gids: [1234] } });
      assert.match((widened.snapshot.get('closed') as { reason?: string }).reason ?? '', /permission denied/);
    });

    describe('mayRead', () => {
      const file = (uid: number, gid: number, mode: number) => ({ uid, gid, mode, isDirectory: () => false });
      const folder = (uid: number, gid: number, mode: number) => ({ uid, gid, mode, isDirectory: () => true });
      const who = { uid: 1000, gids: [1000, 27] };
      const cases: [string, ReturnType<typeof file>, boolean][] = [
        ['own file 0600', file(1000, 1000, 0o600), true],
        ['own file 0066: the owner bits decide, not the group or other bits', file(1000, 1000, 0o066), false],
        ["another user's 0600", file(0, 0, 0o600), false],
        ["another user's 0640, group is one of ours", file(0, 27, 0o640), true],
        ["another user's 0604, other-readable", file(0, 0, 0o604), true],
        ["another user's 0604, but our group's bits say no", file(0, 27, 0o604), false],
        ['own folder 0700', folder(1000, 1000, 0o700), true],
        ['own folder 0600: readable but not searchable', folder(1000, 1000, 0o600), false],
        ["another user's folder 0711: searchable but not listable", folder(0, 0, 0o711), false],
        ["another user's folder 0755", folder(0, 0, 0o755), true],
      ];
      for (const [name, stat, expected] of cases) {
        it(`${name}: ${expected ? 'readable' : 'kept out'}`, () => assert.equal(mayRead(stat, who), expected));
      }
    });

    it('never follows a symlink to a directory', async () => {
      const root = tempDir();
      makeTree(root, { 'real/file.txt': 'x' });
      symlinkSync('real', path.join(root, 'alias'));
      const { snapshot } = await scan(root);
      assert.deepEqual(snapshot.get('alias'), { kind: 'symlink', target: 'real' });
      assert.equal(snapshot.has('alias/file.txt'), false);
    });

    it('hashes a large file by streaming it', async () => {
      const root = tempDir();
      const content = Buffer.alloc(3 * 1024 * 1024 + 17, 'abc');
      writeFileSync(path.join(root, 'big.bin'), content);
      const result = await scan(root);
      assert.equal(fileAt(result, 'big.bin').hash, sha256(content));
      assert.equal(result.stats.hashedBytes, content.length);
    });

    it('gives the same snapshot, in the same order, scan after scan', async () => {
      const root = tempDir();
      // Enough files that the concurrent hashes finish out of order.
      for (let index = 0; index < 60; index += 1) makeTree(root, { [`d${index % 3}/f${index}`]: 'x'.repeat((60 - index) * 1000) });
      const first = await scan(root);
      const second = await scan(root);
      assert.deepEqual([...second.snapshot], [...first.snapshot]);
      const keys = [...first.snapshot.keys()].filter((key) => key.startsWith('d0/'));
      assert.deepEqual(keys, [...keys].sort());
    });
  });

  describe('names', () => {
    it('round-trips names with spaces, a newline and non-UTF-8 bytes into keys and back to the file', async () => {
      const root = tempDir();
      const rootBytes = Buffer.from(root);
      const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1: not UTF-8
      mkdirSync(Buffer.concat([rootBytes, Buffer.from('/dir '), latin1]));
      const files: [Buffer, string][] = [
        [Buffer.from('with space.txt'), 'space'],
        [Buffer.from('new\nline.txt'), 'newline'],
        [Buffer.concat([Buffer.from('dir '), latin1, Buffer.from('/'), latin1, Buffer.from([0xff])]), 'latin1'],
        [Buffer.from('日本.txt'), 'utf8'],
      ];
      for (const [name, content] of files) writeFileSync(Buffer.concat([rootBytes, Buffer.from('/'), name]), content);

      const result = await scan(root);

      const latin1Key = `dir caf\udce9/caf\udce9\udcff`;
      assert.deepEqual([...result.snapshot.keys()].sort(), ['dir caf\udce9', latin1Key, 'new\nline.txt', 'with space.txt', '日本.txt'].sort());
      for (const [name, content] of files) {
        const key = JSON.parse(JSON.stringify(nameFromBytes(name))) as string; // as persisted
        assert.equal(fileAt(result, key).hash, sha256(content));
        assert.equal(readFileSync(joinBytes(root, key), 'utf8'), content);
      }
    });
  });

  describe('cache', () => {
    /** A tree last changed a tick ago, so that a scan's records of it vouch for it (isRacy). */
    const populate = async (root: string): Promise<void> => {
      makeTree(root, { 'a.txt': 'aaa', 'b.txt': 'bbb', 'sub/c.txt': 'ccc' });
      await pastTimestampTick();
    };

    it('hashes nothing on a second scan with the previous cache, even after a JSON round trip', async () => {
      const root = tempDir();
      await populate(root);
      const first = await scan(root);
      assert.deepEqual([...first.cache.keys()].sort(), ['a.txt', 'b.txt', 'sub/c.txt']);
      const persisted = new Map(Object.entries(JSON.parse(JSON.stringify(Object.fromEntries(first.cache))) as Record<string, ScanCacheEntry>));
      const second = await scan(root, persisted);
      assert.equal(second.stats.hashedFiles, 0);
      assert.deepEqual([...second.snapshot], [...first.snapshot]);
      assert.deepEqual(second.cache, first.cache);
    });

    it('rehashes only a file whose mtime, size, inode or mode changed', async () => {
      const root = tempDir();
      await populate(root);
      let previous = (await scan(root)).cache;
      const rescan = async (): Promise<ScanResult> => {
        const result = await scan(root, previous);
        previous = result.cache;
        return result;
      };

      utimesSync(path.join(root, 'a.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1));
      // Each change a tick before the scan after it, so that the scan's records vouch for it.
      await pastTimestampTick();
      assert.equal((await rescan()).stats.hashedFiles, 1, 'touched mtime');

      writeFileSync(path.join(root, 'b.txt'), 'bbbb');
      await pastTimestampTick();
      let result = await rescan();
      assert.equal(result.stats.hashedFiles, 1, 'size changed');
      assert.equal(fileAt(result, 'b.txt').hash, sha256('bbbb'));

      // An editor's atomic save: new content written aside, renamed over (new inode).
      const stat = statSync(path.join(root, 'sub/c.txt'));
      writeFileSync(path.join(root, 'sub/.c.tmp'), 'CCC');
      utimesSync(path.join(root, 'sub/.c.tmp'), stat.atime, stat.mtime);
      renameSync(path.join(root, 'sub/.c.tmp'), path.join(root, 'sub/c.txt'));
      await pastTimestampTick();
      result = await rescan();
      assert.equal(result.stats.hashedFiles, 1, 'replaced by a new inode');
      assert.equal(fileAt(result, 'sub/c.txt').hash, sha256('CCC'));

      chmodSync(path.join(root, 'a.txt'), 0o755);
      await pastTimestampTick();
      assert.equal((await rescan()).stats.hashedFiles, 1, 'mode changed');
      assert.equal((await rescan()).stats.hashedFiles, 0, 'nothing changed');
    });

    it('detects an in-place same-size rewrite with the mtime put back, through the ctime', async () => {
      const root = tempDir();
      writeFileSync(path.join(root, 'f.txt'), 'one');
      const first = await scan(root);
      const before = statSync(path.join(root, 'f.txt'));
      await new Promise((resolve) => setTimeout(resolve, 20)); // let the clock move past the first ctime
      writeFileSync(path.join(root, 'f.txt'), 'two');
      utimesSync(path.join(root, 'f.txt'), before.atime, before.mtime);
      const second = await scan(root, first.cache);
      assert.equal(second.stats.hashedFiles, 1);
      assert.equal(fileAt(second, 'f.txt').hash, sha256('two'));
    });

    it('keeps no record that vouches for a file changed within a tick of the scan, and one that does a tick later', async () => {
      // A rewrite of the same size in the same tick of a coarse file-system clock (Linux before
      // 6.13) leaves size, times and inode as they were: a record made in that tick would hide it.
      const root = tempDir();
      const racy = await withinOneTick(() => {
        writeFileSync(path.join(root, 'f.txt'), 'one');
        return scan(root);
      });
      assert.equal(racy.cache.get('f.txt')?.ctimeMs, UNKNOWN_CTIME);
      assert.equal(fileAt(racy, 'f.txt').hash, sha256('one'), 'the scan still reads the file');
      await pastTimestampTick();
      const settled = await scan(root, racy.cache);
      assert.equal(settled.stats.hashedFiles, 1, 'a record that cannot vouch is not trusted');
      assert.equal(settled.cache.get('f.txt')?.ctimeMs, statSync(path.join(root, 'f.txt')).ctimeMs);
      assert.equal((await scan(root, settled.cache)).stats.hashedFiles, 0);
    });

    it('KNOWN LIMIT (shared with Mutagen and git): trusts a record made a tick after the last change when size, mtime, ctime, inode and mode all match', async () => {
      // A content change that leaves all five untouched after that tick needs a clock put back,
      // so the cache is made to lie instead: the scan believes it without reading the file.
      const root = tempDir();
      writeFileSync(path.join(root, 'f.txt'), 'one');
      await pastTimestampTick();
      const first = await scan(root);
      const stale = new Map([['f.txt', { ...first.cache.get('f.txt')!, hash: 'hash-of-older-content' }]]);
      const second = await scan(root, stale);
      assert.equal(second.stats.hashedFiles, 0);
      assert.equal(fileAt(second, 'f.txt').hash, 'hash-of-older-content');
    });

    it('holds exactly the files seen this scan', async () => {
      const root = tempDir();
      makeTree(root, { 'kept.txt': 'k', 'gone.txt': 'g', 'x.log': 'l', '.gitignore': '*.log\n' });
      const first = await scan(root);
      execFileSync('rm', [path.join(root, 'gone.txt')]);
      const second = await scan(root, first.cache);
      assert.deepEqual([...second.cache.keys()].sort(), ['.gitignore', 'kept.txt']);
    });
  });

  describe('ignore rules', () => {
    it('applies nested .gitignore files, user excludes and .git while walking', async () => {
      const root = tempDir();
      makeTree(root, {
        '.gitignore': '*.log\n!keep.log\nbuild/\n/root-only.txt\n',
        'debug.log': '', 'keep.log': '', 'root-only.txt': '', 'build/out.js': '', 'src/build': 'a file, not a dir',
        'src/root-only.txt': '', 'src/.gitignore': '*.gen\n', 'src/a.gen': '', 'src/deep/b.gen': '', 'lib/c.gen': '',
        '.git/HEAD': 'ref', 'secrets/key': 'k', 'notes.DS_Store': '', '.DS_Store': '',
      });
      const { snapshot, ignored } = await scan(root, undefined, ['secrets/']);
      assert.deepEqual([...snapshot.keys()], ['.gitignore', 'keep.log', 'lib', 'lib/c.gen', 'notes.DS_Store', 'src', 'src/.gitignore', 'src/build', 'src/deep', 'src/root-only.txt']);
      // Top-most only: the build/ and .git/ subtrees are not walked.
      assert.deepEqual([...ignored], ['.DS_Store', '.git', 'build', 'debug.log', 'root-only.txt', 'secrets', 'src/a.gen', 'src/deep/b.gen']);
    });

    it('does not read a symlinked .gitignore, as git does not', async () => {
      const root = tempDir();
      makeTree(root, { 'sub/rules': '*.txt\n', 'sub/a.txt': '' });
      symlinkSync('rules', path.join(root, 'sub/.gitignore'));
      const { snapshot } = await scan(root);
      assert.equal(snapshot.get('sub/a.txt')?.kind, 'file');
      assert.deepEqual(snapshot.get('sub/.gitignore'), { kind: 'symlink', target: 'rules' });
    });
  });

  describe('problems', () => {
    it('makes sockets and FIFOs untracked and reports them', async () => {
      const root = tempDir();
      execFileSync('mkfifo', [path.join(root, 'pipe')]);
      const server: Server = createServer();
      await new Promise<void>((resolve) => server.listen(path.join(root, 'sock'), resolve));
      try {
        const { snapshot, problems } = await scan(root);
        assert.deepEqual(snapshot.get('pipe'), { kind: 'untracked', reason: 'named pipe (FIFO): cannot be synchronized', special: true });
        assert.deepEqual(snapshot.get('sock'), { kind: 'untracked', reason: 'socket: cannot be synchronized', special: true });
        assert.deepEqual(problems.map((problem) => problem.path), ['pipe', 'sock']);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('records symlinks that may lead outside the folder but reports them', async () => {
      const root = tempDir();
      makeTree(root, { 'a/b/file': '', 'c': null });
      const links: Record<string, string> = { 'up': '../x', 'abs': '/etc/passwd', 'a/b/escape': '../../../x', 'a/inside': '../c', 'a/b/dangling': 'nowhere', 'a/dotdot': 'b/../../c' };
      for (const [link, target] of Object.entries(links)) symlinkSync(target, path.join(root, link));
      const { snapshot, problems } = await scan(root);
      for (const [link, target] of Object.entries(links)) assert.deepEqual(snapshot.get(link), { kind: 'symlink', target });
      // a/dotdot stays inside only if a/b is a real folder: a `..` after a name is judged as leaving.
      assert.deepEqual(problems, [
        { path: 'a/b/escape', reason: 'symlink may lead outside the folder: ../../../x' },
        { path: 'a/dotdot', reason: 'symlink may lead outside the folder: b/../../c' },
        { path: 'abs', reason: 'symlink may lead outside the folder: /etc/passwd' },
        { path: 'up', reason: 'symlink may lead outside the folder: ../x' },
      ]);
    });

    it('makes unreadable files and directories untracked, without walking into them (EACCES)', async function () {
      const root = path.join(tempDir(), 'tree');
      makeTree(root, { 'ok.txt': 'ok', 'secret.txt': 's', 'locked/inside.txt': 'i', 'rules/.gitignore': 'x\n', 'rules/a': '' });
      chmodSync(path.join(root, 'secret.txt'), 0o000);
      chmodSync(path.join(root, 'locked'), 0o000);
      chmodSync(path.join(root, 'rules/.gitignore'), 0o000);
      const result = await scanAsUnprivileged(root, this, ['secret.txt', 'locked', 'rules/.gitignore']);
      assert.deepEqual(result.snapshot, [
        ['locked', { kind: 'untracked', reason: 'cannot list directory: permission denied (EACCES)' }],
        ['ok.txt', { kind: 'file', size: 2, mtimeMs: statSync(path.join(root, 'ok.txt')).mtimeMs, mode: modeOf(path.join(root, 'ok.txt')), hash: sha256('ok') }],
        ['rules', { kind: 'untracked', reason: 'cannot read its .gitignore: permission denied (EACCES)' }],
        ['secret.txt', { kind: 'untracked', reason: 'cannot read: permission denied (EACCES)' }],
      ]);
      assert.deepEqual(result.problems.map((problem) => problem.path), ['locked', 'rules', 'secret.txt']);
    });
  });

  describe('root', () => {
    it('throws when the root does not exist: a missing side must halt the sync, not look empty', async () => {
      await assert.rejects(scan(path.join(tempDir(), 'missing')), /sync root .*missing does not exist/);
    });

    it('throws when the root is not a directory', async () => {
      const file = path.join(tempDir(), 'file');
      writeFileSync(file, '');
      await assert.rejects(scan(file), /is not a directory/);
    });

    it('throws when the root cannot be listed', async function () {
      const root = path.join(tempDir(), 'tree');
      mkdirSync(root, { mode: 0o000 });
      const result = await scanAsUnprivileged(root, this, ['.']);
      assert.match(result.error ?? '', /sync root .* cannot be read: cannot list directory: permission denied \(EACCES\)/);
    });
  });
});

interface ChildScan { snapshot: [string, Entry][]; problems: { path: string; reason: string }[]; error?: string }

/**
 * Tests run as root, which reads everything, so permission cases are scanned by a child process
 * running as uid/gid 1000; run as any other user, the scan happens in this process. `root` must
 * be a subdirectory of the test's temp dir. `locked` (relative to root) get their permissions
 * back afterwards, so the temp dir can be removed whoever runs the tests.
 */
async function scanAsUnprivileged(root: string, test: Mocha.Context, locked: readonly string[]): Promise<ChildScan> {
  if (process.getuid === undefined) test.skip();
  try {
    return process.getuid!() === 0 ? scanInChild(root) : await scanHere(root);
  } finally {
    for (const relative of locked) chmodSync(path.join(root, relative), 0o755);
  }
}

async function scanHere(root: string): Promise<ChildScan> {
  try {
    const result = await scanTree(root, { excludes: [] });
    return { snapshot: [...result.snapshot], problems: result.problems };
  } catch (error) {
    return { snapshot: [], problems: [], error: (error as Error).message };
  }
}

function scanInChild(root: string): ChildScan {
  const workDir = path.dirname(root);
  chmodSync(workDir, 0o755); // mkdtemp made it 0700, closed to uid 1000
  const script = path.join(workDir, 'scan-child.mjs');
  writeFileSync(script, `
    import { scanTree } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'src/core/sync/scan.ts')).href)};
    let output;
    try {
      const result = await scanTree(process.argv[2], { excludes: [] });
      output = { snapshot: [...result.snapshot], problems: result.problems };
    } catch (error) {
      output = { snapshot: [], problems: [], error: error.message };
    }
    process.stdout.write(JSON.stringify(output));
  `);
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, root], { uid: 1000, gid: 1000, cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(child.status, 0, `child scan failed: ${child.error?.message ?? child.stderr}`);
  return JSON.parse(child.stdout) as ChildScan;
}
