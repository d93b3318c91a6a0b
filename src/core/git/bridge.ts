// The agent's git history and the user's, carried between the two repositories after each file
// sync. The host's repository (<host>/.git) is the user's record: from the container only objects
// and refs under Clud's namespace are ever written into it (see refNames.ts), fast-forward only; a
// rewritten agent branch keeps its old tip under a dated ref. The container's repository
// (<container>/.git) is hostile input: it is only read by plumbing that runs no configured
// program (upload-pack, for-each-ref, rev-list), and written only by receive-pack under
// refs/remotes/host/, with hooks off (see gitCommand.ts). Nothing here throws: what cannot be
// carried becomes a problem line, and the container's repository stays as it was.
import { lstat, readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { errorMessage } from '../errors';
import { lstatSyncIfReadable } from '../files/fsEntry';
import { joinBytes } from '../files/pathCodec';
import type { GitBranchInfo, GitExchange } from '../protocol';
import { gitFailure, remoteProgram, runGit, runProgram } from './gitCommand';
import type { GitOptions } from './gitCommand';
import { HOST_BRANCHES_PREFIX, agentBranchName, agentBranchPrefix, agentBranchRef, incomingPrefix, keptTipRef, plural } from './refNames';

export interface GitRoots {
  /** The user's folder; its repository is `<host>/.git`. */
  host: string;
  /** The container's copy; its repository is `<container>/.git`. */
  container: string;
}

export type HostRepository =
  | { kind: 'none' }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'repository'; gitDir: string; objectFormat: string; headBranch?: string; headCommit?: string };

const gitDirOf = (root: string) => path.join(root, '.git');

function safeOptions(roots: GitRoots, gitDir?: string): GitOptions {
  return { gitDir, safeDirectories: [gitDirOf(roots.host), roots.host, gitDirOf(roots.container), roots.container], asWorkspaceUser: gitDir === gitDirOf(roots.container) };
}

/** What kind of repository the user's folder has. */
export async function inspectHostRepository(roots: GitRoots): Promise<HostRepository> {
  const gitDir = gitDirOf(roots.host);
  const stats = await lstat(gitDir).catch(() => undefined);
  if (!stats) return { kind: 'none' };
  if (stats.isFile()) {
    return { kind: 'unsupported', reason: 'the folder\'s .git is a file (a linked worktree or a submodule): its repository lies outside the folder, so no history is carried' };
  }
  if (!stats.isDirectory()) return { kind: 'unsupported', reason: 'the folder\'s .git is not a folder (a symbolic link?), so no history is carried' };
  const options = safeOptions(roots, gitDir);
  const format = await runGit(['rev-parse', '--show-object-format'], options);
  if (/spawn git ENOENT|failed to execute git/.test(format.stderr)) return { kind: 'unsupported', reason: 'the image has no git (it was built by an older Clud); `clud up --rebuild` adds it' };
  if (format.exitCode !== 0) return { kind: 'unsupported', reason: `the folder's repository cannot be read: ${gitFailure(format)}` };
  const branch = await runGit(['symbolic-ref', '-q', 'HEAD'], options);
  const commit = await runGit(['rev-parse', '-q', '--verify', 'HEAD^{commit}'], options);
  return {
    kind: 'repository',
    gitDir,
    objectFormat: format.stdout.trim(),
    headBranch: branch.exitCode === 0 ? branch.stdout.trim() : undefined,
    headCommit: commit.exitCode === 0 ? commit.stdout.trim() : undefined,
  };
}

export interface SeedResult {
  /** Set when the container got no repository, or not all of one: one line saying why. */
  problem?: string;
}

/**
 * At the initial copy: makes <container>/.git a real repository the agent can commit to, like a
 * clone of the host's: the host's branches as `host/<branch>`, its tags, HEAD on the same branch
 * (or detached at the same commit), an index matching HEAD, the same object format. A repository
 * already there (a retried copy) is left alone.
 */
export async function seedContainerRepository(roots: GitRoots): Promise<SeedResult> {
  const host = await inspectHostRepository(roots);
  if (host.kind === 'none') return {};
  if (host.kind === 'unsupported') return { problem: `git: ${host.reason}; /workspace gets no repository` };
  const containerGitDir = gitDirOf(roots.container);
  if (await lstat(containerGitDir).catch(() => undefined)) return {};
  const init = await runGit(['init', '--quiet', `--object-format=${host.objectFormat}`, roots.container], { ...safeOptions(roots), asWorkspaceUser: true });
  if (init.exitCode !== 0) return { problem: `git: could not create the container's repository: ${gitFailure(init)}` };
  const delivered = await deliverHostHistory(roots, host, { withTags: true });
  if (delivered.problems.length) return { problem: delivered.problems.join('; ') };
  const options = safeOptions(roots, containerGitDir);
  const steps: string[][] = [];
  if (host.headBranch && host.headCommit) steps.push(['update-ref', host.headBranch, host.headCommit]);
  if (host.headBranch) steps.push(['symbolic-ref', 'HEAD', host.headBranch]);
  else if (host.headCommit) steps.push(['update-ref', '--no-deref', 'HEAD', host.headCommit]);
  // The index from HEAD's tree alone: refreshing it against the files would hash them through
  // whatever clean filters a repository's config names, and at a re-seed during a sync the agent
  // could have put a config there. The workspace user's first `git status` refreshes it instead.
  if (host.headCommit) steps.push(['read-tree', 'HEAD']);
  for (const step of steps) {
    const run = await runGit(step, options);
    if (run.exitCode !== 0) return { problem: `git: could not set up the container's HEAD (git ${step[0]}): ${gitFailure(run)}` };
  }
  const kept = host.headCommit ? await skipTrackedButAbsent(roots, options) : undefined;
  if (kept) return { problem: kept };
  const chown = await giveToWorkspaceOwner(roots, [containerGitDir]);
  return chown ? { problem: chown } : {};
}

/**
 * Tracked files the copy left out of /workspace (a committed `.env`, a file the host's user cannot
 * read, one the ignore rules keep out though it was added with --force) are marked skip-worktree
 * in the container's index, as a sparse checkout marks what it leaves out: otherwise the agent's
 * `git status` lists them as deleted, and a `git commit -a` would delete them on the branch that
 * reaches the user. Left out means absent in /workspace and present in the folder: a file the
 * user deleted and has not committed stays a deletion, as their own `git status` shows it.
 * `ls-files --deleted` looks only at whether each path exists (lstat; no filter or fsmonitor
 * runs), as the workspace user. Returns a problem, or undefined.
 */
async function skipTrackedButAbsent(roots: GitRoots, options: GitOptions): Promise<string | undefined> {
  const inTree = { ...options, workTree: roots.container };
  const absent = await runGit(['ls-files', '--deleted', '-z'], inTree);
  if (absent.exitCode !== 0) return `git: could not list the tracked files left out of /workspace: ${gitFailure(absent)}`;
  const leftOut = absent.stdout.split('\0').filter((file) => file !== '' && lstatSyncIfReadable(joinBytes(roots.host, file)) !== undefined);
  if (leftOut.length === 0) return undefined;
  const marked = await runGit(['update-index', '--skip-worktree', '-z', '--stdin'], { ...inTree, input: `${leftOut.join('\0')}\0` });
  return marked.exitCode === 0 ? undefined : `git: could not mark the tracked files left out of /workspace: ${gitFailure(marked)}`;
}

export interface ExchangeOptions {
  /** The workspace's name in ref names (see gitNamespace). */
  namespace: string;
  now?: Date;
  /** The branch the folder's HEAD was on at the last exchange (its `hostHead`; see followHostBranch). */
  previousHostHead?: string;
  /** The agent branch tips the last exchange left carried (its `carried`; see collectAgentHistory). */
  previouslyCarried?: Readonly<Record<string, string>>;
}

/**
 * After a sync: the agent's new commits into the host's repository as `clud/<workspace>/<branch>`,
 * then the host's new commits into the container's as `host/<branch>`. Undefined when neither
 * side has a repository (nothing to say).
 */
export async function exchangeHistory(roots: GitRoots, options: ExchangeOptions): Promise<GitExchange | undefined> {
  const exchange: GitExchange = { lines: [], problems: [], branches: [] };
  const containerGitDir = gitDirOf(roots.container);
  const containerStats = await lstat(containerGitDir).catch(() => undefined);
  try {
    const host = await inspectHostRepository(roots);
    if (host.kind === 'none') {
      if (!containerStats) return undefined;
      exchange.problems.push("git: the folder has no repository, so the commits in /workspace/.git stay in the container (run `git init` in the folder to receive them)");
      return exchange;
    }
    if (host.kind === 'unsupported') {
      exchange.problems.push(`git: ${host.reason}`);
      return exchange;
    }
    if (!containerStats) {
      // A wiped /workspace (restored by `clud resume`) or a removed .git: cloning again destroys nothing.
      const seeded = await seedContainerRepository(roots);
      if (seeded.problem) exchange.problems.push(seeded.problem);
      else exchange.lines.push("host: /workspace had no repository; it is a clone of the folder's again");
    } else if (!containerStats.isDirectory()) {
      exchange.problems.push("git: /workspace/.git is not a folder (a link or a gitdir file); it was not read, so no history crossed");
    } else {
      const collected = await collectAgentHistory(roots, host, options);
      exchange.lines.push(...collected.lines);
      exchange.problems.push(...collected.problems);
      exchange.carried = collected.carried;
      const delivered = await deliverHostHistory(roots, host, { withTags: false });
      exchange.lines.push(...delivered.lines);
      exchange.problems.push(...delivered.problems);
      for (const outcome of [await startUnbornBranch(roots), await followHostBranch(roots, host, options.previousHostHead), await followHostCommits(roots, delivered.moved)]) {
        exchange.lines.push(...outcome.lines);
        exchange.problems.push(...outcome.problems);
      }
    }
    if (host.headBranch) exchange.hostHead = host.headBranch;
    exchange.branches = await listAgentBranches(roots, options.namespace);
  } catch (error) {
    exchange.problems.push(`git: ${errorMessage(error)}`);
  }
  return exchange;
}

interface Outcome {
  lines: string[];
  problems: string[];
}

/** Fetches the container's branches into the host's repository and moves the agent refs forward. */
async function collectAgentHistory(roots: GitRoots, host: Extract<HostRepository, { kind: 'repository' }>, options: ExchangeOptions): Promise<Outcome & { carried: Record<string, string> }> {
  const carried: Record<string, string> = {};
  const outcome = { lines: [] as string[], problems: [] as string[], carried };
  const hostOptions = safeOptions(roots, host.gitDir);
  const incoming = incomingPrefix(options.namespace);
  const containerHeads = await listRefs(safeOptions(roots, gitDirOf(roots.container)), 'refs/heads/');
  // Usually the host has every tip already (nothing new, or fetched before): then nothing is fetched.
  const needsFetch = await anyMissing(hostOptions, containerHeads.map((head) => head.tip));
  try {
    let tips = containerHeads.map((head) => ({ branch: head.name.slice('refs/heads/'.length), tip: head.tip }));
    if (needsFetch) {
      await deleteRefs(hostOptions, incoming);
      // upload-pack reads the container's repository; the host's fetch writes only refs under `incoming`.
      const fetch = await runGit(['fetch', '--quiet', '--no-tags', '--no-prune', '--no-write-fetch-head', '--no-recurse-submodules', `--upload-pack=${remoteProgram('upload-pack', hostOptions)}`, gitDirOf(roots.container), `+refs/heads/*:${incoming}*`], hostOptions);
      if (fetch.exitCode !== 0) {
        outcome.problems.push(`git: the agent's commits could not be fetched from /workspace/.git: ${gitFailure(fetch)}; nothing was changed in either repository`);
        Object.assign(carried, options.previouslyCarried);
        return outcome;
      }
      tips = (await listRefs(hostOptions, incoming)).map((ref) => ({ branch: ref.name.slice(incoming.length), tip: ref.tip }));
    }
    const current = new Map((await listRefs(hostOptions, agentBranchPrefix(options.namespace))).map((ref) => [ref.name, ref.tip]));
    // The user's commits as last delivered: one the user has since amended or rebased away is not
    // on the host's branches any more, but it is still the user's, not the agent's.
    const delivered = [...new Set((await listRefs(safeOptions(roots, gitDirOf(roots.container)), HOST_BRANCHES_PREFIX)).map((ref) => ref.tip))];
    const usersOwn = (await anyMissing(hostOptions, delivered)) ? [] : delivered;
    for (const { branch, tip } of tips) {
      if (!SAFE_BRANCH.test(branch) || !/^[0-9a-f]{40,64}$/.test(tip)) {
        outcome.problems.push(`git: the container's branch ${JSON.stringify(branch)} has a name Clud does not carry`);
        continue;
      }
      const ref = agentBranchRef(options.namespace, branch);
      const shown = agentBranchName(options.namespace, branch);
      const old = current.get(ref);
      // Carried unless it fails below (then the next exchange tries again).
      carried[branch] = tip;
      if (old === tip) continue;
      // Carried before, at this very tip, and gone now: the user deleted the branch, which stays
      // deleted until the agent commits there again.
      if (!old && options.previouslyCarried?.[branch] === tip) continue;
      if (!old) {
        // A branch with nothing the host lacks (the seeded branch before the agent commits) is not news.
        const added = await countCommits(hostOptions, [tip, '--not', '--branches', ...usersOwn]);
        if (added === 0) continue;
        const failure = await updateRefs(hostOptions, `create ${ref} ${tip}\n`);
        const known = (await runGit(['show-ref', '--verify', '-q', `refs/heads/${branch}`], hostOptions)).exitCode === 0;
        if (failure) {
          delete carried[branch];
          outcome.problems.push(`git: ${shown} was not created: ${failure}`);
        } else {
          outcome.lines.push(`agent: ${plural(added, 'new commit')} on ${shown}${known ? '' : ' (new branch)'}`);
        }
        continue;
      }
      const added = await countCommits(hostOptions, [tip, '--not', old]);
      if (await isAncestor(hostOptions, old, tip)) {
        const failure = await updateRefs(hostOptions, `update ${ref} ${tip} ${old}\n`);
        if (failure) {
          delete carried[branch];
          outcome.problems.push(`git: ${shown} was not moved forward: ${failure}`);
        } else {
          outcome.lines.push(`agent: ${plural(added, 'new commit')} on ${shown}`);
        }
        continue;
      }
      // Amended, rebased or reset: the old tip stays reachable under a dated ref, in the same transaction.
      const kept = keptTipRef(options.namespace, branch, old, options.now ?? new Date());
      const failure = await updateRefs(hostOptions, `create ${kept} ${old}\nupdate ${ref} ${tip} ${old}\n`);
      if (failure) {
        delete carried[branch];
        outcome.problems.push(`git: ${shown} was rewritten in the container but not updated: ${failure}`);
      } else {
        outcome.lines.push(`agent: rewrote ${shown} (${plural(added, 'new commit')}); its old tip ${old.slice(0, 12)} is kept at ${kept}`);
      }
    }
  } finally {
    if (needsFetch) await deleteRefs(hostOptions, incoming);
  }
  return outcome;
}

/** A branch name as git allows it, and nothing that could break a line of `update-ref --stdin`. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it must refuse
const SAFE_BRANCH = /^(?!.*\.\.)(?!.*@\{)(?!\/)(?!.*\/$)(?!.*\.lock(\/|$))[^\x00-\x20\x7f~^:?*[\\]+$/;

/** True when any of `objects` is not in the repository (one `cat-file --batch-check`). */
async function anyMissing(options: GitOptions, objects: readonly string[]): Promise<boolean> {
  if (objects.length === 0) return false;
  const run = await runGit(['cat-file', '--batch-check=%(objectname)'], { ...options, input: objects.join('\n') + '\n' });
  return run.exitCode !== 0 || run.stdout.includes(' missing');
}

/**
 * Pushes the host's branches into the container's repository as refs/remotes/host/*, and at the
 * seed its tags. receive-pack runs with hooks off; the refs and pack folders it writes to are
 * checked for symbolic links first, which could otherwise point its writes outside /workspace.
 */
async function deliverHostHistory(roots: GitRoots, host: Extract<HostRepository, { kind: 'repository' }>, options: { withTags: boolean }): Promise<Outcome & { moved: MovedBranch[] }> {
  const outcome: Outcome & { moved: MovedBranch[] } = { lines: [], problems: [], moved: [] };
  const containerGitDir = gitDirOf(roots.container);
  const containerOptions = safeOptions(roots, containerGitDir);
  const link = await findSymbolicLink(containerGitDir, ['refs', 'refs/remotes', 'refs/remotes/host', 'refs/tags', 'objects', 'objects/pack', 'objects/info', 'packed-refs', 'reftable']);
  if (link) {
    outcome.problems.push(`git: /workspace/.git/${link} is a symbolic link, so the host's new commits were not delivered into the container's repository`);
    return outcome;
  }
  const hostHeads = await listRefs(safeOptions(roots, host.gitDir), 'refs/heads/');
  // With nothing to send (a repository with no commits yet) push would only fail.
  if (hostHeads.length === 0) return outcome;
  const before = new Map((await listRefs(containerOptions, HOST_BRANCHES_PREFIX)).map((ref) => [ref.name, ref.tip]));
  const current = hostHeads.every((head) => before.get(HOST_BRANCHES_PREFIX + head.name.slice('refs/heads/'.length)) === head.tip);
  if (current && !options.withTags) return outcome;
  const refspecs = [`+refs/heads/*:${HOST_BRANCHES_PREFIX}*`, ...(options.withTags ? ['refs/tags/*:refs/tags/*'] : [])];
  const push = await runGit(['push', '--quiet', '--no-verify', '--no-follow-tags', `--receive-pack=${remoteProgram('receive-pack', containerOptions)}`, containerGitDir, ...refspecs], safeOptions(roots, host.gitDir));
  if (push.exitCode !== 0) {
    outcome.problems.push(`git: the host's new commits could not be delivered into /workspace/.git: ${gitFailure(push)}`);
  }
  const after = await listRefs(containerOptions, HOST_BRANCHES_PREFIX);
  for (const { name, tip } of after) {
    const old = before.get(name);
    if (old === tip) continue;
    if (old) outcome.moved.push({ branch: name.slice(HOST_BRANCHES_PREFIX.length), from: old, to: tip });
    const shown = `host/${name.slice(HOST_BRANCHES_PREFIX.length)}`;
    if (!old) outcome.lines.push(`host: new branch ${shown}`);
    else outcome.lines.push(`host: ${plural(await countCommits(containerOptions, [tip, '--not', old]), 'new commit')} on ${shown}`);
  }
  const chown = await giveToWorkspaceOwner(roots, ['refs/remotes/host', 'refs/tags', 'objects/pack'].map((folder) => path.join(containerGitDir, folder)));
  if (chown) outcome.problems.push(chown);
  return outcome;
}

/**
 * A container repository seeded from one with no commits yet is on a branch with none either.
 * Once the host's branch of that name has commits (delivered as host/<branch>), the container's
 * branch starts there, with an index to match, as a clone made now would: otherwise the agent's
 * `git status` lists every file as untracked. Only while nothing is committed or staged in the
 * container, so that nothing of the agent's is moved.
 */
async function startUnbornBranch(roots: GitRoots): Promise<Outcome> {
  const outcome: Outcome = { lines: [], problems: [] };
  const options = safeOptions(roots, gitDirOf(roots.container));
  const head = await runGit(['symbolic-ref', '-q', 'HEAD'], options);
  const branch = head.stdout.trim();
  if (head.exitCode !== 0 || !branch.startsWith('refs/heads/')) return outcome;
  if ((await runGit(['rev-parse', '-q', '--verify', `${branch}^{commit}`], options)).exitCode === 0) return outcome;
  const name = branch.slice('refs/heads/'.length);
  const hostTip = await runGit(['rev-parse', '-q', '--verify', `${HOST_BRANCHES_PREFIX}${name}^{commit}`], options);
  if (hostTip.exitCode !== 0) return outcome;
  const staged = await runGit(['ls-files', '-z'], options);
  if (staged.exitCode !== 0 || staged.stdout !== '') return outcome;
  // `create` refuses if the agent made the branch meanwhile; the index is read from the tree alone (see seedContainerRepository).
  const failure = (await updateRefs(options, `create ${branch} ${hostTip.stdout.trim()}
`)) ?? (await gitStep(['read-tree', 'HEAD'], options));
  if (failure) {
    outcome.problems.push(`git: the container's branch ${name} could not start at host/${name}: ${failure}`);
    return outcome;
  }
  for (const problem of await afterMovingHead(roots, options)) outcome.problems.push(problem);
  outcome.lines.push(`host: the container's branch ${name}, which had no commits, starts at host/${name}`);
  return outcome;
}

/**
 * The user switched branches in their folder since the last exchange (its HEAD moved from the
 * branch `previous` to another): the new branch's files reach /workspace through the file sync,
 * so a container repository that was on the branch the user left, with nothing of the agent's
 * on it, follows onto the new one, as a repository both shared would. Otherwise the agent's
 * `git status` shows the switch as its own changes, and its `git commit -a` commits it on the old
 * branch. Only HEAD and the index move: the working tree is the sync's, and none of the agent's
 * branches moves. It goes onto the container's branch of that name where that is at the host's
 * tip, or creates it there. It stays (and a line says why) where the agent committed on the
 * branch it is on (its work stays where it is, and measured against it the user's files show
 * only the user's differences) or staged something (the index is read from the new branch's
 * tree). A container repository on another branch than the one left is the agent's choice.
 */
async function followHostBranch(roots: GitRoots, host: Extract<HostRepository, { kind: 'repository' }>, previous: string | undefined): Promise<Outcome> {
  const outcome: Outcome = { lines: [], problems: [] };
  const next = host.headBranch;
  if (!previous || !next || previous === next || !host.headCommit) return outcome;
  const options = safeOptions(roots, gitDirOf(roots.container));
  const head = await runGit(['symbolic-ref', '-q', 'HEAD'], options);
  if (head.exitCode !== 0 || head.stdout.trim() !== previous) return outcome;
  const [from, to] = [previous, next].map((ref) => ref.slice('refs/heads/'.length)) as [string, string];
  const switched = `host: your folder switched from ${from} to ${to}`;
  const stays = (why: string) => {
    outcome.lines.push(`${switched}; the container's repository stays on ${from} (${why}): the agent's \`git status\` shows the difference as changes`);
    return outcome;
  };
  if ((await runGit(['merge-base', '--is-ancestor', 'HEAD', `${HOST_BRANCHES_PREFIX}${from}`], options)).exitCode !== 0) return stays(`it holds commits your ${from} does not`);
  const hostTip = await runGit(['rev-parse', '-q', '--verify', `${HOST_BRANCHES_PREFIX}${to}^{commit}`], options);
  if (!SAFE_BRANCH.test(to) || hostTip.exitCode !== 0) return stays(`host/${to} is not in it`);
  const own = await runGit(['rev-parse', '-q', '--verify', `${next}^{commit}`], options);
  if (own.exitCode === 0 && own.stdout.trim() !== hostTip.stdout.trim()) return stays(`its own branch ${to} is not where yours is`);
  if (!(await nothingStaged(options))) return stays('something is staged there');
  const failure =
    (own.exitCode === 0 ? undefined : await updateRefs(options, `create ${next} ${hostTip.stdout.trim()}\n`)) ??
    (await gitStep(['symbolic-ref', 'HEAD', next], options)) ??
    (await gitStep(['read-tree', 'HEAD'], options));
  if (failure) {
    outcome.problems.push(`git: ${switched}, but the container's repository could not follow: ${failure}`);
    return outcome;
  }
  for (const problem of await afterMovingHead(roots, options)) outcome.problems.push(problem);
  outcome.lines.push(`${switched}; the container's repository follows${own.exitCode === 0 ? '' : ` (its branch ${to} starts at host/${to})`}`);
  return outcome;
}

/**
 * After HEAD, a branch and the index of the container's repository moved: the tracked files the
 * copy left out marked again (the index was read afresh), and what was written given to the
 * workspace user where git ran as another (a root caller). Returns problems.
 */
async function afterMovingHead(roots: GitRoots, options: GitOptions): Promise<string[]> {
  const gitDir = gitDirOf(roots.container);
  const problems = [await skipTrackedButAbsent(roots, options), await giveToWorkspaceOwner(roots, ['HEAD', 'index', 'refs/heads'].map((name) => path.join(gitDir, name)))];
  return problems.filter((problem): problem is string => problem !== undefined);
}

/** Runs one git step that must succeed; returns git's reason when it did not. */
async function gitStep(args: readonly string[], options: GitOptions): Promise<string | undefined> {
  const run = await runGit(args, options);
  return run.exitCode === 0 ? undefined : gitFailure(run);
}

/** Whether the index is HEAD's tree: compared by object id only, so no file is read and no filter the repository names runs. */
async function nothingStaged(options: GitOptions): Promise<boolean> {
  return (await runGit(['diff-index', '--cached', '--quiet', 'HEAD', '--'], options)).exitCode === 0;
}

/** A host branch whose `host/<branch>` moved in the container's repository in this exchange. */
interface MovedBranch {
  branch: string;
  from: string;
  to: string;
}

/**
 * The user committed on, amended or rebased the branch the container's repository is on. Where
 * the container's branch was where the user's was (at `host/<branch>` before this exchange: the
 * agent committed nothing of its own since), it moves with the user's, as one repository both
 * shared would: otherwise the agent's `git status` shows the user's committed work as its own
 * changes, and its next `commit -a` commits it again. Only the branch and the index move (the
 * working tree is the sync's), never with anything staged, and the old tip stays a commit of the
 * user's. Where the agent has commits of its own, a line says its branch stays and how to catch up.
 */
async function followHostCommits(roots: GitRoots, moved: readonly MovedBranch[]): Promise<Outcome> {
  const outcome: Outcome = { lines: [], problems: [] };
  if (moved.length === 0) return outcome;
  const options = safeOptions(roots, gitDirOf(roots.container));
  const head = await runGit(['symbolic-ref', '-q', 'HEAD'], options);
  const current = head.exitCode === 0 ? head.stdout.trim() : '';
  const change = moved.find(({ branch }) => `refs/heads/${branch}` === current);
  if (!change) return outcome;
  const tip = await runGit(['rev-parse', '-q', '--verify', `${current}^{commit}`], options);
  const ours = tip.stdout.trim();
  if (tip.exitCode !== 0 || ours === change.to) return outcome;
  const stays = (why: string) => {
    outcome.lines.push(`host: your ${change.branch} moved; the container's ${change.branch} stays (${why}): the agent's \`git status\` shows your new work as changes until it rebases onto host/${change.branch}`);
    return outcome;
  };
  if (ours !== change.from) return stays('it has commits of its own');
  if (!(await nothingStaged(options))) return stays('something is staged there');
  const failure =
    (await updateRefs(options, `update ${current} ${change.to} ${change.from}\n`)) ??
    (await gitStep(['read-tree', 'HEAD'], options));
  if (failure) {
    outcome.problems.push(`git: the container's ${change.branch} could not move with yours: ${failure}`);
    return outcome;
  }
  for (const problem of await afterMovingHead(roots, options)) outcome.problems.push(problem);
  outcome.lines.push(`host: the container's ${change.branch} moves with yours`);
  return outcome;
}

/** The agent branches in the host's repository and how far each is ahead of the host's branch of the same name. */
export async function listAgentBranches(roots: GitRoots, namespace: string): Promise<GitBranchInfo[]> {
  const options = safeOptions(roots, gitDirOf(roots.host));
  const prefix = agentBranchPrefix(namespace);
  const hostBranches = new Set((await listRefs(options, 'refs/heads/')).map((ref) => ref.name));
  const branches: GitBranchInfo[] = [];
  for (const { name, tip } of await listRefs(options, prefix)) {
    const branch = name.slice(prefix.length);
    const base = hostBranches.has(`refs/heads/${branch}`) ? branch : undefined;
    const ahead = await countCommits(options, [tip, '--not', base ? `refs/heads/${base}` : '--branches']);
    branches.push({ branch, hostName: agentBranchName(namespace, branch), tip, ahead, base });
  }
  return branches;
}

async function listRefs(options: GitOptions, prefix: string): Promise<Array<{ name: string; tip: string }>> {
  const run = await runGit(['for-each-ref', '--format=%(objectname) %(refname)', prefix.replace(/\/$/, '')], options);
  if (run.exitCode !== 0) throw new Error(`cannot list the refs under ${prefix} in ${options.gitDir}: ${gitFailure(run)}`);
  return run.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ tip: line.slice(0, line.indexOf(' ')), name: line.slice(line.indexOf(' ') + 1) }))
    .filter((ref) => ref.name.startsWith(prefix));
}

/** Runs `update-ref --stdin`; returns git's one-line reason when it refused (nothing changed then). */
async function updateRefs(options: GitOptions, commands: string): Promise<string | undefined> {
  const run = await runGit(['update-ref', '--stdin'], { ...options, input: commands });
  return run.exitCode === 0 ? undefined : gitFailure(run);
}

async function deleteRefs(options: GitOptions, prefix: string): Promise<void> {
  const refs = await listRefs(options, prefix);
  if (refs.length) await updateRefs(options, refs.map((ref) => `delete ${ref.name} ${ref.tip}\n`).join(''));
}

async function countCommits(options: GitOptions, args: string[]): Promise<number> {
  const run = await runGit(['rev-list', '--count', ...args], options);
  return run.exitCode === 0 ? Number(run.stdout.trim()) || 0 : 0;
}

async function isAncestor(options: GitOptions, ancestor: string, descendant: string): Promise<boolean> {
  const run = await runGit(['merge-base', '--is-ancestor', ancestor, descendant], options);
  if (run.exitCode > 1) throw new Error(`cannot compare ${ancestor.slice(0, 12)} with ${descendant.slice(0, 12)}: ${gitFailure(run)}`);
  return run.exitCode === 0;
}

/** The first of `relatives` (or anything under refs/remotes/host) inside `root` that is a symbolic link. */
async function findSymbolicLink(root: string, relatives: readonly string[]): Promise<string | undefined> {
  for (const relative of relatives) {
    if ((await lstat(path.join(root, relative)).catch(() => undefined))?.isSymbolicLink()) return relative;
  }
  const entries = await readdir(path.join(root, 'refs/remotes/host'), { recursive: true, withFileTypes: true }).catch(() => []);
  const link = entries.find((entry) => entry.isSymbolicLink());
  return link ? path.relative(root, path.join(link.parentPath ?? link.path, link.name)) : undefined;
}

/**
 * What this process wrote into the container's repository must belong to the workspace user,
 * who commits there. Only needed when the sync runs as another user (then with CAP_CHOWN);
 * `-P` never follows a link. Returns a problem line, or undefined.
 */
async function giveToWorkspaceOwner(roots: GitRoots, paths: readonly string[]): Promise<string | undefined> {
  const owner = await stat(roots.container).catch(() => undefined);
  if (!owner || owner.uid === process.getuid?.()) return undefined;
  const existing = [];
  for (const entry of paths) if (await lstat(entry).catch(() => undefined)) existing.push(entry);
  if (!existing.length) return undefined;
  const run = await runProgram('chown', ['-R', '-P', `${owner.uid}:${owner.gid}`, ...existing]);
  return run.exitCode === 0 ? undefined : `git: could not give the container's repository to the workspace user: ${run.stderr.trim()}`;
}
