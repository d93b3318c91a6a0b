// @vscode/test-electron's extensionTestsPath: runs the same extension-host suite as the
// code-server harness (test/vscode/suite, bundled by test/vscode/build.mjs), inside a downloaded
// VS Code. The suite writes its results to CLUD_EXTENSION_TEST_RESULTS; this fails on failures.
const { readFileSync } = require('node:fs');
const vscode = require('vscode');

exports.run = async function run() {
  const extension = vscode.extensions.getExtension('niteris.clud-workspace');
  if (!extension) throw new Error('Clud is not loaded in this VS Code');
  const api = await extension.activate();
  const suite = require(process.env.CLUD_EXTENSION_TESTS);
  // The suite needs only the log location from the extension context.
  await suite.run({ logUri: api.logUri });
  const results = JSON.parse(readFileSync(process.env.CLUD_EXTENSION_TEST_RESULTS, 'utf8'));
  for (const test of results.tests) console.log(`${test.state.padEnd(7)} ${test.title}${test.error ? `\n${test.error}` : ''}`);
  console.log(`tests: ${results.passes} passed, ${results.failures} failed, ${results.pending} skipped`);
  if (results.failures > 0) throw new Error(`${results.failures} extension-host test(s) failed${results.fatal ? `: ${results.fatal}` : ''}`);
};
