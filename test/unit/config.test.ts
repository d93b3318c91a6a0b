import assert from 'node:assert/strict';
import { configFromEnvironment, parseConfig, undoSettings } from '../../src/core/host/config';
import { CludError } from '../../src/core/errors';

/** How the CLI names settings on its command line. */
const FLAGS: Record<string, string> = {
  containerName: '--name',
  imageTag: '--image',
  baseImage: '--base-image',
  extraCaCertificates: '--extra-ca',
  excludes: '--exclude',
  syncRetries: '--retries',
  autoSync: '--auto-sync',
};
const cliName = (key: string) => FLAGS[key] ?? `--unknown-${key}`;
const vscodeName = (key: string) => `clud.${key}`;

function invalidConfigError(input: unknown, settingName?: (key: string) => string): CludError {
  let thrown: unknown;
  try {
    parseConfig(input, settingName);
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof CludError, `expected a CludError for ${JSON.stringify(input)}, got ${String(thrown)}`);
  assert.equal(thrown.code, 'invalid-config');
  return thrown;
}

describe('unit: config', () => {
  describe('parseConfig', () => {
    it('fills every default from an empty object', () => {
      assert.deepEqual(parseConfig({}), {
        imageTag: 'niteris/clud:latest',
        baseImage: 'debian:trixie-slim',
        extraCaCertificates: [],
        excludes: [],
        allowSecrets: [],
        syncRetries: 3,
        poll: [],
        undoMaxSteps: 50,
        undoMaxLogMegabytes: 1024,
        undoMaxStepMegabytes: 256,
        safeguardMaxDeletions: 50,
        safeguardLargeFileMegabytes: 10,
        ui: false,
        mcpServers: [],
      });
    });

    it('turns the undo settings into the byte limits the agent takes', () => {
      assert.deepEqual(undoSettings(parseConfig({ undoMaxSteps: 7, undoMaxLogMegabytes: 2, undoMaxStepMegabytes: 1.5, safeguardMaxDeletions: 3, safeguardLargeFileMegabytes: 1 })), {
        maxSteps: 7,
        maxLogBytes: 2 * 1024 * 1024,
        maxStepBytes: 1536 * 1024,
        maxDeletions: 3,
        largeFileBytes: 1024 * 1024,
      });
    });

    it('keeps valid values', () => {
      const input = {
        containerName: 'my_box.1-a',
        imageTag: 'registry.example.com:5000/team/clud@sha256:abc',
        baseImage: 'ubuntu:24.04',
        extraCaCertificates: ['/etc/corp.pem'],
        excludes: ['node_modules', '*.log'],
        allowSecrets: ['.env.test', 'certs/*.pem'],
        syncRetries: 0,
        autoSync: 'on-save',
        poll: ['host'],
        undoMaxSteps: 5,
        undoMaxLogMegabytes: 100,
        undoMaxStepMegabytes: 10,
        safeguardMaxDeletions: 0,
        safeguardLargeFileMegabytes: 1,
        ui: false,
        mcpServers: [],
      };
      assert.deepEqual(parseConfig(input), input);
    });

    const invalid: { key: string; value: unknown }[] = [
      { key: 'containerName', value: '-starts-with-dash' },
      { key: 'containerName', value: 'has space' },
      { key: 'containerName', value: 'slash/name' },
      { key: 'containerName', value: '' },
      { key: 'imageTag', value: 'Niteris/Clud:latest' },
      { key: 'imageTag', value: '' },
      { key: 'imageTag', value: 'name with space' },
      { key: 'baseImage', value: 'Debian' },
      { key: 'baseImage', value: 42 },
      { key: 'extraCaCertificates', value: [''] },
      { key: 'extraCaCertificates', value: '/etc/one.pem' },
      { key: 'excludes', value: [''] },
      { key: 'syncRetries', value: -1 },
      { key: 'syncRetries', value: 11 },
      { key: 'syncRetries', value: 1.5 },
      { key: 'syncRetries', value: '3' },
      { key: 'autoSync', value: 'sometimes' },
      { key: 'autoSync', value: true },
    ];
    for (const { key, value } of invalid) {
      it(`rejects ${key} = ${JSON.stringify(value)} naming ${cliName(key)} and ${vscodeName(key)}`, () => {
        const fromCli = invalidConfigError({ [key]: value }, cliName);
        assert.ok(fromCli.message.includes(cliName(key)), `${JSON.stringify(fromCli.message)} should name ${cliName(key)}`);
        const fromVscode = invalidConfigError({ [key]: value }, vscodeName);
        assert.ok(fromVscode.message.includes(`clud.${key}`), `${JSON.stringify(fromVscode.message)} should name clud.${key}`);
      });
    }

    it('names the setting by its key when no settingName is given', () => {
      const error = invalidConfigError({ syncRetries: 99 });
      assert.match(error.message, /\bsyncRetries\b/);
    });

    it('names the first invalid setting when the settings are not an object', () => {
      const error = invalidConfigError('not an object', cliName);
      assert.match(error.message, /\(settings\)/);
    });

    it('gives a hint with the error', () => {
      const error = invalidConfigError({ imageTag: 'BAD' }, cliName);
      assert.ok(error.hint && error.hint.length > 0);
    });
  });

  describe('configFromEnvironment', () => {
    it('returns nothing for an environment without Clud variables', () => {
      assert.deepEqual(configFromEnvironment({ PATH: '/usr/bin', HOME: '/home/me' }, ':'), {});
    });

    it('reads CLUD_IMAGE and CLUD_BASE_IMAGE', () => {
      assert.deepEqual(configFromEnvironment({ CLUD_IMAGE: 'me/clud:dev', CLUD_BASE_IMAGE: 'ubuntu:24.04' }, ':'), { imageTag: 'me/clud:dev', baseImage: 'ubuntu:24.04' });
    });

    it('reads CLUD_ALLOW_SECRETS as comma-separated patterns', () => {
      assert.deepEqual(configFromEnvironment({ CLUD_ALLOW_SECRETS: '.env.test, certs/*.pem,,' }, ':'), { allowSecrets: ['.env.test', 'certs/*.pem'] });
    });

    it('reads the auto-sync mode from CLUD_AUTO_SYNC, and a wrong value is reported as the --auto-sync flag', () => {
      assert.deepEqual(configFromEnvironment({ CLUD_AUTO_SYNC: 'on-save' }, ':'), { autoSync: 'on-save' });
      assert.equal(parseConfig(configFromEnvironment({ CLUD_AUTO_SYNC: 'off' }, ':')).autoSync, 'off');
      assert.equal(parseConfig({}).autoSync, undefined, 'absent: the agent keeps the mode it has');
      assert.match(invalidConfigError(configFromEnvironment({ CLUD_AUTO_SYNC: 'always' }, ':'), cliName).message, /--auto-sync/);
    });

    it('ignores empty variables', () => {
      assert.deepEqual(configFromEnvironment({ CLUD_IMAGE: '', CLUD_BASE_IMAGE: '', CLUD_EXTRA_CA_CERTIFICATES: '' }, ':'), {});
    });

    const certificateCases: { delimiter: string; value: string; expected: string[] }[] = [
      { delimiter: ':', value: '/etc/ssl/corp.pem:/home/me/proxy.crt', expected: ['/etc/ssl/corp.pem', '/home/me/proxy.crt'] },
      { delimiter: ':', value: '/one.pem', expected: ['/one.pem'] },
      { delimiter: ':', value: ':/one.pem::/two.pem:', expected: ['/one.pem', '/two.pem'] },
      // Windows: the delimiter is ';', and the drive letters' colons must not split a path.
      { delimiter: ';', value: 'C:\\certs\\corp.pem;D:\\proxy.crt', expected: ['C:\\certs\\corp.pem', 'D:\\proxy.crt'] },
      { delimiter: ';', value: 'C:\\certs\\corp.pem;', expected: ['C:\\certs\\corp.pem'] },
    ];
    for (const { delimiter, value, expected } of certificateCases) {
      it(`splits CLUD_EXTRA_CA_CERTIFICATES ${JSON.stringify(value)} by '${delimiter}'`, () => {
        assert.deepEqual(configFromEnvironment({ CLUD_EXTRA_CA_CERTIFICATES: value }, delimiter), { extraCaCertificates: expected });
      });
    }

    it('gives parseConfig input that it accepts', () => {
      const config = parseConfig(configFromEnvironment({ CLUD_IMAGE: 'me/clud:dev', CLUD_EXTRA_CA_CERTIFICATES: '/a.pem:/b.pem' }, ':'));
      assert.equal(config.imageTag, 'me/clud:dev');
      assert.deepEqual(config.extraCaCertificates, ['/a.pem', '/b.pem']);
    });
  });
});
