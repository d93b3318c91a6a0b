// The Docker Engine API through dockerode: everything Docker, with no docker CLI.
import Docker from 'dockerode';
import { PassThrough, Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { CludError, errorMessage } from '../errors';
import { withRetries } from '../retry';
import { demuxDockerStream } from './demux';
import type { BuildSpec, ContainerEngine, ContainerInfo, ContainerSpec, ExecSession, ExecSpec, ImageInfo } from './engine';
import { buildFailureHint } from './buildFailure';

export class DockerodeEngine implements ContainerEngine {
  private readonly docker: Docker;

  constructor(options?: Docker.DockerOptions) {
    this.docker = new Docker(options);
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      const where = process.env.DOCKER_HOST ?? '/var/run/docker.sock';
      throw new CludError('docker-unreachable', `Docker is not reachable at ${where}: ${errorMessage(error)}`, 'Start Docker (Docker Desktop, or `dockerd`/`systemctl start docker`) and try again.');
    }
  }

  async inspectImage(reference: string): Promise<ImageInfo | undefined> {
    try {
      const info = await this.docker.getImage(reference).inspect();
      return { id: info.Id, labels: info.Config?.Labels ?? {} };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async buildImage(context: Readable, spec: BuildSpec, onLog: (line: string) => void, signal?: AbortSignal): Promise<ImageInfo> {
    const stream = await this.docker.buildImage(context, { t: spec.tag, buildargs: spec.buildArgs, labels: spec.labels, ...(spec.target ? { target: spec.target } : {}), rm: true, forcerm: true, abortSignal: signal } as Docker.ImageBuildOptions);
    const tail: string[] = [];
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (error: Error | null) => (error ? reject(error) : resolve()),
        (event: { stream?: string; error?: string; errorDetail?: { message?: string } }) => {
          const text = event.error ?? event.stream;
          if (!text) return;
          for (const line of text.split('\n')) {
            if (!line.trim()) continue;
            tail.push(line);
            if (tail.length > 20) tail.shift();
            onLog(line);
          }
          if (event.error) reject(new Error(event.error));
        },
      );
    }).catch((error: unknown) => {
      if (signal?.aborted) throw new CludError('image-build-failed', `Building ${spec.tag} was cancelled`);
      throw new CludError('image-build-failed', `Building ${spec.tag} failed: ${errorMessage(error)}`, buildFailureHint(tail));
    });
    const image = await this.inspectImage(spec.tag);
    if (!image) throw new CludError('image-build-failed', `Building ${spec.tag} finished but the image is not there`);
    return image;
  }

  async inspectContainer(nameOrId: string): Promise<ContainerInfo | undefined> {
    try {
      const info = await this.docker.getContainer(nameOrId).inspect();
      return {
        id: info.Id,
        name: info.Name.replace(/^\//, ''),
        running: info.State.Running && !info.State.Paused && !info.State.Restarting,
        status: info.State.Status,
        image: info.Config.Image,
        imageId: info.Image,
        labels: info.Config.Labels ?? {},
        startedAt: info.State.StartedAt && !info.State.StartedAt.startsWith('0001-') ? info.State.StartedAt : undefined,
        ports: publishedPorts(info.NetworkSettings?.Ports),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async createContainer(spec: ContainerSpec): Promise<string | undefined> {
    const create = this.docker.createContainer({
      name: spec.name,
      Image: spec.image,
      Labels: spec.labels,
      Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
      ExposedPorts: spec.ports ? Object.fromEntries(Object.keys(spec.ports).map((port) => [port, {}])) : undefined,
      HostConfig: {
        Mounts: spec.mounts as Docker.MountSettings[],
        PortBindings: spec.ports ? Object.fromEntries(Object.entries(spec.ports).map(([port, binding]) => [port, [{ HostIp: binding.hostIp, HostPort: binding.hostPort }]])) : undefined,
        CapDrop: ['ALL'],
        CapAdd: [...spec.capabilities],
        SecurityOpt: spec.noNewPrivileges ? ['no-new-privileges'] : [],
      },
    });
    try {
      return (await create).id;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 409) return undefined;
      throw error;
    }
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (error) {
      // 304: already started (by another `clud up` at the same moment, say): what was asked for.
      if ((error as { statusCode?: number }).statusCode !== 304) throw error;
    }
  }

  async stopContainer(id: string, timeoutSeconds = 5): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: timeoutSeconds });
    } catch (error) {
      // 304: already stopped.
      if ((error as { statusCode?: number }).statusCode !== 304) throw error;
    }
  }

  async removeContainer(id: string): Promise<void> {
    await this.docker.getContainer(id).remove({ force: true, v: true });
  }

  async exec(id: string, spec: ExecSpec): Promise<ExecSession> {
    const exec = await this.docker.getContainer(id).exec({
      Cmd: spec.cmd,
      User: spec.user,
      WorkingDir: spec.workingDir,
      Env: Object.entries(spec.env ?? {}).map(([key, value]) => `${key}=${value}`),
      AttachStdin: spec.attachStdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: spec.tty ?? false,
    });
    const stream = await exec.start({ hijack: true, stdin: spec.attachStdin, Tty: spec.tty ?? false });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    // A terminal's output is one raw stream; otherwise Docker multiplexes stdout and stderr.
    if (spec.tty) stream.pipe(stdout, { end: false });
    else this.docker.modem.demuxStream(stream, stdout, stderr);
    const ended = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', resolve);
    });
    const exitCode = ended.then(async () => {
      stdout.end();
      stderr.end();
      // The exec can be reported as running for a moment after its stream closed.
      for (let attempt = 0; attempt < 50; attempt += 1) {
        const info = await exec.inspect();
        if (!info.Running && info.ExitCode !== null) return info.ExitCode;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return -1;
    });
    const stdin = new PassThrough();
    if (spec.attachStdin) {
      stdin.pipe(stream as unknown as NodeJS.WritableStream);
    } else {
      stdin.resume();
    }
    const resize = async (rows: number, columns: number) => {
      await exec.resize({ h: rows, w: columns }).catch(() => {});
    };
    return { stdin, stdout, stderr, exitCode, resize };
  }

  async readFile(id: string, path: string): Promise<Buffer | undefined> {
    // A file replaced while Docker archives it (the sync carrying a new version) can make an
    // archive that ends early: read again, a few times, before failing with what the last said.
    const { value: read } = await withRetries(() => this.readFileOnce(id, path), { retries: READ_FILE_ATTEMPTS - 1, shouldRetry: (attempt) => !attempt.ok, baseDelayMs: 0 });
    if (!read.ok) throw read.error;
    return read.content;
  }

  private async readFileOnce(id: string, path: string): Promise<ArchivedFile> {
    let archive: NodeJS.ReadableStream;
    try {
      archive = await this.docker.getContainer(id).getArchive({ path });
    } catch (error) {
      if (isNotFound(error)) return { ok: true, content: undefined };
      throw error;
    }
    return unpackFirstFile(archive as Readable);
  }

  async writeFile(id: string, directory: string, name: string, content: Buffer, mode: number): Promise<void> {
    const pack = tar.pack();
    pack.entry({ name, mode, size: content.length }, content);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    await this.docker.getContainer(id).putArchive(Buffer.concat(chunks), { path: directory });
  }

  async logs(id: string, options: { tail?: number }): Promise<{ stdout: string; stderr: string }> {
    const buffer = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, tail: options.tail ?? 'all' } as Docker.ContainerLogsOptions & { follow: false })) as unknown as Buffer;
    const { stdout, stderr } = demuxDockerStream(buffer);
    return { stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') };
  }
}

const READ_FILE_ATTEMPTS = 3;

/** A file read out of an archive (undefined: none there), or the error the archive ended with. */
type ArchivedFile = { ok: true; content: Buffer | undefined } | { ok: false; error: Error };

/** The first regular file of a tar archive. */
function unpackFirstFile(archive: Readable): Promise<ArchivedFile> {
  const extract = tar.extract();
  const chunks: Buffer[] = [];
  let found = false;
  return new Promise((resolve) => {
    // Every stream's error is heard (an entry's too, when the archive ends inside it): one nobody
    // listens to is thrown as uncaught. The first settles the read.
    const failed = (error: Error) => {
      archive.unpipe(extract);
      resolve({ ok: false, error });
    };
    extract.on('entry', (header, entryStream, next) => {
      const isFile = header.type === 'file' && !found;
      found = found || isFile;
      entryStream.on('data', (chunk: unknown) => {
        if (isFile) chunks.push(chunk as Buffer);
      });
      entryStream.on('error', failed);
      entryStream.on('end', next);
      entryStream.resume();
    });
    extract.on('finish', () => resolve({ ok: true, content: found ? Buffer.concat(chunks) : undefined }));
    extract.on('error', failed);
    archive.on('error', failed);
    archive.pipe(extract);
  });
}

function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 404;
}

function publishedPorts(ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | undefined): ContainerInfo['ports'] {
  const published: ContainerInfo['ports'] = {};
  for (const [port, bindings] of Object.entries(ports ?? {})) {
    const binding = bindings?.find((candidate) => candidate.HostPort);
    if (binding) published[port] = { hostIp: binding.HostIp, hostPort: Number(binding.HostPort) };
  }
  return published;
}
