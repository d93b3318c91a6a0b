// mocha's spec output plus one closing line in the plain form CI reads: "tests: N passed, N failed, N skipped",
// after it the full title of each failed test, one a line, so that the end of a long run names them.
const Mocha = require('mocha');
const { EVENT_RUN_END, EVENT_TEST_FAIL } = Mocha.Runner.constants;

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const failed = [];
    runner.on(EVENT_TEST_FAIL, (test) => failed.push(test.fullTitle()));
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      process.stdout.write(`\ntests: ${passes} passed, ${failures} failed, ${pending} skipped\n`);
      for (const title of failed) process.stdout.write(`failed: ${title}\n`);
    });
  }
}

module.exports = SpecWithSummary;
