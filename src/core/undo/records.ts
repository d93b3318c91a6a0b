// What the undo log stores on disk: per-path preimages (what a path was before a step first
// touched it), postimages (what the step left there), the journal an open step appends them to,
// and the step manifest. Paths are snapshot keys (see files/entry.ts), surrogate-escaped so any
// byte name survives. Saved content is stored as it was read while a step is open, and compressed
// with brotli once the step is compacted: small files together in frames of one file, large ones
// in a file each (see packWorker.ts).
import { z } from 'zod';

/** Bump on any incompatible change of the layout below; a mismatch disables undo until discard(). */
export const UNDO_FORMAT_VERSION = 4;

export const MANIFEST = 'manifest.json';
export const UNPROTECTED = 'unprotected.json';
export const JOURNAL = 'journal.jsonl';
export const PACK = 'content.pack';
export const RAW = 'content.raw';
/** A closed step's group (see StepGroup): written beside the manifest before the step is promoted; absent in logs made before groups. */
export const GROUP = 'group.json';

/** A path's extended attributes: [name, base64 value] pairs, sorted by name. */
export const XattrPairs = z.array(z.tuple([z.string(), z.string()]));
export type XattrPairs = z.infer<typeof XattrPairs>;
/** The attributes, or null when they could not be captured (no tools, odd name). */
const Xattrs = XattrPairs.nullable();
/**
 * Where a file's content is. In `content.raw` (while a step is open, and until the step is
 * compacted): `size` bytes at `offset` (`length` equals `size`, `start` is 0). In `content.pack`
 * or a `<n>.br` of its own (after compaction): a brotli stream of `length` bytes at `offset`,
 * which decompresses to a frame holding the content at `start`, `size` bytes long (a large
 * file's own stream holds only it).
 */
export const BlobRef = z
  .object({
    file: z.string().regex(/^(content\.raw|content\.pack|\d{6,}\.br)$/),
    offset: z.number().int().nonnegative(),
    length: z.number().int().nonnegative(),
    start: z.number().int().nonnegative(),
    size: z.number().int().nonnegative(),
  })
  .refine((ref) => (ref.file === RAW ? ref.length === ref.size && ref.start === 0 : ref.length > 0), 'not a blob this version writes');
export type BlobRef = z.infer<typeof BlobRef>;

const inode = { mode: z.number().int(), uid: z.number().int(), gid: z.number().int(), atimeMs: z.number(), mtimeMs: z.number(), xattrs: Xattrs };

export const Preimage = z.discriminatedUnion('kind', [
  /** Nothing was there: the step created the path, undo removes it. */
  z.object({ kind: z.literal('absent') }),
  z.object({ kind: z.literal('file'), ...inode, size: z.number().int(), hash: z.string(), blob: BlobRef }),
  z.object({
    kind: z.literal('directory'),
    ...inode,
    /**
     * Only the folder's own mode and times were captured, because a child of it changed (adding or
     * removing an entry moves a folder's mtime). Such a folder is not itself a change of the step.
     */
    metadataOnly: z.boolean(),
  }),
  z.object({ kind: z.literal('symlink'), ...inode, target: z.string() }),
]);
export type Preimage = z.infer<typeof Preimage>;
export type PreimageOf<K extends Preimage['kind']> = Extract<Preimage, { kind: K }>;

/** What a step left at a path. size/mtime/ctime/ino only let barrier checks skip re-hashing an untouched file. */
export const Postimage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('absent') }),
  z.object({ kind: z.literal('file'), hash: z.string(), mode: z.number().int(), size: z.number(), mtimeMs: z.number(), ctimeMs: z.number(), ino: z.number() }),
  z.object({ kind: z.literal('directory'), mode: z.number().int(), mtimeMs: z.number() }),
  z.object({ kind: z.literal('symlink'), target: z.string() }),
]);
export type Postimage = z.infer<typeof Postimage>;

/**
 * The first line of an open step's journal. It repeats the host root, so a step whose manifest
 * is lost can still be rolled back.
 */
export const JournalHeader = z.object({ version: z.literal(UNDO_FORMAT_VERSION), stepId: z.string(), root: z.string() });

/** The other lines, in the order they were made durable: a path's preimage (a later line for the same path, captured again, replaces it). */
export const JournalEntry = z.object({ path: z.string(), pre: Preimage });
export type JournalEntry = z.infer<typeof JournalEntry>;

export const StepRecord = z.object({
  path: z.string(),
  pre: Preimage,
  /** Missing when the step does not know what it left there (it could not be read back, or a change began and did not finish): such a path always counts as a barrier. */
  post: Postimage.optional(),
});
export type StepRecord = z.infer<typeof StepRecord>;

/**
 * Logs written before the count of a step's changed paths was named `paths` call it `files` (it
 * always counted folders and links too): read either, write `paths`.
 */
function pathsCountNamed(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || 'paths' in value || !('files' in value)) return value;
  const { files, ...rest } = value as { files: unknown };
  return { ...rest, paths: files };
}

export const Manifest = z.preprocess(pathsCountNamed, z.object({
  version: z.literal(UNDO_FORMAT_VERSION),
  id: z.string(),
  syncId: z.string(),
  policy: z.string(),
  root: z.string(),
  startedAt: z.string(),
  /** Absent while the step is open (the manifest then only carries the header). */
  closedAt: z.string().optional(),
  protected: z.boolean(),
  unprotectedReason: z.string().optional(),
  /** Paths the step changed: files, links and folders (a folder whose only change was a child's is not counted). */
  paths: z.number().int(),
  /** Bytes the step takes in the log (saved content, journal, manifest). */
  bytes: z.number(),
  notes: z.array(z.string()),
  /** Empty for an unprotected step: it keeps no preimages. */
  records: z.array(StepRecord),
}));
export type Manifest = z.infer<typeof Manifest>;

/**
 * A step's manifest as it is written, after setting its `bytes` to what the step takes on disk:
 * its other files' `filesBytes` and this text itself. A large step's manifest takes milliseconds
 * to stringify, so it is stringified once, with `bytes` as 0, and the count is put in its place.
 * That place is the only `"bytes":0` in the text: no other object in a manifest has a `bytes`
 * field, and JSON escapes every quote inside a string.
 */
export function manifestText(manifest: Manifest, filesBytes: number): string {
  const text = JSON.stringify({ ...manifest, bytes: 0 });
  const field = '"bytes":0';
  const at = text.indexOf(field) + field.length - 1;
  if (at < field.length - 1) throw new Error('a manifest without its bytes field');
  const others = filesBytes + Buffer.byteLength(text) - 1;
  let bytes = others + 1;
  while (others + String(bytes).length !== bytes) bytes = others + String(bytes).length;
  manifest.bytes = bytes;
  return `${text.slice(0, at)}${bytes}${text.slice(at + 1)}`;
}

export const StepGroupRecord = z.object({ id: z.string().min(1), kind: z.enum(['turn', 'command', 'checkpoint', 'sync']), label: z.string() });
export type StepGroupRecord = z.infer<typeof StepGroupRecord>;

/** Written into an open step the moment it goes over the single-step limit; its preimages are then deleted. */
export const UnprotectedMarker = z.preprocess(pathsCountNamed, z.object({ reason: z.string(), paths: z.number().int() }));

export const BarrierSchema = z.object({
  stepId: z.string(),
  path: z.string(),
  detectedAt: z.string(),
  /** What changed since the step, e.g. "content changed", "deleted", "added inside a folder this step created". */
  change: z.string(),
});
export const BarriersFile = z.object({ version: z.literal(UNDO_FORMAT_VERSION), barriers: z.array(BarrierSchema) });

/** -1 for the root (""), 0 for a top-level path: parents always sort before children. */
export function keyDepth(key: string): number {
  if (key === '') return -1;
  let depth = 0;
  for (const char of key) if (char === '/') depth += 1;
  return depth;
}

/** "" (the root) for a top-level path. */
export function parentKey(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash < 0 ? '' : key.slice(0, slash);
}

export const childKey = (parent: string, name: string): string => (parent === '' ? name : `${parent}/${name}`);

export const isUnder = (key: string, ancestor: string): boolean => ancestor === '' ? key !== '' : key.startsWith(`${ancestor}/`);
