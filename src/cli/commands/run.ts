import { Writable } from 'node:stream';
import { displayPath, displayText } from '../../core/display';
import { runAsStep } from '../../core/host/runStep';
import type { CommandSpec } from '../command';
import { takeInterrupts } from '../interrupt';

/** Writes each chunk as an `output` event line (--json). */
function eventStream(stream: 'stdout' | 'stderr'): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      process.stdout.write(JSON.stringify({ type: 'output', stream, data: chunk.toString('utf8') }) + '\n', () => done());
    },
  });
}

export const run: CommandSpec = {
  name: 'run',
  usage: 'clud run [DIR] [--json] -- CMD [ARGS...]',
  summary: "Run CMD in /workspace as the workspace user as one undoable step: its output streams back, its changes reach DIR, and `clud undo` takes them back as one. Exits with CMD's exit code (130 after Ctrl-C, which stops CMD; what it changed stays one undoable step).",
  options: {},
  takesCommand: true,
  async run({ workspace, flags, rest }) {
    const json = flags.json === true;
    const abort = new AbortController();
    const release = takeInterrupts(() => {
      process.stderr.write('clud: interrupted; stopping the command (Ctrl-C again to quit at once); what it changed stays one undoable step\n');
      abort.abort();
    });
    try {
      const result = await runAsStep(workspace, rest, {
        stdout: json ? eventStream('stdout') : process.stdout,
        stderr: json ? eventStream('stderr') : process.stderr,
        signal: abort.signal,
        onStarted: (group) => {
          if (json) process.stdout.write(JSON.stringify({ type: 'step_started', command: rest, group }) + '\n');
        },
      });
      const exitCode = result.cancelled ? 130 : result.exitCode;
      const label = result.group.label;
      const undo = result.paths.length ? `; \`clud undo\` takes ${result.paths.length === 1 ? 'it' : 'them'} back` : '';
      if (!json) {
        process.stderr.write(`clud: step "${displayText(label)}" ${result.cancelled ? 'interrupted' : `exited ${result.exitCode}`}: ${result.paths.length}${result.pathsTruncated ? '+' : ''} path(s) changed in your folder${undo}\n`);
        for (const changed of result.paths.slice(0, 20)) process.stderr.write(`  ${displayPath(changed)}\n`);
        if (result.paths.length > 20) process.stderr.write(`  … and ${result.paths.length - 20} more\n`);
        if (result.held) process.stderr.write(`clud: changes not in your folder yet: ${displayText(result.held)}; \`clud status\` says how to go on\n`);
      }
      return {
        json: { type: 'step_completed', ok: exitCode === 0, exitCode, cancelled: result.cancelled, paths: result.paths, pathsTruncated: result.pathsTruncated, group: result.group, ...(result.held && { held: result.held }) },
        text: '',
        exitCode,
      };
    } finally {
      release();
    }
  },
};
