// The worker thread's side of a tree walk (see treeWalk.ts): walks the tree it is started with
// and posts the result, its numbers moved, not copied. One walk per thread.
import { parentPort, workerData } from 'node:worker_threads';
import { walkTree } from './treeWalk';
import type { TreeWalkRequest } from './treeWalkWorker';

const request = workerData as TreeWalkRequest;
void walkTree(request.root, request.excludes).then(
  (result) => parentPort!.postMessage(result, 'numbers' in result ? [result.numbers.buffer as ArrayBuffer] : []),
  (error: unknown) => parentPort!.postMessage({ problem: `the walk failed: ${error instanceof Error ? error.message : String(error)}` }),
);
