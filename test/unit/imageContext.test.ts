import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { CludError } from '../../src/core/errors';
import { hashContext, loadBuildContext, packBuildContext } from '../../src/core/host/imageContext';
import { sha256 } from '../../src/core/files/fsEntry';
import type { ContextFile, ImageResources } from '../../src/core/host/imageContext';
import { useTempDir } from '../helpers/tempDir';

interface Fixture {
  resources: ImageResources;
  certificates: string[];
  write(file: string, content: string): void;
}

/** Writes a container/ folder, an agent bundle and two CA certificates under `dir`. */
function makeFixture(dir: string): Fixture {
  const write = (file: string, content: string) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  };
  const containerDir = path.join(dir, 'container');
  const agentBundlePath = path.join(dir, 'dist', 'agent.js');
  const certificates = [path.join(dir, 'certs', 'corp root.pem'), path.join(dir, 'certs', 'proxy.crt')];
  write(path.join(containerDir, 'Dockerfile'), 'FROM debian:trixie-slim\nCOPY agent.js /opt/clud/agent.js\n');
  write(path.join(containerDir, 'entrypoint.sh'), '#!/bin/sh\nexec node /opt/clud/agent.js init\n');
  write(path.join(containerDir, 'as-sync-user'), '#!/bin/sh\nexec setpriv --reuid=clud -- "$@"\n');
  write(path.join(containerDir, 'start-ui.sh'), '#!/bin/sh\necho started\n');
  write(path.join(containerDir, 'api-key-helper.sh'), '#!/bin/sh\nexec cat /run/clud-secrets/anthropic-api-key\n');
  write(agentBundlePath, 'console.log("agent v1");\n');
  write(certificates[0]!, '-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n');
  write(certificates[1]!, '-----BEGIN CERTIFICATE-----\nPROXY\n-----END CERTIFICATE-----\n');
  return { resources: { containerDir, agentBundlePath }, certificates, write };
}

/** Reads a tar stream back into name → { content, mode }. */
async function untar(stream: NodeJS.ReadableStream): Promise<Map<string, { content: Buffer; mode: number | undefined }>> {
  const entries = new Map<string, { content: Buffer; mode: number | undefined }>();
  const extract = tar.extract();
  extract.on('entry', (header, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    body.on('end', () => {
      entries.set(header.name, { content: Buffer.concat(chunks), mode: header.mode });
      next();
    });
  });
  const finished = new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  stream.pipe(extract);
  await finished;
  return entries;
}

describe('unit: imageContext', () => {
  const tempDir = useTempDir('clud-image-');
  const options = (fixture: Fixture, overrides: { baseImage?: string; extraCaCertificates?: string[] } = {}) => ({
    baseImage: overrides.baseImage ?? 'debian:trixie-slim',
    extraCaCertificates: overrides.extraCaCertificates ?? fixture.certificates,
  });

  describe('loadBuildContext', () => {
    it('lists the Dockerfile, entrypoint, agent and each certificate with their modes and contents', async () => {
      const fixture = makeFixture(tempDir());
      const context = await loadBuildContext(fixture.resources, options(fixture));
      assert.deepEqual(
        context.files.map((file) => ({ name: file.name, mode: file.mode.toString(8) })),
        [
          { name: 'Dockerfile', mode: '644' },
          { name: 'entrypoint.sh', mode: '755' },
          { name: 'as-sync-user', mode: '755' },
          { name: 'start-ui.sh', mode: '755' },
          { name: 'api-key-helper.sh', mode: '755' },
          { name: 'agent.js', mode: '644' },
          { name: 'extra-ca/README', mode: '644' },
          { name: 'extra-ca/clud-extra-0.crt', mode: '644' },
          { name: 'extra-ca/clud-extra-1.crt', mode: '644' },
        ],
      );
      const content = (name: string) => context.files.find((file) => file.name === name)?.content.toString('utf8');
      assert.match(content('Dockerfile')!, /^FROM debian/);
      assert.match(content('entrypoint.sh')!, /agent\.js init/);
      assert.equal(content('agent.js'), 'console.log("agent v1");\n');
      assert.match(content('extra-ca/clud-extra-0.crt')!, /CORP/);
      assert.match(content('extra-ca/clud-extra-1.crt')!, /PROXY/);
    });

    it('keeps the extra-ca folder when there are no certificates', async () => {
      const fixture = makeFixture(tempDir());
      const context = await loadBuildContext(fixture.resources, options(fixture, { extraCaCertificates: [] }));
      assert.deepEqual(
        context.files.map((file) => file.name),
        ['Dockerfile', 'entrypoint.sh', 'as-sync-user', 'start-ui.sh', 'api-key-helper.sh', 'agent.js', 'extra-ca/README'],
      );
    });

    it('gives the same hash for the same inputs', async () => {
      const fixture = makeFixture(tempDir());
      const first = await loadBuildContext(fixture.resources, options(fixture));
      const second = await loadBuildContext(fixture.resources, options(fixture));
      assert.match(first.hash, /^[0-9a-f]{64}$/);
      assert.equal(second.hash, first.hash);
      assert.equal(second.agentHash, first.agentHash);
    });

    it("reports the agent bundle's own sha256 as agentHash", async () => {
      const fixture = makeFixture(tempDir());
      const context = await loadBuildContext(fixture.resources, options(fixture));
      assert.equal(context.agentHash, sha256(Buffer.from('console.log("agent v1");\n')));
    });

    const changes: { name: string; change: (fixture: Fixture) => { baseImage?: string; extraCaCertificates?: string[] } | void; agentChanges: boolean; cludChanges: boolean }[] = [
      { name: 'the Dockerfile', change: (f) => f.write(path.join(f.resources.containerDir, 'Dockerfile'), 'FROM debian:trixie-slim\nRUN true\n'), agentChanges: false, cludChanges: true },
      { name: 'the entrypoint', change: (f) => f.write(path.join(f.resources.containerDir, 'entrypoint.sh'), '#!/bin/sh\nexec true\n'), agentChanges: false, cludChanges: true },
      { name: 'the UI start script', change: (f) => f.write(path.join(f.resources.containerDir, 'start-ui.sh'), '#!/bin/sh\nexit 1\n'), agentChanges: false, cludChanges: true },
      { name: 'the agent', change: (f) => f.write(f.resources.agentBundlePath, 'console.log("agent v2");\n'), agentChanges: true, cludChanges: true },
      // The user's choices: a rebuild, but an image made with other ones is no older a Clud's.
      { name: 'a certificate', change: (f) => f.write(f.certificates[1]!, '-----BEGIN CERTIFICATE-----\nROTATED\n-----END CERTIFICATE-----\n'), agentChanges: false, cludChanges: false },
      { name: 'the set of certificates', change: (f) => ({ extraCaCertificates: f.certificates.slice(0, 1) }), agentChanges: false, cludChanges: false },
      { name: 'the base image', change: () => ({ baseImage: 'ubuntu:24.04' }), agentChanges: false, cludChanges: false },
    ];
    for (const { name, change, agentChanges, cludChanges } of changes) {
      it(`changes the hash when ${name} changes${agentChanges ? ', and the agent hash too' : ', but not the agent hash'}${cludChanges ? ', and the Clud hash' : ', but not the Clud hash'}`, async () => {
        const fixture = makeFixture(tempDir());
        const before = await loadBuildContext(fixture.resources, options(fixture));
        const overrides = change(fixture) ?? {};
        const after = await loadBuildContext(fixture.resources, options(fixture, overrides));
        assert.notEqual(after.hash, before.hash);
        assert.equal(after.agentHash !== before.agentHash, agentChanges);
        assert.equal(after.cludHash !== before.cludHash, cludChanges);
      });
    }

    it('gives CludError bad-input naming a missing CA file', async () => {
      const fixture = makeFixture(tempDir());
      const missing = path.join(tempDir(), 'certs', 'gone.pem');
      await assert.rejects(loadBuildContext(fixture.resources, options(fixture, { extraCaCertificates: [fixture.certificates[0]!, missing] })), (error: unknown) => {
        assert.ok(error instanceof CludError);
        assert.equal(error.code, 'bad-input');
        assert.ok(error.message.includes(missing), `${JSON.stringify(error.message)} should name ${missing}`);
        assert.match(error.hint ?? '', /certificate/i);
        return true;
      });
    });

    it('gives CludError bad-input naming a missing Dockerfile', async () => {
      const fixture = makeFixture(tempDir());
      const resources = { ...fixture.resources, containerDir: path.join(tempDir(), 'no-such-dir') };
      await assert.rejects(loadBuildContext(resources, options(fixture)), (error: unknown) => {
        assert.ok(error instanceof CludError);
        assert.equal(error.code, 'bad-input');
        assert.ok(error.message.includes(path.join(resources.containerDir, 'Dockerfile')));
        return true;
      });
    });
  });

  describe('hashContext', () => {
    const files: ContextFile[] = [
      { name: 'Dockerfile', content: Buffer.from('FROM x\n'), mode: 0o644 },
      { name: 'entrypoint.sh', content: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
      { name: 'agent.js', content: Buffer.from('agent'), mode: 0o644 },
    ];

    it('does not depend on the order of the files', () => {
      assert.equal(hashContext([...files].reverse(), 'debian'), hashContext(files, 'debian'));
      assert.equal(hashContext([files[1]!, files[2]!, files[0]!], 'debian'), hashContext(files, 'debian'));
    });

    it('depends on each file mode, name and the split between name and content', () => {
      const base = hashContext(files, 'debian');
      assert.notEqual(hashContext([{ ...files[0]!, mode: 0o755 }, files[1]!, files[2]!], 'debian'), base);
      assert.notEqual(hashContext([{ ...files[0]!, name: 'Dockerfile2' }, files[1]!, files[2]!], 'debian'), base);
      const split1: ContextFile = { name: 'a', content: Buffer.from('bc'), mode: 0o644 };
      const split2: ContextFile = { name: 'ab', content: Buffer.from('c'), mode: 0o644 };
      assert.notEqual(hashContext([split1], 'x'), hashContext([split2], 'x'));
    });
  });

  describe('packBuildContext', () => {
    it("produces a tar that tar-stream's extract reads back with the same names, contents and modes", async () => {
      const fixture = makeFixture(tempDir());
      const context = await loadBuildContext(fixture.resources, options(fixture));
      const entries = await untar(packBuildContext(context.files));
      assert.deepEqual([...entries.keys()], context.files.map((file) => file.name));
      for (const file of context.files) {
        assert.deepEqual(entries.get(file.name)?.content, file.content, file.name);
        assert.equal(entries.get(file.name)?.mode, file.mode, file.name);
      }
    });

    it('packs binary and empty files byte for byte', async () => {
      const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a]);
      const entries = await untar(
        packBuildContext([
          { name: 'bin', content: binary, mode: 0o600 },
          { name: 'empty', content: Buffer.alloc(0), mode: 0o644 },
        ]),
      );
      assert.deepEqual(entries.get('bin')?.content, binary);
      assert.deepEqual(entries.get('empty')?.content, Buffer.alloc(0));
      assert.equal(entries.get('bin')?.mode, 0o600);
    });
  });
});
