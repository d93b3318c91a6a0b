// Compaction: a closed step keeps its saved content as it was read (content.raw) until it is
// compacted; then the content is compressed (see packWorker.ts) and the manifest points at the
// compressed blobs. The manifest's atomic replacement is the switch: a crash before it leaves the
// raw step as it was (an unfinished content.pack is overwritten by the next attempt), a crash
// after it leaves only a raw file that nothing points at, which the next attempt removes.
import { readdir, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../atomicFile';
import { packWorker } from './packWorker';
import type { BlobRef, Manifest, StepRecord } from './records';
import { JOURNAL, manifestText, MANIFEST, RAW } from './records';

/** Whether the manifest points at content as read. */
export function holdsRawContent(manifest: Manifest): boolean {
  return manifest.records.some(({ pre }) => pre.kind === 'file' && pre.blob.file === RAW);
}

/**
 * Whether the step's folder still holds content as read, or the journal it was written with:
 * compaction removes both, last, so a folder without them is compacted (or has nothing to compact).
 */
export async function holdsUncompactedFiles(stepDirectory: string): Promise<boolean> {
  return (await readdir(stepDirectory).catch(() => [] as string[])).some((name) => name === RAW || name === JOURNAL);
}

/**
 * Compresses the step's raw content and switches its manifest to the compressed blobs; returns
 * the new manifest (with the bytes the step now takes), or the old one when it had no raw content
 * left (leftovers of an interrupted compaction are removed either way).
 */
export async function compactStep(stepDirectory: string, manifest: Manifest): Promise<Manifest> {
  const raw = rawBlobs(manifest.records);
  let next = manifest;
  if (raw.length > 0) {
    const compressed = await packWorker.compact(stepDirectory, raw);
    const moved = new Map(raw.map((blob, index) => [rawKey(blob), compressed[index]!]));
    const records: StepRecord[] = manifest.records.map((record) => (record.pre.kind === 'file' && record.pre.blob.file === RAW ? { ...record, pre: { ...record.pre, blob: moved.get(rawKey(record.pre.blob))! } } : record));
    const files = new Set(compressed.map(({ file }) => file));
    next = { ...manifest, records };
    await writeFileAtomic(path.join(stepDirectory, MANIFEST), manifestText(next, await sizeOf(stepDirectory, files)));
  }
  // The journal's lines point at the raw content; a closed step is read from its manifest.
  for (const name of [RAW, JOURNAL]) await unlink(path.join(stepDirectory, name)).catch(() => {});
  return next;
}

/** The raw blobs the records point at, once each, in the order they were written. */
function rawBlobs(records: readonly StepRecord[]): BlobRef[] {
  const byKey = new Map<string, BlobRef>();
  for (const { pre } of records) if (pre.kind === 'file' && pre.blob.file === RAW) byKey.set(rawKey(pre.blob), pre.blob);
  return [...byKey.values()].sort((a, b) => a.offset - b.offset || a.size - b.size);
}

// Empty contents take no room: several may share an offset with each other and with the next one.
const rawKey = (blob: BlobRef): string => `${blob.offset}:${blob.size}`;

async function sizeOf(directory: string, names: ReadonlySet<string>): Promise<number> {
  let total = 0;
  for (const name of names) total += (await stat(path.join(directory, name))).size;
  return total;
}
