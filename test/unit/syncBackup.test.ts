// Conflict backups on real trees: both versions of every differing file copied aside with a
// manifest, listed newest first, and put back on one side.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, watch } from 'node:fs';
import * as path from 'node:path';
import { BackupManifest, MAX_LISTED } from '../../src/core/protocol';
import { backupDifferences, listBackups, restoreBackup, type BackupOptions } from '../../src/core/sync/backup';
import { scanTree } from '../../src/core/sync/scan';
import { DIR, link, makeTree, modeOf, mtimeOf, readTree, useSyncFixture, type SyncFixture } from '../helpers/syncTrees';

/** Exact in binary: see FileSpec.mtimeMs. */
const MTIME = 1_600_000_000_500;

const optionsOf = (f: SyncFixture): BackupOptions => ({ roots: f.roots, stateDir: f.stateDir, excludes: [] });
const backupFolder = (f: SyncFixture, id: string): string => path.join(f.stateDir, 'backups', id);

/** Runs `body` with `new Date()` answering `clock.now` (Date.now stays real). */
async function withClock<T>(clock: { now: number }, body: () => Promise<T>): Promise<T> {
  const RealDate = Date;
  class ClockDate extends RealDate {
    constructor(value?: number | string | Date) {
      super(value ?? clock.now);
    }
  }
  globalThis.Date = ClockDate as DateConstructor;
  try {
    return await body();
  } finally {
    globalThis.Date = RealDate;
  }
}

describe('unit: sync backup', () => {
  const fixture = useSyncFixture('clud-backup-');

  /** Two sides that differ in every way a backup cares about, and agree or ignore elsewhere. */
  function differingSides(f: SyncFixture): void {
    const common = { same: 'same on both', '.gitignore': 'ignored.txt\n', 'empty-on-both': DIR };
    makeTree(f.host, { ...common, 'd/f.txt': { content: 'host f', mtimeMs: MTIME }, l: link('a'), 'host-only.txt': 'h', 'run.sh': { content: 'x', mode: 0o644 }, 'ignored.txt': 'host ignored' });
    makeTree(f.container, { ...common, 'd/f.txt': { content: 'container f', mode: 0o600 }, l: link('b'), 'only/c.txt': 'c', 'run.sh': { content: 'x', mode: 0o755 }, 'ignored.txt': 'container ignored', 'container-dir': DIR });
  }

  describe('backupDifferences', () => {
    it('copies both versions of each differing file and link, with their mode and mtime, and a manifest', async () => {
      const f = fixture();
      differingSides(f);
      const [host, container] = [(await scanTree(f.host, { excludes: [] })).snapshot, (await scanTree(f.container, { excludes: [] })).snapshot];

      const manifest = await backupDifferences(optionsOf(f));

      const folder = backupFolder(f, manifest.id);
      const { 'manifest.json': manifestFile, ...copies } = readTree(folder);
      assert.deepEqual(copies, {
        container: DIR,
        'container/d': DIR,
        'container/d/f.txt': 'container f',
        'container/l': link('b'),
        'container/only': DIR,
        'container/only/c.txt': 'c',
        'container/run.sh': 'x',
        host: DIR,
        'host/d': DIR,
        'host/d/f.txt': 'host f',
        'host/host-only.txt': 'h',
        'host/l': link('a'),
        'host/run.sh': 'x',
      });
      assert.deepEqual([modeOf(folder, 'host/run.sh'), modeOf(folder, 'container/run.sh'), modeOf(folder, 'container/d/f.txt')], [0o644, 0o755, 0o600]);
      assert.equal(mtimeOf(folder, 'host/d/f.txt'), MTIME);
      assert.deepEqual(BackupManifest.parse(JSON.parse(manifestFile!)), manifest, 'manifest.json holds the returned manifest');
      assert.deepEqual(manifest.entries, [
        { path: 'd/f.txt', host: host.get('d/f.txt'), container: container.get('d/f.txt') },
        { path: 'host-only.txt', host: host.get('host-only.txt') },
        { path: 'l', host: host.get('l'), container: container.get('l') },
        { path: 'only/c.txt', container: container.get('only/c.txt') },
        { path: 'run.sh', host: host.get('run.sh'), container: container.get('run.sh') },
      ]);
    });

    it('writes a manifest without entries when nothing differs, and changes neither side', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'a', d: DIR });
      makeTree(f.container, { 'a.txt': 'a', d: DIR });

      const manifest = await backupDifferences(optionsOf(f));

      assert.deepEqual(manifest.entries, []);
      assert.deepEqual(readdirSync(backupFolder(f, manifest.id)), ['manifest.json']);
      assert.deepEqual(readTree(f.host), { 'a.txt': 'a', d: DIR });
      assert.deepEqual(readTree(f.container), { 'a.txt': 'a', d: DIR });
    });

    it('leaves out what the user excludes', async () => {
      const f = fixture();
      makeTree(f.host, { 'dist/a.js': 'host build', 'keep.txt': 'host' });
      makeTree(f.container, { 'dist/a.js': 'container build', 'keep.txt': 'container' });

      const manifest = await backupDifferences({ ...optionsOf(f), excludes: ['dist/'] });

      assert.deepEqual(manifest.entries.map((entry) => entry.path), ['keep.txt']);
    });

    it('leaves out a path ignored on only one side', async () => {
      const f = fixture();
      makeTree(f.host, { '.gitignore': 'secret.txt\n', 'secret.txt': 'host secret' });
      makeTree(f.container, { '.gitignore': '# nothing\n', 'secret.txt': 'container secret', 'only-here.env': 'x' });

      const manifest = await backupDifferences(optionsOf(f));

      assert.deepEqual(manifest.entries.map((entry) => entry.path), ['.gitignore', 'only-here.env']);
      assert.deepEqual(Object.keys(readTree(backupFolder(f, manifest.id))).filter((key) => key.endsWith('secret.txt')), []);
    });

    it('leaves out a path one side ignores even when only the other side has it, as the sync does', async () => {
      const f = fixture();
      makeTree(f.host, { '.gitignore': 'secret.txt\nbuild/\n', 'a.txt': 'same' });
      makeTree(f.container, { '.gitignore': 'secret.txt\nbuild/\n', 'a.txt': 'same', 'secret.txt': 'container secret', 'build/out.js': 'x' });
      // The container's own rules match the host's here, so only the host-side check can leave them out.
      makeTree(f.container, { '.gitignore': '# nothing\n' });

      const manifest = await backupDifferences(optionsOf(f));

      assert.deepEqual(manifest.entries.map((entry) => entry.path), ['.gitignore']);
    });
  });

  describe('listBackups', () => {
    it('lists every backup newest first, skipping folders without a readable manifest', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'one' });
      const clock = { now: Date.UTC(2025, 5, 1, 12, 0, 0) };
      const ids: string[] = [];
      await withClock(clock, async () => {
        for (let index = 0; index < 3; index += 1) {
          ids.push((await backupDifferences(optionsOf(f))).id);
          clock.now += 1000;
        }
      });
      makeTree(path.join(f.stateDir, 'backups'), { 'no-manifest': DIR, 'broken/manifest.json': '{"id": 5' });

      const backups = await listBackups(f.stateDir);

      assert.deepEqual(backups.map((backup) => backup.id), [...ids].reverse());
      assert.deepEqual(backups.map((backup) => backup.createdAt), ['2025-06-01T12:00:02.000Z', '2025-06-01T12:00:01.000Z', '2025-06-01T12:00:00.000Z']);
      assert.deepEqual(backups[0]!.entries.map((entry) => entry.path), ['a.txt']);
    });

    it('is empty when no backup was ever made', async () => {
      assert.deepEqual(await listBackups(fixture().stateDir), []);
    });

    // Regression test for a bug fixed after it was found.
    it('lists backups made within the same second newest first', async () => {
      const f = fixture();
      makeTree(f.host, { 'a.txt': 'one' });
      const clock = { now: Date.UTC(2025, 5, 1, 12, 0, 0) };
      const ids: string[] = [];
      await withClock(clock, async () => {
        for (let index = 0; index < 8; index += 1) {
          ids.push((await backupDifferences(optionsOf(f))).id);
          clock.now += 10;
        }
      });

      assert.deepEqual((await listBackups(f.stateDir)).map((backup) => backup.id), [...ids].reverse());
    });
  });

  describe('restoreBackup', () => {
    it('answers a large restore with its first paths and counts them all', async function () {
      this.timeout(30_000);
      const f = fixture();
      const count = MAX_LISTED + 200;
      makeTree(f.host, Object.fromEntries(Array.from({ length: count }, (_, index) => [`many/f${index}.txt`, `host ${index}`])));
      const manifest = await backupDifferences(optionsOf(f));
      rmSync(path.join(f.host, 'many'), { recursive: true });
      const result = await restoreBackup({ ...optionsOf(f), id: manifest.id, side: 'host' });
      assert.equal(result.appliedCount, count + 1, 'every file and their folder');
      assert.equal(result.applied.length, MAX_LISTED);
      assert.equal(Object.keys(readTree(f.host)).filter((key) => key.startsWith('many/')).length, count);
    });

    it("puts one side's versions back, keeping what it replaces under kept/, and leaves the other side alone", async () => {
      const f = fixture();
      differingSides(f);
      const manifest = await backupDifferences(optionsOf(f));
      makeTree(f.container, { 'd/f.txt': 'edited after the backup', 'only/c.txt': 'also edited' });
      rmSync(path.join(f.container, 'l'));
      makeTree(f.container, { l: link('elsewhere') });
      rmSync(path.join(f.container, 'run.sh'));
      const hostBefore = readTree(f.host);

      const result = await restoreBackup({ ...optionsOf(f), id: manifest.id, side: 'container' });

      assert.deepEqual(result.skipped, []);
      assert.deepEqual(result.applied.map((change) => `${change.action} ${change.side}:${change.path}`).sort(), ['create container:run.sh', 'update container:d/f.txt', 'update container:l', 'update container:only/c.txt']);
      const tree = readTree(f.container);
      assert.deepEqual([tree['d/f.txt'], tree.l, tree['only/c.txt'], tree['run.sh']], ['container f', link('b'), 'c', 'x']);
      assert.equal(modeOf(f.container, 'run.sh'), 0o755);
      assert.equal(tree['host-only.txt'], undefined, "the host's versions are not put in the container");
      assert.deepEqual(readTree(f.host), hostBefore);
      const keptFolders = readdirSync(path.join(f.stateDir, 'kept'));
      assert.equal(keptFolders.length, 1);
      assert.match(keptFolders[0]!, /-restore$/);
      assert.deepEqual(readTree(path.join(f.stateDir, 'kept', keptFolders[0]!)), {
        container: DIR,
        'container/d': DIR,
        'container/d/f.txt': 'edited after the backup',
        'container/l': link('elsewhere'),
        'container/only': DIR,
        'container/only/c.txt': 'also edited',
      });
      assert.deepEqual(result.kept.map((kept) => kept.path).sort(), ['d/f.txt', 'l', 'only/c.txt']);
    });

    it("puts the host's versions back on the host", async () => {
      const f = fixture();
      differingSides(f);
      const manifest = await backupDifferences(optionsOf(f));
      makeTree(f.host, { 'd/f.txt': 'edited after the backup' });
      rmSync(path.join(f.host, 'host-only.txt'));

      const result = await restoreBackup({ ...optionsOf(f), id: manifest.id, side: 'host' });

      assert.deepEqual(result.applied.map((change) => change.path).sort(), ['d/f.txt', 'host-only.txt']);
      assert.deepEqual([readTree(f.host)['d/f.txt'], readTree(f.host)['host-only.txt']], ['host f', 'h']);
      assert.equal(readTree(f.container)['d/f.txt'], 'container f');
    });

    it('skips a file modified between its scan and its restore, and keeps the edit', async () => {
      const f = fixture();
      const big = 'x'.repeat(2 * 1024 * 1024);
      makeTree(f.host, { 'a.bin': big, 'sub/b.txt': 'host b' });
      makeTree(f.container, { 'a.bin': 'container a', 'sub/b.txt': 'container b' });
      const manifest = await backupDifferences(optionsOf(f));
      makeTree(f.host, { 'a.bin': 'changed', 'sub/b.txt': 'changed' });
      // a.bin (depth 1) is restored before sub/b.txt (depth 2) is checked. It is copied to a
      // temporary name first; the moment that name appears, sub/b.txt is edited. Copying 2 MB
      // takes many more turns of the event loop than delivering the watch event does.
      let edited = false;
      const watcher = watch(f.host, (_event, name) => {
        if (edited || !String(name).startsWith('.clud-sync-')) return;
        edited = true;
        makeTree(f.host, { 'sub/b.txt': 'edited during the restore' });
        watcher.close();
      });
      try {
        const result = await restoreBackup({ ...optionsOf(f), id: manifest.id, side: 'host' });

        assert.ok(edited, 'the edit happened during the restore');
        assert.deepEqual(result.applied.map((change) => change.path), ['a.bin']);
        assert.deepEqual(result.skipped, [{ path: 'sub/b.txt', side: 'host', code: 'changed-since-scan', reason: 'modified since the scan' }]);
        assert.equal(readFileSync(path.join(f.host, 'sub/b.txt'), 'utf8'), 'edited during the restore');
        assert.equal(readFileSync(path.join(f.host, 'a.bin'), 'utf8'), big);
      } finally {
        watcher.close();
      }
    });

    it('refuses an unknown backup id', async () => {
      const f = fixture();
      await assert.rejects(restoreBackup({ ...optionsOf(f), id: '20250601T120000Z-000000', side: 'host' }), /no backup 20250601T120000Z-000000/);
    });

    // Regression test for a bug fixed after it was found.
    it('restores a file whose directory was deleted since the backup', async () => {
      const f = fixture();
      differingSides(f);
      const manifest = await backupDifferences(optionsOf(f));
      rmSync(path.join(f.container, 'only'), { recursive: true });

      const result = await restoreBackup({ ...optionsOf(f), id: manifest.id, side: 'container' });

      assert.deepEqual(result.skipped, []);
      assert.equal(readTree(f.container)['only/c.txt'], 'c');
    });
  });
});
