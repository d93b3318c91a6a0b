// Bundles the extension-host suite (test/vscode/suite/index.ts) into one CommonJS file that the
// extension `require`s when CLUD_EXTENSION_TESTS names it (see runTestsIfAsked in
// src/extension/extension.ts). `vscode` is the extension host's own module; mocha is required at
// run time from this repository's node_modules (the bundle sits inside the repository, in
// test-results/, so Node's resolution finds it). Prints the bundle's absolute path last.
//   node test/vscode/build.mjs
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const outfile = path.join(root, 'test-results', 'vscode-suite.js');

await esbuild.build({
  absWorkingDir: root,
  entryPoints: [path.join(root, 'test', 'vscode', 'suite', 'index.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
  external: ['vscode', 'mocha', 'cpu-features', 'ssh2'],
});
console.log(outfile);
