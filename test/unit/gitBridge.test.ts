// The git exchange with real git on real temporary repositories: the host's folder and the
// container's copy are two folders here, as /host and /workspace are in the container.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { exchangeHistory, seedContainerRepository } from '../../src/core/git/bridge';
import { gitNamespace, keptTipRef } from '../../src/core/git/refNames';
import { useTempDir } from '../helpers/tempDir';

const IDENTITY = ['-c', 'user.name=Agent Smith', '-c', 'user.email=agent@example.com', '-c', 'init.defaultBranch=main', '-c', 'commit.gpgSign=false'];
const ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', [...IDENTITY, ...args], { cwd, env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function commitFile(cwd: string, file: string, content: string, message: string, ...extra: string[]): string {
  writeFileSync(path.join(cwd, file), content);
  git(cwd, 'add', file);
  git(cwd, 'commit', '-q', '-m', message, ...extra);
  return git(cwd, 'rev-parse', 'HEAD');
}

/** Everything in the host's .git that is the user's, byte for byte: HEAD, index, config, local branches, packed refs. */
function userRecord(repo: string): string {
  const gitDir = path.join(repo, '.git');
  const read = (file: string) => {
    try {
      return readFileSync(path.join(gitDir, file)).toString('base64');
    } catch {
      return '';
    }
  };
  return JSON.stringify({ head: read('HEAD'), index: read('index'), config: read('config'), packed: read('packed-refs'), heads: git(repo, 'for-each-ref', 'refs/heads', 'refs/tags', 'refs/stash') });
}

describe('unit: git bridge (real git)', function () {
  this.timeout(30_000);
  const tempDir = useTempDir('clud-git-');
  const roots = () => ({ host: path.join(tempDir(), 'host'), container: path.join(tempDir(), 'workspace') });
  const NAMESPACE = 'app';

  /** A host repository with two commits on main, a feature branch and a tag; the container's copy of its files. */
  function hostWithHistory(): { host: string; container: string } {
    const { host, container } = roots();
    mkdirSync(host);
    git(host, 'init', '-q');
    commitFile(host, 'a.txt', 'one\n', 'first');
    git(host, 'tag', 'v1');
    git(host, 'branch', 'feature');
    commitFile(host, 'a.txt', 'two\n', 'second');
    copyFiles(host, container);
    return { host, container };
  }

  /** A host repository with no commits (branch trunk, one file) and the container seeded from it. */
  async function seededEmptyRepository(): Promise<{ host: string; container: string }> {
    const { host, container } = roots();
    mkdirSync(host);
    git(host, 'init', '-q', '-b', 'trunk');
    writeFileSync(path.join(host, 'a.txt'), 'a\n');
    copyFiles(host, container);
    assert.deepEqual(await seedContainerRepository({ host, container }), {});
    return { host, container };
  }

  function copyFiles(from: string, to: string): void {
    cpSync(from, to, { recursive: true, filter: (source) => path.basename(source) !== '.git' });
  }

  it('seeds the container with a real repository like a clone: same branch and commit, host branches, tags, a clean status', async () => {
    const { host, container } = hostWithHistory();
    const result = await seedContainerRepository({ host, container });
    assert.deepEqual(result, {});
    assert.equal(git(container, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
    assert.equal(git(container, 'rev-parse', 'HEAD'), git(host, 'rev-parse', 'HEAD'));
    assert.equal(git(container, 'rev-parse', 'host/feature'), git(host, 'rev-parse', 'feature'));
    assert.equal(git(container, 'rev-parse', 'v1'), git(host, 'rev-parse', 'v1'));
    assert.equal(git(container, 'status', '--porcelain'), '');
    assert.equal(git(container, 'log', '--format=%s').split('\n').join(','), 'second,first');
  });

  it("brings the agent's commits to the host as clud/<workspace>/<branch> with messages and authors, leaving the user's HEAD, branches and index alone", async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    writeFileSync(path.join(host, 'staged.txt'), 'staged by the user\n');
    git(host, 'add', 'staged.txt');
    const before = userRecord(host);
    commitFile(container, 'b.txt', 'agent\n', 'agent: add b', '--author=Robo Coder <robo@example.com>');
    const tip = commitFile(container, 'a.txt', 'three\n', 'agent: change a');

    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    assert.deepEqual(exchange?.lines, ['agent: 2 new commits on clud/app/main']);
    assert.equal(git(host, 'rev-parse', 'clud/app/main'), tip);
    assert.equal(git(host, 'log', '--format=%an|%s', '-2', 'clud/app/main'), 'Agent Smith|agent: change a\nRobo Coder|agent: add b');
    assert.equal(userRecord(host), before);
    assert.deepEqual(exchange?.branches.map((branch) => [branch.hostName, branch.ahead, branch.base]), [['clud/app/main', 2, 'main']]);
    // Nothing left behind in Clud's staging namespace.
    assert.equal(git(host, 'for-each-ref', 'refs/clud'), '');

    const again = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(again?.lines, [], 'an unchanged branch says nothing');
  });

  it('an agent branch the user deleted stays deleted until the agent commits there again', async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    commitFile(container, 'agent.txt', 'agent\n', 'agent work');
    const first = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(first?.lines, ['agent: 1 new commit on clud/app/main']);
    git(host, 'update-ref', '-d', 'refs/remotes/clud/app/main');
    const after = await exchangeHistory({ host, container }, { namespace: NAMESPACE, previouslyCarried: first.carried });
    assert.deepEqual(after?.lines, []);
    assert.equal(git(host, 'for-each-ref', 'refs/remotes/clud'), '');
    const still = await exchangeHistory({ host, container }, { namespace: NAMESPACE, previouslyCarried: after.carried });
    assert.equal(git(host, 'for-each-ref', 'refs/remotes/clud'), '', 'it came back at the next exchange');
    commitFile(container, 'agent.txt', 'agent, more\n', 'more agent work');
    const more = await exchangeHistory({ host, container }, { namespace: NAMESPACE, previouslyCarried: still?.carried });
    assert.deepEqual(more?.lines, ['agent: 2 new commits on clud/app/main']);
  });

  it("a new agent branch arrives as its own ref, counted against the host's branches", async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    git(container, 'switch', '-q', '-c', 'fix/bug');
    commitFile(container, 'c.txt', 'c\n', 'fix');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.lines, ['agent: 1 new commit on clud/app/fix/bug (new branch)']);
    assert.deepEqual(exchange?.branches.map((branch) => [branch.hostName, branch.ahead, branch.base]), [['clud/app/fix/bug', 1, undefined]]);
  });

  it("a host commit reaches the container's log as host/<branch> without moving the agent's branch", async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    const agentTip = commitFile(container, 'b.txt', 'agent\n', 'agent work');
    const hostTip = commitFile(host, 'h.txt', 'user\n', 'user work');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    assert.ok(exchange?.lines.includes('host: 1 new commit on host/main'), String(exchange?.lines));
    assert.equal(git(container, 'rev-parse', 'host/main'), hostTip);
    assert.equal(git(container, 'log', '-1', '--format=%s', 'host/main'), 'user work');
    assert.equal(git(container, 'rev-parse', 'HEAD'), agentTip);
    assert.equal(git(container, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
  });

  it('an amended agent branch moves on, and its old tip stays reachable under a dated ref the report names', async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    const first = commitFile(container, 'b.txt', 'agent\n', 'agent work');
    await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    writeFileSync(path.join(container, 'b.txt'), 'agent, amended\n');
    git(container, 'commit', '-q', '-a', '--amend', '-m', 'agent work, amended');
    const amended = git(container, 'rev-parse', 'HEAD');
    const now = new Date('2026-12-04T19:00:00.123Z');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE, now });
    const kept = keptTipRef(NAMESPACE, 'main', first, now);
    assert.deepEqual(exchange?.problems, []);
    assert.deepEqual(exchange?.lines, [`agent: rewrote clud/app/main (1 new commit); its old tip ${first.slice(0, 12)} is kept at ${kept}`]);
    assert.equal(git(host, 'rev-parse', 'clud/app/main'), amended);
    assert.equal(git(host, 'rev-parse', kept), first);
    assert.equal(git(host, 'log', '-1', '--format=%s', kept), 'agent work');
  });

  it('a container repository that is gone is cloned again, and the agent branches already carried stay', async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    const tip = commitFile(container, 'b.txt', 'agent\n', 'agent work');
    await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    rmSync(path.join(container, '.git'), { recursive: true });
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    assert.deepEqual(exchange?.lines, ["host: /workspace had no repository; it is a clone of the folder's again"]);
    assert.equal(git(container, 'rev-parse', 'HEAD'), git(host, 'rev-parse', 'HEAD'));
    assert.equal(git(host, 'rev-parse', 'clud/app/main'), tip);
  });

  it("runs none of the container repository's hooks or configured programs (it is the agent's, so hostile)", async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    const markers = path.join(tempDir(), 'markers');
    mkdirSync(markers);
    const trap = (name: string) => {
      const file = path.join(tempDir(), `trap-${name}`);
      writeFileSync(file, `#!/bin/sh\ntouch ${markers}/${name}\ncat >/dev/null 2>&1\nexit 0\n`);
      chmodSync(file, 0o755);
      return file;
    };
    const hookNames = ['pre-receive', 'update', 'post-receive', 'post-update', 'reference-transaction', 'proc-receive', 'pre-auto-gc', 'push-to-checkout', 'pre-upload-pack'];
    const hooksPath = path.join(tempDir(), 'hooks');
    mkdirSync(hooksPath);
    for (const name of hookNames) {
      cpSync(trap(`hook-${name}`), path.join(container, '.git', 'hooks', name));
      cpSync(trap(`hooksPath-${name}`), path.join(hooksPath, name));
    }
    // An alternate makes receive-pack list the alternate's refs, with this command if configured.
    const alternate = path.join(tempDir(), 'alternate');
    git(tempDir(), 'clone', '-q', '--bare', host, alternate);
    writeFileSync(path.join(container, '.git', 'objects', 'info', 'alternates'), path.join(alternate, 'objects') + '\n');
    const config = [
      ['core.hooksPath', hooksPath],
      ['core.fsmonitor', trap('fsmonitor')],
      ['core.alternateRefsCommand', trap('alternateRefsCommand')],
      ['uploadpack.packObjectsHook', trap('packObjectsHook')],
      ['receive.autogc', 'true'],
      ['gc.auto', '1'],
      ['core.pager', trap('pager')],
    ];
    for (const [key, value] of config) git(container, 'config', key!, value!);
    commitFile(container, 'b.txt', 'agent\n', 'agent work');
    commitFile(host, 'h.txt', 'user\n', 'user work');
    // The agent's own commit ran its traps (the control: they work); only the exchange counts.
    assert.ok(readdirSync(markers).includes('hooksPath-reference-transaction'), String(readdirSync(markers)));
    for (const marker of readdirSync(markers)) rmSync(path.join(markers, marker));

    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    assert.ok(exchange?.lines.includes('agent: 1 new commit on clud/app/main'), String(exchange?.lines));
    assert.ok(exchange?.lines.includes('host: 1 new commit on host/main'), String(exchange?.lines));
    assert.deepEqual(readdirSync(markers), [], 'a program configured in the container repository ran');
  });

  it('a container repository that refuses the push (receive.procReceiveRefs with hooks off) is reported and keeps its refs', async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    git(container, 'config', 'receive.procReceiveRefs', 'refs');
    const before = git(container, 'for-each-ref', '--format=%(objectname) %(refname)');
    commitFile(host, 'h.txt', 'user\n', 'user work');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, ["git: the host's new commits could not be delivered into /workspace/.git: ! [remote rejected] main -> host/main (fail to run proc-receive hook)"]);
    assert.equal(git(container, 'for-each-ref', '--format=%(objectname) %(refname)'), before);
  });

  it('what it writes into a container repository of another owner is given to that owner', async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    execFileSync('chown', ['-R', '1000:1000', container]);
    commitFile(host, 'h.txt', 'user\n', 'user work');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    const owners = execFileSync('find', [path.join(container, '.git'), '-not', '-uid', '1000'], { encoding: 'utf8' });
    assert.equal(owners, '', 'files in the container repository belong to another user');
  });

  it('a failing fetch (a broken container repository) reports, and changes neither repository', async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    const tip = commitFile(container, 'b.txt', 'agent\n', 'agent work');
    // The tip commit's object goes missing: upload-pack cannot send it.
    rmSync(path.join(container, '.git', 'objects', tip.slice(0, 2), tip.slice(2)));
    const hostBefore = git(host, 'for-each-ref', '--format=%(objectname) %(refname)');
    const containerBefore = git(container, 'for-each-ref', '--format=%(objectname) %(refname)');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.equal(exchange?.problems.length, 1, String(exchange?.problems));
    assert.match(exchange!.problems[0]!, /^git: the agent's commits could not be fetched from \/workspace\/\.git: .+; nothing was changed/);
    assert.equal(git(host, 'for-each-ref', '--format=%(objectname) %(refname)'), hostBefore);
    assert.equal(git(container, 'for-each-ref', '--format=%(objectname) %(refname)'), containerBefore);
  });

  it("a locked host ref is reported and the agent's branch is carried by a later sync", async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    commitFile(container, 'b.txt', 'agent\n', 'one');
    await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    const tip = commitFile(container, 'c.txt', 'agent\n', 'two');
    const lock = path.join(host, '.git', 'refs', 'remotes', 'clud', 'app', 'main.lock');
    writeFileSync(lock, '');
    const locked = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.equal(locked?.problems.length, 1);
    assert.match(locked!.problems[0]!, /^git: clud\/app\/main was not moved forward: .*lock/);
    rmSync(lock);
    const later = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(later?.problems, []);
    assert.equal(git(host, 'rev-parse', 'clud/app/main'), tip);
  });

  it('a symbolic link in the container repository keeps host commits out of it, and says so', async () => {
    const { host, container } = hostWithHistory();
    await seedContainerRepository({ host, container });
    const elsewhere = path.join(tempDir(), 'elsewhere');
    mkdirSync(elsewhere);
    rmSync(path.join(container, '.git', 'refs', 'remotes', 'host'), { recursive: true, force: true });
    rmSync(path.join(container, '.git', 'packed-refs'), { force: true });
    symlinkSync(elsewhere, path.join(container, '.git', 'refs', 'remotes', 'host'));
    commitFile(host, 'h.txt', 'user\n', 'user work');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.ok(exchange?.problems.some((problem) => /refs\/remotes\/host is a symbolic link/.test(problem)), String(exchange?.problems));
    assert.deepEqual(readdirSync(elsewhere), []);
  });

  it('an empty host repository (no commits): the container starts on the same unborn branch, and its first commits arrive', async () => {
    const { host, container } = await seededEmptyRepository();
    assert.equal(git(container, 'symbolic-ref', 'HEAD'), 'refs/heads/trunk');
    commitFile(container, 'a.txt', 'a\n', 'initial');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    assert.deepEqual(exchange?.lines, ['agent: 1 new commit on clud/app/trunk (new branch)']);
    assert.equal(git(host, 'log', '--format=%s', 'clud/app/trunk'), 'initial');
    assert.throws(() => git(host, 'rev-parse', '--verify', '-q', 'HEAD'), 'the host still has no commit of its own');
  });

  it("an empty host repository's first commits: the container's branch, still without any, starts there with a clean status", async () => {
    const { host, container } = await seededEmptyRepository();
    const hostTip = commitFile(host, 'a.txt', 'a\n', 'the user\'s first');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    assert.deepEqual(exchange?.lines, ['host: new branch host/trunk', "host: the container's branch trunk, which had no commits, starts at host/trunk"]);
    assert.equal(git(container, 'rev-parse', 'HEAD'), hostTip);
    assert.equal(git(container, 'status', '--porcelain'), '');
    // Once the agent commits there, the branch is its own: a later host commit moves host/trunk only.
    commitFile(container, 'agent.txt', 'agent\n', 'the agent\'s first');
    const agentTip = git(container, 'rev-parse', 'HEAD');
    commitFile(host, 'b.txt', 'b\n', 'the user\'s second');
    writeFileSync(path.join(container, 'b.txt'), 'b\n');
    const later = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.equal(git(container, 'rev-parse', 'HEAD'), agentTip);
    assert.ok(later?.lines.includes("host: your trunk moved; the container's trunk stays (it has commits of its own): the agent's `git status` shows your new work as changes until it rebases onto host/trunk"), JSON.stringify(later));
  });

  it("an empty host repository's first commits leave the container's branch alone when the agent staged something", async () => {
    const { host, container } = await seededEmptyRepository();
    git(container, 'add', 'a.txt');
    commitFile(host, 'a.txt', 'a\n', 'the user\'s first');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.lines, ['host: new branch host/trunk']);
    assert.throws(() => git(container, 'rev-parse', '--verify', '-q', 'HEAD'), 'the agent\'s branch was started under what it staged');
    assert.equal(git(container, 'diff', '--cached', '--name-only'), 'a.txt');
  });

  describe("the user's commits on the branch the container is on", function () {
    it('a new commit moves the container\'s branch with it while the agent has none of its own: a clean status', async () => {
      const { host, container } = hostWithHistory();
      assert.deepEqual(await seedContainerRepository({ host, container }), {});
      await exchangeHistory({ host, container }, { namespace: NAMESPACE });
      const userTip = commitFile(host, 'h.txt', 'user\n', 'user work');
      copyFiles(host, container);
      const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
      assert.deepEqual(exchange?.problems, []);
      assert.deepEqual(exchange?.lines, ['host: 1 new commit on host/main', "host: the container's main moves with yours"]);
      assert.equal(git(container, 'rev-parse', 'HEAD'), userTip);
      assert.equal(git(container, 'status', '--porcelain'), '');
    });

    it("an amended commit is the user's, not the agent's: no agent branch, and the container's branch takes the new one", async () => {
      const { host, container } = hostWithHistory();
      assert.deepEqual(await seedContainerRepository({ host, container }), {});
      await exchangeHistory({ host, container }, { namespace: NAMESPACE });
      writeFileSync(path.join(host, 'a.txt'), 'two, amended\n');
      git(host, 'commit', '-q', '--amend', '-am', 'second, amended');
      copyFiles(host, container);
      const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
      assert.deepEqual(exchange?.problems, []);
      assert.deepEqual(exchange?.lines.filter((line) => line.startsWith('agent:')), [], JSON.stringify(exchange));
      assert.equal(git(host, 'for-each-ref', 'refs/remotes/clud'), '', 'the old commit came back as the agent\'s branch');
      assert.equal(git(container, 'rev-parse', 'HEAD'), git(host, 'rev-parse', 'HEAD'));
      assert.equal(git(container, 'status', '--porcelain'), '');
    });

    it('with something staged, the branch stays and a line says so', async () => {
      const { host, container } = hostWithHistory();
      assert.deepEqual(await seedContainerRepository({ host, container }), {});
      await exchangeHistory({ host, container }, { namespace: NAMESPACE });
      const before = git(container, 'rev-parse', 'HEAD');
      writeFileSync(path.join(container, 'staged.txt'), 'agent\n');
      git(container, 'add', 'staged.txt');
      commitFile(host, 'h.txt', 'user\n', 'user work');
      const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
      assert.ok(exchange?.lines.some((line) => /the container's main stays \(something is staged there\)/.test(line)), JSON.stringify(exchange));
      assert.equal(git(container, 'rev-parse', 'HEAD'), before);
    });
  });

  describe('a branch switch in the folder', function () {
    /** A seeded container on main; the user then checks out feature (whose a.txt says "one"), and the sync carries its files. */
    async function switchedToFeature(): Promise<{ host: string; container: string; previousHostHead: string }> {
      const { host, container } = hostWithHistory();
      assert.deepEqual(await seedContainerRepository({ host, container }), {});
      const first = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
      assert.equal(first?.hostHead, 'refs/heads/main');
      git(host, 'checkout', '-q', 'feature');
      copyFiles(host, container);
      return { host, container, previousHostHead: first.hostHead };
    }

    it('the container repository follows it: HEAD and index on the new branch, a clean status, no branch of the agent moved', async () => {
      const { host, container, previousHostHead } = await switchedToFeature();
      const agentMain = git(container, 'rev-parse', 'main');
      const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE, previousHostHead });
      assert.deepEqual(exchange?.problems, []);
      assert.deepEqual(exchange?.lines, ["host: your folder switched from main to feature; the container's repository follows (its branch feature starts at host/feature)"]);
      assert.equal(exchange?.hostHead, 'refs/heads/feature');
      assert.equal(git(container, 'symbolic-ref', 'HEAD'), 'refs/heads/feature');
      assert.equal(git(container, 'rev-parse', 'HEAD'), git(host, 'rev-parse', 'feature'));
      assert.equal(git(container, 'status', '--porcelain'), '');
      assert.equal(git(container, 'rev-parse', 'main'), agentMain);
      // Back to main: the container's own main is where the host's is, so it goes back onto it.
      git(host, 'checkout', '-q', 'main');
      copyFiles(host, container);
      const back = await exchangeHistory({ host, container }, { namespace: NAMESPACE, previousHostHead: exchange.hostHead });
      assert.deepEqual(back?.lines, ["host: your folder switched from feature to main; the container's repository follows"]);
      assert.equal(git(container, 'status', '--porcelain'), '');
    });

    it('stays with commits of the agent on the branch, with something staged, or with its own branch of that name elsewhere, and says so; on another branch it is left alone, silently', async () => {
      const committed = await switchedToFeature();
      commitFile(committed.container, 'agent.txt', 'agent\n', 'agent work');
      assert.match((await exchangeHistory(committed, { namespace: NAMESPACE, previousHostHead: committed.previousHostHead }))?.lines.join('\n') ?? '', /stays on main \(it holds commits your main does not\)/);
      assert.equal(git(committed.container, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
      rmSync(tempDir(), { recursive: true, force: true });
      mkdirSync(tempDir());

      const staged = await switchedToFeature();
      writeFileSync(path.join(staged.container, 'new.txt'), 'agent\n');
      git(staged.container, 'add', 'new.txt');
      const exchange = await exchangeHistory(staged, { namespace: NAMESPACE, previousHostHead: staged.previousHostHead });
      assert.deepEqual(exchange?.lines, ["host: your folder switched from main to feature; the container's repository stays on main (something is staged there): the agent's `git status` shows the difference as changes"]);
      assert.equal(git(staged.container, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
      rmSync(tempDir(), { recursive: true, force: true });
      mkdirSync(tempDir());

      const ownBranch = await switchedToFeature();
      git(ownBranch.container, 'branch', 'feature', 'main');
      assert.match((await exchangeHistory(ownBranch, { namespace: NAMESPACE, previousHostHead: ownBranch.previousHostHead }))?.lines.join('\n') ?? '', /stays on main \(its own branch feature is not where yours is\)/);
      assert.equal(git(ownBranch.container, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
      rmSync(tempDir(), { recursive: true, force: true });
      mkdirSync(tempDir());

      const elsewhere = await switchedToFeature();
      git(elsewhere.container, 'switch', '-q', '-c', 'agent-work');
      const left = await exchangeHistory(elsewhere, { namespace: NAMESPACE, previousHostHead: elsewhere.previousHostHead });
      assert.deepEqual(left?.lines.filter((line) => line.includes('switched')), []);
      assert.equal(git(elsewhere.container, 'symbolic-ref', 'HEAD'), 'refs/heads/agent-work');
    });
  });

  it('a shallow host repository (a depth-1 clone) is cloned into the container, and the agent\'s commits come back', async () => {
    const { host: full } = hostWithHistory();
    const { host, container } = { host: path.join(tempDir(), 'shallow'), container: path.join(tempDir(), 'shallow-workspace') };
    git(tempDir(), 'clone', '-q', '--depth=1', `file://${full}`, host);
    copyFiles(host, container);
    assert.deepEqual(await seedContainerRepository({ host, container }), {});
    assert.equal(git(container, 'rev-parse', 'HEAD'), git(host, 'rev-parse', 'HEAD'));
    const tip = commitFile(container, 'b.txt', 'agent\n', 'agent work');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, []);
    assert.equal(git(host, 'rev-parse', 'clud/app/main'), tip);
  });

  it('a folder with no repository: nothing to say, and the container has none; one the agent makes is reported as staying there', async () => {
    const { host, container } = roots();
    mkdirSync(host);
    mkdirSync(container);
    assert.deepEqual(await seedContainerRepository({ host, container }), {});
    assert.throws(() => statSync(path.join(container, '.git')));
    assert.equal(await exchangeHistory({ host, container }, { namespace: NAMESPACE }), undefined);
    git(container, 'init', '-q');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.deepEqual(exchange?.problems, ["git: the folder has no repository, so the commits in /workspace/.git stay in the container (run `git init` in the folder to receive them)"]);
  });

  it('a linked worktree (.git is a file) fails with one clear line, at the seed and at each sync', async () => {
    const { host, container } = roots();
    const main = path.join(tempDir(), 'main');
    mkdirSync(main);
    git(main, 'init', '-q');
    commitFile(main, 'a.txt', 'a\n', 'first');
    git(main, 'worktree', 'add', '-q', host, '-b', 'side');
    copyFiles(host, container);
    const seeded = await seedContainerRepository({ host, container });
    assert.match(seeded.problem ?? '', /^git: the folder's \.git is a file \(a linked worktree or a submodule\).*; \/workspace gets no repository$/);
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.equal(exchange?.problems.length, 1);
    assert.match(exchange!.problems[0]!, /linked worktree or a submodule/);
  });

  it('a container repository of another object format is reported, not carried', async () => {
    const { host, container } = hostWithHistory();
    git(container, 'init', '-q', '--object-format=sha256');
    commitFile(container, 'b.txt', 'b\n', 'sha256 commit');
    const exchange = await exchangeHistory({ host, container }, { namespace: NAMESPACE });
    assert.ok(exchange?.problems.some((problem) => problem.startsWith("git: the agent's commits could not be fetched")), String(exchange?.problems));
    assert.equal(git(host, 'for-each-ref', 'refs/remotes', 'refs/clud'), '');
  });

  it('makes a folder name a valid ref component', () => {
    assert.equal(gitNamespace('my app'), 'my-app');
    assert.equal(gitNamespace('..weird..name.lock'), 'weird.name-lock');
    assert.equal(gitNamespace(''), 'workspace');
  });
});
