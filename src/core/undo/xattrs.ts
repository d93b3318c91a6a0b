// Extended attributes through Debian's `attr` tools (Node has no xattr API). Names are bytes.
// Reading goes through a long-lived shell loop fed raw path bytes. Writing (setfattr) passes a
// path that is valid UTF-8 as an argument; any other file or folder is opened here and named to
// the tool as /proc/<our pid>/fd/<fd> (followed, so it reaches the file itself); such a symlink
// cannot be reached and is reported as not restored.
import { isUtf8 } from 'node:buffer';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { open } from 'node:fs/promises';

// execa 9 is ESM-only; a dynamic import keeps this module loadable from CommonJS (tsx in tests).
const loadExeca = (): Promise<typeof import('execa')> => import('execa');

export type Xattrs = Array<[string, string]>;

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
  // A name with a newline cannot travel over the reader's line protocol.
  if (!path.includes(0x0a)) return reader.read(path);
  return withPathArgument(path, isSymlink, async (argument, follow) => {
    const { execa } = await loadExeca();
    const result = await execa('getfattr', ['-d', '-m', '-', '--absolute-names', '-e', 'base64', ...(follow ? [] : ['-h']), '--', argument], { reject: false, stdin: 'ignore', all: true });
    return interpret(result.exitCode ?? 1, String(result.all ?? ''));
  });
}

function interpret(exitCode: number, output: string): Xattrs | undefined {
  // A file system without xattr support has none to lose.
  if (exitCode !== 0) return /Operation not supported/.test(output) ? [] : undefined;
  return parseDump(output);
}

/**
 * Starting getfattr from Node costs far more than the tool itself, and capturing asks for many
 * paths: one long-lived shell loop reads requests (a header line, then the paths as raw bytes)
 * and runs getfattr on them (through xargs for a long list, which may split it). getfattr prints a section
 * ("# file: <name>", backslashes and control characters escaped as \ooo) only for paths that
 * have attributes. Reads asked for while requests are under way are gathered into the next one;
 * when a request fails as a whole (any error makes getfattr exit non-zero), each of its paths is
 * asked again on its own. The loop is unreferenced while idle, so it never keeps a process alive.
 */
class XattrReader {
  private child?: ChildProcessWithoutNullStreams;
  private output = '';
  private readonly pending: Array<(result: { exitCode: number; output: string } | Error) => void> = [];
  private readonly waiting: Array<{ path: Buffer; resolve: (result: Xattrs | undefined) => void }> = [];
  private inFlight = 0;

  read(path: Buffer): Promise<Xattrs | undefined> {
    return new Promise((resolve) => {
      this.waiting.push({ path, resolve });
      this.schedule();
    });
  }

  private schedule(): void {
    while (this.inFlight < REQUESTS_IN_FLIGHT && this.waiting.length > 0) {
      let bytes = 0;
      let count = 0;
      while (count < this.waiting.length && count < BATCH_PATHS && bytes < BATCH_BYTES) bytes += this.waiting[count++]!.path.length + 1;
      const batch = this.waiting.splice(0, count);
      this.inFlight += 1;
      void this.readBatch(batch).finally(() => {
        this.inFlight -= 1;
        this.schedule();
      });
    }
  }

  private async readBatch(batch: Array<{ path: Buffer; resolve: (result: Xattrs | undefined) => void }>): Promise<void> {
    const result = await this.request(batch.map(({ path }) => path));
    if (result instanceof Error) {
      for (const { resolve } of batch) resolve(undefined);
      return;
    }
    if (batch.length === 1) {
      batch[0]!.resolve(interpret(result.exitCode, result.output));
      return;
    }
    if (result.exitCode !== 0) {
      // Which path failed is not worth parsing out of the messages: ask for each on its own.
      await Promise.all(batch.map(async ({ path, resolve }) => resolve(interpret(...unpack(await this.request([path]))))));
      return;
    }
    const sections = new Map<string, string>();
    let current: string | undefined;
    for (const line of result.output.split('\n')) {
      if (line.startsWith('# file: ')) {
        current = line.slice('# file: '.length).replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
        sections.set(current, '');
      } else if (current !== undefined && line !== '') {
        sections.set(current, `${sections.get(current)!}${line}\n`);
      }
    }
    for (const { path, resolve } of batch) resolve(parseDump(sections.get(path.toString('latin1')) ?? ''));
  }

  private request(paths: Buffer[]): Promise<{ exitCode: number; output: string } | Error> {
    return new Promise((resolve) => {
      const child = this.start();
      this.pending.push(resolve);
      this.setReferenced(true);
      // A few paths go as lines, read by the shell itself; a long list as NUL-terminated bytes
      // through dd and xargs, which cost two more processes but read in blocks, not byte by byte.
      if (paths.length <= SHELL_READ_PATHS) {
        child.stdin.write(Buffer.concat([Buffer.from(`lines ${paths.length}\n`), ...paths.flatMap((path) => [path, Buffer.from('\n')])]));
      } else {
        const list = Buffer.concat(paths.flatMap((path) => [path, Buffer.from([0])]));
        child.stdin.write(Buffer.concat([Buffer.from(`bytes ${list.length}\n`), list]));
      }
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const script = [
      'while IFS=" " read -r form n; do',
      '  if [ "$form" = lines ]; then',
      '    set --; i=0',
      '    while [ "$i" -lt "$n" ]; do IFS= read -r p; set -- "$@" "$p"; i=$((i + 1)); done',
      '    LC_ALL=C getfattr -h -d -m - -e base64 --absolute-names -- "$@" 2>&1; echo "@@clud-xattr-end $?"',
      '  else',
      '    dd bs="$n" count=1 iflag=fullblock status=none | LC_ALL=C xargs -0 -r getfattr -h -d -m - -e base64 --absolute-names -- 2>&1; echo "@@clud-xattr-end $?"',
      '  fi',
      'done',
    ].join('\n');
    const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (chunk: string) => this.receive(chunk));
    const fail = () => {
      if (this.child !== child) return;
      this.child = undefined;
      this.output = '';
      for (const resolve of this.pending.splice(0)) resolve(new Error('the getfattr reader stopped'));
    };
    child.on('exit', fail);
    child.on('error', fail);
    child.stdin.on('error', fail);
    return child;
  }

  private receive(chunk: string): void {
    this.output += chunk;
    for (;;) {
      const match = /^@@clud-xattr-end (\d+)$/m.exec(this.output);
      if (!match) return;
      const output = this.output.slice(0, match.index);
      this.output = this.output.slice(match.index + match[0].length + 1);
      this.pending.shift()?.({ exitCode: Number(match[1]), output });
      if (this.pending.length === 0) this.setReferenced(false);
    }
  }

  private setReferenced(referenced: boolean): void {
    const child = this.child;
    if (!child) return;
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as Array<{ ref?: () => void; unref?: () => void }>) {
      if (referenced) handle.ref?.();
      else handle.unref?.();
    }
  }
}

function unpack(result: { exitCode: number; output: string } | Error): [number, string] {
  return result instanceof Error ? [1, ''] : [result.exitCode, result.output];
}

/** Paths per getfattr call, and requests handed to the loop before the first answered (so it never idles). */
const BATCH_PATHS = 256;
const BATCH_BYTES = 64 * 1024;
const REQUESTS_IN_FLIGHT = 2;
/** Up to this many paths, a request is read by the shell (one process); beyond, by dd and xargs (three, but fast). */
const SHELL_READ_PATHS = 16;

const reader = new XattrReader();

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
  const { execa } = await loadExeca();
  const failures: string[] = [];
  for (const args of commands) {
    const done = await withPathArgument(path, isSymlink, async (argument, follow) => {
      const result = await execa('setfattr', [...(follow ? [] : ['-h']), ...args, '--', argument], { reject: false, stdin: 'ignore' });
      if (result.exitCode !== 0) failures.push(`${args[1]}: ${String(result.stderr).trim()}`);
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

function parseDump(dump: string): Xattrs {
  const attributes: Xattrs = [];
  for (const line of dump.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const equals = line.indexOf('=');
    if (equals < 0) {
      attributes.push([line, '']);
      continue;
    }
    const value = line.slice(equals + 1);
    attributes.push([line.slice(0, equals), value.startsWith('0s') ? value.slice(2) : Buffer.from(value.replace(/^"|"$/g, ''), 'utf8').toString('base64')]);
  }
  return attributes.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
