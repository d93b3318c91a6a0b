import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { cacheHolds, sameScanCacheEntry, type CacheStat, type ScanCacheEntry } from '../../src/core/sync/scan';
import { ScanCacheTable } from '../../src/core/sync/scanCacheTable';

const record = (i: number, secret?: string | false): ScanCacheEntry => ({
  size: 1_000 + i,
  mtimeMs: 1_733_400_000_123.5 + i / 7,
  ctimeMs: 1_733_400_000_999.25 + i / 3,
  ino: 2 ** 40 + i,
  mode: 0o100755,
  hash: String(i).padStart(64, '0'),
  ...(secret !== undefined && { secret }),
});

describe('unit: scan cache table (one side’s cache in typed columns)', () => {
  it('reads back every field exactly as set, a secret’s three states included', () => {
    const table = new ScanCacheTable();
    const records = new Map<string, ScanCacheEntry>([
      ['unjudged', record(1)],
      ['clean', record(2, false)],
      ['key.pem', record(3, 'a private key')],
      ['empty reason', record(4, '')],
    ]);
    for (const [key, value] of records) table.set(key, value);
    for (const [key, value] of records) {
      assert.deepEqual(table.get(key), value, key);
      assert.equal(JSON.stringify(table.get(key)), JSON.stringify(value), `${key}: the same fields in the same order`);
      assert.ok(sameScanCacheEntry(table.get(key), value));
    }
    assert.equal('secret' in table.get('unjudged')!, false, 'a record never judged has no secret field');
    assert.equal(table.get('missing'), undefined);
  });

  it('answers holds, hashOf and secretOf from the columns exactly as cacheHolds and the record would', () => {
    const table = new ScanCacheTable();
    const stored = { unjudged: record(1), clean: record(2, false), secret: record(3, 'a private key') };
    for (const [key, value] of Object.entries(stored)) table.set(key, value);
    const statOf = (value: ScanCacheEntry): CacheStat => ({ size: value.size, mtimeMs: value.mtimeMs, ctimeMs: value.ctimeMs, ino: value.ino, mode: value.mode });
    for (const [key, value] of Object.entries(stored)) {
      const same = statOf(value);
      const variants: CacheStat[] = [same, { ...same, size: same.size + 1 }, { ...same, mtimeMs: same.mtimeMs + 0.001 }, { ...same, ctimeMs: same.ctimeMs - 1 }, { ...same, ino: same.ino + 1 }, { ...same, mode: 0o100644 }];
      for (const stat of variants) assert.equal(table.holds(key, stat), cacheHolds(table.get(key)!, stat), `${key} ${JSON.stringify(stat)}`);
      assert.equal(table.hashOf(key), value.hash);
      assert.equal(table.secretOf(key), value.secret);
    }
    assert.equal(table.holds('clean', statOf(stored.clean)), true, 'a record holds for its own stat');
    assert.equal(table.holds('unjudged', statOf(stored.unjudged)), false, 'a record without a content verdict never holds');
    assert.equal(table.holds('missing', statOf(stored.clean)), false);
    assert.equal(table.hashOf('missing'), undefined);
    assert.equal(table.secretOf('missing'), undefined);
  });

  it('keeps a Map’s order and counts through sets, replacements, deletions and reuse of rows', () => {
    const table = new ScanCacheTable();
    const map = new Map<string, ScanCacheEntry>();
    const both = (op: (m: Map<string, ScanCacheEntry>) => unknown) => {
      op(table);
      op(map);
    };
    for (let i = 0; i < 1_000; i += 1) both((m) => m.set(`file-${i}`, record(i)));
    for (let i = 0; i < 1_000; i += 3) both((m) => m.delete(`file-${i}`));
    for (let i = 0; i < 1_000; i += 5) both((m) => m.set(`file-${i}`, record(i + 10_000, i % 2 === 0 ? false : 'reason')));
    for (let i = 1_000; i < 1_400; i += 1) both((m) => m.set(`file-${i}`, record(i)));
    assert.equal(table.size, map.size);
    assert.deepEqual([...table.keys()], [...map.keys()]);
    assert.deepEqual([...table], [...map]);
    assert.deepEqual([...table.values()], [...map.values()]);
    const visited: string[] = [];
    table.forEach((value, key) => {
      assert.deepEqual(value, map.get(key));
      visited.push(key);
    });
    assert.deepEqual(visited, [...map.keys()]);
    assert.equal(table.delete('file-3'), false, 'deleted already');
    assert.equal(table.has('file-1'), true);
    table.clear();
    assert.equal(table.size, 0);
    table.set('again', record(5));
    assert.deepEqual([...table], [['again', record(5)]]);
  });

  it('holds 50,000 records in well under the memory of a Map of objects', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const keys = Array.from({ length: 50_000 }, (_, i) => `src/folder-${i % 97}/file-${i}.ts`);
    const hashes = keys.map((_, i) => String(i).padStart(64, '0'));
    const used = () => {
      gc();
      gc(); // the second one frees the column buffers the table grew out of
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const fill = (m: Map<string, ScanCacheEntry>) => {
      for (let i = 0; i < keys.length; i += 1) m.set(keys[i]!, { ...record(i, false), hash: hashes[i]! });
      return m;
    };
    const beforeMap = used();
    const map = fill(new Map());
    const mapBytes = used() - beforeMap;
    const beforeTable = used();
    const table = fill(new ScanCacheTable());
    const tableBytes = used() - beforeTable;
    assert.equal(table.size, map.size);
    assert.ok(tableBytes < 0.7 * mapBytes, `the table takes ${tableBytes} bytes, a Map of objects ${mapBytes}`);
  });
});
