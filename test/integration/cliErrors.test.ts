import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { symlink } from 'node:fs/promises';
import * as path from 'node:path';
import {
  BASE_IMAGE,
  CLI_PATH,
  TEST_ENV,
  TestScope,
  assertTreesEqual,
  containersFor,
  describeRun,
  docker,
  hashTree,
  inspectContainer,
  lines,
  requireDocker,
  runClud,
  shellQuote,
  singleJsonObject,
  INTEGRATION_TIMEOUT_MS,
} from '../helpers/integration';
import type { CludRunOptions } from '../helpers/integration';

interface Rejection {
  /** The exact exit code, or undefined for "any non-zero". */
  exitCode?: number;
  code: string;
  /** What the one stderr line (and the JSON message) must mention. */
  mentions: RegExp;
}

/**
 * Runs `clud ...args` with and without --json and checks that it was refused the way a script
 * and a person need: a non-zero exit, exactly one line on stderr, with --json exactly one JSON
 * object {ok:false, error:{code}} on stdout, and without it nothing on stdout.
 */
async function assertRejected(args: string[], expected: Rejection, options: CludRunOptions = {}): Promise<void> {
  // --json is clud's only before `--`; after it, it would belong to the command run in the container.
  const terminator = args.indexOf('--');
  const json = await runClud(terminator === -1 ? [...args, '--json'] : [...args.slice(0, terminator), '--json', ...args.slice(terminator)], options);
  if (expected.exitCode === undefined) assert.notEqual(json.exitCode, 0, describeRun(json));
  else assert.equal(json.exitCode, expected.exitCode, describeRun(json));
  const object = singleJsonObject(json);
  assert.equal(object.ok, false, describeRun(json));
  const error = object.error as { code?: unknown; message?: unknown } | undefined;
  assert.equal(error?.code, expected.code, describeRun(json));
  assert.match(String(error?.message), expected.mentions, describeRun(json));
  assert.equal(lines(json.stderr).length, 1, `expected one line on stderr\n${describeRun(json)}`);
  assert.match(json.stderr, expected.mentions, describeRun(json));

  const text = await runClud(args, options);
  assert.equal(text.exitCode, json.exitCode, describeRun(text));
  assert.equal(text.stdout, '', describeRun(text));
  assert.equal(lines(text.stderr).length, 1, `expected one line on stderr\n${describeRun(text)}`);
  assert.match(text.stderr, expected.mentions, describeRun(text));
}

const UNREACHABLE = { DOCKER_HOST: 'unix:///nonexistent.sock' };

describe('integration: bad input changes nothing', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  let original: Map<string, string>;

  before(async function () {
    await requireDocker();
    dir = await scope.project({ 'file.txt': 'content\n', 'sub/other.txt': 'other\n' });
    original = await hashTree(dir);
  });

  afterEach(async function () {
    // Whatever a test ran, the folder is as it was and no container was made for it.
    assertTreesEqual(original, await hashTree(dir), ['before', 'after']);
    assert.deepEqual(
      (await containersFor(dir)).map((container) => container.Names),
      [],
      'a container was created for the folder',
    );
  });

  after(async function () {
    await scope.cleanup();
  });

  it('a folder that does not exist', async function () {
    const missing = path.join(await scope.tempDir(), 'does-not-exist');
    await assertRejected(['up', missing], { exitCode: 1, code: 'folder-missing', mentions: /does-not-exist/ });
    assert.deepEqual(await containersFor(missing), []);
  });

  it('a file instead of a folder', async function () {
    await assertRejected(['up', path.join(dir, 'file.txt')], { exitCode: 1, code: 'folder-missing', mentions: /file\.txt.* not a folder/ });
  });

  it("a folder that holds Clud's state folder (a home folder, say): refused, naming CLUD_STATE_DIR", async function () {
    await assertRejected(['up', dir], { exitCode: 2, code: 'bad-input', mentions: /holds Clud's state folder/ }, { env: { CLUD_STATE_DIR: path.join(dir, '.local', 'state', 'clud') } });
    // Not made yet, and named through a link to the folder (a home folder behind a link).
    const alias = path.join(await scope.tempDir(), 'alias');
    await symlink(dir, alias);
    await assertRejected(['up', dir], { exitCode: 2, code: 'bad-input', mentions: /holds Clud's state folder/ }, { env: { CLUD_STATE_DIR: path.join(alias, '.local', 'state', 'clud') } });
  });

  it('an unknown flag', async function () {
    await assertRejected(['up', dir, '--frobnicate'], { exitCode: 2, code: 'bad-input', mentions: /--frobnicate/ });
  });

  it('an unknown command', async function () {
    await assertRejected(['frobnicate', dir], { exitCode: 2, code: 'bad-input', mentions: /frobnicate/ });
  });

  it('a second folder argument, and exec without a command', async function () {
    await assertRejected(['push', dir, 'extra'], { exitCode: 2, code: 'bad-input', mentions: /extra/ });
    await assertRejected(['exec', dir], { exitCode: 2, code: 'bad-input', mentions: /no command/ });
  });

  it('an invalid container name', async function () {
    await assertRejected(['up', dir, '--name', 'no spaces!'], { exitCode: 1, code: 'invalid-config', mentions: /--name/ });
  });

  it('a name held by a container that Clud did not make: refused, and that container is untouched', async function () {
    const name = `clud-it-foreign-${process.pid}-${Date.now()}`;
    scope.trackContainer(name);
    await docker.createContainer({ name, Image: BASE_IMAGE, Cmd: ['true'], Labels: { owner: 'someone else' } });
    const created = await inspectContainer(name);
    assert.ok(created);

    await assertRejected(['up', dir, '--name', name], { exitCode: 1, code: 'name-taken', mentions: new RegExp(name) });
    await assertRejected(['down', dir, '--name', name, '--force'], { exitCode: 1, code: 'name-taken', mentions: new RegExp(name) });
    await assertRejected(['push', dir, '--name', name], { exitCode: 1, code: 'name-taken', mentions: new RegExp(name) });
    await assertRejected(['exec', dir, '--name', name, '--', 'true'], { exitCode: 1, code: 'name-taken', mentions: new RegExp(name) });

    const now = await inspectContainer(name);
    assert.ok(now, 'the foreign container was removed');
    assert.equal(now.Id, created.Id);
    assert.equal(now.State.Status, 'created', 'the foreign container was started or stopped');
    assert.equal(now.State.StartedAt, created.State.StartedAt);
    assert.deepEqual(now.Config.Labels, { owner: 'someone else' });
    assert.deepEqual(now.Mounts, []);
  });

  it('clud push, pull, sync, resolve and exec with no container', async function () {
    // Every command that talks to the agent opens its session the same way; these stand for all.
    const notRunning = { exitCode: 1, code: 'not-running', mentions: /no running workspace container/ };
    for (const args of [['push', dir], ['pull', dir], ['sync', dir], ['resolve', dir, 'file.txt', '--keep', 'host'], ['exec', dir, '--', 'true']]) {
      await assertRejected(args, notRunning);
    }
    // A folder that is not there is not told to `clud up`, which would fail on it too.
    await assertRejected(['sync', path.join(dir, 'no-such-folder')], { exitCode: 1, code: 'not-running', mentions: /no-such-folder does not exist, and has no workspace container/ });
  });

  it('bad arguments of sync, resolve and backup', async function () {
    await assertRejected(['sync', dir, '--policy', 'loudest-wins'], { exitCode: 2, code: 'bad-input', mentions: /loudest-wins/ });
    await assertRejected(['resolve', dir, 'file.txt'], { exitCode: 2, code: 'bad-input', mentions: /--keep/ });
    await assertRejected(['resolve', dir, 'file.txt', '--keep', 'mine'], { exitCode: 2, code: 'bad-input', mentions: /--keep/ });
    await assertRejected(['resolve', '--keep', 'host'], { exitCode: 2, code: 'bad-input', mentions: /missing argument/ }, { cwd: dir });
    // PATH before DIR: the file is not taken for a project folder without a container.
    await assertRejected(['resolve', path.join(dir, 'file.txt'), dir, '--keep', 'host'], { exitCode: 2, code: 'bad-input', mentions: /file\.txt is not a folder: DIR, the project folder, comes first/ });
    await assertRejected(['backup', dir, '--restore', 'some-id'], { exitCode: 2, code: 'bad-input', mentions: /--side/ });
  });

  it('bad numbers and extra arguments: one line on stderr, exit 2', async function () {
    await assertRejected(['undo', dir, '--steps', '-1'], { exitCode: 2, code: 'bad-input', mentions: /--steps.*-1/ });
    await assertRejected(['undo', dir, '--steps', 'abc'], { exitCode: 2, code: 'bad-input', mentions: /--steps.*abc/ });
    await assertRejected(['undo', dir, '--steps', '1.5'], { exitCode: 2, code: 'bad-input', mentions: /--steps/ });
    await assertRejected(['logs', dir, '--tail', 'abc'], { exitCode: 2, code: 'bad-input', mentions: /--tail.*abc/ });
    await assertRejected(['logs', dir, '--tail', '-3'], { exitCode: 2, code: 'bad-input', mentions: /--tail/ });
    await assertRejected(['resolve', dir, 'file.txt', 'EXTRA', '--keep', 'host'], { exitCode: 2, code: 'bad-input', mentions: /EXTRA/ });
  });

  it('--json after -- belongs to the command in the container, not to clud', async function () {
    const run = await runClud(['exec', dir, '--', 'ls', '--json']);
    assert.equal(run.exitCode, 1, describeRun(run));
    assert.equal(run.stdout, '', `clud switched to JSON output\n${describeRun(run)}`);
    assert.equal(lines(run.stderr).length, 1, describeRun(run));
    assert.match(run.stderr, /no running workspace container/);
  });

  it('a reader that closes stdout early (clud status | true): a quiet exit, no stack trace', async function () {
    for (const args of [['status', dir], ['status', dir, '--json'], ['--help']]) {
      // `true` exits at once, so the CLI's one write meets a closed pipe (EPIPE).
      const quoted = [CLI_PATH, ...args].map(shellQuote).join(' ');
      const run = spawnSync('bash', ['-c', `node ${quoted} | true; echo "\${PIPESTATUS[0]}" >&2`], { env: { ...process.env, ...TEST_ENV }, encoding: 'utf8', timeout: 60_000 });
      const exitCode = Number(run.stderr.trim().split('\n').pop());
      assert.doesNotMatch(run.stderr, /EPIPE|Error|at /, `clud ${args.join(' ')} | true\n${run.stderr}`);
      assert.ok(exitCode === 0 || exitCode === 141, `clud ${args.join(' ')} | true exited ${exitCode}`);
    }
  });

  describe('Docker not reachable (DOCKER_HOST=unix:///nonexistent.sock)', function () {
    const unreachable = (command: string[]) => assertRejected(command, { code: 'docker-unreachable', mentions: /Docker/ }, { env: UNREACHABLE });

    it('clud up', async function () {
      await unreachable(['up', dir]);
    });

    it('clud push, pull and exec', async function () {
      await unreachable(['push', dir]);
      await unreachable(['pull', dir]);
      await unreachable(['exec', dir, '--', 'true']);
    });

    it('clud down', async function () {
      await unreachable(['down', dir]);
    });

    it('clud status', async function () {
      await unreachable(['status', dir]);
    });

    it('clud logs', async function () {
      await unreachable(['logs', dir]);
    });

    it('clud sync and resolve', async function () {
      await unreachable(['sync', dir]);
      await unreachable(['resolve', dir, 'file.txt', '--keep', 'host']);
    });
  });
});
