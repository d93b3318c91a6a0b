// The sync on a file system that stamps times in whole seconds (ext4 made with 128-byte inodes,
// as ext3 and old ext4 file systems are; Linux before 6.13 stamps ext4 in ticks of up to 10 ms,
// and these machines stamp finer, so the tick is made long enough to aim at). A same-size
// rewrite within the second of the last change keeps size, times and inode: a record of the file
// made in that second must not be trusted later, or the rewrite never crosses. The file system is
// a file mounted through a loop device, which needs root: CI runs as root, and there the test
// never skips.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSyncCycle } from '../../src/core/sync/engine';
import type { Side } from '../../src/core/sync/reconcile';
import { makeWorkspace, openLog, ops, plannedChange, step } from '../helpers/undoTrees';

describe('integration: a file system that stamps whole seconds', function () {
  this.timeout(60_000);
  let work: string | undefined;
  let mountPoint: string;

  before(function () {
    if (process.getuid?.() !== 0) {
      if (process.env.CI) throw new Error('the coarse-timestamp tests mount a file system and need root, which CI has');
      this.skip();
    }
    work = mkdtempSync(path.join(os.tmpdir(), 'clud-coarse-'));
    const image = path.join(work, 'seconds.img');
    mountPoint = path.join(work, 'mnt');
    mkdirSync(mountPoint);
    execFileSync('truncate', ['-s', '32M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-I', '128', image], { stdio: ['ignore', 'ignore', 'ignore'] });
    execFileSync('mount', ['-o', 'loop', image, mountPoint]);
  });

  after(() => {
    if (!work) return;
    // Lazily: a failed test may leave a file open there (an undo step's capture worker).
    execFileSync('umount', ['--lazy', mountPoint]);
    rmSync(work, { recursive: true, force: true });
  });

  let round = 0;
  /** Fresh roots on the mounted file system, and a state folder beside them. */
  function fixture(): { roots: Record<Side, string>; sync: () => ReturnType<typeof runSyncCycle> } {
    const base = path.join(mountPoint, `round-${(round += 1)}`);
    const roots = { host: path.join(base, 'host'), container: path.join(base, 'container') };
    for (const root of Object.values(roots)) mkdirSync(root, { recursive: true });
    const stateDir = path.join(work!, `state-${round}`);
    return { roots, sync: () => runSyncCycle({ roots, stateDir, policy: 'two-way-safe', excludes: [] }) };
  }

  /** Waits for the start of a second, so that what follows (a few cycles of a few files: milliseconds) happens within it. */
  async function startOfSecond(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
  }

  const second = (file: string) => Math.floor(statSync(file).ctimeMs / 1000);

  /** The undo tests' sample workspace and its log, on the mounted file system; `file` is its src/a.ts. */
  async function undoSample(name: string) {
    const base = path.join(mountPoint, name);
    mkdirSync(base);
    const workspace = await makeWorkspace(base);
    return { workspace, log: await openLog(workspace), file: path.join(workspace.root, 'src/a.ts') };
  }

  it('a rewrite of the same size in the second a scan read the file still crosses', async () => {
    const { roots, sync } = fixture();
    writeFileSync(path.join(roots.host, 'a.txt'), 'old');
    await sync();
    await startOfSecond();
    const file = path.join(roots.host, 'a.txt');
    writeFileSync(file, 'one');
    const stampedAt = second(file);
    await sync(); // reads and records the file in this second
    assert.equal(readFileSync(path.join(roots.container, 'a.txt'), 'utf8'), 'one');
    writeFileSync(file, 'two');
    assert.equal(second(file), stampedAt, 'the rewrite came in the same second (the test was too slow to show anything)');
    await sync();
    assert.equal(readFileSync(path.join(roots.container, 'a.txt'), 'utf8'), 'two', 'the scan trusted a record made in the second of the change');
  });

  it('a file the sync has just written, rewritten in the same second, crosses back', async () => {
    const { roots, sync } = fixture();
    await startOfSecond();
    writeFileSync(path.join(roots.container, 'b.txt'), 'one');
    await sync(); // writes the host's copy with the container's mtime, and records it
    const file = path.join(roots.host, 'b.txt');
    assert.equal(readFileSync(file, 'utf8'), 'one');
    const writtenAt = second(file);
    writeFileSync(file, 'two');
    assert.equal(second(file), writtenAt, 'the rewrite came in the same second (the test was too slow to show anything)');
    await sync();
    assert.equal(readFileSync(path.join(roots.container, 'b.txt'), 'utf8'), 'two', 'the record of what the sync wrote hid the rewrite');
  });

  it('an edit of the same size in the second an undo step wrote the file is a barrier: undo does not take it for the step\'s own', async () => {
    const { workspace, log, file } = await undoSample('undo');
    await startOfSecond();
    await step(log, workspace, (writer) => ops.write(writer, workspace.root, 'src/a.ts', 'from the sync'));
    const writtenAt = second(file);
    writeFileSync(file, 'FROM THE USER');
    assert.equal(second(file), writtenAt, 'the edit came in the same second (the test was too slow to show anything)');
    assert.deepEqual((await log.detectBarriers(workspace.root)).map(({ path: key, change }) => `${key}: ${change}`), ['src/a.ts: content changed']);
    const undone = await log.undo({ steps: 1, force: false, root: workspace.root });
    assert.notEqual(undone.refused, undefined, 'the undo went ahead over the edit');
    assert.equal(readFileSync(file, 'utf8'), 'FROM THE USER');
  });

  it("a capture an undo step's plan made in the second of the file's last change is made again at the change", async () => {
    const { workspace, log, file } = await undoSample('capture');
    /** The journal lines of the open step that save the file's own preimage. */
    const capturesOfFile = () => {
      const [open] = readdirSync(path.join(workspace.undoDir, 'in-progress'));
      return readFileSync(path.join(workspace.undoDir, 'in-progress', open!, 'journal.jsonl'), 'utf8').trim().split('\n').slice(1)
        .map((line) => JSON.parse(line) as { path?: string; pre?: { metadataOnly?: boolean } })
        .filter((entry) => entry.path === 'src/a.ts' && entry.pre?.metadataOnly !== true).length;
    };
    // The step must come within the second of the file's change, or it shows nothing: on a busy
    // machine that can miss, and the whole of it is tried again (the file made anew).
    for (let attempt = 1; ; attempt += 1) {
      await startOfSecond();
      writeFileSync(file, `export const a = ${attempt + 1};\n`);
      const writtenAt = second(file);
      let inTime = false;
      await step(log, workspace, async (writer) => {
        await writer.prepare([plannedChange(workspace.root, 'src/a.ts', 'delete')]);
        await ops.delete(writer, workspace.root, 'src/a.ts');
        inTime = Math.floor(Date.now() / 1000) === writtenAt;
        if (inTime) assert.equal(capturesOfFile(), 2, 'the plan\'s capture, made in the second of the change before it, was taken as current');
      });
      if (inTime) break;
      assert.ok(attempt < 5, 'the step never came in the second of the file\'s change (the machine was too slow to show anything)');
    }
  });
});
