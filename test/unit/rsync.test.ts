import assert from 'node:assert/strict';
import { MAX_CHANGED_PATHS, initialCopyArgs, parseItemizedLine, parseRsyncOutput, rsyncErrors } from '../../src/core/rsync';
import type { ItemizedLine } from '../../src/core/rsync';

// Real rsync 3.x output (of the former push arguments: --recursive --delete, and without
// --no-human-readable, so that the numbers carry digit separators) copying src/ to dst/, where src/ had data.bin (1,234,567 bytes), docs/b.md,
// "new dir/read me.txt" and a symlink "current", and dst/ had old/stale.txt and obsolete.log.
const FIRST_RUN_STDOUT = `*deleting   old/stale.txt
*deleting   old/
*deleting   obsolete.log
.d..t...... ./
cL+++++++++ current
>f+++++++++ data.bin
.d..t...... docs/
>f+++++++++ docs/b.md
cd+++++++++ new dir/
>f+++++++++ new dir/read me.txt

Number of files: 7 (reg: 3, dir: 3, link: 1)
Number of created files: 5 (reg: 3, dir: 1, link: 1)
Number of deleted files: 3 (reg: 2, dir: 1)
Number of regular files transferred: 3
Total file size: 1,234,583 bytes
Total transferred file size: 1,234,575 bytes
Literal data: 1,234,575 bytes
Matched data: 0 bytes
File list size: 0
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 1,235,214
Total bytes received: 135

sent 1,235,214 bytes  received 135 bytes  2,470,698.00 bytes/sec
total size is 1,234,583  speedup is 1.00
`;

// The second run, with --no-human-readable, after docs/b.md grew and data.bin was chmod'ed.
const SECOND_RUN_STDOUT = `.f...p..... data.bin
>f.st...... docs/b.md

Number of files: 7 (reg: 3, dir: 3, link: 1)
Number of created files: 0
Number of deleted files: 0
Number of regular files transferred: 1
Total file size: 1234588 bytes
Total transferred file size: 7 bytes
Literal data: 7 bytes
Matched data: 0 bytes
File list size: 0
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 263
Total bytes received: 51

sent 263 bytes  received 51 bytes  628.00 bytes/sec
total size is 1234588  speedup is 3931.81
`;

const STATS_ONLY = (transferred: number) => `
Number of files: ${transferred + 1} (reg: ${transferred}, dir: 1)
Number of created files: 0
Number of deleted files: 0
Number of regular files transferred: ${transferred}
Total file size: ${transferred * 10} bytes
Total transferred file size: ${transferred * 10} bytes
`;

describe('unit: rsync', () => {
  describe('initialCopyArgs', () => {
    const args = initialCopyArgs();

    it('copies the contents of /clud/host into /workspace', () => {
      assert.deepEqual(args.slice(-2), ['/clud/host/', 'env:/workspace/']);
    });

    it('copies exactly the NUL-separated paths given on stdin', () => {
      assert.ok(args.includes('--files-from=-'));
      assert.ok(args.includes('--from0'));
    });

    it('neither walks listed directories nor filters on its own: the scanner chose the paths', () => {
      for (const flag of ['--recursive', '-r', '--archive', '-a']) assert.ok(!args.includes(flag), `${flag} present`);
      assert.deepEqual(args.filter((arg) => /^--(exclude|include|filter|cvs-exclude)/.test(arg) || arg === '-F' || arg === '-C'), []);
    });

    it('deletes nothing', () => {
      assert.deepEqual(args.filter((arg) => arg.startsWith('--del') || arg === '--remove-source-files'), []);
    });

    it('writes files whole (no --inplace, no --append)', () => {
      for (const flag of ['--inplace', '--append', '--append-verify']) assert.ok(!args.includes(flag), `${flag} present`);
    });

    it("writes as the workspace user without capabilities (its receiver cannot be sent to the host or state folder), never keeping the host's owner and group", () => {
      const shell = args[args.indexOf('-e') + 1] ?? '';
      assert.match(shell, /^setpriv --reuid=coder --regid=coder --init-groups --inh-caps=-all --ambient-caps=-all --$/);
      assert.equal(args.at(-1), 'env:/workspace/', 'the hook runs `env rsync --server …`');
      for (const flag of ['--super', '--fake-super']) assert.ok(!args.includes(flag), `${flag} present`);
      assert.ok(!args.some((arg) => arg.startsWith('--chown') || arg.startsWith('--usermap')), 'no chown: the receiver is the workspace user');
      for (const flag of ['--owner', '-o', '--group', '-g']) assert.ok(!args.includes(flag), `${flag} present`);
    });

    it('drops setuid, setgid and sticky bits', () => {
      assert.ok(args.includes('--chmod=ug-s,o-t'));
    });

    it('keeps links as links, permissions and times', () => {
      for (const flag of ['--links', '--perms', '--times']) assert.ok(args.includes(flag), `${flag} missing`);
      for (const flag of ['--copy-links', '-L', '--copy-unsafe-links', '--safe-links']) assert.ok(!args.includes(flag), `${flag} present`);
    });

    it('puts every option before the two paths', () => {
      const options = args.slice(0, -2);
      // `-e` takes the remote-shell command as its value.
      assert.ok(options.every((arg, index) => arg.startsWith('--') || arg === '-e' || options[index - 1] === '-e'));
    });

    it('asks for the stats and itemized output that parseRsyncOutput reads, without digit separators', () => {
      assert.ok(args.includes('--stats'));
      assert.ok(args.includes('--out-format=%i %n'));
      assert.ok(args.includes('--no-human-readable'));
    });

    it('returns a fresh array each time', () => {
      const first = initialCopyArgs();
      first.pop();
      assert.deepEqual(initialCopyArgs(), args);
    });
  });

  describe('parseItemizedLine', () => {
    const cases: { line: string; expected: ItemizedLine | undefined }[] = [
      { line: '>f+++++++++ a.txt', expected: { path: 'a.txt', deleted: false, changed: true } },
      { line: '<f+++++++++ sent.txt', expected: { path: 'sent.txt', deleted: false, changed: true } },
      { line: '>f.st...... docs/b.md', expected: { path: 'docs/b.md', deleted: false, changed: true } },
      { line: '.f...p..... data.bin', expected: { path: 'data.bin', deleted: false, changed: true } },
      { line: 'cd+++++++++ new dir/', expected: { path: 'new dir', deleted: false, changed: true } },
      { line: '.d..t...... docs/', expected: { path: 'docs', deleted: false, changed: false } },
      { line: '.d..T...... docs/', expected: { path: 'docs', deleted: false, changed: false } },
      { line: '.d......... docs/', expected: { path: 'docs', deleted: false, changed: false } },
      { line: '.d...p..... private/', expected: { path: 'private', deleted: false, changed: true } },
      { line: '.d..tp..... private/', expected: { path: 'private', deleted: false, changed: true } },
      { line: '.f..t...... touched.txt', expected: { path: 'touched.txt', deleted: false, changed: true } },
      { line: '.L..t...... link', expected: { path: 'link', deleted: false, changed: true } },
      { line: '.d..t...... ./', expected: undefined },
      { line: 'cL+++++++++ current', expected: { path: 'current', deleted: false, changed: true } },
      { line: 'cS+++++++++ run/fifo', expected: { path: 'run/fifo', deleted: false, changed: true } },
      { line: '*deleting   old/stale.txt', expected: { path: 'old/stale.txt', deleted: true, changed: true } },
      { line: '*deleting   old/', expected: { path: 'old', deleted: true, changed: true } },
      { line: '*deleting   my old file.txt', expected: { path: 'my old file.txt', deleted: true, changed: true } },
      { line: '>f+++++++++ my dir/file with  two spaces.txt', expected: { path: 'my dir/file with  two spaces.txt', deleted: false, changed: true } },
      { line: 'Number of files: 7 (reg: 3, dir: 3, link: 1)', expected: undefined },
      { line: 'sent 263 bytes  received 51 bytes  628.00 bytes/sec', expected: undefined },
      { line: 'sending incremental file list', expected: undefined },
      { line: '', expected: undefined },
    ];
    for (const { line, expected } of cases) {
      it(`${JSON.stringify(line)} → ${expected ? `${expected.path}${expected.deleted ? ' (deleted)' : ''}${expected.changed ? '' : ' (unchanged)'}` : 'not an item'}`, () => {
        assert.deepEqual(parseItemizedLine(line), expected);
      });
    }
  });

  describe('parseRsyncOutput', () => {
    it('reads the stats of a first run, with digit separators', () => {
      const outcome = parseRsyncOutput(FIRST_RUN_STDOUT);
      assert.equal(outcome.filesTransferred, 3);
      assert.equal(outcome.filesDeleted, 3);
      assert.equal(outcome.bytesTransferred, 1234575);
    });

    it('lists changed files, new dirs, symlinks and deletions but not timestamp-only directories', () => {
      assert.deepEqual(parseRsyncOutput(FIRST_RUN_STDOUT), {
        filesTransferred: 3,
        filesDeleted: 3,
        bytesTransferred: 1234575,
        changedPaths: ['old/stale.txt', 'old', 'obsolete.log', 'current', 'data.bin', 'docs/b.md', 'new dir', 'new dir/read me.txt'],
        changedPathsTruncated: false,
      });
    });

    it("reads numbers with '.' as the digit separator (rsync's choice in locales with a decimal comma)", () => {
      const stdout = FIRST_RUN_STDOUT.replace(/(\d),(\d)/g, '$1.$2');
      assert.match(stdout, /^Total transferred file size: 1\.234\.575 bytes$/m);
      assert.equal(parseRsyncOutput(stdout).bytesTransferred, 1234575);
    });

    it('reads the stats of a run without digit separators', () => {
      assert.deepEqual(parseRsyncOutput(SECOND_RUN_STDOUT), {
        filesTransferred: 1,
        filesDeleted: 0,
        bytesTransferred: 7,
        changedPaths: ['data.bin', 'docs/b.md'],
        changedPathsTruncated: false,
      });
    });

    it('gives zeros and no paths for output without stats', () => {
      assert.deepEqual(parseRsyncOutput(''), { filesTransferred: 0, filesDeleted: 0, bytesTransferred: 0, changedPaths: [], changedPathsTruncated: false });
    });

    it('reads a last item line that has no newline', () => {
      assert.deepEqual(parseRsyncOutput('>f+++++++++ last.txt').changedPaths, ['last.txt']);
    });

    const items = (count: number) => Array.from({ length: count }, (_, index) => `>f+++++++++ dir/file-${index}.txt`);

    it(`keeps exactly ${MAX_CHANGED_PATHS} changed paths without truncating`, () => {
      const outcome = parseRsyncOutput([...items(MAX_CHANGED_PATHS), STATS_ONLY(MAX_CHANGED_PATHS)].join('\n'));
      assert.equal(outcome.changedPaths.length, MAX_CHANGED_PATHS);
      assert.equal(outcome.changedPathsTruncated, false);
    });

    it(`truncates after ${MAX_CHANGED_PATHS} changed paths and says so, keeping the stats`, () => {
      const outcome = parseRsyncOutput([...items(MAX_CHANGED_PATHS + 250), STATS_ONLY(MAX_CHANGED_PATHS + 250)].join('\n'));
      assert.equal(outcome.changedPaths.length, MAX_CHANGED_PATHS);
      assert.equal(outcome.changedPaths[0], 'dir/file-0.txt');
      assert.equal(outcome.changedPaths.at(-1), `dir/file-${MAX_CHANGED_PATHS - 1}.txt`);
      assert.equal(outcome.changedPathsTruncated, true);
      assert.equal(outcome.filesTransferred, MAX_CHANGED_PATHS + 250);
    });

    it('does not count timestamp-only directory lines towards the cap', () => {
      const lines = items(MAX_CHANGED_PATHS).flatMap((line, index) => [`.d..t...... dir${index}/`, line]);
      const outcome = parseRsyncOutput(lines.join('\n'));
      assert.equal(outcome.changedPaths.length, MAX_CHANGED_PATHS);
      assert.equal(outcome.changedPathsTruncated, false);
    });
  });

  describe('rsyncErrors', () => {
    it("picks rsync's own error lines and drops the rest", () => {
      const stderr = [
        'rsync: [sender] send_files failed to open "/host/locked.db": Permission denied (13)',
        'file has vanished: "/host/tmp/build-123.o"',
        '  rsync: [generator] delete_file: unlink(old.txt) failed: Permission denied (13)  ',
        'IO error encountered -- skipping file deletion',
        'some library printed this',
        '',
        'rsync warning: some files vanished before they could be transferred (code 24) at main.c(1338) [sender=3.2.7]',
        'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [sender=3.2.7]',
        '',
      ].join('\n');
      assert.deepEqual(rsyncErrors(stderr), [
        'rsync: [sender] send_files failed to open "/host/locked.db": Permission denied (13)',
        'file has vanished: "/host/tmp/build-123.o"',
        'rsync: [generator] delete_file: unlink(old.txt) failed: Permission denied (13)',
        'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [sender=3.2.7]',
      ]);
    });

    it('reads the real output of a failed run', () => {
      // rsync -r /nonexistent/ dst/ (exit code 23).
      const stderr = 'rsync: [sender] change_dir "/nonexistent" failed: No such file or directory (2)\nrsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]\n';
      assert.equal(rsyncErrors(stderr).length, 2);
      assert.match(rsyncErrors(stderr)[0]!, /change_dir "\/nonexistent" failed/);
    });

    it('returns nothing for stderr without rsync errors', () => {
      assert.deepEqual(rsyncErrors('Warning: Permanently added the host key\n\n'), []);
    });
  });
});
