// Shared helpers of the integration tests: they run the real `clud` CLI (dist/cli.js) and the
// Workspace class against the real Docker engine. Nothing here is mocked.
//   npm run build && npx mocha --timeout 600000 'test/integration/**/*.test.ts'
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lchown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import { buildSync } from 'esbuild';
import { configFromEnvironment, parseConfig } from '../../src/core/host/config';
import type { CludConfigInput } from '../../src/core/host/config';
import { CONTAINER_STATE_PATH, CONTAINER_WORKSPACE_PATH, LABEL_HOST_PATH, WORKSPACE_USER, agentVolumeName } from '../../src/core/containerLayout';
import { SyncReport } from '../../src/core/protocol';
import { DockerodeEngine } from '../../src/core/docker/dockerodeEngine';
import { containerNameFor } from '../../src/core/host/hostPath';
import { Workspace } from '../../src/core/host/workspace';
import type { WorkspaceProgress } from '../../src/core/host/workspace';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const CLI_PATH = path.join(REPO_ROOT, 'dist', 'cli.js');
export const AGENT_BUNDLE_PATH = path.join(REPO_ROOT, 'dist', 'agent.js');
export const CONTAINER_DIR = path.join(REPO_ROOT, 'container');
export const BASE_IMAGE = 'debian:trixie-slim';

/** The machine sits behind a TLS-inspecting proxy: every test trusts its CA bundle (a user feature). */
export const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/**
 * The tests build and run their own image tag, so they neither replace a developer's
 * niteris/clud:latest nor rebuild back and forth with other people's `clud up` on this engine.
 * Every `up` of the suite uses the same build context, so the first one builds it and the others
 * reuse it (its content-hash label matches). CLUD_TEST_IMAGE names another tag, so that two
 * checkouts testing on one engine do not rebuild each other's image.
 */
export const TEST_IMAGE = process.env.CLUD_TEST_IMAGE ?? 'clud-integration:latest';
/**
 * Clud keeps each workspace's sync state in a host folder that outlives the container
 * (CLUD_STATE_DIR, else ~/.local/state/clud). The tests keep theirs in one temp folder, removed
 * when the test process exits, instead of littering the home folder of whoever runs them.
 */
export const TEST_STATE_ROOT = mkdtempSync(path.join(os.tmpdir(), 'clud-it-state-'));
process.once('exit', () => rmSync(TEST_STATE_ROOT, { recursive: true, force: true }));
/** Auto-sync is off unless a test turns it on: the other tests decide when a sync runs. */
export const TEST_ENV: Record<string, string> = { CLUD_EXTRA_CA_CERTIFICATES: HOST_CA_BUNDLE, CLUD_IMAGE: TEST_IMAGE, CLUD_STATE_DIR: TEST_STATE_ROOT, CLUD_AUTO_SYNC: 'off' };

/**
 * A real user's project folder belongs to that user, not to root. The tests run as root, and
 * `clud` gives the workspace user the UID/GID of the folder's owner (a root-owned folder keeps the
 * image's UID and only gets a warning), so every temp project is handed to UID/GID 1000, the
 * first user of a typical Linux machine, before `clud up`.
 */
export const USER_UID = 1000;
export const USER_GID = 1000;

export const docker = new Docker();

/** Per describe block: the first `up` of a run may build the image (apt-get inside). */
export const INTEGRATION_TIMEOUT_MS = 600_000;

const PROVISION_HINT = 'Run `bash scripts/provision.sh` (as root) to install and start Docker and import the base image, then run the tests again.';

/**
 * Fails loudly when the engine does not answer or the build is missing. Integration tests are never
 * skipped for want of Docker: a suite that silently skips proves nothing.
 */
export async function requireDocker(): Promise<void> {
  try {
    await withTimeout(docker.ping(), 10_000, 'docker ping');
  } catch (error) {
    throw new Error(`The Docker engine does not answer (${error instanceof Error ? error.message : String(error)}). ${PROVISION_HINT}`);
  }
  try {
    await docker.getImage(BASE_IMAGE).inspect();
  } catch {
    throw new Error(`The base image ${BASE_IMAGE} is not on this Docker engine. ${PROVISION_HINT}`);
  }
  for (const file of [CLI_PATH, AGENT_BUNDLE_PATH]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` before the integration tests.`);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Temp projects and cleanup

export type ProjectEntry = string | Buffer | { content: string | Buffer; mode: number } | { symlink: string };
export type ProjectFiles = Record<string, ProjectEntry>;

/** Writes `files` (relative POSIX paths) under `root`, creating parent folders. */
export async function writeTree(root: string, files: ProjectFiles): Promise<void> {
  for (const [relative, entry] of Object.entries(files)) {
    const file = path.join(root, relative);
    await mkdir(path.dirname(file), { recursive: true });
    if (typeof entry === 'string' || Buffer.isBuffer(entry)) {
      await writeFile(file, entry);
    } else if ('symlink' in entry) {
      await symlink(entry.symlink, file);
    } else {
      await writeFile(file, entry.content);
      await chmod(file, entry.mode);
    }
  }
}

/** `chown -R uid:gid root`, without following symlinks. */
export async function chownTree(root: string, uid = USER_UID, gid = USER_GID): Promise<void> {
  await lchown(root, uid, gid);
  for (const name of await readdir(root)) {
    const file = path.join(root, name);
    const info = await lstat(file);
    if (info.isDirectory()) await chownTree(file, uid, gid);
    else await lchown(file, uid, gid);
  }
}

/**
 * Per-describe bookkeeping: every temp folder and every container a test makes is registered here
 * and removed by `cleanup()` in an `after`/`afterEach` hook, whether the tests passed or not.
 */
export class TestScope {
  private readonly dirs: string[] = [];
  private readonly containerNames = new Set<string>();
  /** Project folders, whose derived container names name their agent state volumes. */
  private readonly projects: string[] = [];

  /**
   * A fresh project folder under os.tmpdir(), owned by `owner` (see USER_UID). With `name`, the
   * folder has that base name, inside a fresh temp folder of its own.
   */
  async project(files: ProjectFiles = {}, options: { owner?: { uid: number; gid: number }; name?: string } = {}): Promise<string> {
    let dir: string;
    if (options.name !== undefined) {
      dir = path.join(await this.tempDir(), options.name);
      await mkdir(dir);
    } else {
      dir = await this.tempDir();
    }
    this.projects.push(dir);
    await writeTree(dir, files);
    const owner = options.owner ?? { uid: USER_UID, gid: USER_GID };
    await chownTree(dir, owner.uid, owner.gid);
    return dir;
  }

  /** An empty temp folder (removed by cleanup), for paths that must not exist or as a parent. */
  async tempDir(): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clud-it-'));
    this.dirs.push(dir);
    return dir;
  }

  /** A container that the test made under a name it chose (found by label otherwise). */
  trackContainer(name: string): void {
    this.containerNames.add(name);
  }

  /** Removes every container made for this scope's folders or tracked by name, then the folders. */
  async cleanup(): Promise<void> {
    const failures: string[] = [];
    const ids = new Set<string>();
    if (this.dirs.length === 0 && this.containerNames.size === 0) return;
    const all = await docker.listContainers({ all: true }).catch((error: unknown) => {
      failures.push(`list containers: ${String(error)}`);
      return [];
    });
    for (const info of all) {
      const owner = info.Labels?.[LABEL_HOST_PATH];
      // Folders made inside a temp dir (options.name) are covered by the prefix match.
      if (owner !== undefined && this.dirs.some((dir) => owner === dir || owner.startsWith(dir + path.sep))) ids.add(info.Id);
    }
    for (const name of this.containerNames) {
      const info = await docker.getContainer(name).inspect().catch(() => undefined);
      if (info) ids.add(info.Id);
    }
    const volumes: string[] = [];
    for (const info of all) if (ids.has(info.Id)) volumes.push(...info.Names.map((name) => agentVolumeName(name.replace(/^\//, ''))));
    for (const name of this.containerNames) volumes.push(agentVolumeName(name));
    // A test's own `clud down` removes the container but, by design, not its volume.
    for (const project of this.projects.splice(0)) volumes.push(agentVolumeName(containerNameFor(project, 'linux')));
    for (const id of ids) {
      await docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch((error: unknown) => {
          if ((error as { statusCode?: number }).statusCode !== 404) failures.push(`remove container ${id}: ${String(error)}`);
        });
    }
    // The coding agent's state volume outlives its container by design; the tests' do not.
    for (const volume of volumes) await docker.getVolume(volume).remove().catch(() => {});
    for (const dir of this.dirs.splice(0)) {
      await rm(dir, { recursive: true, force: true }).catch((error: unknown) => failures.push(`remove ${dir}: ${String(error)}`));
    }
    this.containerNames.clear();
    if (failures.length) throw new Error(`cleanup failed:\n${failures.join('\n')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Running the CLI

export interface CludRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The command line, for assertion messages. */
  command: string;
}

export interface CludRunOptions {
  cwd?: string;
  /** Added to (or, with value undefined, removed from) the environment. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** The whole standard input (default: none). */
  input?: string;
}

/**
 * execa 9 is ESM-only and its dependencies export only an "import" condition, which tsx's CommonJS
 * transform of a static import cannot resolve; a dynamic import loads it as ESM.
 */
function loadExeca(): Promise<typeof import('execa')> {
  return import('execa');
}

function cludEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = { ...process.env, ...TEST_ENV };
  // Progress lines on stderr would break the "one line on stderr" checks of --json runs.
  delete env.CLUD_PROGRESS;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** Starts `node dist/cli.js ...args` in the background; `stop()` kills it and waits for it. */
export async function startClud(args: string[], options: CludRunOptions = {}): Promise<{ stop(): Promise<void> }> {
  const { execa } = await loadExeca();
  const child = execa('node', [CLI_PATH, ...args], { reject: false, extendEnv: false, env: cludEnv(options.env), cwd: options.cwd ?? REPO_ROOT, stdio: 'ignore' });
  return {
    async stop() {
      child.kill();
      await child;
    },
  };
}

/** Runs `node dist/cli.js ...args` with the test environment; never throws for a non-zero exit. */
export async function runClud(args: string[], options: CludRunOptions = {}): Promise<CludRun> {
  const { execa } = await loadExeca();
  const result = await execa('node', [CLI_PATH, ...args], {
    reject: false,
    extendEnv: false,
    env: cludEnv(options.env),
    cwd: options.cwd ?? REPO_ROOT,
    timeout: options.timeoutMs ?? 300_000,
    ...(options.input !== undefined && { input: options.input }),
    stripFinalNewline: false,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    command: `clud ${args.join(' ')}`,
  };
}

/** Describes a run for assertion messages. */
export function describeRun(run: CludRun): string {
  return `${run.command} exited ${run.exitCode}\n--- stdout:\n${run.stdout.slice(0, 4000)}\n--- stderr:\n${run.stderr.slice(0, 4000)}`;
}

/** stdout must be exactly one line holding one JSON object; returns it. */
export function singleJsonObject(run: CludRun): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((line) => line.length > 0);
  assert.equal(lines.length, 1, `expected exactly one line of JSON on stdout\n${describeRun(run)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(lines[0]!);
  } catch {
    assert.fail(`stdout is not JSON\n${describeRun(run)}`);
  }
  assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `stdout is not a JSON object\n${describeRun(run)}`);
  return parsed as Record<string, unknown>;
}

/** `clud ...args --json`, parsed: asserts one JSON object on stdout. */
export async function runCludJson(args: string[], options: CludRunOptions = {}): Promise<{ run: CludRun; json: Record<string, unknown> }> {
  const run = await runClud([...args, '--json'], options);
  return { run, json: singleJsonObject(run) };
}

/** Asserts the run exited with `exitCode`. */
export function assertExit(run: CludRun, exitCode: number): void {
  assert.equal(run.exitCode, exitCode, `unexpected exit code\n${describeRun(run)}`);
}

/** `clud up DIR --json` that must succeed with the initial copy ready. */
/** An API key, as `clud up --api-key -` reads it: on standard input, kept out of argv. */
export const apiKeyInput = (key: string): CludRunOptions => ({ input: `${key}\n`, timeoutMs: 1_200_000 });

export async function cludUp(dir: string, extraArgs: string[] = [], options: CludRunOptions = {}): Promise<Record<string, unknown>> {
  const { run, json } = await runCludJson(['up', dir, ...extraArgs], options);
  assertExit(run, 0);
  assert.equal((json.init as { phase?: string } | undefined)?.phase, 'ready', `init is not ready\n${describeRun(run)}`);
  return json;
}

/** One of Claude Code's hooks in DIR's container, as Claude Code runs it: `agent hook EVENT` with its JSON on stdin. */
export function runClaudeHook(dir: string, event: string, input: object = {}, options: Pick<CludRunOptions, 'timeoutMs'> = {}): Promise<CludRun> {
  return runClud(['exec', dir, '-i', '--', 'node', '/opt/clud/agent.js', 'hook', event], { ...options, input: JSON.stringify({ hook_event_name: event, ...input }) });
}

/** `clud exec DIR -- sh -c SCRIPT`, which must exit 0; returns its stdout. */
export async function execSh(dir: string, script: string): Promise<string> {
  const run = await runClud(['exec', dir, '--', 'sh', '-c', script]);
  assertExit(run, 0);
  return run.stdout;
}

/** Writes `content` to `file` (an absolute path, its folder made first) in DIR's container, as the workspace user. */
export async function writeContainerFile(dir: string, file: string, content: string): Promise<void> {
  const run = await runClud(['exec', dir, '-i', '--', 'sh', '-c', `mkdir -p "$(dirname ${shellQuote(file)})" && cat > ${shellQuote(file)}`], { input: content });
  assertExit(run, 0);
}

/** A program of test/helpers (its entry point) as one CommonJS script, which the container's Node runs as the host's does. */
export function helperProgram(entry: string): string {
  return buildSync({ entryPoints: [path.join(__dirname, entry)], bundle: true, platform: 'node', format: 'cjs', target: 'node20', write: false }).outputFiles[0]!.text;
}

/** Runs Node with `args` as the folder's owner (USER_UID), as a user's own program would; its standard output, once it exited 0. */
export function runNodeAsOwner(args: readonly string[], what: string): Promise<string> {
  const child = spawn(process.execPath, args, { uid: USER_UID, gid: USER_GID, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${what} exited ${code}: ${stderr}`))));
  });
}

/** `metrics` of `clud push|pull|sync|resolve|resume DIR --json` (see src/cli/commands/syncCommand.ts). */
export interface SyncMetrics {
  durationMs: number;
  /** Entries created or updated (directories included). */
  filesTransferred: number;
  filesDeleted: number;
  bytesTransferred: number;
  conflicts: number;
  errors: string[];
  retries: number;
}

/** The one JSON object of a sync command: `report` is the agent's SyncReport. */
export interface SyncOutput {
  ok: boolean;
  metrics: SyncMetrics;
  report: SyncReport;
}

export type SyncCommand = 'push' | 'pull' | 'sync' | 'resume' | 'resolve';

/** `clud COMMAND DIR ...args --json`, whatever its exit code; the output must be a sync result. */
export async function runCludSync(command: SyncCommand, dir: string, args: string[] = []): Promise<{ run: CludRun; output: SyncOutput }> {
  const { run, json } = await runCludJson([command, dir, ...args]);
  // The shape scripts rely on: { ok, metrics: {...8 numbers and lists}, report: SyncReport }.
  assert.deepEqual(Object.keys(json).sort(), ['metrics', 'ok', 'report'], `not a sync result\n${describeRun(run)}`);
  const metrics = json.metrics as SyncMetrics;
  assert.deepEqual(Object.keys(metrics).sort(), ['bytesTransferred', 'conflicts', 'durationMs', 'errors', 'filesDeleted', 'filesTransferred', 'problems', 'retries'], describeRun(run));
  const parsed = SyncReport.safeParse(json.report);
  assert.ok(parsed.success, `report is not a SyncReport: ${parsed.error?.message}\n${describeRun(run)}`);
  const report = parsed.data;
  assert.equal(json.ok, run.exitCode === 0, `ok disagrees with the exit code\n${describeRun(run)}`);
  assert.equal(json.ok, !report.halted && !report.denied && report.skipped.length === 0, describeRun(run));
  assert.deepEqual(
    [metrics.durationMs, metrics.bytesTransferred, metrics.conflicts, metrics.retries],
    [report.durationMs, report.bytesCopied, report.conflicts.length + (report.unlisted?.conflicts ?? 0), report.retries],
    `metrics disagree with the report\n${describeRun(run)}`,
  );
  return { run, output: { ok: json.ok as boolean, metrics, report } };
}

/** `clud COMMAND DIR ...args --json` that must succeed (exit 0, ok, nothing halted, denied or skipped). */
export async function cludSync(command: SyncCommand, dir: string, args: string[] = []): Promise<SyncOutput> {
  const { run, output } = await runCludSync(command, dir, args);
  assertExit(run, 0);
  assert.equal(output.ok, true, describeRun(run));
  assert.equal(output.report.halted, undefined, describeRun(run));
  assert.equal(output.report.denied, undefined, describeRun(run));
  assert.deepEqual(output.report.skipped, [], describeRun(run));
  return output;
}

/** A folder owned by the test user, its container up, and a first sync that must find nothing to do. */
export async function syncedProject(scope: TestScope, files: ProjectFiles): Promise<string> {
  const dir = await scope.project(files);
  await cludUp(dir);
  const { report } = await cludSync('sync', dir);
  assert.deepEqual(appliedChanges(report), [], 'the first sync after the initial copy changed something');
  assert.deepEqual(report.conflicts, []);
  return dir;
}

/** Writes host files as the folder's owner would. */
export async function writeHost(dir: string, files: ProjectFiles): Promise<void> {
  await writeTree(dir, files);
  await chownTree(dir, USER_UID, USER_GID);
}

/** Single-quoted for sh. */
export const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/** Writes files in /workspace as the workspace user (parents created). */
export async function writeContainer(dir: string, files: Record<string, string>): Promise<void> {
  const script = Object.entries(files)
    .map(([relative, content]) => `mkdir -p "$(dirname ${shellQuote(relative)})" && printf %s ${shellQuote(content)} > ${shellQuote(relative)}`)
    .join(' && ');
  await execSh(dir, script);
}

/** What a sync changed, as "side action path" lines, sorted (e.g. "host create notes/a.txt"). */
export function appliedChanges(report: SyncReport): string[] {
  return report.applied.map((change) => `${change.side} ${change.action} ${change.path}`).sort();
}

/** The paths a sync changed on either side, sorted and unique. */
export function changedPaths(report: SyncReport): string[] {
  return [...new Set(report.applied.map((change) => change.path))].sort();
}

// ---------------------------------------------------------------------------------------------
// The sync state folder on the host (CLUD_STATE_DIR/workspaces/<container>, /clud/state inside)

/** The host folder holding the sync state of the workspace of `dir`. */
export function stateDirectoryOf(dir: string, config: CludConfigInput = {}): string {
  return createWorkspace(dir, config).stateDirectory;
}

/**
 * A place in the state folder as Clud reports it (e.g. a report's `keptAt`): it must be the place
 * on the host, under the workspace's state folder, never the container's own mount of it.
 */
export function hostStatePath(stateDirectory: string, reported: string): string {
  const relative = path.relative(stateDirectory, reported);
  assert.ok(!relative.startsWith('..') && !path.isAbsolute(relative), `${reported} is not under the state folder ${stateDirectory} (reported at the container's ${CONTAINER_STATE_PATH}?)`);
  return reported;
}

/**
 * Every version of `relative` kept aside for `side` (`<state>/kept/<syncId>/<side>/<relative>`),
 * whatever sync, resolve or restore kept it: the contents, oldest sync id first.
 */
export async function keptVersions(stateDirectory: string, side: 'host' | 'container', relative: string): Promise<string[]> {
  const keptRoot = path.join(stateDirectory, 'kept');
  const ids = (await readdir(keptRoot).catch(() => [] as string[])).sort();
  const versions: string[] = [];
  for (const id of ids) {
    const file = path.join(keptRoot, id, side, ...relative.split('/'));
    if (await pathExists(file)) versions.push(await readFile(file, 'utf8'));
  }
  return versions;
}

/** Every line of every file under `root` (but `.git`), added to `into`: for tests whose versions are told apart by their lines. */
export async function linesUnder(root: string, into: Set<string>): Promise<void> {
  for (const entry of await readdir(root).catch(() => [] as string[])) {
    if (entry === '.git') continue;
    const full = path.join(root, entry);
    const info = await lstat(full);
    if (info.isDirectory()) await linesUnder(full, into);
    else if (info.isFile()) for (const line of (await readFile(full, 'utf8')).split('\n')) if (line) into.add(line);
  }
}

/** Entries under `root` (itself included) whose owner is not uid:gid, as "path uid:gid". */
export async function foreignOwners(root: string, uid: number, gid: number): Promise<string[]> {
  const found: string[] = [];
  const visit = async (file: string): Promise<void> => {
    const info = await lstat(file);
    if (info.uid !== uid || info.gid !== gid) found.push(`${path.relative(root, file) || '.'} ${info.uid}:${info.gid}`);
    if (info.isDirectory()) for (const name of await readdir(file)) await visit(path.join(file, name));
  };
  await visit(root);
  return found;
}

export function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Trees: a map of relative POSIX path to a description that changes when the content, the
// permission bits or a symlink's target change. "file <mode> <sha256>", "dir <mode>", "link <target>".

export type Tree = Map<string, string>;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8);
}

/** Hashes every file of the host folder `root`, recording symlink targets and modes. */
export async function hashTree(root: string, options: { exclude?: (relative: string) => boolean } = {}): Promise<Tree> {
  const tree: Tree = new Map();
  const walk = async (relativeDir: string): Promise<void> => {
    for (const name of await readdir(path.join(root, relativeDir))) {
      const relative = relativeDir ? `${relativeDir}/${name}` : name;
      if (options.exclude?.(relative)) continue;
      const file = path.join(root, relative);
      const info = await lstat(file);
      if (info.isSymbolicLink()) {
        tree.set(relative, `link ${await readlink(file)}`);
      } else if (info.isDirectory()) {
        tree.set(relative, `dir ${octal(info.mode)}`);
        await walk(relative);
      } else if (info.isFile()) {
        tree.set(relative, `file ${octal(info.mode)} ${createHash('sha256').update(await readFile(file)).digest('hex')}`);
      } else {
        tree.set(relative, `other ${octal(info.mode)}`);
      }
    }
  };
  await walk('');
  return tree;
}

/**
 * The modification time (ms) of every entry under `root` ("." for `root` itself), symlinks not
 * followed. hashTree leaves times out (a sync may set them); an undo must put them back too.
 */
export async function treeTimes(root: string, options: { exclude?: (relative: string) => boolean } = {}): Promise<Map<string, number>> {
  const times = new Map<string, number>([['.', (await lstat(root)).mtimeMs]]);
  const walk = async (relativeDir: string): Promise<void> => {
    for (const name of await readdir(path.join(root, relativeDir))) {
      const relative = relativeDir ? `${relativeDir}/${name}` : name;
      if (options.exclude?.(relative)) continue;
      const info = await lstat(path.join(root, relative));
      times.set(relative, info.mtimeMs);
      if (info.isDirectory()) await walk(relative);
    }
  };
  await walk('');
  return times;
}

/** Entries whose modification time moved by more than `toleranceMs`, appeared or went, as readable lines. */
export function diffTimes(before: Map<string, number>, after: Map<string, number>, toleranceMs: number): string[] {
  const differences: string[] = [];
  for (const relative of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const a = before.get(relative);
    const b = after.get(relative);
    if (a !== undefined && b !== undefined && Math.abs(a - b) <= toleranceMs) continue;
    const show = (time: number | undefined) => (time === undefined ? '(absent)' : new Date(time).toISOString());
    differences.push(`${relative}: mtime ${show(a)} -> ${show(b)}`);
  }
  return differences;
}

/**
 * Runs `cmd` in the running workspace container of `dir` as the workspace user in /workspace,
 * straight through the engine (not through `clud exec`): for reading /workspace to check what a
 * command did, without going through the code under test, and without a Node start-up per look.
 */
export async function dockerExec(dir: string, cmd: string[], options: { user?: string } = {}): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  const [info] = (await containersFor(dir)).filter((candidate) => candidate.State === 'running');
  assert.ok(info, `no running container for ${dir}`);
  const exec = await docker.getContainer(info.Id).exec({ Cmd: cmd, User: options.user ?? WORKSPACE_USER, WorkingDir: CONTAINER_WORKSPACE_PATH, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const sink = (chunks: Buffer[]) => new Writable({ write: (chunk: Buffer, _encoding, callback) => (chunks.push(chunk), callback()) });
  docker.modem.demuxStream(stream, sink(stdout), sink(stderr));
  await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('close', resolve).on('error', reject));
  let state = await exec.inspect();
  for (let attempt = 0; state.Running && attempt < 50; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    state = await exec.inspect();
  }
  return { exitCode: state.ExitCode ?? -1, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') };
}

/** A file of /workspace, read through the engine (see dockerExec); it must exist. */
export async function readContainerFile(dir: string, relative: string): Promise<string> {
  const run = await dockerExec(dir, ['cat', '--', relative]);
  assert.equal(run.exitCode, 0, `cat ${relative} in /workspace: ${run.stderr}`);
  return run.stdout.toString('utf8');
}

/**
 * The same description of /workspace, computed in the container with find and sha256sum (not with
 * this file's code), in one exec (see dockerExec).
 */
export async function containerTree(dir: string, options: { exclude?: (relative: string) => boolean } = {}): Promise<Tree> {
  // Type, permission bits, symlink target and path, NUL-separated, so any name survives; then,
  // after an empty record, "hash  ./path" records of every file.
  const script = "cd /workspace && find . -mindepth 1 -printf '%y\\0%m\\0%l\\0%P\\0' && printf '\\0' && find . -type f -print0 | xargs -0 -r sha256sum -z";
  const run = await dockerExec(dir, ['sh', '-c', script]);
  assert.equal(run.exitCode, 0, `listing /workspace failed: ${run.stderr}`);
  // Every listing record starts with a type letter, so the empty field after it is the separator.
  const fields = run.stdout.toString('utf8').split('\0');
  let end = 0;
  while (end < fields.length && fields[end] !== '') end += 4;
  assert.ok(end < fields.length, 'the listing of /workspace is cut short');
  const hashOf = new Map<string, string>();
  for (const record of fields.slice(end + 1)) {
    if (!record) continue;
    const match = /^([0-9a-f]{64}) [ *]\.\/(.*)$/s.exec(record);
    assert.ok(match, `unexpected sha256sum record ${JSON.stringify(record.slice(0, 200))}`);
    hashOf.set(match[2]!, match[1]!);
  }
  const tree: Tree = new Map();
  for (let index = 0; index < end; index += 4) {
    const [type, mode, target, relative] = fields.slice(index, index + 4) as [string, string, string, string];
    if (options.exclude?.(relative)) continue;
    if (type === 'l') tree.set(relative, `link ${target}`);
    else if (type === 'd') tree.set(relative, `dir ${mode}`);
    else if (type === 'f') tree.set(relative, `file ${mode} ${hashOf.get(relative) ?? 'unhashed'}`);
    else tree.set(relative, `other ${mode}`);
  }
  return tree;
}

/** Human-readable differences between two trees (at most `limit`), empty when they are equal. */
export function diffTrees(left: Tree, right: Tree, labels: [string, string] = ['host', 'container'], limit = 25): string[] {
  const differences: string[] = [];
  const paths = [...new Set([...left.keys(), ...right.keys()])].sort();
  for (const relative of paths) {
    const a = left.get(relative);
    const b = right.get(relative);
    if (a === b) continue;
    differences.push(`${relative}: ${labels[0]}=${a ?? '(absent)'} ${labels[1]}=${b ?? '(absent)'}`);
    if (differences.length >= limit) {
      differences.push('…');
      break;
    }
  }
  return differences;
}

export function assertTreesEqual(left: Tree, right: Tree, labels: [string, string] = ['host', 'container']): void {
  assert.deepEqual(diffTrees(left, right, labels), [], `the trees differ (${left.size} vs ${right.size} entries)`);
}

// ---------------------------------------------------------------------------------------------
// The engine and the Workspace class, in process

export interface CreateWorkspaceOptions {
  onProgress?: (event: WorkspaceProgress) => void;
  /** Extra environment of this Workspace's agent sessions only, e.g. CLUD_FAILPOINT (src/agent/failpoint.ts). */
  agentEnv?: Record<string, string>;
}

/** The Workspace class on the real engine, configured like the CLI under TEST_ENV. */
export function createWorkspace(hostPath: string, config: CludConfigInput = {}, options: CreateWorkspaceOptions = {}): Workspace {
  return new Workspace({
    hostPath,
    platform: 'linux',
    config: parseConfig({ ...configFromEnvironment(TEST_ENV, path.delimiter), ...config }),
    engine: new DockerodeEngine(),
    stateRoot: TEST_STATE_ROOT,
    resources: { agentBundlePath: AGENT_BUNDLE_PATH, containerDir: CONTAINER_DIR },
    onProgress: options.onProgress,
    agentEnv: options.agentEnv,
  });
}

/** Containers (running or not) that Clud made for `hostPath`. */
export async function containersFor(hostPath: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABEL_HOST_PATH}=${hostPath}`] } });
}

/** Inspects a container by name or id; undefined when it does not exist. */
export async function inspectContainer(nameOrId: string): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(nameOrId).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim().length > 0);
}

/** Whether a path exists on the host (without following a final symlink). */
export async function pathExists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}
