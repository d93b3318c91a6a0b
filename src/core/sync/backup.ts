// Conflict backups: every file that differs between the two sides, both versions, copied into a
// timestamped folder of the state directory (outside both trees), listed and restorable.
import { chmod, mkdir, readdir, symlink, utimes } from 'node:fs/promises';
import * as path from 'node:path';
import { readJsonFile, writeJsonAtomic } from '../atomicFile';
import { BackupManifest, emptySyncReport } from '../protocol';
import type { RestoreResult } from '../protocol';
import type { ApplyOptions } from './apply';
import { applyRecorded } from './recordedApply';
import type { UndoRecording } from './recordedApply';
import { ancestorsOf, entriesEqual } from '../files/entry';
import { compareTrees } from './compare';
import type { Entry } from '../files/entry';
import { newSyncId, recordOutcome } from './engine';
import { listedReport } from './summary';
import { pinParent } from './beneath';
import { bytesFromName, joinBytes } from '../files/pathCodec';
import type { Change, Side } from './reconcile';
import { copyContents } from '../files/fsEntry';
import { scanTree } from './scan';
import type { AccessIdentity } from './scan';
import { SyncStateFiles } from './stateFiles';
import type { SyncStateStore } from './stateStore';

export interface BackupOptions {
  roots: Record<Side, string>;
  stateDir: string;
  excludes: readonly string[];
  allowSecrets?: readonly string[];
  /** Who gets what a restore creates on each side (see ApplyOptions). */
  owners?: ApplyOptions['owners'];
  /** The host tree is read with this user's rights only (see ScanOptions.accessAs). */
  hostAccess?: AccessIdentity;
  /** The sync's state: its scan caches spare re-hashing unchanged files (without it, every file is read). */
  store?: SyncStateStore;
}

const SIDES: readonly Side[] = ['host', 'container'];
const backupsDirectory = (stateDir: string) => path.join(stateDir, 'backups');

/** Copies both versions of every differing file or link; returns the manifest (no entries: nothing differed). */
export async function backupDifferences(options: BackupOptions): Promise<BackupManifest> {
  const manifest: BackupManifest = { id: newSyncId(), createdAt: new Date().toISOString(), entries: [] };
  const directory = path.join(backupsDirectory(options.stateDir), manifest.id);
  for (const difference of await compareTrees(options.roots, { excludes: options.excludes, allowSecrets: options.allowSecrets, store: options.store, hostAccess: options.hostAccess })) {
    const entry: BackupManifest['entries'][number] = { path: difference.path };
    for (const side of SIDES) {
      const version = difference[side];
      if (!isContent(version)) continue;
      // Read through the pinned parent (beneath.ts): a folder of /workspace swapped for a link
      // must not put what the link points at into the backup (and, restored, into /workspace).
      const source = version.kind === 'file' ? pinParent(options.roots[side], difference.path) : undefined;
      if (source && !source.ok) throw new Error(`${difference.path} changed on the ${side} side while it was backed up (parent ${source.at} ${source.code === 'parent-replaced' ? 'is no longer a folder' : 'is gone'}); run the backup again`);
      try {
        await copyVersion(source?.path ?? joinBytes(options.roots[side], difference.path), joinBytes(path.join(directory, side), difference.path), version);
      } finally {
        source?.folder.close();
      }
      entry[side] = version;
    }
    if (entry.host || entry.container) manifest.entries.push(entry);
  }
  await writeJsonAtomic(path.join(directory, 'manifest.json'), manifest);
  return manifest;
}

export async function listBackups(stateDir: string): Promise<BackupManifest[]> {
  const names = await readdir(backupsDirectory(stateDir)).catch(() => [] as string[]);
  const manifests = await Promise.all(names.map((name) => readJsonFile(path.join(backupsDirectory(stateDir), name, 'manifest.json'), BackupManifest).catch(() => undefined)));
  return manifests.filter((manifest): manifest is BackupManifest => manifest !== undefined).sort((a, b) => b.createdAt.localeCompare(a.createdAt) || (a.id < b.id ? 1 : -1));
}

/**
 * Puts one side's backed-up versions back on that side. What is there now is kept aside first,
 * like any overwrite, and a file changed since the scan is skipped and reported.
 */
export async function restoreBackup(options: BackupOptions & { id: string; side: Side; undo?: UndoRecording }): Promise<RestoreResult> {
  const directory = path.join(backupsDirectory(options.stateDir), options.id);
  const manifest = await readJsonFile(path.join(directory, 'manifest.json'), BackupManifest);
  if (!manifest) throw new Error(`no backup ${options.id}`);
  const state = new SyncStateFiles(options.stateDir);
  const decidedAt = Date.now();
  const current = await scanTree(options.roots[options.side], { excludes: options.excludes, allowSecrets: options.allowSecrets, cache: options.store?.[options.side], accessAs: options.side === 'host' ? options.hostAccess : undefined });
  const changes: Change[] = [];
  const folders = new Set<string>();
  for (const entry of manifest.entries) {
    const version = entry[options.side];
    if (!version || entriesEqual(current.snapshot.get(entry.path), version)) continue;
    const expected = current.snapshot.get(entry.path);
    changes.push({ path: entry.path, side: options.side, expected, next: version, keepLoser: expected !== undefined && expected.kind !== 'directory' ? true : undefined });
    // A folder deleted since the backup is recreated on the way, or its files had nowhere to go.
    for (const folder of ancestorsOf(entry.path)) if (!current.snapshot.has(folder)) folders.add(folder);
  }
  const depth = (change: Change) => change.path.split('/').length;
  changes.push(...[...folders].map((folder): Change => ({ path: folder, side: options.side, expected: undefined, next: { kind: 'directory', mode: 0o755 } })));
  changes.sort((a, b) => depth(a) - depth(b) || (a.path < b.path ? -1 : 1));
  const stepId = `${newSyncId()}-restore`;
  const recorded = await applyRecorded(
    changes,
    { roots: options.roots, keepDir: state.keptDirectory(stepId), owners: options.owners, decidedAt, sources: { host: path.join(directory, 'host'), container: path.join(directory, 'container') } },
    options.undo,
    { syncId: stepId, policy: `restore backup ${options.id}` },
  );
  if (recorded.denied) throw new Error(`restoring backup ${options.id} was stopped: ${recorded.denied.detail}; nothing was changed on the host`);
  // As a report: a restore of a large backup lists its first paths and counts the rest, so that its answer fits in a message.
  const report = emptySyncReport({ id: stepId, policy: 'two-way-safe', startedAt: new Date(decidedAt).toISOString() });
  recordOutcome(report, recorded.outcome);
  const { applied, appliedCount, skipped, kept, unlisted } = listedReport(report);
  return { applied, appliedCount, skipped, kept, ...(unlisted && { unlisted }) };
}

function isContent(entry: Entry | undefined): entry is Entry & { kind: 'file' | 'symlink' } {
  return entry?.kind === 'file' || entry?.kind === 'symlink';
}

async function copyVersion(source: Buffer, target: Buffer, version: Entry): Promise<void> {
  await mkdir(target.subarray(0, target.lastIndexOf(0x2f)), { recursive: true });
  if (version.kind === 'symlink') {
    await symlink(bytesFromName(version.target), target);
    return;
  }
  await copyContents(source, target);
  if (version.kind === 'file') {
    await chmod(target, version.mode);
    await utimes(target, version.mtimeMs / 1000, version.mtimeMs / 1000);
  }
}
