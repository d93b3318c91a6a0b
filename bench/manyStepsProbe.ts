// Not a benchmark of record: what a cycle's undo bookkeeping (the record, its close, the barrier
// check of its region) costs as the log holds more records, one file written per cycle into one
// long group, every 500 cycles; then the time to undo that group. Used to choose the log's limit
// on records (UndoLimits.maxStoredSteps). Usage: node --import tsx bench/manyStepsProbe.ts [CYCLES]
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { UndoLog } from '../src/core/undo';
import { ops } from '../test/helpers/undoTrees';

async function main() {
  const base = '/dev/shm/undo-many';
  rmSync(base, { recursive: true, force: true });
  mkdirSync(`${base}/root/src`, { recursive: true });
  writeFileSync(`${base}/root/src/a.ts`, 'start');
  const { log } = await UndoLog.open(`${base}/undo`, { keptDirectory: `${base}/kept`, limits: { maxStoredSteps: 100_000 } });
  const group = { id: 'turn-1', kind: 'turn' as const, label: 'long' };
  const total = Number(process.argv[2] ?? 3000);
  let windowStart = performance.now();
  for (let index = 1; index <= total; index += 1) {
    const writer = await log.beginStep({ syncId: `s${index}`, policy: 'two-way-safe', root: `${base}/root`, group });
    await ops.write(writer, `${base}/root`, 'src/a.ts', `edit ${index}`);
    const summary = await writer.close();
    await log.detectBarriers(`${base}/root`, { except: summary?.id, paths: ['src/a.ts'] });
    if (index % 500 === 0) {
      console.log(`${index} steps: last 500 cycles ${((performance.now() - windowStart) / 500).toFixed(2)} ms each, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB`);
      windowStart = performance.now();
    }
  }
  const started = performance.now();
  const result = await log.undo({ steps: 1, force: false, root: `${base}/root` });
  console.log(`undo of the group: ${result.undone.length} undone, refused ${result.refused}, ${Math.round(performance.now() - started)} ms`);
}
main().catch((error) => { console.error(error); process.exit(1); });
