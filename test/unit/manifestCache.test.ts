import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManifestCache } from '../../src/core/undo/manifestCache';
import type { Manifest } from '../../src/core/undo/records';

describe('unit: parsed manifests cache', () => {
  let directory: string;
  let reads: number;
  beforeEach(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'clud-manifests-'));
    reads = 0;
  });
  afterEach(() => rm(directory, { recursive: true, force: true }));

  const manifestOf = (id: string, closed = true): Manifest => ({ version: 1, id, syncId: 's', policy: 'pull', root: '/host', startedAt: 't', ...(closed && { closedAt: 't' }), protected: true, paths: 1, bytes: 10, notes: [], records: [] }) as unknown as Manifest;
  /** Writes the step's manifest as the log does, through a rename; returns its path. */
  const place = async (id: string, manifest: Manifest) => {
    await mkdir(path.join(directory, 'steps', id), { recursive: true });
    const file = path.join(directory, 'steps', id, 'manifest.json');
    await writeFile(`${file}.tmp`, JSON.stringify(manifest));
    await rename(`${file}.tmp`, file);
    return file;
  };
  const reader = (manifest: Manifest) => async () => {
    reads += 1;
    return manifest;
  };

  it('parses an unchanged manifest once', async () => {
    const cache = new ManifestCache(1024 ** 2);
    const manifest = manifestOf('000001-aaaaaa');
    const file = await place('000001-aaaaaa', manifest);
    assert.equal(await cache.get(file, reader(manifest)), manifest);
    assert.equal(await cache.get(file, reader(manifestOf('other'))), manifest);
    assert.equal(reads, 1);
  });

  it('reads a manifest again once it was replaced, even by one of the same size', async () => {
    const cache = new ManifestCache(1024 ** 2);
    const first = manifestOf('000001-aaaaaa');
    const file = await place('000001-aaaaaa', first);
    await cache.get(file, reader(first));
    const second = { ...first, syncId: 'x' } as Manifest;
    await place('000001-aaaaaa', second);
    assert.equal(await cache.get(file, reader(second)), second);
    assert.equal(reads, 2);
  });

  it('keeps only closed steps, and reads a missing file through the reader', async () => {
    const cache = new ManifestCache(1024 ** 2);
    const open = manifestOf('000001-aaaaaa', false);
    const file = await place('000001-aaaaaa', open);
    await cache.get(file, reader(open));
    await cache.get(file, reader(open));
    assert.equal(reads, 2, 'an open step is not kept');
    assert.equal(await cache.get(path.join(directory, 'steps', 'gone', 'manifest.json'), async () => undefined), undefined);
  });

  it('stays within its size, dropping the least recently used', async () => {
    const manifests = ['000001-aaaaaa', '000002-bbbbbb', '000003-cccccc'].map((id) => manifestOf(id));
    const files = await Promise.all(manifests.map((manifest) => place(manifest.id, manifest)));
    const size = JSON.stringify(manifests[0]).length;
    const cache = new ManifestCache(2 * size);
    await cache.get(files[0]!, reader(manifests[0]!));
    await cache.get(files[1]!, reader(manifests[1]!));
    await cache.get(files[0]!, reader(manifests[0]!)); // now the most recently used
    await cache.get(files[2]!, reader(manifests[2]!)); // pushes out the second
    assert.equal(reads, 3);
    await cache.get(files[0]!, reader(manifests[0]!));
    assert.equal(reads, 3, 'the first stayed');
    await cache.get(files[1]!, reader(manifests[1]!));
    assert.equal(reads, 4, 'the second was read again');
  });

  it('forgets the steps that left the log', async () => {
    const cache = new ManifestCache(1024 ** 2);
    const manifest = manifestOf('000001-aaaaaa');
    const file = await place('000001-aaaaaa', manifest);
    await cache.get(file, reader(manifest));
    cache.retainOnly(path.join(directory, 'steps'), new Set());
    await cache.get(file, reader(manifest));
    assert.equal(reads, 2);
  });
});
