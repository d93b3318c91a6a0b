// A record of a file's metadata vouches for its content only when a later change must move its
// times: not within the tick of a coarse file-system clock after its last change (git's "racy
// clean"). These kernels stamp fine-grained times, so the tick is shown by the clock readings
// the records are judged against, and by files written just now.
import assert from 'node:assert/strict';
import { statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FILE_TIME_TICK_MS, isRacy, lstatAsWritten, UNKNOWN_CTIME, vouchingCtime } from '../../src/core/files/fsEntry';
import { currentPostimage } from '../../src/core/undo/fsState';
import { pastTimestampTick, withinOneTick } from '../helpers/syncTrees';
import { useTempDir } from '../helpers/tempDir';

describe('unit: file times that cannot vouch for a file (racy clean)', () => {
  const tempDir = useTempDir('clud-racy-');
  const SEEN_AT = 1_700_000_000_500;

  const cases: Array<[string, number, boolean]> = [
    ['changed within the tick before the look', SEEN_AT - FILE_TIME_TICK_MS + 1, true],
    ['changed a tick before the look', SEEN_AT - FILE_TIME_TICK_MS - 1, false],
    ['stamped after the look (another clock ahead)', SEEN_AT + 40, true],
    ['a whole second, within two seconds of the look (a file system that keeps seconds)', 1_700_000_000_000 - 1_000, true],
    ['a whole second, more than two seconds before the look', 1_700_000_000_000 - 2_000, false],
  ];
  for (const [name, timeMs, racy] of cases) {
    it(`${name}: ${racy ? 'racy' : 'vouches'}`, () => {
      assert.equal(isRacy(timeMs, SEEN_AT), racy);
      assert.equal(vouchingCtime(timeMs, SEEN_AT), racy ? UNKNOWN_CTIME : timeMs);
    });
  }

  it('a file just written with its own mtime is not taken as written; one whose mtime was set a tick back is, while it keeps size and mtime', async () => {
    const file = path.join(tempDir(), 'f.txt');
    const justWritten = await withinOneTick(() => {
      writeFileSync(file, 'content');
      return lstatAsWritten(Buffer.from(file), statSync(file));
    });
    assert.equal(justWritten, undefined, 'a later write in the same tick would keep this mtime');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    const setBack = statSync(file);
    assert.equal(lstatAsWritten(Buffer.from(file), setBack)?.ino, setBack.ino);
    assert.equal(lstatAsWritten(Buffer.from(file), { size: setBack.size + 1, mtimeMs: setBack.mtimeMs }), undefined);
    assert.equal(lstatAsWritten(Buffer.from(path.join(tempDir(), 'missing')), setBack), undefined);
  });

  it("an undo step's record of what it left keeps no ctime for a file changed within the tick, and keeps it a tick later", async () => {
    const file = path.join(tempDir(), 'g.txt');
    const now = await withinOneTick(() => {
      writeFileSync(file, 'left by the step');
      return currentPostimage(Buffer.from(file));
    });
    assert.ok(now.kind === 'file');
    assert.equal(now.ctimeMs, UNKNOWN_CTIME);
    await pastTimestampTick();
    const later = await currentPostimage(Buffer.from(file), now);
    assert.ok(later.kind === 'file');
    assert.equal(later.ctimeMs, statSync(file).ctimeMs);
    assert.equal(later.hash, now.hash);
  });
});
