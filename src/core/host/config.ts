// Every setting Clud reads, validated once with zod. The CLI fills it from flags and the
// environment, the extension from `clud.*` settings; both get the same errors for bad values.
import { z } from 'zod';
import { CludError } from '../errors';
import { McpServerSetting, parseMcpServerList } from './mcp';
import { AutoSyncMode } from '../protocol';

export const DEFAULT_IMAGE_TAG = 'niteris/clud:latest';
export const DEFAULT_BASE_IMAGE = 'debian:trixie-slim';

/** Docker's own rule for container names. */
const containerName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must start with a letter or digit and use only letters, digits, "_", "." and "-"');
const imageReference = z.string().regex(/^[a-z0-9][a-z0-9._\-/:@]*$/, 'must be a lower-case image reference such as "niteris/clud:latest"');

export const CludConfig = z.object({
  /** Container name; derived from the folder's path when absent. */
  containerName: containerName.optional(),
  imageTag: imageReference.default(DEFAULT_IMAGE_TAG),
  baseImage: imageReference.default(DEFAULT_BASE_IMAGE),
  /** Host files of PEM certificates trusted inside the image (for TLS-inspecting proxies). */
  extraCaCertificates: z.array(z.string().min(1)).default([]),
  /** Exclude patterns on top of .gitignore files and the built-in list. */
  excludes: z.array(z.string().min(1)).default([]),
  /**
   * Secret files to sync anyway (gitignore patterns from the folder's root); every other file the
   * secret check flags stays on its side.
   */
  allowSecrets: z.array(z.string().min(1)).default([]),
  /** Retries of a push or pull after a transient failure. */
  syncRetries: z.number().int().min(0).max(10).default(3),
  /**
   * When the resident agent syncs on its own (`clud up --auto-sync`, CLUD_AUTO_SYNC, `clud.autoSync`):
   * the container starts with it, and `up` sends it with `configure` to a running one. Absent: the
   * agent keeps the mode it has (continuous in a new container).
   */
  autoSync: AutoSyncMode.optional(),
  /** Sides polled instead of watched (the host is always polled on Docker Desktop, which passes no file events). */
  poll: z.array(z.enum(['host', 'container'])).default([]),
  /** Undo log limits: the oldest steps are evicted first; a step over the size limit cannot be undone. */
  undoMaxSteps: z.number().int().min(1).max(10_000).default(50),
  undoMaxLogMegabytes: z.number().min(1).default(1024),
  undoMaxStepMegabytes: z.number().min(1).default(256),
  /** Safeguards: a sync that deletes more files than this on the host, or overwrites a bigger file, asks first. */
  safeguardMaxDeletions: z.number().int().min(0).default(50),
  safeguardLargeFileMegabytes: z.number().min(0).default(10),
  /** Run the browser IDE (code-server) in the workspace (the UI image). */
  ui: z.boolean().default(false),
  /** The host port of the browser IDE; absent: 8743 when free, else one the engine picks. */
  uiPort: z.number().int().min(1).max(65535).optional(),
  /** MCP servers for Claude Code on top of the defaults (filesystem, git, fetch): catalogue names or full entries. */
  mcpServers: z.array(McpServerSetting).default([]),
});
export type CludConfig = z.infer<typeof CludConfig>;
export type CludConfigInput = z.input<typeof CludConfig>;

/**
 * Validates raw settings. `settingPrefix` names settings the way the user wrote them
 * ("clud." in VS Code, "--" on the command line) so the message points at the right place.
 */
export function parseConfig(input: unknown, settingName: (key: string) => string = (key) => key): CludConfig {
  const parsed = CludConfig.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = issue.path.length ? String(issue.path[0]) : '(settings)';
  throw new CludError('invalid-config', `Invalid setting ${settingName(key)}: ${issue.message}`, 'Fix the setting and try again.');
}

/** Reads the settings the environment can carry (CLUD_IMAGE, CLUD_BASE_IMAGE, CLUD_EXTRA_CA_CERTIFICATES, CLUD_ALLOW_SECRETS, CLUD_MCP_SERVERS, CLUD_AUTO_SYNC). */
export function configFromEnvironment(env: NodeJS.ProcessEnv, pathDelimiter: string): CludConfigInput {
  const config: CludConfigInput = {};
  if (env.CLUD_IMAGE) config.imageTag = env.CLUD_IMAGE;
  if (env.CLUD_BASE_IMAGE) config.baseImage = env.CLUD_BASE_IMAGE;
  if (env.CLUD_EXTRA_CA_CERTIFICATES) config.extraCaCertificates = env.CLUD_EXTRA_CA_CERTIFICATES.split(pathDelimiter).filter(Boolean);
  // Patterns, not paths: separated by commas, which no gitignore pattern of a file name needs.
  if (env.CLUD_ALLOW_SECRETS) config.allowSecrets = env.CLUD_ALLOW_SECRETS.split(',').map((pattern) => pattern.trim()).filter(Boolean);
  if (env.CLUD_POLL) config.poll = env.CLUD_POLL.split(',').map((side) => side.trim()).filter(Boolean) as CludConfigInput['poll'];
  if (env.CLUD_MCP_SERVERS) config.mcpServers = parseMcpServerList(env.CLUD_MCP_SERVERS, 'CLUD_MCP_SERVERS');
  if (env.CLUD_AUTO_SYNC) config.autoSync = env.CLUD_AUTO_SYNC as AutoSyncMode;
  return config;
}

/** The undo and safeguard part of the config, as the agent takes it. */
export function undoSettings(config: CludConfig): { maxSteps: number; maxLogBytes: number; maxStepBytes: number; maxDeletions: number; largeFileBytes: number } {
  const megabytes = (value: number) => Math.round(value * 1024 * 1024);
  return {
    maxSteps: config.undoMaxSteps,
    maxLogBytes: megabytes(config.undoMaxLogMegabytes),
    maxStepBytes: megabytes(config.undoMaxStepMegabytes),
    maxDeletions: config.safeguardMaxDeletions,
    largeFileBytes: megabytes(config.safeguardLargeFileMegabytes),
  };
}
