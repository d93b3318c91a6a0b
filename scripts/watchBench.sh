#!/usr/bin/env bash
# `npm run bench:watch`: the watcher measurement (bench/watchBench.ts). chokidar and @parcel/watcher
# are installed into bench-results/watch-deps only: they are measured, not shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=bench-results/watch-deps
if [ ! -d "$deps/node_modules/chokidar" ] || [ ! -d "$deps/node_modules/@parcel/watcher" ]; then
  mkdir -p "$deps"
  npm install --no-audit --no-fund --no-save --prefix "$deps" chokidar@4.0.3 @parcel/watcher@2.6.0 >&2
fi
export CLUD_WATCH_DEPS="$PWD/$deps"
exec node --import tsx bench/watchBench.ts "$@"
