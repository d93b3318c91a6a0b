#!/bin/sh
# The agent's init, in two steps under tini (PID 1):
#   1. as root: check the mounts, give the sync user `clud` the UID/GID of the host folder's owner
#      and the workspace user `coder` another one;
#   2. as `clud` from then on, with the capabilities as-sync-user keeps: `agent init`, which keeps
#      the resident sync agent (`agent daemon`: the initial copy, then continuous sync) running.
# Node 20 refuses setuid() in-process (CVE-2024-22017), so the switch of user is setpriv's exec,
# which also leaves no process running as root besides tini.
export UV_THREADPOOL_SIZE=16  # the initial scan waits on file system calls run on these threads
node /opt/clud/agent.js prepare
exec /opt/clud/as-sync-user node /opt/clud/agent.js init
