// The packaged extension as a user meets it: `npm run package`, the .vsix installed into a fresh
// code-server profile, the user's project folder opened in Chromium, and then only what a user
// does: the command palette, the Settings editor, the status bar, the Clud view, Control+P, typing,
// Control+S, the Stop dialog. Every step leaves a screenshot in test-results/screenshots/e2e-*.png.
// What reached the container is checked from outside, with the `clud` CLI. Needs Docker and scripts/provision-vscode.sh.
//   npx mocha --timeout 600000 test/vscode/e2e.test.ts
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { containersFor, requireDocker } from '../helpers/integration';
import type { ProjectFiles } from '../helpers/integration';
import {
  CLUD_TEST_SETTINGS,
  VscodeSession,
  closeQuickInput,
  notificationTexts,
  packageExtension,
  pollFor,
  requireVscodeTools,
  runPaletteCommand,
  screenshot,
  sleep,
  statusBarTexts,
  typeInCommandPalette,
  waitForStatusBarText,
} from '../helpers/vscodeServer';

const PROJECT_FILES: ProjectFiles = {
  'README.md': '# A small project\n\nClud copies this folder into a container.\n',
  'notes.md': '# Notes\n',
  'src/index.js': "export const answer = 42;\n",
  '.gitignore': 'node_modules/\n',
};

/** Commands whose palette entry needs clud.running (package.json menus.commandPalette). */
const RUNNING_ONLY = ['Clud: Stop Workspace', 'Clud: Push to Container', 'Clud: Pull from Container', 'Clud: Sync Now', 'Clud: Open Container Terminal'];
/** The first start of a run may build the image (apt-get inside). */
const START_TIMEOUT_MS = 400_000;

function paletteLabels(labels: string[]): string[] {
  return labels.map((label) => label.replace(/\s+/g, ' ').trim());
}

/** The rows of the side bar's tree (label and description, as rendered). */
async function sideBarRows(page: Page): Promise<string[]> {
  const rows = await page.locator('.part.sidebar .monaco-list-row').evaluateAll((elements) =>
    elements.map((row) => [row.querySelector('.label-name')?.textContent ?? row.textContent ?? '', row.querySelector('.label-description')?.textContent ?? ''].join(' ')),
  );
  return rows.map((text) => text.replace(/\s+/g, ' ').trim());
}

/** The modal dialog that opens next: its text on one line (printed, and a screenshot named `shot`), and a way to click one of its buttons. */
async function modalDialog(page: Page, shot: string): Promise<{ question: string; choose(button: string): Promise<void> }> {
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ state: 'visible', timeout: 30_000 });
  const question = (await dialog.innerText()).replace(/\s+/g, ' ');
  await screenshot(page, shot);
  console.log(`      the dialog: ${question}`);
  return { question, choose: (button) => dialog.locator('.dialog-buttons .monaco-button', { hasText: button }).click() };
}

/** As a user does: Settings editor, search for the setting, type the value into its box. */
async function setImageTagInSettingsEditor(page: Page, value: string): Promise<void> {
  await runPaletteCommand(page, 'Preferences: Open User Settings');
  const editor = page.locator('.settings-editor');
  await editor.waitFor({ state: 'visible', timeout: 15_000 });
  await editor.locator('.settings-header .suggest-input-container').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('clud.imageTag');
  const input = editor.locator('.setting-item-contents', { hasText: 'Image Tag' }).locator('input').first();
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(value);
  await input.press('Tab'); // the editor writes the setting once the box loses focus (or after a short pause)
}

describe('vscode: end-to-end', function () {
  this.timeout(START_TIMEOUT_MS + 120_000);
  this.bail(true); // one user journey: a failed step makes the next ones meaningless
  let session: VscodeSession;
  let page: Page;
  let vsix: string;

  before(async () => {
    requireVscodeTools();
    await requireDocker();
    vsix = await packageExtension();
    // VS Code for the web (code-server) saves after a delay by default; the desktop default, which
    // makes Control+S the moment a file is saved, is "off".
    session = await VscodeSession.start(vsix, { name: 'e2e', files: PROJECT_FILES, settings: { 'files.autoSave': 'off' } });
    page = await session.open();
  });

  afterEach(async function () {
    // What the user saw when a step failed.
    if (this.currentTest?.state === 'failed' && page) await screenshot(page, `e2e-failed-${this.currentTest.title.split('.')[0]}`).catch(() => {});
  });

  after(async () => {
    await session?.dispose();
  });

  it('the packaged .vsix activates from a clean install, with nothing beside it', async () => {
    const bare = await VscodeSession.start(vsix, { name: 'e2e-bare', files: PROJECT_FILES });
    try {
      const barePage = await bare.open();
      await waitForStatusBarText(barePage, 'Clud', 60_000).catch(async (error: unknown) => {
        await screenshot(barePage, 'e2e-00-bare-install');
        throw new Error(`${error instanceof Error ? error.message : String(error)}\n${(await bare.activationError()) ?? ''}`);
      });
      await screenshot(barePage, 'e2e-00-bare-install');
      assert.equal(await bare.activationError(), undefined);
    } finally {
      await bare.dispose();
    }
  });

  it('1. the workbench opens the folder and shows Clud, stopped, in the status bar', async () => {
    const text = await waitForStatusBarText(page, 'Clud', 60_000).catch(async (error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${(await session.activationError()) ?? ''}`);
    });
    await screenshot(page, 'e2e-01-workbench');
    assert.equal(text, 'Clud', 'the stopped item reads "$(circle-slash) Clud"');
    assert.equal(await session.activationError(), undefined);
  });

  it('2. before a start, the palette offers Start Workspace but none of the commands that need a running workspace', async () => {
    const labels = paletteLabels(await typeInCommandPalette(page, 'Clud:'));
    await screenshot(page, 'e2e-02-palette-before-start');
    await closeQuickInput(page);
    assert.ok(labels.includes('Clud: Start Workspace'), JSON.stringify(labels));
    assert.deepEqual(
      labels.filter((label) => RUNNING_ONLY.includes(label)),
      [],
      'clud.running is false, so these must be hidden',
    );
  });

  it('3. with clud.imageTag set to "Not Valid!" in the Settings editor, Start Workspace shows an error naming the setting and starts nothing', async () => {
    const settingsFile = path.join(session.profile.userDataDir, 'User', 'settings.json');
    await setImageTagInSettingsEditor(page, 'Not Valid!');
    await pollFor('settings.json to hold the invalid tag', async () => ((await readFile(settingsFile, 'utf8')).includes('Not Valid!') ? true : undefined), 10_000);
    await screenshot(page, 'e2e-03-settings-editor-invalid-tag');
    // Closed with the mouse before the palette opens: a Settings editor still re-rendering the row
    // it just wrote can take the focus back from the palette as soon as it opens, which closes it.
    await page.locator('.tabs-container .tab', { hasText: 'Settings' }).locator('.tab-actions .action-label').first().click();
    await page.locator('.settings-editor').waitFor({ state: 'hidden', timeout: 10_000 });
    try {
      await runPaletteCommand(page, 'Clud: Start Workspace');
      const message = await pollFor('an error notification naming clud.imageTag', async () => (await notificationTexts(page)).find((text) => text.includes('clud.imageTag')), 20_000);
      await sleep(800); // let the toast finish sliding in
      await screenshot(page, 'e2e-04-invalid-setting-error');
      console.log(`      the notification: ${message}`);
      assert.match(message, /Invalid setting clud\.imageTag/);
      assert.equal(await waitForStatusBarText(page, 'Clud: error', 5000), 'Clud: error', 'the failure stays in the status bar');
      assert.deepEqual(await containersFor(session.project), [], 'nothing started');
    } finally {
      await runPaletteCommand(page, 'Notifications: Clear All Notifications').catch(() => {});
      await setImageTagInSettingsEditor(page, CLUD_TEST_SETTINGS['clud.imageTag']);
      await pollFor('settings.json to hold the test tag again', async () => ((await readFile(settingsFile, 'utf8')).includes('Not Valid!') ? undefined : true), 10_000);
      await page.keyboard.press('Control+W'); // close the Settings editor
    }
  });

  it('4. "Clud: Start Workspace" from the palette brings the status bar to "Clud: synced"', async () => {
    await runPaletteCommand(page, 'Clud: Start Workspace');
    await sleep(1500);
    await screenshot(page, 'e2e-05-starting');
    await waitForStatusBarText(page, 'Clud: synced', START_TIMEOUT_MS).catch(async (error: unknown) => {
      await screenshot(page, 'e2e-05-start-failed');
      throw new Error(`${error instanceof Error ? error.message : String(error)}; notifications: ${JSON.stringify(await notificationTexts(page))}`);
    });
    await screenshot(page, 'e2e-06-synced');
    const listing = await session.clud(['exec', session.project, '--', 'cat', 'README.md']);
    assert.equal(listing.exitCode, 0, listing.stderr);
    assert.equal(listing.stdout, PROJECT_FILES['README.md']);
  });

  it('5. with the workspace running, the palette offers Push, Pull, Sync Now and Stop', async () => {
    const labels = paletteLabels(await typeInCommandPalette(page, 'Clud:'));
    await screenshot(page, 'e2e-07-palette-running');
    await closeQuickInput(page);
    assert.deepEqual(
      RUNNING_ONLY.filter((title) => !labels.includes(title)),
      [],
      `clud.running is true, so all of these must be listed; the palette lists ${JSON.stringify(labels)}`,
    );
  });

  it('6. the Clud view in the activity bar shows the workspace and the last sync\'s metrics', async () => {
    await page.locator('.part.activitybar [aria-label="Clud"]').first().click();
    // The periodic rescan runs every 10 s and the view says "syncing" while it does: the rows
    // are read once the workspace row is back to "synced".
    const rows = await pollFor(
      'the Clud view\'s "Last sync" rows, with the workspace synced',
      async () => {
        const current = await sideBarRows(page);
        const settled = current.some((row) => /^clud-project-[0-9a-f]+ synced$/.test(row));
        return settled && current.some((row) => row.startsWith('Duration')) && current.some((row) => row.startsWith('Files')) ? current : undefined;
      },
      20_000,
    ).catch(async (error: unknown) => {
      await screenshot(page, 'e2e-08-clud-view-failed');
      throw new Error(`${error instanceof Error ? error.message : String(error)}; the side bar shows ${JSON.stringify(await sideBarRows(page))}`);
    });
    await screenshot(page, 'e2e-08-clud-view');
    console.log(`      the Clud view: ${rows.join(' | ')}`);
    assert.ok(rows.some((row) => /^clud-project-[0-9a-f]+ synced$/.test(row)), 'the workspace row names the container and says "synced"');
    assert.ok(rows.some((row) => row.startsWith('Last sync')));
    assert.ok(rows.some((row) => /^Duration \d+ ms$/.test(row)));
    assert.ok(rows.some((row) => /^Files \d+ copied, \d+ deleted$/.test(row)));
  });

  it('7. a file opened with Control+P, typed into and saved with Control+S reaches the container\'s /workspace', async () => {
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget').waitFor({ state: 'visible', timeout: 15_000 });
    await page.keyboard.type('notes.md');
    await sleep(800);
    await page.keyboard.press('Enter');
    await page.locator('.tabs-container .tab.active', { hasText: 'notes.md' }).waitFor({ timeout: 15_000 });
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
    const marker = `Typed in the browser at ${Date.now()}`;
    await page.keyboard.type(`\n${marker}\n`);
    await page.locator('.tabs-container .tab.active.dirty').waitFor({ timeout: 5_000 }); // unsaved: files.autoSave is off
    await screenshot(page, 'e2e-09-typed');
    await page.keyboard.press('Control+S');
    await page.locator('.tabs-container .tab.active.dirty').waitFor({ state: 'detached', timeout: 15_000 });

    const hostFile = path.join(session.project, 'notes.md');
    const onHost = await pollFor('the typed text in the host file', async () => {
      const text = await readFile(hostFile, 'utf8');
      return text.includes(marker) ? text : undefined;
    }, 10_000);
    const inContainer = await pollFor(
      'the typed text in /workspace/notes.md (clud exec ... cat notes.md)',
      async () => {
        const run = await session.clud(['exec', session.project, '--', 'cat', 'notes.md']);
        return run.exitCode === 0 && run.stdout.includes(marker) ? run.stdout : undefined;
      },
      30_000,
      1000,
    );
    assert.equal(inContainer, onHost);
    await waitForStatusBarText(page, 'Clud: synced', 30_000);
    await pollFor('the Clud view to show the save\'s sync', async () => ((await sideBarRows(page)).includes('Files 1 copied, 0 deleted') ? true : undefined), 10_000).catch(() => {});
    await screenshot(page, 'e2e-10-saved-and-synced');
  });

  it('8. a file the sync cannot carry (a named pipe the agent made) is listed under Problems in the Clud view until it is gone', async () => {
    const inContainer = (script: string) => session.clud(['exec', session.project, '--', 'sh', '-c', script]);
    assert.equal((await inContainer('mkfifo agent-pipe')).exitCode, 0);
    const listed = await pollFor('the pipe under Problems in the Clud view', async () => {
      const rows = await sideBarRows(page);
      return rows.some((row) => row.startsWith('agent-pipe')) ? rows : undefined;
    }, 30_000);
    await screenshot(page, 'e2e-10a-problem-listed');
    console.log(`      the Clud view: ${listed.join(' | ')}`);
    assert.ok(listed.includes('Problems 1'), 'a Problems node counting one problem');
    assert.ok(listed.includes('Errors 0'), 'the last sync counts the pipe as an entry left alone, not as an error');
    assert.ok(listed.includes('agent-pipe container: named pipe (FIFO): cannot be synchronized'), 'the problem row names the path, the side and why');
    assert.equal((await inContainer('rm agent-pipe')).exitCode, 0);
    await pollFor('the Problems node gone', async () => ((await sideBarRows(page)).some((row) => row.startsWith('Problems')) ? undefined : true), 30_000);
  });

  it('9. a Claude Code turn whose Stop never came: "Clud: Undo Agent\'s Last Turn" asks whether to undo it anyway; "Undo Anyway" puts the folder back', async () => {
    // The hook Claude Code runs at a prompt, then its write; Claude Code is gone before its Stop.
    const inContainer = (script: string) => session.clud(['exec', session.project, '--', 'sh', '-c', script]);
    const started = await inContainer(`echo '{"prompt":"killed mid-turn"}' | node /opt/clud/agent.js hook UserPromptSubmit`);
    assert.equal(started.exitCode, 0, started.stderr);
    assert.equal((await inContainer('echo half done > half-done.txt')).exitCode, 0);
    const hostFile = path.join(session.project, 'half-done.txt');
    await pollFor('the turn\'s file on the host', async () => ((await readFile(hostFile, 'utf8').catch(() => '')) === 'half done\n' ? true : undefined), 30_000);
    await runPaletteCommand(page, "Clud: Undo Agent's Last Turn");
    const dialog = await modalDialog(page, 'e2e-11-undo-running-turn-asks');
    assert.match(dialog.question, /turn "killed mid-turn" has not ended\. Undo it anyway\?/);
    await dialog.choose('Undo Anyway');
    await pollFor('half-done.txt gone from the host', async () => ((await readFile(hostFile, 'utf8').catch(() => undefined)) === undefined ? true : undefined), 30_000);
    await pollFor('the notification that the turn was undone', async () => ((await notificationTexts(page)).some((text) => /undid 1 step/.test(text)) ? true : undefined), 15_000);
    await screenshot(page, 'e2e-12-undid-running-turn');
  });

  it('10. "Clud: Pause Auto-Sync" turns the status bar to "Clud: paused"; "Clud: Stop Workspace" with a file only the container has asks first; "Sync, Then Stop" brings it over and stops', async () => {
    // Paused, or continuous sync would bring the file over before the stop looks.
    await runPaletteCommand(page, 'Clud: Pause Auto-Sync');
    await waitForStatusBarText(page, 'Clud: paused', 30_000);
    await screenshot(page, 'e2e-13-paused');
    const made = await session.clud(['exec', session.project, '--', 'sh', '-c', 'echo written by the agent > agent-notes.txt']);
    assert.equal(made.exitCode, 0, made.stderr);
    await runPaletteCommand(page, 'Clud: Stop Workspace');
    const dialog = await modalDialog(page, 'e2e-14-stop-asks');
    assert.match(dialog.question, /agent-notes\.txt/);
    assert.match(dialog.question, /Stopping removes the container/);
    await dialog.choose('Sync, Then Stop');
    await pollFor('the status bar to show the stopped item ("Clud")', async () => ((await statusBarTexts(page)).includes('Clud') ? true : undefined), 60_000);
    await screenshot(page, 'e2e-15-stopped');
    assert.equal(await readFile(path.join(session.project, 'agent-notes.txt'), 'utf8'), 'written by the agent\n');
    const status = await session.clud(['status', session.project, '--json']);
    assert.match(status.stdout, /"state":\s*"missing"/, `clud status after the stop:\n${status.stdout}${status.stderr}`);
  });
});
