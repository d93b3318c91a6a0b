// Which paths the three-way sync leaves alone. Pattern matching is the `ignore` package's
// (gitignore syntax: negation, directory-only "build/", anchored "/x", "**"); this module adds
// git's layering of nested .gitignore files and the fixed rules every sync applies.
import ignore, { type Ignore } from 'ignore';

/**
 * Always ignored: the repository travels separately and one-way, and two sides rewriting the
 * same object store file by file would corrupt it.
 */
/**
 * Never synced either way: editor and OS litter that differs per machine, and the temporary
 * files of Clud's own atomic writes (left behind only by a crash mid-write).
 */
export const BUILTIN_EXCLUDES: readonly string[] = ['.DS_Store', 'Thumbs.db', '.#*', '*.swp', '*.swx', '.~lock.*#', '.clud-sync-*.tmp'];

export const ALWAYS_IGNORED: readonly string[] = ['.git'];

// Git on Linux is case-sensitive; the package defaults to case-insensitive.
const newMatcher = (): Ignore => ignore({ ignorecase: false });

/**
 * Immutable: `withGitignore` returns the rules for a subdirectory, so a walker hands each
 * directory the rules of its own ancestors and sibling subtrees never see each other's files.
 */
export class IgnoreRules {
  private constructor(
    /** Built-in, user and always-ignored patterns, matched against the path from the root. */
    private readonly fixed: PathMatcher,
    /** Every .gitignore from the root down to the current directory, rebased onto the root. */
    private readonly gitignores: PathMatcher | undefined,
    /** The patterns `gitignores` was made of, to which a deeper .gitignore adds its own. */
    private readonly gitignorePatterns: readonly string[] = [],
  ) {}

  /** Rules before any .gitignore has been read. User patterns use gitignore syntax too. */
  static create(userExcludes: readonly string[]): IgnoreRules {
    return new IgnoreRules(pathMatcher([...BUILTIN_EXCLUDES, ...ALWAYS_IGNORED, ...userExcludes]), undefined);
  }

  /**
   * The rules for paths under `directory` ("" for the root), given the content of the
   * .gitignore found there. Call it for each directory on the way down, parents first.
   */
  withGitignore(directory: string, content: string): IgnoreRules {
    const patterns = rebaseGitignore(directory, content);
    if (patterns.length === 0) return this;
    const all = [...this.gitignorePatterns, ...patterns];
    return new IgnoreRules(this.fixed, pathMatcher(all), all);
  }

  /**
   * `relativePath` is a snapshot key (see entry.ts). The fixed rules are asked first and cannot
   * be overridden by a .gitignore negation: a user's exclude or `.git` stays excluded whatever a
   * project's .gitignore says.
   *
   * As in git, a path under an ignored directory cannot be re-included; this answer assumes
   * the caller never asks about such a path (a walker does not descend into ignored directories).
   */
  ignores(relativePath: string, isDirectory: boolean): boolean {
    return this.fixed(relativePath, isDirectory) || (this.gitignores !== undefined && this.gitignores(relativePath, isDirectory));
  }
}

/** Whether gitignore patterns ignore a path (a snapshot key); see pathMatcher. */
type PathMatcher = (relativePath: string, isDirectory: boolean) => boolean;

/**
 * A pattern that can only ever match one name of a path: no slash but a trailing one (which
 * means "folders only"), no negation, escape, character class or comment, no trailing space.
 */
const NAME_PATTERN = /^[^/\\[\]!#][^/\\[\]]*?\/?$/;

/** The same name with a leading slash, which anchors it to the root: it matches a path's first name only (`/dist`, `/build/`, `/*.log`). */
const ROOT_NAME_PATTERN = /^\/[^/\\[\]!#][^/\\[\]]*?\/?$/;

/**
 * A matcher for `patterns`. The `ignore` package handles every gitignore form, but at a cost
 * per path (and a cache of every path it was asked about) that a rescan of 100,000 files pays
 * for each of them. Nearly every pattern in practice (the built-in ones, `node_modules/`,
 * `*.log`, `.env`, and in a root .gitignore `/dist` or `/build/`) only names a file or folder,
 * which git matches against every name of the path, or against its first name when the pattern
 * starts with a slash: those are one regular expression over the path's names, and one over its
 * first. Any other pattern, and the whole list goes to the package.
 */
function pathMatcher(patterns: readonly string[]): PathMatcher {
  if (!patterns.every((pattern) => (NAME_PATTERN.test(pattern) || ROOT_NAME_PATTERN.test(pattern)) && !pattern.endsWith(' '))) {
    const matcher = newMatcher().add([...patterns]);
    // The package tells a directory by its trailing slash ("build/" only matches those).
    return (relativePath, isDirectory) => matcher.ignores(isDirectory ? `${relativePath}/` : relativePath);
  }
  const { anyKind, foldersOnly } = nameExpressions(patterns.filter((pattern) => !pattern.startsWith('/')));
  const { anyKind: rootAnyKind, foldersOnly: rootFoldersOnly } = nameExpressions(patterns.filter((pattern) => pattern.startsWith('/')).map((pattern) => pattern.slice(1)));
  return (relativePath, isDirectory) => {
    if (rootAnyKind || rootFoldersOnly) {
      const slash = relativePath.indexOf('/');
      const first = slash < 0 ? relativePath : relativePath.slice(0, slash);
      // The first name is a folder's if anything follows it.
      if (rootAnyKind?.test(first) || ((slash >= 0 || isDirectory) && rootFoldersOnly?.test(first))) return true;
    }
    // Every name above the last is a folder's.
    let start = 0;
    for (let slash = relativePath.indexOf('/'); slash >= 0; slash = relativePath.indexOf('/', start)) {
      const name = relativePath.slice(start, slash);
      if (anyKind?.test(name) || foldersOnly?.test(name)) return true;
      start = slash + 1;
    }
    const name = start === 0 ? relativePath : relativePath.slice(start);
    return (anyKind?.test(name) ?? false) || (isDirectory && (foldersOnly?.test(name) ?? false));
  };
}

/** The expressions of name patterns: for those that match a name of any kind, and for those with a trailing slash, which match a folder's only. */
function nameExpressions(patterns: readonly string[]): { anyKind?: RegExp; foldersOnly?: RegExp } {
  return {
    anyKind: nameRegExp(patterns.filter((pattern) => !pattern.endsWith('/'))),
    foldersOnly: nameRegExp(patterns.filter((pattern) => pattern.endsWith('/')).map((pattern) => pattern.slice(0, -1))),
  };
}

/** One expression matching a whole name against any of these glob patterns (`*` and `?` within a name). */
function nameRegExp(globs: readonly string[]): RegExp | undefined {
  if (globs.length === 0) return undefined;
  const alternatives = globs.map((glob) => glob.replace(/[.+^${}()|]/g, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.'));
  return new RegExp(`^(?:${alternatives.join('|')})$`, 's');
}

/**
 * The lines of the .gitignore in `directory`, rewritten to match paths from the root.
 *
 * Git's precedence between nested files (the deepest file with a matching pattern decides,
 * and within a file the last matching pattern) becomes the package's "last matching pattern
 * wins" once the files are concatenated root first: a rebased pattern can only match under
 * its own directory, so any later pattern that matches a path comes from a deeper file.
 */
export function rebaseGitignore(directory: string, content: string): string[] {
  const patterns: string[] = [];
  for (const rawLine of content.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    // Trailing spaces are trimmed unless escaped with a backslash, as git does.
    const line = rawLine.replace(/(?<!\\) +$/, '');
    if (line === '' || line.startsWith('#')) continue;
    if (directory === '') {
      patterns.push(line);
      continue;
    }
    const negative = line.startsWith('!');
    let body = negative ? line.slice(1) : line;
    // A slash at the start or in the middle anchors the pattern to its .gitignore's directory;
    // without one it matches a name at any depth below it. A trailing slash only means "directory".
    const anchored = body.replace(/\/$/, '').includes('/');
    body = body.replace(/^\//, '');
    if (body === '' || body === '/') continue;
    patterns.push(`${negative ? '!' : ''}${escapeGlob(directory)}${anchored ? '/' : '/**/'}${body}`);
  }
  return patterns;
}

/** A directory path as a pattern that matches only itself (names may hold `*`, `[`, `!`, `#`…). */
function escapeGlob(path: string): string {
  return path.replace(/[\\*?[\]!#]/g, (char) => `\\${char}`);
}
