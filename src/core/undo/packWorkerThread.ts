// The capture worker's own code, the entry point of its worker thread (the client, and why a
// thread, are in packWorker.ts). esbuild bundles it on its own and carries the result in the
// agent's bundle (esbuild.mjs); under tsx (tests) the client starts this file itself. It uses
// Node's built-in modules only, and imports nothing but types from the rest of Clud, so its
// bundle stays small. It handles one request at a time; a `sync` covers every `capture` answered
// before it was sent.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { vouchingCtime } from '../files/fsEntry';
import type { BlobRef } from './records';
import type { CapturedPath, CapturedStats, PackWorkerData, PackWorkerReply, PackWorkerRequest } from './packWorker';

const { raw: RAW, pack: PACK } = workerData as PackWorkerData;
// As in the apply: a path swapped for a symlink is not followed, a FIFO does not block.
const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const CHUNK = 1024 * 1024;
const brotli = (sizeHint: number): zlib.BrotliOptions => ({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: sizeHint } });
const buffer = Buffer.allocUnsafe(CHUNK);

/** A step's open content file (content.raw), appended to by captures. */
interface ContentFile {
  fd: number;
  length: number;
  /** Appended to since the last fdatasync. */
  dirty: boolean;
  /** A write or sync failed: what reached the disk is unknown, so the file takes no more. */
  failure?: Error;
}

const contentFiles = new Map<number, ContentFile>();

function contentFileOf(id: number): ContentFile {
  const file = contentFiles.get(id);
  if (!file) throw new Error('the step folder was not created');
  if (file.failure) throw file.failure;
  return file;
}

function writeAll(fd: number, data: Buffer, position: number): void {
  for (let written = 0; written < data.length; ) written += fs.writeSync(fd, data, written, data.length - written, position + written);
}

/** `seenAt`: the clock before the call that returned `stats`; a ctime within a tick of it cannot vouch that the capture is current (isRacy). */
function statsOf(stats: fs.Stats, seenAt: number): CapturedStats {
  const { dev, ino, mode, uid, gid, size, atimeMs, mtimeMs, ctimeMs } = stats;
  return { dev, ino, mode, uid, gid, size, atimeMs, mtimeMs, ctimeMs: vouchingCtime(ctimeMs, seenAt) };
}

// Contents that fit are gathered in one buffer and written to the content file with one call at
// the end of the request: a thousand small appends were a thousand trips through the file
// system's journal, each holding up the apply's own changes to the disk. The buffer holds the
// bytes that follow `stagedAt` in the content file of the request under way.
const stage = Buffer.allocUnsafe(CHUNK);
let staged = 0;
let stagedAt = 0;

function writeToContentFile(file: ContentFile, data: Buffer, position: number): void {
  try {
    writeAll(file.fd, data, position);
  } catch (error) {
    file.failure = error as Error;
    throw error;
  }
}

function writeStaged(file: ContentFile): void {
  if (staged === 0) return;
  const data = stage.subarray(0, staged);
  staged = 0;
  writeToContentFile(file, data, stagedAt);
}

// Appends the file's content to the content file, hashing it: into the buffer when it fits there,
// else through the buffer's bytes first and then in chunks. Reads one byte past the size the
// lstat gave, to tell a file that changed while being read: what was read then belongs to no one
// state, and the caller captures the path again. Its bytes stay in the content file, unreferenced.
function copyIn(file: ContentFile, fd: number, size: number): { hash: string; blob: BlobRef } | undefined {
  const hash = createHash('sha256');
  const offset = file.length;
  const direct = size + 1 > CHUNK - staged;
  if (direct) writeStaged(file);
  else if (staged === 0) stagedAt = offset;
  let copied = 0;
  for (;;) {
    const wanted = Math.min(CHUNK, size + 1 - copied);
    const read = direct ? fs.readSync(fd, buffer, 0, wanted, null) : fs.readSync(fd, stage, staged, wanted, null);
    if (read === 0) break;
    const chunk = direct ? buffer.subarray(0, read) : stage.subarray(staged, staged + read);
    hash.update(chunk);
    if (direct) writeToContentFile(file, chunk, offset + copied);
    else staged += read;
    copied += read;
    file.length = Math.max(file.length, offset + copied);
    file.dirty = true;
    if (copied > size) break;
  }
  if (copied !== size) return undefined;
  return { hash: hash.digest('hex'), blob: { file: RAW, offset, length: size, start: 0, size } };
}

const errorCode = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;
const errorMessage = (error: unknown): string => (error as Error).message;

// Opens first and asks the open file what it is: one lookup of the path instead of two (an lstat
// and an open). O_NOFOLLOW makes a symlink fail with ELOOP, and only then is it looked at itself.
// Paths come from the scan as files, links or nothing; one replaced by a device since would be
// opened (without blocking), as the apply opens its sources.
function capture(file: ContentFile, bytes: Uint8Array, maxBytes: number): CapturedPath {
  const target = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const seenAt = Date.now();
  let fd: number;
  try {
    fd = fs.openSync(target, READ_FLAGS);
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return { kind: 'absent' };
    if (errorCode(error) !== 'ELOOP') return { kind: 'error', message: errorMessage(error) };
    return described(target, seenAt);
  }
  try {
    const stats = fs.fstatSync(fd);
    if (stats.isDirectory()) return { kind: 'directory', stats: statsOf(stats, seenAt) };
    if (!stats.isFile()) return { kind: 'other', stats: statsOf(stats, seenAt) };
    if (stats.size > maxBytes) return { kind: 'too-large', stats: statsOf(stats, seenAt) };
    const saved = copyIn(file, fd, stats.size);
    if (!saved) return { kind: 'error', message: 'it changed while it was read' };
    return { kind: 'file', stats: statsOf(stats, seenAt), hash: saved.hash, blob: saved.blob };
  } catch (error) {
    if (file.failure) throw error;
    return { kind: 'error', message: errorMessage(error) };
  } finally {
    fs.closeSync(fd);
  }
}

// What is at a path that open() would not follow: a symlink, as a rule.
function described(target: Buffer, seenAt: number): CapturedPath {
  try {
    const stats = fs.lstatSync(target);
    if (stats.isSymbolicLink()) return { kind: 'symlink', stats: statsOf(stats, seenAt), target: fs.readlinkSync(target, { encoding: 'buffer' }) };
    return { kind: stats.isDirectory() ? 'directory' : 'other', stats: statsOf(stats, seenAt) };
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'error', message: errorMessage(error) };
  }
}

function readAt(fd: number, length: number, position: number): Buffer {
  const data = Buffer.allocUnsafe(length);
  for (let read = 0; read < length; ) {
    const count = fs.readSync(fd, data, read, length - read, position + read);
    if (count === 0) throw new Error(`the saved content is corrupt (${RAW} is short)`);
    read += count;
  }
  return data;
}

/**
 * `length` bytes from `position` on, CHUNK at a time. Not a read stream given the descriptor: a
 * failing pipeline (ENOSPC) makes such a stream close it, whatever autoClose says, and the close
 * after it would close whichever file has since been given that number.
 */
function* chunksAt(fd: number, length: number, position: number): Generator<Buffer> {
  for (let done = 0; done < length; done += CHUNK) yield readAt(fd, Math.min(CHUNK, length - done), position + done);
}

function syncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

type Compacted = NonNullable<PackWorkerReply['compacted']>;

// Compresses a closed step's raw contents: small ones into frames of content.pack, each large one
// into a stream of its own. Files of an earlier attempt that a crash interrupted are overwritten.
// Everything written is synced before the answer, so the caller may point the manifest at it.
async function compact({ directory, contents, frameBytes, largeBytes }: Extract<PackWorkerRequest, { op: 'compact' }>): Promise<Compacted> {
  const rawFd = fs.openSync(path.join(directory, RAW), 'r');
  const packFd = fs.openSync(path.join(directory, PACK), 'w', 0o600);
  const placed: Compacted = new Array(contents.length);
  const written = [path.join(directory, PACK)];
  try {
    let packLength = 0;
    let frame: Array<{ index: number; data: Buffer }> = [];
    let frameSize = 0;
    const seal = () => {
      if (frame.length === 0) return;
      const compressed = zlib.brotliCompressSync(Buffer.concat(frame.map(({ data }) => data)), brotli(frameSize));
      writeAll(packFd, compressed, packLength);
      let start = 0;
      for (const { index, data } of frame) {
        placed[index] = [PACK, packLength, compressed.length, start];
        start += data.length;
      }
      packLength += compressed.length;
      frame = [];
      frameSize = 0;
    };
    let large = 0;
    for (const [index, { offset, size }] of contents.entries()) {
      if (size >= largeBytes) {
        // Six digits or more, then .br: the names records.ts's BlobRef accepts.
        const name = `${String(++large).padStart(6, '0')}.br`;
        const file = path.join(directory, name);
        written.push(file);
        await pipeline(chunksAt(rawFd, size, offset), zlib.createBrotliCompress(brotli(size)), fs.createWriteStream(file, { mode: 0o600 }));
        placed[index] = [name, 0, fs.statSync(file).size, 0];
        continue;
      }
      frame.push({ index, data: readAt(rawFd, size, offset) });
      frameSize += size;
      if (frameSize >= frameBytes) seal();
    }
    seal();
    fs.fsyncSync(packFd);
  } catch (error) {
    // Nothing points at what this attempt wrote (the manifest still points at the raw content):
    // its room goes back now, not at the next attempt, which on a full disk it would hold off.
    for (const file of written) fs.rmSync(file, { force: true });
    throw error;
  } finally {
    fs.closeSync(packFd);
    fs.closeSync(rawFd);
  }
  for (const file of written.slice(1)) syncFile(file);
  syncFile(directory);
  return placed;
}

async function handle(request: PackWorkerRequest): Promise<Omit<PackWorkerReply, 'id'>> {
  switch (request.op) {
    case 'open':
      contentFiles.set(request.contentFile, { fd: fs.openSync(request.path, 'w', 0o600), length: 0, dirty: false });
      return {};
    case 'capture': {
      const file = contentFileOf(request.contentFile);
      const results: CapturedPath[] = [];
      const until = file.length + request.maxBytes;
      staged = 0; // what a failed request left there belongs to no answered capture
      for (const target of request.paths) results.push(capture(file, target, Math.max(0, until - file.length)));
      writeStaged(file);
      return { results, length: file.length };
    }
    case 'sync': {
      const file = contentFileOf(request.contentFile);
      if (file.dirty) {
        try {
          fs.fdatasyncSync(file.fd);
        } catch (error) {
          // What reached the disk is unknown now: this file takes no more writes.
          file.failure = error as Error;
          throw error;
        }
        file.dirty = false;
      }
      return { length: file.length };
    }
    case 'close': {
      const file = contentFiles.get(request.contentFile);
      contentFiles.delete(request.contentFile);
      if (file) fs.closeSync(file.fd);
      return {};
    }
    case 'compact':
      return { compacted: await compact(request) };
  }
}

// Requests run one at a time. A sync goes before captures that wait: it only has to cover the
// captures already answered (a journal line is written only for those), and the step's writes to
// the host wait for it. Between requests the worker lets messages in, so a sync sent during a
// long capture is seen when that capture ends.
const urgent: PackWorkerRequest[] = [];
const waiting: PackWorkerRequest[] = [];
let draining = false;
parentPort!.on('message', (request: PackWorkerRequest) => {
  (request.op === 'capture' || request.op === 'compact' ? waiting : urgent).push(request);
  if (!draining) void drain();
});

async function drain(): Promise<void> {
  draining = true;
  while (urgent.length > 0 || waiting.length > 0) {
    const request = (urgent.length > 0 ? urgent.shift() : waiting.shift())!;
    let reply: PackWorkerReply;
    try {
      reply = { id: request.id, ...(await handle(request)) };
    } catch (error) {
      reply = { id: request.id, error: { message: errorMessage(error), code: errorCode(error) } };
    }
    parentPort!.postMessage(reply);
    await new Promise((resolve) => setImmediate(resolve));
  }
  draining = false;
}
