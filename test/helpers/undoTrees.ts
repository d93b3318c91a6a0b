// Helpers for the undo log tests: a sample tree with every kind of entry (modes, old mtimes,
// links, extended attributes, a name that is not UTF-8), a whole-tree snapshot to compare
// before a step and after its undo, the operations a sync performs (planned by the step first),
// and the entry point of the child process the crash tests SIGKILL.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, lutimes, mkdir, readdir, readFile, readlink, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { joinBytes, nameFromBytes } from '../../src/core/files/pathCodec';
import { lstatSyncOrUndefined } from '../../src/core/files/fsEntry';
import type { ModifyAction, StepWriter } from '../../src/core/undo';
import { UndoLog } from '../../src/core/undo';
import { kindOf, subtree } from '../../src/core/undo/fsState';
import type { Before } from '../../src/core/undo/safeguards';
import type { PlannedChange } from '../../src/core/undo/stepPlan';
import type { UndoLogOptions } from '../../src/core/undo';
import { pastTimestampTick } from './syncTrees';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** A name that is not valid UTF-8 ("bin\xff.dat"), as the surrogate-escaped key the sync uses. */
export const ODD_NAME = nameFromBytes(Buffer.from([0x62, 0x69, 0x6e, 0xff, 0x2e, 0x64, 0x61, 0x74]));

export const xattrToolsInstalled = spawnSync('getfattr', ['--version']).status === 0 && spawnSync('setfattr', ['--version']).status === 0;

/**
 * Like useTempDir, on tmpfs (/dev/shm) when there is one: the log fsyncs every capture, which on
 * a busy disk costs far more than the tests themselves, and a SIGKILL (what these tests simulate)
 * loses nothing that fsync would have saved. Same semantics otherwise (xattrs, ns mtimes).
 */
export function useUndoTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(fastTemporaryRoot(), prefix));
  });
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (dir === undefined) throw new Error('useUndoTempDir: the directory exists only while a test runs');
    return dir;
  };
}

export function fastTemporaryRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

// ---------------------------------------------------------------------------------------------
// The sample tree

type Spec = string | Buffer | { dir: true; mode?: number } | { content: string | Buffer; mode: number } | { link: string };

export const SAMPLE: Record<string, Spec> = {
  'README.md': 'readme\n',
  src: { dir: true, mode: 0o755 },
  'src/a.ts': 'export const a = 1;\n',
  'src/b.ts': 'export const b = 2;\n',
  'src/run.sh': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  'src/deep': { dir: true },
  'src/deep/x': { dir: true },
  'src/deep/x/y.txt': 'y\n',
  'src/deep/z.txt': 'z\n',
  docs: { dir: true },
  'docs/guide.md': '# Guide\n',
  'docs/img.bin': Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919) % 256)),
  link: { link: 'src/a.ts' },
  dirlink: { link: 'src' },
  private: { dir: true, mode: 0o700 },
  'private/secret.txt': { content: 'secret\n', mode: 0o600 },
  [ODD_NAME]: 'odd name\n',
};

/**
 * Writes the spec under `root` (which must exist), then gives every entry a distinct old mtime
 * with a fractional millisecond, deepest first so that setting a child's time does not move its
 * folder's, and extended attributes where the tools exist.
 */
export async function makeTree(root: string, spec: Record<string, Spec> = SAMPLE): Promise<void> {
  for (const [key, value] of Object.entries(spec)) {
    const target = joinBytes(root, key);
    if (typeof value === 'string' || Buffer.isBuffer(value)) await writeFile(target, value);
    else if ('dir' in value) await mkdir(target, { mode: value.mode ?? 0o755 });
    else if ('link' in value) await symlink(value.link, target);
    else await writeFile(target, value.content);
    if (typeof value === 'object' && !Buffer.isBuffer(value) && 'mode' in value && value.mode !== undefined) await chmod(target, value.mode);
  }
  if (xattrToolsInstalled) {
    setXattr(root, 'src/a.ts', 'user.origin', 'host');
    setXattr(root, 'docs', 'user.folder', 'documentation');
    setXattr(root, 'link', 'trusted.link', 'kept', true);
  }
  const keys = ['', ...Object.keys(spec)].sort((a, b) => depth(b) - depth(a));
  for (const [index, key] of keys.entries()) {
    const seconds = 1_600_000_000 + index * 1000 + 0.123456;
    await lutimes(joinBytes(root, key), seconds, seconds);
  }
}

export function setXattr(root: string, key: string, name: string, value: string, noDereference = false): void {
  const result = spawnSync('setfattr', [...(noDereference ? ['-h'] : []), '-n', name, '-v', value, joinBytes(root, key).toString('utf8')]);
  assert.equal(result.status, 0, `setfattr ${name} on ${key}: ${result.stderr}`);
}

const depth = (key: string): number => (key === '' ? -1 : key.split('/').length);

// ---------------------------------------------------------------------------------------------
// Whole-tree snapshots

export interface EntryState {
  kind: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  mtimeMs: number;
  /** sha256 of the content (files), the target (links). */
  content?: string;
  xattrs?: string;
}

export type TreeState = Map<string, EntryState>;

/** Every entry under root, the root itself as "". */
export async function snapshotTree(root: string): Promise<TreeState> {
  const state: TreeState = new Map();
  const xattrs = xattrToolsInstalled ? xattrDump(root) : new Map<string, string>();
  const visit = async (key: string): Promise<void> => {
    const target = joinBytes(root, key);
    const stats = await lstat(target);
    const entry: EntryState = { kind: stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : stats.isSymbolicLink() ? 'symlink' : 'other', mode: stats.mode & 0o7777, mtimeMs: stats.mtimeMs };
    if (entry.kind === 'file') entry.content = createHash('sha256').update(await readFile(target)).digest('hex');
    if (entry.kind === 'symlink') entry.content = nameFromBytes(await readlink(target, { encoding: 'buffer' }));
    const attributes = xattrs.get(target.toString('latin1'));
    if (attributes) entry.xattrs = attributes;
    state.set(key, entry);
    if (entry.kind === 'directory') {
      for (const name of await readdir(target, { encoding: 'buffer' })) await visit(key === '' ? nameFromBytes(name) : `${key}/${nameFromBytes(name)}`);
    }
  };
  await visit('');
  return state;
}

/** getfattr -R over the tree, keyed by the path's bytes (latin1). */
function xattrDump(root: string): Map<string, string> {
  const result = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', root], { encoding: 'latin1' });
  const dump = new Map<string, string>();
  for (const block of result.stdout.split('\n\n')) {
    const lines = block.split('\n').filter(Boolean);
    const file = lines.shift();
    if (!file?.startsWith('# file: ')) continue;
    dump.set(unescapeGetfattr(file.slice('# file: '.length)), lines.sort().join('\n'));
  }
  return dump;
}

/** getfattr writes bytes it finds unprintable as \ooo. */
const unescapeGetfattr = (name: string): string => name.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

export const withoutXattrs = (tree: TreeState): TreeState => new Map([...tree].map(([key, entry]) => [key, { ...entry, xattrs: undefined }]));

/** Asserts two snapshots are the same tree: kinds, contents, link targets, modes, xattrs, and mtimes within `toleranceMs`. */
export function assertSameTree(actual: TreeState, expected: TreeState, toleranceMs = 0.05): void {
  const problems: string[] = [];
  for (const [key, want] of expected) {
    const got = actual.get(key);
    const label = key === '' ? '(root)' : key;
    if (!got) {
      problems.push(`${label}: missing`);
      continue;
    }
    if (got.kind !== want.kind) problems.push(`${label}: ${got.kind}, expected ${want.kind}`);
    else if (got.content !== want.content) problems.push(`${label}: ${want.kind === 'symlink' ? `target ${got.content}, expected ${want.content}` : 'content differs'}`);
    if (got.kind !== 'symlink' && got.mode !== want.mode) problems.push(`${label}: mode ${got.mode.toString(8)}, expected ${want.mode.toString(8)}`);
    if (Math.abs(got.mtimeMs - want.mtimeMs) > toleranceMs) problems.push(`${label}: mtime ${new Date(got.mtimeMs).toISOString()}, expected ${new Date(want.mtimeMs).toISOString()}`);
    if ((got.xattrs ?? '') !== (want.xattrs ?? '')) problems.push(`${label}: xattrs ${JSON.stringify(got.xattrs)}, expected ${JSON.stringify(want.xattrs)}`);
  }
  for (const key of actual.keys()) if (!expected.has(key)) problems.push(`${key}: unexpected`);
  assert.deepEqual(problems, [], `trees differ:\n  ${problems.join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------
// A workspace for one test: the tree, the log's directory and its kept folder

export interface Workspace {
  root: string;
  undoDir: string;
  keptDir: string;
}

export async function makeWorkspace(base: string, spec: Record<string, Spec> = SAMPLE): Promise<Workspace> {
  const workspace = { root: path.join(base, 'host'), undoDir: path.join(base, 'state', 'undo'), keptDir: path.join(base, 'state', 'kept') };
  await mkdir(workspace.root);
  await makeTree(workspace.root, spec);
  return workspace;
}

export async function openLog(workspace: Workspace, options: Partial<UndoLogOptions> = {}): Promise<UndoLog> {
  return (await UndoLog.open(workspace.undoDir, { keptDirectory: workspace.keptDir, ...options })).log;
}

/** A sample workspace (SAMPLE) with an undo log, made afresh before each test; `before` is its snapshot then. */
export interface UndoSample {
  workspace: Workspace;
  log: UndoLog;
  before: TreeState;
}

/** Registers the beforeEach that fills the returned sample (a test may take `before` again). */
export function useUndoSample(prefix: string): UndoSample {
  const tempDir = useUndoTempDir(prefix);
  const sample = {} as UndoSample;
  beforeEach(async () => {
    sample.workspace = await makeWorkspace(tempDir());
    sample.log = await openLog(sample.workspace);
    sample.before = await snapshotTree(sample.workspace.root);
    // A tick after the tree was made, so that a capture of it vouches for it (isRacy).
    await pastTimestampTick();
  });
  return sample;
}

/** Undoes `steps` steps and checks the whole tree is back to the sample's `before`, and the log is empty. */
export async function undoAndCompare(sample: UndoSample, steps = 1): Promise<void> {
  const result = await sample.log.undo({ steps, force: false, root: sample.workspace.root });
  assert.equal(result.refused, undefined, result.refused);
  assert.deepEqual(result.problems, []);
  assert.equal(result.undone.length, steps);
  assertSameTree(await snapshotTree(sample.workspace.root), sample.before);
  assert.deepEqual(await sample.log.list(), [], 'undone steps leave the log');
}

/** Runs `change` as one step and closes it. */
export async function step(log: UndoLog, workspace: Workspace, change: (writer: StepWriter) => Promise<void>, syncId = 'sync'): Promise<Awaited<ReturnType<StepWriter['close']>>> {
  const writer = await log.beginStep({ syncId, policy: 'two-way-safe', root: workspace.root });
  await change(writer);
  return writer.close();
}

// ---------------------------------------------------------------------------------------------
// What a sync does to a path, announced to the step first

const temporaryNear = (target: Buffer): Buffer => Buffer.concat([target.subarray(0, target.lastIndexOf(0x2f) + 1), Buffer.from(`.clud-sync-${randomBytes(6).toString('hex')}.tmp`)]);

/**
 * As a sync makes a change: the step plans it (its questions asked, its preimages captured), each
 * path is checked at its change with what is there just before (its lstat), the change is made,
 * and the step is told it was carried out. `touched`: the paths the change makes or removes, in
 * the order of the plan (a folder removed whole brings everything inside it, deepest first, as
 * reconcile deletes a tree).
 */
async function planAndMake(writer: StepWriter, root: string, touched: ReadonlyArray<readonly [string, ModifyAction]>, make: () => Promise<unknown>): Promise<void> {
  await writer.prepare(touched.map(([key, action]) => plannedChange(root, key, action)));
  for (const [key] of touched) await writer.beforeModify(key, lstatSyncOrUndefined(joinBytes(root, key)));
  await make();
  for (const [key] of touched) writer.markChanged(key);
}

/** As a sync readies a change of `key` (planned, captured, checked at the change) and has not made it yet. */
export async function readyChange(writer: StepWriter, root: string, key: string, action: ModifyAction = 'write'): Promise<void> {
  await writer.prepare([plannedChange(root, key, action)]);
  await writer.beforeModify(key, lstatSyncOrUndefined(joinBytes(root, key)));
}

/** The change of `key` as a plan takes it: with what is there now, as a scan would have seen it. */
export function plannedChange(root: string, key: string, action: ModifyAction): PlannedChange {
  const stats = lstatSyncOrUndefined(joinBytes(root, key));
  const before: Before | undefined = stats && { kind: kindOf(stats) as Before['kind'], size: stats.size };
  return { path: key, action, ...(before && { before }) };
}

/** `key` and, when it is a folder, everything inside it, deepest first. */
async function withInside(root: string, key: string, action: ModifyAction): Promise<Array<readonly [string, ModifyAction]>> {
  const inside = lstatSyncOrUndefined(joinBytes(root, key))?.isDirectory() ? await subtree(root, key) : [];
  return [...inside.reverse().map(([inner]) => [inner, action] as const), [key, action] as const];
}

export const ops = {
  /** Like apply: stage a temporary sibling, then rename it over the target. */
  write(writer: StepWriter, root: string, key: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const target = joinBytes(root, key);
    return planAndMake(writer, root, [[key, 'write']], async () => {
      const staged = temporaryNear(target);
      await writeFile(staged, content, { mode });
      await chmod(staged, mode);
      await rename(staged, target);
    });
  },
  mkdir(writer: StepWriter, root: string, key: string, mode = 0o755): Promise<void> {
    return planAndMake(writer, root, [[key, 'write']], () => mkdir(joinBytes(root, key), { mode }));
  },
  /** A file, a link, or a whole folder at once. */
  async delete(writer: StepWriter, root: string, key: string): Promise<void> {
    return planAndMake(writer, root, await withInside(root, key, 'delete'), () => rm(joinBytes(root, key), { recursive: true }));
  },
  /** A folder renamed takes everything inside it along: gone from under `from`, created under `to`. */
  async rename(writer: StepWriter, root: string, from: string, to: string): Promise<void> {
    const sources = await withInside(root, from, 'rename-source');
    const arriving = sources.slice(0, -1).reverse().map(([key]) => [`${to}${key.slice(from.length)}`, 'write'] as const);
    return planAndMake(writer, root, [...sources, [to, 'rename-target'], ...arriving], () => rename(joinBytes(root, from), joinBytes(root, to)));
  },
  chmod(writer: StepWriter, root: string, key: string, mode: number): Promise<void> {
    return planAndMake(writer, root, [[key, 'chmod']], () => chmod(joinBytes(root, key), mode));
  },
  truncate(writer: StepWriter, root: string, key: string, length: number): Promise<void> {
    return planAndMake(writer, root, [[key, 'truncate']], () => truncate(joinBytes(root, key), length));
  },
  symlink(writer: StepWriter, root: string, key: string, target: string): Promise<void> {
    const link = joinBytes(root, key);
    return planAndMake(writer, root, [[key, 'write']], async () => {
      const staged = temporaryNear(link);
      await symlink(target, staged);
      await rename(staged, link);
    });
  },
};

/** Eight modifications of the sample tree covering every kind of change, for the crash tests. */
export const MIXED_CHANGES: Array<(writer: StepWriter, root: string) => Promise<void>> = [
  (writer, root) => ops.write(writer, root, 'src/a.ts', 'export const a = 42;\n'),
  async (writer, root) => {
    await ops.mkdir(writer, root, 'new');
    await ops.mkdir(writer, root, 'new/dir');
    await ops.write(writer, root, 'new/dir/file.txt', 'new\n');
  },
  (writer, root) => ops.delete(writer, root, 'src/b.ts'),
  (writer, root) => ops.delete(writer, root, 'src/deep'),
  (writer, root) => ops.chmod(writer, root, 'src/run.sh', 0o644),
  (writer, root) => ops.symlink(writer, root, 'link', 'docs/guide.md'),
  (writer, root) => ops.rename(writer, root, 'docs/guide.md', 'docs/guide-renamed.md'),
  (writer, root) => ops.truncate(writer, root, 'docs/img.bin', 10),
];

// ---------------------------------------------------------------------------------------------
// Crash child: runs MIXED_CHANGES as one step and SIGKILLs itself at a chosen point

/**
 * Kill points: "captured-<i>" (change i planned and captured, not carried out), "after-<k>"
 * (k changes done, step still open), "staged" (change 0 captured and its temporary sibling
 * staged), "before-promote" (all done, manifest written, not yet promoted), "none" (no kill).
 */
export type KillPoint = `captured-${number}` | `after-${number}` | 'staged' | 'before-promote' | 'none';

/** Bundles this file into one plain script (once per run), so that each crash child starts in milliseconds, not via tsx. */
export async function buildCrashChild(outDirectory: string): Promise<string> {
  const esbuild = await import('esbuild');
  const outfile = path.join(outDirectory, 'undo-crash-child.cjs');
  const options = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'error' } as const;
  // The capture worker's code goes into the bundle as in esbuild.mjs (see packWorker.ts).
  const worker = await esbuild.build({ ...options, entryPoints: [path.join(REPO_ROOT, 'src/core/undo/packWorkerThread.ts')], write: false, outfile: 'pack-worker.js' });
  const define = { PACK_WORKER_BUNDLE: JSON.stringify(worker.outputFiles[0]!.text) };
  await esbuild.build({ ...options, entryPoints: [__filename], outfile, define, external: ['tsx/cjs'] });
  return outfile;
}

export function runCrashChild(script: string, workspace: Workspace, killAt: KillPoint, env: NodeJS.ProcessEnv = process.env): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--undo-crash-child', JSON.stringify({ workspace, killAt })], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve({ signal, stderr }));
  });
}

async function crashChild(workspace: Workspace, killAt: KillPoint): Promise<void> {
  const die = (): never => {
    process.kill(process.pid, 'SIGKILL');
    throw new Error('unreachable');
  };
  const log = await openLog(workspace, { hooks: { beforePromote: () => (killAt === 'before-promote' ? die() : undefined) } });
  const writer = await log.beginStep({ syncId: 'crash', policy: 'pull', root: workspace.root });
  const ready = (key: string) => readyChange(writer, workspace.root, key);
  if (killAt === 'staged') {
    await ready('src/a.ts');
    await writeFile(temporaryNear(joinBytes(workspace.root, 'src/a.ts')), 'half written');
    die();
  }
  for (const [index, change] of MIXED_CHANGES.entries()) {
    if (killAt === `after-${index}`) die();
    if (killAt === `captured-${index}`) {
      await ready(FIRST_PATHS[index]!);
      die();
    }
    await change(writer, workspace.root);
  }
  if (killAt === `after-${MIXED_CHANGES.length}`) die();
  await writer.close();
}

/** The first path each of MIXED_CHANGES touches. */
const FIRST_PATHS = ['src/a.ts', 'new', 'src/b.ts', 'src/deep', 'src/run.sh', 'link', 'docs/guide.md', 'docs/img.bin'];

if (process.argv[2] === '--undo-crash-child') {
  const { workspace, killAt } = JSON.parse(process.argv[3]!) as { workspace: Workspace; killAt: KillPoint };
  crashChild(workspace, killAt).then(
    () => process.exit(0),
    (error: Error) => {
      process.stderr.write(`${error.stack}\n`);
      process.exit(1);
    },
  );
}
