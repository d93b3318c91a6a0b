// appendWriter.ts as a program, for either side of the concurrent-edits test:
//
//   node append-writer.js ROOT SIDE START_AT_MS DURATION_MS SEED
//
// Prints its WriterLog as one JSON object when done.
import { runWriter } from './appendWriter';

const [root, side, startAt, durationMs, seed] = process.argv.slice(2);
if (!root || !side || !startAt || !durationMs || !seed) {
  process.stderr.write('usage: append-writer ROOT SIDE START_AT_MS DURATION_MS SEED\n');
  process.exit(2);
}
runWriter({ root, side, startAt: Number(startAt), durationMs: Number(durationMs), seed: Number(seed) }).then(
  (log) => process.stdout.write(`${JSON.stringify(log)}\n`),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  },
);
