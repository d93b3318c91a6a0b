// Which files hold credentials, so that the sync keeps them on the side they are on: a secret
// in the user's folder is never copied into /workspace (where the coding agent works), and one
// the agent writes is never copied into the user's folder. Pure: a name, or a name and the bytes
// the scan has just read to hash the file.
//
// The rules are written here rather than run through secretlint: its core and recommended preset
// do bundle into the agent (about 690 KB more) and run on Node 20, but took 0.8 to 1.8 ms per
// source file where these rules take about 45 µs (docs/ARCHITECTURE.md, "Secrets"), on a scan
// that reads every file. Each pattern names the gitleaks rule (config/gitleaks.toml) or secretlint rule
// it follows; only high-confidence formats (a fixed prefix, a fixed length or a checksum-like
// marker) are used, since a false positive silently keeps an ordinary file from syncing.
import ignore, { type Ignore } from 'ignore';

/**
 * Files up to this size are checked by content: the scan reads them whole in one call anyway
 * (see scan.ts), and credentials files are small. A larger file is judged by its name only.
 */
export const SECRET_CONTENT_MAX_BYTES = 256 * 1024;

/** The last part of a snapshot key. */
function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `.env.example`, `.env.sample`, `.env.template`: documentation of the variables, without values. */
const ENV_TEMPLATE_SUFFIXES = ['.example', '.sample', '.template'];

/** Private keys of OpenSSH (`ssh-keygen`'s default names), without the `.pub` of the public half. */
const SSH_KEY_NAMES = new Set(['id_rsa', 'id_dsa', 'id_ecdsa', 'id_ed25519', 'id_ecdsa_sk', 'id_ed25519_sk']);

/** Shell and REPL histories: commands typed with passwords and tokens on the line. */
const HISTORY_NAMES = new Set(['.bash_history', '.zsh_history', '.sh_history', '.history', '.python_history', '.node_repl_history', '.psql_history', '.mysql_history', '.sqlite_history', '.irb_history', '.lesshst']);

/** Files whose whole purpose is to hold credentials, by name. */
const CREDENTIAL_FILES = new Set(['.git-credentials', '.netrc', '_netrc', '.pgpass', '.htpasswd']);

/** Paths (the last two parts) of tools' credential stores. */
const CREDENTIAL_PATHS = new Set(['.aws/credentials', '.docker/config.json', '.kube/config', '.gnupg/secring.gpg', '.config/gh/hosts.yml']);

/** Extensions of private keys and key stores (gitleaks' default allowlist never skips these), also with `.backup` after them. */
const KEY_EXTENSIONS = new Map<string, string>([
  ['.pem', 'a PEM key or certificate file (*.pem)'],
  ['.key', 'a private key file (*.key)'],
  ['.p12', 'a PKCS#12 key store (*.p12)'],
  ['.pfx', 'a PKCS#12 key store (*.pfx)'],
  ['.ppk', 'a PuTTY private key (*.ppk)'],
  ['.jks', 'a Java key store (*.jks)'],
  ['.keystore', 'a key store (*.keystore)'],
  ['.tfstate', 'Terraform state, which holds resources\' secrets in clear (*.tfstate)'],
]);

const BACKUP_SUFFIX = '.backup';

/** The reason a lower-case name's extension (before a `.backup`, if any) is one of KEY_EXTENSIONS, or undefined. */
function keyExtensionReason(lower: string): string | undefined {
  // No extension holds a dot but its first: the name's last dot (before `.backup`) starts it.
  const end = lower.endsWith(BACKUP_SUFFIX) ? lower.length - BACKUP_SUFFIX.length : lower.length;
  const dot = lower.lastIndexOf('.', end - 1);
  return dot < 0 ? undefined : KEY_EXTENSIONS.get(lower.slice(dot, end));
}

/**
 * Why the file at `path` holds credentials, judged by its name alone, or undefined. Such a file
 * is kept out without being read.
 */
export function secretByName(path: string): string | undefined {
  const name = baseName(path);
  const lower = name.toLowerCase();
  if (lower === '.env') return 'environment file (.env)';
  if (lower.startsWith('.env.') && !ENV_TEMPLATE_SUFFIXES.some((suffix) => lower.endsWith(suffix))) return `environment file (${name})`;
  if (SSH_KEY_NAMES.has(name)) return `SSH private key (${name})`;
  if (HISTORY_NAMES.has(name)) return `shell history (${name})`;
  if (CREDENTIAL_FILES.has(lower)) return `credentials file (${name})`;
  // Called for every file of every scan: no splitting, no per-call arrays.
  const parentSlash = path.lastIndexOf('/', path.length - name.length - 2);
  const lastTwo = path.slice(parentSlash + 1);
  if (CREDENTIAL_PATHS.has(lastTwo)) return `credentials file (${lastTwo})`;
  return keyExtensionReason(lower);
}

interface ContentRule {
  reason: string;
  pattern: RegExp;
  /**
   * Strings one of which every match contains: the pattern runs only where one occurs. Searching
   * for a plain string is several times faster than running a pattern that starts with \b or an
   * alternation over the whole file, and almost every file holds none of them.
   */
  hints?: readonly string[];
  /** Only for files of these names (e.g. a token line means something only in .npmrc). */
  names?: ReadonlySet<string>;
  /** A match of `pattern` that is this is an example from documentation, not a credential. */
  example?: RegExp;
}

const CONTENT_RULES: readonly ContentRule[] = [
  {
    // gitleaks "private-key"; secretlint-rule-privatekey. The armour lines and a base64 body of
    // at least 64 characters between them, starting with a line of 40 or more (indented keys in
    // YAML included): prose that only names "BEGIN PRIVATE KEY", or an example with "..." for a
    // body, is not a key.
    reason: 'holds a private key',
    hints: ['PRIVATE KEY'],
    pattern: /-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----\r?\n(?:[ \t]*[A-Za-z-]+: [^\r\n]*\r?\n)*\s*(?=[A-Za-z0-9+/]{40})[A-Za-z0-9+/=\s]{64,}-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----/,
  },
  {
    // gitleaks "aws-access-token"; secretlint-rule-aws (AWSAccessKeyID). AWS's documentation
    // keys end in EXAMPLE (gitleaks allowlists them too).
    reason: 'holds an AWS access key',
    hints: ['A3T', 'AKIA', 'ASIA', 'ABIA', 'ACCA'],
    pattern: /\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b/,
    example: /EXAMPLE$/,
  },
  {
    // secretlint-rule-aws (AWSSecretAccessKey): a 40-character secret assigned to its usual name.
    reason: 'holds an AWS secret access key',
    hints: ['ecret', 'ECRET'],
    pattern: /aws_?secret_?access_?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])/i,
    example: /EXAMPLEKEY/,
  },
  {
    // gitleaks "github-pat", "github-oauth", "github-app-token", "github-refresh-token",
    // "github-fine-grained-pat"; secretlint-rule-github.
    reason: 'holds a GitHub token',
    hints: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
    pattern: /\b(?:gh[pousr]_[0-9A-Za-z]{36}|github_pat_[0-9A-Za-z_]{82})\b/,
  },
  {
    // gitleaks "npm-access-token"; secretlint-rule-npm.
    reason: 'holds an npm access token',
    hints: ['npm_'],
    pattern: /\bnpm_[A-Za-z0-9]{36}\b/,
  },
  {
    // gitleaks "slack-bot-token", "slack-user-token", "slack-app-token", "slack-webhook-url";
    // secretlint-rule-slack.
    reason: 'holds a Slack token',
    hints: ['xox', 'xapp-', 'hooks.slack.com'],
    pattern: /\bxox[abposre]-(?:[0-9]+-)+[0-9A-Za-z]{10,}|\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+|hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/]{43,56}/,
  },
  {
    // gitleaks "stripe-access-token".
    reason: 'holds a Stripe secret key',
    hints: ['sk_', 'rk_'],
    pattern: /\b(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,99}\b/,
  },
  {
    // gitleaks "openai-api-key": every OpenAI key carries "T3BlbkFJ" ("OpenAI" in base64).
    reason: 'holds an OpenAI API key',
    hints: ['T3BlbkFJ'],
    pattern: /\bsk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}/,
  },
  {
    // gitleaks "anthropic-api-key", "anthropic-admin-api-key".
    reason: 'holds an Anthropic API key',
    hints: ['sk-ant-'],
    pattern: /\bsk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA\b/,
  },
  {
    // gitleaks "pypi-upload-token".
    reason: 'holds a PyPI upload token',
    hints: ['pypi-AgEIcHlwaS5vcmc'],
    pattern: /pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}/,
  },
  {
    // secretlint-rule-gcp: a Google Cloud service-account key file.
    reason: 'is a Google Cloud service-account key',
    hints: ['service_account'],
    pattern: /"type"\s*:\s*"service_account"[\s\S]*"private_key"\s*:\s*"-----BEGIN|"private_key"\s*:\s*"-----BEGIN[\s\S]*"type"\s*:\s*"service_account"/,
  },
  {
    // secretlint-rule-npm (npmrc auth): an auth token, password or basic-auth value set in the
    // file itself; a value read from the environment (`${NPM_TOKEN}`) is not a secret.
    reason: 'holds a registry auth token',
    names: new Set(['.npmrc', '.yarnrc', '.yarnrc.yml']),
    pattern: /(?:^|\n)\s*[^\n#;]*(?:_authToken|_auth|_password|npmAuthToken|npmAuthIdent)\s*[=:]\s*["']?(?!\$\{)[^\s"'$][^\n]*/,
  },
  {
    // A .pypirc with a password for an index (the token rule above catches tokens anywhere).
    reason: 'holds a package index password',
    names: new Set(['.pypirc']),
    pattern: /(?:^|\n)\s*password\s*[=:]\s*(?!\$\{)\S/,
  },
];

/**
 * Every rule's hints as one expression: a file is searched once for all of them, and only a file
 * holding one is searched again, rule by rule. (One native search per hint per file took 3.7 s of
 * a 100,000-file scan's 11 s; one expression, a fifth of that.)
 */
const ANY_HINT = new RegExp(CONTENT_RULES.flatMap((rule) => rule.hints ?? []).map((hint) => hint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));
/** The rules without hints: each applies to files of its own names only. */
const RULES_BY_NAME_ONLY = CONTENT_RULES.filter((rule) => !rule.hints);

/**
 * Why a file holds credentials, judged by its content (the whole file, at most
 * SECRET_CONTENT_MAX_BYTES), or undefined. Bytes are read as Latin-1: every pattern is ASCII, and
 * a binary file is searched as it is, without a decoding step.
 */
export function secretByContent(path: string, content: Buffer): string | undefined {
  if (content.length === 0) return undefined;
  const name = baseName(path);
  const text = content.toString('latin1');
  const rules = ANY_HINT.test(text) ? CONTENT_RULES : RULES_BY_NAME_ONLY;
  for (const rule of rules) {
    if (rule.names && !rule.names.has(name)) continue;
    if (rule.hints && !rule.hints.some((hint) => text.includes(hint))) continue;
    const match = rule.pattern.exec(text);
    if (match && !(rule.example && rule.example.test(match[0]))) return `file ${rule.reason}`;
  }
  return undefined;
}

/**
 * The secrets a user let through, by pattern (gitignore syntax, matched against the path from the
 * root: `config/dev.pem`, `*.pem`, `.env.test`).
 */
export class SecretAllowList {
  private readonly matcher: Ignore | undefined;

  constructor(patterns: readonly string[]) {
    this.matcher = patterns.length > 0 ? ignore({ ignorecase: false }).add([...patterns]) : undefined;
  }

  allows(path: string): boolean {
    return this.matcher !== undefined && this.matcher.ignores(path);
  }
}
