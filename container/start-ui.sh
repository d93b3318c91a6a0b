#!/bin/sh
# Starts the browser IDE (code-server) for the workspace user, in /workspace. Run by Clud through
# `docker exec --user coder` once the container's start-up has finished, whether the initial copy
# succeeded or failed: the IDE is the way to look at a failed workspace too. Prints `running` when
# code-server already runs, `started` after starting it. With CLUD_UI_AUTH=password the password
# arrives on standard input (never argv or the container's environment).
set -eu
PORT=8743
LOG=/tmp/clud-ui.log
PIDFILE=/tmp/clud-ui.pid

user=$(id -un 2>/dev/null || true)
if [ "$user" != coder ] || [ "$(id -u)" = 0 ]; then
  echo "start-ui: code-server runs as the workspace user coder, not ${user:-uid $(id -u)}" >&2
  exit 3
fi
if [ ! -x /opt/code-server/node_modules/.bin/code-server ]; then
  echo "start-ui: this image has no code-server (build the UI image)" >&2
  exit 4
fi
# /tmp outlives a restart of the container, and PIDs are reused: the pid file counts only while it
# names a live code-server.
pid=$(cat "$PIDFILE" 2>/dev/null || true)
if [ -n "$pid" ] && grep -qs code-server "/proc/$pid/cmdline"; then
  echo running
  exit 0
fi
cd /workspace
auth=${CLUD_UI_AUTH:-none}
if [ "$auth" = password ]; then
  IFS= read -r PASSWORD || true
  [ -n "${PASSWORD:-}" ] || { echo "start-ui: no password on standard input" >&2; exit 5; }
  export PASSWORD
fi
# Listens on all of the container's interfaces: Docker publishes the port on the host's loopback only.
setsid /opt/code-server/node_modules/.bin/code-server --bind-addr "0.0.0.0:$PORT" --auth "$auth" \
  --disable-telemetry --disable-update-check --disable-workspace-trust /workspace >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"
echo started
