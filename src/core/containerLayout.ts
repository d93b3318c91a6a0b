// Where things live inside the workspace container. The image (container/Dockerfile), the agent
// and the host side all read these names from here.

/** The user's project folder, bind-mounted read-write. */
export const CONTAINER_HOST_PATH = '/host';
/** The container's own copy, where the coding agent works. */
export const CONTAINER_WORKSPACE_PATH = '/workspace';
/** The unprivileged user the agent drops to; `init` gives it the host folder owner's UID/GID. */
export const WORKSPACE_USER = 'coder';
export const AGENT_PATH = '/opt/clud/agent.js';
/**
 * The workspace's sync state (the last agreed state, kept versions, backups, history), in a host
 * folder outside both synced trees, bind-mounted here so it survives the container.
 */
export const CONTAINER_STATE_PATH = '/clud-state';
/** Agent state that outlives one process: the init state and copied-in agent bundles. */
export const AGENT_STATE_DIR = '/var/lib/clud';
export const INIT_STATE_PATH = `${AGENT_STATE_DIR}/init.json`;
export const SYNC_LOCK_PATH = `${AGENT_STATE_DIR}/sync.lock`;
/** Environment variable carrying the initial sync's options (JSON, validated as SyncOptions). */
export const SYNC_OPTIONS_ENV = 'CLUD_SYNC_OPTIONS';

export const LABEL_WORKSPACE = 'clud.workspace';
export const LABEL_HOST_PATH = 'clud.hostPath';
export const LABEL_CONTEXT_HASH = 'clud.contextHash';
export const LABEL_AGENT_HASH = 'clud.agentHash';

/**
 * The coding agent's state (Claude Code's configuration and login, coder's ~/.config and
 * ~/.local): a named volume per workspace, so it survives `clud down` and `clud up --rebuild`.
 */
export const AGENT_HOME_PATH = '/var/lib/clud-agent';
/** CLAUDE_CONFIG_DIR (set in the image): settings.json and .claude.json, with the MCP servers. */
export const CLAUDE_CONFIG_DIR = `${AGENT_HOME_PATH}/claude`;
/** A tmpfs readable only by coder: the API key lives here and nowhere else. */
export const SECRETS_PATH = '/run/clud-secrets';
export const API_KEY_FILE = `${SECRETS_PATH}/anthropic-api-key`;
/** Claude Code's `apiKeyHelper`: prints the key file. */
export const API_KEY_HELPER_PATH = '/opt/clud/api-key-helper.sh';
/** Starts code-server as coder in /workspace (UI image only). */
export const START_UI_PATH = '/opt/clud/start-ui.sh';
/** code-server's port inside the container; published on the host's loopback only. */
export const UI_CONTAINER_PORT = 8743;
export const UI_PORT_KEY = `${UI_CONTAINER_PORT}/tcp`;
/** Set on a container made with the browser IDE: '1'. */
export const LABEL_UI = 'clud.ui';
/** The UI's authentication for code-server: none or password. */
export const UI_AUTH_ENV = 'CLUD_UI_AUTH';

/** The name of a workspace's agent-state volume. */
export function agentVolumeName(containerName: string): string {
  return `${containerName}-agent-state`;
}

/** The UI image's tag, derived from the workspace image's: `niteris/clud:latest` → `niteris/clud:latest-ui`. */
export function uiImageTag(imageTag: string): string {
  const digest = imageTag.indexOf('@');
  const base = digest === -1 ? imageTag : imageTag.slice(0, digest);
  const colon = base.lastIndexOf(':');
  const hasTag = colon > base.lastIndexOf('/');
  return hasTag ? `${base}-ui` : `${base}:latest-ui`;
}
