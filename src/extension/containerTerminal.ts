import * as vscode from 'vscode';
import type { ExecSession } from '../core/docker/engine';
import { errorMessage } from '../core/errors';
import type { WorkspaceController } from './controller';

/**
 * A VS Code terminal running a shell (or, with `options`, another program such as Claude Code) in
 * /workspace as the workspace user, over the Docker API.
 */
export function openContainerTerminal(
  controller: WorkspaceController,
  options: { name?: string; open?: (size: vscode.TerminalDimensions | undefined) => Promise<ExecSession> } = {},
): vscode.Terminal {
  const written = new vscode.EventEmitter<string>();
  const closed = new vscode.EventEmitter<number>();
  let shell: ExecSession | undefined;
  let size: vscode.TerminalDimensions | undefined;
  const pty: vscode.Pseudoterminal = {
    onDidWrite: written.event,
    onDidClose: closed.event,
    open: (dimensions) => {
      size = dimensions;
      void (options.open ? options.open(dimensions) : controller.workspace().openShell())
        .then((session) => {
          shell = session;
          if (size) void session.resize(size.rows, size.columns);
          session.stdout.on('data', (chunk: Buffer) => written.fire(chunk.toString('utf8')));
          void session.exitCode.then((code) => closed.fire(code));
        })
        .catch((error: unknown) => {
          written.fire(`Clud: cannot open ${options.name ?? 'a shell'} in the container: ${errorMessage(error)}\r\n`);
          closed.fire(1);
        });
    },
    handleInput: (data) => shell?.stdin.write(data),
    setDimensions: (dimensions) => {
      size = dimensions;
      void shell?.resize(dimensions.rows, dimensions.columns);
    },
    close: () => shell?.stdin.end(),
  };
  const terminal = vscode.window.createTerminal({ name: `Clud: ${options.name ?? controller.viewState.containerName ?? 'workspace'}`, pty });
  terminal.show();
  return terminal;
}
