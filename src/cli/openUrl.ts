// Opens a URL in the user's browser with the platform's own opener, without waiting for it.
import { spawn } from 'node:child_process';

export function openInBrowser(url: string): void {
  const [command, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  const child = spawn(command, args, { detached: true, stdio: 'ignore' });
  child.on('error', () => process.stderr.write(`clud: could not open a browser; open ${url}\n`));
  child.unref();
}
