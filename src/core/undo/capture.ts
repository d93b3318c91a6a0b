// Reading what a path holds into a preimage's content: gzip at the fastest level (the log is
// written on every sync, read only on undo) and the sha256 of what was read, which restore checks.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { constants as zlibConstants, createGzip, gzip, gzipSync } from 'node:zlib';

/** Files below this are read and gzipped in memory and packed; larger ones are streamed to a file of their own. */
export const IN_MEMORY_BYTES = 1024 ** 2;
/** Below this, gzip runs on the main thread: cheaper than a trip to the thread pool. */
const SYNC_GZIP_BYTES = 64 * 1024;
const GZIP_OPTIONS = { level: zlibConstants.Z_BEST_SPEED };
const gzipInPool = promisify(gzip);

/** In the thread pool, whatever the size. */
export function gzipAsync(content: Buffer): Promise<Buffer> {
  return gzipInPool(content, GZIP_OPTIONS);
}

export function gzipSmall(content: Buffer): Promise<Buffer> {
  return content.length < SYNC_GZIP_BYTES ? Promise.resolve(gzipSync(content, GZIP_OPTIONS)) : gzipInPool(content, GZIP_OPTIONS);
}

/**
 * Streams `source` gzipped into `destination`. `reserve(bytes)` is asked before each gzipped
 * chunk is written and may refuse (the step's size limit): the stream then fails with
 * `refusal()`. On any failure the destination is removed.
 */
export async function streamGzipped(source: Buffer, destination: string, reserve: (bytes: number) => boolean, refusal: () => Error): Promise<{ hash: string; size: number; length: number }> {
  const hash = createHash('sha256');
  let size = 0;
  let length = 0;
  try {
    await pipeline(
      createReadStream(source),
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      }),
      createGzip(GZIP_OPTIONS),
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          if (!reserve(chunk.length)) return callback(refusal());
          length += chunk.length;
          callback(null, chunk);
        },
      }),
      createWriteStream(destination, { mode: 0o600 }),
    );
  } catch (error) {
    await unlink(destination).catch(() => {});
    throw error;
  }
  return { hash: hash.digest('hex'), size, length };
}

/** Whether nothing changed at a path between two lstat calls (ctime moves on any change of content, mode, owner or xattrs). */
export function sameState(before: Stats | undefined, now: Stats | undefined): boolean {
  if (!before || !now) return before === now;
  return before.ino === now.ino && before.dev === now.dev && before.size === now.size && before.mtimeMs === now.mtimeMs && before.ctimeMs === now.ctimeMs && before.mode === now.mode && before.uid === now.uid && before.gid === now.gid;
}

/** Runs `work` on every item, at most `limit` at once; throws the first failure once all settled. */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item).catch((error: unknown) => {
        failure ??= { error };
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
