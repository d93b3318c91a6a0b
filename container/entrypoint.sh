#!/bin/sh
# The agent's init, in two steps under tini (PID 1):
#   1. as root: check /host and give the workspace user the UID/GID of the host folder's owner;
#   2. as that user from then on: the initial copy of /host into /workspace, then stay up.
# Node 20 refuses setuid() in-process (CVE-2024-22017), so the switch of user is setpriv's exec,
# which also leaves no process running as root besides tini.
export UV_THREADPOOL_SIZE=16  # the initial scan waits on file system calls run on these threads
node /opt/clud/agent.js prepare
HOME=/home/coder USER=coder exec setpriv --reuid=coder --regid=coder --init-groups -- node /opt/clud/agent.js init
