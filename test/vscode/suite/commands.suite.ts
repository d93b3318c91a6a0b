// Before anything starts: activation, the command table, the "not running" state, and a bad
// setting. These run first (index.ts imports this module before workspace.suite.ts).
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import * as vscode from 'vscode';
import { isRunning } from '../../../src/core/ui/state';
import { statusBarView } from '../../../src/core/ui/statusBar';
import { buildTree } from '../../../src/core/ui/tree';
import { EXTENSION_ID, cludLog, containersForFolder, errorCode, getController, hostFile, rejection, sleep, waitFor, waitForLog, workspaceFolder } from './support';

describe('vscode: activation and commands', () => {
  it('activates for the open folder and exports its controller', async () => {
    const controller = await getController();
    assert.equal(controller.folder.uri.fsPath, workspaceFolder().uri.fsPath);
  });

  it('registers every command package.json contributes, and no undeclared clud.* command', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed`);
    const declared = (extension.packageJSON as { contributes: { commands: Array<{ command: string }> } }).contributes.commands.map((command) => command.command);
    assert.ok(declared.length >= 15, `package.json declares only ${declared.length} commands`);
    const registered = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(
      declared.filter((id) => !registered.has(id)),
      [],
      'declared in package.json but not registered',
    );
    // VS Code itself registers the view's commands (clud.workspace.focus, ...).
    const undeclared = [...registered].filter((id) => id.startsWith('clud.') && !id.startsWith('clud.workspace.') && !declared.includes(id));
    assert.deepEqual(undeclared, [], 'registered but not declared in package.json');
  });

  it('shows a stopped workspace before anything starts: not running, the status bar offers Start, the tree is empty (welcome view)', async () => {
    const controller = await getController();
    assert.equal(controller.viewState.health.kind, 'stopped');
    assert.equal(isRunning(controller.viewState), false, 'clud.running would be true');
    const view = statusBarView(controller.viewState);
    assert.equal(view.text, '$(circle-slash) Clud');
    assert.equal(view.command, 'clud.startWorkspace');
    assert.deepEqual(buildTree(controller.viewState), []);
    assert.deepEqual(await containersForFolder(), []);
  });

  it('clud.push before start (enablement clud.running is false) changes nothing and logs that no container runs', async () => {
    const controller = await getController();
    // executeCommand ignores `enablement` (only menus, the palette and keys honour it), so this
    // is what a script or a keybinding without the guard would get: a handled failure.
    await vscode.commands.executeCommand('clud.push');
    assert.equal(controller.viewState.health.kind, 'stopped');
    assert.equal(isRunning(controller.viewState), false);
    assert.deepEqual(await containersForFolder(), [], 'clud.push must not create a container');
    const log = await waitForLog('not-running');
    assert.match(log, /"event":"failed".*"code":"not-running"/);
  });
});

describe('vscode: an invalid setting', () => {
  const settingsFolder = () => hostFile('.vscode');
  let hadSettingsFolder = false;

  before(async () => {
    hadSettingsFolder = existsSync(settingsFolder());
    await vscode.workspace.getConfiguration('clud').update('imageTag', 'Not Valid!', vscode.ConfigurationTarget.Workspace);
    await waitFor('the setting to apply', async () => (vscode.workspace.getConfiguration('clud', workspaceFolder().uri).get('imageTag') === 'Not Valid!' ? true : undefined), 10_000);
  });

  after(async () => {
    await vscode.workspace.getConfiguration('clud').update('imageTag', undefined, vscode.ConfigurationTarget.Workspace);
    await waitFor('the setting to be reset', async () => (vscode.workspace.getConfiguration('clud', workspaceFolder().uri).get('imageTag') !== 'Not Valid!' ? true : undefined), 10_000);
    // The Workspace target wrote <folder>/.vscode/settings.json; leave the project as it was.
    if (!hadSettingsFolder) rmSync(settingsFolder(), { recursive: true, force: true });
  });

  it('controller.start() fails with invalid-config naming clud.imageTag, and nothing starts', async () => {
    const controller = await getController();
    const error = await rejection(controller.start(), 'start with clud.imageTag "Not Valid!"');
    assert.equal(errorCode(error), 'invalid-config', String(error));
    assert.match(String((error as Error).message), /clud\.imageTag/);
    const health = controller.viewState.health;
    assert.equal(health.kind, 'error', 'the failure stays visible in the status bar and the tree');
    assert.match(health.kind === 'error' ? health.message : '', /clud\.imageTag/);
    assert.deepEqual(await containersForFolder(), []);
  });

  it('the Start Workspace command starts nothing', async () => {
    const controller = await getController();
    await vscode.commands.executeCommand('clud.startWorkspace');
    await sleep(500);
    assert.equal(controller.viewState.health.kind, 'error');
    assert.deepEqual(await containersForFolder(), []);
  });

  it('the Start Workspace command reports the setting by name where it stays: in the Clud log', async () => {
    await vscode.commands.executeCommand('clud.startWorkspace');
    await waitForLog('clud.imageTag', 5_000).catch(async (error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- Clud log:\n${(await cludLog()).slice(-3000)}`);
    });
  });
});
