// Reading what a path holds into a preimage's content: brotli at its fastest quality (the log is
// written on every sync and read only on undo) and the sha256 of what was read, which restore
// checks. Brotli's quality 1 compresses source text more than twice as fast as gzip's fastest
// level, and packs it tighter.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { brotliCompressSync, constants as zlibConstants, createBrotliCompress } from 'node:zlib';

/** Files below this are read whole and packed; larger ones are streamed to a file of their own. */
export const IN_MEMORY_BYTES = 1024 ** 2;

const brotliOptions = (sizeHint: number) => ({ params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 1, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: sizeHint } });

/** One frame of packed contents, on the calling thread: a few milliseconds per MiB. */
export function compressFrame(frame: Buffer): Buffer {
  return brotliCompressSync(frame, brotliOptions(frame.length));
}

/**
 * Streams `source` compressed into `destination`. `reserve(bytes)` is asked before each
 * compressed chunk is written and may refuse (the step's size limit): the stream then fails with
 * `refusal()`. On any failure the destination is removed.
 */
export async function streamCompressed(source: Buffer, destination: string, reserve: (bytes: number) => boolean, refusal: () => Error): Promise<{ hash: string; size: number; length: number }> {
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
      createBrotliCompress(brotliOptions(0)),
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
