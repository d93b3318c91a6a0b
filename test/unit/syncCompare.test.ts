import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { changesLostWithContainer, compareWithAgreedState } from '../../src/core/sync/compare';
import { SyncStateStore } from '../../src/core/sync/stateStore';
import type { Entry } from '../../src/core/files/entry';
import { scanTree } from '../../src/core/sync/scan';
import { useTempDir } from '../helpers/tempDir';

const file = (hash: string): Entry => ({ kind: 'file', size: 1, mtimeMs: 0, mode: 0o644, hash });
const fifo: Entry = { kind: 'untracked', reason: 'FIFO: cannot be synchronized', special: true };
const unreadable: Entry = { kind: 'untracked', reason: 'cannot read: EACCES' };

describe('unit: what removing the container would lose', () => {
  const tempDir = useTempDir('clud-compare-');

  it('a FIFO, socket or device in /workspace never counts, with or without an agreed state', () => {
    assert.deepEqual(changesLostWithContainer([{ path: 'pipe', container: fifo }], true), []);
    assert.deepEqual(changesLostWithContainer([{ path: 'pipe', container: fifo }], false), []);
    assert.deepEqual(changesLostWithContainer([{ path: 'pipe', container: fifo, ancestor: file('a') }], true), []);
  });

  it('an edited file and an unreadable file in /workspace count: they hold content', () => {
    const edited = { path: 'a.txt', host: file('a'), container: file('b'), ancestor: file('a') };
    const locked = { path: 'secret', container: unreadable };
    assert.deepEqual(changesLostWithContainer([edited, locked], true).map((difference) => difference.path), ['a.txt', 'secret']);
    assert.deepEqual(changesLostWithContainer([edited], false).map((difference) => difference.path), ['a.txt']);
  });

  it('the scan marks a FIFO as special, an ordinary file as not', async () => {
    execFileSync('mkfifo', [path.join(tempDir(), 'pipe')]);
    writeFileSync(path.join(tempDir(), 'plain.txt'), 'x');
    const { snapshot } = await scanTree(tempDir(), { excludes: [] });
    const pipe = snapshot.get('pipe');
    assert.equal(pipe?.kind === 'untracked' && pipe.special, true, JSON.stringify(pipe));
    assert.equal(snapshot.get('plain.txt')?.kind, 'file');
  });

  /**
   * A host and a container folder with `files` in each (the container's agreed on, secrets
   * `allowSecrets` let through then), and the compare of them as [path, heldBySecret] pairs.
   */
  async function agreedFolders(files: { host: Record<string, string>; container: Record<string, string> }, allowSecrets: string[] = []) {
    const roots = { host: path.join(tempDir(), 'host'), container: path.join(tempDir(), 'container') };
    const stateDir = path.join(tempDir(), 'state');
    for (const side of ['host', 'container'] as const) {
      mkdirSync(roots[side]);
      for (const [name, text] of Object.entries(files[side])) writeFileSync(path.join(roots[side], name), text);
    }
    const agreed = (await scanTree(roots.container, { excludes: [], allowSecrets })).snapshot;
    await SyncStateStore.replace(stateDir, { ancestor: agreed, host: new Map(), container: new Map() });
    const compare = async () => {
      const store = await SyncStateStore.open(stateDir);
      try {
        return (await compareWithAgreedState(roots, { excludes: [], store })).differences.map(({ path: key, heldBySecret }) => [key, heldBySecret]);
      } finally {
        await store.close();
      }
    };
    return { roots, compare };
  }

  it("counts the container's version of a file the host keeps out as a secret only where it is not the agreed one", async () => {
    const { roots, compare } = await agreedFolders({ host: { 'config.yml': `name: app\ntoken: ghp_${'a1B2c3D4e5'.repeat(3)}abcdef\n` }, container: { 'config.yml': 'name: app\n' } });
    assert.deepEqual(await compare(), [], 'the agreed copy counted');
    writeFileSync(path.join(roots.container, 'config.yml'), 'name: app\nport: 8080\n');
    assert.deepEqual(await compare(), [['config.yml', 'host']]);
  });

  it('counts a file the container keeps out as a secret where it is not the agreed version: new, or changed', async () => {
    // Allowed once and synced: both sides agreed on it.
    const { roots, compare } = await agreedFolders({ host: { '.env': 'A=1\n' }, container: { '.env': 'A=1\n' } }, ['.env']);
    assert.deepEqual(await compare(), [], 'the agreed version counted');
    writeFileSync(path.join(roots.container, '.env.local'), 'TOKEN=agent\n');
    writeFileSync(path.join(roots.container, '.env'), 'A=agent\n');
    assert.deepEqual(await compare(), [['.env', 'container'], ['.env.local', 'container']]);
  });
});
