// Three bundles from one source tree: the VS Code extension (vscode stays external), the
// `clud` CLI, and the in-container agent, which must be one self-contained file because it runs
// on the image's own Node with no node_modules beside it.
import * as esbuild from 'esbuild';
import { chmodSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  sourcemap: true,
  sourcesContent: false,
  logLevel: 'warning',
  // docker-modem requires ssh2 (with optional native parts) for ssh:// hosts, which Clud does not
  // use; a stand-in keeps the bundles self-contained, since the .vsix ships no node_modules.
  alias: { ssh2: './src/stubs/ssh2.ts' },
  external: [],
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', target: 'node20', external: [...common.external, 'vscode'] }),
  esbuild.build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', target: 'node20', banner: { js: '#!/usr/bin/env node' } }),
  // Debian trixie ships Node 20.19; target it, with no externals at all.
  esbuild.build({ ...common, entryPoints: ['src/agent/main.ts'], outfile: 'dist/agent.js', target: 'node20', external: [], sourcemap: false }),
]);
chmodSync('dist/cli.js', 0o755);
