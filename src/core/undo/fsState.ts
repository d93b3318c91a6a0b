// Reading what is at a path now, comparing it with a pre- or postimage, and copying a version
// aside before it is overwritten. Paths are Buffers from joinBytes: names may be any bytes.
import { readlinkSync } from 'node:fs';
import { chmod, copyFile, lutimes, mkdir, readdir, readlink, rm, symlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { Entry } from '../files/entry';
import { hashFile, lstatAsWritten, lstatOrUndefined, lstatSyncOrUndefined, nonFolderAncestor, UNKNOWN_CTIME, vouchingCtime } from '../files/fsEntry';
import { joinBytes, nameFromBytes } from '../files/pathCodec';
import type { Postimage, Preimage } from './records';
import { childKey } from './records';
import type { KeptVersion } from './types';

/** The comparable identity of a state: what barrier checks and a closing step look at. */
export type Identity = { kind: 'absent' } | { kind: 'file'; hash: string; mode: number } | { kind: 'directory'; mode: number } | { kind: 'symlink'; target: string } | { kind: 'other' };

export const permissions = (stats: { mode: number }): number => stats.mode & 0o7777;

export function kindOf(stats: Stats | undefined): Identity['kind'] {
  if (!stats) return 'absent';
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'other';
}

export async function readTarget(path: Buffer): Promise<string> {
  return nameFromBytes(await readlink(path, { encoding: 'buffer' }));
}

/**
 * The postimage of what is at `path` now. `previous` lets an unchanged file (same size, mtime,
 * ctime, inode, mode) skip hashing. Metadata is read synchronously: it is checked for every path
 * a step touched, right after the step, and a trip to the thread pool per path costs more.
 */
export async function currentPostimage(path: Buffer, previous?: Postimage): Promise<Postimage | { kind: 'other' }> {
  const seenAt = Date.now();
  const stats = lstatSyncOrUndefined(path);
  switch (kindOf(stats)) {
    case 'absent':
      return { kind: 'absent' };
    case 'directory':
      return { kind: 'directory', mode: permissions(stats!), mtimeMs: stats!.mtimeMs };
    case 'symlink':
      return { kind: 'symlink', target: nameFromBytes(readlinkSync(path, { encoding: 'buffer' })) };
    case 'other':
      return { kind: 'other' };
    case 'file': {
      const s = stats!;
      const unchanged = previous?.kind === 'file' && previous.size === s.size && previous.mtimeMs === s.mtimeMs && previous.ctimeMs === s.ctimeMs && previous.ino === s.ino && previous.mode === permissions(s);
      const hash = unchanged ? previous.hash : await hashFile(path);
      return { kind: 'file', hash, mode: permissions(s), size: s.size, mtimeMs: s.mtimeMs, ctimeMs: vouchingCtime(s.ctimeMs, seenAt), ino: s.ino };
    }
  }
}

/**
 * The postimage of what the caller has just written at `path` (`next`; undefined: deleted),
 * without reading the content back: the caller verified the hash while writing. Inode and ctime
 * come from an lstat; if the path no longer looks like what was written (lstatAsWritten), they
 * are left unknown, so the next comparison hashes the file.
 * Undefined for a folder, whose times move as its entries change: read it when the step ends.
 */
export function writtenPostimage(path: Buffer, next: Entry | undefined): Postimage | undefined {
  if (!next) return { kind: 'absent' };
  if (next.kind === 'symlink') return { kind: 'symlink', target: next.target };
  if (next.kind !== 'file') return undefined;
  const stats = lstatAsWritten(path, next);
  const asWritten = stats && permissions(stats) === next.mode ? stats : undefined;
  return { kind: 'file', hash: next.hash, mode: next.mode, size: next.size, mtimeMs: asWritten?.mtimeMs ?? next.mtimeMs, ctimeMs: asWritten?.ctimeMs ?? UNKNOWN_CTIME, ino: asWritten?.ino ?? -1 };
}

export function identityOf(state: Preimage | Postimage | { kind: 'other' }): Identity {
  switch (state.kind) {
    case 'absent':
    case 'other':
      return { kind: state.kind };
    case 'file':
      return { kind: 'file', hash: state.hash, mode: state.mode };
    case 'directory':
      return { kind: 'directory', mode: state.mode };
    case 'symlink':
      return { kind: 'symlink', target: state.target };
  }
}

/** How `now` differs from `expected`, in words; undefined when they are the same. */
export function describeDifference(expected: Identity, now: Identity): string | undefined {
  if (expected.kind !== now.kind) {
    if (now.kind === 'absent') return 'deleted';
    if (expected.kind === 'absent') return `created (${now.kind})`;
    return `type changed (${expected.kind} → ${now.kind})`;
  }
  if (expected.kind === 'file' && now.kind === 'file') {
    if (expected.hash !== now.hash) return 'content changed';
    if (expected.mode !== now.mode) return `mode changed (${octal(expected.mode)} → ${octal(now.mode)})`;
  }
  if (expected.kind === 'directory' && now.kind === 'directory' && expected.mode !== now.mode) return `mode changed (${octal(expected.mode)} → ${octal(now.mode)})`;
  if (expected.kind === 'symlink' && now.kind === 'symlink' && expected.target !== now.target) return 'link retargeted';
  if (expected.kind === 'other') return 'not a file, folder or link';
  return undefined;
}

const octal = (mode: number): string => mode.toString(8).padStart(3, '0');

/** Names (as keys under `key`) of the entries of a folder; [] when it is not a readable folder. */
export async function childKeys(root: string, key: string): Promise<string[]> {
  const names = await readdir(joinBytes(root, key), { encoding: 'buffer' }).catch(() => [] as Buffer[]);
  return names.map((name) => childKey(key, nameFromBytes(name))).sort();
}

/** Every entry below `key` (not `key` itself) with its stats, parents before children. */
export async function subtree(root: string, key: string): Promise<Array<readonly [string, Stats]>> {
  const names = await readdir(joinBytes(root, key), { encoding: 'buffer' }).catch(() => [] as Buffer[]);
  const children = await Promise.all(
    names.sort(Buffer.compare).map(async (name): Promise<Array<readonly [string, Stats]>> => {
      const child = childKey(key, nameFromBytes(name));
      const stats = await lstatOrUndefined(joinBytes(root, child));
      if (!stats) return [];
      return [[child, stats] as const, ...(stats.isDirectory() ? await subtree(root, child) : [])];
    }),
  );
  return children.flat();
}

/**
 * Copies what is at `key` under `root` (a file, link or whole folder) to the same key under
 * `keepRoot`, with modes and mtimes. Returns undefined when nothing is there.
 */
export async function keepCurrent(root: string, key: string, keepRoot: string): Promise<KeptVersion | undefined> {
  const source = joinBytes(root, key);
  // Below a symlink is outside the tree: not ours to copy (the link itself is kept as its own path).
  if (nonFolderAncestor(root, key) || !(await lstatOrUndefined(source))) return undefined;
  const target = joinBytes(keepRoot, key);
  await mkdir(target.subarray(0, target.lastIndexOf(0x2f)), { recursive: true });
  await rm(target, { recursive: true, force: true });
  await copyEntry(source, target);
  return { path: key, keptAt: nameFromBytes(target) };
}

async function copyEntry(source: Buffer, target: Buffer): Promise<void> {
  const stats = await lstatOrUndefined(source);
  if (!stats) return;
  if (stats.isSymbolicLink()) {
    await symlink(await readlink(source, { encoding: 'buffer' }), target);
  } else if (stats.isDirectory()) {
    await mkdir(target, { mode: 0o700 });
    for (const name of await readdir(source, { encoding: 'buffer' })) {
      await copyEntry(Buffer.concat([source, Buffer.from('/'), name]), Buffer.concat([target, Buffer.from('/'), name]));
    }
    await chmod(target, permissions(stats));
  } else if (stats.isFile()) {
    await copyFile(source, target);
    await chmod(target, permissions(stats));
  } else {
    return; // sockets, devices: nothing to keep
  }
  await lutimes(target, stats.atime, stats.mtime);
}
