import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pathAndAncestors } from '../../src/core/files/entry';
import { BURST_EVENTS, TreeWatcher, type DirtyBatch, type TreeWatcherOptions, type WatchDegraded } from '../../src/core/sync/watcher';
import { useTempDir } from '../helpers/tempDir';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** A started watcher and what it delivered. */
async function watching(root: string, options: Partial<TreeWatcherOptions> = {}) {
  const batches: DirtyBatch[] = [];
  const degraded: WatchDegraded[] = [];
  const watcher = new TreeWatcher(root, { excludes: [], quietMs: 60, onBatch: (batch) => batches.push(batch), ...options });
  watcher.on('degraded', (reason) => degraded.push(reason));
  await watcher.start();
  return { watcher, batches, degraded };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Whether `path` is covered by the batches: reported itself or under a reported folder. */
const covered = (batches: readonly DirtyBatch[], path: string) => batches.some((batch) => batch.rescan || pathAndAncestors(path).some((key) => batch.paths.includes(key)));

function write(root: string, relative: string, content = 'x'): void {
  mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
  writeFileSync(path.join(root, relative), content);
}

describe('unit: sync tree watcher', () => {
  const tempDir = useTempDir('clud-watch-');
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());


  it('keeps a watch in under 650 bytes of heap: the listeners are shared, not made per folder', async () => {
    const root = tempDir();
    for (let i = 0; i < 8_000; i += 1) mkdirSync(path.join(root, `d${i % 80}`, `e${i}`), { recursive: true });
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    const { watcher } = await watching(root);
    stop = () => watcher.close();
    gc();
    gc();
    const perWatch = (process.memoryUsage().heapUsed - before) / watcher.watchCount;
    assert.equal(watcher.watchCount, 8_081);
    assert.ok(perWatch < 650, `${Math.round(perWatch)} bytes of heap per watch`);
  });
  it('reports a written file as one dirty path once the tree is quiet', async () => {
    write(tempDir(), 'src/deep/a.txt');
    const { watcher, batches } = await watching(tempDir());
    stop = () => watcher.close();
    assert.equal(watcher.watchCount, 3, 'root, src, src/deep: one watch per folder');
    write(tempDir(), 'src/deep/a.txt', 'changed');
    await waitFor(() => batches.length > 0, 'a batch');
    assert.deepEqual(batches, [{ paths: ['src/deep/a.txt'], rescan: false }]);
  });

  it('coalesces a burst of 500 files into few batches that cover every file', async () => {
    const { watcher, batches } = await watching(tempDir());
    stop = () => watcher.close();
    for (let i = 0; i < 500; i += 1) write(tempDir(), `burst/f${i}.txt`, `${i}`);
    for (let i = 0; i < 100; i += 1) write(tempDir(), `top${i}.txt`, `${i}`);
    await sleep(400);
    assert.ok(batches.length >= 1 && batches.length <= 3, `${batches.length} batches`);
    for (let i = 0; i < 500; i += 1) assert.ok(covered(batches, `burst/f${i}.txt`), `burst/f${i}.txt`);
    for (let i = 0; i < 100; i += 1) assert.ok(covered(batches, `top${i}.txt`), `top${i}.txt`);
    // The new folder stands for its files: the cycle rescans its subtree.
    assert.ok(batches.flatMap((batch) => batch.paths).length < 150, 'paths under a dirty folder are not listed again');
  });

  it('says a burst is under way once a batch has BURST_EVENTS events, before that batch is delivered; a few saves say nothing', async () => {
    mkdirSync(path.join(tempDir(), 'src'));
    const said: number[] = [];
    const { watcher, batches } = await watching(tempDir(), { onBurst: () => said.push(batches.length) });
    stop = () => watcher.close();
    for (let i = 0; i < 5; i += 1) write(tempDir(), `src/save${i}.txt`, `${i}`);
    await waitFor(() => covered(batches, 'src/save4.txt'), 'the saves');
    assert.deepEqual(said, [], 'five saves are no burst');
    const before = batches.length;
    // Into a folder already watched: every file's events reach the watcher.
    for (let i = 0; i < BURST_EVENTS; i += 1) write(tempDir(), `src/f${i}.txt`, `${i}`);
    await waitFor(() => covered(batches, `src/f${BURST_EVENTS - 1}.txt`), 'the burst');
    assert.equal(said[0], before, 'said before the burst\'s first batch was delivered');
    assert.equal(said.length, batches.length - before, 'once per batch of the burst');
  });

  it('watches a folder created after the start, and forgets one that is deleted', async () => {
    const { watcher, batches } = await watching(tempDir());
    stop = () => watcher.close();
    mkdirSync(path.join(tempDir(), 'new/inner'), { recursive: true });
    await waitFor(() => watcher.watchCount === 3, 'watches on the new folders');
    await waitFor(() => batches.length > 0, 'the first batch');
    batches.length = 0;
    write(tempDir(), 'new/inner/late.txt');
    await waitFor(() => covered(batches, 'new/inner/late.txt'), 'the file written in the new folder');
    rmSync(path.join(tempDir(), 'new'), { recursive: true });
    await waitFor(() => watcher.watchCount === 1, 'the deleted folders unwatched');
  });

  it('puts no watch on ignored folders, .git or node_modules, and reports nothing from them', async () => {
    write(tempDir(), '.gitignore', 'build/\n*.log\n');
    write(tempDir(), 'build/out/x.js');
    write(tempDir(), '.git/objects/ab/cdef');
    write(tempDir(), 'node_modules/pkg/lib/index.js');
    write(tempDir(), 'src/a.ts');
    const { watcher, batches } = await watching(tempDir(), { excludes: ['secret/'] });
    stop = () => watcher.close();
    write(tempDir(), 'secret/key.pem');
    assert.equal(watcher.watchCount, 2, 'the root and src only');
    await sleep(150);
    batches.length = 0;
    write(tempDir(), 'build/out/y.js');
    write(tempDir(), '.git/objects/ab/other');
    write(tempDir(), 'node_modules/pkg/lib/index.js', 'changed');
    write(tempDir(), 'secret/key.pem', 'changed');
    write(tempDir(), 'debug.log');
    await sleep(250);
    assert.deepEqual(batches, []);
  });

  it('re-reads the rules below a changed .gitignore: a folder it no longer ignores gets a watch', async () => {
    write(tempDir(), '.gitignore', 'gen/\n');
    write(tempDir(), 'gen/a/file.txt');
    const { watcher, batches } = await watching(tempDir());
    stop = () => watcher.close();
    assert.equal(watcher.watchCount, 1);
    write(tempDir(), '.gitignore', '# nothing ignored\n');
    await waitFor(() => watcher.watchCount === 3, 'watches on gen and gen/a');
    await waitFor(() => batches.some((batch) => batch.rescan), 'a rescan for the root folder whose rules changed');
    batches.length = 0;
    write(tempDir(), 'gen/a/file.txt', 'changed');
    await waitFor(() => covered(batches, 'gen/a/file.txt'), 'the now-synced file');
  });

  it('watches a root that was deleted and made again from scratch, asking for a full rescan', async () => {
    const root = path.join(tempDir(), 'root');
    write(root, 'a/file.txt');
    const { watcher, batches } = await watching(root, { pollIntervalMs: 100 });
    stop = () => watcher.close();
    rmSync(root, { recursive: true });
    await waitFor(() => batches.some((batch) => batch.rescan), 'a rescan once the root is gone');
    await waitFor(() => watcher.watchCount === 0, 'the old watches released');
    write(root, 'b/new.txt');
    await waitFor(() => watcher.watchCount === 2, 'the new root and its folder watched');
    batches.length = 0;
    write(root, 'b/new.txt', 'changed');
    await waitFor(() => covered(batches, 'b/new.txt'), 'a change in the new root');
  });

  it('polls when told to: says so once and delivers rescan batches', async () => {
    write(tempDir(), 'a.txt');
    const { watcher, batches, degraded } = await watching(tempDir(), { poll: true, pollIntervalMs: 100 });
    stop = () => watcher.close();
    assert.equal(watcher.watchCount, 0);
    assert.equal(watcher.watching, false);
    await waitFor(() => batches.length >= 2, 'two polls');
    assert.ok(batches.every((batch) => batch.rescan));
    assert.deepEqual(degraded.map((reason) => reason.code), ['WATCH_POLLING']);
  });

  it('falls back to polling on ENOSPC, naming fs.inotify.max_user_watches once', function () {
    // A user namespace with its own, low watch limit: the machine's limit is not touched.
    if (spawnSync('unshare', ['--user', '--map-root-user', 'true']).status !== 0) this.skip();
    for (let i = 0; i < 30; i += 1) mkdirSync(path.join(tempDir(), `d${i}`, 'inner'), { recursive: true });
    const script = `
      const { TreeWatcher } = require(${JSON.stringify(path.join(REPO_ROOT, 'src/core/sync/watcher.ts'))});
      const batches = []; const degraded = [];
      const watcher = new TreeWatcher(${JSON.stringify(tempDir())}, { excludes: [], quietMs: 30, pollIntervalMs: 100, onBatch: (b) => batches.push(b) });
      watcher.on('degraded', (d) => degraded.push(d));
      watcher.start().then(() => setTimeout(() => {
        console.log(JSON.stringify({ degraded, batches: batches.length, rescans: batches.every((b) => b.rescan), watching: watcher.watching, watches: watcher.watchCount }));
        watcher.close();
      }, 500));`;
    const output = execFileSync('unshare', ['--user', '--map-root-user', 'sh', '-c', `echo 20 > /proc/sys/user/max_inotify_watches && exec "$0" --import tsx -e "$1"`, process.execPath, script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    const result = JSON.parse(output) as { degraded: WatchDegraded[]; batches: number; rescans: boolean; watching: boolean; watches: number };
    assert.deepEqual(result.degraded.map((reason) => reason.code), ['WATCH_LIMIT']);
    assert.match(result.degraded[0]?.message ?? '', /fs\.inotify\.max_user_watches/);
    assert.equal(result.watching, false);
    assert.equal(result.watches, 0, 'the watches it had are released');
    assert.ok(result.batches >= 2 && result.rescans, 'full rescans, periodically');
  });
});
