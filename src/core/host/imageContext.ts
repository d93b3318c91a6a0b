// The image's build context, assembled in memory: the Dockerfile and entrypoint from container/,
// the agent bundle, and any extra CA certificates. Its hash labels the image, so a changed
// Dockerfile, agent or certificate means a rebuild and a stale agent is never run.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { CludError, errorMessage } from '../errors';
import { sha256 } from '../files/fsEntry';

export interface ContextFile {
  name: string;
  content: Buffer;
  mode: number;
}

export interface BuildContext {
  files: ContextFile[];
  /** sha256 over every file's name and content and the base image: decides a rebuild. */
  hash: string;
  /**
   * sha256 over Clud's own files only, not the user's choices (base image, extra certificates):
   * an image made with other choices than this command's is not older than this Clud.
   */
  cludHash: string;
  agentHash: string;
}

export interface ImageResources {
  /** The folder holding Dockerfile and entrypoint.sh. */
  containerDir: string;
  /** The bundled agent (dist/agent.js). */
  agentBundlePath: string;
}

export async function loadBuildContext(resources: ImageResources, options: { baseImage: string; extraCaCertificates: readonly string[] }): Promise<BuildContext> {
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new CludError('bad-input', `Cannot read ${what} ${file}: ${errorMessage(error)}`, what.startsWith('extra') ? 'Check the extra CA certificates setting.' : 'Reinstall Clud; its files are incomplete.');
    }
  };
  const agent = await read(resources.agentBundlePath, 'the agent bundle');
  const files: ContextFile[] = [
    { name: 'Dockerfile', content: await read(path.join(resources.containerDir, 'Dockerfile'), 'the Dockerfile'), mode: 0o644 },
    { name: 'entrypoint.sh', content: await read(path.join(resources.containerDir, 'entrypoint.sh'), 'the entrypoint'), mode: 0o755 },
    { name: 'as-sync-user', content: await read(path.join(resources.containerDir, 'as-sync-user'), 'the sync user wrapper'), mode: 0o755 },
    { name: 'start-ui.sh', content: await read(path.join(resources.containerDir, 'start-ui.sh'), 'the UI start script'), mode: 0o755 },
    { name: 'api-key-helper.sh', content: await read(path.join(resources.containerDir, 'api-key-helper.sh'), 'the API key helper'), mode: 0o755 },
    { name: 'agent.js', content: agent, mode: 0o644 },
  ];
  const cludHash = hashContext(files, '');
  // update-ca-certificates only reads *.crt files; the folder must exist for COPY even when empty.
  files.push({ name: 'extra-ca/README', content: Buffer.from('Extra CA certificates added by Clud.\n'), mode: 0o644 });
  for (const [index, certificate] of options.extraCaCertificates.entries()) {
    files.push({ name: `extra-ca/clud-extra-${index}.crt`, content: await read(certificate, 'extra CA certificate'), mode: 0o644 });
  }
  return { files, hash: hashContext(files, options.baseImage), cludHash, agentHash: sha256(agent) };
}

export function hashContext(files: readonly ContextFile[], baseImage: string): string {
  const hash = createHash('sha256').update(`base:${baseImage}\n`);
  for (const file of [...files].sort((a, b) => a.name.localeCompare(b.name))) {
    hash.update(`${file.name}\n${file.mode}\n${file.content.length}\n`).update(file.content);
  }
  return hash.digest('hex');
}


export function packBuildContext(files: readonly ContextFile[]): Readable {
  const pack = tar.pack();
  for (const file of files) pack.entry({ name: file.name, mode: file.mode, size: file.content.length }, file.content);
  pack.finalize();
  return pack as unknown as Readable;
}
