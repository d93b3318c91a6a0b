// The undo log's content mover, on a worker thread of its own. Capturing a preimage means reading
// the file, hashing it and appending it to the step's content file; compacting a closed step means
// compressing that content. For a sync that replaces a thousand small files this is a tenth of a
// second of CPU or more, and on the main thread it stalled the apply it was meant to run beside.
// Here it runs on another core, and the main thread only sends paths and receives what was found.
//
// While a step is open, contents go to `content.raw` uncompressed, one after another: compressing
// them there and then cost more CPU than the rest of the capture together, on the sync's critical
// path. Compaction (after the step closed, outside any sync) compresses them into frames of about
// 1 MiB in `content.pack` (brotli at quality 1: over twice as fast as gzip's fastest level on
// source text, and tighter), and each content of 1 MiB or more into a stream of its own, `<n>.br`.
//
// The worker's code is plain JavaScript in a string, run with `eval: true`, so the agent and CLI
// bundles and the tests (through tsx) all carry it without a file of their own to ship; it uses
// Node's built-in modules only. It handles one request at a time; a `sync` covers every `capture`
// answered before it was sent.
import { Worker } from 'node:worker_threads';
import type { BlobRef } from './records';
import { PACK, RAW } from './records';

/** Contents are compressed together in frames of about this many bytes. */
export const FRAME_BYTES = 1024 ** 2;
/** A content this large is compressed into a stream of its own rather than into a frame. */
export const LARGE_CONTENT_BYTES = 1024 ** 2;

/** The lstat fields a capture reports, enough to tell later whether the path changed since. */
export interface CapturedStats {
  dev: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** What the worker found at one path; a file's content is saved at `blob`. */
export type CapturedPath =
  | { kind: 'absent' }
  | { kind: 'file'; stats: CapturedStats; hash: string; blob: BlobRef }
  | { kind: 'symlink'; stats: CapturedStats; target: Buffer }
  | { kind: 'directory' | 'other'; stats: CapturedStats }
  /** A file larger than the room left in the step: not read. */
  | { kind: 'too-large'; stats: CapturedStats }
  | { kind: 'error'; message: string };

/** Where compaction put one raw content (given as its raw blob), in order. */
export type CompactedBlobs = BlobRef[];

type Request =
  | { op: 'open'; pack: number; file: string }
  | { op: 'capture'; pack: number; paths: Buffer[]; maxBytes: number }
  | { op: 'sync'; pack: number }
  | { op: 'close'; pack: number }
  | { op: 'compact'; directory: string; contents: Array<{ offset: number; size: number }>; frameBytes: number; largeBytes: number };

interface Reply {
  id: number;
  error?: { message: string; code?: string };
  results?: Array<Exclude<CapturedPath, { kind: 'symlink' }> | { kind: 'symlink'; stats: CapturedStats; target: Uint8Array }>;
  length?: number;
  compacted?: Array<[file: string, offset: number, length: number, start: number]>;
}

const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { createHash } = require('node:crypto');
const zlib = require('node:zlib');
const { pipeline } = require('node:stream/promises');

const { raw: RAW, pack: PACK } = workerData;
// As in the apply: a path swapped for a symlink is not followed, a FIFO does not block.
const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const CHUNK = 1024 * 1024;
const brotli = (sizeHint) => ({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: sizeHint } });
const buffer = Buffer.allocUnsafe(CHUNK);
const packs = new Map();

function packOf(id) {
  const pack = packs.get(id);
  if (!pack) throw new Error('the step folder was not created');
  if (pack.failure) throw pack.failure;
  return pack;
}

function writeAll(fd, data, position) {
  for (let written = 0; written < data.length; ) written += fs.writeSync(fd, data, written, data.length - written, position + written);
}

function statsOf(stats) {
  const { dev, ino, mode, uid, gid, size, atimeMs, mtimeMs, ctimeMs } = stats;
  return { dev, ino, mode, uid, gid, size, atimeMs, mtimeMs, ctimeMs };
}

// Contents that fit are gathered in one buffer and written to the pack with one call at the end
// of the request: a thousand small appends were a thousand trips through the file system's
// journal, each holding up the apply's own changes to the disk. The buffer holds the bytes that
// follow \`stagedAt\` in the pack of the request under way.
const stage = Buffer.allocUnsafe(CHUNK);
let staged = 0;
let stagedAt = 0;

// What reached the disk is unknown after a failed write: the pack takes no more.
function writeToPack(pack, data, position) {
  try {
    writeAll(pack.fd, data, position);
  } catch (error) {
    pack.failure = error;
    throw error;
  }
}

function writeStaged(pack) {
  if (staged === 0) return;
  const data = stage.subarray(0, staged);
  staged = 0;
  writeToPack(pack, data, stagedAt);
}

// Appends the file's content to the pack, hashing it: into the buffer when it fits there, else
// through the buffer's bytes first and then in chunks. Reads one byte past the size the lstat
// gave, to tell a file that changed while being read: what was read then belongs to no one
// state, and the caller captures the path again. Its bytes stay in the pack, unreferenced.
function copyIn(pack, fd, size) {
  const hash = createHash('sha256');
  const offset = pack.length;
  const direct = size + 1 > CHUNK - staged;
  if (direct) writeStaged(pack);
  else if (staged === 0) stagedAt = offset;
  let copied = 0;
  for (;;) {
    const wanted = Math.min(CHUNK, size + 1 - copied);
    const read = direct ? fs.readSync(fd, buffer, 0, wanted, null) : fs.readSync(fd, stage, staged, wanted, null);
    if (read === 0) break;
    const chunk = direct ? buffer.subarray(0, read) : stage.subarray(staged, staged + read);
    hash.update(chunk);
    if (direct) writeToPack(pack, chunk, offset + copied);
    else staged += read;
    copied += read;
    pack.length = Math.max(pack.length, offset + copied);
    pack.dirty = true;
    if (copied > size) break;
  }
  if (copied !== size) return undefined;
  return { hash: hash.digest('hex'), blob: { file: RAW, offset, length: size, start: 0, size } };
}

// Opens first and asks the open file what it is: one lookup of the path instead of two (an lstat
// and an open). O_NOFOLLOW makes a symlink fail with ELOOP, and only then is it looked at itself.
// Paths come from the scan as files, links or nothing; one replaced by a device since would be
// opened (without blocking), as the apply opens its sources.
function capture(pack, bytes, maxBytes) {
  const target = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fd;
  try {
    fd = fs.openSync(target, READ_FLAGS);
  } catch (error) {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return { kind: 'absent' };
    if (error.code !== 'ELOOP') return { kind: 'error', message: error.message };
    return described(target);
  }
  try {
    const stats = fs.fstatSync(fd);
    if (stats.isDirectory()) return { kind: 'directory', stats: statsOf(stats) };
    if (!stats.isFile()) return { kind: 'other', stats: statsOf(stats) };
    if (stats.size > maxBytes) return { kind: 'too-large', stats: statsOf(stats) };
    const saved = copyIn(pack, fd, stats.size);
    if (!saved) return { kind: 'error', message: 'it changed while it was read' };
    return { kind: 'file', stats: statsOf(stats), hash: saved.hash, blob: saved.blob };
  } catch (error) {
    if (pack.failure) throw error;
    return { kind: 'error', message: error.message };
  } finally {
    fs.closeSync(fd);
  }
}

// What is at a path that open() would not follow: a symlink, as a rule.
function described(target) {
  try {
    const stats = fs.lstatSync(target);
    if (stats.isSymbolicLink()) return { kind: 'symlink', stats: statsOf(stats), target: fs.readlinkSync(target, { encoding: 'buffer' }) };
    return { kind: stats.isDirectory() ? 'directory' : 'other', stats: statsOf(stats) };
  } catch (error) {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'error', message: error.message };
  }
}

function readAt(fd, length, position) {
  const data = Buffer.allocUnsafe(length);
  for (let read = 0; read < length; ) {
    const count = fs.readSync(fd, data, read, length - read, position + read);
    if (count === 0) throw new Error('the saved content is corrupt (' + RAW + ' is short)');
    read += count;
  }
  return data;
}

function syncFile(file) {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

// Compresses a closed step's raw contents: small ones into frames of content.pack, each large one
// into a stream of its own. Files of an earlier attempt that a crash interrupted are overwritten.
// Everything written is synced before the answer, so the caller may point the manifest at it.
async function compact({ directory, contents, frameBytes, largeBytes }) {
  const rawFd = fs.openSync(path.join(directory, RAW), 'r');
  const packFd = fs.openSync(path.join(directory, PACK), 'w', 0o600);
  const placed = new Array(contents.length);
  const written = [path.join(directory, PACK)];
  try {
    let packLength = 0;
    let frame = [];
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
        const name = String(++large).padStart(6, '0') + '.br';
        const file = path.join(directory, name);
        await pipeline(fs.createReadStream(null, { fd: rawFd, autoClose: false, start: offset, end: offset + size - 1 }), zlib.createBrotliCompress(brotli(size)), fs.createWriteStream(file, { mode: 0o600 }));
        placed[index] = [name, 0, fs.statSync(file).size, 0];
        written.push(file);
        continue;
      }
      frame.push({ index, data: readAt(rawFd, size, offset) });
      frameSize += size;
      if (frameSize >= frameBytes) seal();
    }
    seal();
    fs.fsyncSync(packFd);
  } finally {
    fs.closeSync(packFd);
    fs.closeSync(rawFd);
  }
  for (const file of written.slice(1)) syncFile(file);
  syncFile(directory);
  return placed;
}

async function handle(request) {
  switch (request.op) {
    case 'open':
      packs.set(request.pack, { fd: fs.openSync(request.file, 'w', 0o600), length: 0, dirty: false });
      return {};
    case 'capture': {
      const pack = packOf(request.pack);
      const results = [];
      const until = pack.length + request.maxBytes;
      staged = 0; // what a failed request left there belongs to no answered capture
      for (const target of request.paths) results.push(capture(pack, target, Math.max(0, until - pack.length)));
      writeStaged(pack);
      return { results, length: pack.length };
    }
    case 'sync': {
      const pack = packOf(request.pack);
      if (pack.dirty) {
        try {
          fs.fdatasyncSync(pack.fd);
        } catch (error) {
          // What reached the disk is unknown now: this pack takes no more writes.
          pack.failure = error;
          throw error;
        }
        pack.dirty = false;
      }
      return { length: pack.length };
    }
    case 'close': {
      const pack = packs.get(request.pack);
      packs.delete(request.pack);
      if (pack) fs.closeSync(pack.fd);
      return {};
    }
    case 'compact':
      return { compacted: await compact(request) };
    default:
      throw new Error('unknown request ' + request.op);
  }
}

// Requests run one at a time. A sync goes before captures that wait: it only has to cover the
// captures already answered (a journal line is written only for those), and the step's writes to
// the host wait for it. Between requests the worker lets messages in, so a sync sent during a
// long capture is seen when that capture ends.
const urgent = [];
const waiting = [];
let draining = false;
parentPort.on('message', (request) => {
  (request.op === 'capture' || request.op === 'compact' ? waiting : urgent).push(request);
  if (!draining) void drain();
});

async function drain() {
  draining = true;
  while (urgent.length > 0 || waiting.length > 0) {
    const request = urgent.length > 0 ? urgent.shift() : waiting.shift();
    let reply;
    try {
      reply = { id: request.id, ...(await handle(request)) };
    } catch (error) {
      reply = { id: request.id, error: { message: error.message, code: error.code } };
    }
    parentPort.postMessage(reply);
    await new Promise((resolve) => setImmediate(resolve));
  }
  draining = false;
}
`;

/**
 * The client: one worker per process, started at first use (or by warm()) and restarted after a
 * crash (the packs it had open fail, and with them their steps). It does not keep the process
 * alive while idle.
 */
class PackWorkerClient {
  private worker?: Worker;
  private nextRequest = 1;
  private nextPack = 1;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();

  newPackId(): number {
    return this.nextPack++;
  }

  /** Starts the worker ahead of its first use (that takes tens of milliseconds). */
  warm(): void {
    this.start();
  }

  async open(pack: number, file: string): Promise<void> {
    await this.request({ op: 'open', pack, file });
  }

  /**
   * Appends, in order, the content of each path that is a file of at most `maxBytes` bytes to the
   * pack, and reports what each path is; also the pack's length after them.
   */
  async capture(pack: number, paths: Buffer[], maxBytes: number): Promise<{ results: CapturedPath[]; length: number }> {
    const reply = await this.request({ op: 'capture', pack, paths, maxBytes });
    const results = (reply.results ?? []).map((result): CapturedPath => (result.kind === 'symlink' ? { ...result, target: Buffer.from(result.target) } : result));
    return { results, length: reply.length ?? 0 };
  }

  /** Makes everything appended so far durable; returns the pack's length. */
  async sync(pack: number): Promise<number> {
    return (await this.request({ op: 'sync', pack })).length ?? 0;
  }

  async close(pack: number): Promise<void> {
    await this.request({ op: 'close', pack });
  }

  /**
   * Compresses the raw contents of the closed step in `directory` (given by their raw blobs) and
   * syncs what it wrote; returns each one's new blob. The raw file is left for the caller to
   * remove once the manifest points at the new blobs.
   */
  async compact(directory: string, contents: readonly BlobRef[]): Promise<CompactedBlobs> {
    const reply = await this.request({ op: 'compact', directory, contents: contents.map(({ offset, size }) => ({ offset, size })), frameBytes: FRAME_BYTES, largeBytes: LARGE_CONTENT_BYTES });
    return (reply.compacted ?? []).map(([file, offset, length, start], index) => ({ file, offset, length, start, size: contents[index]!.size }));
  }

  private request(message: Request): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const worker = this.start();
      const id = this.nextRequest++;
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ ...message, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { raw: RAW, pack: PACK } });
    this.worker = worker;
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.error) waiter.reject(Object.assign(new Error(`undo log: ${reply.error.message}`), { code: reply.error.code }));
      else waiter.resolve(reply);
    });
    const fail = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const { reject } of this.pending.values()) reject(new Error(`undo log: the capture worker stopped (${error.message})`));
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    return worker;
  }
}

export const packWorker = new PackWorkerClient();
