// Reading extended attributes through the llistxattr and lgetxattr system calls, made by a
// long-lived perl process: Node has no xattr API, and starting getfattr costs a process (or
// three, through xargs) per request, which dominated the undo log's capture of a thousand small
// files. perl-base is Essential in Debian, so it is in every image Clud builds; perl's syscall()
// takes the call's number, which differs between architectures, so only those listed here use
// this reader and the others fall back to getfattr (getfattrReader.ts).
//
// The protocol: Node writes NUL-terminated paths (any bytes but NUL, newlines included) and an
// empty path to ask for the answers so far to be flushed; perl (syscallXattrReader.pl) answers
// each path with one line, in order: `X` followed by ` <name>:<value>` pairs in hex, or
// `E <errno>`.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { arch, constants } from 'node:os';
import { join } from 'node:path';
import { setChildReferenced, startHelper } from './helperProcess';
import type { Xattrs } from './xattrs';

/** [llistxattr, lgetxattr] by Node's name for the architecture (asm-generic/unistd.h for arm64 and riscv64). */
const SYSCALL_NUMBERS: Partial<Record<string, readonly [number, number]>> = {
  x64: [195, 192],
  arm64: [12, 9],
  riscv64: [12, 9],
};

/**
 * The perl process's script (syscallXattrReader.pl), defined by esbuild in the bundles
 * (esbuild.mjs), which ship no file beside them; undefined under tsx, which reads the file.
 */
declare const XATTR_READER_SCRIPT: string | undefined;
export const SCRIPT_FILE = join(__dirname, 'syscallXattrReader.pl');

/** The script, or undefined where there is none to read (a bundle built without it). */
function scriptText(): string | undefined {
  if (typeof XATTR_READER_SCRIPT === 'string') return XATTR_READER_SCRIPT;
  try {
    return readFileSync(SCRIPT_FILE, 'utf8');
  } catch {
    return undefined;
  }
}

let usable: Promise<boolean> | undefined;

/** Whether this reader works here: a known architecture, its script, and a perl that compiles it (checked once per process). */
export function syscallReaderUsable(): Promise<boolean> {
  usable ??= new Promise<boolean>((resolve) => {
    const script = scriptText();
    if (SYSCALL_NUMBERS[arch()] === undefined || script === undefined) return resolve(false);
    const child = spawn('perl', ['-c', '-e', script], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
  return usable;
}

export class SyscallXattrReader {
  private child?: ChildProcessWithoutNullStreams;
  private output = '';
  /** Answers awaited from the running process, in the order their paths were written. */
  private readonly pending: Array<(result: Xattrs | undefined) => void> = [];
  /** Paths asked for in this tick: written together, with the request to flush the answers, once the tick's reads are in. */
  private unwritten: Array<{ path: Buffer; resolve: (result: Xattrs | undefined) => void }> = [];

  read(path: Buffer): Promise<Xattrs | undefined> {
    return new Promise((resolve) => this.enqueue(path, resolve));
  }

  /** The answers for several paths, with one promise for all of them. */
  readMany(paths: readonly Buffer[]): Promise<Array<Xattrs | undefined>> {
    if (paths.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const answers = new Array<Xattrs | undefined>(paths.length);
      let left = paths.length;
      paths.forEach((path, index) =>
        this.enqueue(path, (answer) => {
          answers[index] = answer;
          if (--left === 0) resolve(answers);
        }),
      );
    });
  }

  private enqueue(path: Buffer, resolve: (result: Xattrs | undefined) => void): void {
    if (this.unwritten.length === 0) queueMicrotask(() => this.write());
    this.unwritten.push({ path, resolve });
  }

  private write(): void {
    const requests = this.unwritten;
    this.unwritten = [];
    const child = this.start();
    for (const { resolve } of requests) this.pending.push(resolve);
    setChildReferenced(child, true);
    child.stdin.write(Buffer.concat([...requests.flatMap(({ path }) => [path, NUL]), NUL]));
  }

  /** Starts the helper process, unless it runs; it keeps Node alive only while answers are awaited. */
  start(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const [list, get] = SYSCALL_NUMBERS[arch()]!;
    const child = startHelper('perl', ['-e', scriptText() ?? '', String(list), String(get), String(constants.errno.ENODATA)], {
      output: (chunk) => this.receive(chunk),
      stopped: () => {
        if (this.child !== child) return;
        this.child = undefined;
        this.output = '';
        for (const resolve of this.pending.splice(0)) resolve(undefined);
      },
    });
    this.child = child;
    return child;
  }

  private receive(chunk: string): void {
    this.output += chunk;
    let start = 0;
    for (let end = this.output.indexOf('\n'); end >= 0; end = this.output.indexOf('\n', start)) {
      this.pending.shift()?.(interpretLine(this.output.slice(start, end)));
      start = end + 1;
    }
    this.output = this.output.slice(start);
    if (this.pending.length === 0 && this.child) setChildReferenced(this.child, false);
  }
}

const NUL = Buffer.from([0]);

/** One answer line as the attributes (sorted by name), [] where the file system has none, or undefined when they could not be read. */
export function interpretLine(line: string): Xattrs | undefined {
  if (line.startsWith('E ')) {
    const errno = Number(line.slice(2));
    // A file system without xattr support has none to lose.
    return errno === constants.errno.ENOTSUP || errno === constants.errno.EOPNOTSUPP ? [] : undefined;
  }
  if (line !== 'X' && !line.startsWith('X ')) return undefined;
  const attributes: Xattrs = line
    .split(' ')
    .slice(1)
    .map((pair) => {
      const [name = '', value = ''] = pair.split(':');
      return [Buffer.from(name, 'hex').toString('latin1'), Buffer.from(value, 'hex').toString('base64')];
    });
  return attributes.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
