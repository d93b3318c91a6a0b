// The manifest a step writer writes: what the caller and the log said about the step (StepMeta,
// WriterContext), with the records its captures came to. An open step's folder holds it as a
// header without records; a closed step's, with every record (written through manifestText, see
// records.ts); a step over the single-step limit's, without records, as one that cannot be undone.
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { writeJsonAtomic } from '../atomicFile';
import type { Manifest } from './records';
import { MANIFEST, UNDO_FORMAT_VERSION } from './records';
import type { StepMeta } from './types';

/** What every manifest of a step says about it. */
export interface StepHeader extends Pick<StepMeta, 'syncId' | 'policy' | 'root'> {
  id: string;
  startedAt: string;
  notes: readonly string[];
  /** Paths whose extended attributes could not be captured (a note says how many). */
  xattrFailures: number;
  /** Bytes of the step's records so far. */
  bytes: number;
}

export function stepManifest(step: StepHeader, fields: Pick<Manifest, 'records' | 'paths'> & { closedAt?: string }): Manifest {
  const notes = [...step.notes];
  if (step.xattrFailures > 0) notes.push(`extended attributes of ${step.xattrFailures} path(s) could not be captured`);
  const { id, syncId, policy, root, startedAt, bytes } = step;
  return { version: UNDO_FORMAT_VERSION, id, syncId, policy, root, startedAt, protected: true, bytes, notes, ...fields };
}

/**
 * Closes the step in `directory` as one that cannot be undone (`reason`): a manifest without
 * records, counting `paths` changed. Returns it with the bytes the step's folder takes.
 */
export async function writeUnprotectedManifest(directory: string, step: StepHeader, reason: string, paths: number): Promise<Manifest> {
  const manifest: Manifest = { ...stepManifest(step, { closedAt: new Date().toISOString(), records: [], paths }), protected: false, unprotectedReason: reason };
  await writeJsonAtomic(path.join(directory, MANIFEST), manifest);
  manifest.bytes = await folderBytes(directory);
  return manifest;
}

async function folderBytes(directory: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(directory).catch(() => [] as string[])) total += (await stat(path.join(directory, name)).catch(() => undefined))?.size ?? 0;
  return total;
}
