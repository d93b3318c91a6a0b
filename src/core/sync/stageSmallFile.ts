// Staging a small file: a copy of the source under a temporary name beside the target, made only
// if the source still has the content reconcile chose. Synchronous calls (each costs less than a
// hop through libuv's pool and the promise around it), on the agent's thread for a few files and
// on the staging threads (stagingThreads.ts) for a burst, whose copies then run beside the
// apply's other work and each other.
import { createHash } from 'node:crypto';
import { closeSync, constants, fchownSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { removeStaged, setStagedAttributes } from '../files/replaceChecked';

// O_NOFOLLOW and O_NONBLOCK as in the scan: a source swapped for a symlink is not followed and one
// swapped for a FIFO does not block; only a regular file is read, and never past the size we expect.
export const SOURCE_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

// O_EXCL: a name planted meanwhile (a symlink included) is never written through.
export const STAGED_OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Errors of opening a source that mean it changed since the scan (gone, or now a symlink: ELOOP), not a failure. */
export const SOURCE_CHANGED_CODES = new Set(['ENOENT', 'ELOOP', 'ENOTDIR', 'ENXIO']);

/** A Buffer over the same bytes: a path posted to a thread arrives as a plain Uint8Array. */
const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

export interface StageRequest {
  /** The source and the staged name to create, as bytes (each may name a pinned folder's descriptor: the threads share them). */
  source: Uint8Array;
  staged: Uint8Array;
  /** What reconcile chose: the source is copied only if it still has this size and content. */
  size: number;
  hash: string;
  /** Permission bits and mtime the staged copy gets, and its owner (none: the running user). */
  mode: number;
  mtimeMs: number;
  owner?: { uid: number; gid: number };
}

/** `staged`: the copy is at the staged name; `source-changed`: nothing was made. */
export type StageResult = 'staged' | 'source-changed';

/**
 * Copies the source to the staged name if it still has the content reconcile chose. Its owner,
 * mode and mtime are set through the descriptor: the staged name may have been swapped since it
 * was created. A failure leaves no staged file behind.
 */
export function stageSmallFile(request: StageRequest): StageResult {
  let fd: number;
  try {
    fd = openSync(asBuffer(request.source), SOURCE_OPEN_FLAGS);
  } catch (error) {
    if (SOURCE_CHANGED_CODES.has((error as NodeJS.ErrnoException).code ?? '')) return 'source-changed';
    throw error;
  }
  try {
    if (!fstatSync(fd).isFile()) return 'source-changed';
    // One byte past the expected size is enough to tell a grown file from the one we chose.
    const buffer = Buffer.allocUnsafe(request.size + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length < buffer.length; length += read) read = readSync(fd, buffer, length, buffer.length - length, length);
    if (createHash('sha256').update(buffer.subarray(0, length)).digest('hex') !== request.hash) return 'source-changed';
    const staged = asBuffer(request.staged);
    try {
      const out = openSync(staged, STAGED_OPEN_FLAGS, 0o600);
      try {
        for (let written = 0; written < length; ) written += writeSync(out, buffer, written, length - written, written);
        if (request.owner) fchownSync(out, request.owner.uid, request.owner.gid);
        setStagedAttributes(out, { mode: request.mode, mtimeMs: request.mtimeMs });
      } finally {
        closeSync(out);
      }
    } catch (error) {
      removeStaged(staged);
      throw error;
    }
    return 'staged';
  } finally {
    closeSync(fd);
  }
}
