// Entry of the extension-host suite, bundled by test/vscode/build.mjs. When code-server starts
// with CLUD_EXTENSION_TESTS naming the bundle, Clud's activate() requires it and calls
// run(context) (runTestsIfAsked in src/extension/extension.ts). run() runs the tests with the real
// `vscode` API and writes the results as JSON to the file CLUD_EXTENSION_TEST_RESULTS names, which
// the harness (test/vscode/extensionHost.test.ts) waits for.
import { mocha } from './mocha'; // first: it puts describe/it on globalThis for the modules below
import './commands.suite';
import './workspace.suite';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import type * as vscode from 'vscode';
import { setExtensionContext, takeNotes } from './support';

export interface SuiteTestResult {
  title: string;
  state: 'passed' | 'failed' | 'pending';
  durationMs?: number;
  error?: string;
  /** Lines the test asked to be printed (see note() in support.ts). */
  notes?: string[];
}

export interface SuiteResults {
  passes: number;
  failures: number;
  pending: number;
  durationMs: number;
  tests: SuiteTestResult[];
  /** Set when the suite could not run at all. */
  fatal?: string;
}

const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING } = Mocha.Runner.constants;

export async function run(context: vscode.ExtensionContext): Promise<void> {
  const started = Date.now();
  const results: SuiteResults = { passes: 0, failures: 0, pending: 0, durationMs: 0, tests: [] };
  try {
    setExtensionContext(context);
    await new Promise<void>((resolve) => {
      const runner = mocha.run(() => resolve());
      runner.on(EVENT_TEST_PASS, (test: Mocha.Test) => results.tests.push({ title: test.fullTitle(), state: 'passed', durationMs: test.duration, notes: takeNotes() }));
      runner.on(EVENT_TEST_PENDING, (test: Mocha.Test) => results.tests.push({ title: test.fullTitle(), state: 'pending' }));
      runner.on(EVENT_TEST_FAIL, (test: Mocha.Runnable, error: Error) =>
        results.tests.push({ title: test.fullTitle(), state: 'failed', durationMs: test.duration, error: error?.stack ?? String(error), notes: takeNotes() }),
      );
    });
  } catch (error) {
    results.fatal = error instanceof Error ? (error.stack ?? error.message) : String(error);
  }
  results.passes = results.tests.filter((test) => test.state === 'passed').length;
  results.failures = results.tests.filter((test) => test.state === 'failed').length + (results.fatal ? 1 : 0);
  results.pending = results.tests.filter((test) => test.state === 'pending').length;
  results.durationMs = Date.now() - started;
  writeResults(results);
}

/** Written whole (temp file, then rename) so the harness never reads half a file. */
function writeResults(results: SuiteResults): void {
  const file = process.env.CLUD_EXTENSION_TEST_RESULTS;
  if (!file) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(results, null, 2));
  renameSync(`${file}.tmp`, file);
}
