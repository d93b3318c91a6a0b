import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import ignore from 'ignore';
import { IgnoreRules, rebaseGitignore } from '../../src/core/sync/ignore';
import { nameFromBytes } from '../../src/core/files/pathCodec';
import { scanTree } from '../../src/core/sync/scan';
import { useTempDir } from '../helpers/tempDir';

const FILE = false;
const DIR = true;

/** Rules as a walker would hold them in `directory`, given .gitignore contents by directory, parents first. */
function rulesAt(gitignores: Record<string, string>, userExcludes: readonly string[] = []): IgnoreRules {
  let rules = IgnoreRules.create(userExcludes);
  for (const [directory, content] of Object.entries(gitignores)) rules = rules.withGitignore(directory, content);
  return rules;
}

describe('unit: sync ignore rules', () => {
  it('ignores the built-in litter at any depth', () => {
    const rules = IgnoreRules.create([]);
    assert.equal(rules.ignores('.DS_Store', FILE), true);
    assert.equal(rules.ignores('a/b/.DS_Store', FILE), true);
    assert.equal(rules.ignores('src/main.ts.swp', FILE), true);
    assert.equal(rules.ignores('src/main.ts', FILE), false);
  });

  it('always ignores .git, as a directory or a file (worktrees, submodules), at any depth', () => {
    const rules = IgnoreRules.create([]);
    assert.equal(rules.ignores('.git', DIR), true);
    assert.equal(rules.ignores('.git', FILE), true);
    assert.equal(rules.ignores('vendor/lib/.git', DIR), true);
    assert.equal(rules.ignores('.github', DIR), false);
    assert.equal(rules.ignores('.gitignore', FILE), false);
  });

  it('applies user excludes in gitignore syntax, negation included', () => {
    const rules = IgnoreRules.create(['dist/', '*.tmp', '!important.tmp']);
    assert.equal(rules.ignores('dist', DIR), true);
    assert.equal(rules.ignores('dist', FILE), false);
    assert.equal(rules.ignores('a/x.tmp', FILE), true);
    assert.equal(rules.ignores('a/important.tmp', FILE), false);
  });

  it('does not let a .gitignore negation re-include what the fixed rules exclude (rsync order)', () => {
    const rules = rulesAt({ '': '!secret.env\n!.git\n!.DS_Store\n' }, ['secret.env']);
    assert.equal(rules.ignores('secret.env', FILE), true);
    assert.equal(rules.ignores('.git', DIR), true);
    assert.equal(rules.ignores('.DS_Store', FILE), true);
  });

  it('honours negation, directory-only and anchored patterns', () => {
    const rules = rulesAt({ '': '*.log\n!keep.log\nbuild/\n/root-only.txt\n' });
    assert.equal(rules.ignores('debug.log', FILE), true);
    assert.equal(rules.ignores('a/debug.log', FILE), true);
    assert.equal(rules.ignores('keep.log', FILE), false);
    assert.equal(rules.ignores('a/keep.log', FILE), false);
    assert.equal(rules.ignores('build', DIR), true);
    assert.equal(rules.ignores('a/build', DIR), true);
    assert.equal(rules.ignores('build', FILE), false, 'build/ only matches directories');
    assert.equal(rules.ignores('root-only.txt', FILE), true);
    assert.equal(rules.ignores('a/root-only.txt', FILE), false);
  });

  it('applies a subdirectory .gitignore below it, relative to it, and nowhere else', () => {
    const rules = rulesAt({ '': '', sub: '*.gen\n/top.txt\nx/y\n' });
    assert.equal(rules.ignores('sub/a.gen', FILE), true);
    assert.equal(rules.ignores('sub/deep/er/a.gen', FILE), true);
    assert.equal(rules.ignores('sub/top.txt', FILE), true);
    assert.equal(rules.ignores('sub/deep/top.txt', FILE), false, '"/top.txt" is anchored to sub/');
    assert.equal(rules.ignores('sub/x/y', FILE), true);
    assert.equal(rules.ignores('sub/q/x/y', FILE), false, 'a middle slash anchors too');
    // A walker would never hand sub's rules to these, but even then they must not match.
    assert.equal(rules.ignores('a.gen', FILE), false);
    assert.equal(rules.ignores('sibling/a.gen', FILE), false);
    assert.equal(rules.ignores('subway/a.gen', FILE), false);
  });

  it('lets a deeper .gitignore override a shallower one, as git does', () => {
    const rules = rulesAt({ '': '*.log\nvendor\n', sub: '!*.log\n!vendor/\n' });
    assert.equal(rules.ignores('a.log', FILE), true);
    assert.equal(rules.ignores('sub/a.log', FILE), false);
    assert.equal(rules.ignores('other/a.log', FILE), true);
    // The re-included directory's content is not ignored through "vendor" either.
    assert.equal(rules.ignores('sub/vendor', DIR), false);
    assert.equal(rules.ignores('sub/vendor/lib.js', FILE), false);
    assert.equal(rules.ignores('vendor', DIR), true);
  });

  it('leaves the rules it was derived from unchanged', () => {
    const root = IgnoreRules.create([]);
    const sub = root.withGitignore('sub', '*.gen\n');
    assert.equal(sub.ignores('sub/a.gen', FILE), true);
    assert.equal(root.ignores('sub/a.gen', FILE), false);
  });

  it('is case-sensitive, like git on Linux', () => {
    const rules = rulesAt({ '': 'Makefile.local\n' });
    assert.equal(rules.ignores('Makefile.local', FILE), true);
    assert.equal(rules.ignores('makefile.local', FILE), false);
  });

  it('reads comments, blank lines, CRLF, a BOM, trailing and escaped spaces as git does', () => {
    const rules = rulesAt({ '': '\uFEFFfirst.txt\r\n# comment.txt\r\n\r\n\\#hash.txt\ntrailing.txt   \nkept\\ \n' });
    assert.equal(rules.ignores('first.txt', FILE), true);
    assert.equal(rules.ignores('# comment.txt', FILE), false);
    assert.equal(rules.ignores('#hash.txt', FILE), true);
    assert.equal(rules.ignores('trailing.txt', FILE), true);
    assert.equal(rules.ignores('kept ', FILE), true);
    assert.equal(rules.ignores('kept', FILE), false);
  });

  it('rebases patterns from directories whose names hold glob characters', () => {
    for (const directory of ['[x]', '*', '#notes', '!bang', 'a?b', 'back\\slash', 'sp ace']) {
      const rules = rulesAt({ [directory]: '*.tmp\n/anchored\n' });
      assert.equal(rules.ignores(`${directory}/a.tmp`, FILE), true, directory);
      assert.equal(rules.ignores(`${directory}/anchored`, FILE), true, directory);
      assert.equal(rules.ignores('x/a.tmp', FILE), false, `${directory} leaks to x/`);
      assert.equal(rules.ignores('other/anchored', FILE), false, `${directory} leaks to other/`);
    }
    assert.deepEqual(rebaseGitignore('[x]', 'a\n!/b/\nc/d\n'), ['\\[x\\]/**/a', '!\\[x\\]/b/', '\\[x\\]/c/d']);
  });

  it('matches names that are not valid UTF-8, decoded the same way on both sides', () => {
    const nonUtf8 = nameFromBytes(Buffer.from([0x6f, 0x6c, 0x64, 0xe9])); // Latin-1 "oldé"
    const rules = rulesAt({ '': nameFromBytes(Buffer.concat([Buffer.from([0x6f, 0x6c, 0x64, 0xe9]), Buffer.from('\n')])) });
    assert.equal(rules.ignores(nonUtf8, FILE), true);
    assert.equal(rules.ignores('oldé', FILE), false);
  });

  it('answers as the ignore package for patterns that only name a file or folder (its faster path), at every depth', () => {
    // Patterns the name matcher takes (no slash but a leading or a trailing one, no negation or
    // class), and names chosen to sit on each side of them: dots, stars, question marks, regex characters.
    const patterns = ['*.log', 'build/', '/abc', 'node_modules', '.env', '/dist/', 'a?c', 'x*y*z', '/*.log', 'dist/', '(paren)+', '/tmp*/', '**', 'tmp*/', '/a?c', 'data.json', '/**'];
    const names = ['a.log', '.log', 'log', 'build', 'node_modules', '.env', '.env.local', 'abc', 'ac', 'abbc', 'xyz', 'x-y-z', 'yxz', 'dist', '(paren)+', 'paren', 'tmp', 'tmpfoo', 'data.json', 'dataxjson', 'src', 'line\nbreak.log'];
    const samples: Array<[string, boolean]> = [];
    for (const a of names) {
      samples.push([a, FILE], [a, DIR]);
      for (const b of names.slice(0, 8)) samples.push([`${a}/${b}`, FILE], [`${a}/${b}`, DIR], [`src/${a}/${b}`, FILE]);
    }
    for (let size = 1; size <= patterns.length; size += 1) {
      for (let start = 0; start + size <= patterns.length; start += 1) {
        const chosen = patterns.slice(start, start + size).filter((pattern) => !pattern.endsWith('**') || size === 1);
        const fast = IgnoreRules.create(chosen);
        const reference = ignore({ ignorecase: false }).add([...chosen, '.DS_Store', 'Thumbs.db', '.#*', '*.swp', '*.swx', '.~lock.*#', '.clud-sync-*.tmp', '.git']);
        for (const [samplePath, isDirectory] of samples) {
          assert.equal(fast.ignores(samplePath, isDirectory), reference.ignores(isDirectory ? `${samplePath}/` : samplePath), `${JSON.stringify(chosen)} ${samplePath}${isDirectory ? '/' : ''}`);
        }
      }
    }
  });

  describe('against git itself', () => {
    const tempDir = useTempDir('clud-ignore-');
    const names = ['a', 'b', 'build', 'keep.log', 'x.log', 'x1', 'x2', 'root.txt', 'deep', 'd'];
    const patterns = ['*.log', '!keep.log', 'build/', '/root.txt', 'a/x1', '**/deep', 'b', '!b/', '!b', '*', '!*/', 'x*', '!x1', 'd/**', '!build/', '/a/', 'a/**/x2', '!/d', '!deep/x1', '*/x1', '!a/*'];

    it('walks the same files as `git ls-files --others --exclude-standard` on 20 random trees', async function () {
      if (spawnSync('git', ['--version']).status !== 0) this.skip();
      let seed = 12_345;
      const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const fill = (directory: string, depth: number): void => {
        if (random() < 0.6) writeFileSync(path.join(directory, '.gitignore'), Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(patterns)).join('\n'));
        for (const name of names) {
          const roll = random();
          if (roll < 0.25 && depth < 2) {
            mkdirSync(path.join(directory, name));
            writeFileSync(path.join(directory, name, 'f'), '');
            fill(path.join(directory, name), depth + 1);
          } else if (roll < 0.5) writeFileSync(path.join(directory, name), '');
        }
      };
      // One repository holding every tree, each in its own subdirectory with no rule above it:
      // a tree's own .gitignore is then exactly what the scan reads as its root .gitignore.
      const repository = tempDir();
      assert.equal(spawnSync('git', ['init', '-q', repository]).status, 0);
      const trees = Array.from({ length: 20 }, (_, tree) => `t${tree}`);
      for (const tree of trees) {
        mkdirSync(path.join(repository, tree));
        fill(path.join(repository, tree), 0);
      }
      const gitFiles = spawnSync('git', ['-C', repository, 'ls-files', '--others', '--exclude-standard', '-z'], { encoding: 'utf8' }).stdout.split('\0');
      for (const tree of trees) {
        const expected = gitFiles.filter((file) => file.startsWith(`${tree}/`)).map((file) => file.slice(tree.length + 1)).sort();
        const { snapshot } = await scanTree(path.join(repository, tree), { excludes: [] });
        const scanned = [...snapshot].filter(([, entry]) => entry.kind === 'file').map(([file]) => file).sort();
        assert.deepEqual(scanned, expected, tree);
      }
    });
  });
});
