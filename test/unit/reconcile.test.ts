import assert from 'node:assert/strict';
import { ancestorsOf, assertWellFormedSnapshot, entriesEqual, pathAndAncestors, regionFilter, type Entry } from '../../src/core/files/entry';
import { POLICIES, reconcile, type Change, type Conflict, type Policy, type Problem, type ReconcileResult, type Side } from '../../src/core/sync/reconcile';

// Shared fixtures. Hashes stand for content; mtimes are only read by newer-wins.
const fileA: Entry = { kind: 'file', size: 1, mtimeMs: 1_000, mode: 0o644, hash: 'hash-a' };
const fileAexec: Entry = { ...fileA, mode: 0o755 };
/** Same content as fileA, different metadata: touched, chmod'ed without the x bit. */
const fileAtouched: Entry = { ...fileA, size: 99, mtimeMs: 9_000, mode: 0o600 };
const fileB: Entry = { kind: 'file', size: 2, mtimeMs: 2_000, mode: 0o644, hash: 'hash-b' };
const fileC: Entry = { kind: 'file', size: 3, mtimeMs: 3_000, mode: 0o644, hash: 'hash-c' };
/** Same mtime as fileC: newer-wins cannot choose. */
const fileD: Entry = { kind: 'file', size: 4, mtimeMs: 3_000, mode: 0o644, hash: 'hash-d' };
const dir: Entry = { kind: 'directory', mode: 0o755 };
const dirPrivate: Entry = { kind: 'directory', mode: 0o700 };
const linkToA: Entry = { kind: 'symlink', target: 'a' };
const linkToB: Entry = { kind: 'symlink', target: 'b' };
const linkToDir: Entry = { kind: 'symlink', target: '../d' };
const untracked: Entry = { kind: 'untracked', reason: 'EACCES: permission denied' };
const socket: Entry = { kind: 'untracked', reason: 'socket' };

const TWO_WAY: readonly Policy[] = ['two-way-safe', 'host-wins', 'container-wins', 'newer-wins'];
const ALL: readonly Policy[] = POLICIES;

type Tree = Record<string, Entry>;

const put = (side: Side, path: string, expected: Entry | undefined, next: Entry, keepLoser = false): Change => ({ path, side, expected, next, ...(keepLoser && { keepLoser }) });
const del = (side: Side, path: string, expected: Entry, keepLoser = false): Change => ({ path, side, expected, next: undefined, ...(keepLoser && { keepLoser }) });
const KEEP = true;
const problem = (side: Side, path: string, entry: Entry): Problem => ({ path, side, reason: entry.kind === 'untracked' ? entry.reason : '' });

interface Case {
  description: string;
  policies: readonly Policy[];
  ancestor: Tree;
  host: Tree;
  container: Tree;
  /** Omitted fields are asserted empty: every case pins the whole result. */
  expected: {
    changes?: Change[];
    conflicts?: Conflict[];
    problems?: Problem[];
    /** undefined value = the ancestor forgets the path. */
    ancestorUpdates?: Record<string, Entry | undefined>;
    halt?: Side;
  };
}

const cases: Case[] = [
  // --- No-ops and agreement ---
  {
    description: 'nothing changed',
    policies: ALL,
    ancestor: { a: fileA, d: dir, 'd/x': fileB, l: linkToA },
    host: { a: fileA, d: dir, 'd/x': fileB, l: linkToA },
    container: { a: fileA, d: dir, 'd/x': fileB, l: linkToA },
    expected: {},
  },
  {
    description: 'metadata-only differences (mtime, size, non-exec mode bits, directory mode) are not changes',
    policies: ALL,
    ancestor: { a: fileA, d: dir },
    host: { a: fileAtouched, d: dirPrivate },
    container: { a: fileA, d: dir },
    expected: {},
  },
  {
    description: 'both created identically: only the ancestor moves',
    policies: ALL,
    ancestor: {},
    host: { a: fileA, d: dir, 'd/x': fileB },
    container: { a: fileA, d: dir, 'd/x': fileB },
    expected: { ancestorUpdates: { a: fileA, d: dir, 'd/x': fileB } },
  },
  {
    description: 'both created the same content with different metadata: ancestor records the host entry',
    policies: ALL,
    ancestor: { k: fileB },
    host: { k: fileB, a: fileAtouched },
    container: { k: fileB, a: fileA },
    expected: { ancestorUpdates: { a: fileAtouched } },
  },
  {
    description: 'both sides replaced a file with equal directories: children agree too',
    policies: ALL,
    ancestor: { a: fileA },
    host: { a: dir, 'a/x': fileB },
    container: { a: dirPrivate, 'a/x': fileB },
    expected: { ancestorUpdates: { a: dir, 'a/x': fileB } },
  },
  {
    description: 'both replaced a directory with the same file: stale ancestor children are forgotten',
    policies: ALL,
    ancestor: { d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileA },
    host: { d: fileB },
    container: { d: fileB },
    expected: { ancestorUpdates: { d: fileB, 'd/s': undefined, 'd/s/y': undefined, 'd/x': undefined } },
  },
  {
    description: 'both deleted a file',
    policies: ALL,
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB },
    container: { k: fileB },
    expected: { ancestorUpdates: { a: undefined } },
  },
  {
    description: 'both deleted a directory tree',
    policies: ALL,
    ancestor: { k: fileB, d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileA },
    host: { k: fileB },
    container: { k: fileB },
    expected: { ancestorUpdates: { d: undefined, 'd/s': undefined, 'd/s/y': undefined, 'd/x': undefined } },
  },

  // --- One-sided edits ---
  {
    description: 'file created on host',
    policies: [...TWO_WAY, 'push'],
    ancestor: { k: fileB },
    host: { k: fileB, a: fileA },
    container: { k: fileB },
    expected: { changes: [put('container', 'a', undefined, fileA)], ancestorUpdates: { a: fileA } },
  },
  {
    description: 'file created on container',
    policies: [...TWO_WAY, 'pull'],
    ancestor: { k: fileB },
    host: { k: fileB },
    container: { k: fileB, a: fileA },
    expected: { changes: [put('host', 'a', undefined, fileA)], ancestorUpdates: { a: fileA } },
  },
  {
    description: 'file modified on host',
    policies: [...TWO_WAY, 'push'],
    ancestor: { a: fileA },
    host: { a: fileB },
    container: { a: fileA },
    expected: { changes: [put('container', 'a', fileA, fileB)], ancestorUpdates: { a: fileB } },
  },
  {
    description: 'file modified on container',
    policies: [...TWO_WAY, 'pull'],
    ancestor: { a: fileA },
    host: { a: fileA },
    container: { a: fileB },
    expected: { changes: [put('host', 'a', fileA, fileB)], ancestorUpdates: { a: fileB } },
  },
  {
    description: 'host and container edited different files: each edit crosses over',
    policies: TWO_WAY,
    ancestor: { a: fileA, b: fileA },
    host: { a: fileB, b: fileA },
    container: { a: fileA, b: fileC },
    expected: { changes: [put('container', 'a', fileA, fileB), put('host', 'b', fileA, fileC)], ancestorUpdates: { a: fileB, b: fileC } },
  },
  {
    description: 'file deleted on host',
    policies: [...TWO_WAY, 'push'],
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB },
    container: { k: fileB, a: fileA },
    expected: { changes: [del('container', 'a', fileA)], ancestorUpdates: { a: undefined } },
  },
  {
    description: 'file deleted on container',
    policies: [...TWO_WAY, 'pull'],
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB, a: fileA },
    container: { k: fileB },
    expected: { changes: [del('host', 'a', fileA)], ancestorUpdates: { a: undefined } },
  },
  {
    description: 'executable bit set on host only',
    policies: [...TWO_WAY, 'push'],
    ancestor: { a: fileA },
    host: { a: fileAexec },
    container: { a: fileA },
    expected: { changes: [put('container', 'a', fileA, fileAexec)], ancestorUpdates: { a: fileAexec } },
  },
  {
    description: 'executable bit cleared on container only',
    policies: [...TWO_WAY, 'pull'],
    ancestor: { a: fileAexec },
    host: { a: fileAexec },
    container: { a: fileA },
    expected: { changes: [put('host', 'a', fileAexec, fileA)], ancestorUpdates: { a: fileA } },
  },
  {
    description: 'symlink retargeted on host',
    policies: [...TWO_WAY, 'push'],
    ancestor: { l: linkToA },
    host: { l: linkToB },
    container: { l: linkToA },
    expected: { changes: [put('container', 'l', linkToA, linkToB)], ancestorUpdates: { l: linkToB } },
  },
  {
    description: 'file replaced by a symlink on container',
    policies: [...TWO_WAY, 'pull'],
    ancestor: { a: fileA },
    host: { a: fileA },
    container: { a: linkToB },
    expected: { changes: [put('host', 'a', fileA, linkToB)], ancestorUpdates: { a: linkToB } },
  },

  // --- Deletion against modification: the modification always survives ---
  {
    description: 'deleted on host, modified on container: the edit is restored on host (even under host-wins)',
    policies: TWO_WAY,
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB },
    container: { k: fileB, a: fileC },
    expected: { changes: [put('host', 'a', undefined, fileC)], ancestorUpdates: { a: fileC } },
  },
  {
    description: 'modified on host, deleted on container: the edit is restored on container (even under container-wins)',
    policies: TWO_WAY,
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB, a: fileC },
    container: { k: fileB },
    expected: { changes: [put('container', 'a', undefined, fileC)], ancestorUpdates: { a: fileC } },
  },

  // --- Both modified ---
  {
    description: 'both modified differently: conflict, nothing overwritten, ancestor kept',
    policies: ['two-way-safe'],
    ancestor: { a: fileA },
    host: { a: fileB },
    container: { a: fileC },
    expected: { conflicts: [{ path: 'a', ancestor: fileA, host: fileB, container: fileC }] },
  },
  {
    description: 'both modified differently: host wins, container version kept aside',
    policies: ['host-wins'],
    ancestor: { a: fileA },
    host: { a: fileB },
    container: { a: fileC },
    expected: { changes: [put('container', 'a', fileC, fileB, KEEP)], ancestorUpdates: { a: fileB } },
  },
  {
    description: 'both modified differently: container wins, host version kept aside',
    policies: ['container-wins'],
    ancestor: { a: fileA },
    host: { a: fileB },
    container: { a: fileC },
    expected: { changes: [put('host', 'a', fileB, fileC, KEEP)], ancestorUpdates: { a: fileC } },
  },
  {
    description: 'newer-wins: the newer container edit wins, host version kept aside',
    policies: ['newer-wins'],
    ancestor: { a: fileA },
    host: { a: fileB },
    container: { a: fileC },
    expected: { changes: [put('host', 'a', fileB, fileC, KEEP)], ancestorUpdates: { a: fileC } },
  },
  {
    description: 'newer-wins: the newer host edit wins, container version kept aside',
    policies: ['newer-wins'],
    ancestor: { a: fileA },
    host: { a: fileC },
    container: { a: fileB },
    expected: { changes: [put('container', 'a', fileB, fileC, KEEP)], ancestorUpdates: { a: fileC } },
  },
  {
    description: 'newer-wins: equal mtimes are a conflict',
    policies: ['newer-wins'],
    ancestor: { a: fileA },
    host: { a: fileC },
    container: { a: fileD },
    expected: { conflicts: [{ path: 'a', ancestor: fileA, host: fileC, container: fileD }] },
  },
  {
    description: 'both created different files at the same path: conflict without an ancestor',
    policies: ['two-way-safe', 'newer-wins'],
    ancestor: { k: fileB },
    host: { k: fileB, a: fileC },
    container: { k: fileB, a: fileD },
    expected: { conflicts: [{ path: 'a', host: fileC, container: fileD }] },
  },
  {
    description: 'both created different files at the same path: host wins, the new container file kept aside',
    policies: ['host-wins'],
    ancestor: { k: fileB },
    host: { k: fileB, a: fileC },
    container: { k: fileB, a: fileD },
    expected: { changes: [put('container', 'a', fileD, fileC, KEEP)], ancestorUpdates: { a: fileC } },
  },
  {
    description: 'executable bit on host against a content edit on container: conflict',
    policies: ['two-way-safe'],
    ancestor: { a: fileA },
    host: { a: fileAexec },
    container: { a: fileB },
    expected: { conflicts: [{ path: 'a', ancestor: fileA, host: fileAexec, container: fileB }] },
  },
  {
    description: 'symlink retargeted differently on both sides: conflict (newer-wins has no mtime to compare)',
    policies: ['two-way-safe', 'newer-wins'],
    ancestor: { l: linkToA },
    host: { l: linkToB },
    container: { l: linkToDir },
    expected: { conflicts: [{ path: 'l', ancestor: linkToA, host: linkToB, container: linkToDir }] },
  },
  {
    description: 'symlink retargeted differently on both sides: container wins, host link kept aside',
    policies: ['container-wins'],
    ancestor: { l: linkToA },
    host: { l: linkToB },
    container: { l: linkToDir },
    expected: { changes: [put('host', 'l', linkToB, linkToDir, KEEP)], ancestorUpdates: { l: linkToDir } },
  },
  {
    description: 'conflicting child inside an agreed directory does not block its siblings',
    policies: ['two-way-safe'],
    ancestor: { d: dir, 'd/x': fileA, 'd/y': fileA },
    host: { d: dir, 'd/x': fileB, 'd/y': fileC },
    container: { d: dir, 'd/x': fileC, 'd/y': fileA },
    expected: {
      changes: [put('container', 'd/y', fileA, fileC)],
      conflicts: [{ path: 'd/x', ancestor: fileA, host: fileB, container: fileC }],
      ancestorUpdates: { 'd/y': fileC },
    },
  },

  // --- Type changes ---
  {
    description: 'file replaced by a directory with children on host: parent created before children',
    policies: [...TWO_WAY, 'push'],
    ancestor: { a: fileA },
    host: { a: dir, 'a/x': fileB, 'a/y': dir, 'a/y/z': fileC },
    container: { a: fileA },
    expected: {
      changes: [put('container', 'a', fileA, dir), put('container', 'a/x', undefined, fileB), put('container', 'a/y', undefined, dir), put('container', 'a/y/z', undefined, fileC)],
      ancestorUpdates: { a: dir, 'a/x': fileB, 'a/y': dir, 'a/y/z': fileC },
    },
  },
  {
    description: 'directory with children replaced by a file on container: subtree removed deepest-first, then the file',
    policies: [...TWO_WAY, 'pull'],
    ancestor: { d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileB },
    host: { d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileB },
    container: { d: fileC },
    expected: {
      changes: [del('host', 'd/s/y', fileB), del('host', 'd/s', dir), del('host', 'd/x', fileA), put('host', 'd', dir, fileC)],
      ancestorUpdates: { d: fileC, 'd/s': undefined, 'd/s/y': undefined, 'd/x': undefined },
    },
  },
  {
    description: 'directory replaced by a file on host while container only deleted inside: the file wins',
    policies: TWO_WAY,
    ancestor: { d: dir, 'd/x': fileA, 'd/y': fileB },
    host: { d: fileC },
    container: { d: dir, 'd/x': fileA },
    expected: {
      changes: [del('container', 'd/x', fileA), put('container', 'd', dir, fileC)],
      ancestorUpdates: { d: fileC, 'd/x': undefined, 'd/y': undefined },
    },
  },
  {
    description: 'directory replaced by a file on host while container edited inside: conflict at the directory',
    policies: ['two-way-safe', 'newer-wins'],
    ancestor: { d: dir, 'd/x': fileA },
    host: { d: fileB },
    container: { d: dir, 'd/x': fileC },
    expected: { conflicts: [{ path: 'd', ancestor: dir, host: fileB, container: dir }] },
  },
  {
    description: 'directory replaced by a file on host while container edited inside: host wins, edited child kept aside',
    policies: ['host-wins'],
    ancestor: { d: dir, 'd/x': fileA },
    host: { d: fileB },
    container: { d: dir, 'd/x': fileC },
    expected: {
      changes: [del('container', 'd/x', fileC, KEEP), put('container', 'd', dir, fileB)],
      ancestorUpdates: { d: fileB, 'd/x': undefined },
    },
  },
  {
    description: 'directory replaced by a file on host while container edited inside: container wins, host file kept aside',
    policies: ['container-wins'],
    ancestor: { d: dir, 'd/x': fileA },
    host: { d: fileB },
    container: { d: dir, 'd/x': fileC },
    expected: {
      changes: [put('host', 'd', fileB, dir, KEEP), put('host', 'd/x', undefined, fileC)],
      ancestorUpdates: { 'd/x': fileC },
    },
  },
  {
    description: 'file deleted on host and replaced by a directory on container: the directory is restored on host',
    policies: TWO_WAY,
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB },
    container: { k: fileB, a: dir, 'a/x': fileB },
    expected: { changes: [put('host', 'a', undefined, dir), put('host', 'a/x', undefined, fileB)], ancestorUpdates: { a: dir, 'a/x': fileB } },
  },

  // --- Directory creation and deletion ---
  {
    description: 'directory tree created on host',
    policies: [...TWO_WAY, 'push'],
    ancestor: { k: fileB },
    host: { k: fileB, d: dir, 'd/e': dir, 'd/e/f': fileA },
    container: { k: fileB },
    expected: {
      changes: [put('container', 'd', undefined, dir), put('container', 'd/e', undefined, dir), put('container', 'd/e/f', undefined, fileA)],
      ancestorUpdates: { d: dir, 'd/e': dir, 'd/e/f': fileA },
    },
  },
  {
    description: 'empty directory created on container',
    policies: [...TWO_WAY, 'pull'],
    ancestor: { k: fileB },
    host: { k: fileB },
    container: { k: fileB, d: dirPrivate },
    expected: { changes: [put('host', 'd', undefined, dirPrivate)], ancestorUpdates: { d: dirPrivate } },
  },
  {
    description: 'empty directory deleted on host',
    policies: [...TWO_WAY, 'push'],
    ancestor: { k: fileB, d: dir },
    host: { k: fileB },
    container: { k: fileB, d: dir },
    expected: { changes: [del('container', 'd', dir)], ancestorUpdates: { d: undefined } },
  },
  {
    description: 'directory deleted on host, untouched on container: subtree deleted deepest-first',
    policies: [...TWO_WAY, 'push'],
    ancestor: { k: fileB, d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileB },
    host: { k: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileB },
    expected: {
      changes: [del('container', 'd/s/y', fileB), del('container', 'd/s', dir), del('container', 'd/x', fileA), del('container', 'd', dir)],
      ancestorUpdates: { d: undefined, 'd/s': undefined, 'd/s/y': undefined, 'd/x': undefined },
    },
  },
  {
    description: 'directory deleted on host while container edited a nested file: the edit and its parents survive, untouched siblings go',
    policies: TWO_WAY,
    ancestor: { k: fileB, d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileB },
    host: { k: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileC },
    expected: {
      changes: [del('container', 'd/x', fileA), put('host', 'd', undefined, dir), put('host', 'd/s', undefined, dir), put('host', 'd/s/y', undefined, fileC)],
      ancestorUpdates: { 'd/s/y': fileC, 'd/x': undefined },
    },
  },
  {
    description: 'directory deleted on host while container created a file inside: the new file survives',
    policies: TWO_WAY,
    ancestor: { k: fileB, d: dir, 'd/x': fileA },
    host: { k: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA, 'd/new': fileB },
    expected: {
      changes: [del('container', 'd/x', fileA), put('host', 'd', undefined, dir), put('host', 'd/new', undefined, fileB)],
      ancestorUpdates: { 'd/new': fileB, 'd/x': undefined },
    },
  },
  {
    description: 'directory deleted on container while host edited a file inside: the edit survives',
    policies: TWO_WAY,
    ancestor: { k: fileB, d: dir, 'd/x': fileA, 'd/y': fileA },
    host: { k: fileB, d: dir, 'd/x': fileC, 'd/y': fileA },
    container: { k: fileB },
    expected: {
      changes: [del('host', 'd/y', fileA), put('container', 'd', undefined, dir), put('container', 'd/x', undefined, fileC)],
      ancestorUpdates: { 'd/x': fileC, 'd/y': undefined },
    },
  },

  // --- push / pull ---
  {
    description: 'push: a file created only on container is deleted, kept aside',
    policies: ['push'],
    ancestor: { k: fileB },
    host: { k: fileB },
    container: { k: fileB, a: fileA },
    expected: { changes: [del('container', 'a', fileA, KEEP)] },
  },
  {
    description: 'pull: a file created only on host is deleted, kept aside',
    policies: ['pull'],
    ancestor: { k: fileB },
    host: { k: fileB, a: fileA },
    container: { k: fileB },
    expected: { changes: [del('host', 'a', fileA, KEEP)] },
  },
  {
    description: 'push: an unsynced container edit is overwritten, kept aside',
    policies: ['push'],
    ancestor: { a: fileA },
    host: { a: fileA },
    container: { a: fileB },
    expected: { changes: [put('container', 'a', fileB, fileA, KEEP)] },
  },
  {
    description: 'pull: an unsynced host edit is overwritten, kept aside',
    policies: ['pull'],
    ancestor: { a: fileA },
    host: { a: fileB },
    container: { a: fileA },
    expected: { changes: [put('host', 'a', fileB, fileA, KEEP)] },
  },
  {
    description: 'push: both edited, host version replaces the container edit, kept aside',
    policies: ['push'],
    ancestor: { a: fileA },
    host: { a: fileB },
    container: { a: fileC },
    expected: { changes: [put('container', 'a', fileC, fileB, KEEP)], ancestorUpdates: { a: fileB } },
  },
  {
    description: 'push: a file deleted on container is restored',
    policies: ['push'],
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB, a: fileA },
    container: { k: fileB },
    expected: { changes: [put('container', 'a', undefined, fileA)] },
  },
  {
    description: 'pull: a directory deleted on host is restored',
    policies: ['pull'],
    ancestor: { k: fileB, d: dir, 'd/x': fileA },
    host: { k: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA },
    expected: { changes: [put('host', 'd', undefined, dir), put('host', 'd/x', undefined, fileA)] },
  },
  {
    description: 'push: a directory deleted on host is deleted on container even with an edit inside, the edit kept aside',
    policies: ['push'],
    ancestor: { k: fileB, d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileB },
    host: { k: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA, 'd/s': dir, 'd/s/y': fileC },
    expected: {
      changes: [del('container', 'd/s/y', fileC, KEEP), del('container', 'd/s', dir), del('container', 'd/x', fileA), del('container', 'd', dir)],
      ancestorUpdates: { d: undefined, 'd/s': undefined, 'd/s/y': undefined, 'd/x': undefined },
    },
  },
  {
    description: 'push: a directory tree created only on container is deleted deepest-first, its file kept aside',
    policies: ['push'],
    ancestor: { k: fileB },
    host: { k: fileB },
    container: { k: fileB, n: dir, 'n/e': dir, 'n/f': fileA },
    expected: { changes: [del('container', 'n/e', dir), del('container', 'n/f', fileA, KEEP), del('container', 'n', dir)] },
  },
  {
    description: 'pull: a directory tree created only on host is deleted, its file kept aside',
    policies: ['pull'],
    ancestor: { k: fileB },
    host: { k: fileB, n: dir, 'n/f': fileA },
    container: { k: fileB },
    expected: { changes: [del('host', 'n/f', fileA, KEEP), del('host', 'n', dir)] },
  },
  {
    description: 'push: an empty directory deleted on container is restored',
    policies: ['push'],
    ancestor: { k: fileB, d: dir },
    host: { k: fileB, d: dir },
    container: { k: fileB },
    expected: { changes: [put('container', 'd', undefined, dir)] },
  },
  {
    description: 'pull: an empty directory deleted on host is restored',
    policies: ['pull'],
    ancestor: { k: fileB, d: dir },
    host: { k: fileB },
    container: { k: fileB, d: dir },
    expected: { changes: [put('host', 'd', undefined, dir)] },
  },
  {
    description: 'pull: a host file replacing a directory is reverted, the file kept aside',
    policies: ['pull'],
    ancestor: { d: dir, 'd/x': fileA },
    host: { d: fileB },
    container: { d: dir, 'd/x': fileA },
    expected: { changes: [put('host', 'd', fileB, dir, KEEP), put('host', 'd/x', undefined, fileA)] },
  },

  // --- Untracked entries ---
  {
    description: 'untracked entry on host where container has the synced file: reported, nothing touched',
    policies: ALL,
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB, a: untracked },
    container: { k: fileB, a: fileA },
    expected: { problems: [problem('host', 'a', untracked)] },
  },
  {
    description: 'untracked entry on container where host modified the file: reported, host edit not propagated',
    policies: ALL,
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB, a: fileC },
    container: { k: fileB, a: socket },
    expected: { problems: [problem('container', 'a', socket)] },
  },
  {
    description: 'untracked on both sides at the same path',
    policies: ALL,
    ancestor: { k: fileB },
    host: { k: fileB, s: socket },
    container: { k: fileB, s: untracked },
    expected: { problems: [problem('host', 's', socket), problem('container', 's', untracked)] },
  },
  {
    description: 'untracked entry only on container next to an edit on host: edit propagates, untracked left alone',
    policies: [...TWO_WAY, 'push'],
    ancestor: { k: fileB, a: fileA },
    host: { k: fileB, a: fileB },
    container: { k: fileB, a: fileA, sock: socket },
    expected: { changes: [put('container', 'a', fileA, fileB)], problems: [problem('container', 'sock', socket)], ancestorUpdates: { a: fileB } },
  },
  {
    description: 'directory deleted on host keeps the container directory that holds an untracked entry',
    policies: [...TWO_WAY, 'push'],
    ancestor: { k: fileB, d: dir, 'd/x': fileA },
    host: { k: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA, 'd/sock': socket },
    expected: { changes: [del('container', 'd/x', fileA)], problems: [problem('container', 'd/sock', socket)], ancestorUpdates: { 'd/x': undefined } },
  },
  {
    description: 'host file cannot replace a container directory that holds an untracked entry: conflict',
    policies: ['two-way-safe', 'host-wins', 'newer-wins', 'push'],
    ancestor: { k: fileB, d: dir, 'd/x': fileA },
    host: { k: fileB, d: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA, 'd/sock': socket },
    expected: { conflicts: [{ path: 'd', ancestor: dir, host: fileB, container: dir }], problems: [problem('container', 'd/sock', socket)] },
  },
  {
    description: 'container directory with an untracked entry wins over a host file: the untracked entry is not copied',
    policies: ['container-wins', 'pull'],
    ancestor: { k: fileB, d: dir, 'd/x': fileA },
    host: { k: fileB, d: fileB },
    container: { k: fileB, d: dir, 'd/x': fileA, 'd/sock': socket },
    expected: {
      changes: [put('host', 'd', fileB, dir, KEEP), put('host', 'd/x', undefined, fileA)],
      problems: [problem('container', 'd/sock', socket)],
    },
  },

  // --- Safety halt ---
  {
    description: 'host emptied while ancestor and container are populated: halt',
    policies: ALL,
    ancestor: { a: fileA, d: dir, 'd/x': fileB },
    host: {},
    container: { a: fileA, d: dir, 'd/x': fileB },
    expected: { halt: 'host' },
  },
  {
    description: 'container emptied while ancestor and host are populated: halt',
    policies: ALL,
    ancestor: { a: fileA, d: dir, 'd/x': fileB },
    host: { a: fileA, d: dir, 'd/x': fileC },
    container: {},
    expected: { halt: 'container' },
  },
  {
    description: 'host holding only untracked entries counts as empty: halt, problem still reported',
    policies: ALL,
    ancestor: { a: fileA, d: dir },
    host: { d: untracked },
    container: { a: fileA, d: dir },
    expected: { halt: 'host', problems: [problem('host', 'd', untracked)] },
  },
  {
    description: 'both sides emptied: no halt, the ancestor is cleared',
    policies: ALL,
    ancestor: { a: fileA, d: dir, 'd/x': fileB },
    host: {},
    container: {},
    expected: { ancestorUpdates: { a: undefined, d: undefined, 'd/x': undefined } },
  },
  {
    description: 'first sync into an empty container: no halt',
    policies: [...TWO_WAY, 'push'],
    ancestor: {},
    host: { a: fileA, d: dir, 'd/x': fileB },
    container: {},
    expected: {
      changes: [put('container', 'a', undefined, fileA), put('container', 'd', undefined, dir), put('container', 'd/x', undefined, fileB)],
      ancestorUpdates: { a: fileA, d: dir, 'd/x': fileB },
    },
  },
  {
    description: 'first sync from an empty host: no halt',
    policies: [...TWO_WAY, 'pull'],
    ancestor: {},
    host: {},
    container: { d: dir, 'd/x': fileB },
    expected: { changes: [put('host', 'd', undefined, dir), put('host', 'd/x', undefined, fileB)], ancestorUpdates: { d: dir, 'd/x': fileB } },
  },

  // --- Ordering across sides ---
  {
    description: 'ordering: all deletions deepest-first, then creations shallowest-first, ties by path then side',
    policies: TWO_WAY,
    ancestor: { k: fileB, t: dir, 't/a': dir, 't/a/b': fileA, 't/z': fileB, r: fileA, m: fileA },
    host: { k: fileB, r: dir, 'r/q': fileB, m: fileC },
    container: { k: fileB, t: dir, 't/a': dir, 't/a/b': fileA, 't/z': fileB, r: fileA, m: fileA, n: dir, 'n/m': dir, 'n/m/o': fileC },
    expected: {
      changes: [
        del('container', 't/a/b', fileA),
        del('container', 't/a', dir),
        del('container', 't/z', fileB),
        del('container', 't', dir),
        put('container', 'm', fileA, fileC),
        put('host', 'n', undefined, dir),
        put('container', 'r', fileA, dir),
        put('host', 'n/m', undefined, dir),
        put('container', 'r/q', undefined, fileB),
        put('host', 'n/m/o', undefined, fileC),
      ],
      ancestorUpdates: { m: fileC, n: dir, 'n/m': dir, 'n/m/o': fileC, r: dir, 'r/q': fileB, t: undefined, 't/a': undefined, 't/a/b': undefined, 't/z': undefined },
    },
  },
];

function snapshot(tree: Tree): Map<string, Entry> {
  return new Map(Object.entries(tree));
}

/**
 * A strict model of the apply step: refuses stale expectations, deleting non-empty directories,
 * and writing into a missing parent, so any ordering or precondition mistake fails the case.
 */
function applyResult(result: ReconcileResult, state: State): void {
  for (const change of result.changes) {
    const target = state[change.side];
    const where = `${change.side}:${change.path}`;
    assert.deepEqual(target.get(change.path), change.expected, `${where} no longer matches what the scan saw`);
    if (change.expected?.kind === 'directory' && change.next?.kind !== 'directory') {
      const child = [...target.keys()].find((p) => p.startsWith(`${change.path}/`));
      assert.equal(child, undefined, `${where} removes a directory that still holds ${child}`);
    }
    const parent = change.path.includes('/') ? change.path.slice(0, change.path.lastIndexOf('/')) : undefined;
    if (change.next === undefined) target.delete(change.path);
    else {
      if (parent !== undefined) assert.equal(target.get(parent)?.kind, 'directory', `${where} written before its parent directory`);
      target.set(change.path, change.next);
    }
  }
  for (const [path, entry] of result.ancestorUpdates) {
    if (entry === undefined) state.ancestor.delete(path);
    else state.ancestor.set(path, entry);
  }
}

function sameTrackedContent(x: ReadonlyMap<string, Entry>, y: ReadonlyMap<string, Entry>): boolean {
  return x.size === y.size && [...x].every(([path, entry]) => entriesEqual(entry, y.get(path)));
}

function runCase(testCase: Case, policy: Policy): void {
  const state = { ancestor: snapshot(testCase.ancestor), host: snapshot(testCase.host), container: snapshot(testCase.container) };
  const result = checkedReconcile(state, policy);
  const { expected } = testCase;
  assert.deepEqual(result.changes, expected.changes ?? [], 'changes');
  assert.deepEqual(result.conflicts, expected.conflicts ?? [], 'conflicts');
  assert.deepEqual(result.problems, expected.problems ?? [], 'problems');
  assert.deepEqual(Object.fromEntries(result.ancestorUpdates), expected.ancestorUpdates ?? {}, 'ancestorUpdates');
  assert.equal(result.halt?.side, expected.halt, 'halt');
  if (result.halt) assert.match(result.halt.reason, new RegExp(`\\b${result.halt.side}\\b`));
  checkFixedPoint(result, state, policy);
}

type State = { ancestor: Map<string, Entry>; host: Map<string, Entry>; container: Map<string, Entry> };

/** reconcile plus the safety properties that must hold whatever a case expects. */
function checkedReconcile(state: State, policy: Policy): ReconcileResult {
  const before = JSON.stringify([...state.ancestor, ...state.host, ...state.container]);
  const result = reconcile({ ...state, policy });
  assert.equal(JSON.stringify([...state.ancestor, ...state.host, ...state.container]), before, 'reconcile mutated its input');
  const paths = result.changes.map((c) => c.path);
  assert.equal(new Set(paths).size, paths.length, 'more than one change for a path');
  for (const change of result.changes) {
    assert.notEqual(change.expected?.kind, 'untracked', `untracked entry touched at ${change.path}`);
    assert.notEqual(change.next?.kind, 'untracked', `untracked entry propagated to ${change.path}`);
    const content = change.expected?.kind === 'file' || change.expected?.kind === 'symlink';
    if (content && !entriesEqual(change.expected, state.ancestor.get(change.path))) {
      assert.equal(change.keepLoser, true, `unsynced content at ${change.side}:${change.path} destroyed without keepLoser`);
    }
    for (const conflict of result.conflicts) {
      assert.ok(change.path !== conflict.path && !change.path.startsWith(`${conflict.path}/`), `change at ${change.path} inside conflict ${conflict.path}`);
    }
  }
  return result;
}

/** Applying the result and reconciling again must be a fixed point; without conflicts or problems, the sides converge. */
function checkFixedPoint(result: ReconcileResult, state: State, policy: Policy): void {
  applyResult(result, state);
  const again = checkedReconcile(state, policy);
  assert.deepEqual(again.changes, [], 'second pass still has changes');
  assert.deepEqual(again.conflicts, result.conflicts, 'second pass conflicts differ');
  assert.equal(again.halt?.side, result.halt?.side, 'second pass halt differs');
  assert.equal(again.ancestorUpdates.size, 0, 'second pass still moves the ancestor');
  if (result.conflicts.length === 0 && result.problems.length === 0 && !result.halt) {
    assert.ok(sameTrackedContent(state.host, state.container), 'sides did not converge');
    assert.ok(sameTrackedContent(state.ancestor, state.host), 'ancestor does not match the converged sides');
  }
}

describe('reconcile', () => {
  for (const testCase of cases) {
    for (const policy of testCase.policies) {
      it(`${testCase.description} [${policy}]`, () => runCase(testCase, policy));
    }
  }

  it('defaults to two-way-safe', () => {
    const result = reconcile({ ancestor: snapshot({ a: fileA }), host: snapshot({ a: fileB }), container: snapshot({ a: fileC }) });
    assert.deepEqual(result.conflicts, [{ path: 'a', ancestor: fileA, host: fileB, container: fileC }]);
    assert.deepEqual(result.changes, []);
  });

  it('rejects an unknown policy', () => {
    const empty = snapshot({});
    assert.throws(() => reconcile({ ancestor: empty, host: empty, container: empty, policy: 'mirror' as Policy }), /unknown sync policy/);
  });

  const malformed: { description: string; side: 'ancestor' | Side; tree: Tree; message: RegExp }[] = [
    { description: 'a ".." segment', side: 'host', tree: { '..': dir, '../x': fileA }, message: /invalid path/ },
    { description: 'a leading "./"', side: 'container', tree: { './a': fileA }, message: /invalid path/ },
    { description: 'a trailing slash', side: 'host', tree: { 'd/': dir }, message: /invalid path/ },
    { description: 'a child without its parent', side: 'container', tree: { 'd/x': fileA }, message: /no parent directory/ },
    { description: 'a child of a file', side: 'host', tree: { d: fileA, 'd/x': fileA }, message: /no parent directory/ },
    { description: 'an untracked entry in the ancestor', side: 'ancestor', tree: { a: untracked }, message: /untracked entry/ },
  ];
  for (const { description, side, tree, message } of malformed) {
    it(`throws on a ${side} snapshot with ${description}`, () => {
      const input = { ancestor: snapshot({}), host: snapshot({}), container: snapshot({}), [side]: snapshot(tree) };
      assert.throws(() => reconcile(input), message);
    });
  }

  it('accepts untracked entries in side snapshots', () => {
    assert.doesNotThrow(() => assertWellFormedSnapshot(snapshot({ d: dir, 'd/s': socket }), 'host', { allowUntracked: true }));
  });
});

/**
 * Every combination of small states at one path "a" (a sibling "k" keeps the safety halt out of
 * the way), under every policy: the generic safety and fixed-point properties must hold for all.
 */
describe('reconcile property sweep', () => {
  const shapes: Record<string, Tree> = {
    absent: {},
    fileA: { a: fileA },
    fileAexec: { a: fileAexec },
    fileB: { a: fileB },
    fileC: { a: fileC },
    link: { a: linkToA },
    emptyDir: { a: dir },
    dirWithA: { a: dir, 'a/x': fileA },
    dirWithB: { a: dir, 'a/x': fileB },
    dirWithNested: { a: dir, 'a/s': dir, 'a/s/y': fileA },
    dirWithSocket: { a: dir, 'a/x': fileA, 'a/sock': socket },
    untracked: { a: untracked },
  };
  const trackedOnly = Object.entries(shapes).filter(([name]) => name !== 'untracked' && name !== 'dirWithSocket');
  for (const policy of POLICIES) {
    it(`holds for all ${trackedOnly.length * Object.keys(shapes).length ** 2} combinations [${policy}]`, () => {
      for (const [ancestorName, ancestor] of trackedOnly) {
        for (const [hostName, host] of Object.entries(shapes)) {
          for (const [containerName, container] of Object.entries(shapes)) {
            const state = { ancestor: snapshot({ k: fileB, ...ancestor }), host: snapshot({ k: fileB, ...host }), container: snapshot({ k: fileB, ...container }) };
            try {
              checkFixedPoint(checkedReconcile(state, policy), state, policy);
            } catch (error) {
              throw new Error(`ancestor=${ancestorName} host=${hostName} container=${containerName}: ${(error as Error).message}`);
            }
          }
        }
      }
    });
  }
});

describe('entriesEqual', () => {
  const table: { description: string; a: Entry | undefined; b: Entry | undefined; equal: boolean }[] = [
    { description: 'both absent', a: undefined, b: undefined, equal: true },
    { description: 'absent vs file', a: undefined, b: fileA, equal: false },
    { description: 'same file', a: fileA, b: { ...fileA }, equal: true },
    { description: 'same hash, different mtime/size/non-exec mode', a: fileA, b: fileAtouched, equal: true },
    { description: 'same hash, executable bit differs', a: fileA, b: fileAexec, equal: false },
    { description: 'same hash, group-executable only', a: fileAexec, b: { ...fileA, mode: 0o650 }, equal: true },
    { description: 'same size and mtime, different hash', a: fileA, b: { ...fileA, hash: 'other' }, equal: false },
    { description: 'directories with different modes', a: dir, b: dirPrivate, equal: true },
    { description: 'directory vs file', a: dir, b: fileA, equal: false },
    { description: 'symlinks with the same target', a: linkToA, b: { kind: 'symlink', target: 'a' }, equal: true },
    { description: 'symlinks with different targets', a: linkToA, b: linkToB, equal: false },
    { description: 'symlink vs file', a: linkToA, b: fileA, equal: false },
    { description: 'untracked vs itself', a: untracked, b: untracked, equal: false },
  ];
  for (const { description, a, b, equal } of table) {
    it(`${description}: ${equal ? 'equal' : 'different'}`, () => {
      assert.equal(entriesEqual(a, b), equal);
      assert.equal(entriesEqual(b, a), equal);
    });
  }
});

describe('ancestorsOf and pathAndAncestors', () => {
  const table: { path: string; ancestors: string[] }[] = [
    { path: 'a', ancestors: [] },
    { path: 'a/b', ancestors: ['a'] },
    { path: 'a/b/c', ancestors: ['a', 'a/b'] },
    { path: 'src/.git/x y.txt', ancestors: ['src', 'src/.git'] },
    { path: '', ancestors: [] },
  ];
  for (const { path, ancestors } of table) {
    it(`${JSON.stringify(path)}: the folders above it, shallowest first, then the path itself`, () => {
      assert.deepEqual(ancestorsOf(path), ancestors);
      assert.deepEqual(pathAndAncestors(path), [...ancestors, path]);
    });
  }

  it('cuts at every slash, as split and join did, even in keys no scan makes', () => {
    const splitAndJoin = (path: string) => path.split('/').map((_, depth, parts) => parts.slice(0, depth + 1).join('/'));
    for (const path of ['a//b', '/x', 'x/', '/', '//', 'é/\\/ü']) assert.deepEqual(pathAndAncestors(path), splitAndJoin(path), JSON.stringify(path));
  });
});

describe('regionFilter', () => {
  // The region of an incremental cycle over src/app (a folder) and docs/a.md.
  const inRegion = regionFilter(['src/app', 'docs/a.md']);
  const table: { path: string; inside: boolean }[] = [
    { path: 'src/app', inside: true },
    { path: 'src/app/main.ts', inside: true },
    { path: 'src/app/deep/x.ts', inside: true },
    { path: 'src', inside: true }, // a folder above
    { path: '', inside: true }, // the root, above everything
    { path: 'docs', inside: true },
    { path: 'docs/a.md', inside: true },
    { path: 'docs/b.md', inside: false },
    { path: 'src/application', inside: false }, // a name that only starts the same
    { path: 'src/lib/x.ts', inside: false },
    { path: 'README.md', inside: false },
  ];
  for (const { path, inside } of table) {
    it(`${JSON.stringify(path)} is ${inside ? 'in' : 'outside'} the region`, () => assert.equal(inRegion(path), inside));
  }
});
