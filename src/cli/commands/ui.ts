import type { CommandSpec } from '../command';
import { openInBrowser } from '../openUrl';

export const ui: CommandSpec = {
  name: 'ui',
  usage: 'clud ui [DIR] [--open] [--json]',
  summary: 'Print the address of the browser IDE (a workspace started with `clud up --ui`); --open opens it.',
  options: { open: { type: 'boolean', description: 'open the IDE in the browser' } },
  async run({ workspace, flags }) {
    const info = await workspace.uiAddress();
    if (flags.open === true) openInBrowser(info.url);
    return { json: { ok: true, ...info }, text: info.url, exitCode: 0 };
  },
};
