// The browser IDE: `clud up --ui` runs code-server from the UI image as the workspace user in
// /workspace, published on the host's loopback; a real Chromium loads it and shows /workspace's
// files. The UI image is built once per run (the first `up --ui`) and reused by the others.
import assert from 'node:assert/strict';
import { uiImageTag } from '../../src/core/containerLayout';
import { INTEGRATION_TIMEOUT_MS, TEST_IMAGE, TestScope, assertExit, describeRun, docker, requireDocker, runClud, runCludJson } from '../helpers/integration';
import { launchBrowser, screenshot } from '../helpers/vscodeServer';

interface UiJson {
  url: string;
  hostPort: number;
  password?: string;
}

async function upWithUi(dir: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ json: Record<string, unknown>; ui: UiJson; exitCode: number }> {
  const { run, json } = await runCludJson(['up', dir, '--ui', ...args], { timeoutMs: 1_800_000, env });
  const ui = json.ui as UiJson | undefined;
  assert.ok(ui?.url, `no IDE address\n${describeRun(run)}`);
  return { json, ui, exitCode: run.exitCode };
}

/**
 * Runs a shell script in the container as `user`. Reading another process's /proc/PID/cwd takes
 * ptrace rights, which the container's root lacks (no CAP_SYS_PTRACE) and the process's owner has.
 */
async function shAs(container: string, user: string, script: string): Promise<string> {
  const exec = await docker.getContainer(container).exec({ Cmd: ['sh', '-c', script], User: user, AttachStdout: true, AttachStderr: true, Tty: true });
  const stream = await exec.start({ Tty: true });
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise((resolve) => stream.on('end', resolve));
  return Buffer.concat(chunks).toString('utf8').replace(/\r/g, '');
}

describe('integration: the browser IDE (clud up --ui)', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS * 3);
  const scope = new TestScope();
  let dir = '';
  let first: { json: Record<string, unknown>; ui: UiJson; exitCode: number };

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'hello-from-clud.txt': 'hello\n', 'src/app.ts': 'export const app = 1;\n', 'docs/guide.md': '# guide\n' });
    first = await upWithUi(dir);
    assertExit({ exitCode: first.exitCode, stdout: '', stderr: '', command: 'clud up --ui' }, 0);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('runs the UI image and publishes port 8743 on 127.0.0.1 only; code-server answers HTTP on the printed port', async function () {
    const container = await docker.getContainer(first.json.containerName as string).inspect();
    assert.equal(container.Config.Image, uiImageTag(TEST_IMAGE));
    const bindings = container.HostConfig.PortBindings as Record<string, Array<{ HostIp: string; HostPort: string }>>;
    assert.deepEqual(Object.keys(bindings), ['8743/tcp']);
    assert.equal(bindings['8743/tcp']![0]!.HostIp, '127.0.0.1');
    assert.equal(first.ui.url, `http://127.0.0.1:${first.ui.hostPort}/?folder=/workspace`);
    const response = await fetch(first.ui.url);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /code-server|vscode/i);
    // `clud ui` and `clud status` print the same address.
    const ui = await runClud(['ui', dir]);
    assertExit(ui, 0);
    assert.equal(ui.stdout.trim(), first.ui.url);
    assert.match((await runClud(['status', dir])).stdout, new RegExp(`IDE: +${first.ui.url.replace(/[?/.]/g, '\\$&')}`));
  });

  it('runs code-server as the workspace user with /workspace as its working directory (from /proc)', async function () {
    const report = await shAs(
      first.json.containerName as string,
      'coder',
      'for p in $(pgrep -f /opt/code-server); do echo "$(stat -c %U /proc/$p) $(readlink /proc/$p/cwd) $(tr "\\0" " " < /proc/$p/cmdline | cut -c1-80)"; done',
    );
    const processes = report.trim().split('\n').filter(Boolean);
    assert.ok(processes.length > 0, `no code-server process:\n${report}`);
    for (const line of processes) {
      const [user, cwd] = line.split(' ');
      // stat names the owner whoever asks; an unreadable cwd (a process of another user) would be empty.
      assert.equal(user, 'coder', line);
      assert.equal(cwd, '/workspace', line);
    }
  });

  it('starts the IDE again when `clud up` starts a stopped container', async function () {
    const name = first.json.containerName as string;
    await docker.getContainer(name).stop();
    const again = await runCludJson(['up', dir], { timeoutMs: 600_000 });
    assertExit(again.run, 0);
    const ui = again.json.ui as UiJson;
    assert.equal(again.json.started, true);
    assert.equal((await fetch(ui.url)).status, 200);
    first = { ...first, ui };
  });

  it('gives a second workspace with the IDE another port', async function () {
    const other = await scope.project({ 'other.txt': 'other\n' });
    const second = await upWithUi(other);
    assert.equal(second.exitCode, 0);
    assert.notEqual(second.ui.hostPort, first.ui.hostPort);
    assert.equal((await fetch(second.ui.url)).status, 200);
    assertExit(await runClud(['down', other, '--force']), 0);
  });

  it('changing the IDE\'s sign-in recreates the container: refused while /workspace holds an unsynced change, naming commands that exist', async function () {
    const other = await scope.project({ 'other.txt': 'other\n' });
    assert.equal((await upWithUi(other)).exitCode, 0);
    // Auto-sync is off in the tests: the new file stays in /workspace only.
    assertExit(await runClud(['exec', other, '--', 'sh', '-c', 'echo only here > unsynced.txt']), 0);
    const { run, json } = await runCludJson(['up', other, '--ui', '--auth', 'password']);
    assertExit(run, 1);
    const error = json.error as { code?: string; message?: string; hint?: string };
    assert.equal(error.code, 'unsynced-changes', describeRun(run));
    assert.match(String(error.message), /1 change\(s\) made in \/workspace have not reached .* \(unsynced\.txt\)/);
    assert.equal(error.hint, 'Run `clud sync` to bring the container\'s changes over first, or `clud down --force` to drop them, then run this again.');
    assertExit(await runClud(['down', other, '--force']), 0);
  });

  it("loads in a real browser and shows /workspace's files", async function () {
    const { browser, page } = await launchBrowser();
    try {
      await page.goto(first.ui.url, { timeout: 120_000 });
      await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: 120_000 });
      // The Explorer lists the folder's entries once the workbench has read /workspace.
      const explorer = page.locator('.explorer-folders-view');
      await explorer.waitFor({ state: 'visible', timeout: 120_000 }).catch(async () => {
        await page.keyboard.press('Control+Shift+E');
        await explorer.waitFor({ state: 'visible', timeout: 60_000 });
      });
      for (const name of ['hello-from-clud.txt', 'src', 'docs']) {
        await explorer.getByText(name, { exact: true }).first().waitFor({ state: 'visible', timeout: 60_000 });
      }
      const file = await screenshot(page, 'clud-ui-workspace');
      console.log(`      screenshot: ${file}`);
    } finally {
      await browser.close();
    }
  });

  it('starts the IDE even when the initial copy failed, and reports the failure', async function () {
    const broken = await scope.project({ 'fine.txt': 'fine\n' });
    // An unreadable file no longer fails the copy (it is left alone); the agent's failpoint does.
    const { json, ui, exitCode } = await upWithUi(broken, [], { CLUD_FAILPOINT: 'fail-initial-copy' });
    assert.equal(exitCode, 1);
    assert.equal((json.init as { phase: string }).phase, 'failed');
    assert.match(String((json.init as { error?: string }).error), /made to fail/);
    assert.equal((await fetch(ui.url)).status, 200);
    const status = await runClud(['status', broken]);
    assert.match(status.stdout, /workspace: failed/);
    assert.match(status.stdout, /IDE: +http:\/\/127\.0\.0\.1:/);
    assertExit(await runClud(['down', broken, '--force']), 0);
  });

  it('with --auth password, prints a generated password once and code-server asks for it', async function () {
    const locked = await scope.project({ 'a.txt': 'a\n' });
    const { ui, exitCode } = await upWithUi(locked, ['--auth', 'password']);
    assert.equal(exitCode, 0);
    assert.ok(ui.password && ui.password.length >= 20, 'no password printed');
    const response = await fetch(ui.url, { redirect: 'manual' });
    assert.equal(response.status, 302);
    assert.match(response.headers.get('location') ?? '', /login/);
    // Running `up` again does not print it again (code-server keeps the one it started with).
    const again = await runCludJson(['up', locked]);
    assert.equal((again.json.ui as UiJson).password, undefined);
    assertExit(await runClud(['down', locked, '--force']), 0);
  });
});
