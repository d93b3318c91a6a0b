#!/usr/bin/env bash
# `npm run bench`: makes sure the tools measured against are installed (rsync, unison), bundles the
# benchmark with esbuild as the agent is bundled (so the code timed is the code that ships), and
# runs it with plain Node. Arguments pass through (`npm run bench -- --undo`: the undo log only).
# `npm run bench -- --scale [--sizes N,M]`: the scale benchmark in the real container instead
# (bench/scaleBench.ts, the same as `npm run bench:scale`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--scale" ]; then
  shift
  node esbuild.mjs >&2
  exec node --import tsx bench/scaleBench.ts "$@"
fi
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
