// `npm run bench:scale` (or `npm run bench -- --scale`): the real container at scale. Per size
// (generated trees of 2,000 / 10,000 / 100,000 files, bench/trees.ts), a temp folder goes
// through `clud up` (dist/cli.js, the real image, the real agent), then in that same container:
//   - the initial copy at `up` (scan, copy, first agreed state; the agent's own duration) against
//     a tar pipe of the same tree (/clud/host read as the sync user, unpacked as the workspace
//     user, as the initial copy does);
//   - a no-change `clud sync` (a client's full cycle: the agent's duration, and the whole
//     command's) and the resident agent's no-change periodic rescan (its duration as `clud watch
//     --json` reports it) against a no-change `rsync -a` of the same tree in the same container,
//     RESCANS of each in turn, the medians;
//   - with the resident agent syncing continuously (no command run): a save-burst of BURST_FILES
//     files each way until the last one has arrived whole, timed from the burst's first write and
//     from its last (rsync's own starting line: every file exists), against `rsync --files-from`
//     of those files in the same container and direction (BURST_ROUNDS of each, in turn; the
//     medians); then the latency of one file written in /workspace until it is in the host
//     folder, and of one written in the
//     host folder until it is in /workspace (p50/p95 of LATENCY_PROBES each, the writer's clock
//     against the reader's: one kernel clock on Linux), with the bursts' steps in the undo log;
//   - before the bursts, the agent's processes: the resident agent's and its supervisor's memory,
//     their inotify watches, the resident agent's CPU from one periodic rescan to the next.
// Times inside the container are taken inside it (no `docker exec` start-up in them). The
// machine is shared: every ratio is of two numbers measured in the same run, minutes apart.
// The baselines write where the sync writes, in a folder the tree's .gitignore keeps out of the
// sync: BASELINE_DIR on /workspace's volume (creating a file in the container's own overlay costs
// several times what it costs on the volume), and HOST_BASELINE_DIR in the host folder for a
// burst to the host (creating a file in some host folders of this machine cost ten times as much).
// `-- --sizes 2000,10000`: other sizes. CLUD_TEST_IMAGE / CLUD_IMAGE: the image tag to use.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildTree } from './trees';

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..');
const CLI = path.join(REPO, 'dist', 'cli.js');
const IMAGE = process.env.CLUD_TEST_IMAGE ?? process.env.CLUD_IMAGE ?? 'clud-bench:latest';
/** The folder's owner, as a real user's (the agent takes its UID). */
const OWNER = 1000;
const TAR_PIPES = 3;
const LATENCY_PROBES = Number(process.env.CLUD_BENCH_PROBES ?? 20);
const BURST_FILES = 1000;
/** Bursts each way and rsync runs, taken in turn: one of each moved the ratio from 2 to 4 between runs, and rsync alone varied threefold within three. */
const BURST_ROUNDS = 5;
const RESCANS = 5;
/** Shorter than the agent's periodic rescan interval (10 s): a full cycle sooner than this is not the periodic one. */
const MIN_PERIOD_MS = 5000;
/** How long after a rescan the agent's memory is read: long enough for the collection that follows it. */
const SETTLE_MS = 10_000;
/** How long after its last change the agent is at rest and collects (src/agent/memory.ts). */
const AT_REST_MS = 30_000;
/** Where the baselines write: a folder of /workspace that the tree's .gitignore leaves out of the sync. */
const BASELINE_DIR = '/workspace/bench-baseline';
/** The same folder in the host folder, where the baseline of a burst to the host writes. */
const HOST_BASELINE_DIR = '/clud/host/bench-baseline';
const RECEIVE_AS_CODER = 'setpriv --reuid=coder --regid=coder --init-groups --inh-caps=-all --ambient-caps=-all --';

interface Row {
  files: number;
  folders: number;
  initialCopyMs: number;
  tarPipeMs: number;
  copyRatio: number;
  syncAgentMs: number;
  syncCommandMs: number;
  rsyncMs: number;
  syncRatio: number;
  rescanMs: number;
  rescanRatio: number;
  hostToContainerMs: { p50: number; p95: number };
  containerToHostMs: { p50: number; p95: number };
  /** Medians of BURST_ROUNDS, from the burst's first write; `bursts` has every round's. */
  burstToContainerMs: number;
  burstToHostMs: number;
  /** The same from the burst's last write. */
  burstToContainerAfterLastWriteMs: number;
  burstToHostAfterLastWriteMs: number;
  /** `rsync --files-from` of the burst's files, in the burst's direction. */
  rsyncToContainerMs: number;
  rsyncToHostMs: number;
  bursts: { toContainerMs: number[]; toHostMs: number[]; toContainerAfterLastWriteMs: number[]; toHostAfterLastWriteMs: number[]; rsyncToContainerMs: number[]; rsyncToHostMs: number[] };
  agentRssMb: number;
  supervisorRssMb: number;
  /** The agent's RSS once the bursts are over (they add BURST_ROUNDS * 2,000 files). */
  agentRssAfterBurstsMb: number;
  inotifyWatches: number;
  idleCpuPercent: number;
}

/**
 * Measures one size. Nothing is deleted until every size is measured: its container is stopped
 * and `cleanups` gets what removes it and its folder. On this machine's ext4 (no journal), a
 * create skips the inodes freed in the last minute (six while their table block is dirty): 1,000
 * new files took 63-133 ms, and 725-816 ms right after 5,000 others were deleted.
 */
async function measure(files: number, work: string, cleanups: Array<() => Promise<void>>): Promise<Row> {
  const folder = path.join(work, `tree-${files}`);
  const { folders } = buildTree(folder, files);
  writeFileSync(path.join(folder, '.gitignore'), `/${path.posix.basename(BASELINE_DIR)}/\n`);
  execFileSync('chown', ['-R', `${OWNER}:${OWNER}`, folder]); // plain folders and files: never follows a link
  await run('sync');
  const env = { ...process.env, CLUD_IMAGE: IMAGE, CLUD_STATE_DIR: path.join(work, 'state'), CLUD_EXTRA_CA_CERTIFICATES: process.env.CLUD_EXTRA_CA_CERTIFICATES ?? '/etc/ssl/certs/ca-certificates.crt' };
  const clud = async (...args: string[]) => JSON.parse((await run(process.execPath, [CLI, ...args, '--json'], { env, maxBuffer: 1 << 28 })).stdout) as Record<string, unknown>;
  console.error(`  ${files} files in ${folders} folders: clud up…`);
  await clud('up', folder);
  try {
    const status = (await clud('status', folder)) as { containerName?: string; init?: { phase?: string; initialSync?: { durationMs: number; filesTransferred: number; errors: string[] } } };
    const container = status.containerName;
    const copy = status.init?.initialSync;
    if (!container || status.init?.phase !== 'ready' || !copy) throw new Error(`clud up did not finish its copy: ${JSON.stringify(status.init)}`);
    if (copy.filesTransferred !== files + 1) throw new Error(`the initial copy carried ${copy.filesTransferred} of ${files} files and the .gitignore`);

    console.error('  tar pipe…');
    // Writing 10,000s of files is at the mercy of the disk's writeback: the median of a few.
    const tarPipes: number[] = [];
    for (let index = 0; index < TAR_PIPES; index += 1) {
      const into = `${BASELINE_DIR}/tar-${index}`;
      tarPipes.push(await timedInContainer(container, `mkdir -p ${into} && chown coder:coder ${into}`, `/opt/clud/as-sync-user sh -c 'tar -C /clud/host -cf - . | ${RECEIVE_AS_CODER} tar -C ${into} -xpf -'`, 'true'));
    }
    const tarPipeMs = median(tarPipes);
    console.error(`  tar pipes: ${tarPipes.join(', ')} ms`);

    console.error('  no-change clud sync, rsync -a and the periodic rescan…');
    await clud('sync', folder); // the first sync after the copy, so the timed one is the steady state
    const started = performance.now();
    const report = (await clud('sync', folder)) as { report?: { durationMs?: number; appliedCount?: number } };
    const syncCommandMs = performance.now() - started;
    if (report.report?.appliedCount) throw new Error(`a no-change sync applied ${report.report.appliedCount} change(s)`);
    // rsync -a and the rescan in turn, each after the disk was flushed.
    await run('docker', ['exec', '-u', 'root', container, 'sh', '-c', `mkdir -p ${BASELINE_DIR}/rsync && chown clud:clud ${BASELINE_DIR}/rsync && /opt/clud/as-sync-user rsync -a /clud/host/ ${BASELINE_DIR}/rsync/`]);
    const cycles = new FullCycles(env, folder);
    const rsyncRuns: number[] = [];
    const rescanRuns: number[] = [];
    try {
      for (let round = 0; round < RESCANS; round += 1) {
        rsyncRuns.push(await timedInContainer(container, 'true', `/opt/clud/as-sync-user rsync -a /clud/host/ ${BASELINE_DIR}/rsync/`, 'true'));
        await run('docker', ['exec', '-u', 'root', container, 'sync']);
        rescanRuns.push(await rescanMs(cycles, clud, folder));
      }
    } finally {
      cycles.close();
    }
    console.error(`  rsync -a ${rsyncRuns.join(', ')} ms; rescans ${rescanRuns.join(', ')} ms`);
    const rsyncMs = median(rsyncRuns);
    const rescanMedianMs = median(rescanRuns);

    // At rest before the bursts: they add BURST_ROUNDS * 2,000 files and their folders' watches,
    // and the memory and watch goals are for the tree's own size.
    console.error('  the agent at rest (from one rescan to the next periodic one)…');
    const atRest = new FullCycles(env, folder);
    const agent = await agentAtRest(container, atRest, clud, folder).finally(() => atRest.close());

    console.error('  bursts and latency with continuous sync…');
    const live = await measureContinuous(container, folder);
    // After the bursts too, once at rest: the agent collects 30 s after its last cycle that carried
    // changes, not after each (src/agent/memory.ts).
    await new Promise((resolve) => setTimeout(resolve, AT_REST_MS + SETTLE_MS));
    const agentRssAfterBurstsMb = rssMb((await agentPids(container)).daemon);
    const initialCopyMs = copy.durationMs;
    const syncAgentMs = report.report?.durationMs ?? NaN;
    return {
      files, folders, initialCopyMs, tarPipeMs: Math.round(tarPipeMs), copyRatio: round(initialCopyMs / tarPipeMs),
      syncAgentMs, syncCommandMs: Math.round(syncCommandMs), rsyncMs: Math.round(rsyncMs), syncRatio: round(syncAgentMs / rsyncMs),
      rescanMs: rescanMedianMs, rescanRatio: round(rescanMedianMs / rsyncMs),
      ...live,
      ...agent,
      agentRssAfterBurstsMb,
    };
  } finally {
    const status = (await clud('status', folder).catch(() => ({}))) as { containerName?: string };
    if (status.containerName) await run('docker', ['stop', status.containerName]).catch(() => undefined);
    cleanups.push(async () => {
      await clud('down', folder, '--force', '--purge').catch((error: unknown) => console.error(`  clud down failed: ${String(error)}`));
      await rm(folder, { recursive: true, force: true });
    });
  }
}

/** The resident agent's full cycles as `clud watch --json` reports them, one at a time. */
class FullCycles {
  private readonly watcher;
  private readonly arrived: Array<{ durationMs: number; appliedCount: number }> = [];
  private waiting: (() => void) | undefined;

  constructor(env: NodeJS.ProcessEnv, folder: string) {
    this.watcher = spawn(process.execPath, [CLI, 'watch', folder, '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.watcher.stdout }).on('line', (line) => {
      const event = JSON.parse(line) as { type?: string; kind?: string; report?: { durationMs: number; appliedCount: number } };
      if (event.type !== 'cycle-finished' || event.kind !== 'full' || !event.report) return;
      this.arrived.push(event.report);
      this.waiting?.();
    });
  }

  /** The next full cycle to finish (one that finished since the last call included). */
  async next(timeoutMs: number): Promise<{ durationMs: number; appliedCount: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.arrived.length === 0) {
      if (Date.now() > deadline) throw new Error(`no full cycle in ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 1000);
      });
    }
    return this.arrived.shift()!;
  }

  /** Forgets the full cycles that finished so far. */
  drop(): void {
    this.arrived.length = 0;
  }

  close(): void {
    this.watcher.kill('SIGINT');
  }
}

/**
 * Asks the resident agent for a rescan: `clud up --auto-sync continuous` on the running workspace
 * sets the mode it already has, which the agent follows with a full cycle, and nothing else.
 */
async function askForRescan(clud: (...args: string[]) => Promise<unknown>, folder: string): Promise<void> {
  await clud('up', folder, '--auto-sync', 'continuous');
}

/**
 * The duration of one no-change rescan of the resident agent, asked for (askForRescan) rather
 * than waited for: the periodic one comes a hundred times its CPU time apart, minutes at 100,000
 * files.
 */
async function rescanMs(cycles: FullCycles, clud: (...args: string[]) => Promise<unknown>, folder: string): Promise<number> {
  cycles.drop();
  await askForRescan(clud, folder);
  const report = await cycles.next(600_000);
  if (report.appliedCount !== 0) throw new Error(`a no-change rescan applied ${report.appliedCount} change(s)`);
  return report.durationMs;
}

/** Runs `command` as root in the container after `setup` and before `cleanup`; its milliseconds, timed inside. */
async function timedInContainer(container: string, setup: string, command: string, cleanup: string): Promise<number> {
  const script = `set -e; ${setup}; sync; start=$(date +%s%N); ${command}; end=$(date +%s%N); ${cleanup}; echo $(( (end - start) / 1000000 ))`;
  const { stdout } = await run('docker', ['exec', '-u', 'root', container, 'sh', '-c', script], { maxBuffer: 1 << 24 });
  return Number(stdout.trim().split('\n').at(-1));
}

/** `rsync --files-from` of `files` from `from` into the new folder `into`, as the sync user. */
function rsyncFilesFrom(container: string, files: readonly string[], from: string, into: string): Promise<number> {
  const list = files.join('\\n');
  return timedInContainer(
    container,
    `mkdir -p ${into} && chown clud:clud ${into} && printf '${list}\\n' > /tmp/bench-burst.list`,
    `/opt/clud/as-sync-user rsync -a --files-from=/tmp/bench-burst.list ${from}/ ${into}/`,
    'rm /tmp/bench-burst.list',
  );
}

/** A Node process in the container, as the workspace user, that writes files and waits for them on request (containerProbe.cjs). */
const CONTAINER_PROBE = readFileSync(path.join(__dirname, 'containerProbe.cjs'), 'utf8');

interface Probe { request(op: 'write' | 'wait', files: string[], content: string): Promise<number>; close(): void }

function startContainerProbe(container: string): Probe {
  const child = spawn('docker', ['exec', '-i', '-u', 'coder', container, 'node', '-e', CONTAINER_PROBE], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: Array<(at: number) => void> = [];
  createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.((JSON.parse(line) as { at: number }).at));
  return {
    request: (op, files, content) => new Promise((resolve) => {
      waiting.push(resolve);
      child.stdin.write(`${JSON.stringify({ op, files, content })}\n`);
    }),
    close: () => child.stdin.end(),
  };
}

async function waitOnHost(files: string[], content: string): Promise<number> {
  const size = Buffer.byteLength(content);
  const arrived = (file: string) => { try { return statSync(file).size === size; } catch { return false; } };
  const deadline = Date.now() + 120_000;
  // As in the container's probe: each look starts at the first file still missing.
  for (let next = 0; next < files.length; ) {
    if (arrived(files[next]!)) {
      next += 1;
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${files.length - next} of ${files.length} file(s) did not reach the host folder in 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now();
}

function writeOnHost(files: string[], content: string): number {
  for (const file of files) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  return Date.now();
}

/** Latencies one file at a time, each way, then a burst each way, with the resident agent's continuous sync. */
async function measureContinuous(container: string, folder: string) {
  const probe = startContainerProbe(container);
  const quiet = () => new Promise((resolve) => setTimeout(resolve, 500));
  try {
    const bursts = { toContainerMs: [] as number[], toHostMs: [] as number[], toContainerAfterLastWriteMs: [] as number[], toHostAfterLastWriteMs: [] as number[], rsyncToContainerMs: [] as number[], rsyncToHostMs: [] as number[] };
    const content = 'x'.repeat(700) + '\n';
    for (let round = 0; round < BURST_ROUNDS; round += 1) {
      // As timedInContainer does before rsync: each burst starts with the disk's writeback done.
      await run('sync');
      await quiet();
      const burst = Array.from({ length: BURST_FILES }, (_, index) => `bench-burst-${round}/d${index % 50}/f${index}.txt`); // under host-… and container-…
      const burstArrived = probe.request('wait', burst.map((name) => `/workspace/host-${name}`), content);
      const burstStarted = Date.now();
      const lastHostWrite = writeOnHost(burst.map((name) => path.join(folder, `host-${name}`)), content);
      const arrivedInContainer = await burstArrived;
      bursts.toContainerMs.push(arrivedInContainer - burstStarted);
      bursts.toContainerAfterLastWriteMs.push(arrivedInContainer - lastHostWrite);
      await run('sync');
      await quiet();
      const burstOnHost = waitOnHost(burst.map((name) => path.join(folder, `container-${name}`)), content);
      const containerStarted = Date.now();
      const lastContainerWrite = await probe.request('write', burst.map((name) => `/workspace/container-${name}`), content);
      const arrivedOnHost = await burstOnHost;
      bursts.toHostMs.push(arrivedOnHost - containerStarted);
      bursts.toHostAfterLastWriteMs.push(arrivedOnHost - lastContainerWrite);
      await quiet();
      // The same 1,000 files by rsync in the same container and the same direction, into a new
      // folder beside the sync's own destination: creating a file costs what the destination's
      // file system and folder make it cost, and the host folder's may differ from the volume's.
      bursts.rsyncToContainerMs.push(await rsyncFilesFrom(container, burst.map((name) => `host-${name}`), '/clud/host', `${BASELINE_DIR}/burst-${round}`));
      bursts.rsyncToHostMs.push(await rsyncFilesFrom(container, burst.map((name) => `container-${name}`), '/workspace', `${HOST_BASELINE_DIR}/burst-${round}`));
    }
    console.error(`  bursts → /workspace ${bursts.toContainerMs.join(', ')} ms (after the last write ${bursts.toContainerAfterLastWriteMs.join(', ')}), → host ${bursts.toHostMs.join(', ')} ms (${bursts.toHostAfterLastWriteMs.join(', ')}), rsync --files-from → /workspace ${bursts.rsyncToContainerMs.join(', ')} ms, → host ${bursts.rsyncToHostMs.join(', ')} ms`);
    // One file at a time each way, after the bursts: the undo log holds their steps, as it does
    // after a while of work, and a cycle must not cost more for that.
    const toContainer: number[] = [];
    const toHost: number[] = [];
    for (let index = 0; index < LATENCY_PROBES; index += 1) {
      // Each side writes in folders of its own: a folder the sync made in /workspace is not
      // necessarily the workspace user's: a cycle of the continuous sync leaves it the sync user's today.
      const name = `bench-probe-host/${index}.txt`;
      const content = `from the host ${index}\n`;
      const waited = probe.request('wait', [`/workspace/${name}`], content);
      await quiet();
      const written = writeOnHost([path.join(folder, name)], content);
      toContainer.push((await waited) - written);
      await quiet();
      const back = `bench-probe-container/${index}.txt`;
      const arrivedOnHost = waitOnHost([path.join(folder, back)], content);
      const writtenInContainer = await probe.request('write', [`/workspace/${back}`], content);
      toHost.push((await arrivedOnHost) - writtenInContainer);
    }
    return {
      hostToContainerMs: percentiles(toContainer), containerToHostMs: percentiles(toHost),
      burstToContainerMs: median(bursts.toContainerMs), burstToHostMs: median(bursts.toHostMs),
      burstToContainerAfterLastWriteMs: median(bursts.toContainerAfterLastWriteMs), burstToHostAfterLastWriteMs: median(bursts.toHostAfterLastWriteMs),
      rsyncToContainerMs: median(bursts.rsyncToContainerMs), rsyncToHostMs: median(bursts.rsyncToHostMs), bursts,
    };
  } finally {
    probe.close();
  }
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function percentiles(values: number[]): { p50: number; p95: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  return { p50: at(0.5), p95: at(0.95) };
}

/** The resident agent's and its supervisor's PIDs on this machine (`docker top`). */
async function agentPids(container: string): Promise<{ daemon: string; supervisor: string }> {
  const top = (await run('docker', ['top', container, '-eo', 'pid,args'])).stdout.trim().split('\n').slice(1);
  const pidOf = (role: string) => top.map((line) => line.trim().split(/\s+/)).find((fields) => fields[2] === '/opt/clud/agent.js' && fields[3] === role)?.[0];
  const daemon = pidOf('daemon');
  const supervisor = pidOf('init');
  if (!daemon || !supervisor) throw new Error(`no resident agent and supervisor in the container: ${top.join(' | ')}`);
  return { daemon, supervisor };
}

const rssMb = (pid: string) => Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024);

/**
 * The agent's processes (init, the supervisor; daemon, the resident agent): each one's RSS and
 * inotify watches, and the daemon's CPU while nothing changes, over one whole period of the
 * periodic rescan (from the end of one, asked for, to the end of the next, which
 * comes on its own), so that the rescan's cost is in the average once. Read from this machine's
 * /proc (`docker top` gives their PIDs here): inside the container, root has no right to read the
 * sync user's descriptors.
 */
async function agentAtRest(container: string, cycles: FullCycles, clud: (...args: string[]) => Promise<unknown>, folder: string): Promise<{ agentRssMb: number; supervisorRssMb: number; inotifyWatches: number; idleCpuPercent: number }> {
  const { daemon, supervisor } = await agentPids(container);
  const watches = (pid: string) =>
    readdirSync(`/proc/${pid}/fdinfo`).reduce((sum, fd) => {
      try {
        return sum + (readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^inotify wd:/gm)?.length ?? 0);
      } catch {
        return sum; // closed meanwhile
      }
    }, 0);
  const ticks = () => readFileSync(`/proc/${daemon}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ').slice(11, 13).reduce((sum, value) => sum + Number(value), 0);
  cycles.drop();
  await askForRescan(clud, folder);
  await cycles.next(600_000);
  let before = ticks();
  let started = performance.now();
  let periodic = await cycles.next(1_800_000);
  // A full cycle sooner than the shortest period follows the one asked for (a change it skipped, a
  // second request): the period starts again from it.
  while (performance.now() - started < MIN_PERIOD_MS) {
    before = ticks();
    started = performance.now();
    periodic = await cycles.next(1_800_000);
  }
  if (periodic.appliedCount !== 0) throw new Error(`a no-change rescan applied ${periodic.appliedCount} change(s)`);
  const after = ticks();
  const elapsedSeconds = (performance.now() - started) / 1000;
  // Memory at rest, not in the rescan's wake: the agent collects a rescan's garbage once it is over.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const hz = Number((await run('getconf', ['CLK_TCK'])).stdout.trim());
  return {
    agentRssMb: rssMb(daemon),
    supervisorRssMb: rssMb(supervisor),
    inotifyWatches: watches(daemon) + watches(supervisor),
    idleCpuPercent: round((100 * (after - before)) / hz / elapsedSeconds),
  };
}

const round = (n: number): number => Math.round(n * 100) / 100;

async function main(): Promise<void> {
  const sizesArg = process.argv.indexOf('--sizes');
  const sizes = sizesArg > 0 ? (process.argv[sizesArg + 1] ?? '').split(',').map(Number) : [2000, 10000, 100000];
  const work = await mkdtemp(path.join(os.tmpdir(), 'clud-scale-bench-'));
  const rows: Row[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  try {
    for (const files of sizes) {
      rows.push(await measure(files, work, cleanups));
      console.error(`  ${JSON.stringify(rows.at(-1))}`);
    }
  } finally {
    for (const cleanup of cleanups) await cleanup();
    await rm(work, { recursive: true, force: true });
  }
  console.log(`image ${IMAGE}; ${os.cpus().length} cores, load ${os.loadavg().map((n) => n.toFixed(1)).join(' ')}`);
  console.log('| files | folders | initial copy ms | tar pipe ms | ratio | no-change sync ms (agent / command) | no-change periodic rescan ms | no-change rsync -a ms | ratio (sync / rescan) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(`| ${row.files} | ${row.folders} | ${row.initialCopyMs} | ${row.tarPipeMs} | ${row.copyRatio} | ${row.syncAgentMs} / ${row.syncCommandMs} | ${row.rescanMs} | ${row.rsyncMs} | ${row.syncRatio} / ${row.rescanRatio} |`);
  }
  console.log('');
  console.log(`| files | host → /workspace ms p50 / p95 | /workspace → host ms p50 / p95 | ${BURST_FILES}-file burst → /workspace ms from its first / last write (median of ${BURST_ROUNDS}) | rsync --files-from → /workspace ms | ${BURST_FILES}-file burst → host ms from its first / last write | rsync --files-from → host ms | resident agent RSS MB (supervisor); after the bursts | inotify watches | resident agent idle CPU % |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(`| ${row.files} | ${row.hostToContainerMs.p50} / ${row.hostToContainerMs.p95} | ${row.containerToHostMs.p50} / ${row.containerToHostMs.p95} | ${row.burstToContainerMs} / ${row.burstToContainerAfterLastWriteMs} | ${row.rsyncToContainerMs} | ${row.burstToHostMs} / ${row.burstToHostAfterLastWriteMs} | ${row.rsyncToHostMs} | ${row.agentRssMb} (${row.supervisorRssMb}); ${row.agentRssAfterBurstsMb} | ${row.inotifyWatches} | ${row.idleCpuPercent} |`);
  }
  mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
  writeFileSync(path.join(REPO, 'bench-results', 'scale.json'), JSON.stringify({ image: IMAGE, load: os.loadavg(), rows }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
