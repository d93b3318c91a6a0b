// Names from a tree printed safely: the pure escaping, and the CLI's text built with it.
import assert from 'node:assert/strict';
import { formatReport, formatStatus } from '../../src/cli/format';
import { displayPath, displayText } from '../../src/core/display';
import { emptySyncReport } from '../../src/core/protocol';

/** The folder the tests run in: suggested commands name no other folder. */
const HERE = process.cwd();

const ESC = '\x1b';
/** A name that would clear the screen and set the terminal's title. */
const ESCAPE_NAME = `${ESC}[2J${ESC}]0;owned\x07.txt`;
/** A name whose newline would forge a conflict line of the report. */
const FORGED_NAME = 'a.txt\n  conflict  src/main.ts  (clud resolve src/main.ts --keep host|container|both)';

/** The init state of a workspace whose initial copy finished, having kept `keptOut` out. */
function readyInit(keptOut: Array<{ path: string; reason: string }>) {
  return {
    phase: 'ready' as const,
    updatedAt: '2026-12-04T12:00:00.000Z',
    warnings: [],
    attempts: 1,
    initialSync: { direction: 'push' as const, startedAt: '2026-12-04T12:00:00.000Z', durationMs: 5, filesTransferred: 1, filesDeleted: 0, bytesTransferred: 1, errors: [], retries: 0, changedPaths: [], changedPathsTruncated: false, notCopied: [], keptOut },
  };
}

describe('unit: displayPath', () => {
  const TABLE: Array<[string, string]> = [
    ['src/app.ts', 'src/app.ts'],
    ['with space/ünïcödé 名前.txt', 'with space/ünïcödé 名前.txt'],
    ['line\nbreak', 'line\\nbreak'],
    ['cr\rtab\t', 'cr\\rtab\\t'],
    [ESCAPE_NAME, '\\x1b[2J\\x1b]0;owned\\x07.txt'],
    ['nul-free \x7f del', 'nul-free \\x7f del'],
    ['c1 \u009b csi', 'c1 \\x9b csi'],
    ['bidi \u202e txt.exe', 'bidi \\u{202e} txt.exe'],
    ['separator \u2028 here', 'separator \\u{2028} here'],
    ['back\\slash', 'back\\\\slash'],
    // pathCodec keeps a byte that is not UTF-8 as a lone surrogate: shown as that byte.
    [`latin1 caf${String.fromCharCode(0xdc00 + 0xe9)}`, 'latin1 caf\\xe9'],
  ];
  for (const [name, shown] of TABLE) {
    it(`shows ${JSON.stringify(name)} as ${JSON.stringify(shown)}`, () => assert.equal(displayPath(name), shown));
  }

  it('never lets two different names look the same', () => {
    assert.notEqual(displayPath('a\nb'), displayPath('a\\nb'));
  });

  it('leaves backslashes of prose alone in displayText, and escapes the rest', () => {
    assert.equal(displayText('cannot read C:\\Users\\me: a\nb'), 'cannot read C:\\Users\\me: a\\nb');
  });
});

describe('unit: the CLI text of a report', () => {
  const report = emptySyncReport({
    id: 'sync-1',
    policy: 'pull',
    startedAt: '2026-12-04T12:00:00.000Z',
    applied: [{ path: ESCAPE_NAME, side: 'host', action: 'create' }, { path: FORGED_NAME, side: 'host', action: 'create' }],
    appliedCount: 2,
    writtenCount: 2,
    problems: [{ path: 'link', side: 'container', reason: `symlink points outside the folder: /${ESC}[31mred` }],
    keptOut: [{ path: '.env.production', side: 'container', reason: 'environment file (.env.production)' }],
  });

  it('prints escape-sequence and newline names escaped, one line per entry', () => {
    const text = formatReport(report, HERE);
    const lines = text.split('\n');
    assert.equal(text.includes(ESC), false, 'no escape character reaches the terminal');
    assert.equal(lines.filter((line) => line.includes('conflict')).length, 1, 'the forged conflict stays inside its own line');
    assert.equal(lines.length, 5, 'summary, two changes, one problem, one kept out');
    assert.match(lines[0]!, /^pull: 2 change\(s\), 0 bytes, 1 secret\(s\) kept out in \d+ ms$/);
    assert.match(lines[1]!, /^ {2}create host {6}\\x1b\[2J\\x1b\]0;owned\\x07\.txt$/);
    assert.match(lines[2]!, /^ {2}create host {6}a\.txt\\n {2}conflict {2}src\/main\.ts/);
    assert.match(lines[3]!, /problem {3}link on container: symlink points outside the folder: \/\\x1b\[31mred/);
  });

  it('lists what was kept out, with the reason and how to let it through', () => {
    const line = formatReport(report, HERE).split('\n').find((candidate) => candidate.startsWith('  kept out'));
    assert.equal(line, '  kept out  .env.production on container: environment file (.env.production) (not copied to the host; --allow-secret PATTERN syncs it)');
  });

  it('names a denied safeguard once, then says nothing was changed and how to allow it', () => {
    const denied = emptySyncReport({ id: 'sync-2', policy: 'two-way-safe', startedAt: '2026-12-04T12:00:00.000Z', denied: { kind: 'mass-deletion', path: '', detail: 'delete 60 files on the host' } });
    const lines = formatReport(denied, HERE).split('\n');
    assert.deepEqual(lines, ['stopped by a safeguard: delete 60 files on the host', '  nothing was changed; run with --yes to allow it']);
  });

  it("lists the initial copy's kept-out files in status", () => {
    const text = formatStatus({
      hostPath: '/home/me/proj',
      containerName: 'clud-proj',
      state: 'running',
      init: readyInit([{ path: `id_rsa${ESC}`, reason: 'SSH private key' }]),
    });
    assert.match(text, /kept out {2}id_rsa\\x1b: SSH private key \(not copied into \/workspace/);
  });

  it('says how to retry a failed initial copy once, after what went wrong', () => {
    const text = formatStatus({
      hostPath: '/home/me/proj',
      containerName: 'clud-proj',
      state: 'running',
      init: { phase: 'failed', updatedAt: '2026-12-04T12:00:00.000Z', warnings: [], attempts: 1, error: 'No space left on device' },
    });
    assert.match(text, /^workspace: failed — No space left on device\n {2}the container is running but the initial copy failed; fix the cause and run `clud up` again to retry it$/m);
    assert.equal(text.split('clud up').length - 1, 1);
  });

  it('lists the live conflicts in status, each with the command that settles it', () => {
    const conflicts = Array.from({ length: 22 }, (_, index) => `src/f${index}.txt`);
    const text = formatStatus({
      hostPath: '/home/me/proj',
      containerName: 'clud-proj',
      state: 'running',
      live: { state: 'idle', autoSync: 'continuous', changesWaiting: false, conflicts, problems: [], keptOut: [], unlisted: { conflicts: 0, problems: 0, keptOut: 0 }, degraded: [] },
    });
    assert.match(text, /^sync: {6}22 conflict\(s\) \(auto-sync continuous\)$/m);
    assert.match(text, /^ {2}conflict {2}src\/f0\.txt {2}\(clud resolve \/home\/me\/proj src\/f0\.txt --keep host\|container\|both\)$/m);
    assert.equal(text.split('clud resolve').length - 1, 20);
    assert.match(text, /^ {2}… and 2 more conflict\(s\)$/m);
  });

  it('lists the problems that stand in status, and counts those past its list', () => {
    const problems = [{ path: 'pipe', side: 'container' as const, reason: 'a FIFO' }];
    const text = formatStatus({
      hostPath: '/home/me/proj',
      containerName: 'clud-proj',
      state: 'running',
      live: { state: 'idle', autoSync: 'continuous', changesWaiting: false, conflicts: [], problems, keptOut: [], unlisted: { conflicts: 0, problems: 1500, keptOut: 0 }, degraded: [] },
    });
    assert.match(text, /^ {2}problem {3}pipe on container: a FIFO\n {2}… and 1500 more problem\(s\)$/m);
  });

  it('lists the secrets kept out since the initial copy in status, each once', () => {
    const keptOut = [
      { path: 'id_rsa', side: 'host' as const, reason: 'SSH private key' },
      { path: '.env', side: 'host' as const, reason: 'environment file (.env)' },
      { path: 'deep/id_ed25519', side: 'container' as const, reason: 'SSH private key (id_ed25519)' },
    ];
    const text = formatStatus({
      hostPath: '/home/me/proj',
      containerName: 'clud-proj',
      state: 'running',
      init: readyInit([{ path: 'id_rsa', reason: 'SSH private key' }]),
      live: { state: 'idle', autoSync: 'continuous', changesWaiting: false, conflicts: [], problems: [], keptOut, unlisted: { conflicts: 0, problems: 0, keptOut: 3 }, degraded: [] },
    });
    assert.equal(text.split('id_rsa').length - 1, 1, text);
    assert.match(text, /^ {2}kept out {2}\.env on host: environment file \(\.env\) \(not copied to the container; --allow-secret PATTERN syncs it\)$/m);
    assert.match(text, /^ {2}kept out {2}deep\/id_ed25519 on container: SSH private key \(id_ed25519\) \(not copied to the host; --allow-secret PATTERN syncs it\)$/m);
    assert.match(text, /^ {2}… and 3 more secret\(s\) kept out$/m);
  });

  it("says, under a secret kept out, that the other side's version changed too or was deleted, even for one listed with the initial copy", () => {
    const keptOut = [
      { path: 'config.yml', side: 'host' as const, reason: 'file holds a GitHub token', otherSide: 'changed' as const },
      { path: 'notes.md', side: 'container' as const, reason: 'file holds a GitHub token', otherSide: 'deleted' as const },
    ];
    const text = formatStatus({
      hostPath: '/home/me/proj',
      containerName: 'clud-proj',
      state: 'running',
      init: readyInit([{ path: 'config.yml', reason: 'file holds a GitHub token' }]),
      live: { state: 'idle', autoSync: 'continuous', changesWaiting: false, conflicts: [], problems: [], keptOut, unlisted: { conflicts: 0, problems: 0, keptOut: 0 }, degraded: [] },
    });
    assert.match(text, /^ {2}kept out {2}config\.yml on host: .*\n {12}the container's version changed too and stays there: `clud exec -- cat PATH` shows it$/m);
    assert.match(text, /^ {2}kept out {2}notes\.md on container: .*\n {12}deleted in your folder; the container's file stays$/m);
  });
});
