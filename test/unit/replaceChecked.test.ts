// replaceChecked on real files: every interleaving of a writer with the replacement that can be
// forced from one process ends with each complete version somewhere (at the path, or kept), and
// with no temporary sibling left behind.
import assert from 'node:assert/strict';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { keepUnder, replaceChecked } from '../../src/core/files/replaceChecked';
import type { Expectation, ReplaceResult } from '../../src/core/files/replaceChecked';
import { useTempDir } from '../helpers/tempDir';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const b = (file: string) => Buffer.from(file);

describe('unit: replaceChecked', () => {
  const temp = useTempDir('clud-replace-');
  const dirs = () => ({ tree: path.join(temp(), 'tree'), kept: path.join(temp(), 'kept') });

  /** A tree with `name` holding `content`, found (lstat) as the apply would, and a staged new version. */
  function setup(content = 'old version', next = 'new version') {
    const { tree, kept } = dirs();
    mkdirSync(tree, { recursive: true });
    const target = path.join(tree, 'f.txt');
    writeFileSync(target, content);
    const foundAt = Date.now();
    const expect: Expectation = { found: lstatSync(target), foundAt, hash: sha256(content) };
    const staged = path.join(tree, '.clud-sync-staged.tmp');
    writeFileSync(staged, next);
    return { tree, kept, target, staged, expect, keep: keepUnder(kept, 'f.txt') };
  }

  const siblings = (tree: string) => readdirSync(tree).filter((name) => name.startsWith('.clud-sync-'));
  const keptContents = (result: ReplaceResult) => result.kept.map((copy) => readFileSync(copy.keptAt, 'utf8'));

  it('replaces the expected version and leaves no temporary behind', async () => {
    const { tree, target, staged, expect, keep } = setup();
    const result = await replaceChecked(b(target), b(staged), expect, { keep });
    assert.deepEqual(result, { ok: true, kept: [] });
    assert.equal(readFileSync(target, 'utf8'), 'new version');
    assert.deepEqual(siblings(tree), []);
  });

  it('keeps the displaced version when asked (a conflict loser), from what was moved aside', async () => {
    const { target, staged, expect, keep } = setup();
    const result = await replaceChecked(b(target), b(staged), expect, { keep, keepDisplaced: true });
    assert.equal(result.ok, true);
    assert.deepEqual(keptContents(result), ['old version']);
    assert.equal(readFileSync(target, 'utf8'), 'new version');
  });

  it('no other task of the process finds the path missing while a file is replaced: nothing between the move aside and the link waits', async () => {
    const { tree, target, staged, keep } = setup();
    let missing = 0;
    let replacing = true;
    // Runs at every turn of the event loop, as the apply's other changes, the watchers and a
    // client's request do.
    const observer = (async () => {
      while (replacing) {
        if (!existsSync(target)) missing += 1;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let round = 0; round < 30; round += 1) {
      // Older than a tick, as a file the user saved a while ago: no content check is due.
      const old = Date.now() / 1000 - 3600;
      utimesSync(target, old, old);
      const expect: Expectation = { found: lstatSync(target), foundAt: Date.now(), hash: sha256(readFileSync(target, 'utf8')) };
      writeFileSync(staged, `version ${round}`);
      const result = await replaceChecked(b(target), b(staged), expect, { keep });
      assert.deepEqual(result, { ok: true, kept: [] });
    }
    replacing = false;
    await observer;
    assert.equal(readFileSync(target, 'utf8'), 'version 29');
    assert.equal(missing, 0, `the path was missing at ${missing} turn(s) of the event loop`);
    assert.deepEqual(siblings(tree), []);
  });

  it('an editor renamed a new version over the target after it was found: theirs stays, nothing is replaced', async () => {
    const { tree, target, staged, expect, keep } = setup();
    writeFileSync(path.join(tree, 'editor.tmp'), 'editor version');
    renameSync(path.join(tree, 'editor.tmp'), target);
    const result = await replaceChecked(b(target), b(staged), expect, { keep });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'replaced since the scan');
    assert.equal(readFileSync(target, 'utf8'), 'editor version');
    assert.deepEqual(siblings(tree), []);
  });

  it('a same-size rewrite in the same timestamp tick (mtime unchanged) is told by content', async () => {
    const { target, staged, expect, keep } = setup('aaaa');
    const { mtime, atime } = lstatSync(target);
    writeFileSync(target, 'bbbb'); // in place: same inode, same size
    utimesSync(target, atime, mtime); // as if within one tick of a coarse clock
    const result = await replaceChecked(b(target), b(staged), expect, { keep });
    assert.equal(!result.ok && result.reason, 'modified since the scan');
    assert.equal(readFileSync(target, 'utf8'), 'bbbb');
  });

  it('an in-place rewrite between moving aside and verifying: the rewritten version goes back', async () => {
    const { tree, target, staged, expect, keep } = setup();
    const result = await replaceChecked(b(target), b(staged), expect, {
      keep,
      between: (point, aside) => {
        if (point === 'moved-aside') writeFileSync(aside, 'rewritten in place, longer'); // a writer holding the inode
      },
    });
    assert.equal(!result.ok && result.reason, 'modified since the scan');
    assert.equal(readFileSync(target, 'utf8'), 'rewritten in place, longer');
    assert.deepEqual(siblings(tree), []);
  });

  it('a file created at the path while the old one is aside: theirs stays, the old one is kept', async () => {
    const { tree, target, staged, expect, keep } = setup();
    const result = await replaceChecked(b(target), b(staged), expect, {
      keep,
      between: (point) => {
        if (point === 'verified') writeFileSync(target, 'created meanwhile');
      },
    });
    assert.equal(!result.ok && result.reason, 'created since the scan');
    assert.equal(readFileSync(target, 'utf8'), 'created meanwhile');
    assert.deepEqual(keptContents(result), ['old version']);
    assert.deepEqual(siblings(tree), []);
  });

  it('a changed version that cannot go back because the path was taken is kept', async () => {
    const { tree, target, staged, expect, keep } = setup();
    const result = await replaceChecked(b(target), b(staged), expect, {
      keep,
      between: (point, aside) => {
        if (point !== 'moved-aside') return;
        writeFileSync(aside, 'changed, longer than before');
        writeFileSync(target, 'created meanwhile');
      },
    });
    assert.equal(result.ok, false);
    assert.equal(readFileSync(target, 'utf8'), 'created meanwhile');
    assert.deepEqual(keptContents(result), ['changed, longer than before']);
    assert.deepEqual(siblings(tree), []);
  });

  it('a writer that opened the file before it was moved aside and writes after it was verified: salvaged into the kept folder', async () => {
    const { tree, target, staged, expect, keep } = setup();
    const writer = openSync(target, 'r+'); // opened before the rename, as `printf > f` may be
    try {
      const result = await replaceChecked(b(target), b(staged), expect, {
        keep,
        between: (point) => {
          if (point === 'verified') writeSync(writer, 'late write, through an old descriptor', 0);
        },
      });
      assert.equal(result.ok, true);
      assert.equal(readFileSync(target, 'utf8'), 'new version');
      assert.deepEqual(keptContents(result), ['late write, through an old descriptor']);
      assert.deepEqual(result.kept.map((copy) => copy.reason), ['written-after']);
      assert.deepEqual(siblings(tree), []);
    } finally {
      closeSync(writer);
    }
  });

  it('a creation refuses a file that appeared since the scan', async () => {
    const { tree, kept } = dirs();
    mkdirSync(tree, { recursive: true });
    const target = path.join(tree, 'new.txt');
    const staged = path.join(tree, '.clud-sync-staged.tmp');
    writeFileSync(staged, 'ours');
    writeFileSync(target, 'theirs');
    const result = await replaceChecked(b(target), b(staged), { found: undefined, foundAt: Date.now() }, { keep: keepUnder(kept, 'new.txt') });
    assert.equal(!result.ok && result.reason, 'created since the scan');
    assert.equal(readFileSync(target, 'utf8'), 'theirs');
    assert.deepEqual(siblings(tree), []);
  });

  it('a target deleted since it was found is reported, and the staged version is not left behind', async () => {
    const { tree, target, staged, expect, keep } = setup();
    unlinkSync(target);
    const result = await replaceChecked(b(target), b(staged), expect, { keep });
    assert.equal(!result.ok && result.reason, 'deleted since the scan');
    assert.equal(existsSync(target), false);
    assert.deepEqual(siblings(tree), []);
  });

  it('a deletion removes the expected version, and leaves a rewritten one in place', async () => {
    const first = setup();
    unlinkSync(first.staged); // a deletion stages nothing
    const deleted = await replaceChecked(b(first.target), undefined, first.expect, { keep: first.keep });
    assert.equal(deleted.ok, true);
    assert.equal(existsSync(first.target), false);

    writeFileSync(first.target, 'v1');
    const expect: Expectation = { found: lstatSync(first.target), foundAt: Date.now(), hash: sha256('v1') };
    const refused = await replaceChecked(b(first.target), undefined, expect, {
      keep: first.keep,
      between: (point, aside) => {
        if (point === 'moved-aside') writeFileSync(aside, 'v2, written in place');
      },
    });
    assert.equal(refused.ok, false);
    assert.equal(readFileSync(first.target, 'utf8'), 'v2, written in place');
    assert.deepEqual(siblings(first.tree), []);
  });

  it('links: replaced as links (never followed), and a retargeted link is put back', async () => {
    const { tree, kept } = dirs();
    mkdirSync(tree, { recursive: true });
    const target = path.join(tree, 'l');
    symlinkSync('old-target', target);
    const expect: Expectation = { found: lstatSync(target), foundAt: Date.now(), linkTarget: 'old-target' };
    const staged = path.join(tree, '.clud-sync-staged.tmp');
    symlinkSync('new-target', staged);
    const replaced = await replaceChecked(b(target), b(staged), expect, { keep: keepUnder(kept, 'l'), keepDisplaced: true });
    assert.equal(replaced.ok, true);
    assert.equal(readlinkSync(target), 'new-target');
    assert.deepEqual(replaced.kept.map((copy) => readlinkSync(copy.keptAt)), ['old-target']);

    const stale: Expectation = { found: lstatSync(target), foundAt: Date.now(), linkTarget: 'something else' };
    symlinkSync('third', staged);
    const refused = await replaceChecked(b(target), b(staged), stale, { keep: keepUnder(kept, 'l') });
    assert.equal(!refused.ok && refused.reason, 'link retargeted since the scan');
    assert.equal(readlinkSync(target), 'new-target');
    assert.deepEqual(siblings(tree), []);
  });

  it('a second kept copy of one path in one folder gets its own name', async () => {
    const { kept } = dirs();
    const first = setup('one');
    await replaceChecked(b(first.target), b(first.staged), first.expect, { keep: first.keep, keepDisplaced: true });
    const expect: Expectation = { found: lstatSync(first.target), foundAt: Date.now(), hash: sha256('new version') };
    writeFileSync(first.staged, 'third');
    const second = await replaceChecked(b(first.target), b(first.staged), expect, { keep: first.keep, keepDisplaced: true });
    assert.deepEqual(second.kept.map((copy) => path.relative(kept, copy.keptAt)), ['f.txt~2']);
    assert.equal(readFileSync(path.join(kept, 'f.txt'), 'utf8'), 'one');
    assert.equal(readFileSync(path.join(kept, 'f.txt~2'), 'utf8'), 'new version');
  });
});
