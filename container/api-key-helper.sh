#!/bin/sh
# Claude Code's `apiKeyHelper`: prints the Anthropic API key. The key lives only on the tmpfs
# /run/clud-secrets (mode 0700, owned by coder), written there by Clud through an exec's stdin;
# it is never in the image, the container's configuration, its logs or any synced folder.
# The tmpfs empties when the container stops: Clud then takes this helper out of Claude Code's
# settings the next time it starts Claude Code or the workspace, and until then this says why.
KEY=/run/clud-secrets/anthropic-api-key
if [ ! -s "$KEY" ]; then
  echo 'clud: no API key is stored in this workspace (it is kept in memory and went when the container stopped): run `clud up --api-key -` again, or `clud claude` to log in with your Claude account' >&2
  exit 1
fi
exec cat "$KEY"
