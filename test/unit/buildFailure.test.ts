// The hint of a failed image build (src/core/docker/buildFailure.ts): the line that says why, and
// what to do behind a TLS-inspecting proxy.
import assert from 'node:assert/strict';
import { buildFailureHint, EXTRA_CA_ADVICE } from '../../src/core/docker/buildFailure';

describe('unit: the hint of a failed image build', () => {
  it("names npm's first error line and, for a certificate it could not verify, how to trust the proxy's authority", () => {
    const tail = [
      ' ---> Running in 0bcf3732c6ca',
      'npm error code UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'npm error errno UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'npm error request to https://registry.npmjs.org/@anthropic-ai%2fclaude-code failed, reason: unable to get local issuer certificate',
      'npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-06T12_20_01_123Z-debug-0.log',
      '\x1b[0m',
      'Removing intermediate container 0bcf3732c6ca',
      "The command '/bin/sh -c npm install --global @anthropic-ai/claude-code' returned a non-zero code: 1",
    ];
    const [first, heading, ...rest] = buildFailureHint(tail).split('\n');
    assert.equal(first, `npm error code UNABLE_TO_GET_ISSUER_CERT_LOCALLY; ${EXTRA_CA_ADVICE}`);
    assert.equal(heading, 'Last build output:');
    assert.equal(rest.length, 7, 'the colour-only line is dropped, every other line kept');
    assert.ok(!rest.some((line) => line.includes('\x1b')));
  });

  it("gives no certificate advice for another failure, and never repeats Docker's own line as the cause", () => {
    assert.equal(buildFailureHint(['E: Unable to locate package nosuch', "The command '/bin/sh -c apt-get install nosuch' returned a non-zero code: 100"]).split('\n')[0], 'E: Unable to locate package nosuch');
    assert.equal(buildFailureHint(["The command '/bin/sh -c false' returned a non-zero code: 1"]).split('\n')[0], 'the build output above says why');
  });
});
