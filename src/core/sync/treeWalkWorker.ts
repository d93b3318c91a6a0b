// A tree walk (treeWalk.ts) on a worker thread of its own, so that the periodic rescan walks both
// trees at once. Its code is treeWalkThread.ts, bundled as TREE_WALK_BUNDLE (workerThread.ts).
import * as path from 'node:path';
import { startWorkerThread } from '../workerThread';
import type { WalkResult } from './treeWalk';

export interface TreeWalkRequest {
  root: string;
  excludes: readonly string[];
}

/** The thread's bundled code, defined by esbuild (esbuild.mjs); undefined under tsx. */
declare const TREE_WALK_BUNDLE: string | undefined;

/** Walks `request.root` on a new worker thread, which ends with the walk. */
export function walkTreeOnWorker(request: TreeWalkRequest): Promise<WalkResult> {
  const worker = startWorkerThread(typeof TREE_WALK_BUNDLE === 'string' ? TREE_WALK_BUNDLE : undefined, path.join(__dirname, 'treeWalkThread.ts'), request);
  return new Promise<WalkResult>((resolve) => {
    worker.once('message', (result: WalkResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', (error) => resolve({ problem: `the walk failed: ${error.message}` }));
    worker.once('exit', (code) => resolve({ problem: `the walk's thread exited with code ${code}` }));
  });
}
