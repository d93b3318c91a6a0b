// Closed steps' manifests, parsed once per process. Every sync reads every step's manifest
// (limits, barriers), and UndoLog keeps them once read. The resident agent opens the log once, so
// this cache serves where a log is opened again in the same process: tests, and the benchmark,
// which opens it for each sync; parsing every manifest again, and the garbage it leaves, was most
// of opening the log (`npm run bench -- --undo` reports what opening it takes after many steps).
// A closed step's manifest changes only by being replaced through a rename (compaction, dropping
// preimages) or removed with its step, so an entry counts only while the file is still the one it
// was read from: same inode, size and times. The cache is bounded: past its size, the least
// recently used manifests are read again when needed.
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { LruMap } from '../lruMap';
import type { Manifest } from './records';

interface Entry {
  identity: string;
  bytes: number;
  manifest: Manifest;
}

export class ManifestCache {
  private readonly entries: LruMap<string, Entry>;

  constructor(maxBytes: number) {
    this.entries = new LruMap(maxBytes, (entry) => entry.bytes);
  }

  /**
   * The manifest in `file`: the one parsed before if the file has not changed since, else what
   * `read` returns (kept when it is a closed step's). Callers must not change what it returns.
   */
  async get(file: string, read: () => Promise<Manifest | undefined>): Promise<Manifest | undefined> {
    const stats = await stat(file, { bigint: true }).catch(() => undefined);
    if (!stats) {
      this.entries.delete(file);
      return read();
    }
    const identity = `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
    const known = this.entries.get(file);
    if (known?.identity === identity) return known.manifest;
    this.entries.delete(file);
    const manifest = await read();
    // Read after the stat: were the file replaced in between, the entry is keyed by the old
    // identity, which the next stat no longer finds, and the manifest is read again.
    if (manifest?.closedAt) this.entries.set(file, { identity, bytes: Number(stats.size), manifest });
    return manifest;
  }

  /** Drops the entries of `directory`'s manifests that are not among `present` (steps evicted or undone). */
  retainOnly(directory: string, present: ReadonlySet<string>): void {
    for (const file of this.entries.keys()) {
      if (path.dirname(path.dirname(file)) === directory && !present.has(file)) this.entries.delete(file);
    }
  }
}

/** Room for the manifests of a full log of ordinary steps (a 300-file step's takes about 180 KB). */
export const parsedManifests = new ManifestCache(16 * 1024 ** 2);
