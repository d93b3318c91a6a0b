// What a failed image build says in its one-line hint. The build's lines have streamed past by
// then (the CLI's [build] lines, VS Code's output channel), so the hint names the line that says
// why, and the usual cause on a machine behind a TLS-inspecting proxy: npm in the image cannot
// reach the registry until the image trusts the proxy's certificate authority.

/** Terminal colour codes Docker's legacy builder puts around a step's output. */
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[[0-9;]*m/g;

/**
 * Lines that say what went wrong, most telling first: npm's first error line (its code; its last
 * points at a log file inside the failed step), apt's, then any other; never Docker's own
 * "returned a non-zero code", which the message has already.
 */
const CAUSES = [/^npm (error|ERR!) /, /^E: /, /\b(error|fatal)\b/i];
const DOCKER_STEP_FAILED = /returned a non-zero code/;

/** A certificate the build could not verify: the signature of a TLS-inspecting proxy. */
const UNTRUSTED_CERTIFICATE = /CERT_|certificate|self[- ]signed|unable to get local issuer|SSL routines/i;

export const EXTRA_CA_ADVICE = 'behind a proxy that inspects TLS, the image must trust its certificate authority: --extra-ca FILE, CLUD_EXTRA_CA_CERTIFICATES or the clud.extraCaCertificates setting';

/** The hint of a failed build, from its last lines: the cause first (one line), then those lines. */
export function buildFailureHint(lastLines: readonly string[]): string {
  const lines = lastLines.map((line) => line.replace(ESCAPES, '').trim()).filter(Boolean);
  const candidates = lines.filter((line) => !DOCKER_STEP_FAILED.test(line));
  const cause = CAUSES.map((pattern) => candidates.find((line) => pattern.test(line))).find(Boolean);
  const advice = lines.some((line) => UNTRUSTED_CERTIFICATE.test(line)) ? EXTRA_CA_ADVICE : undefined;
  const first = [cause ?? 'the build output above says why', advice].filter(Boolean).join('; ');
  return [first, 'Last build output:', ...lines].join('\n');
}
