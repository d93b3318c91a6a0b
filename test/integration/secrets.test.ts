// Secrets stay on their side, and names from a tree print safely, with the real CLI against a
// real container. Token samples are put together at run time, so that this file does not itself
// look like a file that holds credentials.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import {
  INTEGRATION_TIMEOUT_MS,
  TestScope,
  assertExit,
  cludSync,
  cludUp,
  containerTree,
  describeRun,
  execSh,
  pathExists,
  requireDocker,
  runClud,
} from '../helpers/integration';

const join = (...parts: string[]) => parts.join('');
const GITHUB_TOKEN = join('gh', 'p_', 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8');
const ANTHROPIC_KEY = join('sk-', 'ant-', 'api03-', 'x'.repeat(93), 'AA');
const NPM_TOKEN = join('np', 'm_', 'Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2');

/** The files of the issue, and a few by content. */
const HOST_SECRETS: Record<string, string> = {
  '.env': 'DATABASE_PASSWORD=hunter2\n',
  '.env.local': 'STRIPE_KEY=local\n',
  'id_rsa': 'not really a key, but named like one\n',
  'server.key': 'not really a key either\n',
  '.aws/credentials': '[default]\naws_access_key_id = x\n',
  '.npmrc': `//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n`,
  'src/config.ts': `export const token = "${GITHUB_TOKEN}";\n`,
};

const ESC = '\x1b';

describe('integration: secrets stay on their side; names print safely', function () {
  this.timeout(INTEGRATION_TIMEOUT_MS);
  const scope = new TestScope();
  let dir = '';
  let up: Record<string, unknown> = {};

  before(async function () {
    await requireDocker();
    dir = await scope.project({
      ...HOST_SECRETS,
      '.env.example': 'DATABASE_PASSWORD=\n',
      '.env.test': 'ALLOWED=1\n',
      'README.md': 'Paste the key that starts with -----BEGIN PRIVATE KEY----- into the settings.\n',
      'main.txt': 'main\n',
    });
    up = await cludUp(dir, ['--allow-secret', '.env.test']);
  });

  after(async function () {
    await scope.cleanup();
  });

  it('clud up leaves every secret out of /workspace and lists each as kept out, with why', async function () {
    const tree = await containerTree(dir);
    for (const secret of Object.keys(HOST_SECRETS)) assert.ok(!tree.has(secret), `${secret} was copied into /workspace`);
    for (const ordinary of ['.env.example', 'README.md', 'main.txt', '.env.test']) assert.ok(tree.has(ordinary), `${ordinary} is missing from /workspace: ${[...tree.keys()].join(', ')}`);
    const keptOut = ((up.init as { initialSync: { keptOut: Array<{ path: string; reason: string }> } }).initialSync.keptOut);
    assert.deepEqual(keptOut.map((secret) => secret.path).sort(), Object.keys(HOST_SECRETS).sort());
    assert.match(keptOut.find((secret) => secret.path === 'src/config.ts')!.reason, /GitHub token/);

    const status = await runClud(['status', dir]);
    assertExit(status, 0);
    for (const secret of Object.keys(HOST_SECRETS)) assert.match(status.stdout, new RegExp(`kept out  ${secret.replace(/\./g, '\\.')}: `), describeRun(status));
  });

  it('secrets created in the container do not reach the host, and the host ones are neither overwritten nor deleted', async function () {
    await execSh(dir, [
      'mkdir -p .ssh certs',
      "printf 'CONTAINER=1\\n' > .env",
      "printf 'P=1\\n' > .env.production",
      "printf 'key\\n' > .ssh/id_ed25519",
      "printf 'cert\\n' > certs/deploy.pem",
      `printf '%s\\n' 'token = ${ANTHROPIC_KEY}' > notes.txt`,
      "printf 'ordinary\\n' > new.txt",
    ].join(' && '));
    const sync = await runClud(['sync', dir]);
    assertExit(sync, 0);
    for (const secret of ['.env.production', '.ssh/id_ed25519', 'certs/deploy.pem', 'notes.txt']) {
      assert.equal(await pathExists(path.join(dir, secret)), false, `${secret} reached the host`);
      assert.match(sync.stdout, new RegExp(`kept out  ${secret.replace(/\./g, '\\.')} on container: .*not copied to the host`), describeRun(sync));
    }
    assert.equal(await readFile(path.join(dir, 'new.txt'), 'utf8'), 'ordinary\n', 'an ordinary file still crosses');
    assert.equal(await readFile(path.join(dir, '.env'), 'utf8'), HOST_SECRETS['.env'], "the host's .env was overwritten");

    // A pull leaves them alone too: it deletes nothing that is kept out on the host.
    const { report } = await cludSync('pull', dir);
    for (const secret of Object.keys(HOST_SECRETS)) assert.equal(await pathExists(path.join(dir, secret)), true, `${secret} was deleted from the host`);
    assert.ok(report.keptOut.some((secret) => secret.side === 'container' && secret.path === 'notes.txt'), JSON.stringify(report.keptOut));
  });

  it('a .env.production created later on the host is not copied by the next sync', async function () {
    await writeFile(path.join(dir, '.env.production'), 'LATER=1\n');
    const { report } = await cludSync('push', dir);
    assert.equal((await execSh(dir, 'cat .env.production')).trim(), 'P=1', "the container's own .env.production was replaced");
    assert.ok(report.keptOut.some((secret) => secret.side === 'host' && secret.path === '.env.production'), JSON.stringify(report.keptOut));
  });

  it('--allow-secret lets a named file through', async function () {
    await mkdir(path.join(dir, 'keys'), { recursive: true });
    await writeFile(path.join(dir, 'keys/dev.pem'), 'development certificate\n');
    const kept = await cludSync('sync', dir);
    assert.ok(kept.report.keptOut.some((secret) => secret.path === 'keys/dev.pem'));
    assert.equal((await containerTree(dir)).has('keys/dev.pem'), false);
    const allowed = await cludSync('sync', dir, ['--allow-secret', 'keys/*.pem']);
    assert.equal(allowed.report.keptOut.some((secret) => secret.path === 'keys/dev.pem'), false);
    assert.equal((await execSh(dir, 'cat keys/dev.pem')), 'development certificate\n');
    assert.equal((await execSh(dir, 'cat .env.test')), 'ALLOWED=1\n', 'the file allowed at `clud up` was copied');
  });

  it('names with terminal escape sequences or a forged report line print escaped, one line per entry; --json keeps them exact', async function () {
    const escapeName = `evil${ESC}[2J${ESC}]0;owned\x07.txt`;
    const forgedName = 'a.txt\n  conflict  main.txt  (clud resolve main.txt --keep host|container|both)';
    await execSh(dir, `touch "$(printf 'evil\\033[2J\\033]0;owned\\007.txt')" "$(printf 'a.txt\\n  conflict  main.txt  (clud resolve main.txt --keep host|container|both)')"`);
    const pull = await runClud(['pull', dir]);
    assertExit(pull, 0);
    assert.equal(pull.stdout.includes(ESC), false, `an escape character reached the terminal\n${describeRun(pull)}`);
    assert.equal(pull.stdout.includes('\x07'), false);
    const lines = pull.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.filter((line) => /^\s*conflict/.test(line)), [], `a forged conflict line\n${describeRun(pull)}`);
    assert.ok(lines.includes('  create host      evil\\x1b[2J\\x1b]0;owned\\x07.txt'), describeRun(pull));
    assert.ok(lines.includes('  create host      a.txt\\n  conflict  main.txt  (clud resolve main.txt --keep host|container|both)'), describeRun(pull));
    // The files themselves arrived with their exact names.
    const names = await readdir(dir);
    assert.ok(names.includes(escapeName) && names.includes(forgedName), names.join(', '));

    const jsonName = `json${ESC}[31m\nname.txt`;
    await execSh(dir, `touch "$(printf 'json\\033[31m\\nname.txt')"`);
    const { report } = await cludSync('pull', dir);
    assert.deepEqual(report.applied.map((change) => change.path), [jsonName], '--json output keeps the raw name');
  });
});
