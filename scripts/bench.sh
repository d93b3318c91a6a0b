#!/usr/bin/env bash
# `npm run bench`: makes sure the tools measured against are installed (rsync, unison), bundles the
# benchmark with esbuild as the agent is bundled (so the code timed is the code that ships), and
# runs it with plain Node. Arguments pass through (`npm run bench -- --undo`: the undo log only).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v rsync >/dev/null || missing+=(rsync)
command -v unison >/dev/null || missing+=(unison)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then echo "bench: install ${missing[*]} first (apt-get install ${missing[*]})" >&2; exit 1; fi
  echo "[bench] installing ${missing[*]}" >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p bench-results
node esbuild.mjs --bench
exec node bench-results/syncBench.cjs "$@"
