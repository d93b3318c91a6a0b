// The extension-host suite in a desktop VS Code downloaded by @vscode/test-electron, for machines
// that can download it (npm run test:vscode:electron). Where VS Code cannot be downloaded, as on
// our CI machines, the same suite runs inside code-server instead (test/vscode/extensionHost.test.ts).
import { runTests } from '@vscode/test-electron';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
execFileSync(process.execPath, [path.join(root, 'esbuild.mjs')], { stdio: 'inherit' });
const suite = execFileSync(process.execPath, [path.join(root, 'test', 'vscode', 'build.mjs')], { encoding: 'utf8' }).trim().split('\n').pop();

const work = mkdtempSync(path.join(os.tmpdir(), 'clud-electron-'));
const project = path.join(work, 'project');
mkdirSync(project);
writeFileSync(path.join(project, 'README.md'), '# a project\n');
writeFileSync(path.join(project, 'notes.md'), 'notes\n');
const userData = path.join(work, 'user-data');
mkdirSync(path.join(userData, 'User'), { recursive: true });
writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({ 'security.workspace.trust.enabled': false, 'workbench.startupEditor': 'none' }));

await runTests({
  extensionDevelopmentPath: root,
  extensionTestsPath: path.join(root, 'test', 'vscode', 'electron', 'entry.cjs'),
  launchArgs: [project, '--user-data-dir', userData, '--disable-workspace-trust'],
  extensionTestsEnv: {
    CLUD_EXTENSION_TESTS: suite,
    CLUD_EXTENSION_TEST_RESULTS: path.join(work, 'results.json'),
    CLUD_STATE_DIR: path.join(work, 'state'),
  },
});
