// The plumbing of the tests that need a real VS Code: code-server (VS Code 1.100 served to a
// browser, installed by scripts/provision-vscode.sh into .vscode-test/) and Debian's Chromium,
// driven by playwright-core. Nothing is mocked: the extension runs in code-server's extension host
// and the page is the workbench a user sees. See /work/shared/docs/environment.md for the recipe.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { agentVolumeName } from '../../src/core/containerLayout';
import { containerNameFor } from '../../src/core/host/hostPath';
import { HOST_CA_BUNDLE, TEST_IMAGE, USER_GID, USER_UID, chownTree, containersFor, docker, runClud, writeTree } from './integration';
import type { ProjectFiles } from './integration';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const CODE_SERVER_BIN = path.join(REPO_ROOT, '.vscode-test', 'code-server', 'node_modules', '.bin', 'code-server');
export const CHROMIUM_BIN = '/usr/bin/chromium';
export const EXTENSION_ID = 'niteris.clud-workspace';
export const VSIX_PATH = path.join(REPO_ROOT, 'dist', 'clud-workspace.vsix');
/** Everything a run leaves for people to look at: screenshots, code-server logs, the suite's results. */
export const RESULTS_DIR = path.join(REPO_ROOT, 'test-results');
export const SCREENSHOTS_DIR = path.join(RESULTS_DIR, 'screenshots');

/** Chromium flags that work on these machines (root, no GPU, no network but the registries). */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

const PROVISION_HINT = 'Run `bash scripts/provision-vscode.sh` (as root) to install code-server into .vscode-test/code-server and Chromium, then run the tests again.';

/** Fails loudly when code-server or Chromium is missing: these tests are never skipped for want of them. */
export function requireVscodeTools(): void {
  const missing: string[] = [];
  if (!existsSync(CODE_SERVER_BIN)) missing.push(`code-server (${CODE_SERVER_BIN})`);
  if (!existsSync(CHROMIUM_BIN)) missing.push(`Chromium (${CHROMIUM_BIN})`);
  if (missing.length) throw new Error(`A real VS Code is needed for the test/vscode tests, and ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing. ${PROVISION_HINT}`);
}

let packaged: Promise<string> | undefined;

/** `npm run package` (the build and the .vsix), once per test process; resolves with the .vsix path. */
export function packageExtension(): Promise<string> {
  packaged ??= execFileAsync('npm', ['run', 'package'], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 })
    .then(() => {
      if (!existsSync(VSIX_PATH)) throw new Error(`npm run package did not write ${VSIX_PATH}`);
      return VSIX_PATH;
    })
    .catch((error: unknown) => {
      packaged = undefined;
      const output = error as { stdout?: string; stderr?: string };
      throw new Error(`npm run package failed: ${error instanceof Error ? error.message : String(error)}\n${output.stdout ?? ''}${output.stderr ?? ''}`);
    });
  return packaged;
}

/** Bundles the extension-host suite (test/vscode/build.mjs); resolves with the bundle's path. */
export async function buildExtensionHostSuite(): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [path.join(REPO_ROOT, 'test', 'vscode', 'build.mjs')], { cwd: REPO_ROOT });
  const bundle = stdout.trim().split('\n').pop() ?? '';
  if (!bundle || !existsSync(bundle)) throw new Error(`test/vscode/build.mjs did not report its bundle (stdout: ${stdout})`);
  return bundle;
}

/** A fresh VS Code profile: user data (with User/settings.json) and an extensions folder. */
export interface VscodeProfile {
  root: string;
  userDataDir: string;
  extensionsDir: string;
}

/**
 * Settings every test profile needs: no Restricted Mode (it disables extensions that do not
 * support untrusted folders, as Clud does not) and no start-up editor covering the workbench.
 */
export const BASE_SETTINGS = { 'security.workspace.trust.enabled': false, 'workbench.startupEditor': 'none', 'workbench.tips.enabled': false, 'telemetry.telemetryLevel': 'off' };

export async function createProfile(settings: Record<string, unknown>): Promise<VscodeProfile> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'clud-vscode-'));
  const userDataDir = path.join(root, 'user-data');
  const extensionsDir = path.join(root, 'extensions');
  await mkdir(path.join(userDataDir, 'User'), { recursive: true });
  await mkdir(extensionsDir, { recursive: true });
  await writeFile(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...BASE_SETTINGS, ...settings }, null, 2));
  return { root, userDataDir, extensionsDir };
}

/** `code-server --install-extension FILE --extensions-dir DIR`, as a user installs a .vsix. */
export async function installExtension(vsix: string, profile: VscodeProfile): Promise<void> {
  const { stdout, stderr } = await execFileAsync(CODE_SERVER_BIN, ['--user-data-dir', profile.userDataDir, '--extensions-dir', profile.extensionsDir, '--install-extension', vsix, '--force'], { timeout: 120_000 });
  const { stdout: listed } = await execFileAsync(CODE_SERVER_BIN, ['--user-data-dir', profile.userDataDir, '--extensions-dir', profile.extensionsDir, '--list-extensions'], { timeout: 60_000 });
  if (!listed.split('\n').includes(EXTENSION_ID)) throw new Error(`installing ${vsix} did not install ${EXTENSION_ID}\n${stdout}${stderr}\nlisted: ${listed}`);
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export interface CodeServerOptions {
  profile: VscodeProfile;
  /** The folder opened in the window (the workspace folder of the extension). */
  folder: string;
  /** Added to code-server's environment, which the extension host inherits. */
  env?: Record<string, string>;
  /** Where code-server's stdout and stderr go. */
  logFile: string;
}

/** One code-server process on a free 127.0.0.1 port, with no authentication. */
export class CodeServer {
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly options: CodeServerOptions,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(options: CodeServerOptions): Promise<CodeServer> {
    const port = await freePort();
    mkdirSync(path.dirname(options.logFile), { recursive: true });
    const log = createWriteStream(options.logFile);
    const args = [
      '--config', path.join(options.profile.root, 'code-server.yaml'), // not ~/.config/code-server
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-getting-started-override',
      '--user-data-dir', options.profile.userDataDir,
      '--extensions-dir', options.profile.extensionsDir,
      options.folder,
    ];
    const child = spawn(CODE_SERVER_BIN, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const server = new CodeServer(child, port, options);
    await server.waitUntilListening(60_000);
    return server;
  }

  /** False once the process has exited. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The workbench's address with `folder` open. */
  folderUrl(folder = this.options.folder): string {
    return `${this.url}/?folder=${encodeURIComponent(folder)}`;
  }

  private async waitUntilListening(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    this.child.once('exit', (code) => (exitCode = code));
    while (Date.now() < deadline) {
      if (exitCode !== undefined) throw new Error(`code-server exited (${exitCode}) before it listened; see ${this.options.logFile}:\n${await this.logTail()}`);
      const healthy = await fetch(`${this.url}/healthz`).then(
        (response) => response.ok,
        () => false,
      );
      if (healthy) return;
      await sleep(250);
    }
    throw new Error(`code-server did not answer on ${this.url} within ${timeoutMs} ms; see ${this.options.logFile}:\n${await this.logTail()}`);
  }

  async logTail(lines = 30): Promise<string> {
    const text = await readFile(this.options.logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  }

  /** SIGTERM, then SIGKILL after 10 s; resolves when the process has gone. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Chromium with one page, sized like a laptop screen. */
export async function launchBrowser(): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_BIN, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  return { browser, page };
}

/** Opens the workbench with the server's folder and waits until it is laid out (5-60 s here). */
export async function openWorkbench(page: Page, server: CodeServer, timeoutMs = 120_000): Promise<void> {
  await page.goto(server.folderUrl(), { timeout: timeoutMs });
  await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
  await page.locator('.monaco-workbench .part.activitybar').waitFor({ state: 'visible', timeout: timeoutMs });
}

/** Saves a PNG of the page into test-results/screenshots/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const file = path.join(SCREENSHOTS_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Opens the command palette (Control+Shift+P) and types `text` after the ">" prompt; returns the
 * labels the palette lists. The palette stays open.
 */
export async function typeInCommandPalette(page: Page, text: string): Promise<string[]> {
  const widget = page.locator('.quick-input-widget');
  // Control+Shift+P, as a user does; some focused widgets (a settings row's gear) swallow the
  // first key press, so press it again, then fall back to F1 (the palette's other key).
  for (const key of ['Control+Shift+P', 'Control+Shift+P', 'F1']) {
    if (await widget.isVisible()) break;
    await page.keyboard.press(key);
    await widget.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => {});
  }
  await widget.waitFor({ state: 'visible', timeout: 1_000 });
  const input = widget.locator('input');
  await input.fill(`>${text}`);
  await sleep(500); // the list filters as it is typed
  return widget.locator('.quick-input-list .monaco-list-row .label-name').allInnerTexts();
}

/** Runs a palette command by its full title ("Clud: Start Workspace") as a user does. */
export async function runPaletteCommand(page: Page, title: string): Promise<void> {
  const labels = await typeInCommandPalette(page, title);
  const normalized = labels.map((label) => label.replace(/\s+/g, ' ').trim());
  if (!normalized.includes(title)) throw new Error(`the command palette does not list "${title}"; it lists: ${JSON.stringify(normalized)}`);
  await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: title }).first().click();
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
}

export async function closeQuickInput(page: Page): Promise<void> {
  if (await page.locator('.quick-input-widget').isVisible()) {
    await page.keyboard.press('Escape');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
  }
}

/** The texts of the status bar's items. */
export async function statusBarTexts(page: Page): Promise<string[]> {
  return (await page.locator('.part.statusbar .statusbar-item').allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim()).filter(Boolean);
}

/** Polls the status bar until an item's text contains `text`; returns that text. */
export async function waitForStatusBarText(page: Page, text: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await statusBarTexts(page);
    const found = last.find((item) => item.includes(text));
    if (found) return found;
    await sleep(500);
  }
  throw new Error(`the status bar did not show "${text}" within ${timeoutMs} ms; it shows ${JSON.stringify(last)}`);
}

/** The visible notification toasts' messages. */
export async function notificationTexts(page: Page): Promise<string[]> {
  return (await page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts()).map((text) => text.trim());
}

/** Polls `check` until it returns something other than undefined. */
export async function pollFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Removes a folder tree; never throws (cleanup must go on). */
export async function removeTree(dir: string | undefined): Promise<void> {
  if (dir && existsSync(dir) && statSync(dir).isDirectory()) await rm(dir, { recursive: true, force: true }).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// A whole session: a user's project folder, a fresh profile with Clud installed from the .vsix,
// code-server on it, and Chromium showing the workbench.

/**
 * The settings a test user has: the image tag the integration tests build (so the image is
 * shared, not rebuilt per suite) and the machine's CA bundle (the TLS-inspecting proxy, see
 * environment.md).
 */
export const CLUD_TEST_SETTINGS = { 'clud.imageTag': TEST_IMAGE, 'clud.extraCaCertificates': [HOST_CA_BUNDLE] };

export interface SessionOptions {
  /** Names the logs and screenshots folder (test-results/vscode/<name>). */
  name: string;
  /** The project folder's files; it is handed to UID/GID 1000 like a user's folder. */
  files: ProjectFiles;
  /** Extra user settings on top of BASE_SETTINGS and CLUD_TEST_SETTINGS. */
  settings?: Record<string, unknown>;
  /** Extra environment for code-server (and so for the extension host). */
  env?: Record<string, string>;
}

export class VscodeSession {
  browser: Browser | undefined;
  page: Page | undefined;
  server: CodeServer | undefined;
  /** The workbench's console errors and warnings, newest last: VS Code logs why a save failed there. */
  readonly consoleMessages: string[] = [];

  private constructor(
    readonly options: SessionOptions,
    /** The user's project folder (the workspace folder of the window). */
    readonly project: string,
    /** CLUD_STATE_DIR of the extension (and of the `clud` CLI runs that look at the same workspace). */
    readonly stateDir: string,
    readonly profile: VscodeProfile,
  ) {}

  /** Project, profile with Clud installed from `vsix`, code-server started; no browser yet. */
  static async start(vsix: string, options: SessionOptions): Promise<VscodeSession> {
    const parent = await mkdtemp(path.join(os.tmpdir(), `clud-vscode-${options.name}-`));
    const project = path.join(parent, 'project');
    await mkdir(project);
    await writeTree(project, options.files);
    await chownTree(project, USER_UID, USER_GID);
    const stateDir = path.join(parent, 'state');
    await mkdir(stateDir);
    const profile = await createProfile({ ...CLUD_TEST_SETTINGS, ...options.settings });
    const session = new VscodeSession(options, project, stateDir, profile);
    try {
      await installExtension(vsix, profile);
      session.server = await CodeServer.start({ profile, folder: project, env: { ...options.env, CLUD_STATE_DIR: stateDir }, logFile: path.join(session.resultsDir, 'code-server.log') });
    } catch (error) {
      await session.dispose();
      throw error;
    }
    return session;
  }

  get resultsDir(): string {
    return path.join(RESULTS_DIR, 'vscode', this.options.name);
  }

  /** The environment under which `clud` (dist/cli.js) sees the same workspace as the extension. */
  get cludEnv(): Record<string, string> {
    return { CLUD_IMAGE: TEST_IMAGE, CLUD_STATE_DIR: this.stateDir, CLUD_EXTRA_CA_CERTIFICATES: HOST_CA_BUNDLE };
  }

  /** Launches Chromium and opens the workbench on the project (this starts the extension host). */
  async open(): Promise<Page> {
    if (!this.server) throw new Error('code-server is not running');
    const { browser, page } = await launchBrowser();
    this.browser = browser;
    this.page = page;
    page.on('console', (message) => {
      if (message.type() !== 'error' && message.type() !== 'warning') return;
      this.consoleMessages.push(`${message.type()}: ${message.text()}`);
      if (this.consoleMessages.length > 200) this.consoleMessages.shift();
    });
    await openWorkbench(page, this.server);
    return page;
  }

  /** The extension host's own log (activation errors land here). */
  async extensionHostLog(): Promise<string> {
    const files = await findFiles(path.join(this.profile.userDataDir, 'logs'), (name) => name === 'remoteexthost.log' || name === 'exthost.log');
    const texts = await Promise.all(files.map((file) => readFile(file, 'utf8').catch(() => '')));
    return texts.join('\n');
  }

  /** Why the extension did not activate, from the extension host's log; undefined if it did not fail. */
  async activationError(): Promise<string | undefined> {
    const log = await this.extensionHostLog();
    const index = log.indexOf('Activating extension niteris.clud-workspace failed');
    return index < 0 ? undefined : log.slice(index, index + 600);
  }

  /** `clud ARGS` (dist/cli.js) with this session's image and state folder. */
  clud(args: string[]): ReturnType<typeof runClud> {
    return runClud(args, { env: this.cludEnv });
  }

  /**
   * Closes the browser, stops code-server, removes the workspace's container (`clud down --force`,
   * then anything still labelled with the folder) and the temp folders. Keeps the logs in
   * test-results/vscode/<name>/. Never throws before everything was tried.
   */
  async dispose(): Promise<void> {
    const failures: string[] = [];
    const attempt = async (what: string, work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (error) {
        failures.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    await attempt('close the browser', async () => this.browser?.close());
    await attempt('stop code-server', async () => this.server?.stop());
    await attempt('keep the logs', async () => {
      const logs = path.join(this.profile.userDataDir, 'logs');
      if (existsSync(logs)) await cp(logs, path.join(this.resultsDir, 'vscode-logs'), { recursive: true, force: true });
    });
    await attempt('clud down --force', async () => {
      const run = await this.clud(['down', this.project, '--force']);
      if (run.exitCode !== 0) throw new Error(`${run.command} exited ${run.exitCode}: ${run.stderr.trim()}`);
    });
    await attempt('remove leftover containers', async () => {
      for (const info of await containersFor(this.project)) await docker.getContainer(info.Id).remove({ force: true, v: true });
      // The coding agent's state volume outlives its container by design; the tests' do not.
      await docker.getVolume(agentVolumeName(containerNameFor(this.project, 'linux'))).remove().catch(() => {});
    });
    await removeTree(path.dirname(this.project));
    await removeTree(this.profile.root);
    if (failures.length) console.warn(`      cleanup of ${this.options.name}: ${failures.join('; ')}`);
  }
}

async function findFiles(dir: string, match: (name: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await findFiles(full, match)));
    else if (match(entry.name)) found.push(full);
  }
  return found;
}
