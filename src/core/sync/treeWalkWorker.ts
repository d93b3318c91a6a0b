// A tree walk (treeWalk.ts) on a worker thread of its own, so that the periodic rescan walks both
// trees at once. esbuild bundles treeWalkThread.ts on its own and defines TREE_WALK_BUNDLE, its
// code, in the bundles (esbuild.mjs), which stay one file each; without it (tsx, in tests) the
// thread runs the TypeScript file through tsx's require hook.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { WalkResult } from './treeWalk';

export interface TreeWalkRequest {
  root: string;
  excludes: readonly string[];
}

/** The thread's bundled code, defined by esbuild (esbuild.mjs); undefined under tsx. */
declare const TREE_WALK_BUNDLE: string | undefined;

/** Walks `request.root` on a new worker thread, which ends with the walk. */
export function walkTreeOnWorker(request: TreeWalkRequest): Promise<WalkResult> {
  const worker =
    typeof TREE_WALK_BUNDLE === 'string'
      ? new Worker(TREE_WALK_BUNDLE, { eval: true, execArgv: [], workerData: request })
      : new Worker(path.join(__dirname, 'treeWalkThread.ts'), { execArgv: ['--require', require.resolve('tsx/cjs')], workerData: request });
  return new Promise<WalkResult>((resolve) => {
    worker.once('message', (result: WalkResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', (error) => resolve({ problem: `the walk failed: ${error.message}` }));
    worker.once('exit', (code) => resolve({ problem: `the walk's thread exited with code ${code}` }));
  });
}
