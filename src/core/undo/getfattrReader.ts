// Reading extended attributes with getfattr (Debian's `attr` package): the portable reader, for
// architectures the syscall reader (syscallXattrReader.ts) has no syscall numbers for, or where
// perl is missing. Starting getfattr from Node costs far more than the tool itself, so one
// long-lived shell loop serves many paths per getfattr call.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { setChildReferenced, startHelper } from './helperProcess';
import type { Xattrs } from './xattrs';

/**
 * Starting getfattr from Node costs far more than the tool itself, and capturing asks for many
 * paths: one long-lived shell loop reads requests (a header line, then the paths as raw bytes)
 * and runs getfattr on them (through xargs for a long list, which may split it). getfattr prints a section
 * ("# file: <name>", backslashes and control characters escaped as \ooo) only for paths that
 * have attributes. Reads asked for while requests are under way are gathered into the next one;
 * when a request fails as a whole (any error makes getfattr exit non-zero), each of its paths is
 * asked again on its own. The loop is unreferenced while idle, so it never keeps a process alive.
 */
export class GetfattrReader {
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

  /** Starts the helper process, unless it runs; it keeps Node alive only while answers are awaited. */
  start(): ChildProcessWithoutNullStreams {
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
    const child = startHelper('sh', ['-c', script], {
      output: (chunk) => this.receive(chunk),
      stopped: () => {
        if (this.child !== child) return;
        this.child = undefined;
        this.output = '';
        for (const resolve of this.pending.splice(0)) resolve(new Error('the getfattr reader stopped'));
      },
    });
    this.child = child;
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
    if (this.child) setChildReferenced(this.child, referenced);
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

export function interpret(exitCode: number, output: string): Xattrs | undefined {
  // A file system without xattr support has none to lose.
  if (exitCode !== 0) return /Operation not supported/.test(output) ? [] : undefined;
  return parseDump(output);
}

export function parseDump(dump: string): Xattrs {
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
