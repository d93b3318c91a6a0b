// Both sides editing the same files while the resident agent syncs continuously, in a real
// container: a writer on the host (as the folder's owner) and one in /workspace (as the workspace
// user) edit for a while at every pace (appendWriter.ts). Each version they write extends the one
// they found by a line of its own, so a version the sync lost takes a line with it: afterwards
// every line written is somewhere (either tree, the kept folder) but those in what a writer
// displaced itself, and the trees are equal but at the conflicts the sync reports.
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WriterLog } from '../helpers/appendWriter';
import { SHARED_FILES } from '../helpers/appendWriter';
import {
  INTEGRATION_TIMEOUT_MS,
  TestScope,
  assertExit,
  containerTree,
  describeRun,
  diffTrees,
  dockerExec,
  hashTree,
  helperProgram,
  linesUnder,
  requireDocker,
  runClud,
  runCludJson,
  runNodeAsOwner,
  stateDirectoryOf,
  writeContainerFile,
} from '../helpers/integration';

const SECONDS = Number(process.env.CLUD_CONCURRENT_EDIT_SECONDS ?? 20);
const SEED = Number(process.env.CLUD_CONCURRENT_EDIT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CONTAINER_PROGRAM = '/tmp/append-writer.js';

/**
 * A shared file's first version: 64 KiB, so that the sync takes a while to read, copy and check
 * each one, and the writers' edits land inside its cycles, between a scan and the apply after it.
 */
const initialContent = (index: number) => Array.from({ length: 2048 }, (_, line) => `initial ${index} ${String(line).padStart(20, '.')}\n`).join('');

function parseLog(stdout: string, who: string): WriterLog {
  try {
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as WriterLog;
  } catch {
    throw new Error(`the ${who} writer printed no log: ${stdout.slice(0, 2000)}`);
  }
}

async function runHostWriter(program: string, dir: string, startAt: number, seed: number): Promise<WriterLog> {
  return parseLog(await runNodeAsOwner([program, dir, 'host', String(startAt), String(SECONDS * 1000), String(seed)], 'the host writer'), 'host');
}

async function runContainerWriter(dir: string, startAt: number, seed: number): Promise<WriterLog> {
  const run = await runClud(['exec', dir, '--', 'node', CONTAINER_PROGRAM, '/workspace', 'container', String(startAt), String(SECONDS * 1000), String(seed)], { timeoutMs: SECONDS * 1000 + 120_000 });
  assertExit(run, 0);
  return parseLog(run.stdout, 'container');
}

describe('integration: both sides editing the same files during continuous sync', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(async function () {
    await requireDocker();
  });

  after(async function () {
    await scope.cleanup();
  });

  it(`a host writer and a container writer edit for ${SECONDS} s (seed ${SEED}): no line written is lost, and the trees differ only at reported conflicts`, async function () {
    const dir = await scope.project(Object.fromEntries(SHARED_FILES.map((file, index) => [file, initialContent(index)])));
    const up = await runCludJson(['up', dir], { env: { CLUD_AUTO_SYNC: 'continuous' } });
    assertExit(up.run, 0);

    const program = path.join(await scope.tempDir(), 'append-writer.js');
    const bundle = helperProgram('appendWriterMain.ts');
    await writeFile(program, bundle);
    await chmod(path.dirname(program), 0o755);
    await chmod(program, 0o644);
    await writeContainerFile(dir, CONTAINER_PROGRAM, bundle);

    const startAt = Date.now() + 3_000;
    const [hostLog, containerLog] = await Promise.all([runHostWriter(program, dir, startAt, SEED), runContainerWriter(dir, startAt, SEED + 1)]);

    // The last edits settle and cross; a sync then carries what is left and reports the conflicts.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const sync = await runCludJson(['sync', dir]);
    const report = sync.json.report as { conflicts: Array<{ path: string }>; halted?: unknown };
    assert.ok(!report.halted, `the sync halted\n${describeRun(sync.run)}`);

    const found = new Set<string>();
    await linesUnder(dir, found);
    await linesUnder(path.join(stateDirectoryOf(dir), 'kept'), found);
    const inContainer = await dockerExec(dir, ['sh', '-c', 'find /workspace -path /workspace/.git -prune -o -type f -print0 | xargs -0 -r cat']);
    assert.equal(inContainer.exitCode, 0, inContainer.stderr);
    for (const line of inContainer.stdout.toString('utf8').split('\n')) if (line) found.add(line);

    const deleted = new Set([...hostLog.deleted, ...containerLog.deleted]);
    const written = [...hostLog.written, ...containerLog.written];
    const where = { ...hostLog.where, ...containerLog.where };
    const lost = written.filter((line) => !deleted.has(line) && !found.has(line)).map((line) => `${line} (${where[line]})`);
    const operations = `host: ${JSON.stringify(hostLog.operations)}; container: ${JSON.stringify(containerLog.operations)}`;
    assert.deepEqual(lost, [], `${lost.length} line(s) lost (seed ${SEED}; ${operations})`);

    const conflicts = new Set(report.conflicts.map((conflict) => conflict.path));
    const differences = diffTrees(await hashTree(dir, { exclude: (relative) => conflicts.has(relative) }), await containerTree(dir, { exclude: (relative) => conflicts.has(relative) }));
    assert.deepEqual(differences, [], `the trees differ beyond the ${conflicts.size} conflict(s) (seed ${SEED})`);
    // Teeth: the writers met (each wrote hundreds of lines into the shared files).
    assert.ok(hostLog.written.length > 200 && containerLog.written.length > 200, operations);
    console.log(`      ${written.length} lines written, ${written.filter((line) => deleted.has(line)).length} of them displaced by a writer, ${hostLog.unplaced.length + containerLog.unplaced.length} more written into a file the sync had just replaced, ${conflicts.size} conflict(s) at the end; ${operations} (${os.cpus().length} CPUs)`);
  });
});
