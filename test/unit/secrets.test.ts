// The secret detector's table (names and contents, false positives included), and the sync
// keeping secrets on their side. Token samples are put together at run time, so that this file
// is not itself a file that holds credentials (to Clud, or to any other scanner).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runSyncCycle } from '../../src/core/sync/engine';
import type { SyncCycleOptions } from '../../src/core/sync/engine';
import type { Policy } from '../../src/core/sync/reconcile';
import { scanTree } from '../../src/core/sync/scan';
import { SECRET_CONTENT_MAX_BYTES, SecretAllowList, secretByContent, secretByName } from '../../src/core/sync/secrets';
import { makeTree, readTree, useSyncFixture, pastTimestampTick } from '../helpers/syncTrees';
import type { SyncFixture } from '../helpers/syncTrees';

const join = (...parts: string[]) => parts.join('');
const privateKeyPem = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const rsaKeyPem = () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

/** Realistic-looking samples of each token format. */
const TOKENS: Record<string, string> = {
  'AWS access key id': join('AKIA', 'Q3EGRJ7X5ZL2M4PB'),
  'AWS secret access key': join('aws_secret_access_key = ', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8kH3sT2d'),
  'GitHub personal token': join('gh', 'p_', 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'),
  'GitHub fine-grained token': join('github', '_pat_', '11ABCDEFG0', 'x'.repeat(72)),
  'npm token': join('np', 'm_', 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'),
  'Slack bot token': join('xo', 'xb-', '123456789012-1234567890123-', 'AbCdEfGhIjKlMnOpQrStUvWx'),
  'Stripe live key': join('sk', '_live_', '51HcQ2eKZvKYlo2C0aBcDeFgHiJkLmNoP'),
  'OpenAI key': join('sk-', 'proj-', 'A'.repeat(40), 'T3Blbk', 'FJ', 'B'.repeat(40)),
  'Anthropic key': join('sk-', 'ant-', 'api03-', 'x'.repeat(93), 'AA'),
  'PyPI token': join('pypi-', 'AgEIcHlwaS5vcmc', 'y'.repeat(60)),
};

describe('unit: secret detector', () => {
  describe('by name', () => {
    const SECRET_NAMES = [
      '.env', '.env.local', '.env.production', 'app/.env.development.local', 'id_rsa', 'home/.ssh/id_ed25519', 'id_ecdsa',
      'server.key', 'certs/tls.pem', 'client.p12', 'client.pfx', '.aws/credentials', 'config/.docker/config.json',
      '.git-credentials', '.netrc', 'terraform.tfstate', 'terraform.tfstate.backup', '.bash_history', '.zsh_history', 'key.ppk',
      'certs/TLS.PEM', 'old/server.key.backup', '.pem', 'a.b.keystore',
    ];
    for (const name of SECRET_NAMES) {
      it(`keeps out ${name}`, () => assert.ok(secretByName(name), name));
    }
    const ORDINARY_NAMES = [
      '.env.example', '.env.sample', '.env.template', 'config/.env.local.example', 'id_rsa.pub', 'id_ed25519.pub', 'keys.ts',
      'monkey.txt', 'src/env.ts', 'environment.md', 'credentials.md', 'aws/credentials.ts', 'docker/config.json', '.npmrc', '.pypirc',
      'README.md', 'key', 'pem', 'src/.environment',
      'notes.backup', '.backup', 'pem.backup', 'server.keys', 'tls.pem.txt', 'x.pem.backup.backup',
    ];
    for (const name of ORDINARY_NAMES) {
      it(`lets ${name} through`, () => assert.equal(secretByName(name), undefined, name));
    }
  });

  describe('by content', () => {
    const text = (content: string, name = 'notes.txt') => secretByContent(name, Buffer.from(content));

    it('finds a PEM private key block, whatever the file is called', () => {
      assert.match(text(privateKeyPem(), 'config.yaml') ?? '', /private key/);
      assert.match(text(`key: |\n  ${rsaKeyPem().split('\n').join('\n  ')}`, 'values.yaml') ?? '', /private key/, 'indented, inside YAML');
    });

    for (const [label, token] of Object.entries(TOKENS)) {
      it(`finds a ${label} in a source file`, () => {
        assert.ok(text(`const config = {\n  token: "${token}",\n};\n`, 'src/config.ts'), label);
      });
    }

    it('finds a service-account key file by its content', () => {
      const json = JSON.stringify({ type: 'service_account', project_id: 'p', private_key_id: 'abc', private_key: privateKeyPem(), client_email: 'x@p.iam.gserviceaccount.com' }, null, 2);
      assert.match(text(json, 'my-project-1234.json') ?? '', /service-account/);
    });

    it('finds an .npmrc or .pypirc only when it holds a credential', () => {
      assert.ok(text(`registry=https://registry.example.com/\n//registry.example.com/:_authToken=${'z'.repeat(20)}\n`, '.npmrc'));
      assert.ok(text('[pypi]\nusername = __token__\npassword = hunter2hunter2\n', '.pypirc'));
      assert.equal(text('registry=https://registry.example.com/\nsave-exact=true\n', '.npmrc'), undefined);
      assert.equal(text('//registry.example.com/:_authToken=${NPM_TOKEN}\n', '.npmrc'), undefined, 'a token read from the environment');
      assert.equal(text('[distutils]\nindex-servers = pypi\n', '.pypirc'), undefined);
      assert.equal(text('_authToken=abcdefghijklmnop\n', 'notes.txt'), undefined, 'the auth line means something only in .npmrc');
    });

    describe('false positives', () => {
      it('a README that mentions BEGIN PRIVATE KEY in prose, or shows an elided one', () => {
        const readme = [
          '# Keys',
          'Paste the key that starts with -----BEGIN PRIVATE KEY----- into the settings.',
          'A file looks like this:',
          '```',
          '-----BEGIN RSA PRIVATE KEY-----',
          '...',
          '-----END RSA PRIVATE KEY-----',
          '```',
        ].join('\n');
        assert.equal(text(readme, 'README.md'), undefined);
      });

      it("AWS's documentation keys, code that names tokens, a public key", () => {
        assert.equal(text(`aws_access_key_id = ${join('AKIA', 'IOSFODNN7', 'EXAMPLE')}\n`), undefined);
        assert.equal(text(`aws_secret_access_key = ${join('wJalrXUtnFEMI/K7MDENG/bPxRfiCY', 'EXAMPLEKEY')}\n`), undefined);
        assert.equal(text('const prefix = "ghp_"; if (token.startsWith("sk-ant-")) {}\nprocess.env.OPENAI_API_KEY\n', 'src/tokens.ts'), undefined);
        const publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
        assert.equal(text(publicKey, 'key.pub.txt'), undefined);
        assert.equal(text('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ1 user@host\n', 'authorized_keys'), undefined);
      });

      it('an ordinary source file, a lock file, binary data', () => {
        assert.equal(text('export function add(a: number, b: number) { return a + b; }\n', 'add.ts'), undefined);
        assert.equal(text('"integrity": "sha512-' + 'Q'.repeat(86) + '=="\n', 'package-lock.json'), undefined);
        assert.equal(secretByContent('image.png', Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 31) % 256))), undefined);
      });
    });
  });

  it('lets through what the allow list names, in gitignore syntax', () => {
    const allow = new SecretAllowList(['.env.test', 'certs/*.pem']);
    assert.equal(allow.allows('.env.test'), true);
    assert.equal(allow.allows('app/.env.test'), true, 'a pattern without a slash matches at any depth');
    assert.equal(allow.allows('certs/dev.pem'), true);
    assert.equal(allow.allows('other/dev.pem'), false);
    assert.equal(allow.allows('.env'), false);
    assert.equal(new SecretAllowList([]).allows('.env'), false);
  });
});

describe('unit: secrets in the scan and the sync', () => {
  const fixture = useSyncFixture('clud-secrets-');
  const sync = (f: SyncFixture, policy: Policy = 'two-way-safe', extra: Partial<SyncCycleOptions> = {}) =>
    runSyncCycle({ roots: f.roots, stateDir: f.stateDir, policy, excludes: [], ...extra });

  it('keeps secrets by name and by content out of the snapshot, and lists them with why', async () => {
    const f = fixture();
    makeTree(f.host, { '.env': 'A=1', 'src/app.ts': 'ok', 'src/config.ts': `const t = "${TOKENS['GitHub personal token']}";`, '.env.example': 'A=' });
    const scan = await scanTree(f.host, { excludes: [] });
    assert.deepEqual([...scan.snapshot.keys()].sort(), ['.env.example', 'src', 'src/app.ts']);
    assert.deepEqual(scan.keptOut.map((secret) => secret.path), ['.env', 'src/config.ts']);
    assert.match(scan.keptOut[1]!.reason, /GitHub/);
    assert.equal(scan.cache.has('.env'), false, 'a secret by name is never read');
    assert.equal(scan.cache.get('src/config.ts')?.secret !== false, true, 'the content verdict is cached with the hash');
    assert.equal(scan.cache.get('src/app.ts')?.secret, false);
  });

  it('does not read an unchanged file again to judge it, and re-judges one that changed', async () => {
    const f = fixture();
    makeTree(f.host, { 'a.ts': 'ok', 'b.ts': `"${TOKENS['npm token']}"` });
    await pastTimestampTick();
    const first = await scanTree(f.host, { excludes: [] });
    const second = await scanTree(f.host, { excludes: [], cache: first.cache });
    assert.equal(second.stats.hashedFiles, 0);
    assert.deepEqual(second.keptOut.map((secret) => secret.path), ['b.ts'], 'the cached verdict still keeps it out');
    writeFileSync(path.join(f.host, 'a.ts'), `"${TOKENS['Stripe live key']}"`);
    const third = await scanTree(f.host, { excludes: [], cache: second.cache });
    assert.deepEqual(third.keptOut.map((secret) => secret.path), ['a.ts', 'b.ts']);
    const old = new Map([...first.cache].map(([key, entry]) => [key, { ...entry, secret: undefined }]));
    assert.equal((await scanTree(f.host, { excludes: [], cache: old })).stats.hashedFiles, 2, 'a cache from before the check does not spare the read');
  });

  it('judges a file over the size bound by its name only', async () => {
    const f = fixture();
    makeTree(f.host, { 'big.txt': `"${TOKENS['npm token']}"` + ' '.repeat(SECRET_CONTENT_MAX_BYTES) });
    assert.deepEqual((await scanTree(f.host, { excludes: [] })).keptOut, []);
  });

  it('copies no secret either way, deletes or overwrites none, and reports each on its side', async () => {
    const f = fixture();
    makeTree(f.host, { '.env': 'HOST=1', 'id_rsa': 'host key', 'shared.txt': 'x', 'creds.yaml': privateKeyPem() });
    makeTree(f.container, { '.env': 'CONTAINER=1', '.env.production': 'P=1', 'notes.txt': `"${TOKENS['Anthropic key']}"` });
    const report = await sync(f);
    assert.deepEqual(readTree(f.host), { '.env': 'HOST=1', 'id_rsa': 'host key', 'shared.txt': 'x', 'creds.yaml': readTree(f.host)['creds.yaml'] });
    assert.deepEqual(readTree(f.container), { '.env': 'CONTAINER=1', '.env.production': 'P=1', 'notes.txt': readTree(f.container)['notes.txt'], 'shared.txt': 'x' });
    assert.deepEqual(report.conflicts, [], 'a secret on both sides is no conflict: each stays as it is');
    assert.deepEqual(report.keptOut.map((secret) => `${secret.side}:${secret.path}`).sort(), ['container:.env', 'container:.env.production', 'container:notes.txt', 'host:.env', 'host:creds.yaml', 'host:id_rsa']);

    // A push or pull leaves them alone too: nothing deleted on the side that has them.
    await sync(f, 'push');
    await sync(f, 'pull');
    assert.equal(existsSync(path.join(f.container, '.env.production')), true);
    assert.equal(existsSync(path.join(f.host, 'id_rsa')), true);
    assert.equal(readTree(f.host)['.env'], 'HOST=1');
  });

  it('keeps out a secret created on the host after the first sync, and one that was synced before', async () => {
    const f = fixture();
    makeTree(f.host, { 'a.txt': 'a', 'config.ts': 'ok' });
    await sync(f);
    writeFileSync(path.join(f.host, '.env.production'), 'SECRET=1');
    writeFileSync(path.join(f.host, 'config.ts'), `"${TOKENS['OpenAI key']}"`);
    const report = await sync(f);
    assert.equal(existsSync(path.join(f.container, '.env.production')), false);
    assert.equal(readTree(f.container)['config.ts'], 'ok', 'the edit that added a key does not cross, and the old version stays');
    assert.deepEqual(report.keptOut.map((secret) => secret.path), ['.env.production', 'config.ts']);
    assert.deepEqual(report.applied, []);
  });

  it('lets an allowed secret cross', async () => {
    const f = fixture();
    makeTree(f.host, { '.env.test': 'T=1', '.env': 'S=1' });
    const report = await sync(f, 'two-way-safe', { allowSecrets: ['.env.test'] });
    assert.deepEqual(readTree(f.container), { '.env.test': 'T=1' });
    assert.deepEqual(report.keptOut.map((secret) => secret.path), ['.env']);
  });
});
