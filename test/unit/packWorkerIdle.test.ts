// The undo log's capture worker stops once idle (packWorker.ts): a resident agent at rest does not
// keep its thread, but a step that still holds its content file open keeps it, and a request after
// the stop starts it again.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PackWorkerClient } from '../../src/core/undo/packWorker';
import { useTempDir } from '../helpers/tempDir';

const IDLE_MS = 150;

describe('unit: the capture worker stops when idle', () => {
  const tempDir = useTempDir('clud-pack-idle-');

  it('runs while a content file is open, stops once it is closed and nothing else is under way, and starts again when asked', async () => {
    const client = new PackWorkerClient(IDLE_MS);
    const source = path.join(tempDir(), 'a.txt');
    writeFileSync(source, 'content\n');
    const first = client.newContentFileId();
    await client.open(first, path.join(tempDir(), 'first.raw'));
    await delay(IDLE_MS * 3);
    assert.equal(client.running, true, 'stopped while a step held its content file open');
    const { results } = await client.capture(first, [Buffer.from(source)], 1024);
    assert.equal(results[0]?.kind, 'file');
    await client.close(first);
    assert.equal(client.running, true, 'it waits for the idle period');
    await delay(IDLE_MS * 3);
    assert.equal(client.running, false, 'still running with nothing open and nothing under way');

    const second = client.newContentFileId();
    await client.open(second, path.join(tempDir(), 'second.raw'));
    assert.equal(client.running, true);
    const again = await client.capture(second, [Buffer.from(source)], 1024);
    assert.equal(again.results[0]?.kind, 'file', 'the restarted worker captures');
    await client.close(second);
    await delay(IDLE_MS * 3);
    assert.equal(client.running, false);
  });

  it('a warmed worker that is never used stops too', async () => {
    const client = new PackWorkerClient(IDLE_MS);
    client.warm();
    assert.equal(client.running, true);
    await delay(IDLE_MS * 3);
    assert.equal(client.running, false);
  });
});
