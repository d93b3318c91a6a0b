// The suite's one Mocha instance. Importing this module (first, from index.ts) puts mocha's BDD
// globals (describe, it, before...) on globalThis, so the *.suite.ts modules bundled after it
// register their tests when the bundle is loaded; run() in index.ts then runs them.
import Mocha from 'mocha';

export const mocha = new Mocha({ ui: 'bdd', reporter: 'spec', color: false, timeout: 60_000 });
mocha.suite.emit(Mocha.Suite.constants.EVENT_FILE_PRE_REQUIRE, globalThis, 'vscode-suite.js', mocha);
