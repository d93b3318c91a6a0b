// How `clud status` and `clud watch` print the resident agent's status and events (src/cli/format.ts).
import assert from 'node:assert/strict';
import { formatConflict, formatLiveEvent, formatLiveStatus, formatReport } from '../../src/cli/format';
import { emptySyncReport } from '../../src/core/protocol';
import type { LiveStatus } from '../../src/core/protocol';

/** The folder the tests run in: suggested commands name no other folder. */
const HERE = process.cwd();

function status(overrides: Partial<LiveStatus> = {}): LiveStatus {
  return { state: 'idle', autoSync: 'continuous', changesWaiting: false, conflicts: [], problems: [], keptOut: [], unlisted: { conflicts: 0, problems: 0, keptOut: 0 }, degraded: [], ...overrides };
}
const at = new Date(Date.UTC(2026, 11, 4, 22, 5, 7, 123));

describe('unit: clud watch and status output', () => {
  it('names each live state the way the editor does', () => {
    assert.equal(formatLiveStatus(status()), 'synced (auto-sync continuous)');
    assert.equal(formatLiveStatus(status({ changesWaiting: true, autoSync: 'off' })), 'changes waiting (auto-sync off)');
    assert.equal(
      formatLiveStatus(status({ changesWaiting: true, failed: { at: '2026-12-07T10:00:00.000Z', reason: 'ENOSPC: no space left on device, write' } })),
      'changes waiting (auto-sync continuous, the last cycle failed: ENOSPC: no space left on device, write; the next change or rescan tries again)',
    );
    assert.equal(formatLiveStatus(status({ state: 'syncing', conflicts: ['a', 'b'] })), 'syncing (auto-sync continuous, 2 conflict(s))');
    // Not "synced" while a conflict leaves the two sides different.
    assert.equal(formatLiveStatus(status({ conflicts: ['a'] })), '1 conflict(s) (auto-sync continuous)');
    assert.equal(formatLiveStatus(status({ conflicts: ['a'], changesWaiting: true })), 'changes waiting (auto-sync continuous, 1 conflict(s))');
    assert.equal(formatLiveStatus(status({ state: 'waiting-for-approval' })), 'waiting for approval (auto-sync continuous)');
    assert.match(formatLiveStatus(status({ state: 'paused', autoSync: 'on-save' })), /^paused — `clud resume` syncs again \(auto-sync on-save\)$/);
    assert.equal(
      formatLiveStatus(status({ state: 'paused', denied: { kind: 'many-deletions', path: 'src', detail: '60 files deleted in this sync (limit 50)' } })),
      'paused after a denied safeguard (60 files deleted in this sync (limit 50)) — `clud resume` asks again, `clud sync --yes` allows it (auto-sync continuous)',
    );
    assert.match(formatLiveStatus(status({ state: 'halted', halt: { side: 'container', reason: '/workspace is empty' } })), /^halted \(container\): \/workspace is empty — `clud resume` merges/);
  });

  it('prints each event with its time, a status only when it changed', () => {
    assert.equal(formatLiveEvent({ type: 'cycle-started', kind: 'request' }, at, undefined, HERE), '22:05:07.123 syncing (request cycle)');
    assert.equal(formatLiveEvent({ type: 'status', status: status() }, at, undefined, HERE), '22:05:07.123 synced (auto-sync continuous)');
    assert.equal(formatLiveEvent({ type: 'status', status: status() }, at, status(), HERE), undefined);
    assert.equal(formatLiveEvent({ type: 'status', status: status({ state: 'syncing' }) }, at, status(), HERE), undefined, 'the cycle-started line says it');
    const held = status({ keptOut: [{ side: 'host', path: 'config.yml', reason: 'file holds a GitHub token', otherSide: 'changed' }] });
    assert.match(formatLiveEvent({ type: 'status', status: held }, at, status(), HERE) ?? '', /^ {12} {2}kept out {2}config\.yml on host: .*\n {12} {12}the container's version changed too and stays there/);
    assert.equal(formatLiveEvent({ type: 'status', status: held }, at, held, HERE), undefined, 'said once');
    const report = emptySyncReport({ id: 's1', policy: 'two-way-safe', startedAt: at.toISOString(), applied: [{ path: 'src/a.ts', side: 'host', action: 'create' }], appliedCount: 1, writtenCount: 1 });
    const lines = formatLiveEvent({ type: 'cycle-finished', kind: 'incremental', report }, at, undefined, HERE)!.split('\n');
    assert.match(lines[0]!, /^22:05:07\.123 incremental: two-way-safe: 1 change\(s\)/);
    assert.match(lines[1]!, /^ {13} {2}create host {6}src\/a\.ts$/);
    // A cycle the agent started (a periodic rescan, the watcher's echo of the sync's own writes)
    // prints nothing when it found nothing, and its report when it carried something; a client's
    // request prints its report whatever it did.
    const nothing = emptySyncReport({ id: 's2', policy: 'two-way-safe', startedAt: at.toISOString() });
    for (const kind of ['full', 'incremental'] as const) {
      assert.equal(formatLiveEvent({ type: 'cycle-started', kind }, at, undefined, HERE), undefined, kind);
      assert.equal(formatLiveEvent({ type: 'cycle-finished', kind, report: nothing }, at, undefined, HERE), undefined, kind);
    }
    assert.match(formatLiveEvent({ type: 'cycle-finished', kind: 'request', report: nothing }, at, undefined, HERE)!, /^22:05:07\.123 request: two-way-safe: /);
    assert.match(formatLiveEvent({ type: 'cycle-finished', kind: 'full', report }, at, undefined, HERE)!, /^22:05:07\.123 full: two-way-safe: 1 change\(s\)/);
    assert.match(formatLiveEvent({ type: 'watcher-degraded', side: 'container', reason: 'watch limit (fs.inotify.max_user_watches); polling' }, at, undefined, HERE)!, /watcher \(container\): watch limit/);
    assert.match(formatLiveEvent({ type: 'halted', side: 'host', reason: 'the folder is empty' }, at, undefined, HERE)!, /halted \(host\): the folder is empty/);
    assert.equal(formatLiveEvent({ type: 'git-exchanged', lines: ['agent: 1 new commit on clud/app/main'], problems: ['git: a\u001b[2J'] }, at, undefined, HERE), '22:05:07.123 git: agent: 1 new commit on clud/app/main\n22:05:07.123 git: git: a\\x1b[2J');
  });

  it('counts what a report or a status lists only in part', () => {
    assert.equal(formatLiveStatus(status({ conflicts: ['a'], unlisted: { conflicts: 4, problems: 0, keptOut: 0 } })), '5 conflict(s) (auto-sync continuous)');
    const report = emptySyncReport({ id: 's3', policy: 'two-way-safe', startedAt: at.toISOString(), problems: [{ path: 'sock', side: 'host', reason: 'a socket' }], unlisted: { problems: 2500, conflicts: 7 } });
    const text = formatReport(report, HERE);
    assert.match(text, /^ {2}problem {3}sock on host: a socket\n {2}… and 2500 more problem\(s\)$/m);
    assert.match(text, /^ {2}… and 7 more conflict\(s\)$/m);
  });

  it('offers clud undo for a sync only when its step can be undone', () => {
    const report = emptySyncReport({ id: 's1', policy: 'two-way-safe', startedAt: at.toISOString(), undoStep: '000005-558db1' });
    assert.match(formatReport(report, HERE), /^ {2}undo: `clud undo` takes this sync back \(step 000005-558db1\)$/m);
    const tooLarge = formatReport({ ...report, notUndoable: 'the step would take about 286 MiB, over the 256 MiB limit of one step' }, HERE);
    assert.match(tooLarge, /^ {2}undo: this sync cannot be undone: the step would take about 286 MiB, over the 256 MiB limit of one step$/m);
    assert.doesNotMatch(tooLarge, /clud undo/);
    // A background sync in a burst: undo takes the burst back, not this sync alone.
    const shared = formatReport({ ...report, undoStep: 'sync-mxdlfrve-f3456e', undoStepShared: true }, HERE);
    assert.match(shared, /^ {2}undo: `clud undo` takes this sync back with the rest of its step \(step sync-mxdlfrve-f3456e, as `clud history` lists it\)$/m);
  });

  it('escapes what came from a tree, so a file name cannot drive the terminal', () => {
    const report = emptySyncReport({ id: 's1', policy: 'two-way-safe', startedAt: at.toISOString(), applied: [{ path: 'evil\x1b[2J\nforged', side: 'host', action: 'create' }], appliedCount: 1 });
    const text = formatLiveEvent({ type: 'cycle-finished', kind: 'full', report }, at, undefined, HERE)!;
    assert.equal(text.includes('\x1b'), false);
    assert.equal(text.split('\n').length, 2);
    assert.equal(formatLiveEvent({ type: 'question', questionId: 1, question: { kind: 'many-deletions', path: 'x', detail: 'delete \x1b]0;x\x07' } }, at, undefined, HERE)!.includes('\x1b'), false);
  });
});

describe('unit: clud conflicts output', () => {
  const file = { kind: 'file' as const, size: 2048, mtimeMs: at.getTime(), mode: 0o644, hash: 'h' };
  it('says what each side holds, to tell the versions apart, and the command that settles it', () => {
    assert.deepEqual(formatConflict({ path: 'src/a.txt', ancestor: file, host: { ...file, size: 10 }, container: undefined }, HERE), [
      '  conflict  src/a.txt  (clud resolve src/a.txt --keep host|container|both)',
      '            host:      file, 10 B, modified 2026-12-04T22:05:07.123Z',
      '            container: deleted',
    ]);
    assert.deepEqual(formatConflict({ path: 'link', host: { kind: 'symlink', target: 'a\nb' }, container: { kind: 'directory', mode: 0o755 } }, HERE).slice(1), [
      '            host:      symlink to a\\nb',
      '            container: folder',
    ]);
    assert.deepEqual(formatConflict({ path: 'new.txt', host: file, container: undefined }, HERE).slice(2), ['            container: absent']);
  });

  it('names a conflict no report describes alone', () => {
    assert.deepEqual(formatConflict({ path: 'old.txt' }, HERE), ['  conflict  old.txt  (clud resolve old.txt --keep host|container|both)']);
    // Run from another folder, the command names the folder.
    assert.deepEqual(formatConflict({ path: 'old.txt' }, '/home/me/proj'), ['  conflict  old.txt  (clud resolve /home/me/proj old.txt --keep host|container|both)']);
  });
});
