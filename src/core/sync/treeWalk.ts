// The periodic rescan's walk of one tree (see rescan.ts): every path the ignore rules keep, with
// the metadata its judgement needs, and nothing else (no hashing, no store). The two trees are
// walked at the same time, one of them on a worker thread (treeWalkThread.ts), as rsync's sender
// and receiver walk theirs in two processes; so the walk's result is plain data, numbers in one
// typed array that moves between threads without a copy.
import { isUtf8 } from 'node:buffer';
import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { nameFromBytes } from '../files/pathCodec';
import { IgnoreRules } from './ignore';
import { readGitignore } from './scan';

/** What a walked path is. */
export const WalkedKind = { file: 0, directory: 1, symlink: 2, other: 3, unknown: 4 } as const;
export type WalkedKind = (typeof WalkedKind)[keyof typeof WalkedKind];

/** Numbers per walked path in WalkedTree.numbers: its kind, then its lstat's fields. */
export const FIELDS = 8;
const [KIND, SIZE, MTIME, CTIME, INO, MODE, UID, GID] = [0, 1, 2, 3, 4, 5, 6, 7] as const;

/** One tree's walk: path i's numbers are numbers[i * FIELDS ...], its link target (a symlink's) targets[i]. */
export interface WalkedTree {
  paths: string[];
  numbers: Float64Array;
  targets: Map<number, string>;
}

/** The walk, or why it cannot be trusted (a folder it cannot list, a .gitignore it cannot read). */
export type WalkResult = WalkedTree | { problem: string };

/**
 * The lstat fields of one walked path, read from the walk's numbers as the judgement asks for them
 * (see cacheHolds, mayRead). One view moves from path to path: the rescan looks at every path of
 * both trees, and an object made for each was most of the garbage of its judgement.
 */
export class WalkedStat {
  private at = 0;

  constructor(private readonly numbers: Float64Array) {}

  /** Points the view at the walk's path `index`. */
  moveTo(index: number): this {
    this.at = index * FIELDS;
    return this;
  }

  get kind(): WalkedKind {
    return this.numbers[this.at + KIND] as WalkedKind;
  }
  get size(): number {
    return this.numbers[this.at + SIZE]!;
  }
  get mtimeMs(): number {
    return this.numbers[this.at + MTIME]!;
  }
  get ctimeMs(): number {
    return this.numbers[this.at + CTIME]!;
  }
  get ino(): number {
    return this.numbers[this.at + INO]!;
  }
  get mode(): number {
    return this.numbers[this.at + MODE]!;
  }
  get uid(): number {
    return this.numbers[this.at + UID]!;
  }
  get gid(): number {
    return this.numbers[this.at + GID]!;
  }
  isDirectory(): boolean {
    return this.kind === WalkedKind.directory;
  }
}

/** Entries walked between two yields to the event loop, so that the owner keeps answering its clients. */
const YIELD_EVERY = 2000;

/**
 * Walks `root`: each folder listed, each name in it lstat'ed (a symlink's target read), what
 * the rules ignore left out and not entered. A path that cannot be lstat'ed is walked as
 * `unknown`. `yieldNow` is awaited every YIELD_EVERY paths (on the main thread, to let the event
 * loop run; none on a worker).
 */
export async function walkTree(root: string, excludes: readonly string[], yieldNow?: () => Promise<void>): Promise<WalkResult> {
  const paths: string[] = [];
  let numbers = new Float64Array(FIELDS * 1024);
  const targets = new Map<number, string>();
  const add = (path: string, stat: Stats | undefined, target?: string) => {
    const index = paths.length;
    paths.push(path);
    if ((index + 1) * FIELDS > numbers.length) {
      const grown = new Float64Array(numbers.length * 2);
      grown.set(numbers);
      numbers = grown;
    }
    const at = index * FIELDS;
    numbers[at + KIND] = stat === undefined ? WalkedKind.unknown : stat.isFile() ? WalkedKind.file : stat.isDirectory() ? WalkedKind.directory : stat.isSymbolicLink() ? WalkedKind.symlink : WalkedKind.other;
    if (stat !== undefined) {
      numbers[at + SIZE] = stat.size;
      numbers[at + MTIME] = stat.mtimeMs;
      numbers[at + CTIME] = stat.ctimeMs;
      numbers[at + INO] = stat.ino;
      numbers[at + MODE] = stat.mode;
      numbers[at + UID] = stat.uid;
      numbers[at + GID] = stat.gid;
    }
    if (target !== undefined) targets.set(index, target);
  };
  // Folders still to list, each with its rules and its path as the file system is given it: a
  // string while every name on the way is valid UTF-8 (the cheaper call), else bytes, as a name
  // that is not valid UTF-8 is escaped in the path string (pathCodec).
  const folders: Folder[] = [{ path: '', fsPath: root, rules: IgnoreRules.create(excludes) }];
  let visits = 0;
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    const listed = listFolder(folder.fsPath);
    if (typeof listed === 'string') return { problem: `cannot list ${folder.path || 'the root'}: ${listed}` };
    let rules = folder.rules;
    if (listed.some((child) => child.name === GITIGNORE)) {
      const text = readGitignore(childPath(folder.fsPath, GITIGNORE));
      if (typeof text === 'object') return { problem: `cannot read ${folder.path ? `${folder.path}/` : ''}.gitignore: ${text.unreadable}` };
      if (text !== undefined) rules = rules.withGitignore(folder.path, text);
    }
    const prefix = folder.path === '' ? '' : `${folder.path}/`;
    for (const child of listed) {
      visits += 1;
      if (yieldNow && visits % YIELD_EVERY === 0) await yieldNow();
      const path = prefix + child.name;
      const fsPath = childPath(folder.fsPath, child.bytes ?? child.name);
      let stat: Stats | undefined;
      try {
        stat = lstatSync(fsPath, { throwIfNoEntry: false });
      } catch {
        stat = undefined; // cannot be read: the scan says how, when the path is looked at
      }
      if (stat === undefined) {
        add(path, undefined);
        continue;
      }
      const isDirectory = stat.isDirectory();
      if (rules.ignores(path, isDirectory)) continue;
      add(path, stat, stat.isSymbolicLink() ? readTarget(fsPath) : undefined);
      if (isDirectory) folders.push({ path, fsPath, rules });
    }
  }
  return { paths, numbers: numbers.slice(0, paths.length * FIELDS), targets };
}

/** A link's target as a path string; undefined when it cannot be read (the link is then judged changed). */
function readTarget(fsPath: string | Buffer): string | undefined {
  try {
    return nameFromBytes(readlinkSync(fsPath, { encoding: 'buffer' }));
  } catch {
    return undefined;
  }
}

interface Folder { path: string; fsPath: string | Buffer; rules: IgnoreRules }
/** A listed name: as a string (escaped, if it is not valid UTF-8), with its bytes when they differ. */
interface Child { name: string; bytes?: Buffer }

const SLASH = Buffer.from('/');
const GITIGNORE = '.gitignore';

/** The folder's names, or why it cannot be listed. */
function listFolder(fsPath: string | Buffer): Child[] | string {
  try {
    if (typeof fsPath === 'string') {
      const names = readdirSync(fsPath);
      // U+FFFD stands in for bytes that are not valid UTF-8 (or is itself in a name): read the bytes.
      if (!names.some((name) => name.includes('\uFFFD'))) return names.map((name) => ({ name }));
    }
    return readdirSync(fsPath, { encoding: 'buffer' }).map((bytes) => (isUtf8(bytes) ? { name: bytes.toString() } : { name: nameFromBytes(bytes), bytes }));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** A child's file-system path: a string while both parts are strings. */
function childPath(folder: string | Buffer, name: string | Buffer): string | Buffer {
  if (typeof folder === 'string' && typeof name === 'string') return `${folder}/${name}`;
  return Buffer.concat([typeof folder === 'string' ? Buffer.from(folder) : folder, SLASH, typeof name === 'string' ? Buffer.from(name) : name]);
}
