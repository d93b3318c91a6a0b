// Runs the extension-host suite (test/vscode/suite/*.suite.ts) inside a real VS Code: code-server
// with Clud installed from the .vsix, started with CLUD_EXTENSION_TESTS naming the suite's bundle,
// so Clud's activate() runs it with the real `vscode` API. A browser page opens the folder (that
// starts the extension host); the suite writes its results as JSON, which this test reads and
// prints, one line per test. Needs Docker and scripts/provision-vscode.sh's code-server and Chromium.
//   npx mocha --timeout 600000 test/vscode/extensionHost.test.ts
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { requireDocker } from '../helpers/integration';
import type { ProjectFiles } from '../helpers/integration';
import { VscodeSession, buildExtensionHostSuite, packageExtension, pollFor, requireVscodeTools, screenshot } from '../helpers/vscodeServer';
import type { SuiteResults } from './suite/index';

/** The folder the suite works on; workspace.suite.ts relies on these names. */
export const PROJECT_FILES: ProjectFiles = {
  'hello.txt': 'hello from the host\n',
  'notes.md': '# Notes\n\n',
  'burst.txt': 'save 0\n',
  'conflict.txt': 'the same on both sides\n',
  'src/app.js': "console.log('app');\n",
};

/** The whole suite, including a first image build of the run; normally about a minute. */
const SUITE_TIMEOUT_MS = 420_000;

describe('vscode: extension host', function () {
  this.timeout(SUITE_TIMEOUT_MS + 120_000);
  let session: VscodeSession | undefined;
  let resultsFile = '';

  before(async () => {
    requireVscodeTools();
    await requireDocker();
    const [vsix, bundle] = await Promise.all([packageExtension(), buildExtensionHostSuite()]);
    resultsFile = path.join(path.dirname(bundle), 'vscode-suite-results.json');
    await rm(resultsFile, { force: true });
    session = await VscodeSession.start(vsix, { name: 'extension-host', files: PROJECT_FILES, env: { CLUD_EXTENSION_TESTS: bundle, CLUD_EXTENSION_TEST_RESULTS: resultsFile } });
  });

  after(async () => {
    await session?.dispose();
  });

  it('runs the extension-host suite in code-server with no failures', async () => {
    const page = await session!.open();
    const started = Date.now();
    const results = await pollFor(
      `the suite's results in ${resultsFile}`,
      async () => {
        if (existsSync(resultsFile)) return JSON.parse(await readFile(resultsFile, 'utf8')) as SuiteResults;
        if (!session!.server!.running) throw new Error('code-server exited while the suite ran');
        // Fail fast, with the reason, when the extension cannot even activate.
        const activationError = await session!.activationError();
        if (activationError) throw new Error(`Clud did not activate in code-server, so the suite never ran:\n${activationError}`);
        return undefined;
      },
      SUITE_TIMEOUT_MS,
      1000,
    ).catch(async (error: unknown) => {
      await screenshot(page, 'extension-host-timeout').catch(() => {});
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- code-server log (tail):\n${await session!.server!.logTail()}`);
    });
    await screenshot(page, 'extension-host-suite-done');

    const mark = { passed: '✓', failed: '✗', pending: '-' } as const;
    console.log(`      extension-host suite: ${results.passes} passed, ${results.failures} failed, ${results.pending} skipped in ${Math.round((Date.now() - started) / 1000)} s`);
    for (const test of results.tests) {
      console.log(`        ${mark[test.state]} ${test.title}${test.durationMs !== undefined ? ` (${test.durationMs} ms)` : ''}`);
      for (const line of test.notes ?? []) console.log(`            ${line}`);
      if (test.error) console.log(test.error.split('\n').map((line) => `            ${line}`).join('\n'));
    }
    assert.equal(results.fatal, undefined, `the suite could not run: ${results.fatal}`);
    assert.ok(results.tests.length > 0, 'the suite ran no tests');
    const failed = results.tests.filter((test) => test.state === 'failed');
    if (failed.length) console.log(`      the workbench's console errors and warnings (last 40):\n${session!.consoleMessages.slice(-40).map((line) => `        ${line.slice(0, 600)}`).join('\n')}`);
    assert.deepEqual(
      failed.map((test) => test.title),
      [],
      `extension-host tests failed:\n${failed.map((test) => `${test.title}\n${test.error}`).join('\n\n')}`,
    );
  });
});
