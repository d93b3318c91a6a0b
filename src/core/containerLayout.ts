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
