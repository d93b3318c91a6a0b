// Starting one of the agent's worker threads. esbuild bundles each thread's entry on its own and
// defines its code as a string in the bundles (esbuild.mjs), which stay one file each; without it
// (tsx, in tests) the thread runs its TypeScript file through tsx's require hook.
import { Worker } from 'node:worker_threads';

/** `bundle`: the thread's bundled code (undefined under tsx); `file`: its TypeScript entry. */
export function startWorkerThread(bundle: string | undefined, file: string, workerData?: unknown): Worker {
  if (bundle !== undefined) return new Worker(bundle, { eval: true, execArgv: [], workerData });
  return new Worker(file, { execArgv: ['--require', require.resolve('tsx/cjs')], workerData });
}
