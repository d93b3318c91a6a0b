// Randomized property test of the three-way sync, in plain Node on two temporary folders (no
// Docker). A seeded PRNG drives random user operations on both sides (create, edit, delete,
// rename, chmod +x/-x, mkdir, file <-> directory replacement, symlinks, copies, touches, names with
// spaces, .gitignore'd and excluded names), then a sync, then the checks below; repeated for
// several rounds so that the agreed state (the ancestor) is exercised, not only the first sync.
// Now and then a round's sync runs with `reset: true`. mtimes are logical (set by the operations),
// so a seed replays exactly, newer-wins included; a failing run is shrunk to a short operation list.
//
// ---------------------------------------------------------------------------------------------
// THE INVARIANT (checked after every sync; S = a side, T = the other side)
//
//   A *version* is the path-independent identity of a content: a file's bytes plus its executable
//   bit, or a symlink's target. X_S is side S's tree at sync time, Y_S the tree after the sync,
//   K the folder stateDir/kept/<syncId>/. ≡ compares entries as the sync does: files by content
//   and exec bit, links by target, directories by kind; two absent entries are ≡.
//
//   BASE(p), the *agreed* entry at path p, is observed by the test, not read from the engine:
//   after each sync, at every path where Y_host(p) ≡ Y_container(p) (agreeing on absence counts),
//   BASE(p) becomes that entry; where they still disagree, or where p is at or under a reported
//   conflict (the sync promises not to touch anything there), BASE(p) stays what it was; a path
//   ignored on either side is forgotten. Before the first sync, and before a sync run with
//   `reset: true`, nothing is agreed.
//
//   (I1) No loss. For every side S and path p where X_S(p) is a file or symlink with version v,
//        and p is not ignored on either side, v may be missing from the result ONLY IF
//
//            X_S(p) ≡ BASE(p)   and   X_T(p) ≢ BASE(p)
//
//        i.e. S still holds the agreed version at p and the user on T deleted or replaced it since
//        (a deletion propagates; a replacement is itself protected by this same rule, since it is
//        not ≡ BASE). Every other version must survive, in one of these forms:
//          - on both sides, at any path (a rename counts: a version is path-independent);
//          - kept aside exactly at K/<S>/<p>, and only where S lost by the policy: the container
//            under push, the host under pull; under host-wins/container-wins the side that is not
//            the winner, and only when the winner changed p too (at p, below it, or by a file or
//            link replacing a folder above it: a side that only deleted never wins); under
//            newer-wins the older of two files; never under two-way-safe;
//          - still in place at Y_S(p), where p is at or under a reported conflict (two-way-safe's
//            conflict case: both versions simply stay on their sides) or a change reported as
//            skipped on either side (e.g. a folder that cannot be removed because it holds
//            ignored files: the version replacing it then stays on its own side).
//        So every version created or modified on a side since the last sync survives, and so does
//        every version that neither side's user deleted or replaced. A version the user reverted
//        to BASE(p) is not new work: as in any three-way merge (git, Unison), the other side's
//        change to p wins. (Which is why the rule is stated against BASE, not against "the tree
//        right after the previous sync": the two differ at a still-unresolved conflict.)
//        Directories: one at (S, p) that is not ≡ BASE(p) (created, or replacing a file) is a
//        directory on both sides afterwards, unless p is at or under a conflict or skipped change,
//        S is the side a push or pull overwrites, or T holds a file or symlink ≢ BASE at p or
//        above it (a competing change a winner policy may choose; the files inside are then
//        protected as above).
//   (I2) Ignored content is never touched: everything at or under a path ignored on either side
//        (root .gitignore, user excludes, built-in excludes, .git) is identical after the sync
//        (content, mode, mtime, inode) on both sides, and nothing appears under it.
//   (I3) Conflicts are left alone: each side's subtree at a reported conflict is unchanged.
//   (I4) Kept versions are where the report says (stateDir/kept/<syncId>/<side>/<path>), each is
//        the version that was on that side at that path, every kept file is reported, and
//        two-way-safe keeps nothing.
//   (I5) Nothing is invented: every version after the sync existed on one side before it.
//   (I6) Convergence: after the sync both trees are identical (same paths, same content, same exec
//        bit, same symlink targets, directories where directories are) except at or under a
//        reported conflict, a skipped change, or an ignored path. In particular, after a
//        two-way-safe sync with no conflicts and no problems the trees are identical.
//   (I7) Idempotence: a second sync right after changes nothing: appliedCount 0, nothing kept,
//        the same conflicts, both trees untouched (inodes included).
//   (I8) The engine's recorded ancestor (the state store in stateDir) is ≡ BASE at every path: the sync
//        never records an agreement the trees do not show, nor misses one (either would make a
//        later sync read a change as "unchanged" and drop it). This also pins the assumption
//        (I1) rests on: that BASE is what the engine compares against.
//   (I9) One-sided changes propagate: where only S changed p since BASE (from a file, a link or
//        nothing, to a file, a link or nothing: deletions included) and neither side replaced a
//        folder above p with a file or link, both sides end with S's entry (T's, when S is the
//        side a push or pull overwrites), outside conflicts, skipped changes and ignored paths.
//        Without it, a sync that never deleted anything, or never copied anything, would pass.
//   (I10) The report accounts for every change: each path whose entry changed on a side is in
//        the report's `applied` for that side.
//
//   A round may also end with `clud resolve PATH --keep host|container|both` instead of a plain
//   sync (two-way-safe runs with `resolves`): the user's choice then counts as the policy at and
//   under PATH (the loser's versions must be kept aside), and the report is the resolve's.
//
// Why "two rsync --delete runs" (host → container, then container → host) fails (I1): the
// container creates file n (v = X_container(n), BASE(n) absent, so v ≢ BASE: protected); the
// first run mirrors the host, deleting n; the second copies nothing back. v is nowhere.
// `twoRsyncBaseline` below implements that design, and the test asserts the property catches it.
// ---------------------------------------------------------------------------------------------
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, rmdirSync, symlinkSync, unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { SyncReport } from '../../src/core/protocol';
import { runSyncCycle, withStateStore } from '../../src/core/sync/engine';
import type { Policy, Side } from '../../src/core/sync/reconcile';
import { resolveConflict, type KeepChoice } from '../../src/core/sync/resolve';
import { scanTree } from '../../src/core/sync/scan';

export const SIDES: readonly Side[] = ['host', 'container'];
const other = (side: Side): Side => (side === 'host' ? 'container' : 'host');

// --- PRNG -------------------------------------------------------------------------------------

/** mulberry32: tiny, fast, good enough for test-case generation, and reproducible from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Random {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** 0 ≤ n < max */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [weight, value] of choices) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return choices[choices.length - 1]![1];
  }
}

// --- Trees as the test sees them (independently of the scan under test) ------------------------

export type Node =
  | { kind: 'file'; version: string; hash: string; mode: number; ino: number; mtimeMs: number }
  | { kind: 'dir'; mode: number; ino: number }
  | { kind: 'link'; version: string; target: string; ino: number }
  | { kind: 'other'; ino: number };
/** Relative POSIX path → node, parents before children, siblings in code-unit order. */
export type Tree = Map<string, Node>;

const codeUnitOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function fileVersion(data: Buffer, mode: number): string {
  const text = data.toString('utf8');
  const readable = text.length <= 60 && /^[\x20-\x7e\n]*$/.test(text);
  const content = readable ? JSON.stringify(text) : `sha256:${sha256(data).slice(0, 16)}`;
  return `file ${content}${(mode & 0o111) !== 0 ? ' +x' : ''}`;
}

function fileNode(full: string): Node {
  const stats = lstatSync(full);
  const data = readFileSync(full);
  return { kind: 'file', version: fileVersion(data, stats.mode), hash: sha256(data), mode: stats.mode & 0o7777, ino: stats.ino, mtimeMs: stats.mtimeMs };
}

const linkVersion = (target: string): string => `link -> ${JSON.stringify(target)}`;

export function walkTree(root: string): Tree {
  const tree: Tree = new Map();
  if (!existsSync(root)) return tree;
  const visit = (relative: string): void => {
    for (const name of readdirSync(relative === '' ? root : path.join(root, relative)).sort(codeUnitOrder)) {
      const child = relative === '' ? name : `${relative}/${name}`;
      const full = path.join(root, child);
      const stats = lstatSync(full);
      if (stats.isSymbolicLink()) {
        const target = readlinkSync(full);
        tree.set(child, { kind: 'link', target, version: linkVersion(target), ino: stats.ino });
      } else if (stats.isDirectory()) {
        tree.set(child, { kind: 'dir', mode: stats.mode & 0o7777, ino: stats.ino });
        visit(child);
      } else if (stats.isFile()) {
        tree.set(child, fileNode(full));
      } else {
        tree.set(child, { kind: 'other', ino: stats.ino });
      }
    }
  };
  visit('');
  return tree;
}

/** ≡: the sync's notion of equality (content + exec bit, link target, directory kind). */
export function equivalent(a: Node | undefined, b: Node | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.kind !== b.kind) return false;
  if (a.kind === 'dir') return true;
  if (a.kind === 'other') return false;
  return a.version === (b as { version: string }).version;
}

/** Everything, for "untouched": ≡ plus inode, mode and mtime. */
function fingerprint(node: Node | undefined): string {
  if (node === undefined) return 'absent';
  return JSON.stringify(node);
}

export function describeNode(node: Node | undefined): string {
  if (node === undefined) return 'absent';
  if (node.kind === 'dir') return 'directory';
  if (node.kind === 'other') return 'special file';
  return node.version;
}

const versionOf = (node: Node | undefined): string | undefined => (node?.kind === 'file' || node?.kind === 'link' ? node.version : undefined);

export function isAtOrUnder(candidate: string, roots: Iterable<string>): boolean {
  for (const root of roots) if (candidate === root || candidate.startsWith(`${root}/`)) return true;
  return false;
}

/** "a/b/c" → ["a", "a/b", "a/b/c"] */
const prefixes = (relative: string): string[] => relative.split('/').map((_, index, parts) => parts.slice(0, index + 1).join('/'));

// --- What is ignored (written independently of src/core/sync/ignore.ts) ------------------------

/** The root .gitignore of both sides; created before the first sync, never touched by the operations. */
export const ROOT_GITIGNORE = '*.log\n!keep.log\nbuild/\n';
/** User excludes passed to every sync. */
export const USER_EXCLUDES: readonly string[] = ['*.tmp'];

/**
 * Whether a name is ignored by ROOT_GITIGNORE, USER_EXCLUDES or the built-in rules (.git, *.swp),
 * as git would decide: "*.log" and "*.tmp" match files and directories at any depth, "!keep.log"
 * re-includes that name, "build/" matches directories only. A symlink is not a directory.
 */
export function ignoredName(name: string, isDirectory: boolean): boolean {
  if (name === '.git' || name.endsWith('.swp') || name.endsWith('.tmp')) return true;
  if (name.endsWith('.log') && name !== 'keep.log') return true;
  return isDirectory && name === 'build';
}

/** Top-most ignored paths of a tree: an ignored directory stands for its whole subtree. */
export function topIgnored(tree: Tree): Set<string> {
  const ignored = new Set<string>();
  for (const [relative, node] of tree) {
    if (isAtOrUnder(relative, ignored)) continue;
    if (ignoredName(path.posix.basename(relative), node.kind === 'dir')) ignored.add(relative);
  }
  return ignored;
}

// --- Operations (plain data, so that a failing run can be replayed and shrunk) -----------------

export type Op =
  | { side: Side; op: 'write'; path: string; content: string; exec?: boolean; mtime: number }
  | { side: Side; op: 'mkdir'; path: string }
  | { side: Side; op: 'rm'; path: string }
  | { side: Side; op: 'rename'; from: string; to: string }
  | { side: Side; op: 'chmod'; path: string; exec: boolean }
  | { side: Side; op: 'symlink'; path: string; target: string }
  | { side: Side; op: 'touch'; path: string; mtime: number };

/**
 * A round's steps: user operations, then possibly `reset` (that round's sync runs with
 * `reset: true`) or `resolve` (that round's sync is `clud resolve PATH --keep host|container|both`,
 * which settles the path and then runs a two-way-safe cycle).
 */
export type Step = Op | { op: 'reset' } | { op: 'resolve'; path: string; keep: KeepChoice };

export function describeOp(op: Step): string {
  const p = (value: string) => JSON.stringify(value);
  switch (op.op) {
    case 'reset':
      return 'the sync below runs with reset: true (forget the agreed state)';
    case 'resolve':
      return `the sync below is: clud resolve ${p(op.path)} --keep ${op.keep}`;
    case 'write':
      return `${op.side}: write ${p(op.path)} = ${JSON.stringify(op.content)}${op.exec === undefined ? '' : op.exec ? ' (mode 755)' : ' (mode 644)'} mtime ${op.mtime}`;
    case 'mkdir':
      return `${op.side}: mkdir ${p(op.path)}`;
    case 'rm':
      return `${op.side}: rm -rf ${p(op.path)}`;
    case 'rename':
      return `${op.side}: mv ${p(op.from)} ${p(op.to)}`;
    case 'chmod':
      return `${op.side}: chmod ${op.exec ? '+x' : '-x'} ${p(op.path)}`;
    case 'symlink':
      return `${op.side}: ln -s ${p(op.target)} ${p(op.path)}`;
    case 'touch':
      return `${op.side}: touch ${p(op.path)} mtime ${op.mtime}`;
  }
}

/** Logical mtimes (seconds): deterministic, so newer-wins decides the same way on every replay. */
const MTIME_BASE = 1_600_000_000;

const kindAt = (full: string): 'file' | 'dir' | 'link' | 'other' | undefined => {
  try {
    const stats = lstatSync(full);
    return stats.isSymbolicLink() ? 'link' : stats.isDirectory() ? 'dir' : stats.isFile() ? 'file' : 'other';
  } catch {
    return undefined;
  }
};

/** Every proper ancestor of `relative` is a real directory (never write through a symlink). */
function parentsAreDirectories(root: string, relative: string): boolean {
  const parts = relative.split('/');
  for (let depth = 1; depth < parts.length; depth += 1) {
    if (kindAt(path.join(root, ...parts.slice(0, depth))) !== 'dir') return false;
  }
  return true;
}

/**
 * Carries out one operation; false (and nothing done) when it does not fit the tree any more,
 * which only happens when a shrunk script is replayed.
 */
export function applyOp(roots: Record<Side, string>, op: Op): boolean {
  const root = roots[op.side];
  const full = (relative: string) => path.join(root, relative);
  try {
    switch (op.op) {
      case 'write': {
        const kind = kindAt(full(op.path));
        if (!parentsAreDirectories(root, op.path) || (kind !== undefined && kind !== 'file')) return false;
        writeFileSync(full(op.path), op.content);
        if (op.exec !== undefined || kind === undefined) chmodSync(full(op.path), op.exec ? 0o755 : 0o644);
        utimesSync(full(op.path), MTIME_BASE + op.mtime, MTIME_BASE + op.mtime);
        return true;
      }
      case 'mkdir':
        if (!parentsAreDirectories(root, op.path) || kindAt(full(op.path)) !== undefined) return false;
        mkdirSync(full(op.path), { mode: 0o755 });
        return true;
      case 'rm':
        if (!parentsAreDirectories(root, op.path) || kindAt(full(op.path)) === undefined) return false;
        rmSync(full(op.path), { recursive: true, force: true });
        return true;
      case 'rename': {
        const from = kindAt(full(op.from));
        const to = kindAt(full(op.to));
        if (!parentsAreDirectories(root, op.from) || !parentsAreDirectories(root, op.to) || from === undefined) return false;
        if (isAtOrUnder(op.to, [op.from]) || (to !== undefined && !(to === 'file' && from === 'file'))) return false;
        renameSync(full(op.from), full(op.to));
        return true;
      }
      case 'chmod':
        if (!parentsAreDirectories(root, op.path) || kindAt(full(op.path)) !== 'file') return false;
        chmodSync(full(op.path), op.exec ? 0o755 : 0o644);
        return true;
      case 'symlink':
        if (!parentsAreDirectories(root, op.path) || kindAt(full(op.path)) !== undefined) return false;
        symlinkSync(op.target, full(op.path));
        return true;
      case 'touch':
        if (!parentsAreDirectories(root, op.path) || kindAt(full(op.path)) !== 'file') return false;
        utimesSync(full(op.path), MTIME_BASE + op.mtime, MTIME_BASE + op.mtime);
        return true;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EINVAL' || code === 'ENOTEMPTY') return false;
    throw error;
  }
}

/** Few names, so that both sides collide on paths; names with spaces, and one re-included by "!keep.log". */
const PLAIN_NAMES: readonly string[] = ['a', 'b', 'c d', 'e.txt', 'dir', 'sub dir', 'keep.log', 'build', 'n'];
/** Ignored or excluded names (and "build", ignored only as a directory). Rarer: a folder holding one can't be deleted by a sync. */
const IGNORABLE_NAMES: readonly string[] = ['x.log', 'build', 'y.tmp', 'z.swp', '.git'];
const MAX_DEPTH = 3;
const TARGET_SIZE = 30;

interface GenerationContext {
  rng: Random;
  roots: Record<Side, string>;
  /** Content and mtime counter: every write is a new, unique content. */
  clock: number;
  /** How many user actions of each kind were carried out (to see what a set of seeds covers). */
  actions: Record<string, number>;
}

/** Generates one user action (one or a few primitive operations) on `side` and carries it out. */
function generateAction(context: GenerationContext, side: Side, creating: boolean): Op[] {
  const { rng, roots } = context;
  const root = roots[side];
  const pickName = () => (rng.chance(0.12) ? rng.pick(IGNORABLE_NAMES) : rng.pick(PLAIN_NAMES));
  const tree = walkTree(root);
  const entries = [...tree.keys()].filter((relative) => relative !== '.gitignore');
  const files = entries.filter((relative) => tree.get(relative)?.kind === 'file');
  const directories = ['', ...entries.filter((relative) => tree.get(relative)?.kind === 'dir')];
  const depthOf = (relative: string) => (relative === '' ? 0 : relative.split('/').length);
  const freshPath = (avoidUnder?: string): string | undefined => {
    const parents = directories.filter((directory) => depthOf(directory) < MAX_DEPTH && (avoidUnder === undefined || !isAtOrUnder(directory, [avoidUnder])));
    for (let attempt = 0; attempt < 8; attempt += 1) {
      const parent = rng.pick(parents);
      const candidate = parent === '' ? pickName() : `${parent}/${pickName()}`;
      if (!tree.has(candidate) && candidate !== '.gitignore') return candidate;
    }
    return undefined;
  };
  const tick = () => (context.clock += 1);
  const content = () => {
    const n = tick();
    // Sizes vary, and often repeat: same-size edits must be seen too. Some files are empty (all
    // empty files are one version: path-independence at its bluntest).
    return { content: rng.chance(0.04) ? '' : `${side === 'host' ? 'h' : 'c'}${n}${'.'.repeat(rng.int(4))}\n`, mtime: n };
  };
  const size = entries.length;
  const action = rng.weighted<string>([
    [creating ? 30 : size < TARGET_SIZE ? 16 : 6, 'create'],
    [creating ? 2 : 14, 'edit'],
    [creating ? 0 : size > TARGET_SIZE ? 16 : 7, 'delete'],
    [creating ? 2 : 12, 'rename'],
    [creating ? 2 : 8, 'chmod'],
    [creating ? 8 : 5, 'mkdir'],
    [creating ? 8 : 4, 'tree'],
    [creating ? 0 : 4, 'fileToDir'],
    [creating ? 0 : 4, 'dirToFile'],
    [creating ? 3 : 5, 'symlink'],
    [creating ? 0 : 3, 'retarget'],
    [creating ? 1 : 4, 'copy'],
    [creating ? 0 : 3, 'touch'],
  ]);
  const ops: Op[] = [];
  let label = action;
  const run = (op: Op) => {
    if (applyOp(roots, op)) ops.push(op);
  };
  switch (action) {
    case 'create': {
      const target = freshPath();
      if (target) run({ side, op: 'write', path: target, ...content(), exec: rng.chance(0.2) });
      break;
    }
    case 'edit':
      if (files.length) run({ side, op: 'write', path: rng.pick(files), ...content() });
      break;
    case 'delete':
      if (entries.length) run({ side, op: 'rm', path: rng.pick(entries) });
      break;
    case 'rename': {
      if (!entries.length) break;
      const from = rng.pick(entries);
      // Sometimes a file moved over another file (mv replaces it).
      const over = tree.get(from)?.kind === 'file' && rng.chance(0.15) ? files.filter((file) => file !== from) : [];
      const to = over.length ? rng.pick(over) : freshPath(from);
      if (over.length) label = 'rename over a file';
      else if (tree.get(from)?.kind === 'dir' && entries.some((entry) => entry.startsWith(`${from}/`))) label = 'rename a folder with children';
      if (to) run({ side, op: 'rename', from, to });
      break;
    }
    case 'chmod':
      if (files.length) {
        const file = rng.pick(files);
        const node = tree.get(file);
        run({ side, op: 'chmod', path: file, exec: node?.kind === 'file' ? (node.mode & 0o111) === 0 : true });
      }
      break;
    case 'mkdir': {
      const target = freshPath();
      if (target) run({ side, op: 'mkdir', path: target });
      break;
    }
    case 'tree': {
      // A directory with children (and sometimes grandchildren).
      const target = freshPath();
      if (!target || depthOf(target) >= MAX_DEPTH) break;
      run({ side, op: 'mkdir', path: target });
      for (let count = 1 + rng.int(3); count > 0; count -= 1) {
        const name = pickName();
        if (depthOf(target) + 1 < MAX_DEPTH && rng.chance(0.3)) {
          run({ side, op: 'mkdir', path: `${target}/${name}` });
          run({ side, op: 'write', path: `${target}/${name}/${pickName()}`, ...content(), exec: rng.chance(0.2) });
        } else {
          run({ side, op: 'write', path: `${target}/${name}`, ...content(), exec: rng.chance(0.2) });
        }
      }
      break;
    }
    case 'fileToDir': {
      const candidates = files.filter((file) => depthOf(file) < MAX_DEPTH);
      if (!candidates.length) break;
      const file = rng.pick(candidates);
      run({ side, op: 'rm', path: file });
      run({ side, op: 'mkdir', path: file });
      run({ side, op: 'write', path: `${file}/${pickName()}`, ...content() });
      break;
    }
    case 'dirToFile': {
      const candidates = directories.filter((directory) => directory !== '');
      if (!candidates.length) break;
      const directory = rng.pick(candidates);
      run({ side, op: 'rm', path: directory });
      run({ side, op: 'write', path: directory, ...content() });
      break;
    }
    case 'symlink': {
      const target = freshPath();
      if (!target || !entries.length) break;
      // Relative, to something inside the tree (it may dangle later, or point outside after a move).
      const pointee = rng.pick(entries);
      const relative = path.posix.relative(path.posix.dirname(target), pointee) || '.';
      run({ side, op: 'symlink', path: target, target: relative });
      break;
    }
    case 'retarget': {
      // ln -sfn: same path, new target.
      const links = entries.filter((entry) => tree.get(entry)?.kind === 'link');
      if (!links.length) break;
      const link = rng.pick(links);
      const pointee = rng.pick(entries);
      run({ side, op: 'rm', path: link });
      run({ side, op: 'symlink', path: link, target: path.posix.relative(path.posix.dirname(link), pointee) || '.' });
      break;
    }
    case 'copy': {
      // Same content at a second path: versions are path-independent.
      const target = freshPath();
      if (!target || !files.length) break;
      const source = rng.pick(files);
      run({ side, op: 'write', path: target, content: readFileSync(path.join(root, source), 'utf8'), exec: rng.chance(0.5), mtime: tick() });
      break;
    }
    case 'touch':
      if (files.length) run({ side, op: 'touch', path: rng.pick(files), mtime: tick() });
      break;
  }
  if (ops.length) {
    context.actions[label] = (context.actions[label] ?? 0) + 1;
    const paths = ops.flatMap((op) => (op.op === 'rename' ? [op.from, op.to] : [op.path]));
    if (paths.some((candidate) => candidate.split('/').some((name) => ignoredName(name, true)))) {
      context.actions['on an ignorable name'] = (context.actions['on an ignorable name'] ?? 0) + 1;
    }
  }
  return ops;
}

/**
 * The user settles a reported conflict by hand on one side: deletes their version (the other
 * side's then wins: a side that only deleted loses) or copies the other side's file over theirs.
 */
function settleByHand(context: GenerationContext, conflict: string): Op[] {
  const { rng, roots } = context;
  const side = rng.pick(SIDES);
  const theirs = path.join(roots[other(side)], conflict);
  const mine = kindAt(path.join(roots[side], conflict));
  let op: Op | undefined;
  if (kindAt(theirs) === 'file' && mine !== 'dir' && mine !== 'link' && rng.chance(0.5)) {
    context.clock += 1;
    op = { side, op: 'write', path: conflict, content: readFileSync(theirs, 'utf8'), exec: (lstatSync(theirs).mode & 0o111) !== 0, mtime: context.clock };
  } else if (mine !== undefined) {
    op = { side, op: 'rm', path: conflict };
  }
  if (!op || !applyOp(roots, op)) return [];
  context.actions['settle a conflict by hand'] = (context.actions['settle a conflict by hand'] ?? 0) + 1;
  return [op];
}

// --- Syncers -----------------------------------------------------------------------------------

export interface SyncerOptions {
  roots: Record<Side, string>;
  stateDir: string;
  policy: Policy;
  excludes: readonly string[];
  reset?: boolean;
  /** Run `resolveConflict` (whose report is its closing two-way-safe cycle's) instead of a plain cycle. */
  resolve?: { path: string; keep: KeepChoice };
}
export type SyncOutcome = Pick<SyncReport, 'id' | 'applied' | 'appliedCount' | 'kept' | 'conflicts' | 'skipped' | 'problems' | 'halted'>;
export type Syncer = (options: SyncerOptions) => Promise<SyncOutcome>;

export const engineSyncer: Syncer = ({ resolve, stateDir, ...options }) => (resolve ? withStateStore(stateDir, (store) => resolveConflict({ ...options, ...resolve, store })) : runSyncCycle({ ...options, stateDir }));

let baselineRuns = 0;

/**
 * The design the three-way sync replaces: `rsync -rlpt --delete` host → container, then the same
 * container → host. Excluded paths are neither sent nor deleted (rsync without --delete-excluded).
 */
export const twoRsyncBaseline: Syncer = async ({ roots }) => {
  const applied = [...mirror(roots.host, roots.container, 'container'), ...mirror(roots.container, roots.host, 'host')];
  baselineRuns += 1;
  return { id: `two-rsync-${baselineRuns}`, applied, appliedCount: applied.length, kept: [], conflicts: [], skipped: [], problems: [] };
};

function mirror(sourceRoot: string, targetRoot: string, targetSide: Side): SyncReport['applied'] {
  const source = walkTree(sourceRoot);
  const target = walkTree(targetRoot);
  const sourceIgnored = topIgnored(source);
  const targetIgnored = topIgnored(target);
  const sent = (relative: string) => (isAtOrUnder(relative, sourceIgnored) ? undefined : source.get(relative));
  const changes: SyncReport['applied'] = [];
  for (const relative of [...target.keys()].reverse()) {
    const node = target.get(relative)!;
    if (isAtOrUnder(relative, targetIgnored) || sent(relative)?.kind === node.kind) continue;
    const full = path.join(targetRoot, relative);
    if (node.kind !== 'dir') unlinkSync(full);
    else if (readdirSync(full).length === 0) rmdirSync(full);
    else continue; // rsync: "cannot delete non-empty directory" (protected excluded files)
    changes.push({ path: relative, side: targetSide, action: 'delete' });
  }
  for (const [relative, node] of source) {
    if (isAtOrUnder(relative, sourceIgnored) || isAtOrUnder(relative, targetIgnored)) continue;
    const from = path.join(sourceRoot, relative);
    const to = path.join(targetRoot, relative);
    const current = kindAt(to);
    if (current === 'dir' && node.kind !== 'dir') continue; // the undeletable directory above
    if (node.kind === 'dir') {
      if (current === undefined) {
        mkdirSync(to);
        changes.push({ path: relative, side: targetSide, action: 'create' });
      }
    } else if (node.kind === 'file') {
      if (current === 'file' && equivalent(fileNode(to), node)) continue;
      if (current === 'link') unlinkSync(to);
      copyFileSync(from, to);
      chmodSync(to, node.mode);
      utimesSync(to, node.mtimeMs / 1000, node.mtimeMs / 1000);
      changes.push({ path: relative, side: targetSide, action: current === undefined ? 'create' : 'update' });
    } else if (node.kind === 'link') {
      if (current === 'link' && readlinkSync(to) === node.target) continue;
      if (current !== undefined) unlinkSync(to);
      symlinkSync(node.target, to);
      changes.push({ path: relative, side: targetSide, action: current === undefined ? 'create' : 'update' });
    }
  }
  return changes;
}

// --- The property run --------------------------------------------------------------------------

export class PropertyViolation extends Error {
  constructor(readonly category: string, readonly round: number, detail: string) {
    super(`[${category}] round ${round}: ${detail}`);
  }
}

export interface PropertyRunOptions {
  seed: number;
  policy: Policy;
  rounds: number;
  syncer?: Syncer;
  /** Check (I8) against the state store's ancestor; on by default for the engine, meaningless for a baseline. */
  checkAncestor?: boolean;
  /** two-way-safe only: now and then the user settles one of the last sync's conflicts with `clud resolve`. */
  resolves?: boolean;
  /**
   * Also require the report of a `clud resolve` to account for what the resolve itself changed and
   * kept aside (I4, I10). Off by default: see the BUG note in test/unit/syncProperty.test.ts.
   */
  checkResolveReport?: boolean;
  /** Replay these operations (one list per round) instead of generating them from the seed. */
  script?: Step[][];
  /** Parent of the temporary folders; os.tmpdir() by default. */
  tmpRoot?: string;
}

export interface PropertyRunStats {
  rounds: number;
  operations: number;
  applied: number;
  conflicts: number;
  kept: number;
  skipped: number;
  resolves: number;
  /** User actions carried out, by kind. */
  actions: Record<string, number>;
}

export interface PropertyRunResult {
  seed: number;
  policy: Policy;
  /** The operations carried out, one list per round run. */
  script: Step[][];
  violation?: PropertyViolation;
  stats: PropertyRunStats;
}

export async function runProperty(options: PropertyRunOptions): Promise<PropertyRunResult> {
  const syncer = options.syncer ?? engineSyncer;
  const checkAncestor = options.checkAncestor ?? syncer === engineSyncer;
  const base = mkdtempSync(path.join(options.tmpRoot ?? tmpdir(), 'clud-property-'));
  const roots: Record<Side, string> = { host: path.join(base, 'host'), container: path.join(base, 'container') };
  const stateDir = path.join(base, 'state');
  const result: PropertyRunResult = { seed: options.seed, policy: options.policy, script: [], stats: { rounds: 0, operations: 0, applied: 0, conflicts: 0, kept: 0, skipped: 0, resolves: 0, actions: {} } };
  const context: GenerationContext = { rng: new Random(options.seed), roots, clock: 0, actions: result.stats.actions };
  try {
    for (const side of SIDES) {
      mkdirSync(roots[side]);
      writeFileSync(path.join(roots[side], '.gitignore'), ROOT_GITIGNORE);
      utimesSync(path.join(roots[side], '.gitignore'), MTIME_BASE, MTIME_BASE);
    }
    const agreed: Tree = new Map();
    const rounds = options.script ? options.script.length : options.rounds;
    let conflicts: string[] = [];
    for (let round = 1; round <= rounds; round += 1) {
      result.stats.rounds = round;
      let steps: Step[];
      if (options.script) {
        // A resolve only replays while its path is still a conflict, so a shrunk script stays one a user could run.
        steps = options.script[round - 1]!.filter((step) => (step.op === 'reset' ? true : step.op === 'resolve' ? conflicts.includes(step.path) : applyOp(roots, step)));
      } else {
        const { rng } = context;
        steps = [];
        const first = round === 1;
        const count = first ? 10 + rng.int(14) : rng.chance(0.1) ? 0 : 1 + rng.int(7);
        for (let index = 0; index < count; index += 1) steps.push(...generateAction(context, rng.chance(first ? 0.6 : 0.5) ? 'host' : 'container', first));
        if (conflicts.length > 0 && rng.chance(0.3)) steps.push(...settleByHand(context, rng.pick(conflicts)));
        if (options.resolves && options.policy === 'two-way-safe' && conflicts.length > 0 && rng.chance(0.4)) {
          // The user settles one of the last sync's conflicts (after this round's edits, as people do).
          const conflict = rng.pick(conflicts);
          const keep = rng.pick<KeepChoice>(kindAt(path.join(roots.container, conflict)) === undefined ? ['host', 'container'] : ['host', 'container', 'both']);
          steps.push({ op: 'resolve', path: conflict, keep });
        } else if (!first && rng.chance(0.05)) {
          // Now and then the user resets the sync (forgets the agreed state): both sides merge.
          steps.push({ op: 'reset' });
        }
      }
      result.script.push(steps);
      result.stats.operations += steps.filter((step) => step.op !== 'reset' && step.op !== 'resolve').length;
      const reset = steps.some((step) => step.op === 'reset');
      const resolve = steps.find((step) => step.op === 'resolve');
      conflicts = await checkRound({
        round, roots, stateDir, policy: options.policy, syncer, checkAncestor, agreed, stats: result.stats, reset,
        ...(resolve && { resolve: { path: resolve.path, keep: resolve.keep } }), checkResolveReport: options.checkResolveReport ?? false,
      });
    }
  } catch (error) {
    // An exception (a sync that throws, say) is a failure too, with the seed and operations to replay it.
    result.violation = error instanceof PropertyViolation ? error : new PropertyViolation('exception', result.stats.rounds, (error as Error).stack ?? String(error));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  return result;
}

interface RoundContext {
  round: number;
  roots: Record<Side, string>;
  stateDir: string;
  policy: Policy;
  syncer: Syncer;
  checkAncestor: boolean;
  /** BASE, updated in place. */
  agreed: Tree;
  stats: PropertyRunStats;
  /** This round's first sync runs with `reset: true`: the engine forgets the agreed state, so BASE is emptied. */
  reset: boolean;
  /** This round's first sync is a `clud resolve`. */
  resolve?: { path: string; keep: KeepChoice };
  checkResolveReport: boolean;
}

const listDirectory = (directory: string): string[] => (existsSync(directory) ? readdirSync(directory).sort(codeUnitOrder) : []);

/** What one round saw and did, for the checks of its invariants. */
interface Round {
  context: RoundContext;
  fail: (category: string, detail: string) => never;
  before: Record<Side, Tree>;
  after: Record<Side, Tree>;
  /** The top-level ignored paths of both sides before the sync. */
  ignored: Set<string>;
  report: SyncOutcome;
  conflictPaths: string[];
  skippedPaths: Record<Side, string[]>;
  keptDirectory: string;
  keptRoot: string;
  /** The kept folders this round created, and what each holds. */
  newKeptFolders: string[];
  keptIn: Map<string, Record<Side, Tree>>;
  /** The user chose, with `clud resolve --keep`, to drop this side's version here (it is kept aside). */
  resolvedAway: (side: Side, relative: string) => boolean;
}

/** Runs one round's sync and its checks; returns the conflicts it reported. */
async function checkRound(context: RoundContext): Promise<string[]> {
  const { round, roots, stateDir, policy, syncer, agreed, resolve } = context;
  const fail = (category: string, detail: string): never => {
    throw new PropertyViolation(category, round, detail);
  };
  const before = { host: walkTree(roots.host), container: walkTree(roots.container) };
  const ignoredBySide = { host: topIgnored(before.host), container: topIgnored(before.container) };
  const ignored = new Set([...ignoredBySide.host, ...ignoredBySide.container]);
  await checkIgnoreModel(roots, ignoredBySide, fail);

  if (context.reset) agreed.clear();
  const keptDirectory = path.join(stateDir, 'kept');
  const keptFoldersBefore = new Set(listDirectory(keptDirectory));
  const options: SyncerOptions = { roots, stateDir, policy, excludes: USER_EXCLUDES, ...(context.reset && { reset: true }), ...(resolve && { resolve }) };
  let report: SyncOutcome;
  try {
    report = await syncer(options);
  } catch (error) {
    // A resolve may refuse (e.g. the losing folder holds ignored files, so it cannot be removed);
    // what it did until then must still be safe, and this round's sync then is a plain cycle.
    if (!resolve) throw error;
    report = await syncer({ ...options, resolve: undefined });
  }
  const after = { host: walkTree(roots.host), container: walkTree(roots.container) };
  // The kept folders this round created: the sync's own (kept/<syncId>), a resolve's (kept/<id>-resolve).
  const newKeptFolders = listDirectory(keptDirectory).filter((folder) => !keptFoldersBefore.has(folder));
  const keptIn = new Map(newKeptFolders.map((folder) => [folder, { host: walkTree(path.join(keptDirectory, folder, 'host')), container: walkTree(path.join(keptDirectory, folder, 'container')) }]));
  const loser: Side | undefined = resolve?.keep === 'host' ? 'container' : resolve?.keep === 'container' ? 'host' : undefined;
  const resolvedAway = (side: Side, relative: string) => side === loser && isAtOrUnder(relative, [resolve!.path]);
  if (resolve) context.stats.resolves += 1;
  context.stats.applied += report.appliedCount;
  context.stats.conflicts += report.conflicts.length;
  context.stats.kept += report.kept.length;
  context.stats.skipped += report.skipped.length;

  if (report.halted) fail('halted', `the sync halted: ${JSON.stringify(report.halted)}`);
  const conflictPaths = report.conflicts.map((conflict) => conflict.path);
  const skippedPaths = { host: report.skipped.filter((s) => s.side === 'host').map((s) => s.path), container: report.skipped.filter((s) => s.side === 'container').map((s) => s.path) };
  const checked: Round = { context, fail, before, after, ignored, report, conflictPaths, skippedPaths, keptDirectory, keptRoot: path.join(keptDirectory, report.id), newKeptFolders, keptIn, resolvedAway };

  checkIgnoredUntouched(checked);
  checkConflictsUntouched(checked);
  checkKeptVersions(checked);
  checkNoLoss(checked);
  checkNewDirectoriesKept(checked);
  checkOneSidedChangesPropagate(checked);
  checkNothingInvented(checked);
  checkConverged(checked);
  checkReportComplete(checked);
  await checkIdempotent(checked);
  advanceAgreed(checked);
  await checkAncestorRecorded(checked);
  return conflictPaths;
}

/** The test's ignore model and the scan must agree, or the checks would guard the wrong paths. */
async function checkIgnoreModel(roots: Record<Side, string>, ignoredBySide: Record<Side, Set<string>>, fail: Round['fail']): Promise<void> {
  for (const side of SIDES) {
    const scanned = (await scanTree(roots[side], { excludes: USER_EXCLUDES })).ignored;
    if (!isDeepStrictEqual([...scanned].sort(), [...ignoredBySide[side]].sort())) {
      fail('ignore-model', `${side}: the scan ignores ${JSON.stringify([...scanned].sort())}, the test expects ${JSON.stringify([...ignoredBySide[side]].sort())}`);
    }
  }
}

/**
 * (I2) Ignored content untouched, on both sides. (Except that `--keep both` renames the
 * container's folder, and what is ignored inside it moves along: the user asked for that rename.)
 */
function checkIgnoredUntouched(round: Round): void {
  const { before, after, ignored, fail } = round;
  const { resolve } = round.context;
  for (const side of SIDES) {
    const renamedByUser = (relative: string) => side === 'container' && resolve?.keep === 'both' && isAtOrUnder(relative, [resolve.path]);
    const paths = new Set([...before[side].keys(), ...after[side].keys()].filter((relative) => isAtOrUnder(relative, ignored) && !renamedByUser(relative)));
    for (const relative of paths) {
      if (fingerprint(before[side].get(relative)) !== fingerprint(after[side].get(relative))) {
        fail('ignored-touched', `${side} ${JSON.stringify(relative)} is ignored but changed: ${describeNode(before[side].get(relative))} → ${describeNode(after[side].get(relative))}`);
      }
    }
  }
}

/** (I3) Conflicts left alone (except where the user resolved: a refused resolve may have begun). */
function checkConflictsUntouched(round: Round): void {
  const { before, after, conflictPaths, fail } = round;
  const { resolve } = round.context;
  for (const conflict of conflictPaths) {
    if (resolve && (isAtOrUnder(conflict, [resolve.path]) || isAtOrUnder(resolve.path, [conflict]))) continue;
    for (const side of SIDES) {
      const paths = new Set([...before[side].keys(), ...after[side].keys()].filter((relative) => isAtOrUnder(relative, [conflict])));
      for (const relative of paths) {
        if (!equivalent(before[side].get(relative), after[side].get(relative))) {
          fail('conflict-touched', `conflict at ${JSON.stringify(conflict)}, yet ${side} ${JSON.stringify(relative)} changed: ${describeNode(before[side].get(relative))} → ${describeNode(after[side].get(relative))}`);
        }
      }
    }
  }
}

/** (I4) Kept versions: where reported, what was there, all reported; none under two-way-safe. */
function checkKeptVersions(round: Round): void {
  const { before, report, keptDirectory, keptRoot, newKeptFolders, keptIn, resolvedAway, fail } = round;
  const { policy, resolve } = round.context;
  for (const folder of newKeptFolders) {
    if (folder !== report.id && !(resolve && folder.endsWith('-resolve'))) fail('kept-location', `versions were kept in ${path.join(keptDirectory, folder)}, not in this sync's ${keptRoot}`);
  }
  for (const entry of report.kept) {
    const folder = newKeptFolders.find((candidate) => entry.keptAt === path.join(keptDirectory, candidate, entry.side, entry.path));
    if (folder === undefined) fail('kept-location', `kept ${entry.side} ${JSON.stringify(entry.path)} at ${entry.keptAt}, expected ${path.join(keptRoot, entry.side, entry.path)}`);
    const copy = keptIn.get(folder!)?.[entry.side].get(entry.path);
    if (!copy || !equivalent(copy, before[entry.side].get(entry.path))) {
      fail('kept-content', `kept ${entry.side} ${JSON.stringify(entry.path)} holds ${describeNode(copy)}, but the ${entry.side} had ${describeNode(before[entry.side].get(entry.path))}`);
    }
    if (policy === 'two-way-safe' && !resolvedAway(entry.side, entry.path)) fail('kept-two-way-safe', `two-way-safe kept ${entry.side} ${JSON.stringify(entry.path)} aside`);
  }
  for (const [folder, trees] of keptIn) {
    if (folder.endsWith('-resolve') && !round.context.checkResolveReport) continue;
    for (const side of SIDES) {
      for (const [relative, node] of trees[side]) {
        const at = path.join(keptDirectory, folder, side, relative);
        if (node.kind !== 'dir' && !report.kept.some((entry) => entry.keptAt === at)) fail('kept-unreported', `${at} (${describeNode(node)}) is not in the report${resolve ? ` of clud resolve ${JSON.stringify(resolve.path)} --keep ${resolve.keep}` : ''}`);
      }
    }
  }
}

/** (I1) No loss: every version either side had survives on both, is kept aside legitimately, or waits in a conflict or a skipped change. */
function checkNoLoss(round: Round): void {
  const { before, after, ignored, report, conflictPaths, skippedPaths, newKeptFolders, keptIn, resolvedAway, fail } = round;
  const { policy, agreed } = round.context;
  const kept = round.keptIn.get(report.id) ?? ({ host: new Map(), container: new Map() } as Record<Side, Tree>);
  const versionsAfter = (side: Side) => new Set([...after[side]].filter(([relative]) => !isAtOrUnder(relative, ignored)).map(([, node]) => versionOf(node)).filter((version) => version !== undefined));
  const surviving = { host: versionsAfter('host'), container: versionsAfter('container') };
  for (const side of SIDES) {
    for (const [relative, node] of before[side]) {
      const version = versionOf(node);
      if (version === undefined || isAtOrUnder(relative, ignored)) continue;
      const agreedEntry = agreed.get(relative);
      if (equivalent(node, agreedEntry) && !equivalent(before[other(side)].get(relative), agreedEntry)) continue;
      if (surviving.host.has(version) && surviving.container.has(version)) continue;
      const keptFolder = newKeptFolders.find((folder) => versionOf(keptIn.get(folder)?.[side].get(relative)) === version);
      if (keptFolder !== undefined) {
        const why = resolvedAway(side, relative) ? undefined : keptIllegitimately(policy, side, relative, before, agreed);
        if (why) fail('kept-not-loser', `${side} ${JSON.stringify(relative)} (${version}) was moved to kept/ although ${why} (${other(side)} had ${describeNode(before[other(side)].get(relative))}; agreed: ${describeNode(agreedEntry)})`);
        continue;
      }
      if (isAtOrUnder(relative, [...conflictPaths, ...skippedPaths.host, ...skippedPaths.container]) && versionOf(after[side].get(relative)) === version) continue;
      const where = SIDES.filter((s) => surviving[s].has(version));
      fail('lost-version', `${side} ${JSON.stringify(relative)} held ${version}, which must survive (agreed: ${describeNode(agreedEntry)}; ${other(side)} had ${describeNode(before[other(side)].get(relative))}), `
        + `but after the sync it is ${where.length ? `only on the ${where.join(' and ')}` : 'nowhere'} (now ${side}: ${describeNode(after[side].get(relative))}, ${other(side)}: ${describeNode(after[other(side)].get(relative))}; `
        + `kept: ${describeNode(kept[side].get(relative))}; conflicts: ${JSON.stringify(conflictPaths)}; skipped: ${JSON.stringify(report.skipped)})`);
    }
  }
}

/** (I1, directories) A new directory is not dropped. */
function checkNewDirectoriesKept(round: Round): void {
  const { before, after, ignored, conflictPaths, skippedPaths, resolvedAway, fail } = round;
  const { policy, agreed } = round.context;
  const overwritten: Side | undefined = policy === 'push' ? 'container' : policy === 'pull' ? 'host' : undefined;
  for (const side of SIDES) {
    if (side === overwritten) continue;
    for (const [relative, node] of before[side]) {
      if (node.kind !== 'dir' || isAtOrUnder(relative, ignored) || equivalent(node, agreed.get(relative)) || resolvedAway(side, relative)) continue;
      if (isAtOrUnder(relative, [...conflictPaths, ...skippedPaths.host, ...skippedPaths.container])) continue;
      const competing = prefixes(relative).some((prefix) => {
        const theirs = before[other(side)].get(prefix);
        return theirs !== undefined && theirs.kind !== 'dir' && !equivalent(theirs, agreed.get(prefix));
      });
      if (competing) continue;
      if (after.host.get(relative)?.kind !== 'dir' || after.container.get(relative)?.kind !== 'dir') {
        fail('lost-directory', `${side} created directory ${JSON.stringify(relative)} (agreed: ${describeNode(agreed.get(relative))}; ${other(side)} had ${describeNode(before[other(side)].get(relative))}), but after the sync host has ${describeNode(after.host.get(relative))}, container ${describeNode(after.container.get(relative))}`);
      }
    }
  }
}

/** (I9) One-sided changes propagate (deletions included). */
function checkOneSidedChangesPropagate(round: Round): void {
  const { before, after, ignored, conflictPaths, skippedPaths, fail } = round;
  const { policy, agreed, resolve } = round.context;
  const resolvedPaths = resolve ? [resolve.path] : [];
  const overwritten: Side | undefined = policy === 'push' ? 'container' : policy === 'pull' ? 'host' : undefined;
  for (const side of SIDES) {
    for (const relative of new Set([...before[side].keys(), ...agreed.keys()])) {
      const mine = before[side].get(relative);
      const theirs = before[other(side)].get(relative);
      const agreedEntry = agreed.get(relative);
      if (mine?.kind === 'dir' || agreedEntry?.kind === 'dir' || equivalent(mine, agreedEntry) || !equivalent(theirs, agreedEntry)) continue;
      if (isAtOrUnder(relative, [...ignored, ...conflictPaths, ...skippedPaths.host, ...skippedPaths.container, ...resolvedPaths])) continue;
      // A change made by replacing a folder above with a file or link is decided there, as a whole.
      const replacedAbove = (tree: Tree) => prefixes(relative).slice(0, -1).some((prefix) => tree.has(prefix) && tree.get(prefix)?.kind !== 'dir');
      if (replacedAbove(before.host) || replacedAbove(before.container)) continue;
      const expected = side === overwritten ? theirs : mine;
      if (!equivalent(after.host.get(relative), expected) || !equivalent(after.container.get(relative), expected)) {
        fail('not-propagated', `only the ${side} changed ${JSON.stringify(relative)} (${describeNode(agreedEntry)} → ${describeNode(mine)}), yet after the sync host has ${describeNode(after.host.get(relative))}, container ${describeNode(after.container.get(relative))}`);
      }
    }
  }
}

/** (I5) Nothing invented. */
function checkNothingInvented(round: Round): void {
  const { before, after, ignored, fail } = round;
  const versionsBefore = new Set(SIDES.flatMap((side) => [...before[side]].map(([, node]) => versionOf(node))));
  for (const side of SIDES) {
    for (const [relative, node] of after[side]) {
      const version = versionOf(node);
      if (version !== undefined && !isAtOrUnder(relative, ignored) && !versionsBefore.has(version)) fail('invented', `${side} ${JSON.stringify(relative)} now holds ${version}, which no side had`);
    }
  }
}

/** (I6) Convergence. */
function checkConverged(round: Round): void {
  const { before, after, ignored, conflictPaths, skippedPaths, fail } = round;
  const ignoredAfter = new Set([...ignored, ...topIgnored(after.host), ...topIgnored(after.container)]);
  const exempt = [...ignoredAfter, ...conflictPaths, ...skippedPaths.host, ...skippedPaths.container];
  for (const relative of new Set([...after.host.keys(), ...after.container.keys()])) {
    if (isAtOrUnder(relative, exempt)) continue;
    if (!equivalent(after.host.get(relative), after.container.get(relative))) {
      fail('not-converged', `after the sync ${JSON.stringify(relative)} differs: host ${describeNode(after.host.get(relative))}, container ${describeNode(after.container.get(relative))} (no conflict or skipped change there; before: host ${describeNode(before.host.get(relative))}, container ${describeNode(before.container.get(relative))})`);
    }
  }
}

/** (I10) The report accounts for every change on disk. */
function checkReportComplete(round: Round): void {
  const { before, after, ignored, report, fail } = round;
  const { resolve } = round.context;
  if (!resolve || round.context.checkResolveReport) {
    for (const side of SIDES) {
      for (const relative of new Set([...before[side].keys(), ...after[side].keys()])) {
        if (isAtOrUnder(relative, ignored) || equivalent(before[side].get(relative), after[side].get(relative))) continue;
        if (report.appliedCount > report.applied.length) continue; // the list is capped
        if (!report.applied.some((change) => change.side === side && change.path === relative)) {
          fail('unreported-change', `${side} ${JSON.stringify(relative)} went from ${describeNode(before[side].get(relative))} to ${describeNode(after[side].get(relative))}, but the report${resolve ? ` of clud resolve ${JSON.stringify(resolve.path)} --keep ${resolve.keep}` : ''} lists no change there (applied: ${JSON.stringify(report.applied)})`);
        }
      }
    }
  }
}

/** (I7) Idempotence: a second sync changes nothing and reports the same conflicts. */
async function checkIdempotent(round: Round): Promise<void> {
  const { after, report, fail } = round;
  const { roots, stateDir, policy, syncer } = round.context;
  const second = await syncer({ roots, stateDir, policy, excludes: USER_EXCLUDES });
  if (second.halted) fail('halted', `the second sync halted: ${JSON.stringify(second.halted)}`);
  if (second.appliedCount !== 0) fail('not-idempotent', `the second sync applied ${second.appliedCount} change(s)`);
  if (second.kept.length !== 0 || existsSync(path.join(stateDir, 'kept', second.id))) fail('not-idempotent', `the second sync kept ${JSON.stringify(second.kept)}`);
  if (!isDeepStrictEqual(second.conflicts, report.conflicts)) fail('not-idempotent', `the second sync reports conflicts ${JSON.stringify(second.conflicts)}, the first ${JSON.stringify(report.conflicts)}`);
  for (const side of SIDES) {
    const again = walkTree(roots[side]);
    for (const relative of new Set([...again.keys(), ...after[side].keys()])) {
      if (fingerprint(again.get(relative)) !== fingerprint(after[side].get(relative))) fail('not-idempotent', `the second sync changed ${side} ${JSON.stringify(relative)}: ${describeNode(after[side].get(relative))} → ${describeNode(again.get(relative))}`);
    }
  }
}

/** BASE moves where the sides now agree (outside conflicts); ignored paths are forgotten. */
function advanceAgreed(round: Round): void {
  const { after, ignored, conflictPaths } = round;
  const { agreed } = round.context;
  for (const relative of new Set([...after.host.keys(), ...after.container.keys(), ...agreed.keys()])) {
    if (isAtOrUnder(relative, ignored)) agreed.delete(relative);
    else if (isAtOrUnder(relative, conflictPaths)) continue;
    else if (equivalent(after.host.get(relative), after.container.get(relative))) {
      const node = after.host.get(relative);
      if (node) agreed.set(relative, node);
      else agreed.delete(relative);
    }
  }
}

/** (I8) The recorded ancestor is the observed agreement. */
async function checkAncestorRecorded(round: Round): Promise<void> {
  const { fail } = round;
  const { stateDir, agreed } = round.context;
  if (round.context.checkAncestor) {
    const ancestor = await withStateStore(stateDir, async (store) => new Map(store.ancestor));
    for (const relative of new Set([...ancestor.keys(), ...agreed.keys()])) {
      const recorded = ancestor.get(relative);
      const observed = agreed.get(relative);
      // The ancestor stores hashes and modes, the test versions: compare what both identify.
      const same = recorded === undefined || observed === undefined ? recorded === observed
        : recorded.kind === 'file' ? observed.kind === 'file' && observed.hash === recorded.hash && ((observed.mode & 0o111) !== 0) === ((recorded.mode & 0o111) !== 0)
        : recorded.kind === 'directory' ? observed.kind === 'dir'
        : recorded.kind === 'symlink' ? observed.kind === 'link' && observed.target === recorded.target
        : false;
      if (!same) fail('ancestor-mismatch', `the agreed state records ${JSON.stringify(relative)} as ${JSON.stringify(recorded) ?? 'absent'}, the trees last agreed on ${describeNode(observed)}`);
    }
  }
}

/**
 * Why side `side` should not have lost its version at `relative` to kept/, or undefined if it was
 * the loser: the side a push or pull overwrites; under host-wins / container-wins the other side
 * when the winner changed this path too (at it, under it, or a file or link replacing a folder
 * above it: a side that only deleted loses); under newer-wins the older of two files.
 */
function keptIllegitimately(policy: Policy, side: Side, relative: string, before: Record<Side, Tree>, agreed: Tree): string | undefined {
  const theirs = before[other(side)];
  switch (policy) {
    case 'two-way-safe':
      return 'two-way-safe never overwrites a change';
    case 'push':
    case 'pull':
      return side === (policy === 'push' ? 'container' : 'host') ? undefined : `a ${policy} never overwrites the ${side}`;
    case 'host-wins':
    case 'container-wins': {
      if (policy === `${side}-wins`) return `the ${side} wins under ${policy}`;
      const changed = (candidate: string) => theirs.has(candidate) && !equivalent(theirs.get(candidate), agreed.get(candidate));
      const above = prefixes(relative).slice(0, -1).some((prefix) => changed(prefix) && theirs.get(prefix)?.kind !== 'dir');
      const atOrBelow = [...theirs.keys()].some((candidate) => isAtOrUnder(candidate, [relative]) && changed(candidate));
      return above || atOrBelow ? undefined : `the ${other(side)} did not change ${JSON.stringify(relative)} (a side that only deleted loses)`;
    }
    case 'newer-wins': {
      const mine = before[side].get(relative);
      const winner = theirs.get(relative);
      if (mine?.kind !== 'file' || winner?.kind !== 'file') return 'newer-wins only decides between two files';
      return mine.mtimeMs < winner.mtimeMs ? undefined : `it is not older (mtime ${mine.mtimeMs} vs ${winner.mtimeMs})`;
    }
  }
}

// --- Reporting and shrinking -------------------------------------------------------------------

export function describeScript(script: readonly Step[][]): string {
  return script.map((ops, index) => `  round ${index + 1}:${ops.length ? '' : ' (no operations)'}\n${ops.map((op) => `    ${describeOp(op)}\n`).join('')}    sync`).join('\n');
}

/**
 * Greedy shrinking of a failing script: drops rounds, then single operations, as long as a
 * violation of the same category remains. Bounded by `budgetMs`.
 */
export async function shrink(failing: PropertyRunResult, options: Omit<PropertyRunOptions, 'seed' | 'policy' | 'rounds' | 'script'> & { budgetMs: number }): Promise<PropertyRunResult> {
  const deadline = Date.now() + options.budgetMs;
  const category = failing.violation?.category;
  let best = failing;
  const attempt = async (script: Step[][]): Promise<boolean> => {
    if (Date.now() > deadline) return false;
    const candidate = await runProperty({ ...options, seed: failing.seed, policy: failing.policy, rounds: script.length, script });
    const violation = candidate.violation;
    if (violation === undefined || violation.category !== category) return false;
    // Keep what was really carried out, truncated at the failing round.
    best = { ...candidate, script: candidate.script.slice(0, violation.round) };
    return true;
  };
  let progress = true;
  while (progress && Date.now() < deadline) {
    progress = false;
    for (let index = best.script.length - 1; index >= 0; index -= 1) {
      if (best.script.length > 1 && (await attempt(best.script.filter((_, i) => i !== index)))) progress = true;
    }
    for (let roundIndex = best.script.length - 1; roundIndex >= 0; roundIndex -= 1) {
      for (let opIndex = (best.script[roundIndex]?.length ?? 0) - 1; opIndex >= 0; opIndex -= 1) {
        const script = best.script.map((ops, r) => (r === roundIndex ? ops.filter((_, o) => o !== opIndex) : ops));
        if (await attempt(script)) progress = true;
      }
    }
  }
  return best;
}

export function describeFailure(result: PropertyRunResult, shrunk?: PropertyRunResult): string {
  const lines = [
    `sync property violated: seed ${result.seed}, policy ${result.policy}`,
    `  ${result.violation?.message}`,
    `  replay: CLUD_PROPERTY_SEED=${result.seed} CLUD_PROPERTY_POLICIES=${result.policy} npx mocha test/unit/syncProperty.test.ts`,
  ];
  if (shrunk && shrunk !== result) {
    lines.push(`shrunk to ${shrunk.script.flat().length} operation(s) in ${shrunk.script.length} round(s):`, `  ${shrunk.violation?.message}`, describeScript(shrunk.script), `  as a script: ${JSON.stringify(shrunk.script)}`);
  } else {
    lines.push('operations:', describeScript(result.script.slice(0, result.violation?.round ?? result.script.length)));
  }
  return lines.join('\n');
}

// --- Racing writers ----------------------------------------------------------------------------
//
// A second property, about time rather than operations: while a sync applies its changes, a
// writer in another thread keeps rewriting files on both sides, some in place (truncate and write,
// as `printf > f` does) and some as an editor saves (write a temporary, rename it over). Every
// version is unique. (R1) No complete version is lost: afterwards, the last version written at
// each (side, path), by the round's set-up or by the writer, is found somewhere: in either tree
// or in the kept folder. (Earlier versions at the same path were replaced by the writer itself,
// which is the user's doing.) The trees start agreed each round, so every one of these versions
// is new work the sync must not drop, whatever the policy.

export interface RaceRunOptions {
  seed: number;
  rounds: number;
  /** Files per round (each is rewritten in the container before the sync). */
  files: number;
  tmpRoot?: string;
  /** Record the host changes as undo steps (the apply then also checks the saved preimage). */
  undo?: boolean;
}

export interface RaceRunResult {
  seed: number;
  /** Versions that were complete on disk and are nowhere afterwards, as "round r: side:path: version". */
  lost: string[];
  /** Versions the writer completed while the syncs ran, over all rounds. */
  written: number;
  applied: number;
  skipped: number;
  kept: number;
}

// The writer thread: plain JavaScript, so it runs without the TypeScript loader. It rewrites
// random files until told to stop, and reports the last version it completed at each path.
const RACE_WRITER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { roots, files, round, seed } = workerData;
let state = seed >>> 0;
const random = () => { state = (state + 0x6d2b79f5) >>> 0; let t = state; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const stop = new Int32Array(workerData.stop);
const last = {};
let written = 0;
while (Atomics.load(stop, 0) === 0) {
  const side = random() < 0.7 ? 'host' : 'container';
  const name = 'f' + Math.floor(random() * files) + '.txt';
  const full = path.join(roots[side], name);
  const version = 'round ' + round + ' ' + side + ' ' + name + ' writer version ' + written + '\\n';
  try {
    if (random() < 0.5) {
      fs.writeFileSync(full, version); // open(O_TRUNC), write, close: in place
    } else {
      const temporary = path.join(roots[side], '.edit-' + written + '.tmp');
      fs.writeFileSync(temporary, version);
      fs.renameSync(temporary, full);
    }
    last[side + ':' + name] = version;
    written += 1;
  } catch (error) {
    // A path briefly missing mid-sync (a folder cannot be, here) is not expected; report it.
    parentPort.postMessage({ error: String(error) });
  }
  for (let spin = Math.floor(random() * 2000); spin > 0; spin -= 1);
}
parentPort.postMessage({ last, written });
`;

export async function runRaceProperty(options: RaceRunOptions): Promise<RaceRunResult> {
  const { Worker } = await import('node:worker_threads');
  const { UndoLog } = await import('../../src/core/undo');
  const result: RaceRunResult = { seed: options.seed, lost: [], written: 0, applied: 0, skipped: 0, kept: 0 };
  const rng = new Random(options.seed);
  const policies: readonly Policy[] = ['two-way-safe', 'host-wins', 'container-wins', 'newer-wins', 'push', 'pull'];
  for (let round = 1; round <= options.rounds; round += 1) {
    const base = mkdtempSync(path.join(options.tmpRoot ?? tmpdir(), 'clud-race-'));
    try {
      const roots: Record<Side, string> = { host: path.join(base, 'host'), container: path.join(base, 'container') };
      const stateDir = path.join(base, 'state');
      const excludes = ['*.tmp'];
      for (const side of SIDES) {
        mkdirSync(roots[side]);
        for (let index = 0; index < options.files; index += 1) writeFileSync(path.join(roots[side], `f${index}.txt`), `round ${round} agreed f${index}.txt\n`);
      }
      await runSyncCycle({ roots, stateDir, policy: 'two-way-safe', excludes });
      // Every file changes in the container, so the sync writes every one of them to the host
      // (or keeps one side's): the writer races each of those writes.
      const expected = new Map<string, string>();
      for (let index = 0; index < options.files; index += 1) {
        const version = `round ${round} container f${index}.txt set-up version\n`;
        writeFileSync(path.join(roots.container, `f${index}.txt`), version);
        expected.set(`container:f${index}.txt`, version);
      }
      const policy = rng.pick(policies);
      const undo = options.undo ? { log: (await UndoLog.open(path.join(stateDir, 'undo'), { keptDirectory: path.join(stateDir, 'undo-kept') })).log } : undefined;
      const stop = new SharedArrayBuffer(4);
      const writer = new Worker(RACE_WRITER, { eval: true, workerData: { roots, files: options.files, round, seed: rng.int(2 ** 31), stop } });
      const finished = new Promise<{ last: Record<string, string>; written: number }>((resolve, reject) => {
        writer.on('message', (message: { error?: string; last?: Record<string, string>; written?: number }) => {
          if (message.error) reject(new Error(`the writer failed: ${message.error}`));
          else resolve(message as { last: Record<string, string>; written: number });
        });
        writer.on('error', reject);
      });
      let report: SyncReport;
      try {
        report = await runSyncCycle({ roots, stateDir, policy, excludes, undo });
      } finally {
        Atomics.store(new Int32Array(stop), 0, 1);
      }
      const { last, written } = await finished;
      await writer.terminate();
      for (const [key, version] of Object.entries(last)) expected.set(key, version);
      result.written += written;
      result.applied += report.appliedCount;
      result.skipped += report.skipped.length;
      result.kept += report.kept.length;
      const found = new Set<string>();
      const collect = (directory: string) => {
        for (const name of listDirectory(directory)) {
          const full = path.join(directory, name);
          const stats = lstatSync(full);
          if (stats.isDirectory()) collect(full);
          else if (stats.isFile()) found.add(readFileSync(full, 'utf8'));
        }
      };
      collect(roots.host);
      collect(roots.container);
      collect(path.join(stateDir, 'kept'));
      for (const [key, version] of expected) if (!found.has(version)) result.lost.push(`round ${round} (${policy}): ${key}: ${version.trim()}`);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }
  return result;
}
