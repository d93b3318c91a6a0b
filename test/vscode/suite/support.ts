// What the extension-host tests share: the extension's controller (from its exports), the Clud
// log (the output channel's file), polling, and commands run in the container.
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import * as vscode from 'vscode';
import { LABEL_HOST_PATH } from '../../../src/core/containerLayout';
import type { WorkspaceController } from '../../../src/extension/controller';
import type { CludExtensionApi } from '../../../src/extension/extension';
import type { Health } from '../../../src/core/ui/state';

export const EXTENSION_ID = 'niteris.clud-workspace';

let context: vscode.ExtensionContext | undefined;

/** Set by run(): the context activate() passed, i.e. Clud's own ExtensionContext. */
export function setExtensionContext(extensionContext: vscode.ExtensionContext): void {
  context = extensionContext;
}

export function extensionContext(): vscode.ExtensionContext {
  if (!context) throw new Error('run() has not been called with the extension context');
  return context;
}

/**
 * The controller activate() returned. run() is called from inside activate(), before it returns,
 * so the exports appear a moment later.
 */
export async function getController(): Promise<WorkspaceController> {
  return waitFor(
    'the extension exports { controller }',
    async () => {
      const extension = vscode.extensions.getExtension<CludExtensionApi>(EXTENSION_ID);
      return extension?.isActive ? (extension.exports?.controller ?? undefined) : undefined;
    },
    30_000,
  );
}

export function workspaceFolder(): vscode.WorkspaceFolder {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('the window has no folder open');
  return folder;
}

export function hostFile(relative: string): string {
  return path.join(workspaceFolder().uri.fsPath, ...relative.split('/'));
}

/** Polls `check` until it returns something other than undefined. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until the controller's health is `kind`; returns it. */
export function waitForHealth(controller: WorkspaceController, kind: Health['kind'], timeoutMs = 30_000): Promise<Health> {
  return waitFor(`health "${kind}" (it is ${JSON.stringify(controller.viewState.health)})`, async () => (controller.viewState.health.kind === kind ? controller.viewState.health : undefined), timeoutMs);
}

/** The Clud output channel as written so far (a LogOutputChannel lives in a file under the extension's log folder). */
export async function cludLog(): Promise<string> {
  const dir = extensionContext().logUri.fsPath;
  const names = await readdir(dir).catch(() => [] as string[]);
  const texts = await Promise.all(names.filter((name) => name.endsWith('.log')).map((name) => readFile(path.join(dir, name), 'utf8')));
  return texts.join('\n');
}

/** Polls the Clud log until it contains `text`. */
export function waitForLog(text: string, timeoutMs = 10_000): Promise<string> {
  return waitFor(`the Clud log to contain ${JSON.stringify(text)}`, async () => {
    const log = await cludLog();
    return log.includes(text) ? log : undefined;
  }, timeoutMs, 200);
}

/** Runs `sh -c script` in the container's /workspace as the workspace user. */
export async function containerSh(controller: WorkspaceController, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const code = await controller.workspace().exec(['sh', '-c', script], { stdout, stderr });
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** Runs `sh -c script` in the container as root (what no Clud command does), straight through the engine; returns its stdout. */
export async function rootSh(containerName: string, script: string): Promise<string> {
  const docker = new Docker();
  const exec = await docker.getContainer(containerName).exec({ Cmd: ['sh', '-c', script], User: 'root', AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const out: Buffer[] = [];
  const stdout = new PassThrough().on('data', (chunk: Buffer) => out.push(chunk));
  docker.modem.demuxStream(stream, stdout, new PassThrough().resume());
  await new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject));
  return Buffer.concat(out).toString('utf8');
}

/** A file of the container's /workspace as text; undefined when it is not there. */
export async function containerText(controller: WorkspaceController, relative: string): Promise<string | undefined> {
  return (await controller.workspace().readContainerFile(relative))?.toString('utf8');
}

/** The `code` of a CludError (compared by property: the suite bundle has its own copy of the class). */
export function errorCode(error: unknown): string | undefined {
  return error && typeof error === 'object' && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

/** Awaits `promise`, which must reject; returns the error. */
export async function rejection(promise: Thenable<unknown>, what: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`${what} succeeded; it should have failed`);
}

/** Containers (running or not) that Clud made for the window's folder, straight from the engine. */
export async function containersForFolder(): Promise<Docker.ContainerInfo[]> {
  return new Docker().listContainers({ all: true, filters: { label: [`${LABEL_HOST_PATH}=${workspaceFolder().uri.fsPath}`] } });
}

const notes: string[] = [];

/** A line for the harness to print under the running test's title (a measurement, say). */
export function note(text: string): void {
  notes.push(text);
}

/** The notes of the test that just ended (run() attaches them to its result). */
export function takeNotes(): string[] {
  return notes.splice(0);
}
