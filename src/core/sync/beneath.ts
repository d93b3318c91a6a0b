// Paths that stay beneath a root, whatever another process does to the folders above them.
//
// The sync agent holds capabilities that let it write anywhere it can name (the user's folder,
// the state folder), while the workspace user may rename any folder of /workspace and put a
// symlink in its place at any moment. A check of the parent folders followed by a write by path
// leaves a window in which the write follows that symlink. Linux's answer is openat2 with
// RESOLVE_BENEATH; Node has neither openat nor openat2, but `/proc/self/fd/N` is a magic link to
// the very folder inode descriptor N holds: `/proc/self/fd/N/name` names `name` inside that
// folder, wherever the folder has been moved since, and no other folder. So the folder is pinned
// by walking from the root one component at a time, each opened through the previous one's
// descriptor with O_NOFOLLOW | O_DIRECTORY (a symlink fails with ELOOP, a file with ENOTDIR), and
// the final operation names only the last component below the pinned folder. rename, link,
// unlink, mkdir, rmdir, symlink, lstat, readlink and lchown never follow a last-component
// symlink; opens must use O_NOFOLLOW (or O_CREAT | O_EXCL); chmod and utimes must go through a
// descriptor (see replaceChecked's setStagedAttributes). docs/ARCHITECTURE.md ("The container
// boundary") gives the argument.
import { closeSync, constants, openSync } from 'node:fs';
import { pathAndAncestors } from '../files/entry';
import { bytesFromName } from '../files/pathCodec';

const FOLDER_OPEN_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** The running process's descriptors, as the kernel resolves them. */
const FD_FOLDER = '/proc/self/fd/';

/** A folder held open; `path(name)` names an entry directly inside it. Close it when done. */
export interface PinnedFolder {
  /** `/proc/self/fd/N/<name>` as bytes: `name` (one component, as bytes or a surrogate-escaped name) inside exactly this folder. */
  path(name: Buffer | string): Buffer;
  close(): void;
}

export type PinFailure = {
  ok: false;
  /** `parent-replaced`: a folder on the way is a symlink or not a folder; `parent-missing`: it is gone. */
  code: 'parent-replaced' | 'parent-missing';
  /** The key (below the root) of the folder that is not what it was. */
  at: string;
};

export type Pinned = { ok: true; folder: PinnedFolder; path: Buffer } | PinFailure;

/** Descriptors currently open through this module (for tests: none may leak). */
let openCount = 0;
export const openPinnedCount = (): number => openCount;

function openFolder(path: string | Buffer): number {
  const fd = openSync(path, FOLDER_OPEN_FLAGS);
  openCount += 1;
  return fd;
}

function closeFolder(fd: number): void {
  openCount -= 1;
  closeSync(fd);
}

function pinnedFolder(fd: number): PinnedFolder {
  const prefix = Buffer.from(`${FD_FOLDER}${fd}/`);
  let open = true;
  return {
    path: (name) => Buffer.concat([prefix, typeof name === 'string' ? bytesFromName(name) : name]),
    close: () => {
      if (!open) return;
      open = false;
      closeFolder(fd);
    },
  };
}

/** Test hook: called after each folder of a walk is pinned (`""`: the root), before the next is opened through it. */
export type PinStepHook = (root: string, pinnedKey: string) => void;
let stepHook: PinStepHook | undefined;
export function setPinStepHookForTests(hook: PinStepHook | undefined): void {
  stepHook = hook;
}

/**
 * Pins the folder `key` below `root` (`""`: the root itself, which is trusted and may be reached
 * through symlinks). Every component below the root is opened without following a symlink.
 */
export function pinFolder(root: string, key: string): { ok: true; folder: PinnedFolder } | PinFailure {
  let fd = openFolder(root);
  stepHook?.(root, '');
  if (key === '') return { ok: true, folder: pinnedFolder(fd) };
  const names = key.split('/');
  const keys = pathAndAncestors(key);
  for (let index = 0; index < names.length; index += 1) {
    let next: number;
    try {
      next = openFolder(Buffer.concat([Buffer.from(`${FD_FOLDER}${fd}/`), bytesFromName(names[index]!)]));
    } catch (error) {
      closeFolder(fd);
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') return { ok: false, code: 'parent-replaced', at: keys[index]! };
      if (code === 'ENOENT') return { ok: false, code: 'parent-missing', at: keys[index]! };
      throw error;
    }
    closeFolder(fd);
    fd = next;
    stepHook?.(root, keys[index]!);
  }
  return { ok: true, folder: pinnedFolder(fd) };
}

/**
 * Pins the folder holding `key` (a non-empty key below `root`) and names `key`'s last component
 * inside it: every operation on `path` acts beneath the root, in the folder that was reached
 * without following a symlink, whatever is swapped in afterwards.
 */
export function pinParent(root: string, key: string): Pinned {
  const { folderKey, name } = parentAndName(key);
  const pinned = pinFolder(root, folderKey);
  if (!pinned.ok) return pinned;
  return { ok: true, folder: pinned.folder, path: pinned.folder.path(name) };
}

/** The key of the folder holding `key`, and `key`'s last component. */
function parentAndName(key: string): { folderKey: string; name: string } {
  if (key === '') throw new Error('the root has no parent to pin');
  const slash = key.lastIndexOf('/');
  return { folderKey: slash < 0 ? '' : key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * The folders pinned for one batch of the apply, each opened once and shared by every change in
 * it: a burst of a thousand files in fifty folders opens fifty folders, not a walk from the root
 * per file and side (measured: 2,000 walks of three opens and three closes, the largest cost on
 * the agent's thread in a 1,000-file apply). Sharing is sound within a batch because its changes
 * are at one depth: none removes or replaces a folder another pins (those are one level up).
 * A pin that fails is not kept, so a later change looks again. Close it when the batch is done.
 */
export class PinnedFolders {
  private readonly held = new Map<string, PinnedFolder>();

  /** As pinParent; the folder belongs to this set: do not close it. */
  pinParent(root: string, key: string): Pinned {
    const { folderKey, name } = parentAndName(key);
    const heldKey = `${root}\0${folderKey}`;
    let folder = this.held.get(heldKey);
    if (folder === undefined) {
      const pinned = pinFolder(root, folderKey);
      if (!pinned.ok) return pinned;
      folder = pinned.folder;
      this.held.set(heldKey, folder);
    }
    return { ok: true, folder, path: folder.path(name) };
  }

  close(): void {
    for (const folder of this.held.values()) folder.close();
    this.held.clear();
  }
}
