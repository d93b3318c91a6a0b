import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { emptySyncReport, MAX_LINE_BYTES, MAX_LISTED, type SyncReport } from '../../src/core/protocol';
import type { Entry } from '../../src/core/files/entry';
import type { ScanCache } from '../../src/core/sync/scan';
import { forgetAgreedState, withStateStore } from '../../src/core/sync/engine';
import { HISTORY_FILE, HISTORY_LIMIT, STATE_FORMAT_VERSION, SyncStateFiles } from '../../src/core/sync/stateFiles';
import { countOf, describeReport, HISTORY_LISTED_PATHS, historyAnswer, listedReport, summarizeReport } from '../../src/core/sync/summary';
import { useTempDir } from '../helpers/tempDir';

const file: Entry = { kind: 'file', size: 3, mtimeMs: 1_700_000_000_123.456, mode: 0o755, hash: 'a'.repeat(64) };

/** Keys a plain object would mangle or that need escapes, and every kind an ancestor holds. */
const ANCESTOR = new Map<string, Entry>([
  ['__proto__', file],
  ['constructor', { kind: 'directory', mode: 0o700 }],
  ['constructor/hasOwnProperty', { kind: 'symlink', target: '../__proto__' }],
  ['caf\udce9 \n.txt', { ...file, mode: 0o644 }],
  ['link', { kind: 'symlink', target: '/abs/olute' }],
]);

function report(id: string): SyncReport {
  return emptySyncReport({ id, policy: 'two-way-safe', startedAt: '2025-06-01T12:00:00.000Z', durationMs: 1 });
}

const noTemporaryFiles = (dir: string) => assert.deepEqual(readdirSync(dir).filter((name) => name.endsWith('.tmp')), []);

describe('unit: listedReport (a report as it leaves the agent)', () => {
  const many = <T>(count: number, item: (index: number) => T) => Array.from({ length: count }, (_, index) => item(index));
  const problem = (index: number) => ({ path: `unreadable/file-${index}`, side: 'host' as const, reason: 'cannot read: permission denied' });
  const table: Array<{ name: string; report: SyncReport; listed: Partial<Record<'conflicts' | 'skipped' | 'problems' | 'kept' | 'keptOut', number>> }> = [
    { name: 'a report that fits is unchanged', report: { ...emptySyncReport({ id: 'a', policy: 'two-way-safe', startedAt: '' }), problems: many(10, problem) }, listed: { problems: 10 } },
    { name: 'each list keeps its first MAX_LISTED entries', report: { ...emptySyncReport({ id: 'b', policy: 'two-way-safe', startedAt: '' }), problems: many(1500, problem), kept: many(1200, (index) => ({ path: `k${index}`, side: 'host' as const, keptAt: `/kept/k${index}` })) }, listed: { problems: MAX_LISTED, kept: MAX_LISTED } },
    { name: 'lists of long entries are cut further until the report fits', report: { ...emptySyncReport({ id: 'c', policy: 'two-way-safe', startedAt: '' }), skipped: many(900, (index) => ({ path: `${'deep/'.repeat(200)}f${index}`, side: 'container' as const, code: 'failed' as const, reason: 'no space left on device' })) }, listed: { skipped: 125 } },
  ];
  for (const { name, report: original, listed } of table) {
    it(name, () => {
      const result = listedReport(original);
      assert.ok(Buffer.byteLength(JSON.stringify(result)) <= MAX_LINE_BYTES / 4, 'within a quarter of a message');
      for (const list of ['conflicts', 'skipped', 'problems', 'kept', 'keptOut'] as const) {
        assert.equal(result[list].length, listed[list] ?? 0, `${list} listed`);
        assert.deepEqual(result[list], original[list].slice(0, result[list].length), `${list}: the first entries`);
        assert.equal(countOf(result, list), original[list].length, `${list}: counted whole`);
      }
      assert.deepEqual(summarizeReport(result).conflicts, summarizeReport(original).conflicts);
      assert.equal(describeReport(result), describeReport(original), 'what a client shows of it is unchanged');
    });
  }
  it('a report cut twice still counts every entry once', () => {
    const original = { ...emptySyncReport({ id: 'd', policy: 'two-way-safe', startedAt: '' }), problems: many(3000, problem) };
    const twice = listedReport(listedReport(original), 20_000);
    assert.ok(twice.problems.length < MAX_LISTED);
    assert.equal(countOf(twice, 'problems'), 3000);
  });
});

describe('unit: stateFiles', () => {
  const tempDir = useTempDir('clud-state-');
  const stateIn = (dir: string) => new SyncStateFiles(path.join(dir, 'state'));

  describe('ancestor', () => {
    it('round-trips every entry kind, keys like __proto__, and names with escapes, in order', async () => {
      const state = stateIn(tempDir());
      await state.writeAncestor(ANCESTOR);
      const read = await state.readAncestor();
      assert.deepEqual([...read], [...ANCESTOR]);
      assert.equal(read.get('__proto__')?.kind, 'file');
      noTemporaryFiles(state.directory);
    });

    it('is empty when there is no ancestor file yet', async () => {
      assert.equal((await stateIn(tempDir()).readAncestor()).size, 0);
    });

    const corrupt: Record<string, string> = {
      'not JSON': '{"version":1,"entries":[',
      'another format version': JSON.stringify({ version: STATE_FORMAT_VERSION + 1, entries: [] }),
      'an entry of an unknown kind': JSON.stringify({ version: STATE_FORMAT_VERSION, entries: [['a', { kind: 'socket' }]] }),
      'an object instead of pairs': JSON.stringify({ version: STATE_FORMAT_VERSION, entries: { a: file } }),
    };
    for (const [name, content] of Object.entries(corrupt)) {
      it(`refuses an ancestor file holding ${name}, naming the file`, async () => {
        const state = stateIn(tempDir());
        await state.writeAncestor(new Map());
        writeFileSync(state.ancestorPath, content);
        await assert.rejects(state.readAncestor(), (error: Error) => error.message.includes(state.ancestorPath));
      });
    }
  });

  describe('scan cache', () => {
    const cache: ScanCache = new Map([
      ['__proto__', { size: 1, mtimeMs: 2.5, ctimeMs: 3.5, ino: 4, mode: 0o100644, hash: 'h1' }],
      ['d/f', { size: 5, mtimeMs: 6, ctimeMs: 7, ino: 8, mode: 0o100755, hash: 'h2' }],
    ]);

    it('round-trips per side', async () => {
      const state = stateIn(tempDir());
      await state.writeCache('host', cache);
      await state.writeCache('container', new Map([...cache].slice(1)));
      assert.deepEqual([...(await state.readCache('host'))], [...cache]);
      assert.deepEqual([...(await state.readCache('container'))], [...cache].slice(1));
      noTemporaryFiles(state.directory);
    });

    for (const [name, content] of Object.entries({ 'not JSON': '{', 'of another version': JSON.stringify({ version: 99, entries: [] }), 'of the wrong shape': '{"version":1,"entries":[["a",{"size":"big"}]]}' })) {
      it(`reads a cache file ${name} as empty`, async () => {
        const state = stateIn(tempDir());
        await state.writeCache('host', cache);
        writeFileSync(path.join(state.directory, 'scan-cache-host.json'), content);
        assert.equal((await state.readCache('host')).size, 0);
      });
    }
  });

  describe('rewriting only what changed', () => {
    /** Same inode and mtime: the file was neither replaced nor written. */
    const identity = (file: string) => {
      const stats = statSync(file);
      return `${stats.ino}:${stats.mtimeMs}`;
    };
    const cacheEntry = (hash: string) => ({ size: 1, mtimeMs: 2.5, ctimeMs: 3.5, ino: 4, mode: 0o100644, hash });
    const cachePath = (state: SyncStateFiles) => path.join(state.directory, 'scan-cache-host.json');

    it('leaves the ancestor file alone when it is written back as read, and replaces it on any difference', async () => {
      const dir = tempDir();
      await stateIn(dir).writeAncestor(ANCESTOR);
      const before = identity(stateIn(dir).ancestorPath);

      const state = stateIn(dir);
      await state.writeAncestor(await state.readAncestor());
      assert.equal(identity(state.ancestorPath), before, 'unchanged: not rewritten');

      const reordered = stateIn(dir);
      await reordered.writeAncestor(new Map([...(await reordered.readAncestor())].reverse()));
      assert.notEqual(identity(state.ancestorPath), before, 'the order is part of the ancestor');
      assert.deepEqual([...(await stateIn(dir).readAncestor())], [...ANCESTOR].reverse());

      const edited = stateIn(dir);
      const read = await edited.readAncestor();
      const after = identity(state.ancestorPath);
      // A caller changing the entries it was handed must not make the change look like the file.
      (read.get('__proto__') as { size: number }).size = 4;
      await edited.writeAncestor(read);
      assert.notEqual(identity(state.ancestorPath), after);
      assert.deepEqual((await stateIn(dir).readAncestor()).get('__proto__'), { ...file, size: 4 });
    });

    it('writes the ancestor when nothing was read', async () => {
      const dir = tempDir();
      await stateIn(dir).writeAncestor(ANCESTOR);
      const before = identity(stateIn(dir).ancestorPath);
      await stateIn(dir).writeAncestor(ANCESTOR);
      assert.notEqual(identity(stateIn(dir).ancestorPath), before, 'without a read, every write lands');
    });

    it('leaves a cache file alone when the cache holds the same entries in another order, and replaces it when one differs', async () => {
      const dir = tempDir();
      const cache: ScanCache = new Map([['a', cacheEntry('h1')], ['b', cacheEntry('h2')]]);
      await stateIn(dir).writeCache('host', cache);
      const before = identity(cachePath(stateIn(dir)));

      const state = stateIn(dir);
      await state.writeCache('host', new Map([...(await state.readCache('host'))].reverse()));
      assert.equal(identity(cachePath(state)), before, 'same content: not rewritten');

      for (const changed of [new Map([['a', cacheEntry('h1')], ['b', cacheEntry('h3')]]), new Map([['a', cacheEntry('h1')]]), new Map([['a', cacheEntry('h1')], ['c', cacheEntry('h2')]])]) {
        const writer = stateIn(dir);
        await writer.readCache('host');
        const previous = identity(cachePath(writer));
        await writer.writeCache('host', changed);
        assert.notEqual(identity(cachePath(writer)), previous);
        assert.deepEqual([...(await stateIn(dir).readCache('host'))], [...changed]);
      }
      noTemporaryFiles(stateIn(dir).directory);
    });

    it('writes a cache whose file could not be read, even when the new cache is empty', async () => {
      const dir = tempDir();
      const state = stateIn(dir);
      await state.writeCache('host', new Map());
      writeFileSync(cachePath(state), '{');
      const reader = stateIn(dir);
      assert.equal((await reader.readCache('host')).size, 0);
      await reader.writeCache('host', new Map());
      assert.deepEqual(JSON.parse(readFileSync(cachePath(state), 'utf8')), { version: STATE_FORMAT_VERSION, entries: [] });
    });
  });

  describe('halt', () => {
    it('round-trips, and clearHalt removes it', async () => {
      const state = stateIn(tempDir());
      assert.equal(await state.readHalt(), undefined);
      const halt = { side: 'container' as const, reason: 'the container scan found nothing', at: '2025-06-01T12:00:00.000Z' };
      await state.writeHalt(halt);
      assert.deepEqual(await state.readHalt(), halt);
      await state.clearHalt();
      assert.equal(await state.readHalt(), undefined);
      await state.clearHalt(); // no halt to clear is fine
    });

    it('forgetAgreedState drops the halt and the store\'s ancestor, and keeps the caches and the history', async () => {
      const state = stateIn(tempDir());
      await state.writeHalt({ side: 'host', reason: 'r', at: 'now' });
      await state.appendHistory(report('one'));
      await withStateStore(state.directory, (store) => store.commit({ ancestor: ANCESTOR, host: new Map([['a', { size: 1, mtimeMs: 1, ctimeMs: 1, ino: 1, mode: 1, hash: 'h' }]]) }));

      await withStateStore(state.directory, forgetAgreedState);

      assert.equal(await state.readHalt(), undefined);
      await withStateStore(state.directory, async (store) => {
        assert.equal(store.ancestor.size, 0);
        assert.equal(store.host.size, 1);
      });
      assert.deepEqual((await state.readHistory()).map((entry) => entry.id), ['one']);
    });
  });

  describe('history', () => {
    const historyFile = (state: SyncStateFiles) => path.join(state.directory, HISTORY_FILE);
    /** A report of a sync that carried 1,000 paths (the most a report lists): about 90 KB. */
    const bigReport = (id: string): SyncReport => ({ ...report(id), applied: Array.from({ length: 1000 }, (_, index) => ({ path: `src/some/folder/file-${index}.ts`, side: 'host' as const, action: 'update' as const })), appliedCount: 1000 });

    it('lists reports newest first', async () => {
      const state = stateIn(tempDir());
      for (const id of ['first', 'second', 'third']) await state.appendHistory(report(id));
      assert.deepEqual((await state.readHistory()).map((entry) => entry.id), ['third', 'second', 'first']);
      noTemporaryFiles(state.directory);
    });

    it(`lists at most ${HISTORY_LIMIT} reports, the newest`, async () => {
      const state = stateIn(tempDir());
      for (let index = 0; index < HISTORY_LIMIT + 5; index += 1) await state.appendHistory(report(`r${index}`));
      const ids = (await state.readHistory()).map((entry) => entry.id);
      assert.equal(ids.length, HISTORY_LIMIT);
      assert.equal(ids[0], `r${HISTORY_LIMIT + 4}`);
      assert.equal(ids.at(-1), 'r5', 'r0 to r4, the oldest, are not listed');
    });

    it('appends a report without rewriting the history, and cuts the file back to the last reports once it has grown', async () => {
      const state = stateIn(tempDir());
      await state.appendHistory(bigReport('first'));
      const before = readFileSync(historyFile(state), 'utf8');
      const inode = statSync(historyFile(state)).ino;
      await state.appendHistory(bigReport('second'));
      assert.equal(statSync(historyFile(state)).ino, inode, 'appended in place, not replaced');
      assert.ok(readFileSync(historyFile(state), 'utf8').startsWith(before), 'what was there is untouched');

      for (let index = 0; index < HISTORY_LIMIT + 30; index += 1) await state.appendHistory(bigReport(`r${index}`));
      const lines = readFileSync(historyFile(state), 'utf8').split('\n').filter((line) => line !== '');
      const header = JSON.parse(lines[0]!) as { keptBytes: number };
      // Never more than twice what the last cut kept, and one report.
      assert.ok(statSync(historyFile(state)).size <= 2 * header.keptBytes + JSON.stringify(bigReport('x')).length + 100 + lines[0]!.length);
      assert.ok(lines.length - 1 < 2 * HISTORY_LIMIT, `${lines.length - 1} reports in the file`);
      const ids = (await state.readHistory()).map((entry) => entry.id);
      assert.equal(ids.length, HISTORY_LIMIT);
      assert.equal(ids[0], `r${HISTORY_LIMIT + 29}`);
      noTemporaryFiles(state.directory);
    });

    it('answers a client with every report the history lists, each with its first paths only, in one message', async () => {
      const state = stateIn(tempDir());
      for (let index = 0; index < HISTORY_LIMIT; index += 1) await state.appendHistory(bigReport(`r${index}`));
      const reports = await state.readHistory();
      assert.ok(Buffer.byteLength(JSON.stringify({ reports })) > MAX_LINE_BYTES, 'the whole history is more than a client reads');
      const answer = historyAnswer(reports);
      assert.ok(Buffer.byteLength(JSON.stringify({ kind: 'result', id: 1, result: { reports: answer } })) <= MAX_LINE_BYTES);
      assert.deepEqual(answer.map((entry) => entry.id), reports.map((entry) => entry.id));
      assert.deepEqual(answer[0]!.applied, reports[0]!.applied.slice(0, HISTORY_LISTED_PATHS));
      assert.deepEqual(answer.map(describeReport), reports.map(describeReport), 'what a client shows of each report is unchanged');
    });

    it('answers with the newest reports that fit in one message, however long their other lists are', async () => {
      const problems = Array.from({ length: 2000 }, (_, index) => ({ path: `unreadable/file-${index}`, side: 'host' as const, reason: 'cannot read: permission denied' }));
      const reports = Array.from({ length: 10 }, (_, index) => ({ ...report(`r${index}`), problems }));
      const answer = historyAnswer(reports);
      assert.ok(answer.length > 0 && answer.length < reports.length, `${answer.length} of ${reports.length} reports`);
      assert.deepEqual(answer.map((entry) => entry.id), reports.slice(0, answer.length).map((entry) => entry.id), 'the newest');
      assert.ok(Buffer.byteLength(JSON.stringify({ reports: answer })) <= MAX_LINE_BYTES);
    });

    it('stores a report whose lists are too long for a message with their first entries, the rest counted', async () => {
      const state = stateIn(tempDir());
      const conflicts = Array.from({ length: 5000 }, (_, index) => ({ path: `src/formatted/file-${index}.ts`, ancestor: file, host: file, container: file }));
      await state.appendHistory({ ...report('many'), conflicts });
      const [stored] = await state.readHistory();
      assert.ok(stored!.conflicts.length > 0 && stored!.conflicts.length < 5000, `${stored!.conflicts.length} listed`);
      assert.equal(countOf(stored!, 'conflicts'), 5000);
      assert.ok(Buffer.byteLength(JSON.stringify({ reports: historyAnswer([stored!]) })) <= MAX_LINE_BYTES);
    });

    it('reads an absent or corrupt history as empty, and starts it again', async () => {
      const state = stateIn(tempDir());
      assert.deepEqual(await state.readHistory(), []);
      await state.appendHistory(report('lost'));
      writeFileSync(historyFile(state), '{"version":1,"keptBy');
      assert.deepEqual(await state.readHistory(), []);
      await state.appendHistory(report('after'));
      assert.deepEqual((await state.readHistory()).map((entry) => entry.id), ['after']);
    });

    it('a line torn by a crash is left out, and the next report still gets a line of its own', async () => {
      const state = stateIn(tempDir());
      await state.appendHistory(report('before'));
      writeFileSync(historyFile(state), '{"id":"torn","pol', { flag: 'a' });
      assert.deepEqual((await state.readHistory()).map((entry) => entry.id), ['before']);
      await state.appendHistory(report('after'));
      assert.deepEqual((await state.readHistory()).map((entry) => entry.id), ['after', 'before']);
    });

    it("takes over an older Clud's history.json", async () => {
      const state = stateIn(tempDir());
      mkdirSync(state.directory, { recursive: true });
      writeFileSync(path.join(state.directory, 'history.json'), JSON.stringify({ version: STATE_FORMAT_VERSION, reports: [report('newer'), report('older')] }));
      assert.deepEqual((await state.readHistory()).map((entry) => entry.id), ['newer', 'older']);
      await state.appendHistory(report('newest'));
      assert.deepEqual((await state.readHistory()).map((entry) => entry.id), ['newest', 'newer', 'older']);
      assert.equal(existsSync(path.join(state.directory, 'history.json')), false);
    });

    it('fills in fields added since a report was written (retries)', async () => {
      const state = stateIn(tempDir());
      await state.appendHistory(report('seed'));
      const { retries: _retries, ...older } = report('older');
      writeFileSync(historyFile(state), `${JSON.stringify(older)}\n`, { flag: 'a' });
      assert.equal((await state.readHistory())[0]?.retries, 0);
    });
  });

  it('keeps each sync\'s losing versions in kept/<id>', () => {
    assert.equal(new SyncStateFiles('/state').keptDirectory('20250601T120000Z-abcdef'), path.join('/state', 'kept', '20250601T120000Z-abcdef'));
  });
});
