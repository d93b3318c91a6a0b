// The capture worker's compaction on a disk that fills (packWorkerThread.ts): the failure it
// reports is the disk's, the step's content as read is left as it was for a later attempt, and
// what the attempt wrote is removed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LARGE_CONTENT_BYTES, PackWorkerClient } from '../../src/core/undo/packWorker';
import { RAW } from '../../src/core/undo/records';
import { onSmallDisk, useTempDir } from '../helpers/tempDir';

describe('unit: compaction on a full disk', () => {
  const tempDir = useTempDir('clud-pack-full-');

  it("fails with the disk's ENOSPC, not a descriptor closed twice, and leaves the content as read", async function () {
    const step = path.join(tempDir(), 'step');
    mkdirSync(step);
    await onSmallDisk(this, step, '2m', async () => {
      // Stops on its own once idle (see packWorkerIdle.test.ts).
      const client = new PackWorkerClient(100);
      // Large enough for a stream of its own, and incompressible: its .br does not fit beside it.
      const content = randomBytes(LARGE_CONTENT_BYTES + 256 * 1024);
      writeFileSync(path.join(step, RAW), content);
      const blob = { file: RAW, offset: 0, length: content.length, start: 0, size: content.length };
      await assert.rejects(client.compact(step, [blob]), /ENOSPC/);
      assert.ok(readFileSync(path.join(step, RAW)).equals(content));
      // What the failed attempt wrote gives its room back: on a full disk it would hold off the next capture.
      assert.deepEqual(readdirSync(step), [RAW]);
    });
  });
});
