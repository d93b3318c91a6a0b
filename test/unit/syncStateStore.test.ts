import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Entry } from '../../src/core/files/entry';
import type { ScanCacheEntry } from '../../src/core/sync/scan';
import { SyncStateFiles } from '../../src/core/sync/stateFiles';
import { BASE_FILE, JOURNAL_FILE, SyncStateStore } from '../../src/core/sync/stateStore';
import { onSmallDisk, useTempDir } from '../helpers/tempDir';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const file = (hash: string): Entry => ({ kind: 'file', size: 3, mtimeMs: 1_700_000_000_123.456, mode: 0o644, hash });
const cached = (hash: string): ScanCacheEntry => ({ size: 3, mtimeMs: 1_700_000_000_123.456, ctimeMs: 1_700_000_000_200.5, ino: 42, mode: 0o100644, hash });

const ANCESTOR = new Map<string, Entry>([
  ['__proto__', file('a'.repeat(64))],
  ['constructor', { kind: 'directory', mode: 0o700 }],
  ['constructor/hasOwnProperty', { kind: 'symlink', target: '../__proto__' }],
  ['caf\udce9 \n.txt', file('b'.repeat(64))],
]);

const contents = (store: SyncStateStore) => ({ ancestor: [...store.ancestor].sort(), host: [...store.host].sort(), container: [...store.container].sort() });

describe('unit: sync state store (journal + base)', () => {
  const tempDir = useTempDir('clud-store-');
  const stateDir = () => path.join(tempDir(), 'state');
  /** The agreed entries a new open of the store finds; the store is closed again (an open journal left to the collector warns). */
  const ancestorOnDisk = async () => {
    const store = await SyncStateStore.open(stateDir());
    const ancestor = new Map(store.ancestor);
    await store.close();
    return ancestor;
  };

  it('keeps every entry kind and awkward keys across a reopen, deletions included', async () => {
    const store = await SyncStateStore.open(stateDir());
    await store.commit({ ancestor: ANCESTOR, host: new Map([['__proto__', cached('a'.repeat(64))]]) });
    await store.commit({ ancestor: new Map([['caf\udce9 \n.txt', undefined]]), container: new Map([['x', cached('c')]]) });
    const expected = contents(store);
    await store.close();
    const reopened = await SyncStateStore.open(stateDir());
    assert.deepEqual(contents(reopened), expected);
    assert.equal(reopened.ancestor.has('caf\udce9 \n.txt'), false);
    assert.equal(reopened.ancestor.get('__proto__')?.kind, 'file');
    assert.equal(reopened.lastSequence, 2);
    await reopened.close();
  });

  it('holds one string per path for all three tables once loaded, not one per table', async () => {
    // Long paths, few entries: three copies of every path would be most of what the tables take.
    const paths = Array.from({ length: 4_000 }, (_, i) => `${'deep-folder/'.repeat(80)}file-${i}.txt`);
    const store = await SyncStateStore.open(stateDir());
    await store.commit({
      ancestor: new Map(paths.map((key, i) => [key, file(String(i).padStart(64, '0'))])),
      host: new Map(paths.map((key, i) => [key, cached(String(i).padStart(64, '0'))])),
      container: new Map(paths.map((key, i) => [key, cached(String(i).padStart(64, '0'))])),
    });
    await store.close();
    const pathBytes = paths.reduce((sum, key) => sum + key.length, 0);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed;
    const reopened = await SyncStateStore.open(stateDir());
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    assert.equal(reopened.container.size, paths.length);
    assert.ok(grown < 2 * pathBytes, `the loaded tables take ${grown} bytes; one copy of their paths is ${pathBytes}`);
    await reopened.close();
  });

  it('reads back a line longer than its read chunk, names with multi-byte characters included', async () => {
    const store = await SyncStateStore.open(stateDir());
    const many = new Map<string, Entry>();
    const caches = new Map<string, ScanCacheEntry>();
    for (let i = 0; i < 7_000; i += 1) {
      many.set(`folder/file-${i}-é.txt`, file(String(i).padStart(64, '0')));
      caches.set(`folder/file-${i}-é.txt`, cached(String(i).padStart(64, '0')));
    }
    many.set('folder', { kind: 'directory', mode: 0o755 });
    await store.commit({ ancestor: many, host: caches });
    await store.close();
    const journalBytes = readFileSync(path.join(stateDir(), JOURNAL_FILE)).length;
    assert.ok(journalBytes > 2 ** 21, `one line over two chunks: ${journalBytes} bytes`);
    const reopened = await SyncStateStore.open(stateDir());
    assert.equal(reopened.ancestor.size, 7_001);
    assert.equal((reopened.ancestor.get('folder/file-6999-é.txt') as { hash: string }).hash, '6999'.padStart(64, '0'));
    assert.equal(reopened.host.get('folder/file-5-é.txt')?.hash, '5'.padStart(64, '0'));
    await reopened.close();
  });

  it('writes nothing for a commit that changes nothing, and only the changed records otherwise', async () => {
    const store = await SyncStateStore.open(stateDir());
    await store.commit({ ancestor: ANCESTOR });
    const before = readFileSync(path.join(stateDir(), JOURNAL_FILE), 'utf8');
    assert.equal(await store.commit({ ancestor: new Map(ANCESTOR) }), 1, 'same records: no new commit');
    assert.equal(readFileSync(path.join(stateDir(), JOURNAL_FILE), 'utf8'), before);
    const whole = new Map(ANCESTOR).set('new', file('d'));
    await store.commit({ ancestor: store.diff('ancestor', whole) });
    const lastLine = readFileSync(path.join(stateDir(), JOURNAL_FILE), 'utf8').trim().split('\n').at(-1) ?? '';
    assert.deepEqual(JSON.parse(lastLine), [2, [[0, 'new', file('d')]]]);
    await store.close();
  });

  it("takes over today's ancestor.json and scan caches, and removes them", async () => {
    const files = new SyncStateFiles(stateDir());
    await files.writeAncestor(ANCESTOR);
    await files.writeCache('host', new Map([['__proto__', cached('a'.repeat(64))]]));
    await files.writeCache('container', new Map([['constructor/x', cached('e')]]));
    const store = await SyncStateStore.open(stateDir());
    assert.deepEqual([...store.ancestor], [...ANCESTOR]);
    assert.deepEqual([...store.host], [['__proto__', cached('a'.repeat(64))]]);
    assert.deepEqual([...store.container], [['constructor/x', cached('e')]]);
    for (const old of ['ancestor.json', 'scan-cache-host.json', 'scan-cache-container.json']) assert.equal(existsSync(path.join(stateDir(), old)), false, old);
    await store.close();
    assert.deepEqual([...(await ancestorOnDisk())], [...ANCESTOR]);
  });

  it('replace: the directory holds exactly the new tables, not the old base, journal or state files', async () => {
    const old = await SyncStateStore.open(stateDir());
    await old.commit({ ancestor: ANCESTOR, host: new Map([['gone', cached('f')]]) });
    await old.commit({ container: new Map([['gone', cached('g')]]) }); // a journal line beyond the base
    await old.close();
    await new SyncStateFiles(stateDir()).writeCache('host', new Map([['stale', cached('h')]]));
    const ancestor = new Map<string, Entry>([['kept', file('d'.repeat(64))]]);
    await SyncStateStore.replace(stateDir(), { ancestor, host: new Map([['kept', cached('d'.repeat(64))]]), container: new Map([['kept', cached('d'.repeat(64))]]) });
    const store = await SyncStateStore.open(stateDir());
    assert.deepEqual(contents(store), { ancestor: [...ancestor], host: [['kept', cached('d'.repeat(64))]], container: [['kept', cached('d'.repeat(64))]] });
    assert.equal(existsSync(path.join(stateDir(), 'scan-cache-host.json')), false);
    assert.equal(readFileSync(path.join(stateDir(), JOURNAL_FILE), 'utf8'), '');
    await store.commit({ ancestor: new Map([['next', file('e'.repeat(64))]]) });
    await store.close();
    const reopened = await SyncStateStore.open(stateDir());
    assert.equal(reopened.ancestor.size, 2);
    await reopened.close();
  });

  it('drops a torn last line (a commit that never returned) and carries on after it', async () => {
    const store = await SyncStateStore.open(stateDir());
    await store.commit({ ancestor: ANCESTOR });
    await store.close();
    appendFileSync(path.join(stateDir(), JOURNAL_FILE), '[2,[[0,"half-writ');
    const reopened = await SyncStateStore.open(stateDir());
    assert.deepEqual([...reopened.ancestor].sort(), [...ANCESTOR].sort());
    assert.equal(reopened.lastSequence, 1);
    await reopened.commit({ ancestor: new Map([['after', file('f')]]) });
    await reopened.close();
    const again = await SyncStateStore.open(stateDir());
    assert.equal(again.ancestor.get('after')?.kind, 'file');
    assert.equal(again.lastSequence, 2);
    await again.close();
  });

  it('a commit the disk stops short fails with ENOSPC and leaves no part of its line: the next commit and a reopen read on', async function () {
    mkdirSync(stateDir());
    await onSmallDisk(this, stateDir(), '64k', async () => {
      const store = await SyncStateStore.open(stateDir());
      try {
        await store.commit({ ancestor: new Map([['kept.txt', file('a'.repeat(64))]]) });
        // Fill the disk but for a little: the next line starts and is cut off.
        const filler = path.join(stateDir(), 'filler');
        execFileSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=1k count=$(( $(df --output=avail -k ${stateDir()} | tail -1) - 4 )) 2>/dev/null; true`]);
        const many = new Map(Array.from({ length: 400 }, (_, index): [string, Entry] => [`a-file-with-a-longish-name-${index}.txt`, file('b'.repeat(64))]));
        await assert.rejects(store.commit({ ancestor: many }), /sync state: ENOSPC/);
        assert.ok(readFileSync(path.join(stateDir(), JOURNAL_FILE), 'utf8').endsWith('\n'), 'a part of the failed line was left in the journal');
        assert.equal(store.ancestor.has('a-file-with-a-longish-name-0.txt'), false, 'memory holds what the disk does not');
        rmSync(filler);
        await store.commit({ ancestor: new Map([['after.txt', file('c'.repeat(64))]]) });
      } finally {
        await store.close();
      }
      assert.deepEqual([...(await ancestorOnDisk()).keys()].sort(), ['after.txt', 'kept.txt']);
    });
  });

  it('refuses a journal damaged before its last line rather than guessing', async () => {
    const store = await SyncStateStore.open(stateDir());
    await store.commit({ ancestor: ANCESTOR });
    await store.commit({ ancestor: new Map([['x', file('x')]]) });
    await store.close();
    const journal = path.join(stateDir(), JOURNAL_FILE);
    writeFileSync(journal, readFileSync(journal, 'utf8').replace('"x"', '"x'));
    await assert.rejects(SyncStateStore.open(stateDir()), /not JSON/);
  });

  it('survives a crash at each point of a compaction', async () => {
    const store = await SyncStateStore.open(stateDir());
    await store.commit({ ancestor: ANCESTOR });
    await store.commit({ ancestor: new Map([['late', file('9')]]) });
    const expected = contents(store);
    const oldJournal = path.join(tempDir(), 'journal-before');
    copyFileSync(path.join(stateDir(), JOURNAL_FILE), oldJournal);
    await store.compact();
    await store.close();
    // Died after the new base was renamed into place but before the journal was replaced.
    copyFileSync(oldJournal, path.join(stateDir(), JOURNAL_FILE));
    writeFileSync(path.join(stateDir(), `${BASE_FILE}.tmp`), '{"version":1,"sequence":99}\n[0,"half'); // an unfinished later base
    const reopened = await SyncStateStore.open(stateDir());
    assert.deepEqual(contents(reopened), expected);
    assert.equal(reopened.lastSequence, 2);
    await reopened.commit({ ancestor: new Map([['next', file('n')]]) });
    await reopened.close();
    assert.equal((await ancestorOnDisk()).get('next')?.kind, 'file');
  });

  it('loses no commit that returned when SIGKILLed at a random moment, compactions included', async function () {
    this.timeout(60_000);
    // A child commits "k<n>" in commit n (compacting every 25) and prints n once commit() returned.
    const script = `
      const { SyncStateStore } = require(${JSON.stringify(path.join(REPO_ROOT, 'src/core/sync/stateStore.ts'))});
      (async () => {
        const store = await SyncStateStore.open(${JSON.stringify(stateDir())});
        for (let n = store.lastSequence + 1; ; n += 1) {
          const entry = { kind: 'file', size: n, mtimeMs: n, mode: 420, hash: 'h'.repeat(64) };
          await store.commit({ ancestor: new Map([['k' + n, entry]]), host: new Map([['k' + n, { size: n, mtimeMs: n, ctimeMs: n, ino: n, mode: 33188, hash: 'h'.repeat(64) }]]) });
          process.stdout.write(n + '\\n');
          if (n % 25 === 0) await store.compact();
        }
      })();`;
    for (const delayMs of [250, 400, 600]) {
      const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
      await new Promise<void>((resolve) => {
        const waitForFirst = setInterval(() => {
          if (output === '') return;
          clearInterval(waitForFirst);
          setTimeout(() => { child.kill('SIGKILL'); resolve(); }, delayMs);
        }, 10);
      });
      await new Promise((resolve) => child.once('exit', resolve));
      const acknowledged = Math.max(...output.trim().split('\n').map(Number));
      const store = await SyncStateStore.open(stateDir());
      assert.ok(store.lastSequence >= acknowledged, `commit ${acknowledged} returned, the store holds ${store.lastSequence}`);
      for (let n = 1; n <= store.lastSequence; n += 1) {
        assert.equal((store.ancestor.get(`k${n}`) as { size: number } | undefined)?.size, n, `k${n}`);
        assert.equal(store.host.get(`k${n}`)?.size, n);
      }
      assert.equal(store.ancestor.size, store.lastSequence, 'nothing beyond the last commit');
      await store.close();
    }
  });
});
