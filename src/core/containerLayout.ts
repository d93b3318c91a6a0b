// Where things live inside the workspace container. The image (container/Dockerfile), the agent
// and the host side all read these names from here.

/**
 * The folder only the sync agent's user can enter (mode 0700, owned by it): it holds the two
 * mounts from the host, so nothing the workspace user runs can list, read or write them.
 */
export const SYNC_ONLY_PATH = '/clud';
/** The user's project folder, bind-mounted read-write. */
export const CONTAINER_HOST_PATH = `${SYNC_ONLY_PATH}/host`;
/** The container's own copy, where the coding agent works. */
export const CONTAINER_WORKSPACE_PATH = '/workspace';
/**
 * The workspace user: shells, `clud exec` and the coding agent run as it. It owns /workspace and
 * never has the host folder owner's UID (`prepare` moves it aside if the image's UID clashes).
 */
export const WORKSPACE_USER = 'coder';
/**
 * The sync agent's own user: `prepare` gives it the host folder owner's UID/GID, so what it writes
 * to the host belongs to that owner. It is the only user that can enter SYNC_ONLY_PATH and
 * AGENT_STATE_DIR.
 */
export const SYNC_USER = 'clud';
/**
 * Runs its arguments as SYNC_USER with only SYNC_USER_CAPABILITIES (setpriv; see the script).
 * The image's entrypoint starts `agent init` through it and every `agent serve` session is
 * exec'd as root into it, so the sync agent has one identity however it is started.
 */
export const AS_SYNC_USER_PATH = '/opt/clud/as-sync-user';
/**
 * The capabilities the whole container keeps (everything else is dropped): CHOWN, DAC_OVERRIDE
 * and FOWNER are the sync agent's own (it reads, replaces and gives to the workspace user what
 * that user writes in /workspace); SETUID and SETGID let root switch to either user (setpriv,
 * docker exec); KILL lets tini pass signals on to the sync agent. The workspace user gets none.
 */
export const CONTAINER_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID', 'KILL'] as const;
export const AGENT_PATH = '/opt/clud/agent.js';
/**
 * The workspace's sync state (the last agreed state, kept versions, backups, history), in a host
 * folder outside both synced trees, bind-mounted here so it survives the container.
 */
export const CONTAINER_STATE_PATH = `${SYNC_ONLY_PATH}/state`;
/** Agent state that outlives one process: the init state, the sync lock and copied-in agent bundles. Only SYNC_USER can enter it. */
export const AGENT_STATE_DIR = '/var/lib/clud';
export const INIT_STATE_PATH = `${AGENT_STATE_DIR}/init.json`;
/**
 * The resident sync agent's socket: every client channel (`agent serve`) is relayed to it. In
 * AGENT_STATE_DIR, so only the sync user can connect.
 */
export const AGENT_SOCKET_PATH = `${AGENT_STATE_DIR}/agent.sock`;
/**
 * The narrow channel's folder: made by `prepare` (root), owned by the sync user, mode 0755 so the
 * workspace user can reach the socket in it but create nothing there.
 */
export const STEP_SOCKET_DIR = '/run/clud';
/**
 * The narrow channel (src/agent/stepChannel.ts): the only way the workspace user's processes
 * (Claude Code's hooks, the Clud MCP server) talk to the sync agent; its own small request union
 * (StepRequest in protocol.ts). Mode 0666: every process of the container may mark a step.
 */
export const STEP_SOCKET_PATH = `${STEP_SOCKET_DIR}/steps.sock`;
/** Overrides STEP_SOCKET_PATH for `agent hook` and `agent mcp` (tests run them outside a container). */
export const STEP_SOCKET_ENV = 'CLUD_STEP_SOCKET';
/** Environment variable naming the workspace in the host repository's refs: `clud/<name>/<branch>`. */
export const GIT_NAMESPACE_ENV = 'CLUD_GIT_NAMESPACE';
/** In the state folder: the agent branches as the last sync left them, for `clud status`. */
export const GIT_STATE_FILE = 'git.json';
/** Environment variable carrying the initial sync's options (JSON, validated as SyncOptions). */
export const SYNC_OPTIONS_ENV = 'CLUD_SYNC_OPTIONS';

export const LABEL_WORKSPACE = 'clud.workspace';
export const LABEL_HOST_PATH = 'clud.hostPath';
export const LABEL_CONTEXT_HASH = 'clud.contextHash';
export const LABEL_AGENT_HASH = 'clud.agentHash';
/** BuildContext.cludHash of the Clud that made the container: `clud status` says when it is not this one's. */
export const LABEL_CLUD_HASH = 'clud.cludHash';
/**
 * Which layout a container was made with. A container without this label predates the sync
 * user (its agent runs as the workspace user and finds the host folder at /host): its sessions
 * run its own agent the old way, so its changes can still be pulled before `clud up --rebuild`.
 */
export const LABEL_LAYOUT = 'clud.layout';
export const CONTAINER_LAYOUT = 'sync-user';

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
