// A staging thread (see stagingThreads.ts): stages the files of each batch it is sent, in order,
// and answers with one result per file.
import { parentPort } from 'node:worker_threads';
import { stageSmallFile } from './stageSmallFile';
import type { StagingBatch, StagingReply } from './stagingThreads';

parentPort!.on('message', ({ id, requests }: StagingBatch) => {
  const results = requests.map((request) => {
    try {
      return stageSmallFile(request);
    } catch (error) {
      const { message, code } = error as NodeJS.ErrnoException;
      return { error: message, ...(code && { code }) };
    }
  });
  parentPort!.postMessage({ id, results } satisfies StagingReply);
});
