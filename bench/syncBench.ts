// `npm run bench`: the sync engine against the tools people would otherwise use, measured in the
// same run on the same trees: raw rsync, a tar pipe, and unison (a two-way peer). Local folders
// stand in for /host and /workspace (inside the container both are local too). Times are
// medians; what matters is each ratio against rsync, not the absolute numbers of this machine.
// scripts/bench.sh bundles this file with esbuild as the agent is bundled, so what is timed is the
// code that ships, and runs it with plain Node. Every timed run starts after `sync`, so that no
// run pays for writing back what the set-up before it copied.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSyncCycle } from '../src/core/sync/engine';
import type { Policy } from '../src/core/sync/reconcile';
import { UndoLog } from '../src/core/undo';

const run = promisify(execFile);
const REPEATS = Number(process.env.CLUD_BENCH_REPEATS ?? 3);
/** The undo log's overhead is a ratio of two noisy times: it is measured in more pairs. */
const UNDO_PAIRS = Number(process.env.CLUD_BENCH_UNDO_PAIRS ?? Math.max(9, REPEATS));
/** `npm run bench -- --undo`: only the undo log's overhead, for working on it. */
const onlyUndo = process.argv.includes('--undo');
const SOURCE_PACKAGES = ['typescript', 'zod', 'dockerode', 'esbuild', '@types/node', 'eslint', 'mocha', 'tar-stream', 'execa', 'ignore'];

interface Row {
  scenario: string;
  tool: string;
  medianMs: number;
  ratioToRsync?: number;
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'clud-bench-'));
  try {
    const source = path.join(work, 'source');
    await buildTree(source);
    const files = await countFiles(source);
    console.error(`tree: ${files} files from ${SOURCE_PACKAGES.length} packages; ${REPEATS} repeats each`);
    const rows: Row[] = [];
    for (const scenario of onlyUndo ? [] : (['initial copy', 'no change', '200 files changed'] as const)) {
      const results = await measureScenario(work, source, scenario);
      const rsync = results.find((row) => row.tool === 'rsync')!.medianMs;
      for (const row of results) rows.push({ ...row, ratioToRsync: round(row.medianMs / rsync) });
    }
    if (rows.length > 0) console.log(formatTable(rows));
    const undo = await measureUndoOverhead(work, source);
    console.log(`\npull of ${undo.changes} changes (overwrites, creations, deletions) into the host folder, ${UNDO_PAIRS} pairs of runs:`);
    console.log(`  without the undo log ${undo.withoutMs} ms, with it ${undo.withMs} ms (medians): overhead ${Math.round(undo.overhead * 100)}% (median of the pairs' ratios; goal: under 20%)`);
    console.log(`  then compressing the step's ${formatMegabytes(undo.capturedBytes)} of saved content (compaction, after the sync) took ${undo.compactionMs} ms: ${formatMegabytes(undo.compactedBytes)} stored`);
    const longLog = await measureWithEarlierSteps(work, source);
    console.log(`\npull of ${longLog.changes} changed files with ${longLog.earlierSteps} earlier steps in the log, as after a while of use, ${UNDO_PAIRS} pairs:`);
    console.log(`  without the undo log ${longLog.withoutMs} ms, with it ${longLog.withMs} ms (medians): overhead ${Math.round(longLog.overhead * 100)}%; opening that log (as the agent does when it starts) took ${longLog.openMs} ms`);
    await mkdir('bench-results', { recursive: true });
    await writeFile(path.join('bench-results', 'sync.json'), JSON.stringify({ files, repeats: REPEATS, rows, undo, longLog }, null, 2));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

type Scenario = 'initial copy' | 'no change' | '200 files changed';

async function measureScenario(work: string, source: string, scenario: Scenario): Promise<Row[]> {
  const tools: Record<string, (from: string, to: string, state: string) => Promise<void>> = {
    rsync: async (from, to) => void (await run('rsync', ['-a', '--delete', `${from}/`, `${to}/`])),
    'tar pipe': async (from, to) => void (await run('sh', ['-c', `tar -C "${from}" -cf - . | tar -C "${to}" -xf -`])),
    // unison keeps its archive in $UNISON; -times so that unchanged files are recognised by metadata as ours are.
    unison: async (from, to, state) => void (await run('unison', [from, to, '-batch', '-auto', '-silent', '-times', '-perms', '0'], { env: { ...process.env, UNISON: state } })),
    'clud sync': async (from, to, state) => void (await clud(to, from, state, 'two-way-safe')),
    'clud pull': async (from, to, state) => void (await clud(to, from, state, 'pull')),
  };
  const rows: Row[] = [];
  for (const [tool, sync] of Object.entries(tools)) {
    const times: number[] = [];
    for (let repeat = 0; repeat < REPEATS; repeat += 1) {
      const from = path.join(work, `${tool}-from-${repeat}`.replace(/\W+/g, '-'));
      const to = path.join(work, `${tool}-to-${repeat}`.replace(/\W+/g, '-'));
      const state = path.join(work, `${tool}-state-${repeat}`.replace(/\W+/g, '-'));
      await cp(source, from, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      await mkdir(to, { recursive: true });
      await mkdir(state, { recursive: true });
      if (scenario !== 'initial copy') await sync(from, to, state); // reach a synced state first
      if (scenario === '200 files changed') await touchFiles(from, 200);
      await settle();
      const started = performance.now();
      await sync(from, to, state);
      times.push(performance.now() - started);
      await Promise.all([from, to, state].map((dir) => rm(dir, { recursive: true, force: true })));
    }
    rows.push({ scenario, tool, medianMs: round(median(times)) });
  }
  return rows;
}

/**
 * The undo log's cost on a pull that overwrites, creates and deletes files in the host folder:
 * the same pull on the same trees, with and without a step recording its preimages, in pairs
 * whose order alternates. The step keeps its saved content as read until it is compacted, which
 * the container's long-lived agent does after the sync; that is timed on its own.
 */
async function measureUndoOverhead(work: string, source: string) {
  const times = { without: [] as number[], with: [] as number[] };
  const compaction = { ms: [] as number[], capturedBytes: 0, compactedBytes: 0 };
  let changes = 0;
  for (let pair = 0; pair < UNDO_PAIRS; pair += 1) {
    for (const mode of pair % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
      const { host, container, state } = await copyTrees(work, source, `${mode}-${pair}`);
      await clud(host, container, state, 'two-way-safe');
      await touchFiles(container, 300);
      await writeFile(path.join(container, 'new-a.txt'), 'new\n');
      await mkdir(path.join(container, 'new-dir'), { recursive: true });
      for (let index = 0; index < 50; index += 1) await writeFile(path.join(container, 'new-dir', `f${index}.txt`), `new ${index}\n`);
      await rm(path.join(container, SOURCE_PACKAGES[1]!), { recursive: true, force: true });
      const log = mode === 'with' ? await openUndoLog(state) : undefined;
      await settle();
      const started = performance.now();
      const report = await clud(host, container, state, 'pull', log);
      times[mode].push(performance.now() - started);
      changes = report.appliedCount;
      if (log) {
        compaction.capturedBytes = (await log.list())[0]?.bytes ?? 0;
        await settle();
        const compacting = performance.now();
        await log.compact();
        compaction.ms.push(performance.now() - compacting);
        compaction.compactedBytes = (await log.list())[0]?.bytes ?? 0;
      }
      await Promise.all([host, container, state].map((dir) => rm(dir, { recursive: true, force: true })));
    }
  }
  return { changes, pairs: UNDO_PAIRS, ...pairedOverhead(times), compactionMs: round(median(compaction.ms)), capturedBytes: compaction.capturedBytes, compactedBytes: compaction.compactedBytes };
}

/** Earlier steps in the log for measureWithEarlierSteps (the default limit keeps 50). */
const EARLIER_STEPS = Number(process.env.CLUD_BENCH_EARLIER_STEPS ?? 30);

/**
 * The undo log's cost once it holds earlier steps, as it does after a while of use. Two copies of
 * the same trees go through the same pulls of 300 changed files, one with the log and one
 * without; then their next pulls are timed in pairs whose order alternates. The log is opened
 * once per process, as the resident agent opens it; opening it again once it holds the earlier
 * steps (reading their manifests, as the agent does when it starts) is timed on its own.
 */
async function measureWithEarlierSteps(work: string, source: string) {
  const setups = await Promise.all((['without', 'with'] as const).map(async (mode) => ({ mode, ...(await copyTrees(work, source, `long-${mode}`)) })));
  const withLog = setups.find((setup) => setup.mode === 'with')!;
  let log = await openUndoLog(withLog.state);
  const times = { without: [] as number[], with: [] as number[] };
  let changes = 0;
  const pull = async ({ mode, host, container, state }: (typeof setups)[number], timed: boolean) => {
    await touchFiles(container, 300);
    if (timed) await settle();
    const started = performance.now();
    const report = await clud(host, container, state, 'pull', mode === 'with' ? log : undefined);
    if (timed) times[mode].push(performance.now() - started);
    changes = report.appliedCount;
  };
  for (const setup of setups) {
    await clud(setup.host, setup.container, setup.state, 'two-way-safe');
    for (let step = 0; step < EARLIER_STEPS; step += 1) await pull(setup, false);
  }
  const opening = performance.now();
  log = await openUndoLog(withLog.state);
  const openMs = performance.now() - opening;
  for (let pair = 0; pair < UNDO_PAIRS; pair += 1) {
    for (const setup of pair % 2 === 0 ? setups : [...setups].reverse()) await pull(setup, true);
  }
  return { changes, earlierSteps: EARLIER_STEPS, ...pairedOverhead(times), openMs: round(openMs) };
}

/** Medians with and without the undo log, and its overhead: the median of the pairs' ratios. */
function pairedOverhead(times: { without: number[]; with: number[] }) {
  const ratios = times.with.map((withMs, pair) => withMs / times.without[pair]!);
  return { withoutMs: round(median(times.without)), withMs: round(median(times.with)), overhead: round(median(ratios) - 1), ratios: ratios.map(round) };
}

/** The benchmark tree copied as a host folder and a /workspace, with an empty state folder, under `work`. */
async function copyTrees(work: string, source: string, name: string) {
  const [host, container, state] = ['host', 'container', 'state'].map((side) => path.join(work, `undo-${side}-${name}`)) as [string, string, string];
  for (const tree of [host, container]) await cp(source, tree, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  await mkdir(state, { recursive: true });
  return { host, container, state };
}

/** The undo log in a state folder, opened as the agent opens it. */
async function openUndoLog(state: string): Promise<UndoLog> {
  return (await UndoLog.open(path.join(state, 'undo'), { keptDirectory: path.join(state, 'kept') })).log;
}

/** Writes back what the set-up left dirty, so the timed run does not pay for it. */
async function settle(): Promise<void> {
  await run('sync');
}

const formatMegabytes = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** The container side is `from` (the agent's /workspace), the host side `to`; with `log`, host changes are recorded as an undo step (safeguards allowed). */
function clud(host: string, container: string, stateDir: string, policy: Policy, log?: UndoLog) {
  return runSyncCycle({ roots: { host, container }, stateDir, policy, excludes: [], undo: log && { log, ask: async () => 'allow' as const } });
}

async function buildTree(target: string): Promise<void> {
  for (const name of SOURCE_PACKAGES) {
    await cp(path.join('node_modules', name), path.join(target, name), { recursive: true, verbatimSymlinks: true });
  }
}

async function touchFiles(root: string, count: number): Promise<void> {
  const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
  const step = Math.max(1, Math.floor(files.length / count));
  for (let index = 0; index < count && index * step < files.length; index += 1) {
    const entry = files[index * step]!;
    await writeFile(path.join(entry.parentPath, entry.name), `changed ${index} ${Date.now()}\n`, { flag: 'a' });
  }
}

async function countFiles(root: string): Promise<number> {
  return (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).length;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function formatTable(rows: Row[]): string {
  const lines = ['scenario           tool        median ms   × rsync'];
  for (const row of rows) lines.push(`${row.scenario.padEnd(18)} ${row.tool.padEnd(11)} ${String(row.medianMs).padStart(9)}   ${String(row.ratioToRsync ?? '').padStart(6)}`);
  return lines.join('\n');
}

process.env.UV_THREADPOOL_SIZE ??= '16'; // as the agent runs (see Workspace.openSession); set before the pool starts
void main();
