import assert from 'node:assert/strict';
import { shortLabel, StepBoundaries } from '../../src/core/undo/stepBoundaries';

function boundaries(quietMs = 1000) {
  const clock = { now: 0 };
  let counter = 0;
  const steps = new StepBoundaries({ quietMs, now: () => clock.now, newId: (kind) => `${kind}-${++counter}` });
  return { steps, clock };
}

describe('unit: step boundaries', () => {
  it('a burst of background cycles is one group; a quiet period starts the next', () => {
    const { steps, clock } = boundaries();
    const first = steps.current();
    assert.deepEqual(first, { id: 'sync-1', kind: 'sync', label: '' });
    steps.recorded(first);
    clock.now = 900;
    assert.equal(steps.current().id, 'sync-1');
    steps.recorded(first);
    clock.now = 1800; // 900 ms after the last cycle: still the burst
    assert.equal(steps.current().id, 'sync-1');
    clock.now = 1900; // 1000 ms of quiet
    assert.equal(steps.current().id, 'sync-2');
    assert.equal(steps.running, undefined);
  });

  it('writes that never pause still make steps: a background group ends after its most cycles; a turn does not', () => {
    const { steps, clock } = boundaries();
    const bounded = new StepBoundaries({ quietMs: 1000, maxBackgroundCycles: 3, now: () => clock.now, newId: (kind) => `${kind}-${clock.now}` });
    const groups = [];
    for (let cycle = 0; cycle < 7; cycle += 1) {
      clock.now += 100;
      const group = bounded.current();
      groups.push(group.id);
      bounded.recorded(group);
    }
    assert.deepEqual(groups, ['sync-100', 'sync-100', 'sync-100', 'sync-400', 'sync-400', 'sync-400', 'sync-700']);
    const turn = steps.open('turn', 'a long turn');
    for (let cycle = 0; cycle < 150; cycle += 1) steps.recorded(steps.current());
    assert.equal(steps.current().id, turn.id, 'a turn holds every cycle');
  });

  it('a turn the agent kept when it stopped is reopened under its id: cycles record into it until its Stop closes it', () => {
    const { steps, clock } = boundaries();
    const kept = { id: 'turn-from-before', kind: 'turn' as const, label: 'rename the config loader' };
    steps.reopen(kept);
    assert.deepEqual(steps.running, kept);
    clock.now = 60_000;
    assert.deepEqual(steps.current(), kept);
    steps.recorded(kept, ['src/a.ts']);
    assert.equal(steps.close({ kind: 'command' }), undefined, 'a command\'s end closed a turn');
    assert.deepEqual(steps.close({ kind: 'turn' }), { group: kept, recorded: 1, paths: ['src/a.ts'], pathsTruncated: false });
    assert.equal(steps.current().kind, 'sync');
  });

  it('a turn holds every cycle until it is closed, however long the quiet', () => {
    const { steps, clock } = boundaries();
    const turn = steps.open('turn', 'rename the config loader');
    assert.deepEqual(turn, { id: 'turn-1', kind: 'turn', label: 'rename the config loader' });
    steps.recorded(steps.current(), ['src/a.ts']);
    clock.now = 60_000;
    steps.recorded(steps.current(), ['src/a.ts', 'src/b.ts']);
    assert.equal(steps.current().id, 'turn-1');
    assert.equal(steps.running?.id, 'turn-1');
    assert.deepEqual(steps.close({ kind: 'turn' }), { group: turn, recorded: 2, paths: ['src/a.ts', 'src/b.ts'], pathsTruncated: false });
    assert.equal(steps.running, undefined);
    assert.equal(steps.current().kind, 'sync');
  });

  it('opening a group ends the one before; close only ends the group it names', () => {
    const { steps } = boundaries();
    steps.open('turn', 'a');
    const command = steps.open('command', 'npm run fix');
    assert.equal(steps.close({ kind: 'turn' }), undefined, 'a Stop hook does not end a command');
    assert.equal(steps.close({ id: 'turn-1' }), undefined);
    assert.deepEqual(steps.close({ id: command.id })?.group, command);
    assert.equal(steps.close(), undefined, 'nothing open');
  });

  it('a checkpoint ends the current group under its label; a turn goes on in a new group', () => {
    const { steps } = boundaries();
    const background = steps.current();
    steps.recorded(background);
    assert.deepEqual(steps.checkpoint('before the refactor'), { closed: { id: background.id, kind: 'checkpoint', label: 'before the refactor' }, recorded: 1, groups: [background.id] });
    assert.notEqual(steps.current().id, background.id);

    const turn = steps.open('turn', 'refactor');
    steps.recorded(turn);
    steps.recorded(turn);
    const outcome = steps.checkpoint('half way');
    assert.deepEqual(outcome.closed, { id: turn.id, kind: 'checkpoint', label: 'half way' });
    assert.equal(outcome.recorded, 2);
    assert.equal(outcome.continued?.kind, 'turn');
    assert.equal(outcome.continued?.label, 'refactor');
    assert.notEqual(outcome.continued?.id, turn.id);
    assert.equal(steps.current().id, outcome.continued?.id);
  });

  it('a checkpoint after quiet periods takes every burst since the last boundary', () => {
    const { steps, clock } = boundaries();
    const first = steps.current();
    steps.recorded(first);
    clock.now = 5000;
    const second = steps.current();
    steps.recorded(second);
    clock.now = 10_000;
    steps.current(); // a third burst that recorded nothing
    clock.now = 20_000;
    const outcome = steps.checkpoint('after lunch');
    assert.deepEqual(outcome.groups, [first.id, second.id]);
    assert.equal(outcome.recorded, 2);
    assert.equal(outcome.closed.id, second.id);
    assert.equal(steps.checkpoint('again').recorded, 0, 'the next checkpoint starts from this one');
    steps.open('turn', 't');
    steps.close();
    const after = steps.current();
    steps.recorded(after);
    assert.deepEqual(steps.checkpoint('x').groups, [after.id], 'a turn is a boundary too');
  });

  it('a checkpoint with nothing recorded says so', () => {
    const { steps } = boundaries();
    const outcome = steps.checkpoint('empty');
    assert.equal(outcome.recorded, 0);
    assert.equal(outcome.continued, undefined);
  });

  it('a cycle recorded into a group that is no longer current changes nothing', () => {
    const { steps, clock } = boundaries();
    const old = steps.current();
    steps.open('turn', 't');
    steps.recorded(old);
    clock.now = 5000;
    assert.equal(steps.current().kind, 'turn');
  });

  it('labels are one short line', () => {
    assert.equal(shortLabel('  fix\nthe\t\tbug \u001b[31m now '), 'fix the bug [31m now');
    const long = shortLabel('x'.repeat(200));
    assert.equal([...long].length, 80);
    assert.ok(long.endsWith('…'));
    assert.equal(shortLabel('é'.repeat(80)), 'é'.repeat(80));
  });
});
