// Three bundles from one source tree: the VS Code extension (vscode stays external), the
// `clud` CLI, and the in-container agent, which must be one self-contained file because it runs
// on the image's own Node with no node_modules beside it. The undo log's capture worker
// (src/core/undo/packWorkerThread.ts) is bundled first, and its code is carried in the bundles as
// PACK_WORKER_BUNDLE, which the worker's client starts (packWorker.ts), likewise the periodic
// rescan's walk thread (src/core/sync/treeWalkThread.ts) as TREE_WALK_BUNDLE, the apply's staging
// thread (src/core/sync/stagingThread.ts) as STAGING_THREAD_BUNDLE, and the attribute
// reader's perl script as XATTR_READER_SCRIPT: no second file to ship into the image.
import * as esbuild from 'esbuild';
import { chmodSync, readFileSync } from 'node:fs';

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
  // Named only where the capture worker's client runs under tsx (tests), never in a bundle.
  external: ['tsx/cjs'],
};

const thread = (entry) => esbuild.build({ ...common, entryPoints: [entry], write: false, outfile: 'thread.js', target: 'node20', sourcemap: false });
const [packWorker, treeWalk, staging] = await Promise.all([thread('src/core/undo/packWorkerThread.ts'), thread('src/core/sync/treeWalkThread.ts'), thread('src/core/sync/stagingThread.ts')]);
// The perl script of the extended attribute reader (src/core/undo/syscallXattrReader.pl) is carried
// the same way, as XATTR_READER_SCRIPT.
common.define = {
  PACK_WORKER_BUNDLE: JSON.stringify(packWorker.outputFiles[0].text),
  TREE_WALK_BUNDLE: JSON.stringify(treeWalk.outputFiles[0].text),
  STAGING_THREAD_BUNDLE: JSON.stringify(staging.outputFiles[0].text),
  XATTR_READER_SCRIPT: JSON.stringify(readFileSync('src/core/undo/syscallXattrReader.pl', 'utf8')),
};

// `node esbuild.mjs --bench` (scripts/bench.sh): the benchmark, bundled as the agent is, so the
// code timed is the code that ships.
const bench = process.argv.includes('--bench');
const bundles = bench
  ? [{ entryPoints: ['bench/syncBench.ts'], outfile: 'bench-results/syncBench.cjs', sourcemap: false }]
  : [
      { entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: [...common.external, 'vscode'] },
      { entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
      // Debian trixie ships Node 20.19; target it, with no externals (tsx/cjs is never required).
      { entryPoints: ['src/agent/main.ts'], outfile: 'dist/agent.js', sourcemap: false },
    ];
await Promise.all(bundles.map((bundle) => esbuild.build({ ...common, target: 'node20', ...bundle })));
if (!bench) chmodSync('dist/cli.js', 0o755);
