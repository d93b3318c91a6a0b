// Real trees on disk for the sync tests: build one from a compact spec, read one back in the same
// notation, so that a test states the trees it expects and compares them with what is there.
//
// Keys are sync paths ("dir/file.txt"). A name that is not valid UTF-8 is written with
// pathCodec's escapes (byte 0xE9 → "\udce9"), so it reaches the disk as the raw byte.
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import * as path from 'node:path';
import { FILE_TIME_TICK_MS } from '../../src/core/files/fsEntry';
import { joinBytes, nameFromBytes } from '../../src/core/files/pathCodec';
import type { Side } from '../../src/core/sync/reconcile';
import { useTempDir } from './tempDir';

/** A directory in a tree spec or in readTree's answer. */
export const DIR = '<dir>';

/**
 * Waits out the file system's timestamp tick: a scan within a tick of a file's last change keeps
 * no record that vouches for it (isRacy), so a test that counts on the scan cache writes, waits
 * this, then scans.
 */
export const pastTimestampTick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, FILE_TIME_TICK_MS + 5));

/**
 * Runs `act` (a write, then the look whose record must not vouch for it) until one run ends
 * within a tick of its start, so that its look is known to come within a tick of its write; a
 * run slowed past that (a loaded machine) shows nothing and is run again, up to five times.
 */
export async function withinOneTick<T>(act: (attempt: number) => T | Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const started = Date.now();
    const result = await act(attempt);
    if (Date.now() - started < FILE_TIME_TICK_MS - 5) return result;
  }
  throw new Error(`five runs each took over ${FILE_TIME_TICK_MS - 5} ms: the machine is too busy to show a change within a tick`);
}
/** A symbolic link in a tree spec or in readTree's answer. */
export const link = (target: string): string => `-> ${target}`;

export interface FileSpec {
  content: string | Buffer;
  mode?: number;
  /** Set with utimes, which works in float seconds: pick a value exact in binary (…000, …500 ms) to compare it exactly. */
  mtimeMs?: number;
}
/** DIR, link(target), a file's content, or a file with its mode and mtime. */
export type NodeSpec = string | FileSpec;
export type TreeSpec = Record<string, NodeSpec>;

/** The fs path of a sync key under `root`, as bytes. */
export const at = (root: string, key: string): Buffer => joinBytes(root, key);

/** Creates every entry of `spec` (parents as needed, in key order), over whatever is there. */
export function makeTree(root: string, spec: TreeSpec): void {
  for (const key of Object.keys(spec).sort()) {
    const node = spec[key]!;
    const target = at(root, key);
    mkdirSync(at(root, path.posix.dirname(key) === '.' ? '' : path.posix.dirname(key)), { recursive: true });
    if (node === DIR) {
      mkdirSync(target, { recursive: true });
    } else if (typeof node === 'string' && node.startsWith('-> ')) {
      symlinkSync(node.slice(3), target);
    } else {
      const file = typeof node === 'string' ? { content: node } : node;
      writeFileSync(target, file.content);
      if (file.mode !== undefined) chmodSync(target, file.mode);
      if (file.mtimeMs !== undefined) utimesSync(target, file.mtimeMs / 1000, file.mtimeMs / 1000);
    }
  }
}

/**
 * Everything under `root` in makeTree's notation: DIR, link(target), or the file's content as
 * UTF-8. Never follows a link. Keys sorted, parents first.
 */
export function readTree(root: string): Record<string, string> {
  const tree: Record<string, string> = {};
  const walk = (relative: string): void => {
    const names = readdirSync(at(root, relative), { encoding: 'buffer' }).map(nameFromBytes).sort();
    for (const name of names) {
      const key = relative === '' ? name : `${relative}/${name}`;
      const full = at(root, key);
      const stats = lstatSync(full);
      if (stats.isDirectory()) {
        tree[key] = DIR;
        walk(key);
      } else if (stats.isSymbolicLink()) {
        tree[key] = link(nameFromBytes(readlinkSync(full, { encoding: 'buffer' })));
      } else if (stats.isFile()) {
        tree[key] = readFileSync(full, 'utf8');
      } else {
        tree[key] = '<special>';
      }
    }
  };
  walk('');
  return tree;
}

/** Permission bits of the entry at `key` (lstat: a link's own). */
export const modeOf = (root: string, key: string): number => lstatSync(at(root, key)).mode & 0o7777;
export const mtimeOf = (root: string, key: string): number => lstatSync(at(root, key)).mtimeMs;
export const inodeOf = (root: string, key: string): number => lstatSync(at(root, key)).ino;

/** Paths under `directory` (recursively, relative) whose name ends in ".tmp": leftovers of a write. */
export function temporaryFiles(directory: string): string[] {
  const found: string[] = [];
  const walk = (relative: string): void => {
    for (const name of readdirSync(at(directory, relative), { encoding: 'buffer' }).map(nameFromBytes)) {
      const key = relative === '' ? name : `${relative}/${name}`;
      if (name.endsWith('.tmp')) found.push(key);
      if (lstatSync(at(directory, key)).isDirectory()) walk(key);
    }
  };
  walk('');
  return found;
}

export interface SyncFixture {
  /** The test's temp dir, holding the two roots and the state folder. */
  base: string;
  host: string;
  container: string;
  stateDir: string;
  roots: Record<Side, string>;
}

/** Two empty roots and a state folder path (not created) in a fresh temp dir for every test. */
export function useSyncFixture(prefix: string): () => SyncFixture {
  const tempDir = useTempDir(prefix);
  return () => {
    const base = tempDir();
    const host = path.join(base, 'host');
    const container = path.join(base, 'container');
    mkdirSync(host, { recursive: true });
    mkdirSync(container, { recursive: true });
    return { base, host, container, stateDir: path.join(base, 'state'), roots: { host, container } };
  };
}
