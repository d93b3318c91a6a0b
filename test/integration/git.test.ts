// The agent's git history, end to end with real git on the host and in a real container: the
// container's repository is a clone the agent commits to, its commits reach the host as
// clud/<workspace>/<branch>, the host's reach the container as host/<branch>, and the user's own
// refs, HEAD and index are never written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  INTEGRATION_TIMEOUT_MS,
  TestScope,
  USER_GID,
  USER_UID,
  assertExit,
  chownTree,
  cludSync,
  cludUp,
  describeRun,
  execSh,
  requireDocker,
  runClud,
  writeHost,
} from '../helpers/integration';

const HOST_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };

/** git on the host, as the folder's owner would run it (the tests run as root, so safe.directory). */
function hostGit(dir: string, ...args: string[]): string {
  const identity = ['-c', 'safe.directory=*', '-c', 'user.name=The User', '-c', 'user.email=user@example.com', '-c', 'init.defaultBranch=main', '-c', 'commit.gpgSign=false'];
  return execFileSync('git', [...identity, ...args], { cwd: dir, env: HOST_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** git in /workspace as the workspace user, through `clud exec`. */
async function agentGit(dir: string, ...args: string[]): Promise<string> {
  const run = await runClud(['exec', dir, '--', 'git', '-c', 'user.name=Agent Smith', '-c', 'user.email=agent@example.com', ...args]);
  assertExit(run, 0);
  return run.stdout.trim();
}

/** The user's own record in .git, byte for byte: HEAD, index, config, packed refs and every local branch, tag and stash. */
function userRecord(dir: string): string {
  const read = (file: string) => {
    try {
      return readFileSync(path.join(dir, '.git', file)).toString('base64');
    } catch {
      return '';
    }
  };
  return JSON.stringify({ head: read('HEAD'), index: read('index'), config: read('config'), packed: read('packed-refs'), refs: hostGit(dir, 'for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads', 'refs/tags', 'refs/stash') });
}

async function projectWithRepository(scope: TestScope, name: string): Promise<string> {
  const dir = await scope.project({ 'README.md': 'hello\n', 'src/app.txt': 'one\n' }, { name });
  hostGit(dir, 'init', '-q');
  hostGit(dir, 'add', '-A');
  hostGit(dir, 'commit', '-q', '-m', 'first');
  hostGit(dir, 'branch', 'feature');
  hostGit(dir, 'tag', 'v1');
  await chownTree(dir, USER_UID, USER_GID);
  return dir;
}

describe('integration: git history between the container and the host', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';

  before(async function () {
    await requireDocker();
    dir = await projectWithRepository(scope, 'app');
    await cludUp(dir);
  });

  after(async function () {
    await scope.cleanup();
  });

  it("the container's /workspace is a clone: the host's branch and commit, its branches and tags, and the same clean status", async function () {
    assert.equal(await agentGit(dir, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
    assert.equal(await agentGit(dir, 'rev-parse', 'HEAD'), hostGit(dir, 'rev-parse', 'HEAD'));
    assert.equal(await agentGit(dir, 'rev-parse', 'host/feature'), hostGit(dir, 'rev-parse', 'feature'));
    assert.equal(await agentGit(dir, 'rev-parse', 'v1'), hostGit(dir, 'rev-parse', 'v1'));
    assert.equal(await agentGit(dir, 'status', '--porcelain'), '');
    assert.equal((await execSh(dir, 'stat -c %U .git .git/index .git/refs/remotes/host/main')).trim().split('\n').join(','), 'coder,coder,coder');
  });

  it("the agent's commits reach the host as clud/app/main with their messages and authors; the user's HEAD, branches and index are unchanged", async function () {
    await writeHost(dir, { 'staged.txt': 'staged by the user\n' });
    hostGit(dir, 'add', 'staged.txt');
    const before = userRecord(dir);
    await execSh(dir, 'echo two > src/app.txt');
    await agentGit(dir, 'commit', '-q', '-a', '-m', 'agent: change app', '--author=Robo Coder <robo@example.com>');
    await execSh(dir, 'echo new > new.txt');
    await agentGit(dir, 'add', 'new.txt');
    await agentGit(dir, 'commit', '-q', '-m', 'agent: add new.txt');
    const tip = await agentGit(dir, 'rev-parse', 'HEAD');

    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.git?.problems, []);
    assert.deepEqual(report.git?.lines, ['agent: 2 new commits on clud/app/main']);
    assert.deepEqual(report.git?.branches.map((branch) => [branch.hostName, branch.ahead, branch.base, branch.tip]), [['clud/app/main', 2, 'main', tip]]);
    assert.equal(hostGit(dir, 'rev-parse', 'clud/app/main'), tip);
    assert.equal(hostGit(dir, 'log', '-2', '--format=%an <%ae>|%s', 'clud/app/main'), 'Agent Smith <agent@example.com>|agent: add new.txt\nRobo Coder <robo@example.com>|agent: change app');
    assert.equal(userRecord(dir), before, "the sync wrote the user's HEAD, index, config or branches");
    // The files crossed as files, as always: the user's working tree has the agent's changes, uncommitted.
    assert.equal(readFileSync(path.join(dir, 'new.txt'), 'utf8'), 'new\n');
    assert.deepEqual(hostGit(dir, 'status', '--porcelain', '--untracked-files=no').split('\n').map((line) => line.trim()).sort(), ['A  staged.txt', 'M src/app.txt']);

    const status = await runClud(['status', dir]);
    assertExit(status, 0);
    assert.match(status.stdout, /^git: +clud\/app\/main: 2 commits ahead of main$/m, describeRun(status));
    const text = await runClud(['sync', dir]);
    assertExit(text, 0);
    assert.doesNotMatch(text.stdout, /agent:/, 'an unchanged branch is reported again');
  });

  it('a `clud run` that commits ends with its commits on the host as clud/app/main, no sync asked for', async function () {
    // Auto-sync is off (the test default): only the step's end can have carried them.
    const run = await runClud(['run', dir, '--', 'sh', '-c', 'echo more >> new.txt && git -c user.name=Agent -c user.email=agent@example.com commit -q -a -m "agent: more"']);
    assertExit(run, 0);
    assert.equal(hostGit(dir, 'rev-parse', 'clud/app/main'), await agentGit(dir, 'rev-parse', 'HEAD'));
    assert.equal(hostGit(dir, 'log', '-1', '--format=%s', 'clud/app/main'), 'agent: more');
  });

  it("a host commit reaches the container's log as host/main, without moving the agent's branch", async function () {
    const agentTip = await agentGit(dir, 'rev-parse', 'HEAD');
    await writeHost(dir, { 'user.txt': 'from the user\n' });
    hostGit(dir, 'add', 'user.txt');
    hostGit(dir, 'commit', '-q', '-m', 'user: add user.txt');
    await chownTree(dir, USER_UID, USER_GID);
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.git?.problems, []);
    assert.ok(report.git?.lines.includes('host: 1 new commit on host/main'), JSON.stringify(report.git));
    assert.equal(await agentGit(dir, 'log', '-1', '--format=%s', 'host/main'), 'user: add user.txt');
    assert.equal(await agentGit(dir, 'rev-parse', 'HEAD'), agentTip);
  });

  it('an amended agent branch moves clud/app/main on, and its old tip stays reachable under the dated ref the report names', async function () {
    const old = await agentGit(dir, 'rev-parse', 'HEAD');
    await agentGit(dir, 'commit', '-q', '--amend', '-m', 'agent: add new.txt, amended');
    const amended = await agentGit(dir, 'rev-parse', 'HEAD');
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.git?.problems, []);
    const line = report.git?.lines.find((entry) => entry.startsWith('agent: rewrote clud/app/main'));
    const kept = line?.match(/is kept at (refs\/clud\/app\/kept\/main\/\S+)$/)?.[1];
    assert.ok(kept, JSON.stringify(report.git));
    assert.equal(hostGit(dir, 'rev-parse', kept), old);
    assert.equal(hostGit(dir, 'rev-parse', 'clud/app/main'), amended);
  });

  it('a branch switch in the container reaches the folder as file changes, through the usual sync and its undo step', async function () {
    await agentGit(dir, 'switch', '-q', '-c', 'topic', 'host/feature');
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(
      report.applied.filter((change) => change.side === 'host').map((change) => `${change.action} ${change.path}`).sort(),
      // user.txt stays: the host committed it, so in the container it is an untracked file that a switch keeps.
      ['delete new.txt', 'update src/app.txt'],
    );
    assert.ok(report.undoStep, 'the switch is an undo step like any sync');
    assert.equal(readFileSync(path.join(dir, 'src/app.txt'), 'utf8'), 'one\n');
    assert.deepEqual(report.git?.lines, [], 'a branch with nothing new is not carried');
    await agentGit(dir, 'switch', '-q', 'main');
    const back = await cludSync('sync', dir);
    assert.deepEqual(back.report.applied.filter((change) => change.side === 'host').map((change) => `${change.action} ${change.path}`).sort(), ['create new.txt', 'update src/app.txt']);
  });

  it('a failing fetch (a commit whose object is gone) is reported, and neither repository changes', async function () {
    await execSh(dir, 'echo three > src/app.txt');
    await agentGit(dir, 'commit', '-q', '-a', '-m', 'agent: broken');
    const tip = await agentGit(dir, 'rev-parse', 'HEAD');
    await execSh(dir, `rm -f .git/objects/${tip.slice(0, 2)}/${tip.slice(2)}`);
    const hostRefs = hostGit(dir, 'for-each-ref', '--format=%(objectname) %(refname)');
    const containerRefs = await agentGit(dir, 'for-each-ref', '--format=%(objectname) %(refname)');
    const { report } = await cludSync('sync', dir);
    assert.equal(report.git?.problems.length, 1, JSON.stringify(report.git));
    assert.match(report.git!.problems[0]!, /^git: the agent's commits could not be fetched from \/workspace\/\.git: .+; nothing was changed in either repository$/);
    assert.equal(hostGit(dir, 'for-each-ref', '--format=%(objectname) %(refname)'), hostRefs);
    assert.equal(await agentGit(dir, 'for-each-ref', '--format=%(objectname) %(refname)'), containerRefs);
    const text = await runClud(['sync', dir]);
    assert.match(text.stdout, /problem +git: the agent's commits could not be fetched/, describeRun(text));
  });
});

describe("integration: a branch switch in the user's folder", function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(requireDocker);
  after(async function () {
    await scope.cleanup();
  });

  it("the container's repository follows it, so the agent's status is clean and its commits land on the branch the user is on", async function () {
    const dir = await projectWithRepository(scope, 'switch');
    hostGit(dir, 'checkout', '-q', 'feature');
    await writeHost(dir, { 'src/app.txt': 'feature\n' });
    hostGit(dir, 'commit', '-q', '-am', 'feature work');
    hostGit(dir, 'checkout', '-q', 'main');
    await chownTree(dir, USER_UID, USER_GID);
    await cludUp(dir);
    // The first exchange notes the branch the folder is on.
    assert.deepEqual((await cludSync('sync', dir)).report.git?.problems, []);
    // A commit of the user's on that branch moves the container's with it (the agent has none of its own).
    await writeHost(dir, { 'user.txt': 'user\n' });
    hostGit(dir, 'add', 'user.txt');
    hostGit(dir, 'commit', '-q', '-m', 'user work');
    await chownTree(dir, USER_UID, USER_GID);
    const committed = await cludSync('sync', dir);
    assert.ok(committed.report.git?.lines.includes("host: the container's main moves with yours"), JSON.stringify(committed.report.git));
    assert.equal(await agentGit(dir, 'status', '--porcelain'), '');

    hostGit(dir, 'checkout', '-q', 'feature');
    await chownTree(dir, USER_UID, USER_GID);
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.git?.problems, []);
    assert.ok(report.git?.lines.includes("host: your folder switched from main to feature; the container's repository follows (its branch feature starts at host/feature)"), JSON.stringify(report.git));
    assert.equal(await agentGit(dir, 'symbolic-ref', 'HEAD'), 'refs/heads/feature');
    assert.equal(await agentGit(dir, 'status', '--porcelain'), '');

    await execSh(dir, 'echo agent > agent.txt');
    await agentGit(dir, 'add', 'agent.txt');
    await agentGit(dir, 'commit', '-q', '-m', 'agent: on feature');
    const after = await cludSync('sync', dir);
    assert.ok(after.report.git?.lines.includes('agent: 1 new commit on clud/switch/feature'), JSON.stringify(after.report.git));
  });
});

describe('integration: git in folders without an ordinary repository', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(requireDocker);
  afterEach(async function () {
    await scope.cleanup();
  });

  it('an empty repository (no commits): the container starts on the same unborn branch, and its first commits arrive', async function () {
    const dir = await scope.project({ 'a.txt': 'a\n' }, { name: 'empty' });
    hostGit(dir, 'init', '-q', '-b', 'trunk');
    await chownTree(dir, USER_UID, USER_GID);
    await cludUp(dir);
    assert.equal(await agentGit(dir, 'symbolic-ref', 'HEAD'), 'refs/heads/trunk');
    await agentGit(dir, 'add', '-A');
    await agentGit(dir, 'commit', '-q', '-m', 'initial');
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.git?.problems, []);
    assert.deepEqual(report.git?.lines, ['agent: 1 new commit on clud/empty/trunk (new branch)']);
    assert.equal(hostGit(dir, 'log', '--format=%s', 'clud/empty/trunk'), 'initial');
  });

  it("tracked files the copy left out (a committed .env, a force-added ignored file) are not deleted in the agent's status or commits", async function () {
    const dir = await scope.project({ '.env': 'SECRET=1\n', '.gitignore': 'build/\n', 'build/out.txt': 'built\n', 'src/app.txt': 'one\n', 'gone.txt': 'deleted by the user\n' }, { name: 'kept' });
    hostGit(dir, 'init', '-q');
    hostGit(dir, 'add', '-A');
    hostGit(dir, 'add', '--force', 'build/out.txt');
    hostGit(dir, 'commit', '-q', '-m', 'first');
    // A deletion the user has not committed is one in the container too, as their own status says.
    await unlink(path.join(dir, 'gone.txt'));
    await chownTree(dir, USER_UID, USER_GID);
    await cludUp(dir);
    assert.equal((await execSh(dir, 'ls -A; ls build 2>&1 || true')).includes('.env'), false, '.env was copied into /workspace');
    assert.equal(await agentGit(dir, 'status', '--porcelain'), 'D gone.txt', 'the left-out files show as deleted to the agent, or the deletion does not');
    await execSh(dir, 'echo two > src/app.txt');
    await agentGit(dir, 'add', '-A');
    await agentGit(dir, 'commit', '-q', '-a', '-m', 'agent: change app');
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.git?.problems, []);
    // The agent committed its tree: its edit, and the deletion the user had made; never the left-out files.
    assert.deepEqual(hostGit(dir, 'diff', '--name-status', 'main', 'clud/kept/main').split('\n'), ['D\tgone.txt', 'M\tsrc/app.txt']);
  });

  it('a folder with no repository: the container has none either; one the agent makes is reported as staying there', async function () {
    const dir = await scope.project({ 'a.txt': 'a\n' }, { name: 'plain' });
    await cludUp(dir);
    const status = await runClud(['exec', dir, '--', 'git', 'status']);
    assert.notEqual(status.exitCode, 0);
    assert.match(status.stderr, /not a git repository/);
    const { report } = await cludSync('sync', dir);
    assert.equal(report.git, undefined);
    await agentGit(dir, 'init', '-q');
    const after = await cludSync('sync', dir);
    assert.deepEqual(after.report.git?.problems, ['git: the folder has no repository, so the commits in /workspace/.git stay in the container (run `git init` in the folder to receive them)']);
    assert.match((await runClud(['status', dir])).stdout, /git: the folder has no repository/);
    // With no repository left on either side, status says nothing of git (it said the last exchange's problem forever).
    await execSh(dir, 'rm -rf .git');
    assert.equal((await cludSync('sync', dir)).report.git, undefined);
    const shown = await runClud(['status', dir]);
    assert.doesNotMatch(shown.stdout, /git:/, describeRun(shown));
  });

  it('a linked worktree (.git is a file) gets its files and one clear line about git, at start and at each sync', async function () {
    const main = await scope.project({ 'a.txt': 'a\n' }, { name: 'main' });
    hostGit(main, 'init', '-q');
    hostGit(main, 'add', '-A');
    hostGit(main, 'commit', '-q', '-m', 'first');
    const dir = path.join(path.dirname(main), 'side');
    hostGit(main, 'worktree', 'add', '-q', dir, '-b', 'side');
    await chownTree(path.dirname(main), USER_UID, USER_GID);
    const up = await cludUp(dir);
    const warnings = (up.init as { warnings: string[] }).warnings;
    assert.deepEqual(warnings.filter((warning) => warning.startsWith('git: ')), ["git: the folder's .git is a file (a linked worktree or a submodule): its repository lies outside the folder, so no history is carried; /workspace gets no repository"]);
    assert.equal((await execSh(dir, 'cat a.txt')).trim(), 'a');
    const { report } = await cludSync('sync', dir);
    assert.deepEqual(report.git?.problems, ["git: the folder's .git is a file (a linked worktree or a submodule): its repository lies outside the folder, so no history is carried"]);
  });
});

describe("integration: the agent's git identity", function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(async function () {
    await requireDocker();
  });

  after(async function () {
    await scope.cleanup();
  });

  it("gives the agent the git identity git reads in the user's folder, so its commits need no set-up; one set in the container stays", async function () {
    const identityDir = await projectWithRepository(scope, 'identity');
    const globalConfig = async (name: string, email: string) => {
      const file = path.join(await scope.tempDir(), 'gitconfig');
      await writeFile(file, `[user]\n\tname = ${name}\n\temail = ${email}\n`);
      return { GIT_CONFIG_GLOBAL: file, GIT_CONFIG_NOSYSTEM: '1' };
    };
    await cludUp(identityDir, [], { env: await globalConfig('Pat Host', 'pat@example.com') });
    // Committed with no -c and no --author: the identity is the container's own setting now.
    await execSh(identityDir, 'echo by-the-agent >> src/app.txt && git commit -q -a -m "agent: as the user"');
    assert.equal(await execSh(identityDir, 'git log -1 --format="%an <%ae>|%cn <%ce>"'), 'Pat Host <pat@example.com>|Pat Host <pat@example.com>\n');

    await execSh(identityDir, 'git config --global user.name "Agent Override"');
    await cludUp(identityDir, [], { env: await globalConfig('Someone Else', 'else@example.com') });
    assert.equal(await execSh(identityDir, 'git config --global --get user.name; git config --global --get user.email'), 'Agent Override\npat@example.com\n');
  });
});
