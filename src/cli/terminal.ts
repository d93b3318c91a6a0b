// Joins an exec to this process's terminal: raw mode and size changes on a TTY, plain pipes
// otherwise (scripts, tests).
import type { ExecSession } from '../core/docker/engine';

export async function runOnTerminal(session: ExecSession, options: { tty: boolean; stdin?: NodeJS.ReadStream }): Promise<number> {
  const stdin = options.stdin;
  const resize = () => void session.resize(process.stdout.rows ?? 24, process.stdout.columns ?? 80);
  if (options.tty && stdin) {
    stdin.setRawMode(true);
    resize();
    process.stdout.on('resize', resize);
  }
  if (stdin) stdin.pipe(session.stdin);
  else session.stdin.end();
  session.stdout.pipe(process.stdout, { end: false });
  session.stderr.pipe(process.stderr, { end: false });
  try {
    return await session.exitCode;
  } finally {
    if (stdin) {
      stdin.unpipe(session.stdin);
      if (options.tty) stdin.setRawMode(false);
      stdin.pause();
    }
    process.stdout.off('resize', resize);
  }
}
