// Extended attributes (Node has no xattr API). Names are bytes. Reading goes through a long-lived
// helper process fed raw path bytes: perl making the system calls where the architecture's
// syscall numbers are known, getfattr elsewhere. Writing (setfattr, from Debian's `attr`) passes a
// path that is valid UTF-8 as an argument; any other file or folder is opened here and named to
// the tool as /proc/<our pid>/fd/<fd> (followed, so it reaches the file itself); such a symlink
// cannot be reached and is reported as not restored.
import { isUtf8 } from 'node:buffer';
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { GetfattrReader, interpret } from './getfattrReader';
import type { XattrPairs } from './records';
import { SyscallXattrReader, syscallReaderUsable } from './syscallXattrReader';

/** Runs an attribute tool to its end: its exit code (1 if it could not start), its output and errors as they came, and its errors alone. */
function runTool(command: string, args: readonly string[]): Promise<{ exitCode: number; all: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let all = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (all += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      all += chunk;
      stderr += chunk;
    });
    child.on('error', (error) => resolve({ exitCode: 1, all: error.message, stderr: error.message }));
    child.on('close', (code) => resolve({ exitCode: code ?? 1, all, stderr }));
  });
}

/** A path's attributes, as the undo log's records store them. */
export type Xattrs = XattrPairs;

let available: Promise<boolean> | undefined;

/** Whether getfattr and setfattr are installed (checked once per process). */
export function xattrToolsAvailable(): Promise<boolean> {
  const works = (tool: string) =>
    new Promise<boolean>((resolve) => {
      const child = spawn(tool, ['--version'], { stdio: 'ignore' });
      child.on('error', () => resolve(false));
      child.on('exit', (code) => resolve(code === 0));
    });
  available ??= Promise.all([works('getfattr'), works('setfattr')]).then((results) => results.every(Boolean));
  return available;
}

export const XATTR_TOOLS_MISSING = 'extended attributes were not captured: getfattr/setfattr (Debian package "attr") are not installed';

/** The path's attributes (all namespaces the process may read), sorted by name; undefined when they cannot be read. */
export async function readXattrs(path: Buffer, isSymlink: boolean): Promise<Xattrs | undefined> {
  if (!(await xattrToolsAvailable())) return undefined;
  const reader = await startXattrReader();
  // A name with a newline cannot travel over the getfattr reader's line protocol.
  if (reader instanceof SyscallXattrReader || !path.includes(0x0a)) return reader.read(path);
  return withPathArgument(path, isSymlink, async (argument, follow) => {
    const result = await runTool('getfattr', ['-d', '-m', '-', '--absolute-names', '-e', 'base64', ...(follow ? [] : ['-h']), '--', argument]);
    return interpret(result.exitCode, result.all);
  });
}

/** The attributes of several paths (as readXattrs), asked of the reader in one go. */
export async function readXattrsOf(paths: ReadonlyArray<{ target: Buffer; isSymlink: boolean }>): Promise<Array<Xattrs | undefined>> {
  if (!(await xattrToolsAvailable())) return paths.map(() => undefined);
  const reader = await startXattrReader();
  if (reader instanceof SyscallXattrReader) return reader.readMany(paths.map(({ target }) => target));
  return Promise.all(paths.map(({ target, isSymlink }) => readXattrs(target, isSymlink)));
}

let chosenReader: Promise<SyscallXattrReader | GetfattrReader> | undefined;

/** The reader this process uses, chosen (and its helper process started) at the first call. */
export function startXattrReader(): Promise<SyscallXattrReader | GetfattrReader> {
  chosenReader ??= syscallReaderUsable().then((usable) => {
    const reader = usable ? new SyscallXattrReader() : new GetfattrReader();
    reader.start();
    return reader;
  });
  return chosenReader;
}

/**
 * Makes the path's attributes exactly `wanted`: missing ones set, others removed. For a file this
 * process has just created (`fresh`), the attributes are only set: it has none of its own.
 * Returns a problem, if any.
 */
export async function writeXattrs(path: Buffer, isSymlink: boolean, wanted: Xattrs, fresh = false): Promise<string | undefined> {
  const current = fresh ? [] : await readXattrs(path, isSymlink);
  if (current === undefined) return 'extended attributes could not be restored';
  const wantedMap = new Map(wanted);
  const currentMap = new Map(current);
  const commands = [...current.filter(([name]) => !wantedMap.has(name)).map(([name]) => ['-x', name]), ...wanted.filter(([name, value]) => currentMap.get(name) !== value).map(([name, value]) => ['-n', name, '-v', value === '' ? '' : `0s${value}`])];
  if (commands.length === 0) return undefined;
  if (!(await xattrToolsAvailable())) return 'extended attributes could not be restored: getfattr/setfattr are not installed';
  const failures: string[] = [];
  for (const args of commands) {
    const done = await withPathArgument(path, isSymlink, async (argument, follow) => {
      const result = await runTool('setfattr', [...(follow ? [] : ['-h']), ...args, '--', argument]);
      if (result.exitCode !== 0) failures.push(`${args[1]}: ${result.stderr.trim()}`);
      return true;
    });
    if (!done) failures.push(`${args[1]}: the path cannot be named to setfattr`);
  }
  return failures.length ? `extended attributes not fully restored (${failures.join('; ')})` : undefined;
}

async function withPathArgument<T>(path: Buffer, isSymlink: boolean, use: (argument: string, follow: boolean) => Promise<T>): Promise<T | undefined> {
  if (isUtf8(path)) return use(path.toString('utf8'), false);
  if (isSymlink) return undefined;
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    return await use(`/proc/${process.pid}/fd/${handle.fd}`, true);
  } finally {
    await handle.close();
  }
}
