import assert from 'node:assert/strict';
import { emptySyncReport, type LiveStatus, type SyncReport } from '../../src/core/protocol';
import { Coalescer } from '../../src/core/ui/coalescer';
import { HISTORY_SHOWN, initialState, isNewsworthy, isRunning, liveHealth, reduce } from '../../src/core/ui/state';
import type { StateEvent, WorkspaceViewState } from '../../src/core/ui/state';
import { statusBarView } from '../../src/core/ui/statusBar';
import { buildTree } from '../../src/core/ui/tree';
import type { TreeNode } from '../../src/core/ui/tree';

let counter = 0;
function report(overrides: Partial<SyncReport> = {}): SyncReport {
  counter += 1;
  return emptySyncReport({
    id: `sync-${counter}`,
    policy: 'two-way-safe',
    startedAt: new Date(Date.UTC(2026, 10, 21, 10, 0, counter)).toISOString(),
    durationMs: 42,
    applied: [{ path: 'a.txt', side: 'container', action: 'update' }],
    appliedCount: 1,
    bytesCopied: 7,
    scanned: { hostFiles: 1, containerFiles: 1, hashedFiles: 2 },
    ...overrides,
  });
}

const conflictOn = (path: string) => ({ path, host: { kind: 'file' as const, size: 1, mtimeMs: 1, mode: 0o644, hash: 'h' }, container: { kind: 'file' as const, size: 2, mtimeMs: 2, mode: 0o644, hash: 'c' } });

function run(...events: StateEvent[]): WorkspaceViewState {
  return events.reduce(reduce, initialState());
}

const attachedRunning: StateEvent = { type: 'attached', hostPath: '/home/me/proj', containerName: 'clud-proj-1234abcd', image: 'niteris/clud:latest', running: true };

function find(nodes: TreeNode[], id: string): TreeNode | undefined {
  for (const node of nodes) {
    if (node.id === id) return node;
    const inner = find(node.children ?? [], id);
    if (inner) return inner;
  }
  return undefined;
}

describe('unit: ui state', () => {
  const cases: Array<{ description: string; events: StateEvent[]; health: WorkspaceViewState['health']['kind']; running: boolean }> = [
    { description: 'starts stopped', events: [], health: 'stopped', running: false },
    { description: 'attached to a running container is synced', events: [attachedRunning], health: 'synced', running: true },
    { description: 'attached to no running container is stopped', events: [{ ...attachedRunning, running: false } as StateEvent], health: 'stopped', running: false },
    { description: 'starting', events: [{ type: 'starting', message: 'building' }], health: 'starting', running: false },
    { description: 'started without history is synced', events: [{ type: 'starting', message: 'x' }, { type: 'started' }], health: 'synced', running: true },
    { description: 'a sync in flight is syncing', events: [attachedRunning, { type: 'syncStarted', message: 'syncing' }], health: 'syncing', running: true },
    { description: 'a clean sync is synced', events: [attachedRunning, { type: 'syncStarted', message: 's' }, { type: 'syncFinished', report: report() }], health: 'synced', running: true },
    { description: 'a sync with conflicts is conflict', events: [attachedRunning, { type: 'syncFinished', report: report({ conflicts: [conflictOn('a.txt')] }) }], health: 'conflict', running: true },
    { description: 'a halted sync is halted, still running', events: [attachedRunning, { type: 'syncFinished', report: report({ halted: { side: 'container', reason: 'empty' } }) }], health: 'halted', running: true },
    { description: 'a failed start is an error, not running', events: [{ type: 'starting', message: 'x' }, { type: 'failed', message: 'Docker is not reachable', retry: 'start' }], health: 'error', running: false },
    { description: 'a failed sync is an error, still running', events: [attachedRunning, { type: 'failed', message: 'agent exited', retry: 'sync' }], health: 'error', running: true },
    { description: 'stopped after running', events: [attachedRunning, { type: 'stopped' }], health: 'stopped', running: false },
  ];
  for (const testCase of cases) {
    it(testCase.description, () => {
      const state = run(...testCase.events);
      assert.equal(state.health.kind, testCase.health);
      assert.equal(isRunning(state), testCase.running);
    });
  }

  it('keeps the newest history first, capped', () => {
    const reports = Array.from({ length: HISTORY_SHOWN + 5 }, () => report());
    const state = run(attachedRunning, ...reports.map((item): StateEvent => ({ type: 'syncFinished', report: item })));
    assert.equal(state.history.length, HISTORY_SHOWN);
    assert.equal(state.history[0]!.id, reports.at(-1)!.id);
  });

  it('a later clean sync clears conflicts and problems', () => {
    const state = run(
      attachedRunning,
      { type: 'syncFinished', report: report({ conflicts: [conflictOn('a.txt')], problems: [{ path: 'sock', side: 'host', reason: 'socket' }] }) },
      { type: 'syncFinished', report: report() },
    );
    assert.deepEqual(state.conflicts, []);
    assert.deepEqual(state.problems, []);
  });

  it('loaded history sets conflicts but does not pretend a stopped workspace runs', () => {
    const stopped = run({ ...attachedRunning, running: false } as StateEvent, { type: 'historyLoaded', reports: [report({ conflicts: [conflictOn('x')] })] });
    assert.equal(stopped.health.kind, 'stopped');
    assert.equal(stopped.conflicts.length, 1);
    const running = run(attachedRunning, { type: 'historyLoaded', reports: [report({ conflicts: [conflictOn('x')] })] });
    assert.equal(running.health.kind, 'conflict');
  });
});

describe('unit: ui status bar', () => {
  it('renders each health with its icon and click action', () => {
    const expectations: Array<[WorkspaceViewState, RegExp, string, string]> = [
      [run(), /^\$\(circle-slash\) Clud$/, 'clud.startWorkspace', 'normal'],
      [run({ type: 'starting', message: 'building image' }), /loading~spin.*starting/, 'clud.showLogs', 'normal'],
      [run(attachedRunning, { type: 'syncStarted', message: 'syncing 2 saved file(s)' }), /sync~spin.*syncing/, 'clud.showLogs', 'normal'],
      [run(attachedRunning, { type: 'syncFinished', report: report() }), /^\$\(check\) Clud: synced$/, 'clud.syncNow', 'normal'],
      [run(attachedRunning, { type: 'syncFinished', report: report({ conflicts: [conflictOn('a'), conflictOn('b')] }) }), /warning.*2 conflicts/, 'clud.syncNow', 'warning'],
      [run(attachedRunning, { type: 'failed', message: 'boom', retry: 'sync' }), /error.*error/, 'clud.retry', 'error'],
    ];
    for (const [state, text, command, severity] of expectations) {
      const view = statusBarView(state);
      assert.match(view.text, text);
      assert.equal(view.command, command);
      assert.equal(view.severity, severity);
    }
  });

  it("puts the last sync's metrics and an error's hint in the tooltip", () => {
    const synced = statusBarView(run(attachedRunning, { type: 'syncFinished', report: report({ durationMs: 1234, bytesCopied: 99 }) }));
    assert.match(synced.tooltip, /1234 ms/);
    assert.match(synced.tooltip, /99 bytes/);
    const failed = statusBarView(run(attachedRunning, { type: 'failed', message: 'Docker is not reachable', hint: 'Start Docker', retry: 'start' }));
    assert.match(failed.tooltip, /Docker is not reachable\nStart Docker/);
  });
});

describe('unit: ui tree', () => {
  it('is empty while nothing runs and nothing ran, so the welcome view shows', () => {
    assert.deepEqual(buildTree(run()), []);
  });

  it('is empty again once the workspace is stopped, whatever ran before', () => {
    assert.deepEqual(buildTree(run(attachedRunning, { type: 'syncFinished', report: report() }, { type: 'stopped' })), []);
  });

  it('shows the workspace, the last sync metrics and history', () => {
    const last = report({ durationMs: 321, bytesCopied: 2048, retries: 2, applied: [{ path: 'a', side: 'host', action: 'create' }, { path: 'b', side: 'container', action: 'delete' }], appliedCount: 2, writtenCount: 1, deletedCount: 1 });
    const tree = buildTree(run(attachedRunning, { type: 'syncFinished', report: report() }, { type: 'syncFinished', report: last }));
    assert.equal(find(tree, 'workspace')?.label, 'clud-proj-1234abcd');
    assert.equal(find(tree, 'workspace:image')?.description, 'niteris/clud:latest');
    assert.equal(find(tree, 'lastSync:duration')?.description, '321 ms');
    assert.equal(find(tree, 'lastSync:files')?.description, '1 copied, 1 deleted');
    assert.equal(find(tree, 'lastSync:bytes')?.description, '2048');
    assert.equal(find(tree, 'lastSync:retries')?.description, '2');
    assert.equal(find(tree, 'history')?.children?.length, 2);
    assert.equal(find(tree, 'conflicts'), undefined);
  });

  it("counts an entry the sync leaves alone as a problem of the last sync, not an error", () => {
    const pipe = report({ problems: [{ path: 'fifo', side: 'container', reason: 'a named pipe holds no content to copy' }] });
    const tree = buildTree(run(attachedRunning, { type: 'syncFinished', report: pipe }));
    assert.equal(find(tree, 'lastSync:errors')?.description, '0');
    assert.equal(find(tree, 'lastSync:problems')?.description, '1');
    const skipped = report({ skipped: [{ path: 'a', side: 'host', code: 'failed', reason: 'no space left on device' }] });
    assert.equal(find(buildTree(run(attachedRunning, { type: 'syncFinished', report: skipped })), 'lastSync:errors')?.description, '1');
  });

  it('lists conflicts with the compare action and a context value for the menus', () => {
    const tree = buildTree(run(attachedRunning, { type: 'syncFinished', report: report({ conflicts: [conflictOn('src/a.ts'), { path: 'dir', host: { kind: 'directory', mode: 0o755 } }] }) }));
    const file = find(tree, 'conflict:src/a.ts')!;
    assert.equal(file.contextValue, 'conflict.file');
    assert.deepEqual(file.command?.arguments, ['src/a.ts']);
    assert.equal(find(tree, 'conflict:dir')?.contextValue, 'conflict');
  });

  it('lists the files kept out as secrets, with side and reason', () => {
    const keptOut = [{ path: '.env', side: 'host' as const, reason: 'environment file (.env)' }, { path: 'id_rsa', side: 'container' as const, reason: 'SSH private key (id_rsa)' }];
    const tree = buildTree(run(attachedRunning, { type: 'syncFinished', report: report({ keptOut }) }));
    const group = find(tree, 'keptOut')!;
    assert.equal(group.label, 'Kept out');
    assert.equal(group.description, '2');
    assert.equal(find(tree, 'keptOut:host:.env')?.description, 'host: environment file (.env)');
    assert.equal(find(tree, 'keptOut:container:id_rsa')?.label, 'id_rsa');
    const changed = buildTree(run(attachedRunning, { type: 'syncFinished', report: report({ keptOut: [{ ...keptOut[0]!, otherSide: 'changed' }] }) }));
    assert.equal(find(changed, 'keptOut:host:.env')?.description, "host: environment file (.env); the container's version changed too and stays there");
    assert.equal(find(buildTree(run(attachedRunning, { type: 'syncFinished', report: report() })), 'keptOut'), undefined, 'no group when nothing is kept out');
  });

  it('escapes names from the tree in labels, keeping the raw path for the commands', () => {
    const forged = 'evil\x1b]0;pwned\x07\nconflict  x  (clud resolve x --keep host|container|both)';
    const tree = buildTree(run(attachedRunning, { type: 'syncFinished', report: report({ conflicts: [conflictOn(forged)], problems: [{ path: 'a\rb', side: 'host', reason: 'symlink points outside the folder: \x1b[2J' }] }) }));
    const conflict = find(tree, `conflict:${forged}`)!;
    assert.equal(conflict.label, 'evil\\x1b]0;pwned\\x07\\nconflict  x  (clud resolve x --keep host|container|both)');
    assert.equal(conflict.path, forged);
    assert.deepEqual(conflict.command?.arguments, [forged]);
    const problem = find(tree, 'problems')!.children![0]!;
    assert.equal(problem.label, 'a\\rb');
    assert.equal(problem.description, 'host: symlink points outside the folder: \\x1b[2J');
    assert.equal(statusBarView(run(attachedRunning, { type: 'syncFinished', report: report({ conflicts: [conflictOn(forged)] }) })).tooltip.includes('\x1b'), false);
  });

  it("shows the agent's git branches, how far each is ahead, what crossed and git's problems, from the newest sync that carried history", () => {
    const git = {
      lines: ['agent: 3 new commits on clud/app/main'],
      problems: ['git: clud/app/fix was not moved forward: cannot lock ref'],
      branches: [
        { branch: 'main', hostName: 'clud/app/main', tip: 'a'.repeat(40), ahead: 3, base: 'main' },
        { branch: 'fix', hostName: 'clud/app/fix', tip: 'b'.repeat(40), ahead: 1 },
      ],
    };
    const tree = buildTree(run(attachedRunning, { type: 'syncFinished', report: report({ git }) }, { type: 'syncFinished', report: report() }));
    assert.equal(find(tree, 'git')?.description, 'clud/app/main, clud/app/fix');
    assert.equal(find(tree, 'git:clud/app/main')?.description, '3 commits ahead of main');
    assert.equal(find(tree, 'git:clud/app/fix')?.description, '1 commit on no host branch');
    assert.equal(find(tree, 'git:line:0')?.label, 'agent: 3 new commits on clud/app/main');
    assert.equal(find(tree, 'git:problem:0')?.label, 'git: clud/app/fix was not moved forward: cannot lock ref');
    assert.equal(find(buildTree(run(attachedRunning, { type: 'syncFinished', report: report() })), 'git'), undefined, 'a folder without git shows no git node');
  });

  it('shows an error as a problem with a retry context', () => {
    const tree = buildTree(run(attachedRunning, { type: 'failed', message: 'agent exited', retry: 'sync' }));
    const problems = find(tree, 'problems')!;
    assert.equal(problems.contextValue, 'problems');
    assert.equal(problems.children?.[0]?.label, 'agent exited');
  });
});

function live(overrides: Partial<LiveStatus> = {}): LiveStatus {
  return { state: 'idle', autoSync: 'continuous', changesWaiting: false, conflicts: [], problems: [], keptOut: [], unlisted: { conflicts: 0, problems: 0, keptOut: 0 }, degraded: [], ...overrides };
}
const liveEvent = (overrides: Partial<LiveStatus> = {}): StateEvent => ({ type: 'live', status: live(overrides) });
const question = { questionId: 3, question: { kind: 'many-deletions' as const, path: 'src', detail: 'this sync would delete 120 files in your folder' } };

describe('unit: ui live status (the resident agent)', () => {
  const cases: Array<{ status: Partial<LiveStatus>; health: WorkspaceViewState['health']['kind']; text: RegExp; command: string; severity: string }> = [
    { status: {}, health: 'synced', text: /^\$\(check\) Clud: synced$/, command: 'clud.syncNow', severity: 'normal' },
    { status: { state: 'syncing' }, health: 'syncing', text: /sync~spin.*syncing/, command: 'clud.showLogs', severity: 'normal' },
    { status: { state: 'starting' }, health: 'syncing', text: /sync~spin.*syncing/, command: 'clud.showLogs', severity: 'normal' },
    { status: { changesWaiting: true, autoSync: 'off' }, health: 'changes-waiting', text: /changes waiting/, command: 'clud.syncNow', severity: 'normal' },
    { status: { state: 'waiting-for-approval', question }, health: 'waiting-for-approval', text: /waiting for approval/, command: 'clud.showLogs', severity: 'warning' },
    { status: { state: 'paused', changesWaiting: true }, health: 'paused', text: /debug-pause.*paused/, command: 'clud.resumeAutoSync', severity: 'warning' },
    { status: { state: 'halted', halt: { side: 'container', reason: '/workspace is empty' } }, health: 'halted', text: /error.*halted/, command: 'clud.resume', severity: 'error' },
    { status: { conflicts: ['a.txt'] }, health: 'conflict', text: /1 conflict$/, command: 'clud.syncNow', severity: 'warning' },
  ];
  for (const testCase of cases) {
    it(`renders ${JSON.stringify(testCase.status)} as ${testCase.health}`, () => {
      const state = run(attachedRunning, liveEvent(testCase.status));
      assert.equal(state.health.kind, testCase.health);
      assert.equal(liveHealth(live(testCase.status)).kind, testCase.health);
      assert.equal(isRunning(state), true);
      const view = statusBarView(state);
      assert.match(view.text, testCase.text);
      assert.equal(view.command, testCase.command);
      assert.equal(view.severity, testCase.severity);
      assert.match(view.tooltip, /Auto-sync: (continuous|off)/);
    });
  }

  it('a pause after a denied question says what was denied, and that resuming asks it again', () => {
    const denied = { kind: 'many-deletions', path: 'src', detail: 'this sync would delete 120 files in your folder' };
    const state = run(attachedRunning, liveEvent({ state: 'paused', denied }));
    assert.deepEqual(state.health, { kind: 'paused', denied: denied.detail });
    assert.match(statusBarView(state).tooltip, /you denied "this sync would delete 120 files in your folder".*the question is asked again/s);
    assert.doesNotMatch(statusBarView(run(attachedRunning, liveEvent({ state: 'paused' }))).tooltip, /denied/);
  });

  it('a paused on-save or off mode is not a pause the user can lift: it shows what waits', () => {
    assert.equal(run(attachedRunning, liveEvent({ state: 'paused', autoSync: 'on-save', changesWaiting: true })).health.kind, 'changes-waiting');
    assert.equal(run(attachedRunning, liveEvent({ state: 'paused', autoSync: 'off' })).health.kind, 'synced');
  });

  it('a denied question holds on-save mode too: its pause is shown, and resuming asks it again', () => {
    const denied = { kind: 'many-deletions', path: 'src', detail: 'this sync would delete 120 files in your folder' };
    const state = run(attachedRunning, liveEvent({ state: 'paused', autoSync: 'on-save', changesWaiting: true, denied }));
    assert.deepEqual(state.health, { kind: 'paused', denied: denied.detail });
    assert.equal(statusBarView(state).command, 'clud.resumeAutoSync');
  });

  it('never says synced while changes wait, and follows each status as it comes', () => {
    const states = [liveEvent({ changesWaiting: true }), liveEvent({ state: 'syncing', changesWaiting: true }), liveEvent()].map((event, index, all) => run(attachedRunning, ...all.slice(0, index + 1)).health.kind);
    assert.deepEqual(states, ['changes-waiting', 'syncing', 'synced']);
  });

  it("a status replied on another channel than the subscription's is dropped while subscribed: the events are newer", () => {
    // Resume Auto-Sync: the reply said "syncing" (a full cycle starting); the events that came first said it ended.
    const replied: StateEvent = { type: 'statusReplied', status: live({ state: 'syncing', conflicts: ['a.txt'] }) };
    assert.equal(run(attachedRunning, liveEvent({ state: 'paused' }), liveEvent({ conflicts: ['a.txt'] }), replied).health.kind, 'conflict');
    // Not subscribed (the subscription is reconnecting), the reply is all there is.
    assert.equal(run(attachedRunning, liveEvent({ state: 'paused' }), { type: 'liveLost' }, replied).health.kind, 'syncing');
    assert.equal(run(attachedRunning, replied).live?.state, 'syncing');
  });

  it('a background cycle joins the history but the health stays what the agent says', () => {
    const state = run(attachedRunning, liveEvent({ state: 'syncing' }), { type: 'syncFinished', report: report() });
    assert.equal(state.health.kind, 'syncing', 'the agent has not said it is idle yet');
    assert.equal(state.history.length, 1);
    assert.equal(run(attachedRunning, liveEvent({ state: 'syncing' }), { type: 'syncFinished', report: report() }, liveEvent()).health.kind, 'synced');
  });

  it("takes the conflicts from the agent's status, with what the reports said about each", () => {
    const state = run(attachedRunning, { type: 'syncFinished', report: report({ conflicts: [conflictOn('a.txt')] }) }, liveEvent({ conflicts: ['a.txt', 'b.txt'] }));
    assert.deepEqual(state.conflicts.map((conflict) => conflict.path), ['a.txt', 'b.txt']);
    assert.equal(state.conflicts[0]!.host?.kind, 'file');
    assert.deepEqual(run(attachedRunning, { type: 'syncFinished', report: report({ conflicts: [conflictOn('a.txt')] }) }, liveEvent()).conflicts, [], 'resolved elsewhere: gone');
    // A later incremental cycle that did not look at a.txt reports no conflicts; the agent still names it.
    const later = run(attachedRunning, liveEvent({ conflicts: ['a.txt'] }), { type: 'syncFinished', report: report({ conflicts: [conflictOn('a.txt')] }) }, { type: 'syncFinished', report: report() }, liveEvent({ conflicts: ['a.txt'] }));
    assert.equal(later.conflicts[0]?.host?.kind, 'file', 'what each side holds is kept from the report that described it');
    assert.equal(find(buildTree(later), 'conflict:a.txt')?.contextValue, 'conflict.file');
    // One no report described is named alone, not as deleted on both sides.
    assert.equal(find(buildTree(state), 'conflict:b.txt')?.description, 'both sides changed');
  });

  it("shows the problems and secrets kept out the agent's status names, whatever the last cycle's report found", () => {
    const findings = { problems: [{ path: 'pipe', side: 'container' as const, reason: 'a FIFO: never synchronized' }], keptOut: [{ path: '.env', side: 'host' as const, reason: 'holds credentials' }] };
    // The last report (of a cycle that looked elsewhere) found none; one change of it was skipped.
    const skipped = report({ skipped: [{ path: 'busy.txt', side: 'host', code: 'changed-since-scan', reason: 'changed while syncing' }] });
    const state = run(attachedRunning, liveEvent(findings), { type: 'syncFinished', report: skipped });
    const tree = buildTree(state);
    assert.deepEqual(find(tree, 'problems')?.children?.map((child) => child.label), ['pipe', 'busy.txt']);
    assert.deepEqual(find(tree, 'keptOut')?.children?.map((child) => child.label), ['.env']);
    const counted = run(attachedRunning, liveEvent({ ...findings, unlisted: { conflicts: 0, problems: 40, keptOut: 2 } }));
    assert.deepEqual([find(buildTree(counted), 'problems')?.description, find(buildTree(counted), 'keptOut')?.description], ['41', '3']);
    assert.equal(find(buildTree(run(attachedRunning, liveEvent())), 'keptOut'), undefined, 'gone when the agent no longer names it');
    // A change the last cycle could not carry stands in the status's problems: listed once.
    const full = report({ skipped: [{ path: 'big.bin', side: 'host', code: 'failed', reason: 'ENOSPC: no space left on device, write' }] });
    const standing = run(attachedRunning, { type: 'syncFinished', report: full }, liveEvent({ changesWaiting: true, problems: [{ path: 'big.bin', side: 'host', reason: 'not carried: ENOSPC: no space left on device, write' }] }));
    assert.deepEqual(find(buildTree(standing), 'problems')?.children?.map((child) => child.label), ['big.bin']);
    assert.equal(standing.health.kind, 'changes-waiting');
  });

  describe("isNewsworthy (a background cycle's place in the view's history)", () => {
    const secret = { path: '.env', side: 'host' as const, reason: 'holds credentials' };
    const fifo = { path: 'pipe', side: 'container' as const, reason: 'a FIFO' };
    const skipped = { path: 'busy.txt', side: 'host' as const, code: 'changed-since-scan' as const, reason: 'changed while syncing' };
    const known = run(attachedRunning, { type: 'syncFinished', report: report({ skipped: [skipped] }) }, liveEvent({ conflicts: ['a.txt'], keptOut: [secret], problems: [fifo] }));
    // A cycle that carried nothing, as a periodic rescan's usually is.
    const quiet = (overrides: Partial<SyncReport> = {}) => report({ applied: [], appliedCount: 0, bytesCopied: 0, ...overrides });
    const table: Array<{ name: string; state: WorkspaceViewState; report: SyncReport; expected: boolean }> = [
      { name: 'a rescan that names only what the status names', state: known, report: quiet({ conflicts: [conflictOn('a.txt')], keptOut: [secret], problems: [fifo], skipped: [skipped] }), expected: false },
      { name: 'a cycle that changed something', state: known, report: report(), expected: true },
      { name: 'a new conflict', state: known, report: quiet({ conflicts: [conflictOn('b.txt')] }), expected: true },
      { name: 'a secret kept out on the other side', state: known, report: quiet({ keptOut: [{ ...secret, side: 'container' }] }), expected: true },
      { name: 'a new skipped change', state: known, report: quiet({ skipped: [{ ...skipped, path: 'other.txt' }] }), expected: true },
      { name: 'a halt', state: known, report: quiet({ halted: { side: 'container', reason: 'empty' } }), expected: true },
      { name: 'without the status: what the last report found', state: run(attachedRunning, { type: 'syncFinished', report: quiet({ keptOut: [secret] }) }), report: quiet({ keptOut: [secret] }), expected: false },
      { name: 'without the status: something it did not', state: run(attachedRunning, { type: 'syncFinished', report: quiet({ keptOut: [secret] }) }), report: quiet({ problems: [fifo] }), expected: true },
    ];
    for (const { name, state, report: cycle, expected } of table) it(name, () => assert.equal(isNewsworthy(cycle, state), expected));
  });

  it("keeps one entry for a sync that arrives as its cycle's event and as its answer, the one with the git exchange", () => {
    const event = report({ id: 'sync-twice' });
    const answer = { ...event, git: { branches: [], lines: ['host: 1 new commit on host/main'], problems: [] } };
    for (const [first, second] of [[event, answer], [answer, event]]) {
      const state = run(attachedRunning, { type: 'syncFinished', report: report() }, { type: 'syncFinished', report: first! }, { type: 'syncFinished', report: second! });
      assert.equal(state.history.length, 2);
      assert.deepEqual(state.history[0]?.git?.lines, ['host: 1 new commit on host/main']);
    }
  });

  it('counts the conflicts the agent lists and those it only counts', () => {
    const state = run(attachedRunning, liveEvent({ conflicts: ['a.txt', 'b.txt'], unlisted: { conflicts: 3000, problems: 0, keptOut: 0 } }));
    assert.match(statusBarView(state).text, /3002 conflicts$/);
    const node = find(buildTree(state), 'conflicts');
    assert.equal(node?.description, '3002');
    assert.deepEqual(node?.children?.map((child) => child.label), ['a.txt', 'b.txt', '… and 3000 more']);
  });

  it('a late status does not bring back a stopped workspace; a lost subscription falls back to the reports', () => {
    assert.equal(run(attachedRunning, { type: 'stopped' }, liveEvent()).health.kind, 'stopped');
    const lost = run(attachedRunning, liveEvent({ state: 'paused' }), { type: 'liveLost' }, { type: 'syncFinished', report: report() });
    assert.equal(lost.live, undefined);
    assert.equal(lost.health.kind, 'synced');
  });

  it('the tree shows the state, the auto-sync mode, a waiting question and degraded watchers', () => {
    const tree = buildTree(run(attachedRunning, liveEvent({ state: 'waiting-for-approval', question, autoSync: 'on-save', degraded: [{ side: 'host', reason: 'inotify watch limit reached (fs.inotify.max_user_watches); polling' }] })));
    assert.equal(find(tree, 'workspace')?.description, 'waiting for approval');
    assert.equal(find(tree, 'workspace:autoSync')?.description, 'on-save');
    assert.equal(find(tree, 'question')?.description, 'this sync would delete 120 files in your folder');
    assert.match(find(tree, 'problems')!.children![0]!.label, /watcher on the host side: inotify watch limit/);
    assert.equal(find(buildTree(run(attachedRunning, liveEvent({ state: 'paused' }))), 'workspace:autoSync')?.description, 'continuous (paused)');
    assert.match(find(buildTree(run(attachedRunning, liveEvent({ state: 'halted', halt: { side: 'host', reason: 'the folder is empty' } }))), 'problems')!.children![0]!.label, /sync halted: the folder is empty \(host\)/);
    for (const kind of ['changes-waiting', 'paused', 'halted'] as const) {
      const status = kind === 'changes-waiting' ? { changesWaiting: true } : { state: kind };
      assert.equal(find(buildTree(run(attachedRunning, liveEvent(status))), 'workspace:state')?.description, kind.replace('-', ' '));
    }
  });
});

describe('unit: ui coalescer', () => {
  it('turns a burst into one run with every item, one run at a time', async () => {
    const runs: string[][] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const coalescer = new Coalescer<string>(async (items) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      runs.push(items);
      await new Promise((resolve) => setTimeout(resolve, 30));
      inFlight -= 1;
    }, 10);
    for (const name of ['a', 'b', 'a', 'c']) coalescer.add(name);
    await new Promise((resolve) => setTimeout(resolve, 20));
    coalescer.add('d'); // arrives while the first run is in flight
    coalescer.add('e');
    await coalescer.idle();
    assert.deepEqual(runs, [['a', 'b', 'c'], ['d', 'e']]);
    assert.equal(maxInFlight, 1);
  });

  it('keeps going after a failed run and stops after dispose', async () => {
    const runs: string[][] = [];
    const coalescer = new Coalescer<string>(async (items) => {
      runs.push(items);
      if (items.includes('bad')) throw new Error('sync failed');
    }, 5);
    coalescer.add('bad');
    await coalescer.idle();
    coalescer.add('good');
    await coalescer.idle();
    coalescer.dispose();
    coalescer.add('late');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(runs, [['bad'], ['good']]);
  });
});
