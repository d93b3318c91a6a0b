// The container is a boundary: a hostile program running as the workspace user (`clud exec`, the
// coding agent's shell) cannot reach the user's folder, Clud's state folder or the sync agent, and
// nothing dangerous crosses through the sync (setuid/setgid/sticky bits, the host's .git).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, lstat, readFile, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AGENT_STATE_DIR, CONTAINER_HOST_PATH, CONTAINER_STATE_PATH, AGENT_SOCKET_PATH, INIT_STATE_PATH, SYNC_ONLY_PATH } from '../../src/core/containerLayout';
import { BASE_FILE } from '../../src/core/sync/stateStore';
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
  dockerExec,
  execSh,
  hashTree,
  pathExists,
  readContainerFile,
  requireDocker,
  runClud,
  runCludJson,
  shellQuote,
  stateDirectoryOf,
  waitFor,
  writeHost,
} from '../helpers/integration';

const run = promisify(execFile);

/** The sync agent's long-lived process (`agent init`), found through /proc as any process could. */
const FIND_AGENT = `AGENT=; for d in /proc/[0-9]*; do c=$(tr '\\000' ' ' < $d/cmdline 2>/dev/null); case "$c" in *"/opt/clud/agent.js daemon "*) AGENT=\${d#/proc/};; esac; done; [ -n "$AGENT" ] || { echo "no agent process"; exit 3; }; export AGENT`;

/** ptrace(PTRACE_ATTACH, pid) through perl's syscall(), by the architecture's system call number. */
const PTRACE_ATTACH = `case $(uname -m) in x86_64) n=101;; aarch64) n=117;; riscv64) n=117;; *) echo "no ptrace number for $(uname -m), not tried: Operation not permitted" >&2; exit 1;; esac; perl -e 'syscall($ARGV[0] + 0, 16, $ARGV[1] + 0, 0, 0) == 0 or die "$!\\n"' $n $AGENT`;

const HOST = CONTAINER_HOST_PATH;
const STATE = CONTAINER_STATE_PATH;

/** What a hostile workspace user tries; each must fail, and for lack of permission (not because a path moved). */
const ATTEMPTS: Array<[string, string]> = [
  ['list the mounts folder', `ls ${SYNC_ONLY_PATH}`],
  ['list the user folder', `ls ${HOST}`],
  ['read a file of the user folder', `cat ${HOST}/a.txt`],
  ['write a new file into the user folder', `echo evil > ${HOST}/new.txt`],
  ['empty a file of the user folder', `: > ${HOST}/a.txt`],
  ['delete a file of the user folder', `rm ${HOST}/b.txt`],
  ['plant a git hook in the user folder', `mkdir -p ${HOST}/.git/hooks && printf "#!/bin/sh\\ntouch /tmp/pwned\\n" > ${HOST}/.git/hooks/post-commit`],
  ['delete the undo log', `rm -r ${STATE}/undo`],
  ['change the agreed state', `echo "{}" >> ${STATE}/state-journal.jsonl`],
  ['delete the state folder', `rm -r ${STATE}`],
  ['read the init state', `cat ${INIT_STATE_PATH}`],
  ['connect to the resident sync agent', `perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Peer => "${AGENT_SOCKET_PATH}") or die "$!\\n"'`],
  ['delete the agent state folder', `rm -r ${AGENT_STATE_DIR}`],
  ['signal the sync agent (TERM)', 'kill -TERM $AGENT'],
  ['signal the sync agent (STOP)', 'kill -STOP $AGENT'],
  ['read the sync agent environment', 'cat /proc/$AGENT/environ'],
  ['read the sync agent memory map', 'cat /proc/$AGENT/maps'],
  ['reach the user folder through the agent root', `ls /proc/$AGENT/root${HOST}`],
  ['ptrace the sync agent', PTRACE_ATTACH],
  ['become root with setpriv', 'setpriv --reuid=0 --regid=0 --clear-groups true'],
  ['become the sync user with setpriv', 'setpriv --reuid=clud --regid=clud --clear-groups true'],
];

function hostileScript(): string {
  const lines = [FIND_AGENT, 'echo "agent: $AGENT uid $(awk \'/^Uid:/{print $2}\' /proc/$AGENT/status)"', 'echo "me: uid $(id -u)"', "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status"];
  for (const [name, command] of ATTEMPTS) {
    // The first line of the error says why it failed.
    lines.push(`if sh -c ${shellQuote(command)} >/dev/null 2>/tmp/why; then echo ${shellQuote(`ALLOWED: ${name}`)}; else echo ${shellQuote(`denied: ${name}: `)}"$(head -n 1 /tmp/why)"; fi`);
  }
  return lines.join('\n');
}

describe('integration: the container is a boundary', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();

  before(async function () {
    await requireDocker();
  });

  after(async function () {
    await scope.cleanup();
  });

  it('a hostile workspace user cannot write, delete, plant hooks, touch the state folder or signal, trace or read the sync agent', async function () {
    const dir = await scope.project({ 'a.txt': 'keep me\n', 'b.txt': 'and me\n' });
    await run('git', ['init', '-q', dir]);
    await chownTree(dir, USER_UID, USER_GID);
    await cludUp(dir);
    // A sync, so the state folder holds an agreed state, a history and an undo step.
    await execSh(dir, 'echo from-container > c.txt');
    await cludSync('pull', dir);
    const stateDirectory = stateDirectoryOf(dir);
    assert.ok(await pathExists(path.join(stateDirectory, BASE_FILE)));
    assert.ok(await pathExists(path.join(stateDirectory, 'undo')));
    // The agent compacts the new undo step half a second after the sync: wait, so that the only
    // change to the state folder could be the attack's.
    await waitFor('the undo step to be compacted', async () => ([...(await hashTree(stateDirectory)).keys()].some((key) => key.endsWith('/content.raw')) ? undefined : true));
    const [hostBefore, stateBefore] = [await hashTree(dir), await hashTree(stateDirectory)];

    const attack = await runClud(['exec', dir, '--', 'sh', '-c', hostileScript()]);
    assertExit(attack, 0);
    const output = attack.stdout;
    const agentUid = Number(/^agent: \d+ uid (\d+)$/m.exec(output)?.[1]);
    const myUid = Number(/^me: uid (\d+)$/m.exec(output)?.[1]);
    assert.equal(agentUid, USER_UID, `the sync agent has the folder owner's UID\n${output}`);
    assert.notEqual(myUid, agentUid, `the workspace user has another UID\n${output}`);
    assert.match(output, /^CapEff:\s+0+$/m, 'the workspace user has no capabilities');
    assert.match(output, /^NoNewPrivs:\s+1$/m, 'and cannot gain any');
    const allowed = output.split('\n').filter((line) => line.startsWith('ALLOWED'));
    assert.deepEqual(allowed, [], output);
    const denied = output.split('\n').filter((line) => line.startsWith('denied'));
    assert.equal(denied.length, ATTEMPTS.length, output);
    assert.deepEqual(denied.filter((line) => !/Permission denied|Operation not permitted/.test(line)), [], 'each attempt fails for lack of permission');

    // Nothing changed on the host: the folder (its .git included) and the state folder.
    assert.deepEqual(await hashTree(dir), hostBefore);
    assert.deepEqual(await hashTree(stateDirectory), stateBefore);
    assert.equal(await pathExists(path.join(dir, '.git', 'hooks', 'post-commit')), false);
    // The sync agent is alive and still syncs.
    await execSh(dir, 'echo after > d.txt');
    const { metrics } = await cludSync('pull', dir);
    assert.deepEqual(metrics.errors, []);
    assert.equal((await lstat(path.join(dir, 'd.txt'))).uid, USER_UID);
  });

  it('setuid, setgid and sticky bits never cross; everything in /workspace belongs to the workspace user', async function () {
    const dir = await scope.project({ 'host-suid.sh': '#!/bin/sh\necho host\n', 'plain.sh': '#!/bin/sh\n' });
    // After the chown of the project, which clears the bits.
    await chmod(path.join(dir, 'host-suid.sh'), 0o4755);
    await cludUp(dir);
    const modes = async (relatives: string[]) => (await dockerExec(dir, ['stat', '-c', '%n %a %U', ...relatives])).stdout.toString('utf8').trim().split('\n');
    // The initial copy drops them, and gives everything to the workspace user.
    assert.deepEqual(await modes(['host-suid.sh', 'plain.sh']), ['host-suid.sh 755 coder', 'plain.sh 644 coder']);
    const strangers = await dockerExec(dir, ['find', '.', '!', '-user', 'coder', '-o', '!', '-group', 'coder']);
    assert.equal(strangers.stdout.toString('utf8'), '', 'entries of /workspace not owned by coder');

    await execSh(dir, [
      "printf '#!/bin/sh\\nid\\n' > prog && chmod 4755 prog",
      "printf '#!/bin/sh\\n' > sg && chmod 2755 sg",
      'mkdir shared && chmod 1777 shared && echo x > shared/f',
    ].join(' && '));
    assert.deepEqual(await modes(['prog', 'sg', 'shared']), ['prog 4755 coder', 'sg 2755 coder', 'shared 1777 coder'], 'the workspace user could set them');
    const { metrics } = await cludSync('pull', dir);
    assert.deepEqual(metrics.errors, []);
    for (const [relative, mode] of [['prog', 0o755], ['sg', 0o755], ['shared', 0o777]] as const) {
      const info = await lstat(path.join(dir, relative));
      assert.deepEqual({ relative, mode: info.mode & 0o7777, uid: info.uid, gid: info.gid }, { relative, mode, uid: USER_UID, gid: USER_GID });
    }

    // Host to container: a push of a file made setuid on the host lands without the bit.
    await chmod(path.join(dir, 'plain.sh'), 0o4755);
    await writeHost(dir, { 'new.sh': '#!/bin/sh\n', 'newdir/deeper/x.txt': 'x\n', 'newdir/link': { symlink: 'deeper/x.txt' } });
    await chmod(path.join(dir, 'new.sh'), 0o6755);
    await cludSync('push', dir);
    assert.deepEqual(await modes(['plain.sh', 'new.sh']), ['plain.sh 755 coder', 'new.sh 755 coder']);
    // What a sync creates in /workspace (files, folders, links) is the workspace user's too.
    const strangersAfterPush = await dockerExec(dir, ['find', '.', '!', '-user', 'coder', '-o', '!', '-group', 'coder']);
    assert.equal(strangersAfterPush.stdout.toString('utf8'), '', 'entries of /workspace not owned by coder');
  });

  it('a link the workspace user makes that may lead outside the folder never reaches the host, and what it replaced stays', async function () {
    const dir = await scope.project({ 'notes.txt': 'the user\'s notes\n', 'src/app.ts': 'app\n' });
    await chownTree(dir, USER_UID, USER_GID);
    await cludUp(dir);
    // Pointed at the user's home and keys, at the folder above, and out through another link.
    await execSh(dir, ['ln -s /home/user/.ssh keys', 'ln -s ../.. up', 'ln -s . self', 'ln -s self/../elsewhere sneaky', 'rm notes.txt && ln -s /etc/passwd notes.txt', 'ln -s app.ts src/inside', 'echo new > made.txt'].join(' && '));
    for (const command of ['pull', 'sync'] as const) {
      const { report } = await cludSync(command, dir);
      const refused = report.problems.filter((problem) => problem.reason.endsWith('not written into your folder')).map((problem) => `${problem.side}:${problem.path}`);
      assert.deepEqual(refused.sort(), ['container:keys', 'container:notes.txt', 'container:sneaky', 'container:up'], `${command}: ${JSON.stringify(report.problems)}`);
      assert.equal(await readFile(path.join(dir, 'notes.txt'), 'utf8'), 'the user\'s notes\n', `${command}: the file the link replaced in the container stays on the host`);
      for (const name of ['keys', 'up', 'sneaky']) assert.equal(await pathExists(path.join(dir, name)), false, `${command}: ${name} reached the host`);
    }
    assert.equal(await readFile(path.join(dir, 'made.txt'), 'utf8'), 'new\n', 'other changes still cross');
    assert.equal((await lstat(path.join(dir, 'src/inside'))).isSymbolicLink(), true, 'a link that stays inside crosses');
    assert.equal((await lstat(path.join(dir, 'self'))).isSymbolicLink(), true);
    // No sync can carry them, so removing the container asks first, and says so rather than "sync".
    const down = await runCludJson(['down', dir]);
    assert.notEqual(down.run.exitCode, 0, describeRun(down.run));
    assert.match(String((down.json.error as { message?: string }).message), /4 of them symbolic links that may lead outside the folder, which no sync writes into your folder \(keys, notes\.txt, sneaky, up\)/, describeRun(down.run));
  });

  it("nothing written under /workspace/.git reaches the host's .git", async function () {
    const dir = await scope.project({ 'a.txt': 'a\n' });
    await run('git', ['init', '-q', dir]);
    await chownTree(dir, USER_UID, USER_GID);
    await cludUp(dir);
    assert.match(await readContainerFile(dir, '.git/HEAD'), /^ref: /, 'the host .git is mirrored into the container');
    const gitBefore = await hashTree(path.join(dir, '.git'));
    await execSh(dir, [
      "printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/post-commit && chmod +x .git/hooks/post-commit",
      "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config",
      'echo changed > a.txt',
    ].join(' && '));
    for (const command of ['sync', 'pull'] as const) {
      const { metrics } = await cludSync(command, dir);
      assert.deepEqual(metrics.errors, []);
    }
    assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), 'changed\n', 'ordinary files still cross');
    assert.deepEqual(await hashTree(path.join(dir, '.git')), gitBefore);
  });

  it('a folder of /workspace swapped for a symlink to the host .git/hooks or the state folder while pushes write into it: nothing lands there', async function () {
    const dir = await scope.project({ 'a.txt': 'a\n', 'b.txt': 'b\n', 'c/d.txt': 'd\n', 'x/keep.txt': 'keep\n', 'x/post-commit': '#!/bin/sh\necho round 0\n' });
    await run('git', ['init', '-q', dir]);
    await chownTree(dir, USER_UID, USER_GID);
    await cludUp(dir);
    const stateDirectory = stateDirectoryOf(dir);
    const hooksBefore = await hashTree(path.join(dir, '.git', 'hooks'));
    const strangersInState = async () => (await readdir(stateDirectory)).filter((name) => name === 'post-commit' || name === 'keep.txt' || name.startsWith('.clud-sync-'));
    // The workspace user swaps x, over and over, between the real folder (moved aside under a name
    // the sync never syncs) and a link to where the sync agent, but not the user, can write.
    const swapper = runClud(['exec', dir, '--', 'sh', '-c', [
      'cd /workspace; i=0',
      'swap() { [ -L "$1" ] && rm -f "$1"; [ -d "$1" ] || mkdir -p "$1"; mv -T "$1" "$2" 2>/dev/null && ln -s "$3" "$1"; }',
      'unswap() { [ -L "$1" ] && rm -f "$1"; [ -d "$2" ] && { mv -T "$2" "$1" 2>/dev/null || rm -rf "$2"; }; }',
      `while [ ! -e /tmp/stop-swapping ]; do i=$((i+1)); if [ $((i % 2)) = 0 ]; then t=${HOST}/.git/hooks; else t=${STATE}; fi`,
      '  swap x .clud-sync-swap.tmp "$t"',
      '  sleep 0.002',
      '  unswap x .clud-sync-swap.tmp',
      'done; echo "swapped $i times"',
    ].join('\n')]);
    const rounds = Number(process.env.CLUD_SWAP_ROUNDS ?? 30);
    let applied = 0;
    try {
      for (let round = 1; round <= rounds; round += 1) {
        // A new version each round, so that every push writes x/post-commit (and re-creates x when
        // the scan saw the link).
        await writeHost(dir, { 'x/post-commit': `#!/bin/sh\necho round ${round}\n`, 'x/keep.txt': `keep ${round}\n` });
        // A push may skip changes (or fail on a path that moved); what matters is where it wrote.
        const { run: push, json } = await runCludJson(['push', dir]);
        assert.ok(push.exitCode === 0 || push.exitCode === 1, describeRun(push));
        applied += (json.report as { appliedCount?: number } | undefined)?.appliedCount ?? 0;
        assert.deepEqual(await hashTree(path.join(dir, '.git', 'hooks')), hooksBefore, `round ${round}: the host's .git/hooks changed`);
        assert.deepEqual(await strangersInState(), [], `round ${round}: something was written into the state folder`);
      }
    } finally {
      await execSh(dir, 'touch /tmp/stop-swapping');
    }
    const swapped = await swapper;
    assertExit(swapped, 0);
    assert.match(swapped.stdout, /swapped \d+ times/);
    assert.ok(applied > 0, 'pushes wrote while the folder was being swapped');
    assert.equal(await pathExists(path.join(dir, '.git', 'hooks', 'post-commit')), false);
    // Once the swapping stops, the sync carries on as usual.
    await execSh(dir, 'if [ -L x ]; then rm x; fi; if [ -d .clud-sync-swap.tmp ]; then rm -rf x; mv -T .clud-sync-swap.tmp x; fi');
    await cludSync('push', dir);
    assert.equal(await readContainerFile(dir, 'x/post-commit'), `#!/bin/sh\necho round ${rounds}\n`);
  });

  it("a host file its owner cannot read never reaches /workspace, though the sync agent's capabilities could read it", async function () {
    const dir = await scope.project({ 'a.txt': 'a\n', 'closed/inside.txt': 'i\n' });
    const rootOnly = path.join(dir, 'root-only.txt');
    await writeFile(rootOnly, 'not for the folder owner\n', { mode: 0o600 }); // made by root, as the tests run
    await chmod(path.join(dir, 'closed'), 0o700);
    await chown(path.join(dir, 'closed'), 0, 0);
    const { run: up, json } = await runCludJson(['up', dir]);
    // As for any unreadable file: left alone on both sides and named, not copied, not a failure.
    assertExit(up, 0);
    const init = json.init as { phase?: string; initialSync?: { notCopied?: Array<{ path: string }> } };
    assert.equal(init.phase, 'ready', describeRun(up));
    assert.deepEqual((init.initialSync?.notCopied ?? []).map((entry) => entry.path).sort(), ['closed', 'root-only.txt']);
    const listing = await dockerExec(dir, ['ls', '-A']);
    assert.deepEqual(listing.stdout.toString('utf8').trim().split('\n').sort(), ['a.txt']);
  });
});
