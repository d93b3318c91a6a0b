#!/bin/sh
# Claude Code's `apiKeyHelper`: prints the Anthropic API key. The key lives only on the tmpfs
# /run/clud-secrets (mode 0700, owned by coder), written there by Clud through an exec's stdin;
# it is never in the image, the container's configuration, its logs or any synced folder.
exec cat /run/clud-secrets/anthropic-api-key
